"""BANA as methods and generator: stage 1 (BAP classifier), stage 2 (Y_crf / Y_ret labels) and
stage 3 (noise-aware loss), each on tiny synthetic data, and the three chained end to end."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.methods.base import REPO, TINY, MethodTest, single_torch_thread, tiny_config
from weakseg.cli import main as weakseg
from weakseg.config import load_config
from weakseg.data.specs import open_dataset
from weakseg.engine.loop import train
from weakseg.methods import build_method
from weakseg.methods.bana import feature_boxes
from weakseg.pseudo.store import LabelStore


def write_bana_style_labels(out: Path, spec: str = "synthetic:4") -> Path:
    """Y_crf = the ground truth, Y_ret = the ground truth with the object pixels of every other
    row set to background (so S and ~S are both non-empty)."""
    store = LabelStore(out)
    for sample in open_dataset(spec):
        ret = sample.mask.copy()
        ret[::2][ret[::2] != 255] = 0
        store.write(sample.id, {"labels": sample.mask, "ret": ret})
    return out


class TestClassifierStage(MethodTest):
    config = "bana_classifier_synthetic.yaml"
    method = "bana-classifier"
    terms = ("cls",)


class TestClassifierStageGap(MethodTest):
    config = "bana_classifier_synthetic.yaml"
    overrides = ("method.pooling=gap",)
    method = "bana-classifier"
    terms = ("cls",)


class _NalTest(MethodTest):
    config = "bana_synthetic.yaml"
    method = "bana"

    @pytest.fixture
    def cfg(self, tmp_path: Path):
        labels = write_bana_style_labels(tmp_path / "bana-labels")
        return tiny_config(self.config, tmp_path, *self.overrides, f"data.labels={labels}")


class TestNal(_NalTest):
    terms = ("ce", "wce")


class TestNalDotClassifier(_NalTest):
    overrides = ("method.classifier=dot",)
    terms = ("ce", "wce")


class TestEntropy(_NalTest):
    overrides = ("method.unreliable=entropy",)
    terms = ("ce", "entropy")


class TestBootstrap(_NalTest):
    overrides = ("method.unreliable=bootstrap",)
    terms = ("ce", "bootstrap")


class TestBaselineOnS(_NalTest):
    overrides = ("method.unreliable=none",)
    terms = ("ce",)


def test_feature_boxes_round_outwards():
    (m,) = feature_boxes(torch.tensor([[9.0, 0.0, 17.0, 8.0]]), 8, 4, 4)
    assert m.nonzero()[:, 1].unique().tolist() == [1, 2]  # columns 8-15 and 16-23
    assert m.nonzero()[:, 0].unique().tolist() == [0]


def test_bap_samples_one_per_box_plus_background_cells():
    method = build_method("bana-classifier", {"grid": 2})
    method.output_stride = 8  # what build_model records from the network
    scores = torch.zeros(1, 3, 4, 4)
    scores[0, 2, :2, :2] = 5.0  # class 2 scores high where the box is
    feats = torch.randn(1, 8, 4, 4)
    batch = {
        "image": torch.zeros(1, 3, 32, 32),
        "valid": torch.ones(1, 32, 32, dtype=torch.bool),
        "boxes": [torch.tensor([[0.0, 0.0, 16.0, 16.0]])],
        "box_labels": [torch.tensor([2])],
    }
    logits, labels = method.samples(batch, {"features": feats, "cam": scores})
    # the box covers the top-left 2 x 2 cell: 1 box sample, 3 background cells (the box cell
    # has no background)
    assert labels.tolist() == [2, 0, 0, 0]
    assert logits[0, 2].item() == pytest.approx(5.0)  # any weighting of a constant 5 is 5
    assert logits[1:, 2].abs().max().item() == 0.0


def _one_image_batch(size: int, boxes: list[list[float]], labels: list[int]) -> dict:
    return {
        "image": torch.zeros(1, 3, size, size),
        "valid": torch.ones(1, size, size, dtype=torch.bool),
        "boxes": [torch.tensor(boxes)],
        "box_labels": [torch.tensor(labels)],
    }


def _stage1(pooling: str = "bap", grid: int = 1, stride: int = 8):
    method = build_method("bana-classifier", {"pooling": pooling, "grid": grid})
    method.output_stride = stride
    return method


def test_bap_eq4_weights_the_box_by_one_minus_attention_unlike_gap():
    # 2 x 2 feature grid (16 x 16 crop, stride 8); the box is the top row, the definite
    # background the bottom row, whose features [1, 0] give the grid-1 query q = [1, 0].
    # Top row: f = [1, 1] (A = cos 45 deg = 1/sqrt 2) and [0, 1] (A = 0); class-2 scores 4, 1.
    feats = torch.tensor([[[1.0, 0.0], [1.0, 1.0]], [[1.0, 1.0], [0.0, 0.0]]])[None]
    scores = torch.zeros(1, 3, 2, 2)
    scores[0, 2, 0] = torch.tensor([4.0, 1.0])
    scores[0, 0, 1] = torch.tensor([2.0, 0.0])  # background scores on the background row
    batch = _one_image_batch(16, [[0.0, 0.0, 16.0, 8.0]], [2])
    logits, labels = _stage1("bap").samples(batch, {"features": feats, "cam": scores})
    assert labels.tolist() == [2, 0]
    w0 = 1 - 1 / math.sqrt(2)  # 1 - A at the [1, 1] cell; 1 at the [0, 1] cell
    assert logits[0, 2].item() == pytest.approx((4 * w0 + 1) / (w0 + 1))  # 1.680
    assert logits[1, 0].item() == pytest.approx(1.0)  # w . q: mean background score (2 + 0) / 2
    gap, _ = _stage1("gap").samples(batch, {"features": feats, "cam": scores})
    assert gap[0, 2].item() == pytest.approx(2.5)  # (4 + 1) / 2


def test_min_background_falls_back_to_gap_at_one_eighth():
    # 4 x 4 grid (32 x 32 crop); box 1 covers rows 0-2, box 2 two or one cells of row 3: the
    # definite background is 2/16 = 0.125 (not above min_background: GAP) or 3/16 (BAP)
    feats = torch.zeros(1, 2, 4, 4)
    feats[0, 0] = 1.0  # [1, 0] everywhere: the query; then one in-box cell like it (A = 1)
    feats[0, :, 0, 0] = torch.tensor([1.0, 0.0])
    feats[0, :, 0, 1] = torch.tensor([0.0, 1.0])  # A = 0
    feats[0, 0, 1:3] = 0.0
    feats[0, 1, 1:3] = 1.0  # rows 1-2: [0, 1], A = 0
    scores = torch.zeros(1, 3, 4, 4)
    scores[0, 1, 0, 0] = 12.0  # only at the A = 1 cell
    outputs = {"features": feats, "cam": scores}
    for box2, expected in (([0.0, 24.0, 16.0, 32.0], 1.0), ([0.0, 24.0, 8.0, 32.0], 0.0)):
        batch = _one_image_batch(32, [[0.0, 0.0, 32.0, 24.0], box2], [1, 1])
        logits, _ = _stage1("bap").samples(batch, outputs)
        # GAP: 12 / 12 cells of box 1 = 1; BAP: the only scoring cell has weight 1 - A = 0
        assert logits[0, 1].item() == pytest.approx(expected)


def test_small_crops_use_the_model_stride_not_ceil_of_the_sizes():
    # a 20 x 20 crop at stride 8 has a 3 x 3 feature grid; ceil(20 / 3) = 7 would be the wrong
    # stride, and the box x, y in [0, 8) would cover 2 x 2 cells instead of 1
    scores = torch.arange(9.0).view(1, 1, 3, 3).repeat(1, 3, 1, 1)
    batch = _one_image_batch(20, [[0.0, 0.0, 8.0, 8.0]], [1])
    outputs = {"features": torch.ones(1, 2, 3, 3), "cam": scores}
    logits, _ = _stage1("gap").samples(batch, outputs)
    assert logits[0, 1].item() == pytest.approx(0.0)  # cell (0, 0) alone; 2 x 2 would give 2
    with pytest.raises(RuntimeError, match="build_model"):
        build_method("bana-classifier", {}).samples(batch, outputs)


@pytest.mark.parametrize("detach", [False, True])
def test_sigma_carries_gradient_unless_detached(detach: bool):
    method = build_method("bana", {"detach_sigma": detach})
    seg = torch.randn(1, 3, 2, 2, requires_grad=True)
    cos = torch.rand(1, 3, 2, 2, requires_grad=True)
    y_crf = torch.tensor([[[1, 2], [0, 1]]])
    y_ret = torch.tensor([[[0, 2], [0, 2]]])  # disagree at (0,0) and (1,1): ~S non-empty
    terms = method.losses({"target": y_crf, "target_ret": y_ret}, {"seg": seg, "cos": cos})
    terms["wce"].backward()
    assert (cos.grad is None or not cos.grad.any()) == detach  # the code: sigma not detached


def test_exported_nal_model_needs_no_cosine_readout(tmp_path: Path):
    onnx = pytest.importorskip("onnx")
    from weakseg.export import export_onnx

    cfg = load_config(REPO / "configs" / "bana_synthetic.yaml", ["model.weights=none"])
    model = build_method("bana", cfg.method).build_model(cfg, 6).eval()
    assert set(model.heads) == {"seg", "cos"}
    names = {n for n, _ in model.named_parameters()}
    assert not any(n.startswith("heads.cos") for n in names)  # shares the classifier weights
    with single_torch_thread():
        export_onnx(model, tmp_path / "m.onnx", 64, 64)
    assert onnx.load(str(tmp_path / "m.onnx")).graph.output[0].name == "logits"


def test_three_stages_end_to_end(tmp_path: Path):
    """Stage 1 trains, stage 2 labels seen and unseen images with `weakseg labels`, stage 3
    trains on what stage 2 wrote."""
    cfg1 = load_config(REPO / "configs" / "bana_classifier_synthetic.yaml",
                       [*TINY, "train.iterations=2"])  # fmt: skip
    with single_torch_thread():
        train(cfg1, tmp_path / "stage1")
        labels = tmp_path / "labels"
        # training images, then unseen ones (another dataset: its own label folder)
        for spec, out in (("synthetic:4", labels), ("synthetic:2:9", tmp_path / "unseen")):
            code = weakseg(["labels", "--dataset", spec, "--generator", "bana", "--out",
                            str(out), "--workers", "1", "--no-progress",
                            f"run_dir={tmp_path / 'stage1'}"])  # fmt: skip
            assert code == 0
        store = LabelStore(labels)
        sample = open_dataset("synthetic:4")[0]
        y_crf, y_ret = store.read(sample.id), store.read(sample.id, "ret")
        assert y_crf.shape == y_ret.shape == (sample.height, sample.width)
        present = set(np.unique(sample.box_labels).tolist()) | {0}
        assert set(np.unique(y_crf).tolist()) <= present
        assert set(np.unique(y_ret).tolist()) <= present
        assert store.meta()["generator"] == "bana"
        cfg3 = tiny_config("bana_synthetic.yaml", tmp_path, f"data.labels={labels}")
        summary = train(cfg3, tmp_path / "stage3")
    assert summary["finished"] and "loss/wce" in summary["last"]


def test_generator_refuses_a_missing_or_wrong_run(tmp_path: Path, capsys):
    from weakseg.pseudo.registry import make_generator

    with pytest.raises(ValueError, match="run_dir"):
        make_generator("bana")
    cfg = tiny_config("box_synthetic.yaml", tmp_path)
    with single_torch_thread():
        train(cfg, tmp_path / "box")
        args = ["labels", "--dataset", "synthetic:1", "--generator", "bana", "--out",
                str(tmp_path / "labels"), "--workers", "1", "--no-progress"]  # fmt: skip
        assert weakseg([*args, f"run_dir={tmp_path / 'box'}"]) == 2
    assert "needs a bana-classifier run" in capsys.readouterr().err


def test_report_pictures_for_both_bana_networks(tmp_path: Path):
    cfg1 = load_config(REPO / "configs" / "bana_classifier_synthetic.yaml",
                       [*TINY, "train.iterations=1"])  # fmt: skip
    labels = write_bana_style_labels(tmp_path / "bana-labels")  # training ids
    write_bana_style_labels(labels, "synthetic:2:5")  # the report's ids
    cfg3 = tiny_config("bana_synthetic.yaml", tmp_path, "train.iterations=2",
                       "train.snapshot_every=1", f"data.labels={labels}")  # fmt: skip
    with single_torch_thread():
        train(cfg1, tmp_path / "stage1")
        train(cfg3, tmp_path / "stage3")
        for run in ("stage1", "stage3"):
            args = ["--dataset", "synthetic:2:5", "--labels", str(labels), "--device", "cpu"]
            code = weakseg(["report", "--run-dir", str(tmp_path / run), *args])
            assert code == 0
            assert len(list((tmp_path / run / "report").glob("*.png"))) == 2
        # the NAL confidence after 1 of the 2 iterations (train.snapshot_every=1)
        args = ["--dataset", "synthetic:2:5", "--device", "cpu", "--snapshot", "1"]
        assert weakseg(["report", "--run-dir", str(tmp_path / "stage3"), *args]) == 0
        assert len(list((tmp_path / "stage3" / "report-1").glob("*.png"))) == 2
        assert weakseg(["report", "--run-dir", str(tmp_path / "stage3"), *args[:-1], "7"]) == 2


def test_stage3_trains_on_the_feature_cache_and_its_snapshots_report(tmp_path: Path):
    """The CPU protocol (configs/voc_bana_cpu.yaml): frozen encoder, cached views; Y_ret rides
    beside the cached maps, so L_wce sees ~S, and a snapshot of the cached model draws sigma."""
    labels = write_bana_style_labels(tmp_path / "labels")
    write_bana_style_labels(labels, "synthetic:2:5")
    cfg = tiny_config("bana_synthetic.yaml", tmp_path, "model.freeze=all", "data.cache_views=1",
                      "train.loss_stride=4", f"data.cache_dir={tmp_path / 'cache'}",
                      "train.iterations=2", "train.snapshot_every=1",
                      f"data.labels={labels}")  # fmt: skip
    with single_torch_thread():
        summary = train(cfg, tmp_path / "stage3")
        args = ["--dataset", "synthetic:2:5", "--device", "cpu", "--snapshot", "1"]
        assert weakseg(["report", "--run-dir", str(tmp_path / "stage3"), *args]) == 0
    assert "feature_cache" in summary and summary["last"]["loss/wce"] > 0
    assert len(list((tmp_path / "stage3" / "report-1").glob("*.png"))) == 2
