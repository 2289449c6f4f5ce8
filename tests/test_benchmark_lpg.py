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
    assert "stage 2 vs stage 1 (pseudo masks of dev_val, 2 seed(s)): +4.0 (larger spread" in text
    assert (
        "stage 3 vs stage 2 (pseudo masks of dev_val, 2 seed(s)): +1.0 (larger spread 2.8)" in text
    )
    assert "+1.0 (larger spread 2.8): no difference." in text


def test_one_seed_gives_the_gap_but_no_verdict():
    text = lpg.render({"stages-c": stages_row([0.70], [0.73])})
    assert (
        "stage 2 vs stage 1 (pseudo masks of dev_val, 1 seed(s)): +3.0 (one seed: no spread" in text
    )


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


def test_segmentation_rows_are_divided_by_full_on_the_same_classes():
    """Setup b's segmenters per stage (mean over seeds) / full-b's mean, by hand:
    0.50 / 0.625 = 0.80 and 0.55 / 0.625 = 0.88."""
    row = stages_row([0.66, 0.64], [0.68, 0.70])
    row["setup"] = "b"
    for st, seg in zip(row["stages"], ([0.48, 0.52], [0.55, 0.55]), strict=True):
        st["segmenter_miou"] = seed_stats(seg)
        st["target_labels_miou"] = seed_stats([seg[0] + 0.2, seg[1] + 0.2])
    full = {"seeds": {"0": {}, "1": {}}, "miou": seed_stats([0.60, 0.65])}
    text = lpg.render({"full-b": full, "stages-b": row})
    assert "| stages-b | 2 | 50.0 ± 2.8 (0.80) | 55.0 ± 0.0 (0.88) | — | 62.5 ± 3.5 |" in text
    assert "| lpg b | dev_train, classes 1-10 (scored on 11-20) | 2 | 69.0 ± 1.4 |" in text
    assert (
        "| lpg b on its target (dev_train boxes, not dev_val) | dev_train, classes 1-10 "
        "(scored on 11-20) | 2 | 75.0 ± 0.0 |" in text
    )
    assert (
        "stage 2 vs stage 1 (pseudo masks of the target, dev_train, 2 seed(s)): +5.0 "
        "(larger spread 2.8): better" in text
    )
    assert "stage 2 vs stage 1 (segmenter on dev_val, 2 seed(s)): +5.0" in text


def test_segmentation_rows_without_full_say_so():
    row = stages_row([0.66])
    row["setup"] = "b"
    row["stages"][0]["segmenter_miou"] = seed_stats([0.5])
    text = lpg.render({"stages-b": row})
    assert "| stages-b | 1 | 50.0 (one seed) | — | — | not measured |" in text


def test_reference_rows_name_the_split_they_label(tmp_path, monkeypatch):
    """ref-b-target-* label classes 11-20 of dev_train (the stages' target), ref-b-* dev_val."""
    calls = []

    def fake_label_and_score(data, out, generator, params):
        calls.append(data)
        return {"miou": 0.7, "cpu_seconds_per_image": 0.3, "command": f"weakseg labels {data}"}

    monkeypatch.setattr(lpg, "label_and_score", fake_label_and_score)
    rows = {n: lpg.make_row(n, tmp_path, "V") for n in ("ref-b-grabcut", "ref-b-target-grabcut")}
    assert calls == ["classes:11-20:voc:V:dev_val", "classes:11-20:voc:V:dev_train"]
    text = lpg.render(rows)
    assert "| grabcut, classes 11-20 | — | — | 70.0 | 0.30 |" in text
    assert "| grabcut, classes 11-20 of dev_train (setup b's target) | — | — | 70.0 |" in text


def test_dev_val_is_labelled_with_what_labelled_the_target(tmp_path, monkeypatch):
    """A stages row relabels dev_val with the generator and segmenter input that labelled the
    target at that stage: with lpg.fixed that is g_2 at stage 1 too, fed by the box segmenter."""
    import json

    monkeypatch.chdir(tmp_path)
    run = tmp_path / "runs/stages-b-fixed/seed0"
    inputs = {1: ("stage2/generator.pt", "stage0/box_segmenter"),
              2: ("stage2/generator.pt", "stage1/segmenter")}  # fmt: skip
    for r, (gen, seg) in inputs.items():
        (run / f"stage{r}/target_labels").mkdir(parents=True)
        params = {"generator": str(run / gen), "run_dir": str(run / seg)}
        (run / f"stage{r}/target_labels/meta.json").write_text(json.dumps({"params": params}))
    calls = []

    def fake_label_and_score(data, out, generator, params):
        calls.append(params)
        return {"miou": 0.6, "command": "weakseg labels", "iou": [], "cpu_seconds_per_image": 0.1}

    monkeypatch.setattr(lpg, "label_and_score", fake_label_and_score)
    for r in (1, 2):
        lpg._stage_entry(run, {"stage": r, "labels_miou": 0.7}, "b", "V")
    assert calls == [
        ["generator=runs/stages-b-fixed/seed0/stage2/generator.pt",
         "run_dir=runs/stages-b-fixed/seed0/stage0/box_segmenter"],
        ["generator=runs/stages-b-fixed/seed0/stage2/generator.pt",
         "run_dir=runs/stages-b-fixed/seed0/stage1/segmenter"],
    ]  # fmt: skip


def test_a_stage_ablation_replaces_the_stage_option_it_sets():
    options = ["lpg.stages=2", "lpg.iterations=400"]
    assert lpg.with_options(options, ["lpg.stages=3"]) == ["lpg.iterations=400", "lpg.stages=3"]
    assert lpg.with_options(options, ["lpg.fixed=true"]) == [*options, "lpg.fixed=true"]


def test_the_stage3_row_extends_the_stages_runs(tmp_path, monkeypatch):
    commands = []

    def fake_stages_row(setup, out, voc, name, seeds, extra, runs):
        commands.append((name, runs, extra))
        return {}

    monkeypatch.setattr(lpg, "stages_row", fake_stages_row)
    lpg.make_row("stages-b-stage3", tmp_path, "V", (1,), ["lpg.stages=2", "lpg.iterations=400"])
    lpg.make_row("stages-b-fixed", tmp_path, "V", (1,), ["lpg.stages=2"])
    assert commands == [
        ("stages-b-stage3", "stages-b", ["lpg.iterations=400", "lpg.stages=3"]),
        ("stages-b-fixed", "", ["lpg.stages=2", "lpg.fixed=true"]),
    ]


def test_test_time_variants_relabel_with_the_generators_of_their_base_row(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(lpg, "relabel_row", lambda *a: calls.append((a[2], a[3], a[5])) or {})
    for name in ("stage1-c-flip-crf", "stage1-c-image-crops-flip-crf", "stage1-c-image-crops-crf"):
        lpg.make_row(name, tmp_path, "V", (0,))
    assert calls == [
        ("stage1-c-flip-crf", "flip-crf", "stage1-c"),
        ("stage1-c-image-crops-flip-crf", "flip-crf", "stage1-c-image-crops"),
        ("stage1-c-image-crops-crf", "crf", "stage1-c-image-crops"),
    ]


def test_the_best_stage1_row_beats_grabcut_only_by_more_than_its_spread(monkeypatch, tmp_path):
    """grabcut 0.70: a best row of 0.71 ± 0.02 over 3 seeds is no win, 0.74 ± 0.01 is (+4.0)."""
    ref = tmp_path / "results" / lpg.REFERENCES["grabcut"][0]
    ref.parent.mkdir(parents=True)
    ref.write_text('{"dev_val": {"miou": 0.70}}')
    monkeypatch.setattr(lpg, "HERE", tmp_path)
    close = lpg._verdict({"stage1-c": stage1_row("stage1-c", 0.69, 0.71, 0.73)})
    assert close.startswith("Setup (c), stage 1, does not beat grabcut (70.0)")
    assert "(3 seeds, 71.0 ± 2.0, lowest 69.0: +1.0 against grabcut, spread 2.0)" in close
    clear = lpg._verdict({"stage1-c-x": stage1_row("stage1-c-x", 0.73, 0.74, 0.75)})
    assert clear.startswith("Setup (c), stage 1, beats grabcut (70.0) at this budget: best c-x")
    assert "+4.0 against grabcut, spread 1.0" in clear
