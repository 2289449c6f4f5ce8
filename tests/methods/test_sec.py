"""SEC as methods and generator: the tag-only classifier (step 1), the cue maps (step 2) and the
SEC loss training (step 3) on tiny synthetic data; a tag-only dataset (no box, no mask, and an
error if anything reads them) goes through all three."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.methods.base import TINY, MethodTest, single_torch_thread, tiny_config
from weakseg.cli import main as weakseg
from weakseg.data.dataset import Dataset
from weakseg.data.sample import Sample
from weakseg.data.specs import open_dataset
from weakseg.engine import loop
from weakseg.methods import build_method
from weakseg.methods.sec import grid_cues
from weakseg.pseudo.store import LabelStore

WEAK = ("boxes", "box_labels", "mask", "difficult", "truncated")


class TestSecClassifier(MethodTest):
    config = "sec_classifier_synthetic.yaml"
    method = "sec-classifier"
    terms = ("cls",)


class TestSec(MethodTest):
    config = "sec_synthetic.yaml"
    overrides = ("model.output_stride=32",)  # 2 x 2 outputs: the CRF runs on tiny maps
    method = "sec"
    terms = ("seed", "expand", "constrain")


class TestSecSeedOnlyGmp(MethodTest):
    config = "sec_synthetic.yaml"
    overrides = ("method.expand=false", "method.constrain=false")
    method = "sec"
    terms = ("seed",)


def test_sec_needs_a_loss_term_and_a_known_pooling():
    with pytest.raises(ValueError, match="at least one"):
        build_method("sec", {"seed": False, "expand": False, "constrain": False})
    with pytest.raises(ValueError, match="pooling"):
        build_method("sec", {"pooling": "max"})


def test_grid_cues_reads_the_centre_of_each_cell():
    target = torch.full((1, 8, 8), 255)
    target[0, :4, :4] = 1  # cell (0, 0) of a 2 x 2 grid
    target[0, 5, 5] = 2  # only off-centre pixels of cell (1, 1) differ
    target[0, 6, 6] = 3
    assert grid_cues(target, (2, 2)).tolist() == [[[1, 255], [255, 3]]]


class StrictSample(Sample):
    """A Sample whose boxes, box flags and mask raise once it is built: tag-only code must
    never read them."""

    def __getattribute__(self, name: str):
        if name in WEAK and object.__getattribute__(self, "__dict__").get("_sealed"):
            raise AssertionError(f"tag-only training read sample.{name}")
        return object.__getattribute__(self, name)


class TagsOnly(Dataset):
    """``synthetic:N`` with the boxes and masks removed: image and tags only, StrictSamples."""

    def __init__(self, n: int = 4) -> None:
        self.base = open_dataset(f"synthetic:{n}")
        self.classes, self.ids, self.spec = self.base.classes, self.base.ids, f"synthetic:{n}"

    @property
    def identity(self) -> str:
        return "tags-only:" + self.base.identity

    def load(self, sample_id: str) -> Sample:
        s = self.base.load(sample_id)
        tags = s.image_labels
        out = StrictSample(id=s.id, image=s.image, boxes=np.zeros((0, 4)), box_labels=[],
                           image_labels=tags, source=s.source)  # fmt: skip
        out.__dict__["_sealed"] = True
        return out


@pytest.fixture
def tags_only(monkeypatch):
    """Every dataset the training loop opens is the tag-only one."""
    monkeypatch.setattr(loop, "open_dataset", lambda spec: TagsOnly())
    with single_torch_thread():
        yield


def test_strict_sample_raises_on_boxes():
    sample = TagsOnly().load("000000")
    assert len(sample.image_labels) > 0
    with pytest.raises(AssertionError, match="boxes"):
        _ = sample.boxes


def test_tag_only_chain_classifier_cues_sec(tags_only, tmp_path: Path):
    """Steps 1-3 on a dataset that has no boxes and no masks (and raises if they are read)."""
    cls_cfg = tiny_config("sec_classifier_synthetic.yaml", tmp_path, "model.output_stride=32")
    loop.train(cls_cfg, tmp_path / "cls", progress=False)
    network, _ = loop.load_trained(tmp_path / "cls", "cpu")
    from weakseg.pseudo.sec import SecCueGenerator

    gen = SecCueGenerator.for_model(network, size=64)
    store = LabelStore(tmp_path / "cues")
    dataset = TagsOnly()
    for sample_id in dataset.ids:
        maps = gen.generate_maps(dataset.load(sample_id))
        assert maps["cues"].shape == (2, 2) and maps["labels"].shape == (160, 224)
        store.write(sample_id, maps)
    sec_cfg = tiny_config("sec_synthetic.yaml", tmp_path, "model.output_stride=32",
                          f"data.labels={tmp_path / 'cues'}")  # fmt: skip
    summary = loop.train(sec_cfg, tmp_path / "sec", progress=False)
    assert summary["finished"]
    assert {"loss/seed", "loss/expand", "loss/constrain"} <= set(summary["last"])


def test_labels_cli_writes_cues_with_provenance(tmp_path: Path):
    with single_torch_thread():
        cfg = tiny_config("sec_classifier_synthetic.yaml", tmp_path, "model.output_stride=32")
        loop.train(cfg, tmp_path / "cls", progress=False)
        out = tmp_path / "cue-labels"
        code = weakseg(["labels", "--dataset", "synthetic:3", "--generator", "sec-cues",
                        "--out", str(out), "--workers", "1", "--no-progress",
                        f"run_dir={tmp_path / 'cls'}", "size=64"])  # fmt: skip
    assert code == 0
    store = LabelStore(out)
    assert store.done_ids() == {"000000", "000001", "000002"}
    grid = store.read("000000", "cues")
    assert grid.shape == (2, 2)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["generator"] == "sec-cues" and meta["params"]["size"] == 64


def test_tiny_overrides_are_the_shared_ones():
    assert "data.crop_size=64" in TINY
