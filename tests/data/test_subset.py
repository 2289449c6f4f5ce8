"""``classes:LIST:SPEC``: LPG's class split of one dataset (setup b)."""

from __future__ import annotations

import numpy as np
import pytest

from weakseg.data.sample import IGNORE
from weakseg.data.specs import open_dataset


def test_keeps_the_listed_classes_and_ignores_the_others():
    inner = open_dataset("synthetic:6:0")
    sub = open_dataset("classes:1-2,star:synthetic:6:0")
    assert sub.keep.tolist() == [1, 2, 4] and sub.classes.names == inner.classes.names
    for sample_id in inner.ids:
        a, b = inner.load(sample_id), sub.load(sample_id)
        kept = np.isin(a.box_labels, [1, 2, 4])
        assert (b.box_labels == a.box_labels[kept]).all() and len(b.boxes) == kept.sum()
        dropped = np.isin(a.mask, [3, 5])
        assert (b.mask[dropped] == IGNORE).all()
        assert (b.mask[~dropped] == a.mask[~dropped]).all()


@pytest.mark.parametrize(
    "spec, message",
    [
        ("classes:9:synthetic:4", "outside 1..5"),
        ("classes:dragon:synthetic:4", "'dragon' is not a foreground class"),
        ("classes:,:synthetic:4", "names no class"),
        ("classes:1-3", "use classes:LIST:SPEC"),
    ],
)
def test_bad_class_lists_are_named(spec, message):
    with pytest.raises(ValueError, match=message):
        open_dataset(spec)
