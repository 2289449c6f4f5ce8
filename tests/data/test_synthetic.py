import numpy as np
import pytest

from weakseg.data.specs import open_dataset
from weakseg.data.synthetic import SYNTHETIC_CLASSES, SyntheticDataset, generate_sample
from weakseg.fillrate import fill_rates


def _same(a, b) -> bool:
    return all(
        np.array_equal(getattr(a, f), getattr(b, f))
        for f in ("image", "mask", "boxes", "box_labels")
    )


def test_sample_depends_only_on_seed_and_index():
    small, large = SyntheticDataset(5, seed=3), SyntheticDataset(50, seed=3)
    assert _same(small.load("000004"), large.load("000004"))
    assert _same(small.load("000004"), generate_sample(3, 4))
    assert not _same(small.load("000004"), SyntheticDataset(5, seed=4).load("000004"))
    assert not _same(small.load("000004"), small.load("000003"))


def test_spec_round_trip():
    ds = open_dataset("synthetic:7:2")
    assert isinstance(ds, SyntheticDataset)
    assert (ds.spec, len(ds), ds.ids[-1]) == ("synthetic:7:2", 7, "000006")
    assert open_dataset("synthetic:3").spec == "synthetic:3:0"
    custom = SyntheticDataset(2, seed=1, size=(64, 96), ignore_border=1)
    again = open_dataset(custom.spec)
    assert again.spec == custom.spec and _same(custom[1], again[1])
    with pytest.raises(KeyError):
        ds.load("000007")
    with pytest.raises(ValueError):
        open_dataset("synthetic:abc")


def test_sample_contract():
    ds = SyntheticDataset(40, seed=0)
    counts = []
    for sample in ds:
        assert sample.image.shape == (160, 224, 3) and sample.image.dtype == np.uint8
        assert sample.mask.shape == (160, 224) and sample.mask.dtype == np.uint8
        assert set(np.unique(sample.mask)) <= set(range(len(SYNTHETIC_CLASSES)))
        assert 1 <= len(sample.boxes) <= 4
        assert np.array_equal(sample.image_labels, np.unique(sample.box_labels))
        # every class in the mask has a box of that class
        assert set(np.unique(sample.mask)) - {0} <= set(sample.box_labels.tolist())
        counts.append(len(sample.boxes))
    assert len(set(counts)) >= 3  # the number of objects varies


def test_boxes_are_tight_bounds_of_objects():
    """Every pixel of a class lies inside a box of that class (boxes bound the full shape, so
    they also bound its visible part); an unoccluded object's mask bound equals its box."""
    for sample in SyntheticDataset(40, seed=1):
        for c in np.unique(sample.box_labels):
            inside = np.zeros(sample.mask.shape, dtype=bool)
            for x1, y1, x2, y2 in sample.boxes[sample.box_labels == c].astype(int):
                inside[y1:y2, x1:x2] = True
            assert not np.any((sample.mask == c) & ~inside)
        if len(sample.boxes) == 1:  # nothing occludes it: the mask's bound is the box
            ys, xs = np.nonzero(sample.mask)
            tight = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            assert sample.boxes[0].tolist() == tight


def test_box_fill_rate_is_weak_like_voc():
    rates = np.concatenate(
        [fill_rates(s.boxes, s.box_labels, s.mask) for s in SyntheticDataset(150, seed=0)]
    )
    assert 0.45 < rates.mean() < 0.65
    assert rates.max() < 0.95  # no shape fills its box


def test_objects_differ_in_colour_from_background():
    s = SyntheticDataset(1, seed=0)[0]
    fg, bg = s.image[s.mask > 0].astype(float), s.image[s.mask == 0].astype(float)
    saturation = lambda px: (px.max(1) - px.min(1)).mean()  # noqa: E731
    assert saturation(fg) > saturation(bg) + 60


def test_ignore_border_marks_outlines():
    plain = SyntheticDataset(1, seed=5)[0]
    banded = SyntheticDataset(1, seed=5, ignore_border=2)[0]
    band = banded.mask == 255
    assert band.any() and np.array_equal(banded.mask[~band], plain.mask[~band])
