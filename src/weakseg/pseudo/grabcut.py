"""The GrabCut pseudo-label baseline (Rother et al. 2004; Box2Seg section 3.1 mask M, Box2Seg
Table 3 'GrabCut', BANA Table 1 'GrabCut').

Box2Seg has no public code, so the recipe is the common one from related work (see
REFERENCE_NOTES.md, Box2Seg section): per box, ``cv2.grabCut`` initialised with the box as its
rectangle; the foreground is GC_FGD | GC_PR_FGD inside the box; if that covers less than 15% of the
box, the whole box is used instead; overlapping boxes are composed with the smaller box on top.

Two choices of ours make it faster than the textbook call without losing accuracy (measured on VOC,
see ``GrabCutGenerator``): GrabCut runs on a crop around the box (a margin of context is enough
background for its colour model, and a local model fits better), downscaled when large.

Reproducibility: GrabCut seeds its colour models by k-means from OpenCV's *global* RNG, so its
result depends on what ran before in the process (REFERENCE_NOTES measured 64.4 vs 67.4 mIoU on the
same images with different worker orders). Every call here re-seeds it first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np

from weakseg.data.boxes import paint_order, pixel_box
from weakseg.data.sample import Sample
from weakseg.pseudo.base import Generator

# Below this many pixels per side a box has no interior worth modelling: fill it.
MIN_BOX_SIDE = 3


def limit_threads() -> None:
    """One OpenCV thread per process. The label runner uses one worker process per core, so
    OpenCV's own thread pool would only oversubscribe the cores. Not done at import on purpose:
    an interactive user with one process should keep OpenCV's default."""
    cv2.setNumThreads(1)


def grabcut_foreground(
    image: np.ndarray, rect: tuple[int, int, int, int], iterations: int, seed: int
) -> np.ndarray | None:
    """Foreground of one ``cv2.grabCut(GC_INIT_WITH_RECT)`` run, H x W bool over ``image``.

    ``rect`` is (x1, y1, x2, y2) end-exclusive inside ``image``. Returns None where GrabCut cannot
    run (no background pixels around the rectangle, too few samples for its colour models, any
    OpenCV error), so the caller falls back to the box instead of crashing.
    """
    h, w = image.shape[:2]
    x1, y1, x2, y2 = rect
    if x2 - x1 < MIN_BOX_SIDE or y2 - y1 < MIN_BOX_SIDE:
        return None
    if x1 <= 0 and y1 <= 0 and x2 >= w and y2 >= h:
        return None  # the rectangle is the whole image: no background samples at all
    mask = np.zeros((h, w), dtype=np.uint8)
    bgd = np.zeros((1, 65), dtype=np.float64)
    fgd = np.zeros((1, 65), dtype=np.float64)
    cv2.setRNGSeed(seed)  # see the module docstring: results must not depend on call order
    try:
        cv2.grabCut(
            np.ascontiguousarray(image),
            mask,
            (x1, y1, x2 - x1, y2 - y1),
            bgd,
            fgd,
            iterations,
            cv2.GC_INIT_WITH_RECT,
        )
    except cv2.error:
        return None
    return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)


def compose_box_masks(
    sample: Sample, box_masks: list[np.ndarray | None], min_fill: float
) -> np.ndarray:
    """Paint per-box foregrounds into one H x W uint8 label map, smaller boxes on top.

    ``box_masks[k]`` is box k's foreground as a bool array of the box's pixel extent (None: use
    the whole box). A foreground covering less than ``min_fill`` of its box is replaced by the
    whole box (the 15% rule of REFERENCE_NOTES, Box2Seg section). Pixels outside every box stay 0.
    """
    out = np.zeros((sample.height, sample.width), dtype=np.uint8)
    for k in paint_order(sample.boxes):
        x1, y1, x2, y2 = pixel_box(sample.boxes[k], sample.height, sample.width)
        if x2 <= x1 or y2 <= y1:
            continue
        fg = box_masks[k]
        if fg is None or fg.mean() < min_fill:
            fg = np.ones((y2 - y1, x2 - x1), dtype=bool)
        out[y1:y2, x1:x2][fg] = sample.box_labels[k]
    return out


@dataclass
class GrabCutGenerator(Generator):
    """GrabCut per box on a (downscaled) crop around it; smaller boxes on top.

    Why a crop: a local background model fits better than one of the whole image (about a point
    of mIoU on VOC) and costs less; downscaling to ``max_side`` buys most of the speed, at 192-256
    it loses 1-3 points. benchmarks/RESULTS.md compares it with plain whole-image GrabCut.

    Attributes:
        iterations: GrabCut iterations per box; 5 is OpenCV's tutorial value and the related-work
            recipe (REFERENCE_NOTES, Box2Seg section); ours is 3: as accurate on VOC and faster.
        margin: context kept around the box on each side, as a fraction of the box's side, so
            GrabCut has local background to model. Ours: 0.25 beat 0.1 and 0.5 on VOC.
        min_margin: the margin in pixels at least, so small boxes still get background samples.
        max_side: the crop is downscaled so its longer side is at most this (0: never) and the
            result upsampled back; GrabCut's cost grows with the pixel count. Ours: 400. On the
            first 100 dev_val images (seed 0): 320 / 5 iterations 68.4 mIoU, 320 / 3 68.6,
            400 / 3 70.1, no downscaling 69.7; plain whole-image GrabCut 69.0.
        min_fill: below this fraction of its box, a GrabCut result is replaced by the whole box
            (Box2Seg related-work recipe, REFERENCE_NOTES).
        seed: OpenCV RNG seed set before every grabCut call (the reproducibility trap above).
    """

    name: ClassVar[str] = "grabcut"
    iterations: int = 3
    margin: float = 0.25
    min_margin: int = 16
    max_side: int = 400
    min_fill: float = 0.15
    seed: int = 0

    def generate(self, sample: Sample) -> np.ndarray:
        masks = [self.box_foreground(sample.image, box) for box in sample.boxes]
        return compose_box_masks(sample, masks, self.min_fill)

    def box_foreground(self, image: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        """Box's foreground as bool over its pixel extent, or None (use the whole box)."""
        h, w = image.shape[:2]
        x1, y1, x2, y2 = pixel_box(box, h, w)
        if x2 - x1 < MIN_BOX_SIDE or y2 - y1 < MIN_BOX_SIDE:
            return None
        mx = max(int(round(self.margin * (x2 - x1))), self.min_margin)
        my = max(int(round(self.margin * (y2 - y1))), self.min_margin)
        cx1, cy1 = max(x1 - mx, 0), max(y1 - my, 0)
        cx2, cy2 = min(x2 + mx, w), min(y2 + my, h)
        crop = image[cy1:cy2, cx1:cx2]
        rect = (x1 - cx1, y1 - cy1, x2 - cx1, y2 - cy1)
        scale = _downscale_factor(cx2 - cx1, cy2 - cy1, self.max_side)
        if scale < 1.0:
            crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            rect = _scale_rect(rect, scale, crop.shape[1], crop.shape[0])
        fg = grabcut_foreground(crop, rect, self.iterations, self.seed)
        if fg is None:
            return None
        if scale < 1.0:
            # Upsample the soft mask and threshold at 0.5: smoother edges than nearest.
            fg = cv2.resize(fg.astype(np.float32), (cx2 - cx1, cy2 - cy1)) >= 0.5
        return fg[y1 - cy1 : y2 - cy1, x1 - cx1 : x2 - cx1]


def _downscale_factor(width: int, height: int, max_side: int) -> float:
    longest = max(width, height)
    return 1.0 if max_side <= 0 or longest <= max_side else max_side / longest


def _scale_rect(
    rect: tuple[int, int, int, int], scale: float, width: int, height: int
) -> tuple[int, int, int, int]:
    """Scale an end-exclusive pixel rectangle, rounding outwards so it never shrinks to nothing."""
    x1, y1, x2, y2 = rect
    return (
        int(np.floor(x1 * scale)),
        int(np.floor(y1 * scale)),
        min(int(np.ceil(x2 * scale)), width),
        min(int(np.ceil(y2 * scale)), height),
    )


def plain_grabcut(sample: Sample, iterations: int = 5, seed: int = 0) -> np.ndarray:
    """The reference a user would write: per box, ``cv2.grabCut`` with GC_INIT_WITH_RECT on the
    whole image, same composition and 15% rule as :class:`GrabCutGenerator`. For benchmarks."""
    masks = []
    for box in sample.boxes:
        x1, y1, x2, y2 = pixel_box(box, sample.height, sample.width)
        fg = grabcut_foreground(sample.image, (x1, y1, x2, y2), iterations, seed)
        masks.append(None if fg is None else fg[y1:y2, x1:x2])
    return compose_box_masks(sample, masks, min_fill=0.15)
