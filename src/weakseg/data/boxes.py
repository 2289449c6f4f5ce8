"""Box geometry and the box-segmentation tensor of Box2Seg section 3.1.

Convention everywhere in weakseg: a box is (x1, y1, x2, y2) in 0-based pixel corners with x2/y2
exclusive, so it covers columns x1..x2-1 and rows y1..y2-1 and its area is (x2-x1) * (y2-y1).
VOC XML stores 1-based inclusive pixel indices (xmin..xmax); COCO JSON stores (x, y, w, h) in
continuous coordinates. The converters below are the only place those conventions appear.
"""

from __future__ import annotations

import numpy as np

from weakseg.data.sample import IGNORE


def voc_to_box(xmin: float, ymin: float, xmax: float, ymax: float) -> tuple[float, ...]:
    """VOC 1-based inclusive (xmin, ymin, xmax, ymax) -> 0-based end-exclusive (x1, y1, x2, y2)."""
    return (xmin - 1.0, ymin - 1.0, float(xmax), float(ymax))


def box_to_voc(x1: float, y1: float, x2: float, y2: float) -> tuple[int, ...]:
    """Inverse of :func:`voc_to_box`, rounded to integer pixels."""
    return (round(x1) + 1, round(y1) + 1, round(x2), round(y2))


def coco_to_box(x: float, y: float, w: float, h: float) -> tuple[float, ...]:
    """COCO (x, y, width, height) -> (x1, y1, x2, y2); COCO is already 0-based and continuous."""
    return (x, y, x + w, y + h)


def box_area(boxes: np.ndarray) -> np.ndarray:
    """K x 4 boxes -> K areas (0 for empty or inverted boxes)."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    w = np.clip(boxes[:, 2] - boxes[:, 0], 0, None)
    h = np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    return w * h


def clip_boxes(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Clip K x 4 boxes to the image."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
    return boxes


def pixel_box(box: np.ndarray, height: int, width: int) -> tuple[int, int, int, int]:
    """Integer pixel extent (x1, y1, x2, y2) of one box, clipped, end-exclusive.

    Fractional corners are rounded outwards so a box never loses the pixels it touches.
    """
    x1 = int(np.clip(np.floor(box[0]), 0, width))
    y1 = int(np.clip(np.floor(box[1]), 0, height))
    x2 = int(np.clip(np.ceil(box[2]), 0, width))
    y2 = int(np.clip(np.ceil(box[3]), 0, height))
    return x1, y1, x2, y2


def paint_order(boxes: np.ndarray) -> np.ndarray:
    """Indices of boxes from largest to smallest area: paint in this order so the smaller box ends
    up on top (Box2Seg section 3.1: "the smaller box is in the front"). Ties keep file order."""
    return np.argsort(-box_area(boxes), kind="stable")


def box_label_map(boxes: np.ndarray, labels: np.ndarray, height: int, width: int) -> np.ndarray:
    """H x W uint8 label map: each box filled with its class, smaller boxes on top, 0 elsewhere.

    This is the argmax form of the box-segmentation tensor B (Box2Seg section 3.1) and the
    'Box' pseudo-label baseline (BANA Table 1).
    """
    out = np.zeros((height, width), dtype=np.uint8)
    for k in paint_order(boxes):
        x1, y1, x2, y2 = pixel_box(boxes[k], height, width)
        out[y1:y2, x1:x2] = labels[k]
    return out


def box_tensor(
    boxes: np.ndarray, labels: np.ndarray, height: int, width: int, num_classes: int
) -> np.ndarray:
    """Box-segmentation tensor B (Box2Seg section 3.1), one-hot, (L+1) x H x W float32.

    B(i, c) = 1 if pixel i lies in a box of class c and no smaller box covers it; the background
    channel 0 is 1 outside every box. Every pixel has exactly one 1.
    """
    label_map = box_label_map(boxes, labels, height, width)
    return (np.arange(num_classes)[:, None, None] == label_map[None]).astype(np.float32)


def class_box_masks(
    boxes: np.ndarray, labels: np.ndarray, height: int, width: int
) -> dict[int, np.ndarray]:
    """For each class present, the union of its boxes as an H x W bool mask (no ordering)."""
    masks: dict[int, np.ndarray] = {}
    for box, c in zip(boxes, labels, strict=True):
        m = masks.setdefault(int(c), np.zeros((height, width), dtype=bool))
        x1, y1, x2, y2 = pixel_box(box, height, width)
        m[y1:y2, x1:x2] = True
    return masks


def background_mask(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Definite background: H x W bool, True where no box covers the pixel (BANA Eq. 1's region,
    Box2Seg's L_bg region)."""
    covered = np.zeros((height, width), dtype=bool)
    for box in np.asarray(boxes).reshape(-1, 4):
        x1, y1, x2, y2 = pixel_box(box, height, width)
        covered[y1:y2, x1:x2] = True
    return ~covered


MAX_COORDINATE = 1e6  # no image within the pixel budget has an edge this long


def box_problems(boxes: np.ndarray, height: int, width: int) -> list[str]:
    """Human-readable problems of each box ('' when fine): non-finite, out of range, inverted,
    zero-area, outside image. Pass float64 boxes: 1e308 becomes inf in float32."""
    problems = []
    for x1, y1, x2, y2 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        if not np.all(np.isfinite([x1, y1, x2, y2])):
            problems.append("non-finite coordinates")
        elif np.max(np.abs([x1, y1, x2, y2])) > MAX_COORDINATE:
            problems.append(f"coordinates out of range (beyond +-{MAX_COORDINATE:g})")
        elif x2 < x1 or y2 < y1:
            problems.append("inverted box (x2 < x1 or y2 < y1)")
        elif x2 == x1 or y2 == y1:
            problems.append("zero-area box")
        elif x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
            problems.append("box entirely outside the image")
        elif x1 < 0 or y1 < 0 or x2 > width or y2 > height:
            problems.append("box extends outside the image")
        else:
            problems.append("")
    return problems


__all__ = [
    "IGNORE", "voc_to_box", "box_to_voc", "coco_to_box", "box_area", "clip_boxes", "pixel_box",
    "paint_order", "box_label_map", "box_tensor", "class_box_masks", "background_mask",
    "box_problems",
]  # fmt: skip
