"""Joint image / label-map / box transforms for training (torchvision references/segmentation
style): random rescale, pad to the crop size, random crop, horizontal flip, colour jitter.

Every random choice is drawn from the ``numpy.random.Generator`` passed in, so a transform is a
pure function of (inputs, generator state): the training dataset seeds one generator per item
from (seed, epoch, index) and results do not depend on loader workers or on resuming.

Evaluation uses no transform: images are scored at their original size (DESIGN.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from weakseg.data.sample import IGNORE

# ImageNet mean RGB in 0..255: padded image pixels become ~0 after the model's normalisation.
PAD_COLOR = (124, 116, 104)


@dataclass
class Crop:
    """One training example after transforms. ``boxes`` are K x 4 in crop pixels, ``box_labels``
    the matching K classes; boxes that left the crop are dropped. Boxes are NOT clipped to the
    crop: they keep the object's full extent (``box_label_map`` clips when painting), so
    "smaller box on top" still compares the objects' true sizes."""

    image: np.ndarray  # S x S x 3 uint8
    target: np.ndarray  # S x S (or S x S x k) uint8, 255 = ignore (also the padding)
    boxes: np.ndarray  # K x 4 float32
    box_labels: np.ndarray  # K int64
    valid: np.ndarray | None = None  # S x S bool: pixels of the image (False on the padding)


@dataclass
class TrainTransform:
    """Random scale in [scale_min, scale_max] -> pad to crop_size -> random crop_size crop ->
    random horizontal flip -> colour jitter of the given strength (0 = off).

    ``warp``: instead of scale, pad and crop, resize the whole image to crop_size x crop_size
    (aspect ratio not kept; SEC's input, as its authors' code; scale_min/max unused)."""

    crop_size: int = 320
    scale_min: float = 0.5
    scale_max: float = 2.0
    flip: bool = True
    color_jitter: float = 0.0
    warp: bool = False

    def __call__(
        self,
        rng: np.random.Generator,
        image: np.ndarray,
        target: np.ndarray,
        boxes: np.ndarray,
        box_labels: np.ndarray,
    ) -> Crop:
        if self.warp:
            image, target, boxes = warp_to(image, target, boxes, self.crop_size)
            height, width = target.shape[:2]
        else:
            scale = rng.uniform(self.scale_min, self.scale_max)
            image, target, boxes = rescale(image, target, boxes, scale)
            height, width = target.shape[:2]
            image, target = pad_to(image, target, self.crop_size)
        # The padding mask travels with the target as a last channel through crop and flip.
        valid = np.zeros(target.shape[:2], dtype=np.uint8)
        valid[:height, :width] = 1
        maps = np.concatenate([target.reshape(*target.shape[:2], -1), valid[..., None]], axis=-1)
        if not self.warp:
            image, maps, boxes, box_labels = random_crop(
                rng, image, maps, boxes, box_labels, self.crop_size
            )
        if self.flip and rng.random() < 0.5:
            image, maps, boxes = hflip(image, maps, boxes)
        if self.color_jitter > 0:
            image = color_jitter(rng, image, self.color_jitter)
        target = maps[..., 0] if target.ndim == 2 else maps[..., :-1]
        return Crop(image, target, boxes, box_labels, valid=maps[..., -1] > 0)


def rescale(
    image: np.ndarray, target: np.ndarray, boxes: np.ndarray, scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resize by ``scale`` (bilinear image, nearest target) and scale the boxes to match.
    ``target`` may be H x W or H x W x k (k label maps resized together, k <= 4)."""
    height, width = target.shape[:2]
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    target = cv2.resize(target, (new_w, new_h), interpolation=cv2.INTER_NEAREST)
    factors = np.array([new_w / width, new_h / height] * 2, dtype=np.float32)
    return image, target, boxes.reshape(-1, 4) * factors


def warp_to(
    image: np.ndarray, target: np.ndarray, boxes: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resize to ``size`` x ``size`` (bilinear image, nearest target, boxes scaled per axis)."""
    height, width = target.shape[:2]
    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)
    target = cv2.resize(target, (size, size), interpolation=cv2.INTER_NEAREST)
    factors = np.array([size / width, size / height] * 2, dtype=np.float32)
    return image, target, boxes.reshape(-1, 4) * factors


def pad_to(image: np.ndarray, target: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pad bottom/right to at least ``size`` x ``size``: image with PAD_COLOR, target with 255.
    Boxes need no change (the origin stays)."""
    height, width = target.shape[:2]
    pad_h, pad_w = max(size - height, 0), max(size - width, 0)
    if pad_h == 0 and pad_w == 0:
        return image, target
    image = cv2.copyMakeBorder(image, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=PAD_COLOR)
    widths = ((0, pad_h), (0, pad_w)) + ((0, 0),) * (target.ndim - 2)  # every channel gets 255
    target = np.pad(target, widths, constant_values=IGNORE)
    return image, target


def random_crop(
    rng: np.random.Generator,
    image: np.ndarray,
    target: np.ndarray,
    boxes: np.ndarray,
    box_labels: np.ndarray,
    size: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A uniformly placed ``size`` x ``size`` window (the input is at least that big). Boxes are
    shifted into window coordinates (not clipped, see :class:`Crop`); boxes with no area inside
    the window are dropped with their labels. ``target`` may carry extra channels (H x W x C)."""
    height, width = target.shape[:2]
    y0 = int(rng.integers(0, height - size + 1))
    x0 = int(rng.integers(0, width - size + 1))
    image = image[y0 : y0 + size, x0 : x0 + size]
    target = target[y0 : y0 + size, x0 : x0 + size]
    boxes = boxes.reshape(-1, 4) - np.array([x0, y0, x0, y0], dtype=np.float32)
    inside = boxes.clip(0, size)
    keep = (inside[:, 2] > inside[:, 0]) & (inside[:, 3] > inside[:, 1])
    return image, target, boxes[keep], box_labels[keep]


def hflip(
    image: np.ndarray, target: np.ndarray, boxes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mirror left-right; a box (x1, y1, x2, y2) becomes (W - x2, y1, W - x1, y2)."""
    width = target.shape[1]
    boxes = boxes.reshape(-1, 4).copy()
    boxes[:, [0, 2]] = width - boxes[:, [2, 0]]
    return image[:, ::-1], target[:, ::-1], boxes


def color_jitter(rng: np.random.Generator, image: np.ndarray, strength: float) -> np.ndarray:
    """Brightness, contrast and saturation each scaled by a factor from U(1 - s, 1 + s)
    (torchvision ColorJitter's parameters, fixed order); H x W x 3 uint8 in and out."""
    brightness, contrast, saturation = rng.uniform(1 - strength, 1 + strength, size=3)
    x = image.astype(np.float32) * brightness
    grey = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # H x W luma
    x = (x - grey.mean()) * contrast + grey.mean()
    grey = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    x = (x - grey[..., None]) * saturation + grey[..., None]
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


__all__ = [
    "PAD_COLOR",
    "Crop",
    "TrainTransform",
    "color_jitter",
    "hflip",
    "pad_to",
    "random_crop",
    "rescale",
    "warp_to",
]
