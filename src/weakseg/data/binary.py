"""One class against the background: ``binary:CLASS:SPEC`` wraps any dataset spec.

The binary tasks of Neven et al. (section 4.1, CityScapes cars; ours: VOC persons) segment one
class and call everything else background. Wrapping the dataset, rather than remapping inside a
loss, lets every command (labels, train, eval, report) see a 2-class dataset: the class list is
("background", CLASS), a mask becomes 1 on CLASS, 0 on every other class and on background, 255
stays 255; only CLASS's boxes are kept. Every image stays, with or without the class (those
without it are all background). ``weakseg eval`` then reports the binary IoU as CLASS's IoU.
"""

from __future__ import annotations

import numpy as np

from weakseg.data.classes import ClassList
from weakseg.data.dataset import Dataset
from weakseg.data.sample import IGNORE, Sample


class BinaryDataset(Dataset):
    """``inner`` restricted to the class ``class_name`` (index 1) against background (0)."""

    def __init__(self, inner: Dataset, class_name: str) -> None:
        index = inner.classes.index(class_name)
        if not index:  # None (unknown) or 0 (background)
            raise ValueError(
                f"binary:{class_name}: not a foreground class of {inner.spec}; its classes: "
                + ", ".join(inner.classes.names[1:])
            )
        self.inner, self.index = inner, index
        self.ids = inner.ids
        self.classes = ClassList(("background", inner.classes.names[index]))
        self.spec = f"binary:{self.classes.names[1]}:{inner.spec}"

    @property
    def image_spec(self) -> str:
        return self.inner.image_spec  # the same images, so the same feature cache

    @classmethod
    def from_spec(cls, rest: str) -> BinaryDataset:
        from weakseg.data.specs import open_dataset

        class_name, sep, inner = rest.partition(":")
        if not sep or not class_name:
            raise ValueError(f"bad binary spec 'binary:{rest}': use binary:CLASS:SPEC")
        return cls(open_dataset(inner), class_name)

    def load(self, sample_id: str) -> Sample:
        s = self.inner.load(sample_id)
        keep = s.box_labels == self.index
        mask = None
        if s.mask is not None:
            mask = np.where(s.mask == IGNORE, IGNORE, s.mask == self.index).astype(np.uint8)
        return Sample(
            id=s.id, image=s.image, boxes=s.boxes[keep],
            box_labels=np.ones(int(keep.sum()), dtype=np.int64), mask=mask,
            difficult=s.difficult[keep], truncated=s.truncated[keep], source=s.source,
            extra=s.extra,
        )  # fmt: skip


__all__ = ["BinaryDataset"]
