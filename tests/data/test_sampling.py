"""Repeat-factor (class-balanced) sampling: factors by hand, the sampler's draws, the loader."""

from __future__ import annotations

import math

import numpy as np
import pytest

from weakseg.config import ConfigError, load_config
from weakseg.data.dataset import UsableSubset
from weakseg.data.sampling import RepeatFactorSampler, repeat_factors
from weakseg.data.specs import open_dataset
from weakseg.data.training import TrainingDataset, epoch_iterator, training_loader
from weakseg.data.transforms import TrainTransform


def test_repeat_factors_by_hand():
    # 4 images: class 1 in 3 of them (f = 3/4), classes 2 and 3 in one each (f = 1/4).
    # t = 0.5: r_1 = max(1, sqrt(0.5 / 0.75)) = 1, r_2 = r_3 = sqrt(0.5 / 0.25) = sqrt(2);
    # an image takes the largest factor of its classes; an image without classes gets 1.
    classes = [(1,), (1, 2), (1,), (3,), ()]
    # with the empty image n = 5: f_1 = 3/5, f_2 = f_3 = 1/5 -> sqrt(0.5 * 5) = sqrt(2.5)
    r = repeat_factors(classes, 0.5)
    assert r == pytest.approx([1.0, math.sqrt(2.5), 1.0, math.sqrt(2.5), 1.0])
    r = repeat_factors(classes[:4], 0.5)
    assert r == pytest.approx([1.0, math.sqrt(2.0), 1.0, math.sqrt(2.0)])
    # a low threshold oversamples nothing; a repeated class in one image counts once
    assert repeat_factors([(1, 1), (2,)], 0.01) == pytest.approx([1.0, 1.0])
    with pytest.raises(ValueError, match="repeat_threshold"):
        repeat_factors(classes, 0.0)


def test_sampler_frequencies_follow_the_factors():
    factors = np.array([1.0, 3.0, 1.0, 1.0])
    sampler = RepeatFactorSampler(factors, seed=4)
    counts = np.zeros(4)
    for epoch in range(500):
        sampler.set_epoch(epoch)
        draws = list(sampler)
        assert len(draws) == 4 == sampler.num_samples  # an epoch keeps the dataset's length
        counts += np.bincount(draws, minlength=4)
    share = counts / counts.sum()
    assert share == pytest.approx([1 / 6, 1 / 2, 1 / 6, 1 / 6], abs=0.03)


def test_sampler_is_seeded_by_seed_and_epoch_and_shards_and_resumes():
    factors = np.arange(1, 11, dtype=float)
    a, b = RepeatFactorSampler(factors, seed=1), RepeatFactorSampler(factors, seed=1)
    a.set_epoch(3), b.set_epoch(3)
    assert list(a) == list(b)
    b.set_epoch(4)
    assert list(a) != list(b)
    ranks = [RepeatFactorSampler(factors, world_size=2, rank=r, seed=1) for r in (0, 1)]
    for s in ranks:
        s.set_epoch(3)
    whole = a.draws()
    assert list(ranks[0]) == whole[0::2].tolist() and list(ranks[1]) == whole[1::2].tolist()
    a.start = 6
    assert list(a) == whole[6:].tolist() and len(a) == 4
    with pytest.raises(ValueError, match="positive"):
        RepeatFactorSampler(np.array([1.0, 0.0]))


def test_loader_oversamples_images_of_rare_classes():
    raw = UsableSubset(open_dataset("synthetic:12:3"))
    data = TrainingDataset(raw, "gt", TrainTransform(64, 1.0, 1.0, False, 0.0))
    classes = data.image_classes()
    expected = [tuple(int(c) for c in s.image_labels) for s in open_dataset("synthetic:12:3")]
    assert classes == expected
    factors = repeat_factors(classes, 0.9)
    assert factors.max() > factors.min()  # the synthetic set has rarer and commoner classes
    loader = training_loader(data, batch_size=4, workers=0, sampling="repeat_factor",
                             repeat_threshold=0.9)  # fmt: skip
    assert isinstance(loader.sampler, RepeatFactorSampler)
    seen = np.zeros(len(data))
    index = {sample_id: i for i, sample_id in enumerate(raw.ids)}
    for epoch in range(60):
        for batch in epoch_iterator(loader, epoch):
            for sample_id in batch["id"]:
                seen[index[sample_id]] += 1
    rare, common = factors == factors.max(), factors == factors.min()
    assert seen[rare].mean() > 1.15 * seen[common].mean()


def test_config_checks_the_sampling_fields(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  sampling: balanced\n")
    with pytest.raises(ConfigError, match="data.sampling"):
        load_config(path)
    path.write_text("data:\n  sampling: repeat_factor\n  repeat_threshold: 0\n")
    with pytest.raises(ConfigError, match="repeat_threshold"):
        load_config(path)
