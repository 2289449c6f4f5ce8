"""Dataset base class and the error type for bad input.

Readers subclass :class:`Dataset`; :func:`weakseg.data.specs.open_dataset` opens one from a spec
string. This module imports no reader, so readers can import it without a cycle.
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

    @property
    def identity(self) -> str:
        """The dataset's name in a label folder's meta.json: the spec with its paths resolved,
        so ``voc:data`` and ``voc:./data/`` are one dataset while dev_train is not dev_val."""
        return self.spec

    @property
    def image_spec(self) -> str:
        """The spec of the dataset whose images these are (a frozen encoder's feature cache is
        keyed by it): the spec itself, or the inner one for a wrapper that only relabels."""
        return self.spec

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> Sample:
        return self.load(self.ids[index])

    def __iter__(self) -> Iterator[Sample]:
        for sample_id in self.ids:
            yield self.load(sample_id)


class SkippedSamples:
    """Samples left out for bad input, grouped by problem kind: what every command that reads a
    whole dataset (train, eval, eval-labels, fill-rates) reports at the end instead of stopping at
    the first bad file."""

    def __init__(self) -> None:
        self.found: dict[str, list[str]] = {}

    def __len__(self) -> int:
        return sum(len(v) for v in self.found.values())

    def add(self, err: DataError) -> None:
        self.found.setdefault(err.kind, []).append(str(err))

    def load(self, dataset: Dataset, sample_id: str):
        """``dataset.load(sample_id)``, or None after recording its DataError."""
        try:
            return dataset.load(sample_id)
        except DataError as err:
            self.add(err)
            return None

    def describe(self, total: int, examples: int = 3) -> str:
        """'skipped 2 of 10 samples with bad input: 1 x mask size ... (file: problem); ...'."""
        if not self.found:
            return ""
        parts = []
        for kind, where in sorted(self.found.items()):
            shown = "; ".join(where[:examples]) + ("; ..." if len(where) > examples else "")
            parts.append(f"{len(where)} x {kind} ({shown})")
        return f"skipped {len(self)} of {total} samples with bad input: " + " | ".join(parts)


class UsableSubset(Dataset):
    """The samples of ``dataset`` that load, found by loading each once (``skipped`` says why
    the others were left out; ``image_labels`` keeps each usable sample's class indices, for
    class-balanced sampling). Raises DataError when none is usable."""

    def __init__(self, dataset: Dataset):
        self.dataset, self.classes, self.spec = dataset, dataset.classes, dataset.spec
        self.skipped = SkippedSamples()
        self.image_labels: dict[str, tuple[int, ...]] = {}
        for sample_id in dataset.ids:
            sample = self.skipped.load(dataset, sample_id)
            if sample is not None:
                self.image_labels[sample_id] = tuple(int(c) for c in sample.image_labels)
        self.ids = list(self.image_labels)
        if not self.ids and dataset.ids:
            problem = "no usable sample; " + self.skipped.describe(len(dataset))
            raise DataError(dataset.spec, problem)

    @property
    def identity(self) -> str:
        return self.dataset.identity

    @property
    def image_spec(self) -> str:
        return self.dataset.image_spec

    def load(self, sample_id: str) -> Sample:
        return self.dataset.load(sample_id)
