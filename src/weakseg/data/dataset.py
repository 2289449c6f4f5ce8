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

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> Sample:
        return self.load(self.ids[index])

    def __iter__(self) -> Iterator[Sample]:
        for sample_id in self.ids:
            yield self.load(sample_id)
