"""Box filling rates: how much of each box its object covers (Box2Seg Fig. 2, BANA Fig. 4b).

The filling rate of a box is the fraction of the box's pixels that carry the box's class in a label
map (ground truth or pseudo labels). Each box is measured over its own pixel region, whatever
other boxes overlap it: pixels of its class count even when they belong to another instance of
that class, pixels of an occluding object of another class do not. Ignore pixels (255) count as
"not the class" (they stay in the denominator), so a generator cannot raise its fill rate by
marking a box as ignore; pass ``exclude_ignore=True`` to leave them out of the box area instead.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from weakseg.data.boxes import pixel_box
from weakseg.data.dataset import DataError, Dataset, SkippedSamples
from weakseg.data.sample import IGNORE, Sample
from weakseg.progress import progress_bar

STAT_KEYS = ("min", "q1", "median", "q3", "max")  # the quantiles summarize_fill_rates reports


def fill_rates(
    boxes: np.ndarray, box_labels: np.ndarray, label_map: np.ndarray, exclude_ignore: bool = False
) -> np.ndarray:
    """Per-box filling rate.

    Args:
        boxes: K x 4 (x1, y1, x2, y2), 0-based, x2/y2 exclusive.
        box_labels: K class indices.
        label_map: H x W uint8.
        exclude_ignore: leave 255 pixels out of the box area (default: they count as misses).

    Returns:
        K float64 rates in [0, 1]; NaN for a box with no pixels inside the image.
    """
    height, width = label_map.shape
    rates = np.full(len(box_labels), np.nan)
    for k, (box, label) in enumerate(
        zip(np.asarray(boxes).reshape(-1, 4), box_labels, strict=True)
    ):
        x1, y1, x2, y2 = pixel_box(box, height, width)
        region = label_map[y1:y2, x1:x2]
        area = region.size - (np.count_nonzero(region == IGNORE) if exclude_ignore else 0)
        if area > 0:
            rates[k] = np.count_nonzero(region == label) / area
    return rates


def fill_rates_by_class(
    dataset: Dataset,
    label_dir: str | os.PathLike | None = None,
    exclude_ignore: bool = False,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Filling rates of every box of ``dataset``, grouped by class name.

    Label maps come from ``label_dir/<id>.png`` or, with ``label_dir=None``, from the ground-truth
    masks. Ids without a label map (missing file or no ground truth) and samples with bad input
    are skipped with a warning; DataError when every sample is bad. Classes without boxes map to
    empty arrays.
    """
    per_class: list[list[float]] = [[] for _ in dataset.classes.names]
    skipped, bad = [], SkippedSamples()
    for sample_id in progress_bar(dataset.ids, desc="fill rates", enabled=progress):
        sample = bad.load(dataset, sample_id)
        if sample is None:
            continue
        label_map = _label_map(sample, label_dir)
        if label_map is None:
            skipped.append(sample_id)
            continue
        rates = fill_rates(sample.boxes, sample.box_labels, label_map, exclude_ignore)
        for label, rate in zip(sample.box_labels, rates, strict=True):
            if not np.isnan(rate):
                per_class[int(label)].append(float(rate))
    if bad and len(bad) == len(dataset.ids):
        raise DataError(dataset.spec, "no usable sample; " + bad.describe(len(dataset.ids)))
    if bad:
        warnings.warn(bad.describe(len(dataset.ids)), stacklevel=2)
    if skipped:
        source = label_dir if label_dir is not None else "ground truth"
        warnings.warn(
            f"fill rates: {len(skipped)} of {len(dataset.ids)} ids have no label map in "
            f"{source} and were skipped (first: {', '.join(skipped[:5])})",
            stacklevel=2,
        )
    names = dataset.classes.names
    return {names[c]: np.array(per_class[c]) for c in range(1, len(names))}


def _label_map(sample: Sample, label_dir: str | os.PathLike | None) -> np.ndarray | None:
    """The ground-truth mask (label_dir None) or ``label_dir/<id>.png``; None when absent."""
    if label_dir is None:
        return sample.mask
    from weakseg.viz.palette import read_label_png

    path = Path(label_dir) / f"{sample.id}.png"
    return read_label_png(path) if path.exists() else None


def summarize_fill_rates(rates_by_class: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per class: count, mean, min, q1, median, q3, max of the filling rates (NaN statistics for a
    class without boxes), plus an ``"all"`` entry pooling every box."""
    pooled = [r for r in rates_by_class.values() if len(r)]
    entries = {**rates_by_class, "all": np.concatenate(pooled) if pooled else np.array([])}
    stats = {}
    for name, rates in entries.items():
        quantiles = np.percentile(rates, [0, 25, 50, 75, 100]) if len(rates) else [np.nan] * 5
        mean = float(np.mean(rates)) if len(rates) else float("nan")
        stats[name] = {
            "count": len(rates),
            "mean": mean,
            **{k: float(v) for k, v in zip(STAT_KEYS, quantiles, strict=True)},
        }
    return stats


def fill_rate_stats(
    dataset: Dataset,
    label_dir: str | os.PathLike | None = None,
    exclude_ignore: bool = False,
    progress: bool = False,
) -> dict[str, dict[str, float]]:
    """Per-class filling-rate statistics of a label directory (or the ground truth if None)."""
    return summarize_fill_rates(fill_rates_by_class(dataset, label_dir, exclude_ignore, progress))


def format_fill_rates(
    stats_by_source: dict[str, dict[str, dict[str, float]]],
    class_names: Sequence[str],
    markdown: bool = False,
) -> str:
    """Table of mean / median filling rate per class (rows) and source (columns), with a final
    row of box counts. ``stats_by_source`` maps a source to :func:`fill_rate_stats` output."""
    names = [c for c in class_names if c != "background"] + ["all"]
    header = ["class", *(f"{src} mean/median" for src in stats_by_source)]
    rows = [[c, *(_mean_median(s.get(c)) for s in stats_by_source.values())] for c in names]
    counts = ["boxes", *(str(s.get("all", {}).get("count", 0)) for s in stats_by_source.values())]
    table = [header, *rows, counts]
    if markdown:
        table.insert(1, ["---", *(["---:"] * len(stats_by_source))])
        return "\n".join("| " + " | ".join(r) + " |" for r in table)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    return "\n".join(
        r[0].ljust(widths[0])
        + "".join(f"  {c.rjust(w)}" for c, w in zip(r[1:], widths[1:], strict=True))
        for r in table
    )


def _mean_median(stats: dict[str, float] | None) -> str:
    if not stats or not stats["count"]:
        return "-"
    return f"{stats['mean']:.2f} / {stats['median']:.2f}"


def plot_fill_rates(
    rates_by_source: dict[str, dict[str, np.ndarray | dict[str, float]]],
    class_names: Sequence[str],
    path: str | os.PathLike,
) -> None:
    """Box plot of filling rates per class, one colour per source (e.g. gt, grabcut, crf), saved
    as a PNG. Per class, give either the raw rates or :func:`fill_rate_stats` statistics. See
    :func:`weakseg.viz.plots.plot_fill_rates`."""
    from weakseg.viz.plots import plot_fill_rates as _plot

    _plot(rates_by_source, class_names, path)


__all__ = [
    "fill_rates", "fill_rates_by_class", "summarize_fill_rates", "fill_rate_stats",
    "format_fill_rates", "plot_fill_rates", "STAT_KEYS",
]  # fmt: skip
