"""A directory of label maps: ``DIR/<id>.png`` (+ ``DIR/<map>/<id>.png`` for extra maps),
``DIR/meta.json`` (provenance) and ``DIR/runs.jsonl`` (one summary line per run).

Every PNG is written to a temporary file and renamed into place, and the main map is written
last, so an id counts as done exactly when ``DIR/<id>.png`` exists: a run killed at any moment
leaves only whole files, and the next run skips what is done and finishes the rest.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

import weakseg
from weakseg.viz.palette import read_label_png, save_label_png

MAIN_MAP = "labels"


class LabelStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, sample_id: str, map_name: str = MAIN_MAP) -> Path:
        if map_name == MAIN_MAP:
            return self.root / f"{sample_id}.png"
        return self.root / map_name / f"{sample_id}.png"

    def has(self, sample_id: str) -> bool:
        return self.path(sample_id).exists()

    def done_ids(self) -> set[str]:
        return {p.stem for p in self.root.glob("*.png")} if self.root.is_dir() else set()

    def write(self, sample_id: str, maps: dict[str, np.ndarray]) -> None:
        """Write all maps of one sample atomically, the main map last (it marks the id done)."""
        for name in sorted(maps, key=lambda n: n == MAIN_MAP):
            path = self.path(sample_id, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            save_label_png(path, maps[name])

    def read(self, sample_id: str, map_name: str = MAIN_MAP) -> np.ndarray:
        return read_label_png(self.path(sample_id, map_name))

    # -- provenance ------------------------------------------------------------------------
    def meta(self) -> dict | None:
        path = self.root / "meta.json"
        return json.loads(path.read_text()) if path.exists() else None

    def claim(self, generator: str, params: dict, dataset: str) -> dict:
        """Record what makes these labels, or check that an existing directory was made the same
        way: resuming with another generator or other parameters would mix two kinds of labels."""
        wanted = {"generator": generator, "params": params}
        meta = self.meta()
        if meta is not None:
            found = {"generator": meta.get("generator"), "params": meta.get("params")}
            if json.dumps(found, sort_keys=True) != json.dumps(wanted, sort_keys=True):
                raise ValueError(
                    f"{self.root} already holds labels made by {found}; this run would make "
                    f"{wanted}. Use another --out directory (or delete this one) instead of "
                    "mixing two kinds of labels."
                )
            return meta
        meta = {
            **wanted,
            "dataset": dataset,
            "weakseg_version": weakseg.__version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "host": platform.node(),
        }
        self.root.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.root / "meta.json", meta)
        return meta

    def log_run(self, summary: dict) -> None:
        """Append one run's summary line (a single small write, so lines never interleave)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "runs.jsonl", "a") as f:
            f.write(json.dumps(summary, sort_keys=True) + "\n")


def write_json_atomic(path: str | Path, data: dict) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
