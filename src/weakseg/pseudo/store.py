"""A directory of label maps: ``DIR/<id>.png`` (+ ``DIR/<map>/<id>.png`` for extra maps),
``DIR/meta.json`` (provenance) and ``DIR/runs.jsonl`` (one summary line per run).

Every PNG is written to a temporary file and renamed into place, and the main map is written
last, so an id counts as done exactly when ``DIR/<id>.png`` exists: a run killed at any moment
leaves only whole files, and the next run skips what is done and finishes the rest.

``meta.json`` records the generator, its parameters and the dataset's identity (its spec with
paths resolved); a run that differs in any of them is refused. The check holds an exclusive lock
(``DIR/.meta.lock``), so two runs started at once cannot both claim the folder, and each shard
of a running ``weakseg labels`` holds ``DIR/.lock-shard-I-of-N`` while it works, so the same
command started twice stops at once instead of doing all the work twice. The locks are
``flock`` locks: the kernel drops them when their process dies, even by SIGKILL.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

import weakseg
from weakseg.data.files import check_sample_id
from weakseg.outputs import umask_mode
from weakseg.viz.palette import read_label_png, save_label_png

MAIN_MAP = "labels"


class LabelStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, sample_id: str, map_name: str = MAIN_MAP) -> Path:
        check_sample_id(sample_id, str(self.root))  # ids are file names: never a path
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

    def claim(self, generator: str, params: dict, dataset: str, identity: str = "") -> dict:
        """Record what makes these labels, or check that an existing directory was made the same
        way: resuming with another generator, other parameters or another dataset would mix two
        kinds of labels. ``identity`` names the dataset independently of how its spec was
        written (:attr:`weakseg.data.dataset.Dataset.identity`); it defaults to ``dataset``."""
        wanted = {"generator": generator, "params": params, "dataset": identity or dataset}
        self.root.mkdir(parents=True, exist_ok=True)
        with _locked(self.root / ".meta.lock", wait=True):
            meta = self.meta()
            if meta is not None:
                _check_same(self.root, meta, wanted)
                return meta
            meta = {
                "generator": generator,
                "params": params,
                "dataset": dataset,
                "dataset_identity": identity or dataset,
                "weakseg_version": weakseg.__version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "host": platform.node(),
            }
            write_json_atomic(self.root / "meta.json", meta)
        return meta

    @contextlib.contextmanager
    def working(self, shard: tuple[int, int]) -> Iterator[None]:
        """Hold this shard's run lock; ValueError at once if another process holds it."""
        self.root.mkdir(parents=True, exist_ok=True)
        name = f".lock-shard-{shard[0]}-of-{shard[1]}"
        try:
            with _locked(self.root / name, wait=False):
                yield
        except BlockingIOError:
            raise ValueError(
                f"another `weakseg labels` run is already labelling shard {shard[0]}/{shard[1]} "
                f"into {self.root}; wait for it to finish (or label another --shard)"
            ) from None

    def log_run(self, summary: dict) -> None:
        """Append one run's summary line (a single small write, so lines never interleave)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "runs.jsonl", "a") as f:
            f.write(json.dumps(summary, sort_keys=True) + "\n")


def _check_same(root: Path, meta: dict, wanted: dict) -> None:
    """ValueError unless ``meta`` was made by ``wanted`` (generator, params, dataset)."""
    found = {
        "generator": meta.get("generator"),
        "params": meta.get("params"),
        "dataset": meta.get("dataset_identity", meta.get("dataset")),
    }
    if json.dumps(found, sort_keys=True) != json.dumps(wanted, sort_keys=True):
        raise ValueError(
            f"{root} already holds labels made by {found}; this run would make "
            f"{wanted}. Use another --out directory (or delete this one) instead of "
            "mixing two kinds of labels."
        )


@contextlib.contextmanager
def _locked(path: Path, wait: bool) -> Iterator[None]:
    """An exclusive flock on ``path``; BlockingIOError when ``wait`` is False and it is held."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def write_json_atomic(path: str | Path, data: dict) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.chmod(tmp, umask_mode())  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
