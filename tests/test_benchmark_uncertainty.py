"""benchmarks.train_uncertainty: the rows it plans and the table it renders (means over seeds,
ratios to full and to CE on the PP images only), without training anything."""

import argparse

from benchmarks.common import seed_stats
from benchmarks.train_uncertainty import CONFIGS, config_of, plan, render

from tests.methods.base import REPO


def test_plan_names_every_row_once_and_every_config_exists():
    args = argparse.Namespace(tasks=["person", "voc"], pp=[0.1, 0.05],
                              variants=["ours", "l2", "ce-pp"])  # fmt: skip
    rows = plan(args)
    assert rows["person-full"] == ("person", "full", None)
    assert rows["voc-ours-pp05"] == ("voc", "ours", 0.05)
    assert "voc-l2-pp10" not in rows  # the regression loss is binary only
    assert "voc-full" not in rows  # the baselines table's full row, not trained again
    assert len(rows) == (1 + 2 * 3) + 2 * 2
    assert all((REPO / config).exists() for config in CONFIGS.values())
    # a tried variant of ours runs ours' config under its own row name
    tried = plan(argparse.Namespace(tasks=["voc"], pp=[0.1], variants=["paper"]))
    assert tried["voc-paper-pp10"] == ("voc", "paper", 0.1)
    assert config_of("voc", "paper") == CONFIGS[("voc", "ours")]


def row(variant, pp, scores):
    seeds = {str(k): {"miou": 0.0, "iou": {"person": v}, "train_command": f"weakseg {variant}"}
             for k, v in enumerate(scores)}  # fmt: skip
    return {"task": "person", "variant": variant, "pp": pp, "seeds": seeds,
            "score": seed_stats(scores), "train_minutes": seed_stats([2.0] * len(scores)),
            "machine": "cpu", "date": "2026-12-02"}  # fmt: skip


def test_render_means_and_ratios():
    rows = {"a": row("full", None, [0.8, 0.6]), "c": row("ce-pp", 0.1, [0.38, 0.42]),
            "d": row("ours", 0.1, [0.56, 0.6]), "e": row("ce-boxes", 0.1, [0.5, 0.54]),
            "f": row("paper", 0.1, [0.1, 0.2]), "g": row("semi", 0.1, [0.57, 0.61])}  # fmt: skip
    rows["d"]["flips"] = {
        "0": {"flipped_share": 0.2, "precision": 0.8, "wrong_share": 0.4},
        "1": {"flipped_share": 0.1, "precision": 0.6, "wrong_share": 0.4},
    }
    table = render(rows)
    # ours: mean 58.0, sd of (56, 60) = 2.8; / full (mean 70) = 0.83; / CE on PP (40) = 1.45;
    # flipped: mean of 20% and 10%, precision mean of 80% and 60%
    assert (
        "| person | ours | 10% | 58.0 ± 2.8 | 56.0 / 60.0 | 0.83 | 1.45 | 15.0% (70%) | 2.0 |"
        in table
    )
    assert "of all box pixels, 40% for person are not their box's label" in table
    # ours 58.0 vs ce-boxes 52.0: +6.0 > larger spread 2.8; paper 15.0: -37.0 (spread 7.1)
    assert "person, 10% PP: ours vs ce-boxes +6.0 (larger spread 2.8): better." in table
    assert "person, 10% PP: paper vs ce-boxes -37.0 (larger spread 7.1): worse." in table
    # and against semi (59.0 ± 2.8): -1.0 inside the spread
    assert "person, 10% PP: ours vs semi -1.0 (larger spread 2.8): no difference." in table
    assert "person, 10% PP: ours vs ce-pp +18.0 (larger spread 2.8): better." in table
    assert "| person | full | all | 70.0 ± 14.1 | 80.0 / 60.0 | 1.00 | — |" in table
    assert table.index("| full |") < table.index("| ours |") < table.index("| ce-pp |")


def test_render_lists_the_variants_tried_where_ours_does_not_beat_ce_boxes():
    rows = {"d": row("ours", 0.1, [0.56, 0.6]), "e": row("ce-boxes", 0.1, [0.55, 0.59]),
            "f": row("paper", 0.1, [0.1]), "g": row("ours", 0.2, [0.7, 0.72]),
            "h": row("ce-boxes", 0.2, [0.5, 0.52])}  # fmt: skip
    table = render(rows)
    # 10%: +1.0 inside the spread 2.8; 20%: +20.0, ahead, so no line
    assert (
        "- person, 10% PP: ours does not beat ce-boxes; variants tried there: paper 10.0 "
        "(one seed)." in table
    )
    assert "person, 20% PP: ours does not beat" not in table
