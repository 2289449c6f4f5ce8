"""Feature cache of a frozen encoder: the CPU training protocol's main lever.

With the encoder frozen (``model.freeze``), its maps for a given training crop never change, so
they are computed once. For each training image, ``data.cache_views`` (K) augmented views are run
through the frozen part in batches: view k of image i is exactly the crop that
``TrainingDataset`` makes in epoch k with seed ``data.cache_seed`` (the augmentation is a pure
function of (seed, epoch, index)). The maps the rest of the network reads
(``Segmenter.cached_levels``) are stored in fp16. Training then reads epoch e's crop of image i
from view e mod K, and the crop's target, boxes and image are made on the fly by replaying the
same augmentation, so one cache serves every method and every label source (masks, boxes, pseudo
labels) and the crop geometry is part of what is cached.

Where: ``<cache_dir>/<key>/``. The key hashes everything the maps depend on: encoder name, a
digest of the frozen weights, output stride, freeze point, cached levels, dataset spec and a
digest of its ids, the transform's settings, cache_seed and K. A change of any of them is another
key, so another cache; every row of a benchmark table and every later run with the same key
reuses it. One ``level<l>.npy`` per cached level, shape (K * N) x C x h x w fp16, row k * N + i,
read into memory when the whole cache fits ``data.cache_memory_gb`` and memory-mapped from disk
otherwise. A build writes ``<key>.partial/`` under a lock file and renames it when complete: a
killed build leaves nothing half-made, and two processes never build the same cache twice (the
second waits, then reads).

What the cache gives up: fresh augmentation. A run sees K fixed crops of each image (scale, crop
window, flip and colour jitter drawn once per view) instead of a new random crop every epoch;
benchmarks/RESULTS.md measures quality against K.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from weakseg.data.training import TrainingDataset, collate_training
from weakseg.progress import progress_bar

FORMAT_VERSION = 1


def default_cache_dir() -> Path:
    """``$WEAKSEG_CACHE_DIR`` if set, else ``~/.cache/weakseg/features``."""
    env = os.environ.get("WEAKSEG_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "weakseg" / "features"


def cache_identity(model, data: TrainingDataset, views: int) -> dict:
    """Everything the cached maps depend on (its hash is the cache's key)."""
    t = data.transform
    return {
        "format": FORMAT_VERSION,
        "encoder": model.encoder.name,
        "weights": frozen_weights_digest(model.encoder),
        "strides": list(model.encoder.strides),
        "frozen_levels": model.encoder.frozen_levels,
        "levels": list(model.cached_levels()),
        # the images' spec: binary:CLASS:SPEC shares SPEC's cache (labels are never cached)
        "dataset": data.dataset.image_spec,
        "ids": hashlib.sha256("\n".join(data.dataset.ids).encode()).hexdigest()[:16],
        # "warp" only when set, so the keys of caches made before it existed stay the same
        "transform": [t.crop_size, t.scale_min, t.scale_max, t.flip, t.color_jitter]
        + (["warp"] if getattr(t, "warp", False) else []),
        "seed": data.seed,
        "views": views,
    }


def frozen_weights_digest(encoder) -> str:
    """sha256 over the names and bytes of the frozen modules' parameters and buffers."""
    digest = hashlib.sha256()
    for module in encoder.frozen_modules():
        for name, tensor in module.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


class FeatureCache:
    """The cached maps: ``features(view, index)`` -> {level: C x h x w fp16 tensor}.
    ``build_seconds``: how long the build took (in ``meta.json``); ``built``: whether this
    process built it (False: reused)."""

    def __init__(self, directory: Path, arrays: dict[int, np.ndarray], meta: dict) -> None:
        self.directory, self.arrays = directory, arrays
        self.views, self.count = meta["views"], meta["count"]
        self.build_seconds, self.built = meta.get("build_seconds"), False

    def summary(self) -> dict:
        """What a run's train_summary.json records about the cache it used."""
        return {"directory": str(self.directory), "views": self.views, "mib": self.nbytes / 2**20,
                "build_seconds": self.build_seconds, "built_by_this_run": self.built}  # fmt: skip

    def features(self, view: int, index: int) -> dict[int, torch.Tensor]:
        row = view * self.count + index
        return {lvl: torch.from_numpy(np.array(a[row])) for lvl, a in self.arrays.items()}

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays.values())


def open_cache(
    model,
    data: TrainingDataset,
    views: int,
    root: str | Path = "",
    memory_gb: float = 4.0,
    batch_size: int = 16,
    workers: int = 0,
    progress: bool = True,
) -> FeatureCache:
    """The cache of ``model``'s frozen maps for ``views`` views of ``data`` (seeded by
    ``data.seed``), built first if no cache with the same key exists under ``root``."""
    root = Path(root) if str(root) else default_cache_dir()
    identity = cache_identity(model, data, views)
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]
    directory = root / key
    root.mkdir(parents=True, exist_ok=True)
    built = False
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits here, then reads
        if not (directory / "meta.json").exists():
            _build(model, data, views, identity, directory, batch_size, workers, progress)
            built = True
    cache = _load(directory, memory_gb)
    cache.built = built
    return cache


def _build(model, data, views, identity, directory, batch_size, workers, progress) -> None:
    partial = directory.with_name(directory.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    count, device, start = len(data), next(model.parameters()).device, time.perf_counter()
    arrays: dict[int, np.ndarray] = {}
    bar = progress_bar(total=views * count, desc=f"feature cache ({views} views)", unit="img",
                       enabled=progress)  # fmt: skip
    was_training = model.training
    model.eval()
    try:
        for view in range(views):
            data.set_epoch(view)  # view k = the crops of epoch k
            loader = DataLoader(data, batch_size=batch_size, num_workers=workers,
                                collate_fn=collate_training)  # fmt: skip
            row = view * count
            for batch in loader:
                maps = model.frozen_features(batch["image"].to(device))
                for lvl, m in maps.items():
                    if lvl not in arrays:
                        arrays[lvl] = np.lib.format.open_memmap(
                            partial / f"level{lvl}.npy", mode="w+", dtype=np.float16,
                            shape=(views * count, *m.shape[1:]),
                        )  # fmt: skip
                    arrays[lvl][row : row + len(m)] = m.half().cpu().numpy()
                row += len(batch["id"])
                bar.update(len(batch["id"]))
    finally:
        bar.close()
        model.train(was_training)
    for array in arrays.values():
        array.flush()
    meta = identity | {"count": count, "shapes": {str(k): a.shape for k, a in arrays.items()},
                       "build_seconds": time.perf_counter() - start}  # fmt: skip
    (partial / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    os.replace(partial, directory)


def _load(directory: Path, memory_gb: float) -> FeatureCache:
    meta = json.loads((directory / "meta.json").read_text())
    arrays = {lvl: np.load(directory / f"level{lvl}.npy", mmap_mode="r") for lvl in meta["levels"]}
    if sum(a.nbytes for a in arrays.values()) <= memory_gb * 2**30:
        arrays = {lvl: np.ascontiguousarray(a) for lvl, a in arrays.items()}
    return FeatureCache(directory, arrays, meta)


class CachedViews(torch.utils.data.Dataset):
    """A TrainingDataset whose items also carry the cached frozen maps ("features") of their
    crop: in epoch e, item i is view e mod K of image i (the crop replayed by ``data``, which is
    seeded with the cache's seed). ``seed`` (the training seed) orders the batches."""

    def __init__(self, data: TrainingDataset, cache: FeatureCache, seed: int) -> None:
        if len(data) != cache.count:
            raise ValueError(f"cache {cache.directory} holds {cache.count} images, not {len(data)}")
        self.data, self.cache, self.seed, self.epoch = data, cache, seed, 0

    @property
    def classes(self):
        return self.data.classes

    def __len__(self) -> int:
        return len(self.data)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def describe(self) -> str:
        size = self.cache.nbytes / 2**20
        return (f"{self.data.describe()}; frozen-encoder features of {self.cache.views} views "
                f"per image from {self.cache.directory} ({size:.0f} MiB)")  # fmt: skip

    def __getitem__(self, index: int) -> dict:
        view = self.epoch % self.cache.views
        self.data.set_epoch(view)
        return self.data[index] | {"features": self.cache.features(view, index)}


__all__ = ["CachedViews", "FeatureCache", "cache_identity", "default_cache_dir", "open_cache"]
