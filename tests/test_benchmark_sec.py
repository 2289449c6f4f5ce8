"""benchmarks/sec.py: the cue statistics on a label folder, and the table it renders."""

from __future__ import annotations

import argparse
import json

import numpy as np
from benchmarks import sec
from benchmarks.common import seed_stats

from weakseg.data.sample import Sample
from weakseg.pseudo import runner  # noqa: F401  (bound before a test patches open_dataset)
from weakseg.pseudo.base import TrainedModel
from weakseg.pseudo.store import LabelStore


class TwoImages:
    spec, ids = "fake", ["a", "b"]

    def load(self, sample_id):
        mask = np.zeros((4, 4), np.uint8)
        mask[:, 2:] = 1
        return Sample(sample_id, np.zeros((4, 4, 3), np.uint8), np.zeros((0, 4)), [],
                      image_labels=[1], mask=mask)  # fmt: skip


def test_cue_statistics_pool_the_images(tmp_path, monkeypatch):
    monkeypatch.setattr("weakseg.data.specs.open_dataset", lambda spec: TwoImages())
    store = LabelStore(tmp_path)
    grid = np.array([[0, 1], [255, 1]], np.uint8)  # a: 3 of 4 cells; bg right, fg right
    store.write("a", {"labels": np.kron(grid, np.ones((2, 2), np.uint8)), "cues": grid})
    grid = np.array([[1, 255], [255, 255]], np.uint8)  # b: 1 cell, fg on background: wrong
    store.write("b", {"labels": np.kron(grid, np.ones((2, 2), np.uint8)), "cues": grid})
    stats = sec.cue_statistics("fake", tmp_path)
    assert stats["images"] == 2
    assert stats["cue_share"] == 4 / 8 and stats["bg_share"] == 1 / 8
    assert stats["fg_precision"] == 8 / 12 and stats["bg_precision"] == 1.0


def test_render_reports_the_ratio_to_full():
    seed = {"miou": 0.3, "train_command": "weakseg train x", "miou_crf": 0.32}
    row = {"seeds": {"0": seed}, "miou": {"mean": 0.3, "std": 0.0},
           "miou_crf": {"mean": 0.32, "std": 0.0}, "train_minutes": {"mean": 9.0}}  # fmt: skip
    text = sec.render({"sec": row})
    assert "| sec | seed + expand (GWRP) + constrain | 30.0 (one seed) | 32.0 (one seed)" in text


def test_threshold_sweep_scores_each_threshold_on_the_same_maps(tmp_path, monkeypatch):
    # one CAM for class 1 over a 2 x 2 grid: 2, 4 / 3, 10 (max 10); the least salient quarter
    # (bottom left, no median filter) is background and wins its conflict (the smaller area).
    # t = 0.15 marks the 3 other cells foreground (top left wrongly), t = 0.3 the right 2.
    cam = np.array([[[2.0, 4.0], [3.0, 10.0]]])
    saliency = np.array([[5.0, 6.0], [0.0, 7.0]])
    monkeypatch.setattr("weakseg.data.specs.open_dataset", lambda spec: TwoImages())
    saved = {("data", "crop_size"): 64, ("train", "seed"): 0}  # the classifier's config
    monkeypatch.setattr(sec, "_config_value", lambda run_dir, key, section="data":
                        saved[section, key])  # fmt: skip
    classifier = TrainedModel(None, "sec-classifier", "classifier")
    monkeypatch.setattr("weakseg.cli.trained_for_generator", lambda name, params: classifier)
    monkeypatch.setattr("weakseg.pseudo.sec.SecCueGenerator.cam_and_saliency",
                        lambda self, image: (cam, saliency))  # fmt: skip
    args = argparse.Namespace(out=str(tmp_path), train_spec="fake", data="",
                              cue_option=["bg_share=0.25", "median=1"],
                              cue_shard="0/1", fg_thresholds=[0.15, 0.3])  # fmt: skip
    row = sec.threshold_sweep(args)
    low, high = row["thresholds"]["0.15"], row["thresholds"]["0.3"]
    assert low["images"] == high["images"] == 2
    assert low["fg_share"] == 6 / 8 and high["fg_share"] == 4 / 8 and low["bg_share"] == 2 / 8
    # the mask's right half is class 1, the left half background
    assert high["fg_precision"] == 1.0 and low["fg_precision"] == 2 / 3
    assert low["bg_precision"] == 1.0
    assert low["fg_on_bg"] == 1 / 3 and high["fg_on_bg"] == 0.0
    assert "| 0.3 | 75.0% | 25.0% | 50.0% | 100.0% | 100.0% | 0.0% |" in sec.render(
        {"cue-thresholds": row}
    )


def test_cue_options_keep_their_types():
    assert sec.parse_options(["fg_threshold=0.4", "median=5", "device=cpu"]) == {
        "fg_threshold": 0.4, "median": 5, "device": "cpu"}  # fmt: skip


def test_smoke_runs_the_chain_from_tags_to_a_sec_model(tmp_path):
    row = sec.smoke(tmp_path)
    assert row["images"] == 8 and 0.0 < row["cue_share"] <= 1.0
    assert (tmp_path / "sec" / "train_summary.json").exists()


def test_render_compares_the_full_loss_with_each_ablation_by_the_spread():
    def row(*per_seed):
        seeds = {str(k): {"miou": v, "miou_crf": v, "train_command": "weakseg train x"}
                 for k, v in enumerate(per_seed)}  # fmt: skip
        return {"seeds": seeds, "miou": seed_stats(list(per_seed)),
                "miou_crf": seed_stats(list(per_seed)), "train_minutes": {"mean": 9.0}}  # fmt: skip

    text = sec.render({"sec": row(0.36, 0.37, 0.38), "seed-expand": row(0.30, 0.31, 0.32),
                       "seed-constrain": row(0.35, 0.37, 0.39), "seed": row(0.2)})  # fmt: skip
    assert "- sec vs seed-expand: +6.0 (larger spread 1.0): better; with the CRF +6.0" in text
    assert "- sec vs seed-constrain: +0.0 (larger spread 2.0): no difference; with" in text
    assert "sec vs seed:" not in text  # one seed: no verdict


def test_foreground_shares_read_truth_by_row_and_prediction_by_column():
    # rows: truth (background, cat, dog), columns: prediction; 20 pixels
    result = {"confusion_matrix": [[8, 2, 0],   # 10 background pixels, 2 called cat
                                   [3, 4, 1],   # 8 cat pixels, 3 called background
                                   [1, 0, 1]]}  # 2 dog pixels  # fmt: skip
    predicted, true = sec.foreground_shares(result)
    assert predicted == 1 - 12 / 20  # 12 pixels predicted background
    assert true == 1 - 10 / 20


def test_render_shows_the_predicted_foreground_share():
    seed = {"miou": 0.3, "train_command": "weakseg train x", "miou_crf": 0.32}
    row = {"seeds": {"0": seed}, "miou": {"mean": 0.3, "std": 0.0},
           "miou_crf": {"mean": 0.32, "std": 0.0}, "train_minutes": {"mean": 9.0},
           "fg_share": {"mean": 0.18}, "fg_share_crf": {"mean": 0.125},
           "fg_share_true": 0.291}  # fmt: skip
    text = sec.render({"sec-gmp": row})
    assert "| 18.0% | 12.5% | 9.0 |" in text  # fg shares without and with the CRF, minutes
    assert "the masks have 29.1%" in text


def test_loss_course_flags_a_run_whose_loss_climbs_back(tmp_path):
    def course(losses):
        lines = [json.dumps({"iteration": i, "loss": v}) for i, v in enumerate(losses)]
        lines.insert(1, json.dumps({"iteration": 1, "val_miou": 0.3}))  # a line without loss
        (tmp_path / "m.jsonl").write_text("\n".join(lines))
        return sec.loss_course(tmp_path / "m.jsonl")

    good = course([7.0, 4.0, 2.0, 1.0, 0.9, 0.8, 0.7, 0.7])
    assert good["loss_min"] == 0.7 and not good["diverged"]
    bad = course([7.0, 4.0, 9.0, 11.0, 12.0, 11.0, 12.0, 11.5])
    assert bad["loss_min"] == 4.0 and bad["loss_final"] == (12 + 11 + 12 + 11 + 11.5) / 5
    assert bad["diverged"]


def test_render_names_the_rows_that_diverged():
    def seed(diverged):
        final = 11.7 if diverged else 3.0
        return {"miou": 0.03, "miou_crf": 0.03, "train_command": "weakseg train x",
                "loss_min": 3.9, "loss_final": final, "diverged": diverged}  # fmt: skip

    row = {"seeds": {"0": seed(True), "1": seed(False)}, "miou": seed_stats([0.03, 0.03]),
           "miou_crf": seed_stats([0.03, 0.03]), "train_minutes": {"mean": 9.0}}  # fmt: skip
    text = sec.render({"sec-gmp": row})
    assert "- sec-gmp: training diverged in 1 of 2 seeds (loss down to 3.9, then up to 11.7" in text
