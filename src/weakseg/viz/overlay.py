"""Label maps blended over images, boxes with class names, titled side-by-side strips, and a
legend of the classes a picture shows."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import cv2
import numpy as np
from PIL import Image

from weakseg.viz.palette import IGNORE, VOC_PALETTE, atomic_save, colorize

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def overlay(
    image: np.ndarray,
    label_map: np.ndarray,
    alpha: float = 0.5,
    boxes: np.ndarray | None = None,
    box_labels: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
) -> np.ndarray:
    """Blend a colourised label map over an image and optionally draw boxes.

    Background (0) pixels keep the image untouched so the scene stays readable; classes and ignore
    (255) are blended with weight ``alpha``.

    Args:
        image: H x W x 3 uint8 RGB.
        label_map: H x W integer labels (or None to draw only boxes).
        boxes: K x 4 (x1, y1, x2, y2), 0-based, x2/y2 exclusive; drawn in the class colour.
        box_labels: K class indices (needed with ``boxes``).
        class_names: names indexed by class, written on each box; indices are written otherwise.

    Returns:
        H x W x 3 uint8 RGB.
    """
    out = np.asarray(image, dtype=np.uint8).copy()
    if label_map is not None:
        if label_map.shape != out.shape[:2]:
            raise ValueError(f"label map {label_map.shape} does not match image {out.shape[:2]}")
        shown = label_map != 0
        blend = (1 - alpha) * out[shown] + alpha * colorize(label_map)[shown].astype(np.float32)
        out[shown] = np.clip(blend + 0.5, 0, 255).astype(np.uint8)
    if boxes is not None:
        if box_labels is None:
            raise ValueError("box_labels are needed to draw boxes")
        for box, label in zip(np.asarray(boxes).reshape(-1, 4), box_labels, strict=True):
            name = class_names[int(label)] if class_names is not None else str(int(label))
            draw_box(out, box, name, tuple(int(v) for v in VOC_PALETTE[int(label)]))
    return out


def heatmap(image: np.ndarray, values: np.ndarray, weight: float = 0.6) -> np.ndarray:
    """Blend ``values`` (H x W in [0, 1]) as a JET colour map over ``image`` (H x W x 3 RGB)."""
    scaled = np.clip(values * 255.0 + 0.5, 0, 255).astype(np.uint8)
    colours = cv2.cvtColor(cv2.applyColorMap(scaled, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    blend = (1 - weight) * image.astype(np.float32) + weight * colours.astype(np.float32)
    return np.clip(blend + 0.5, 0, 255).astype(np.uint8)


def draw_box(image: np.ndarray, box: np.ndarray, text: str, color: tuple[int, int, int]) -> None:
    """Draw one end-exclusive box and a filled caption with ``text`` into ``image`` in place."""
    height, width = image.shape[:2]
    x1, y1 = int(np.floor(box[0])), int(np.floor(box[1]))
    x2, y2 = int(np.ceil(box[2])) - 1, int(np.ceil(box[3])) - 1  # cv2 corners are inclusive
    cv2.rectangle(image, (x1, y1), (x2, y2), color, 1)
    (tw, th), base = cv2.getTextSize(text, _FONT, 0.4, 1)
    # Caption above the box, or inside its top edge when the box touches the image top.
    ty = y1 - 2 if y1 - th - base - 2 >= 0 else min(y1 + th + 2, height - base)
    tx = int(np.clip(x1, 0, max(width - tw - 2, 0)))
    cv2.rectangle(image, (tx, ty - th - 2), (tx + tw + 2, ty + base - 1), color, -1)
    cv2.putText(image, text, (tx + 1, ty - 1), _FONT, 0.4, _text_color(color), 1, cv2.LINE_AA)


def _text_color(background: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black on light colours, white on dark (Rec. 601 luma)."""
    r, g, b = background
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 128 else (255, 255, 255)


def side_by_side(
    panels: Sequence[tuple[str, np.ndarray]], pad: int = 4, title_height: int = 18
) -> np.ndarray:
    """A white strip of panels left to right with a title above each (image | gt | method ...).

    Args:
        panels: (title, H_i x W_i x 3 uint8) pairs; shorter panels are top-aligned.
        pad: white pixels between and around panels.
        title_height: height of the title row in pixels.

    Returns:
        (title_height + max H_i + 2 pad) x (sum W_i + (n + 1) pad) x 3 uint8.
    """
    if not panels:
        raise ValueError("side_by_side needs at least one panel")
    height = max(p.shape[0] for _, p in panels)
    width = sum(p.shape[1] for _, p in panels) + pad * (len(panels) + 1)
    strip = np.full((title_height + height + 2 * pad, width, 3), 255, dtype=np.uint8)
    x = pad
    for title, panel in panels:
        h, w = panel.shape[:2]
        text = _fit_text(title, w)
        baseline_y = pad + title_height - 5
        cv2.putText(strip, text, (x, baseline_y), _FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        strip[pad + title_height : pad + title_height + h, x : x + w] = _as_rgb(panel)
        x += w + pad
    return strip


def stack_rows(rows: Sequence[np.ndarray], pad: int = 4) -> np.ndarray:
    """Stack strips (e.g. from :func:`side_by_side`) top to bottom on white, left-aligned."""
    width = max(r.shape[1] for r in rows)
    height = sum(r.shape[0] for r in rows) + pad * (len(rows) - 1)
    out = np.full((height, width, 3), 255, dtype=np.uint8)
    y = 0
    for row in rows:
        out[y : y + row.shape[0], : row.shape[1]] = row
        y += row.shape[0] + pad
    return out


def classes_shown(maps: Iterable[np.ndarray | None], extra: Iterable[int] = ()) -> list[int]:
    """Sorted class indices an overlay paints: those in ``maps`` (e.g. label maps) and ``extra``
    (e.g. box labels), without background (0), which overlays leave unpainted."""
    found = {int(c) for c in extra}
    for m in maps:
        if m is not None:
            found.update(int(c) for c in np.unique(m))
    found.discard(0)
    return sorted(found)


def legend(
    classes: Sequence[int], class_names: Sequence[str], width: int, pad: int = 4, row: int = 18
) -> np.ndarray:
    """A white strip ``width`` pixels wide naming each class with a swatch of its VOC colour,
    wrapped into as many rows as needed; 255 is "ignore". H x width x 3 uint8 RGB."""
    entries = []
    for c in classes:
        name = "ignore" if c == IGNORE else (class_names[c] if c < len(class_names) else f"{c}")
        text = _fit_text(name, max(width - 2 * pad - row, 8))
        text_width = cv2.getTextSize(text, _FONT, 0.45, 1)[0][0]
        entries.append((c, text, row + text_width + 3 * pad))
    lines: list[list[tuple[int, str, int]]] = [[]]
    used = pad
    for entry in entries:
        if lines[-1] and used + entry[2] > width:
            lines.append([])
            used = pad
        lines[-1].append(entry)
        used += entry[2]
    strip = np.full((pad + row * len(lines), width, 3), 255, dtype=np.uint8)
    for k, line in enumerate(lines):
        x, y = pad, pad + k * row
        for c, text, advance in line:
            colour = tuple(int(v) for v in VOC_PALETTE[c])
            cv2.rectangle(strip, (x, y + 2), (x + row - 6, y + row - 4), colour, -1)
            cv2.rectangle(strip, (x, y + 2), (x + row - 6, y + row - 4), (0, 0, 0), 1)
            cv2.putText(strip, text, (x + row, y + row - 5), _FONT, 0.45, (0, 0, 0), 1,
                        cv2.LINE_AA)  # fmt: skip
            x += advance
    return strip


def with_legend(
    picture: np.ndarray,
    maps: Iterable[np.ndarray | None],
    class_names: Sequence[str],
    extra: Iterable[int] = (),
) -> np.ndarray:
    """``picture`` with a legend below of every class in ``maps`` and ``extra`` (see
    :func:`classes_shown`); a picture that shows no class gets the line "background only"."""
    classes = classes_shown(maps, extra)
    if classes:
        strip = legend(classes, class_names, picture.shape[1])
    else:
        strip = np.full((22, picture.shape[1], 3), 255, dtype=np.uint8)
        cv2.putText(strip, _fit_text("background only", picture.shape[1] - 8), (4, 16), _FONT,
                    0.45, (0, 0, 0), 1, cv2.LINE_AA)  # fmt: skip
    return np.concatenate([_as_rgb(picture), strip], axis=0)


def _fit_text(text: str, width: int) -> str:
    """Shorten ``text`` with '..' until it fits ``width`` pixels."""
    while len(text) > 1 and cv2.getTextSize(text, _FONT, 0.45, 1)[0][0] > width:
        text = text[:-3] + ".." if len(text) > 3 else text[:-1]
    return text


def _as_rgb(panel: np.ndarray) -> np.ndarray:
    """H x W (grey) or H x W x 3 -> H x W x 3 uint8."""
    panel = np.asarray(panel)
    if panel.ndim == 2:
        panel = np.repeat(panel[..., None], 3, axis=2)
    return panel.astype(np.uint8, copy=False)


def save_png(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Write an H x W x 3 uint8 RGB image as PNG, atomically."""
    atomic_save(path, Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)))


__all__ = [
    "classes_shown", "draw_box", "heatmap", "legend", "overlay", "save_png", "side_by_side",
    "stack_rows", "with_legend",
]  # fmt: skip
