"""Reading image and label-map files safely, and the problem kinds readers report.

Every reader goes through :func:`read_image` and :func:`read_label_png` so that one bad file
always becomes a :class:`~weakseg.data.dataset.DataError` that names the file, never a silent
half-decoded image: PIL's ``ImageFile.LOAD_TRUNCATED_IMAGES`` is left False and pixels are decoded
inside a ``try``. EXIF orientation is not applied: masks and boxes refer to the stored pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

from weakseg.data.boxes import box_problems, clip_boxes
from weakseg.data.dataset import DataError
from weakseg.data.sample import IGNORE

# Problem kinds carried by DataError.kind; `weakseg doctor` counts problems by these names.
MISSING_FILE = "missing file"
UNREADABLE_IMAGE = "unreadable image"
UNREADABLE_MASK = "unreadable mask"
MALFORMED_ANNOTATION = "malformed annotation"
MALFORMED_XML = "malformed XML"
UNSAFE_XML = "unsafe XML (entity declarations)"
UNKNOWN_CLASS = "unknown class"
BAD_BOX = "invalid box"
MASK_SIZE = "mask size differs from image"
MASK_VALUES = "mask values out of range"
IMAGE_SIZE = "image size differs from annotation"

# The one box_problems() result that is not fatal: the reader clips such boxes.
BOX_EXTENDS_OUTSIDE = "box extends outside the image"

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")

_DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def _decode(path: Path, kind: str) -> Image.Image:
    """Open and fully decode ``path``; any failure becomes a DataError of ``kind``."""
    if not path.is_file():
        raise DataError(str(path), "file not found", MISSING_FILE)
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise DataError(
            str(path), "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True; refusing to read", kind
        )
    try:
        image = Image.open(path)
        image.load()
    except _DECODE_ERRORS as err:
        raise DataError(str(path), f"cannot decode ({err})", kind) from err
    return image


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as H x W x 3 uint8 RGB (grey, palette, CMYK, alpha all converted)."""
    image = _decode(Path(path), UNREADABLE_IMAGE)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def read_label_png(
    path: str | Path, num_classes: int, size: tuple[int, int] | None = None
) -> np.ndarray:
    """Read an index label map (H x W uint8, 0 = background, 1..L classes, 255 = ignore).

    Accepts grey ("L") PNGs and palette ("P") PNGs; for a palette PNG the stored palette indices
    are the labels (VOC SegmentationClass), never the RGB colours. ``num_classes`` counts
    background, so valid values are 0..num_classes-1 and 255. ``size`` is the image's (H, W); a
    different mask size is an error.
    """
    path = Path(path)
    image = _decode(path, UNREADABLE_MASK)
    if image.mode not in ("L", "P"):
        problem = f"label PNG must be grey (L) or palette (P) indices, not mode {image.mode}"
        raise DataError(str(path), problem, UNREADABLE_MASK)
    mask = np.asarray(image, dtype=np.uint8)
    if size is not None and mask.shape != tuple(size):
        problem = f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is {size[1]}x{size[0]}"
        raise DataError(str(path), problem, MASK_SIZE)
    check_label_values(mask, num_classes, str(path))
    return mask


def check_label_values(mask: np.ndarray, num_classes: int, path: str) -> None:
    """Raise DataError unless every value of ``mask`` is in 0..num_classes-1 or 255."""
    values = np.unique(mask)
    bad = values[(values >= num_classes) & (values != IGNORE)]
    if len(bad):
        shown = ", ".join(str(v) for v in bad[:8])
        problem = f"mask values {shown} not in 0..{num_classes - 1} or {IGNORE}"
        raise DataError(path, problem, MASK_VALUES)


def find_image(folder: Path, stem: str) -> Path | None:
    """The image file ``folder/stem.<ext>`` for the first known image suffix, or None."""
    for suffix in IMAGE_SUFFIXES:
        for candidate in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def image_stems(folder: Path) -> dict[str, Path]:
    """Map stem -> path for every image file directly in ``folder`` (sorted by stem)."""
    found = {}
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            found.setdefault(path.stem, path)
    return dict(sorted(found.items()))


def checked_boxes(
    boxes: np.ndarray, height: int, width: int, path: str, clip: bool = True
) -> np.ndarray:
    """Validate K x 4 boxes against an H x W image and optionally clip them to it.

    Inverted, zero-area, non-finite and entirely-outside boxes raise DataError (kind
    :data:`BAD_BOX`): no sensible label can come from them. Boxes that only extend past the border
    are clipped when ``clip`` is True and returned unchanged otherwise.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    for k, problem in enumerate(box_problems(boxes, height, width)):
        if problem and problem != BOX_EXTENDS_OUTSIDE:
            coords = ", ".join(f"{v:g}" for v in boxes[k])
            problem = f"box {k} ({coords}) in a {width}x{height} image: {problem}"
            raise DataError(path, problem, BAD_BOX)
    return clip_boxes(boxes, height, width) if clip else boxes
