"""benchmarks.train_uncertainty: the rows it plans and the table it renders (means over seeds,
ratios to full and to CE on the PP images only), without training anything."""

import argparse

from benchmarks.common import seed_stats
from benchmarks.train_uncertainty import CONFIGS, plan, render

from tests.methods.base import REPO


def test_plan_names_every_row_once_and_every_config_exists():
    args = argparse.Namespace(tasks=["person", "voc"], pp=[0.1, 0.05],
                              variants=["ours", "l2", "ce-pp"])  # fmt: skip
    rows = plan(args)
    assert rows["person-full"] == ("person", "full", None)
    assert rows["voc-ours-pp05"] == ("voc", "ours", 0.05)
    assert "voc-l2-pp10" not in rows  # the regression loss is binary only
    assert len(rows) == (1 + 2 * 3) + (1 + 2 * 2)
    assert all((REPO / config).exists() for config in CONFIGS.values())


def row(variant, pp, scores):
    seeds = {str(k): {"miou": 0.0, "iou": {"person": v}, "train_command": f"weakseg {variant}"}
             for k, v in enumerate(scores)}  # fmt: skip
    return {"task": "person", "variant": variant, "pp": pp, "seeds": seeds,
            "score": seed_stats(scores), "train_minutes": seed_stats([2.0] * len(scores)),
            "machine": "cpu", "date": "2026-12-02"}  # fmt: skip


def test_render_means_and_ratios():
    rows = {"a": row("full", None, [0.8, 0.6]), "c": row("ce-pp", 0.1, [0.4]),
            "d": row("ours", 0.1, [0.56, 0.6])}  # fmt: skip
    table = render(rows)
    # ours: mean 58.0, sd of (56, 60) = 2.8; / full (mean 70) = 0.83; / CE on PP (40) = 1.45
    assert "| person | ours | 10% | 58.0 ± 2.8 | 56.0 / 60.0 | 0.83 | 1.45 | 2.0 |" in table
    assert "| person | full | all | 70.0 ± 14.1 | 80.0 / 60.0 | 1.00 | — |" in table
    assert table.index("| full |") < table.index("| ours |") < table.index("| ce-pp |")
