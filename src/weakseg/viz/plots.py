"""Matplotlib figures saved as PNG: per-class IoU bars and filling-rate box plots.

Figures are drawn on an Agg canvas directly (no pyplot), so importing this never changes the
user's matplotlib backend and works without a display.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

import numpy as np


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | os.PathLike) -> None:
    """Render to memory, then write atomically through the palette module's helper."""
    from PIL import Image

    from weakseg.viz.palette import atomic_save

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    buffer.seek(0)
    with Image.open(buffer) as image:
        image.load()
        atomic_save(path, image)


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def plot_iou_bars(
    ious_by_method: dict[str, np.ndarray],
    class_names: Sequence[str],
    path: str | os.PathLike,
    title: str = "per-class IoU",
) -> None:
    """Grouped bar chart: per class, one bar per method; the legend gives each method's mIoU.

    Args:
        ious_by_method: method -> num_classes IoU array in [0, 1] (NaN = class absent, no bar).
        class_names: names indexed by class (background included).
        path: PNG to write.
    """
    methods = list(ious_by_method)
    x = np.arange(len(class_names))
    width = 0.8 / max(len(methods), 1)
    fig = _figure(max(6.0, 0.6 * len(class_names) * max(1, len(methods) / 2)), 3.5)
    ax = fig.add_subplot()
    for k, (method, color) in enumerate(zip(methods, _colors(len(methods)), strict=True)):
        iou = np.asarray(ious_by_method[method], dtype=np.float64)
        miou = np.nanmean(iou) if np.isfinite(iou).any() else np.nan
        offset = (k - (len(methods) - 1) / 2) * width
        ax.bar(
            x + offset,
            100 * np.nan_to_num(iou),
            width,
            color=color,
            label=f"{method} ({100 * miou:.1f})",
        )
    ax.set_xticks(x, class_names, rotation=45, ha="right")
    ax.set_ylabel("IoU (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(title="method (mIoU)", fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _save(fig, path)


def plot_fill_rates(
    rates_by_source: dict[str, dict[str, np.ndarray | dict[str, float]]],
    class_names: Sequence[str],
    path: str | os.PathLike,
    title: str = "box filling rate per class",
) -> None:
    """Box plots of per-box filling rates for each class, one colour per source, like
    Box2Seg Fig. 2 / BANA Fig. 4b. Boxes span the quartiles, whiskers min..max.

    Args:
        rates_by_source: source (e.g. "gt", "grabcut") -> class name -> either a 1-D array of
            rates or a statistics dict with q1, median, q3, min, max (as from
            :func:`weakseg.fillrate.fill_rate_stats`).
        class_names: foreground classes to show, in order ("background" is skipped).
        path: PNG to write.
    """
    classes = [c for c in class_names if c != "background"]
    sources = list(rates_by_source)
    width = 0.8 / max(len(sources), 1)
    fig = _figure(max(6.0, 0.5 * len(classes) * max(1, len(sources))), 3.5)
    ax = fig.add_subplot()
    for k, (source, color) in enumerate(zip(sources, _colors(len(sources)), strict=True)):
        offset = (k - (len(sources) - 1) / 2) * width
        stats = [
            (i + offset, _box_stats(rates_by_source[source].get(c))) for i, c in enumerate(classes)
        ]
        stats = [(x, st) for x, st in stats if st is not None]  # classes without boxes: no box
        if stats:
            parts = ax.bxp(
                [st for _, st in stats], positions=[x for x, _ in stats], widths=0.9 * width,
                patch_artist=True, showfliers=False, medianprops={"color": "black"},
            )  # fmt: skip
            for patch in parts["boxes"]:
                patch.set_facecolor(color)
        ax.plot([], [], "s", color=color, label=source)  # legend handle
    ax.set_xticks(np.arange(len(classes)), classes, rotation=45, ha="right")
    ax.set_xlim(-0.5, len(classes) - 0.5)
    ax.set_ylim(0, 1.02)  # room for boxes at exactly 1 (filled boxes)
    ax.set_ylabel("filling rate")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _save(fig, path)


def _box_stats(values: np.ndarray | dict | None) -> dict | None:
    """Matplotlib ``bxp`` statistics from raw values or a quantile dict; None when empty."""
    if values is None:
        return None
    if isinstance(values, dict):
        if not values.get("count", 1) or np.isnan(values["median"]):
            return None
        q = [values[k] for k in ("min", "q1", "median", "q3", "max")]
    else:
        values = np.asarray(values, dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            return None
        q = np.percentile(values, [0, 25, 50, 75, 100])
    return {"whislo": q[0], "q1": q[1], "med": q[2], "q3": q[3], "whishi": q[4]}


__all__ = ["plot_iou_bars", "plot_fill_rates"]


def plot_confusion(
    matrix: np.ndarray, class_names: Sequence[str], path: str | os.PathLike, title: str = ""
) -> None:
    """Row-normalised confusion matrix (rows = ground truth, columns = prediction) as a heatmap;
    the diagonal is each class's recall."""
    matrix = np.asarray(matrix, dtype=np.float64)
    rows = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    n = len(class_names)
    fig = _figure(2.0 + 0.38 * n, 1.5 + 0.38 * n)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), class_names, rotation=90, fontsize=8)
    ax.set_yticks(range(n), class_names, fontsize=8)
    ax.set_xlabel("prediction")
    ax.set_ylabel("ground truth")
    for i in range(n):
        if matrix[i].sum():
            ax.text(i, i, f"{100 * rows[i, i]:.0f}", ha="center", va="center", fontsize=6,
                    color="white" if rows[i, i] > 0.5 else "black")  # fmt: skip
    fig.colorbar(image, ax=ax, fraction=0.04)
    if title:
        ax.set_title(title)
    _save(fig, path)
