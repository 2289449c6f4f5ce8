"""Helpers shared by the benchmark scripts: one JSON file per row, machine description."""

from __future__ import annotations

import json
import os
import platform
import time
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
