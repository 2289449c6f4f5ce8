"""Progress on stderr: a tqdm bar in a terminal, a plain line every few percent elsewhere.

A bar redrawn with carriage returns is unreadable in a CI log or a ``nohup`` file (one line per
update, thousands of them); there :class:`LineProgress` prints one line per ``every`` percent.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO


def progress_bar(
    iterable: Iterable | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    initial: int = 0,
    enabled: bool = True,
    file: TextIO | None = None,
) -> Any:
    """A tqdm bar when ``file`` (default stderr) is a terminal, a :class:`LineProgress`
    otherwise; a silent one when ``enabled`` is False. Both support ``update``, ``set_postfix``,
    ``close`` and iteration."""
    file = file or sys.stderr
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    if not enabled or not file.isatty():
        return LineProgress(iterable, total=total, desc=desc, unit=unit, initial=initial,
                            file=file if enabled else None)  # fmt: skip
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, file=file,
                dynamic_ncols=True)  # fmt: skip


class LineProgress:
    """Prints ``desc: 25% (250/1000 img) 12 s, ETA 36 s`` each time another ``every`` percent
    is done (and at the end); nothing at all when ``file`` is None."""

    def __init__(
        self,
        iterable: Iterable | None = None,
        *,
        total: int | None = None,
        desc: str = "",
        unit: str = "it",
        initial: int = 0,
        file: TextIO | None = None,
        every: float = 5.0,
    ) -> None:
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.n = self._start = initial
        self.file, self.every = file, every
        self._printed = self._step(initial)
        self._t0 = time.perf_counter()
        self._postfix = ""

    def _step(self, n: int) -> int:
        return int(100 * n / self.total // self.every) if self.total else 0

    def __iter__(self) -> Iterator:
        for item in self.iterable or ():
            yield item
            self.update(1)
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        step = self._step(self.n)
        if step > self._printed:
            self._printed = step
            self._print()

    def set_postfix(self, **values: Any) -> None:
        self._postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        if self.file is not None and self.total and self._printed < self._step(self.total):
            self._printed = self._step(self.total)
            self._print()

    def _print(self) -> None:
        if self.file is None:
            return
        elapsed = time.perf_counter() - self._t0
        done = self.n - self._start
        left = (self.total or 0) - self.n
        eta = f", ETA {elapsed / done * left:.0f} s" if done and left > 0 else ""
        percent = 100 * self.n / self.total if self.total else 0
        postfix = f", {self._postfix}" if self._postfix else ""
        line = f"{self.desc}: {percent:3.0f}% ({self.n}/{self.total} {self.unit}) "
        print(f"{line}{elapsed:.0f} s{eta}{postfix}", file=self.file, flush=True)
