"""`weakseg predict`'s ``predictions.json``: per image, the classes present and their pixel share,
so results can be searched (``grep``, ``jq``) without opening a picture."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from weakseg.config import Config
from weakseg.data.specs import open_dataset
from weakseg.pseudo.store import write_json_atomic


def run_class_names(cfg: Config, num_classes: int) -> list[str]:
    """The class names of a run's training dataset, or "class <k>" where that dataset cannot be
    opened here (a model copied to another machine) or its class count differs."""
    try:
        names = list(open_dataset(cfg.data.train).classes.names)
    except (ValueError, OSError):
        names = []
    if len(names) != num_classes:
        names = ["background", *(f"class {k}" for k in range(1, num_classes))]
    return names


def class_shares(labels: np.ndarray, class_names: list[str]) -> dict[str, float]:
    """{class name: fraction of the image's pixels} for every class present, largest first."""
    counts = np.bincount(labels.ravel(), minlength=len(class_names))
    order = np.argsort(-counts, kind="stable")
    total = max(labels.size, 1)
    return {_name(int(c), class_names): round(float(counts[c]) / total, 5)
            for c in order if counts[c]}  # fmt: skip


def _name(index: int, class_names: list[str]) -> str:
    return class_names[index] if index < len(class_names) else f"class {index}"


def write_predictions_json(
    out: str | Path, run_dir: str, class_names: list[str], images: list[dict]
) -> Path:
    """Write ``out/predictions.json``: the run, its class names and one entry per image."""
    path = Path(out) / "predictions.json"
    write_json_atomic(path, {"run_dir": str(run_dir), "classes": class_names, "images": images})
    return path
