"""Reading image and label-map files safely, and the problem kinds readers report.

Every reader goes through :func:`read_image` and :func:`read_label_png` so that one bad file
always becomes a :class:`~weakseg.data.dataset.DataError` that names the file, never a silent
half-decoded image: PIL's ``ImageFile.LOAD_TRUNCATED_IMAGES`` is left False and pixels are decoded
inside a ``try``. EXIF orientation is not applied: masks and boxes refer to the stored pixels
(``weakseg doctor`` warns about images whose EXIF tag would rotate them on screen).

Hostile input is refused before it costs anything: images declaring more than
:data:`MAX_PIXELS` pixels (env ``WEAKSEG_MAX_PIXELS``) are refused from their header, before
decoding; sample ids that could name a path (:func:`check_sample_id`) and annotation file names
that leave the images folder (:func:`inside_folder`) are errors. 16-bit grey images are scaled to
8 bits (v * 255 / 65535), not clipped to white. Symlinks inside a dataset folder are followed:
datasets are commonly assembled from links into a shared store, and a link is placed by whoever
owns the folder, whereas an annotation file (whose names are checked) often comes from elsewhere.
"""

from __future__ import annotations

import os
import warnings
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
BOX_OUT_OF_RANGE = "box coordinates out of range"
MASK_SIZE = "mask size differs from image"
MASK_VALUES = "mask values out of range"
IMAGE_SIZE = "image size differs from annotation"
IMAGE_TOO_LARGE = "image too large"
UNSAFE_ID = "unsafe sample id"
OUTSIDE_FOLDER = "file outside the dataset folder"
# Warnings only (the image is usable): `weakseg doctor` lists them.
HIGH_BIT_DEPTH = "16-bit image (scaled to 8 bits)"
EXIF_ROTATION = "EXIF orientation not applied (boxes refer to the stored pixels)"

# Default pixel budget: far above any photo a segmentation model trains on, far below the
# 2.5 GB that a 13000 x 13000 decompression bomb decodes to.
MAX_PIXELS = 40_000_000

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
        with warnings.catch_warnings():  # the pixel budget below is the check that counts
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except _DECODE_ERRORS as err:
        raise DataError(str(path), f"cannot decode ({err})", kind) from err
    _check_pixel_budget(image, path)  # from the header, before any pixel is decoded
    try:
        image.load()
    except _DECODE_ERRORS as err:
        raise DataError(str(path), f"cannot decode ({err})", kind) from err
    return image


def max_pixels() -> int:
    """The pixel budget: ``WEAKSEG_MAX_PIXELS`` if set, else :data:`MAX_PIXELS`."""
    value = os.environ.get("WEAKSEG_MAX_PIXELS", "")
    return int(value) if value.strip().isdigit() else MAX_PIXELS


def _check_pixel_budget(image: Image.Image, path: Path) -> None:
    width, height = image.size
    if width * height > max_pixels():
        problem = (
            f"image too large: {width}x{height} = {width * height / 1e6:.0f} megapixels, over "
            f"the budget of {max_pixels() / 1e6:g} (set WEAKSEG_MAX_PIXELS to raise it)"
        )
        raise DataError(str(path), problem, IMAGE_TOO_LARGE)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as H x W x 3 uint8 RGB (grey, palette, CMYK, alpha all converted;
    16-bit grey scaled to 8 bits)."""
    image = _decode(Path(path), UNREADABLE_IMAGE)
    if image.mode.startswith("I") or image.mode == "F":
        return _scale_to_8_bits(image, Path(path))
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _scale_to_8_bits(image: Image.Image, path: Path) -> np.ndarray:
    """16-bit grey (PIL modes I;16*, or I holding 0..65535) -> H x W x 3 uint8, v * 255 / 65535.

    PIL's own convert("RGB") clips such images to 255: all white.
    """
    values = np.asarray(image).astype(np.float64)
    if image.mode == "F" or values.min(initial=0) < 0 or values.max(initial=0) > 65535:
        problem = f"unsupported pixel format {image.mode} (expected 8- or 16-bit)"
        raise DataError(str(path), problem, UNREADABLE_IMAGE)
    grey = np.rint(values * (255.0 / 65535.0)).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def image_warnings(path: str | Path) -> list[tuple[str, str]]:
    """(kind, detail) for a readable image that is probably not what the user sees: 16-bit grey
    (scaled to 8 bits) or an EXIF orientation that a viewer would apply. Reads the header only."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
        with image:
            mode, orientation = image.mode, image.getexif().get(EXIF_ORIENTATION_TAG, 1)
    except _DECODE_ERRORS:
        return []  # read_image reports unreadable files
    found = []
    if mode.startswith("I"):
        found.append((HIGH_BIT_DEPTH, f"{path}: mode {mode}"))
    if orientation not in (1, None):
        found.append((EXIF_ROTATION, f"{path}: EXIF orientation {orientation}"))
    return found


EXIF_ORIENTATION_TAG = 0x0112


def check_sample_id(sample_id: str, where: str) -> str:
    """Return ``sample_id`` if it is a plain file stem; DataError naming ``where`` if it is empty,
    ``.``/``..``, or holds a path separator or NUL (ids become output file names)."""
    if sample_id in ("", ".", "..") or any(c in sample_id for c in "/\\\0"):
        problem = (
            f"sample id {sample_id!r} is not a plain file name (no '/', '\\', NUL, '.' or '..'): "
            "refusing it, output files are named after ids"
        )
        raise DataError(where, problem, UNSAFE_ID)
    return sample_id


def inside_folder(folder: Path, name: str, where: str) -> Path:
    """``folder / name`` for a relative ``name`` without '..' components; DataError naming
    ``where`` otherwise. Symlinks inside the folder are followed (see the module docstring)."""
    relative = Path(name)
    if not name or relative.is_absolute() or ".." in relative.parts or "\0" in name:
        problem = f"file name {name!r} points outside {folder}; only paths inside it are read"
        raise DataError(where, problem, OUTSIDE_FOLDER)
    return folder / relative


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


def box_problem_kind(problem: str) -> str:
    """The DataError kind of a fatal :func:`~weakseg.data.boxes.box_problems` result."""
    return BOX_OUT_OF_RANGE if "out of range" in problem else BAD_BOX


def checked_boxes(
    boxes: np.ndarray, height: int, width: int, path: str, clip: bool = True
) -> np.ndarray:
    """Validate K x 4 boxes against an H x W image and optionally clip them to it.

    Inverted, zero-area, non-finite, out-of-range and entirely-outside boxes raise DataError (kind
    :data:`BAD_BOX`): no sensible label can come from them. Boxes that only extend past the border
    are clipped when ``clip`` is True and returned unchanged otherwise.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)  # 1e308 stays out of range
    for k, problem in enumerate(box_problems(boxes, height, width)):
        if problem and problem != BOX_EXTENDS_OUTSIDE:
            coords = ", ".join(f"{v:g}" for v in boxes[k])
            detail = f"box {k} ({coords}) in a {width}x{height} image: {problem}"
            raise DataError(path, detail, box_problem_kind(problem))
    return clip_boxes(boxes, height, width) if clip else boxes
