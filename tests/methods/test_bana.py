"""BANA as methods and generator: stage 1 (BAP classifier), stage 2 (Y_crf / Y_ret labels) and
stage 3 (noise-aware loss), each on tiny synthetic data, and the three chained end to end."""

from __future__ import annotations

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
        for spec in ("synthetic:4", "synthetic:2:9"):  # training images, then unseen ones
            code = weakseg(["labels", "--dataset", spec, "--generator", "bana", "--out",
                            str(labels), "--workers", "1", "--no-progress",
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


def test_generator_refuses_a_missing_or_wrong_run(tmp_path: Path):
    from weakseg.pseudo.base import make_generator

    with pytest.raises(ValueError, match="run_dir"):
        make_generator("bana")
    cfg = tiny_config("box_synthetic.yaml", tmp_path)
    with single_torch_thread():
        train(cfg, tmp_path / "box")
    gen = make_generator("bana", run_dir=str(tmp_path / "box"))
    with pytest.raises(ValueError, match="bana-classifier"):
        gen.generate(open_dataset("synthetic:1")[0])


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
