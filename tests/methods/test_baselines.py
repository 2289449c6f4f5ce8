import dataclasses

import numpy as np
import pytest
import torch

from tests.methods.base import MethodTest, tiny_config
from weakseg.data.specs import open_dataset
from weakseg.data.transforms import TrainTransform
from weakseg.engine.loop import build_training_dataset
from weakseg.losses.common import cross_entropy
from weakseg.methods import METHODS, build_method
from weakseg.pseudo.store import LabelStore


class TestFull(MethodTest):
    config = "full_synthetic.yaml"
    method = "full"
    terms = ("ce",)


class TestBox(MethodTest):
    config = "box_synthetic.yaml"
    method = "box"
    terms = ("box",)


class TestPseudo(MethodTest):
    config = "pseudo_synthetic.yaml"
    method = "pseudo"
    terms = ("pseudo",)


class TestSemi(MethodTest):
    config = "pseudo_synthetic.yaml"
    overrides = ("train.method=semi", "method.labelled_fraction=0.5")
    method = "semi"
    terms = ("ce",)


def test_registry_and_label_sources():
    baselines = ("full", "box", "pseudo", "semi")
    assert {name: METHODS[name].label_source for name in baselines} == {
        "full": "gt", "box": "box", "pseudo": "pseudo", "semi": "semi",
    }  # fmt: skip
    assert all(cls.name == name for name, cls in METHODS.items())


def test_build_method_checks_names_and_parameters():
    assert build_method("semi", {"labelled_fraction": 0.25}).labelled_fraction == 0.25
    with pytest.raises(ValueError, match="unknown train.method 'boxx'.*full, box"):
        build_method("boxx")
    with pytest.raises(ValueError, match=r"no parameter\(s\) \['fraction'\].*labelled_fraction"):
        build_method("semi", {"fraction": 0.1})
    with pytest.raises(ValueError, match="parameters: none"):
        build_method("full", {"gamma": 0.7})


def test_baseline_losses_are_cross_entropy_on_the_target():
    logits = torch.randn(2, 6, 4, 4)
    target = torch.randint(0, 6, (2, 16, 16))
    batch = {"target": target}
    expected = cross_entropy(logits, target)
    for name in ("full", "box", "pseudo", "semi"):
        (value,) = build_method(name).losses(batch, {"seg": logits}).values()
        assert torch.equal(value, expected), name


def _plain(data):
    """Turn off augmentation: the target comes back at the original 160 x 224 size."""
    data.transform = TrainTransform(crop_size=224, scale_min=1.0, scale_max=1.0, flip=False)
    return data


def test_semi_uses_ground_truth_for_its_fraction_and_pseudo_labels_for_the_rest(tmp_path):
    cfg = tiny_config("pseudo_synthetic.yaml", tmp_path, "train.method=semi",
                      "method.labelled_fraction=0.5", "method.labelled_seed=3")  # fmt: skip
    # pseudo labels that differ from the ground truth everywhere: all "ring" (class 2)
    store = LabelStore(cfg.data.labels)
    dataset = open_dataset(cfg.data.train)
    for sample in dataset:
        store.write(sample.id, {"labels": np.full(sample.mask.shape, 2, np.uint8)})
    data = _plain(build_training_dataset(cfg, build_method("semi", cfg.method)))
    assert len(data.labelled) == 2 and "2 of 4 images trained on ground truth" in data.describe()
    for index, sample in enumerate(dataset):
        target = data[index]["target"][:160].numpy()
        expected = sample.mask if sample.id in data.labelled else np.full_like(sample.mask, 2)
        np.testing.assert_array_equal(target, expected)
    # the choice depends on labelled_seed only, not on the training seed
    other = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=9))
    assert build_training_dataset(other, build_method("semi", cfg.method)).labelled == data.labelled


def test_semi_needs_pseudo_labels_only_for_unlabelled_ids(tmp_path):
    cfg = tiny_config("pseudo_synthetic.yaml", tmp_path, "train.method=semi",
                      "method.labelled_fraction=0.5")  # fmt: skip
    data = build_training_dataset(cfg, build_method("semi", cfg.method))
    for sample_id in data.labelled:
        LabelStore(cfg.data.labels).path(sample_id).unlink()
    build_training_dataset(cfg, build_method("semi", cfg.method))  # still fine
