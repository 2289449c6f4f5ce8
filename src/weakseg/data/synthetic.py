"""A deterministic synthetic box-supervision dataset: the default for ``weakseg demo`` and tests.

Each image has a textured, low-saturation background (two-colour gradient, stripes, smooth blobs,
pixel noise) and 1-4 objects. An object's class fixes its shape and its (jittered, textured,
saturated) colour, so a segmentation network can learn it and a colour model (GrabCut, dense CRF)
can separate it from the background:

    1 ellipse  red      2 ring (annulus)  green     3 triangle  blue
    4 star     yellow   5 crescent        magenta

No shape fills its box, so filling boxes is a genuinely weak label. Objects overlap; later ones are
drawn on top. Like a real annotator, an object's box is the tight bound of its *full* shape (what
it would cover unoccluded), while the mask holds only its visible part. Objects lie fully inside
the image and at least 35% of each stays visible. Boxes are 0-based, x2/y2 exclusive.

Measured over synthetic:2000:0 (``weakseg.fillrate`` against the ground truth): mean box fill
rate 0.52 (median 0.50; ellipse 0.70, ring 0.56, triangle 0.46, star 0.45, crescent 0.46), in the
range of VOC's. On synthetic:60:0, filled boxes score 56.6 mIoU and a plain per-box GrabCut (5
iterations, smaller box on top) 90.3. Unlabelled distractors (blobs, thick lines of random
saturated colour), mostly inside boxes, are what colour models still get wrong. One 160 x 224
sample takes about 5 ms on one (shared) core.

The mask has no ignore band by default (every pixel is scored). ``ignore_border=w`` marks pixels
within ``w`` pixels of a label change as 255, like VOC's object outlines.

Sample ``i`` depends only on ``(seed, i)`` (``np.random.default_rng([seed, i])``), so any worker
process regenerates any sample from the spec string alone.
"""

from __future__ import annotations

import cv2
import numpy as np

from weakseg.data.classes import ClassList
from weakseg.data.dataset import Dataset
from weakseg.data.sample import IGNORE, Sample

SYNTHETIC_CLASSES = ClassList(("background", "ellipse", "ring", "triangle", "star", "crescent"))

# Class-typical RGB colours: saturated, so they stand apart from the low-saturation background.
CLASS_COLORS = np.array(
    [[0, 0, 0], [220, 50, 40], [40, 170, 60], [40, 80, 220], [240, 200, 30], [200, 50, 200]],
    dtype=np.float32,
)
DEFAULT_SIZE = (160, 224)  # (H, W)
MIN_VISIBLE = 0.35  # an object may lose at most 65% of its pixels to occlusion
PLACEMENT_TRIES = 8


class SyntheticDataset(Dataset):
    """``n`` synthetic samples with ids ``"000000"`` .. ``f"{n-1:06d}"``, generated on demand."""

    def __init__(
        self, n: int, seed: int = 0, size: tuple[int, int] = DEFAULT_SIZE, ignore_border: int = 0
    ):
        if n < 0:
            raise ValueError(f"synthetic dataset size must be >= 0, got {n}")
        if min(size) < 32:
            raise ValueError(f"synthetic image size must be at least 32 x 32, got {size}")
        self.n, self.seed, self.size, self.ignore_border = n, seed, tuple(size), ignore_border
        self.ids = [f"{i:06d}" for i in range(n)]
        self.classes = SYNTHETIC_CLASSES
        options = "" if self.size == DEFAULT_SIZE else f":size={size[0]}x{size[1]}"
        options += f":ignore={ignore_border}" if ignore_border else ""
        self.spec = f"synthetic:{n}:{seed}{options}"

    @classmethod
    def from_spec(cls, rest: str) -> SyntheticDataset:
        """Parse ``"N[:seed][:size=HxW][:ignore=W]"`` (the part after ``synthetic:``)."""
        parts = [p for p in rest.split(":") if p]
        if not parts or not parts[0].isdigit():
            raise ValueError(
                f"bad synthetic spec {rest!r}: expected N[:seed][:size=HxW][:ignore=W]"
            )
        kwargs: dict = {"n": int(parts[0])}
        for part in parts[1:]:
            key, eq, value = part.partition("=")
            if not eq:
                kwargs["seed"] = int(part)
            elif key == "size":
                h, _, w = value.partition("x")
                kwargs["size"] = (int(h), int(w))
            elif key == "ignore":
                kwargs["ignore_border"] = int(value)
            else:
                raise ValueError(f"bad synthetic spec {rest!r}: unknown option {key!r}")
        return cls(**kwargs)

    def load(self, sample_id: str) -> Sample:
        index = int(sample_id) if sample_id.isdigit() else -1
        if not 0 <= index < self.n:
            raise KeyError(
                f"{self.spec} has no sample {sample_id!r} (ids 000000..{self.n - 1:06d})"
            )
        sample = generate_sample(self.seed, index, self.size, self.ignore_border)
        sample.id = sample_id
        sample.source = f"{self.spec}#{sample_id}"
        return sample


def generate_sample(
    seed: int, index: int, size: tuple[int, int] = DEFAULT_SIZE, ignore_border: int = 0
) -> Sample:
    """Sample ``index`` of the synthetic set with ``seed``: a pure function of its arguments."""
    rng = np.random.default_rng([seed, index])
    height, width = size
    shapes, labels, owner = _layout(rng, height, width)
    boxes = [_tight_box(shape) for shape in shapes]
    image = _background(rng, height, width)  # H x W x 3 float32
    _clutter(rng, image, boxes)
    for shape, label in zip(shapes, labels, strict=True):  # in layout order: later on top
        _paint(rng, image, shape, CLASS_COLORS[label] + rng.uniform(-25, 25, size=3))
    image = cv2.GaussianBlur(image, (3, 3), 0.7)  # soften edges as a camera would
    # Owner -1 (no object) indexes the trailing 0: background.
    mask = np.array([*labels, 0], dtype=np.uint8)[owner]
    if ignore_border:
        mask = _ignore_band(mask, ignore_border)
    return Sample(
        id=f"{index:06d}",
        image=np.clip(image + 0.5, 0, 255).astype(np.uint8),
        boxes=np.array(boxes, dtype=np.float32).reshape(-1, 4),
        box_labels=np.array(labels, dtype=np.int64),
        mask=mask,
        source=f"synthetic seed={seed} index={index}",
    )


def _layout(
    rng: np.random.Generator, height: int, width: int
) -> tuple[list[np.ndarray], list[int], np.ndarray]:
    """Choose 1-4 objects: their full shapes (H x W bool each), classes, and the H x W int64
    map of which object each pixel shows (-1 = none)."""
    owner = np.full((height, width), -1, dtype=np.int64)
    shapes, labels = [], []
    for _ in range(int(rng.integers(1, 5))):
        label = int(rng.integers(1, len(CLASS_COLORS)))
        areas = np.array([shape.sum() for shape in shapes])
        shape = _place_object(rng, label, owner, areas, height, width)
        if shape is None:
            continue  # every placement tried would hide an earlier object: leave it out
        owner[shape] = len(labels)
        shapes.append(shape)
        labels.append(label)
    return shapes, labels, owner


def _tight_box(shape: np.ndarray) -> tuple[int, int, int, int]:
    """(x1, y1, x2, y2), end-exclusive, of the True pixels of an H x W bool mask."""
    ys, xs = np.nonzero(shape)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _place_object(
    rng: np.random.Generator,
    label: int,
    owner: np.ndarray,
    full_areas: np.ndarray,
    height: int,
    width: int,
) -> np.ndarray | None:
    """H x W bool full shape of a new object whose placement keeps >= MIN_VISIBLE of each earlier
    object visible, or None if no try succeeds."""
    short = min(height, width)
    for _ in range(PLACEMENT_TRIES):
        radius = rng.uniform(0.12, 0.3) * short
        # Every shape lies within `radius` of its centre, so this keeps it inside the image.
        cx = rng.uniform(radius + 1, width - radius - 1)
        cy = rng.uniform(radius + 1, height - radius - 1)
        shape = SHAPES[label](rng, cx, cy, radius, height, width)
        if not shape.any():
            continue
        if len(full_areas):
            still = np.bincount(owner[~shape & (owner >= 0)], minlength=len(full_areas))
            if np.any(still < MIN_VISIBLE * full_areas):
                continue
        return shape
    return None


def _canvas(height: int, width: int) -> np.ndarray:
    return np.zeros((height, width), dtype=np.uint8)


def _ellipse(rng, cx, cy, radius, height, width) -> np.ndarray:
    canvas = _canvas(height, width)
    axes = (round(radius), round(radius * rng.uniform(0.45, 0.9)))
    cv2.ellipse(canvas, (round(cx), round(cy)), axes, rng.uniform(0, 180), 0, 360, 1, -1)
    return canvas.astype(bool)


def _ring(rng, cx, cy, radius, height, width) -> np.ndarray:
    canvas = _canvas(height, width)
    centre, angle = (round(cx), round(cy)), rng.uniform(0, 180)
    outer = (radius, radius * rng.uniform(0.75, 1.0))
    inner_ratio = rng.uniform(0.4, 0.6)
    cv2.ellipse(canvas, centre, (round(outer[0]), round(outer[1])), angle, 0, 360, 1, -1)
    inner = (round(outer[0] * inner_ratio), round(outer[1] * inner_ratio))
    cv2.ellipse(canvas, centre, inner, angle, 0, 360, 0, -1)
    return canvas.astype(bool)


def _polygon(cx: float, cy: float, radii: np.ndarray, angles: np.ndarray, height, width):
    canvas = _canvas(height, width)
    points = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)
    cv2.fillPoly(canvas, [np.round(points).astype(np.int32)], 1)
    return canvas.astype(bool)


def _triangle(rng, cx, cy, radius, height, width) -> np.ndarray:
    angles = rng.uniform(0, 2 * np.pi) + np.array([0, 2, 4]) * np.pi / 3
    angles = angles + rng.uniform(-0.35, 0.35, size=3)
    return _polygon(cx, cy, radius * rng.uniform(0.8, 1.0, size=3), angles, height, width)


def _star(rng, cx, cy, radius, height, width) -> np.ndarray:
    angles = rng.uniform(0, 2 * np.pi) + np.arange(10) * np.pi / 5
    radii = np.where(np.arange(10) % 2 == 0, radius, radius * rng.uniform(0.45, 0.6))
    return _polygon(cx, cy, radii, angles, height, width)


def _crescent(rng, cx, cy, radius, height, width) -> np.ndarray:
    canvas = _canvas(height, width)
    cv2.circle(canvas, (round(cx), round(cy)), round(radius), 1, -1)
    direction, offset = rng.uniform(0, 2 * np.pi), radius * rng.uniform(0.5, 0.8)
    bite = (round(cx + offset * np.cos(direction)), round(cy + offset * np.sin(direction)))
    cv2.circle(canvas, bite, round(radius * rng.uniform(0.7, 0.9)), 0, -1)
    return canvas.astype(bool)


SHAPES = {1: _ellipse, 2: _ring, 3: _triangle, 4: _star, 5: _crescent}


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """H x W x 3 float32 textured background of low saturation (grey levels with a colour tint):
    a two-colour gradient, stripes, smooth colour blobs and pixel noise."""
    xs = np.arange(width, dtype=np.float32)[None, :]
    ys = np.arange(height, dtype=np.float32)[:, None]
    grey = rng.uniform(60, 200, size=(2, 1))
    c1, c2 = grey + rng.uniform(-30, 30, size=(2, 3))  # gradient end colours
    phi = rng.uniform(0, 2 * np.pi)
    t = xs * np.float32(np.cos(phi)) + ys * np.float32(np.sin(phi))  # H x W
    t = (t - t.min()) / max(float(np.ptp(t)), 1.0)
    psi, period = rng.uniform(0, np.pi), rng.uniform(8, 40)
    phase = xs * np.float32(np.cos(psi) / period) + ys * np.float32(np.sin(psi) / period)
    stripes = np.float32(rng.uniform(0, 25)) * np.sin(
        np.float32(2 * np.pi) * phase + rng.uniform(0, 7)
    )
    # Per-channel 2-D maths then one merge: much faster than broadcasting over a last axis of 3.
    channels = [
        np.float32(a) + np.float32(b - a) * t + stripes for a, b in zip(c1, c2, strict=True)
    ]
    image = cv2.merge(channels)
    blobs = rng.standard_normal((max(height // 16, 2), max(width // 16, 2), 3), dtype=np.float32)
    image += cv2.resize(15 * blobs, (width, height), interpolation=cv2.INTER_CUBIC)
    noise = rng.standard_normal((height, width, 3), dtype=np.float32)
    noise *= np.float32(rng.uniform(4, 12))
    image += noise
    return image


def _clutter(rng: np.random.Generator, image: np.ndarray, boxes: list[tuple]) -> None:
    """Draw 0-4 unlabelled distractors (irregular blobs, thick lines) of random saturated colour
    under the objects, most of them centred inside a box. Their colour may match a class, so a
    colour model alone (GrabCut, dense CRF) takes them for the object; their shape tells a
    network they are not one."""
    height, width = image.shape[:2]
    short = min(height, width)
    for _ in range(int(rng.integers(0, 5))):
        canvas = _canvas(height, width)
        x1, y1, x2, y2 = (
            boxes[rng.integers(len(boxes))] if rng.random() < 0.7 else (0, 0, width, height)
        )
        cx, cy = rng.uniform(x1, x2), rng.uniform(y1, y2)
        if rng.random() < 0.5:
            angles = np.sort(rng.uniform(0, 2 * np.pi, size=int(rng.integers(5, 9))))
            radii = rng.uniform(0.3, 1.0, size=len(angles)) * rng.uniform(0.05, 0.15) * short
            points = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1)
            cv2.fillPoly(canvas, [np.round(points).astype(np.int32)], 1)
        else:
            angle, half = rng.uniform(0, np.pi), rng.uniform(0.1, 0.35) * short
            dx, dy = half * np.cos(angle), half * np.sin(angle)
            ends = (round(cx - dx), round(cy - dy)), (round(cx + dx), round(cy + dy))
            cv2.line(canvas, *ends, 1, int(rng.integers(2, 6)))
        hsv = np.uint8([[[rng.integers(0, 180), rng.integers(110, 230), rng.integers(120, 240)]]])
        color = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)
        _paint(rng, image, canvas.astype(bool), color)


def _paint(rng: np.random.Generator, image: np.ndarray, shape: np.ndarray, color: np.ndarray):
    """Fill ``shape`` (H x W bool) of ``image`` with ``color`` plus a shading gradient and
    pixel noise, so no region is flat."""
    ys, xs = np.nonzero(shape)
    if len(xs) == 0:
        return
    phi = rng.uniform(0, 2 * np.pi)
    along = (xs - xs.mean()) * np.cos(phi) + (ys - ys.mean()) * np.sin(phi)
    shading = 25 * along / max(float(np.abs(along).max()), 1.0)
    noise = 10 * rng.standard_normal((len(xs), 3), dtype=np.float32)
    image[ys, xs] = color + shading[:, None] + noise


def _ignore_band(mask: np.ndarray, width: int) -> np.ndarray:
    """Set pixels within ``width`` of a label change to 255 (VOC-style object outlines)."""
    kernel = np.ones((2 * width + 1, 2 * width + 1), dtype=np.uint8)
    band = cv2.dilate(mask, kernel) != cv2.erode(mask, kernel)
    return np.where(band, IGNORE, mask).astype(np.uint8)


__all__ = ["SYNTHETIC_CLASSES", "CLASS_COLORS", "SyntheticDataset", "generate_sample"]
