"""Confusion-matrix mIoU over a whole split (the contract of DESIGN.md "Evaluation").

Scores are accumulated over every pixel of the split before dividing, never averaged per image.
Ground-truth pixels equal to 255 are not scored. A prediction of 255 (a pseudo label left as
"ignore") is scored as wrong for the ground-truth class and as no class's false positive: it is
counted in ``ConfusionMatrix.unlabelled`` and lowers recall, never raises IoU. Any other
prediction >= num_classes is an error.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from weakseg.data.dataset import DataError, Dataset, SkippedSamples
from weakseg.data.sample import IGNORE


class ConfusionMatrix:
    """num_classes x num_classes pixel counts, rows = ground truth, columns = prediction.

    ``unlabelled[c]`` counts ground-truth-c pixels predicted 255.
    """

    def __init__(self, num_classes: int):
        if not 0 < num_classes < IGNORE:
            raise ValueError(f"num_classes must be in 1..{IGNORE - 1}, got {num_classes}")
        self.num_classes = num_classes
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
        self.unlabelled = np.zeros(num_classes, dtype=np.int64)

    def update(self, pred: np.ndarray, target: np.ndarray) -> ConfusionMatrix:
        """Add one prediction (H x W ints) against its ground truth (H x W, 255 = ignore)."""
        pred, target = np.asarray(pred), np.asarray(target)
        if pred.shape != target.shape:
            raise ValueError(f"prediction shape {pred.shape} != ground truth shape {target.shape}")
        pred, target = pred.reshape(-1).astype(np.int64), target.reshape(-1).astype(np.int64)
        scored = target != IGNORE
        pred, target = pred[scored], target[scored]
        _check_range(target, self.num_classes, "ground truth")
        unlabelled = pred == IGNORE
        _check_range(pred[~unlabelled], self.num_classes, "prediction")
        n = self.num_classes
        self.matrix += np.bincount(
            target[~unlabelled] * n + pred[~unlabelled], minlength=n * n
        ).reshape(n, n)
        self.unlabelled += np.bincount(target[unlabelled], minlength=n)
        return self

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """Add another matrix's counts (from another shard or process) into this one."""
        if other.num_classes != self.num_classes:
            raise ValueError(f"cannot merge {other.num_classes} classes into {self.num_classes}")
        self.matrix += other.matrix
        self.unlabelled += other.unlabelled
        return self

    def iou(self) -> np.ndarray:
        """num_classes float64 IoU = TP / (TP + FP + FN); NaN for a class absent from both the
        prediction and the ground truth."""
        tp = np.diag(self.matrix).astype(np.float64)
        union = self.matrix.sum(0) + self.matrix.sum(1) - tp + self.unlabelled
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, tp / union, np.nan)

    def miou(self) -> float:
        """Mean IoU over the classes that occur (NaN entries skipped); NaN if none does."""
        iou = self.iou()
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")

    def pixel_accuracy(self) -> float:
        """Fraction of scored pixels predicted correctly (NaN before any pixel)."""
        total = self.matrix.sum() + self.unlabelled.sum()
        return float(np.trace(self.matrix) / total) if total else float("nan")

    def to_dict(self, class_names: Sequence[str] | None = None) -> dict:
        """JSON-ready dict: per-class IoU by name (None for NaN), mIoU, accuracy, raw counts."""
        names = (
            list(class_names)
            if class_names is not None
            else [str(i) for i in range(self.num_classes)]
        )
        if len(names) != self.num_classes:
            raise ValueError(f"{len(names)} class names for {self.num_classes} classes")
        return {
            "miou": _json_float(self.miou()),
            "pixel_accuracy": _json_float(self.pixel_accuracy()),
            "iou": {n: _json_float(v) for n, v in zip(names, self.iou(), strict=True)},
            "class_names": names,
            "confusion_matrix": self.matrix.tolist(),
            "unlabelled": self.unlabelled.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> ConfusionMatrix:
        """Rebuild from :meth:`to_dict` output (e.g. an eval JSON file)."""
        matrix = np.asarray(data["confusion_matrix"], dtype=np.int64)
        cm = cls(len(matrix))
        cm.matrix += matrix
        cm.unlabelled += np.asarray(data.get("unlabelled", 0), dtype=np.int64)
        return cm


def _check_range(values: np.ndarray, num_classes: int, what: str) -> None:
    if values.size and (values.min() < 0 or values.max() >= num_classes):
        bad = values[(values < 0) | (values >= num_classes)][0]
        raise ValueError(f"{what} has label {bad}, outside 0..{num_classes - 1} (and not 255)")


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def format_table(
    results: dict[str, np.ndarray | ConfusionMatrix],
    class_names: Sequence[str],
    markdown: bool = False,
    digits: int = 1,
) -> str:
    """Per-class IoU table in percent: one row per class plus mIoU, one column per method.

    Args:
        results: method name -> per-class IoU array (num_classes, NaN = absent) or a matrix.
        class_names: row names, indexed by class.
        markdown: emit a GitHub-markdown table instead of aligned plain text.
        digits: decimals of the percentages; NaN shows as '-'.
    """
    ious = {
        m: r.iou() if isinstance(r, ConfusionMatrix) else np.asarray(r) for m, r in results.items()
    }
    for method, iou in ious.items():
        if len(iou) != len(class_names):
            raise ValueError(f"{method}: {len(iou)} IoU values for {len(class_names)} classes")
    rows = [
        [name, *(_pct(iou[c], digits) for iou in ious.values())]
        for c, name in enumerate(class_names)
    ]
    miou = [
        _pct(np.nanmean(iou) if np.isfinite(iou).any() else np.nan, digits) for iou in ious.values()
    ]
    header = ["class", *ious]
    if markdown:
        lines = [header, ["---", *(["---:"] * len(ious))], *rows, ["**mIoU**", *miou]]
        return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)
    body = [header, *rows, ["mIoU", *miou]]
    widths = [max(len(r[i]) for r in body) for i in range(len(header))]
    fmt = [
        r[0].ljust(widths[0])
        + "".join(f"  {c.rjust(w)}" for c, w in zip(r[1:], widths[1:], strict=True))
        for r in body
    ]
    rule = "-" * len(fmt[0])
    return "\n".join([fmt[0], rule, *fmt[1:-1], rule, fmt[-1]])


def _pct(value: float, digits: int) -> str:
    return "-" if np.isnan(value) else f"{100 * value:.{digits}f}"


@dataclass
class EvalResult:
    """Scores of one label directory against a dataset's ground truth.

    ``missing`` lists ids whose label file does not exist: they are skipped, not scored as
    background, so compare ``scored`` with the split size before trusting the number.
    """

    confusion: ConfusionMatrix
    class_names: list[str]
    label_dir: str
    dataset: str
    scored: int = 0
    missing: list[str] = field(default_factory=list)
    no_ground_truth: int = 0
    skipped: SkippedSamples = field(default_factory=SkippedSamples)

    @property
    def iou(self) -> np.ndarray:
        return self.confusion.iou()

    @property
    def miou(self) -> float:
        return self.confusion.miou()

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "label_dir": self.label_dir,
            "scored": self.scored,
            "missing": len(self.missing),
            "missing_ids": self.missing,
            "no_ground_truth": self.no_ground_truth,
            "skipped_bad_input": self.skipped.found,
            **self.confusion.to_dict(self.class_names),
        }

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The result as JSON text; also written (atomically) to ``path`` if given."""
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        if path is not None:
            path = Path(path)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(text)
            os.replace(tmp, path)
        return text

    def describe(self) -> str:
        """One line: how many images were scored, and which label maps were missing."""
        line = f"mIoU {_pct(self.miou, 1)} over {self.scored} images from {self.label_dir}"
        if self.missing:
            shown = ", ".join(self.missing[:5]) + (", ..." if len(self.missing) > 5 else "")
            line += f"; {len(self.missing)} label maps MISSING and skipped ({shown})"
        if self.no_ground_truth:
            line += f"; {self.no_ground_truth} ids have no ground-truth mask (not scored)"
        if self.skipped:
            line += "\n" + self.skipped.describe(self.scored + len(self.skipped))
        return line

    def summary(self, name: str = "labels", markdown: bool = False) -> str:
        """The per-class table followed by :meth:`describe`."""
        table = format_table({name: self.confusion}, self.class_names, markdown=markdown)
        return f"{table}\n{self.describe()}"


def evaluate_label_dir(
    dataset: Dataset,
    label_dir: str | os.PathLike,
    progress: bool = True,
    ids: Sequence[str] | None = None,
) -> EvalResult:
    """Score ``label_dir/<id>.png`` label maps against the ground-truth masks of ``dataset``.

    Ids without a ground-truth mask are not scored; ids without a label file are skipped and
    listed in ``EvalResult.missing``; samples with bad input (an unreadable image or mask, a
    label map whose size differs from the ground truth: evaluation is on the original image
    size) are skipped and listed in ``EvalResult.skipped``. DataError when nothing was scored.
    """
    from weakseg.progress import progress_bar

    label_dir = Path(label_dir)
    names = list(dataset.classes.names)
    result = EvalResult(ConfusionMatrix(len(names)), names, str(label_dir), dataset.spec)
    ids = list(dataset.ids if ids is None else ids)
    for sample_id in progress_bar(ids, desc="eval", enabled=progress):
        sample = result.skipped.load(dataset, sample_id)
        if sample is None:
            continue
        if sample.mask is None:
            result.no_ground_truth += 1
            continue
        path = label_dir / f"{sample_id}.png"
        if not path.exists():
            result.missing.append(sample_id)
            continue
        try:
            _score_label_map(result.confusion, path, sample_id, sample.mask)
        except DataError as err:
            result.skipped.add(err)
            continue
        result.scored += 1
    if result.scored == 0 and (result.missing or result.skipped):
        problem = f"nothing scored: {len(result.missing)} ids have no label map"
        if result.skipped:
            problem += "; " + result.skipped.describe(len(ids))
        raise DataError(str(label_dir), problem)
    return result


def _score_label_map(cm: ConfusionMatrix, path: Path, sample_id: str, target: np.ndarray) -> None:
    """Add ``path``'s label map to ``cm``; DataError naming it when it is unreadable or its size
    differs from the ground truth."""
    from weakseg.data.files import UNREADABLE_MASK
    from weakseg.viz.palette import read_label_png

    try:
        pred = read_label_png(path)
    except (OSError, ValueError) as err:
        raise DataError(str(path), f"cannot read ({err})", UNREADABLE_MASK) from None
    if pred.shape != target.shape:
        raise DataError(
            str(path),
            f"label map is {pred.shape[1]}x{pred.shape[0]} (WxH) but the ground truth of "
            f"{sample_id} is {target.shape[1]}x{target.shape[0]}; evaluation is at the "
            "original image size",
        )
    try:
        cm.update(pred, target)
    except ValueError as err:  # names the file; the message says whether pred or gt is bad
        raise DataError(str(path), f"{sample_id}: {err}") from err


__all__ = ["ConfusionMatrix", "EvalResult", "evaluate_label_dir", "format_table"]
