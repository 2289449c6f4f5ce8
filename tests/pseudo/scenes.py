"""Small synthetic scenes with known masks for testing box -> label-map generators.

Each scene is a textured background with one or two objects of distinct colour and texture whose
shapes (ellipse, ring, triangle) do not fill their boxes, so a generator that only fills boxes
scores clearly below one that finds the object inside them.
"""

from __future__ import annotations

import numpy as np

from weakseg.data.sample import Sample

HEIGHT, WIDTH = 120, 160


def textured_background(rng: np.random.Generator, height: int = HEIGHT, width: int = WIDTH):
    """H x W x 3 float: a green-blue gradient with diagonal stripes and pixel noise."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.empty((height, width, 3), dtype=np.float32)
    image[..., 0] = 40 + 20 * np.sin((xx + yy) / 6.0)
    image[..., 1] = 110 + 50 * xx / width
    image[..., 2] = 150 - 40 * yy / height
    return image + rng.normal(0, 8, image.shape)


def shape_mask(shape: str, box: tuple[int, int, int, int], height: int, width: int) -> np.ndarray:
    """H x W bool mask of an ellipse, ring or triangle inscribed in ``box`` (x1, y1, x2, y2)."""
    x1, y1, x2, y2 = box
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
    r2 = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2
    if shape == "ellipse":
        return r2 <= 1.0
    if shape == "ring":
        return (r2 <= 1.0) & (r2 >= 0.45**2)
    if shape == "triangle":  # apex at the top centre, base along the bottom edge
        t = (yy - y1) / (y2 - y1)
        return (t >= 0) & (t <= 1) & (np.abs(xx - cx) <= t * rx)
    raise ValueError(shape)


def paint_object(image: np.ndarray, mask: np.ndarray, colour, rng: np.random.Generator) -> None:
    """Paint a textured object: the colour plus a checker texture and noise."""
    yy, xx = np.nonzero(mask)
    checker = (((yy // 4) + (xx // 4)) % 2) * 18.0
    noise = rng.normal(0, 6, (len(yy), 3))
    image[yy, xx] = np.asarray(colour, np.float32) + checker[:, None] + noise


def single_scene(shape: str = "ellipse", seed: int = 0) -> Sample:
    """One object of class 1 with a tight box."""
    rng = np.random.default_rng(seed)
    image = textured_background(rng)
    box = (45, 25, 115, 95)
    obj = shape_mask(shape, box, HEIGHT, WIDTH)
    paint_object(image, obj, (220, 60, 40), rng)
    return _sample(f"{shape}-{seed}", image, [box], [1], obj.astype(np.uint8))


def overlap_scene(seed: int = 0) -> Sample:
    """A large ellipse (class 1) and a smaller triangle (class 2) in front of it; boxes overlap."""
    rng = np.random.default_rng(seed)
    image = textured_background(rng)
    big, small = (20, 15, 110, 105), (85, 40, 145, 110)
    ellipse = shape_mask("ellipse", big, HEIGHT, WIDTH)
    triangle = shape_mask("triangle", small, HEIGHT, WIDTH)
    paint_object(image, ellipse, (220, 60, 40), rng)
    paint_object(image, triangle, (230, 210, 40), rng)
    mask = np.where(triangle, 2, np.where(ellipse, 1, 0)).astype(np.uint8)
    return _sample(f"overlap-{seed}", image, [big, small], [1, 2], mask)


def mosaic_scene(seed: int = 2) -> Sample:
    """An ellipse (class 1) of colour cells on a background of colour cells, one colour shared.

    Colours here form many overlapping clusters, as in natural images, so GrabCut's k-means
    initialisation (OpenCV's global RNG) changes its result: the scene for the seeding trap.
    """
    rng = np.random.default_rng(seed)
    palette = rng.integers(0, 255, (12, 3))
    image = _mosaic(rng, palette[:8], cell=8)
    box = (45, 25, 115, 95)
    obj = shape_mask("ellipse", box, HEIGHT, WIDTH)
    image[obj] = _mosaic(rng, palette[7:], cell=6)[obj]
    return _sample(f"mosaic-{seed}", image, [box], [1], obj.astype(np.uint8))


def _mosaic(rng: np.random.Generator, palette: np.ndarray, cell: int) -> np.ndarray:
    """H x W x 3 float of square cells, each a random palette colour, plus pixel noise."""
    cells = palette[rng.integers(0, len(palette), (HEIGHT // cell + 1, WIDTH // cell + 1))]
    image = np.repeat(np.repeat(cells, cell, axis=0), cell, axis=1)[:HEIGHT, :WIDTH]
    return image.astype(np.float32) + rng.normal(0, 12, image.shape)


def _sample(name, image, boxes, labels, mask) -> Sample:
    image = np.clip(image, 0, 255).astype(np.uint8)
    return Sample(id=name, image=image, boxes=np.array(boxes), box_labels=labels, mask=mask)


def class_iou(pred: np.ndarray, mask: np.ndarray, c: int) -> float:
    """IoU of class ``c`` between a label map and the true mask."""
    p, t = pred == c, mask == c
    return float((p & t).sum() / max((p | t).sum(), 1))


SHAPES = ("ellipse", "ring", "triangle")
