"""Dataset base class, the error type for bad input, and dataset spec strings.

A spec string names a dataset on the command line:

    voc:ROOT[:SPLIT]                       ROOT holds VOC2012/ or is VOC2012/ itself;
                                           SPLIT names ImageSets/Segmentation/SPLIT.txt
    coco:IMAGES_DIR:ANN_JSON[:classes=voc] COCO instances JSON; classes=all|voc|nonvoc
    folder:PATH                            images/ + boxes.json or annotations.json [+ masks/]
    synthetic:N[:seed]                     the deterministic synthetic set (default seed 0)
    binary:CLASS:SPEC                      CLASS of SPEC against the background (2 classes)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

from weakseg.data.classes import ClassList
from weakseg.data.sample import Sample


class DataError(ValueError):
    """A problem with one input file. ``path`` names the file, ``problem`` says what is wrong.

    ``kind`` is a short category ("unreadable image", "unknown class", ...) that ``weakseg doctor``
    counts by; see :mod:`weakseg.data.files` for the kinds the readers use.
    """

    def __init__(self, path: str, problem: str, kind: str = "bad input"):
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem
        self.kind = kind

    def __reduce__(self):
        # Worker processes send errors back pickled; the default would call DataError(message).
        return (type(self), (self.path, self.problem, self.kind))


class Dataset(ABC):
    """An indexable collection of :class:`Sample` with a class list.

    Subclasses set ``self.ids`` and ``self.classes`` and implement :meth:`load`. ``spec`` is the
    string that re-opens the same dataset (worker processes use it instead of pickling).
    """

    ids: list[str]
    classes: ClassList
    spec: str = ""

    @abstractmethod
    def load(self, sample_id: str) -> Sample:
        """Read one sample; raise :class:`DataError` naming the file on bad input."""

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> Sample:
        return self.load(self.ids[index])

    def __iter__(self) -> Iterator[Sample]:
        for sample_id in self.ids:
            yield self.load(sample_id)


def open_dataset(spec: str) -> Dataset:
    """Open a dataset from its spec string (see the module docstring)."""
    kind, _, rest = spec.partition(":")
    if kind == "voc":
        from weakseg.data.voc import VOCDataset

        return VOCDataset.from_spec(rest)
    if kind == "coco":
        from weakseg.data.coco import COCODataset

        return COCODataset.from_spec(rest)
    if kind == "folder":
        from weakseg.data.folder import FolderDataset

        return FolderDataset.from_spec(rest)
    if kind == "binary":
        from weakseg.data.binary import BinaryDataset

        return BinaryDataset.from_spec(rest)
    if kind == "synthetic":
        from weakseg.data.synthetic import SyntheticDataset

        return SyntheticDataset.from_spec(rest)
    raise ValueError(
        f"unknown dataset spec {spec!r}: expected voc:ROOT[:SPLIT], "
        "coco:IMAGES_DIR:ANN_JSON[:classes=voc|nonvoc|all], folder:PATH, synthetic:N[:seed] or "
        "binary:CLASS:SPEC"
    )
