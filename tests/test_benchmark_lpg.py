"""benchmarks/lpg.py: the stages rows in the table and the stage-to-stage verdicts."""

from __future__ import annotations

from benchmarks import lpg
from benchmarks.common import seed_stats


def stages_row(*per_stage):
    """A stages-c row whose seeds scored ``per_stage[r]`` (one value per seed) at stage r + 1."""
    seeds = {str(k): {"command": f"weakseg lpg x lpg.seed={k}"} for k in range(len(per_stage[0]))}
    stages = [{"stage": r + 1, "labels_miou": seed_stats(list(v))}
              for r, v in enumerate(per_stage)]  # fmt: skip
    return {"setup": "c", "seeds": seeds, "stages": stages}


def test_stages_rows_show_each_stage_with_its_command():
    text = lpg.render({"stages-c": stages_row([0.70], [0.73])})
    assert "| lpg c | dev_train, all classes | 1 | 70.0 (one seed) | — | — | `weakseg lpg x" in text
    assert "| 2 | 73.0 (one seed) |" in text


def test_each_stage_is_compared_with_the_one_before_by_the_spread():
    text = lpg.render({"stages-c": stages_row([0.70, 0.72], [0.74, 0.76], [0.74, 0.78])})
    assert "- stages-c, stage 2 vs stage 1 (pseudo masks, 2 seed(s)): +4.0 (larger spread" in text
    assert "stage 3 vs stage 2 (pseudo masks, 2 seed(s)): +1.0 (larger spread 2.8): no diff" in text


def test_one_seed_gives_the_gap_but_no_verdict():
    text = lpg.render({"stages-c": stages_row([0.70], [0.73])})
    assert "stage 2 vs stage 1 (pseudo masks, 1 seed(s)): +3.0 (one seed: no spread to" in text


def stage1_row(name, *per_seed):
    seeds = {str(k): {"miou": v, "command": f"weakseg lpg x lpg.seed={k}"}
             for k, v in enumerate(per_seed)}  # fmt: skip
    stats = seed_stats(list(per_seed))
    return {"name": name, "setup": "c", "seed": 0, "seeds": seeds, "miou": stats["mean"],
            "miou_stats": stats, "cpu_seconds_per_image": 0.1, "generator_seconds": 120,
            "aux_samples": 1094, "command": "weakseg lpg x lpg.seed=0"}  # fmt: skip


def test_stage1_rows_show_the_spread_or_say_they_are_one_run():
    rows = {"stage1-c": stage1_row("stage1-c", 0.69, 0.70, 0.68),
            "stage1-c-lite2": stage1_row("stage1-c-lite2", 0.679)}  # fmt: skip
    text = lpg.render(rows)
    assert "| lpg c | dev_train, all classes | 1 | 69.0 ± 1.0 |" in text
    assert "| lpg c-lite2 | dev_train, all classes | 1 | 67.9 (one run, seed 0) |" in text
    assert "stage1-c over 3 seeds: 69.0 ± 1.0 (range 68.0-70.0)" in text
