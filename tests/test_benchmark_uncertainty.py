"""benchmarks.train_uncertainty: the rows it plans and the table it renders (means over seeds,
ratios to full and to CE on the PP images only), without training anything."""

import argparse

from benchmarks.train_uncertainty import plan, render


def test_plan_names_every_row_once():
    args = argparse.Namespace(tasks=["person", "voc"], seeds=[0, 1], pp=[0.1, 0.05],
                              variants=["ours", "l2", "ce-pp"])  # fmt: skip
    rows = plan(args)
    assert rows["person-full-s1"] == ("person", "full", None, 1)
    assert rows["voc-ours-pp05-s0"] == ("voc", "ours", 0.05, 0)
    assert "voc-l2-pp10-s0" not in rows  # the regression loss is binary only
    # person: 2 seeds x (full + 2 shares x 3 variants); voc: 2 x (1 + 2 x 2)
    assert len(rows) == 2 * 7 + 2 * 5


def row(variant, pp, seed, score):
    return {"task": "person", "variant": variant, "pp": pp, "seed": seed, "score": score,
            "summary": {"seconds": 60.0}, "train_command": f"weakseg train {variant}",
            "machine": "cpu", "date": "2026-12-02"}  # fmt: skip


def test_render_means_and_ratios():
    rows = {"a": row("full", None, 0, 0.8), "b": row("full", None, 1, 0.6),
            "c": row("ce-pp", 0.1, 0, 0.4), "d": row("ours", 0.1, 0, 0.56),
            "e": row("ours", 0.1, 1, 0.6)}  # fmt: skip
    table = render(rows)
    # ours: mean 58.0, sd of (56, 60) = 2.8; / full (mean 70) = 0.83; / CE on PP (40) = 1.45
    assert "| person | ours | 10% | 58.0 ± 2.8 | 2 | 0.83 | 1.45 |" in table
    assert "| person | full | all | 70.0 ± 14.1 | 2 | 1.00 | — |" in table
    assert table.index("| full |") < table.index("| ours |") < table.index("| ce-pp |")
