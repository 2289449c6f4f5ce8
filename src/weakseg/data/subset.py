"""Some classes of a dataset: ``classes:LIST:SPEC`` wraps any dataset spec.

LPG's class-split setup (papers/lpg.md: the auxiliary set's classes are disjoint from the
target's) from one dataset: ``classes:1-10:voc:ROOT:dev_train`` gives the masks of VOC classes
1-10 as auxiliary data, ``classes:11-20:voc:ROOT:dev_val`` the boxes of classes 11-20 as the
target. LIST holds class names and/or indices and index ranges, comma-separated
(``1-10``, ``person,car``, ``1,3,5-7``). The class list and indices stay those of SPEC, so labels
and models of a subset line up with the full dataset; only the kept classes' boxes remain, and
mask pixels of the other classes become 255 (ignore): they are neither background nor scored.
"""

from __future__ import annotations

import numpy as np

from weakseg.data.dataset import Dataset
from weakseg.data.sample import IGNORE, Sample


def parse_class_list(text: str, dataset: Dataset) -> list[int]:
    """'1-10' / 'person,car' / '1,3,5-7' -> sorted foreground indices of ``dataset``."""
    names = dataset.classes.names
    kept: set[int] = set()
    for item in filter(None, (part.strip() for part in text.split(","))):
        low, dash, high = item.partition("-")
        if dash and low.isdigit() and high.isdigit():
            indices = range(int(low), int(high) + 1)
        elif item.isdigit():
            indices = range(int(item), int(item) + 1)
        else:
            index = dataset.classes.index(item)
            indices = range(index, index + 1) if index else range(0)
            if not index:
                raise ValueError(
                    f"classes:{text}: {item!r} is not a foreground class of {dataset.spec}; its "
                    "classes: " + ", ".join(names[1:])
                )
        for i in indices:
            if not 1 <= i < len(names):
                raise ValueError(
                    f"classes:{text}: index {i} is outside 1..{len(names) - 1} of {dataset.spec}"
                )
            kept.add(i)
    if not kept:
        raise ValueError(f"classes:{text}: names no class; use e.g. classes:1-10:SPEC")
    return sorted(kept)


class ClassSubsetDataset(Dataset):
    """``inner`` with only the classes ``keep`` (indices of ``inner``'s class list)."""

    def __init__(self, inner: Dataset, keep: list[int], text: str) -> None:
        self.inner, self.keep = inner, np.asarray(keep, dtype=np.int64)
        self.ids = inner.ids
        self.classes = inner.classes
        self.spec = f"classes:{text}:{inner.spec}"

    @property
    def image_spec(self) -> str:
        return self.inner.image_spec  # the same images and crops, so the same feature cache

    @property
    def identity(self) -> str:
        listed = ",".join(map(str, self.keep))
        return f"classes:{listed}:{self.inner.identity}"

    @classmethod
    def from_spec(cls, rest: str) -> ClassSubsetDataset:
        from weakseg.data.specs import open_dataset

        text, sep, inner = rest.partition(":")
        if not sep or not text:
            raise ValueError(f"bad classes spec 'classes:{rest}': use classes:LIST:SPEC")
        dataset = open_dataset(inner)
        return cls(dataset, parse_class_list(text, dataset), text)

    def load(self, sample_id: str) -> Sample:
        s = self.inner.load(sample_id)
        keep = np.isin(s.box_labels, self.keep)
        mask = None
        if s.mask is not None:
            other = (s.mask != 0) & (s.mask != IGNORE) & ~np.isin(s.mask, self.keep)
            mask = np.where(other, IGNORE, s.mask).astype(np.uint8)
        return Sample(
            id=s.id, image=s.image, boxes=s.boxes[keep], box_labels=s.box_labels[keep], mask=mask,
            difficult=s.difficult[keep], truncated=s.truncated[keep], source=s.source,
            extra=s.extra,
        )  # fmt: skip


__all__ = ["ClassSubsetDataset", "parse_class_list"]
