"""Helpers shared by the benchmark scripts: one JSON file per row, machine description."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Iterable
from pathlib import Path

HERE = Path(__file__).parent
DEFAULT_VOC = "../shared/data/voc-dev"  # relative to the repository root, where commands run


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = ""
    try:
        import torch

        if torch.cuda.is_available():
            gpu = f", {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return f"{cpu}, {os.cpu_count()} cores{gpu}"


def train_wall(summary: dict) -> str:
    """A training row's wall time from its train_summary.json; a resumed run says that the time
    covers only the iterations after the resume (the process that finished measured those)."""
    minutes = f"{summary['seconds'] / 60:.1f} min"
    start = summary.get("resumed_from", 0)
    if start:
        minutes += f" (iterations {start}-{summary['iterations']}, resumed)"
    return minutes


def save_row(folder: Path, name: str, row: dict) -> dict:
    """Write one row atomically as folder/name.json, stamped with machine and date."""
    folder.mkdir(parents=True, exist_ok=True)
    row = row | {"machine": machine(), "date": time.strftime("%Y-%m-%d")}
    tmp = folder / f".{name}.json.tmp"
    tmp.write_text(json.dumps(row, indent=2) + "\n")
    tmp.replace(folder / f"{name}.json")
    print(f"row {name}: written", flush=True)
    return row


def load_rows(folder: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def run_rows(
    names: Iterable[str],
    folder: Path,
    make_row: Callable[[str], dict],
    rewrite: Callable[[], None],
    only: list[str] | None = None,
    render_only: bool = False,
) -> None:
    """The loop every table shares: a row already in ``folder`` is skipped unless named in
    ``only``; each new row is saved the moment it exists, then ``rewrite`` redraws RESULTS.md (so
    a table killed half way keeps its finished rows and resumes)."""
    for name in [] if render_only else names:
        if only and name not in only:
            continue
        if (folder / f"{name}.json").exists() and not only:
            print(f"row {name}: already measured, skipped", flush=True)
            continue
        save_row(folder, name, make_row(name))
        rewrite()
    if render_only:
        rewrite()
