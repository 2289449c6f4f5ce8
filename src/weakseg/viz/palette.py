"""The VOC colour map, colourised label maps, and label-map PNG reading/writing.

Label maps are stored as palette ('P' mode) PNGs with the VOC palette, so the file holds class
indices (0 = background, 1..L, 255 = ignore) and any image viewer shows them in VOC colours.
Every write is atomic: a temporary file in the same directory, then ``os.replace``, so a killed
process never leaves a half-written PNG under the final name.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from weakseg.data.sample import IGNORE
from weakseg.outputs import umask_mode


def voc_colormap(n: int = 256) -> np.ndarray:
    """n x 3 uint8 VOC colour map: the bits of the class index, interleaved into R, G, B from the
    most significant bit down (class 1 = (128, 0, 0), 15 person = (192, 128, 128),
    255 ignore = (224, 224, 192))."""
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for index in range(n):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):  # bit triples of the index fill the colour bits top-down
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        cmap[index] = (r, g, b)
    return cmap


VOC_PALETTE = voc_colormap()


def colorize(label_map: np.ndarray, palette: np.ndarray = VOC_PALETTE) -> np.ndarray:
    """H x W integer label map -> H x W x 3 uint8 RGB. 255 (ignore) shows as VOC's light
    cream-grey (224, 224, 192)."""
    return palette[np.asarray(label_map).astype(np.uint8)]


def atomic_save(path: str | os.PathLike, image: Image.Image, **save_kwargs) -> None:
    """Save a PIL image at ``path`` atomically (temp file in the same dir, then rename): JPEG
    for a .jpg / .jpeg name, PNG otherwise.

    The same directory keeps the rename on one filesystem, where ``os.replace`` is atomic.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            jpeg = path.suffix.lower() in (".jpg", ".jpeg")
            image.save(f, format="JPEG" if jpeg else "PNG", **save_kwargs)
        os.chmod(tmp, umask_mode())  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_label_png(path: str | os.PathLike, label_map: np.ndarray) -> None:
    """Write an H x W label map (values 0..255) as a VOC-palette PNG, atomically."""
    label_map = np.asarray(label_map)
    if label_map.ndim != 2:
        raise ValueError(f"{path}: label map must be H x W, got shape {label_map.shape}")
    if label_map.dtype != np.uint8:
        if label_map.size and (label_map.min() < 0 or label_map.max() > 255):
            raise ValueError(f"{path}: label values must lie in 0..255")
        label_map = label_map.astype(np.uint8)
    image = Image.fromarray(np.ascontiguousarray(label_map))  # mode L
    image.putpalette(VOC_PALETTE.tobytes())  # L -> P with the indices unchanged
    atomic_save(path, image)


def read_label_png(path: str | os.PathLike) -> np.ndarray:
    """Read a label PNG as H x W uint8 class indices.

    P-mode PNGs give their palette indices and L-mode their grey values; 16/32-bit grey images are
    accepted when every value is <= 255; RGB PNGs drawn in the VOC palette are mapped back to
    indices (any other colour is an error).
    """
    with Image.open(path) as image:
        image.load()
        mode = image.mode
        array = np.asarray(image)
    if mode in ("P", "L"):
        return array.astype(np.uint8, copy=False)
    if mode in ("I", "I;16", "I;16B", "I;16L"):
        if array.size and (array.min() < 0 or array.max() > 255):
            raise ValueError(f"{path}: {mode} label image has values outside 0..255")
        return array.astype(np.uint8)
    if mode in ("RGB", "RGBA"):
        return _rgb_to_index(array[..., :3], path)
    raise ValueError(f"{path}: cannot read a label map from a {mode!r} PNG; use P or L mode")


def _rgb_to_index(rgb: np.ndarray, path: str | os.PathLike) -> np.ndarray:
    """H x W x 3 VOC-coloured image -> H x W uint8 indices; unknown colours raise."""
    code = _rgb_code(rgb)
    palette_code = _rgb_code(VOC_PALETTE)
    order = np.argsort(palette_code)
    pos = np.searchsorted(palette_code[order], code).clip(0, len(order) - 1)
    found = palette_code[order][pos] == code
    if not found.all():
        y, x = np.argwhere(~found)[0]
        raise ValueError(f"{path}: RGB colour {tuple(rgb[y, x])} at (x={x}, y={y}) is not VOC")
    return order[pos].astype(np.uint8)


def _rgb_code(rgb: np.ndarray) -> np.ndarray:
    """... x 3 uint8 -> ... int64 0xRRGGBB."""
    rgb = rgb.astype(np.int64)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


__all__ = [
    "IGNORE", "VOC_PALETTE", "voc_colormap", "colorize", "atomic_save", "save_label_png",
    "read_label_png",
]  # fmt: skip
