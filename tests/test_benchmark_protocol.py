"""benchmarks/protocol.py: each option row set against the protocol's default."""

from __future__ import annotations

from benchmarks import protocol
from benchmarks.common import seed_stats


def row(*mious):
    seeds = {str(k): {"miou": m} for k, m in enumerate(mious)}
    return {"seeds": seeds, "miou": seed_stats(list(mious))}


def test_an_option_over_seeds_gets_a_verdict_by_the_spreads():
    default = row(0.54, 0.53, 0.52)  # sd 1.0 point
    assert protocol._against(row(0.56, 0.565, 0.555), default) == (
        "+3.0 (larger spread 1.0): better"
    )
    assert protocol._against(row(0.535, 0.525, 0.52), default).endswith("no difference")


def test_an_option_of_one_seed_is_compared_with_the_same_seed_only():
    default = row(0.54, 0.50, 0.52)
    assert protocol._against(row(0.52), default) == "-2.0 vs its seed 0 (one seed: no verdict)"
    assert protocol._against(default, default) == "—"
