"""benchmarks.allocator renders its two rows and the speed-up, without training anything."""

from benchmarks.allocator import render
from benchmarks.common import seed_stats


def row(per_seed, faults, user, system):
    seeds = {str(k): {"images_per_s": v} for k, v in enumerate(per_seed)}
    return {"seeds": seeds, "score": seed_stats(per_seed), "wall_seconds": 100.0,
            "minor_faults": faults,
            "user_seconds": user, "system_seconds": system, "load": 4.0, "command": "weakseg x",
            "machine": "cpu", "date": "2026-12-03"}  # fmt: skip


def test_render_rates_and_gain():
    table = render({"kept": row([20.0, 22.0], 2_000_000, 90.0, 10.0),
                    "system": row([14.0, 14.0], 7_000_000, 60.0, 40.0)})  # fmt: skip
    # img/s mean ± sd over seeds; faults per wall second; kernel share = system / (user + system)
    assert "| system | 14.0 ± 0.0 | 14.0 / 14.0 | 70,000 | 40% | 4.0 | `weakseg x` |" in table
    assert "| kept | 21.0 ± 1.4 | 20.0 / 22.0 | 20,000 | 10% |" in table
    assert table.index("| system |") < table.index("| kept |")
    assert "kept / system: 1.50x images/s." in table
