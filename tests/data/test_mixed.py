"""Mixed supervision (weakseg.data.mixed): which images keep their masks, the PP sampler, the
"mixed" label source, and the binary:CLASS:SPEC dataset."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from weakseg.data.boxes import box_label_map
from weakseg.data.mixed import MixedSupervision, MixedSupervisionSampler
from weakseg.data.specs import open_dataset
from weakseg.data.training import (
    TrainingDataset,
    choose_labelled,
    epoch_iterator,
    training_loader,
)
from weakseg.data.transforms import TrainTransform

IDS = [f"{i:04d}" for i in range(40)]


def test_fraction_is_the_semi_baselines_draw():
    chosen = MixedSupervision(fraction=0.25, seed=3).choose(IDS)
    assert chosen == choose_labelled(IDS, 0.25, 3) and len(chosen) == 10
    assert MixedSupervision(fraction=0.25, seed=4).choose(IDS) != chosen


def test_count_takes_the_first_ids_of_the_same_draw():
    ten = MixedSupervision(count=10, seed=3).choose(IDS)
    assert ten == choose_labelled(IDS, 0.25, 3)
    assert MixedSupervision(count=7, seed=3).choose(IDS) < ten  # a prefix of one permutation
    assert MixedSupervision(count=7, seed=3).choose(list(reversed(IDS))) == (
        MixedSupervision(count=7, seed=3).choose(IDS)
    )
    with pytest.raises(ValueError, match="41"):
        MixedSupervision(count=41).choose(IDS)


def test_ids_file(tmp_path: Path):
    path = tmp_path / "pp.txt"
    path.write_text("# images with masks\n0003\n\n0017  # checked\n")
    assert MixedSupervision(ids_file=str(path)).choose(IDS) == {"0003", "0017"}
    path.write_text("0003\nnope\n")
    with pytest.raises(ValueError, match="nope"):
        MixedSupervision(ids_file=str(path)).choose(IDS)


@pytest.mark.parametrize("kwargs", [{}, {"fraction": 0.2, "count": 3}, {"count": 2, "chance": 2}])
def test_bad_choices_are_refused(kwargs):
    with pytest.raises(ValueError):
        MixedSupervision(**kwargs)


def flags(n_pp: int, n: int) -> list[bool]:
    return [i < n_pp for i in range(n)]


def test_sampler_pp_share_and_determinism():
    s = MixedSupervisionSampler(flags(10, 1000), chance=0.25, seed=0)
    draws = np.array(list(s))
    assert len(draws) == len(s) == 1000
    share = (draws < 10).mean()
    assert 0.21 < share < 0.29  # 250 expected, binomial sd 14
    assert list(s) == draws.tolist()  # same epoch, same draws
    s.set_epoch(1)
    assert list(s) != draws.tolist()


def test_sampler_walks_each_pool_without_repeats():
    draws = MixedSupervisionSampler(flags(5, 60), chance=0.5, seed=1).draws()
    for pool in (list(range(5)), list(range(5, 60))):
        mine = [d for d in draws if d in pool]
        for k in range(0, len(mine), len(pool)):
            chunk = mine[k : k + len(pool)]
            assert len(set(chunk)) == len(chunk)  # no repeat before the pool is used up
            if len(chunk) == len(pool):
                assert sorted(chunk) == pool
    assert (draws < 5).sum() > 5  # the PP pool went round more than once


def test_sampler_ranks_and_resume():
    one = MixedSupervisionSampler(flags(4, 20), chance=0.25, seed=2)
    ranks = [MixedSupervisionSampler(flags(4, 20), 0.25, world_size=2, rank=r, seed=2)
             for r in range(2)]  # fmt: skip
    everything = one.draws()
    assert list(ranks[0]) == everything[0::2].tolist()
    assert list(ranks[1]) == everything[1::2].tolist()
    ranks[0].start = 3
    assert len(ranks[0]) == 7 and list(ranks[0]) == everything[0::2][3:].tolist()


def test_sampler_chance_one_draws_only_pp():
    assert set(MixedSupervisionSampler(flags(3, 30), chance=1.0)) == {0, 1, 2}
    assert set(MixedSupervisionSampler(flags(30, 30), chance=0.25)) == set(range(30))
    with pytest.raises(ValueError):
        MixedSupervisionSampler(flags(0, 30), chance=0.25)


def mixed_dataset(spec: str = "synthetic:8", chance: float = 0.25) -> TrainingDataset:
    transform = TrainTransform(64, 1.0, 1.0, False, 0.0)
    mixed = MixedSupervision(count=3, seed=0, chance=chance)
    return TrainingDataset(open_dataset(spec), "mixed", transform, mixed=mixed)


def test_mixed_targets_masks_for_pp_boxes_for_bb():
    data = mixed_dataset()
    assert len(data.labelled) == 3 and "3 of 8" in data.describe()
    raw = open_dataset("synthetic:8")
    for sample in raw:
        target = data.target(sample, sample.boxes, sample.box_labels)
        boxes = box_label_map(sample.boxes, sample.box_labels, sample.height, sample.width)
        expected = sample.mask if sample.id in data.labelled else boxes
        assert np.array_equal(target, expected)
    assert not np.array_equal(sample.mask, boxes)  # the two differ, so the check means something


def test_loader_uses_the_pp_sampler_and_batches_carry_the_flag():
    data = mixed_dataset(chance=1.0)
    loader = training_loader(data, batch_size=2, workers=0)
    assert isinstance(loader.sampler, MixedSupervisionSampler)
    batches = list(itertools.islice(epoch_iterator(loader, 0), 2))
    for batch in batches:
        assert batch["labelled"].all() and set(batch["id"]) <= data.labelled
    plain = training_loader(mixed_dataset(chance=0.0), batch_size=4, workers=0)
    batch = next(epoch_iterator(plain, 0))
    assert not isinstance(plain.sampler, MixedSupervisionSampler)
    assert [i in plain.dataset.labelled for i in batch["id"]] == batch["labelled"].tolist()


def test_semi_with_pp_chance_shares_the_choice_and_sampler():
    from weakseg.methods import build_method

    semi = build_method("semi", {"labelled_fraction": 0.25, "labelled_seed": 1, "pp_chance": 0.5})
    ours = build_method("uncertainty", {"labelled_fraction": 0.25, "labelled_seed": 1})
    assert semi.mixed.choose(IDS) == ours.mixed.choose(IDS) == choose_labelled(IDS, 0.25, 1)
    assert build_method("semi", {}).mixed is None  # the plain shuffle stays the default


def test_binary_dataset_one_class_against_background():
    inner, binary = open_dataset("synthetic:6"), open_dataset("binary:ring:synthetic:6")
    assert binary.classes.names == ("background", "ring") and binary.ids == inner.ids
    ring = inner.classes.index("ring")
    for a, b in zip(inner, binary, strict=True):
        expected = np.where(a.mask == 255, 255, (a.mask == ring).astype(np.uint8))
        assert np.array_equal(b.mask, expected)
        assert np.array_equal(b.boxes, a.boxes[a.box_labels == ring])
        assert (b.box_labels == 1).all()
    assert any((a.box_labels != ring).any() for a in inner)  # other classes were dropped
    with pytest.raises(ValueError, match="ellipse"):
        open_dataset("binary:zebra:synthetic:6")
    assert open_dataset(binary.spec).spec == binary.spec
