"""PASCAL VOC reader: ``JPEGImages/`` + ``Annotations/*.xml`` + ``SegmentationClass[Aug]/*.png``.

Spec: ``voc:ROOT[:SPLIT]``. ROOT is the folder holding ``VOC2012/`` (or ``VOCdevkit/VOC2012/``)
or the folder with ``JPEGImages/`` itself. SPLIT names ``ImageSets/Segmentation/SPLIT.txt``;
without it the dataset is every image that has an annotation XML or a mask. The spec separates
fields with ':', so ROOT must not contain ':'.

Conventions:
- Boxes: the XML's 1-based inclusive corners become 0-based end-exclusive (x1, y1, x2, y2) via
  :func:`~weakseg.data.boxes.voc_to_box`, so ``<xmin>123</xmin>`` is x1 = 122 and
  ``<xmax>379</xmax>`` is x2 = 379. ``difficult``/``truncated`` flags are kept; difficult boxes
  are not dropped.
- Class names go through ``classes.index`` (case-insensitive, aliases such as "airplane"). A name
  it does not know is an error naming the XML and the class.
- Masks: ``SegmentationClassAug/<id>.png`` is preferred over ``SegmentationClass/<id>.png``;
  grey or palette PNGs both give class indices (palette indices, not colours).
- An image with a mask but no XML loads with no boxes (boxes are not derived from the mask);
  an image with an XML but no mask loads with ``mask=None``.
- Split file lines become file names: a line that is not a plain file stem (``../x``, ``/abs``)
  is an error naming the split file and line (:func:`~weakseg.data.files.check_sample_id`).
- The real image size wins over the XML ``<size>`` (kept in ``sample.extra["xml_size"]`` as
  (H, W); ``weakseg doctor`` reports disagreements).
- Boxes that extend past the image border are clipped when ``clip=True`` (the default) and kept
  as written when ``clip=False``; inverted, zero-area or entirely-outside boxes are errors.
- XML is parsed with defusedxml: any entity declaration (billion laughs, external entities) is
  refused with a DataError, never expanded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import defusedxml.ElementTree as SafeET
import numpy as np
from defusedxml import DefusedXmlException

if TYPE_CHECKING:  # the type only; parsing always goes through defusedxml
    from xml.etree.ElementTree import Element

from weakseg.data.boxes import voc_to_box
from weakseg.data.classes import VOC, ClassList
from weakseg.data.dataset import DataError, Dataset
from weakseg.data.files import (
    MALFORMED_XML,
    MISSING_FILE,
    UNKNOWN_CLASS,
    UNSAFE_XML,
    check_sample_id,
    checked_boxes,
    find_image,
    image_stems,
    read_image,
    read_label_png,
)
from weakseg.data.sample import Sample

MASK_FOLDERS = ("SegmentationClassAug", "SegmentationClass")


@dataclass
class VOCObject:
    """One ``<object>`` of a VOC XML; ``box`` is already 0-based end-exclusive."""

    name: str
    box: tuple[float, float, float, float]
    difficult: bool
    truncated: bool


@dataclass
class VOCAnnotation:
    """A parsed VOC XML. ``width``/``height`` are None when ``<size>`` is missing or zero."""

    path: str
    width: int | None
    height: int | None
    objects: list[VOCObject]


def parse_voc_xml(path: str | Path) -> VOCAnnotation:
    """Parse one VOC annotation XML safely; raise DataError naming the file on any problem."""
    path = str(path)
    try:
        root = SafeET.parse(path).getroot()
    except DefusedXmlException as err:
        problem = f"refused: XML entity declarations are not allowed ({err})"
        raise DataError(path, problem, UNSAFE_XML) from None
    except SafeET.ParseError as err:
        raise DataError(path, f"not well-formed XML ({err})", MALFORMED_XML) from None
    except FileNotFoundError:
        raise DataError(path, "file not found", MISSING_FILE) from None
    except OSError as err:
        raise DataError(path, f"cannot read ({err})", MALFORMED_XML) from None
    if root.tag != "annotation":
        raise DataError(path, f"root element is <{root.tag}>, expected <annotation>", MALFORMED_XML)
    width = _optional_int(root.find("size/width"))
    height = _optional_int(root.find("size/height"))
    objects = [_parse_object(obj, path, k) for k, obj in enumerate(root.findall("object"))]
    return VOCAnnotation(path, width or None, height or None, objects)


def _parse_object(obj: Element, path: str, k: int) -> VOCObject:
    name = (obj.findtext("name") or "").strip()
    if not name:
        raise DataError(path, f"object {k} has no <name>", MALFORMED_XML)
    if obj.find("bndbox") is None:
        raise DataError(path, f"object {k} ({name}) has no <bndbox>", MALFORMED_XML)
    corners = []
    for tag in ("xmin", "ymin", "xmax", "ymax"):
        text = obj.findtext(f"bndbox/{tag}")
        try:
            corners.append(float(text))
        except (TypeError, ValueError):
            problem = f"object {k} ({name}): <bndbox><{tag}> is {text!r}, expected a number"
            raise DataError(path, problem, MALFORMED_XML) from None
    return VOCObject(name, voc_to_box(*corners), _flag(obj, "difficult"), _flag(obj, "truncated"))


def _flag(obj: Element, tag: str) -> bool:
    return (obj.findtext(tag) or "0").strip().lower() in ("1", "true", "yes")


def _optional_int(element: Element | None) -> int | None:
    try:
        return int(float(element.text))  # type: ignore[union-attr, arg-type]
    except (AttributeError, TypeError, ValueError):
        return None


def annotation_arrays(ann: VOCAnnotation, classes: ClassList) -> dict[str, np.ndarray]:
    """Boxes (K x 4), labels, difficult and truncated arrays of an annotation.

    Raises DataError naming the XML for a class name ``classes`` does not know.
    """
    labels = []
    for obj in ann.objects:
        index = classes.index(obj.name)
        if not index:  # None (unknown) or 0 (background is never a box label)
            problem = f"unknown class {obj.name!r}; known: {', '.join(classes.names[1:])}"
            raise DataError(ann.path, problem, UNKNOWN_CLASS)
        labels.append(index)
    return {
        "boxes": np.array([o.box for o in ann.objects], dtype=np.float64).reshape(-1, 4),
        "box_labels": np.array(labels, dtype=np.int64),
        "difficult": np.array([o.difficult for o in ann.objects], dtype=bool),
        "truncated": np.array([o.truncated for o in ann.objects], dtype=bool),
    }


def find_voc_root(root: Path) -> Path:
    """The folder that holds ``JPEGImages/``: ROOT, ROOT/VOC2012, ROOT/VOCdevkit/VOC2012, or the
    only ROOT/*/ with one."""
    for candidate in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if (candidate / "JPEGImages").is_dir():
            return candidate
    found = sorted(p.parent for p in root.glob("*/JPEGImages") if p.is_dir())
    if len(found) == 1:
        return found[0]
    problem = "no JPEGImages/ folder here, in VOC2012/ or in VOCdevkit/VOC2012/"
    if found:
        problem = f"several VOC folders ({', '.join(p.name for p in found)}); name one"
    raise DataError(str(root), problem, MISSING_FILE)


class VOCDataset(Dataset):
    """PASCAL VOC layout (see the module docstring for conventions).

    Args:
        root: the folder holding VOC2012/ (or VOC2012/ itself).
        split: name of ``ImageSets/Segmentation/<split>.txt``; None = every annotated image.
        clip: clip boxes that extend past the image border (doctor uses False to see them).
        classes: class list for the XML names; the 21 VOC classes by default.
    """

    def __init__(
        self,
        root: str | Path,
        split: str | None = None,
        clip: bool = True,
        classes: ClassList = VOC,
    ):
        self.root = find_voc_root(Path(root).expanduser())
        self.split = split or None
        self.clip = clip
        self.classes = classes
        self.spec = f"voc:{root}" + (f":{split}" if split else "")
        self._images = image_stems(self.root / "JPEGImages")
        self.ids = self._split_ids(self.split) if self.split else self._default_ids()

    @property
    def identity(self) -> str:
        return f"voc:{self.root.resolve()}" + (f":{self.split}" if self.split else "")

    @classmethod
    def from_spec(cls, rest: str) -> VOCDataset:
        """``ROOT[:SPLIT]`` (the part of ``voc:ROOT[:SPLIT]`` after ``voc:``)."""
        root, _, split = rest.partition(":")
        if not root:
            raise ValueError("voc spec needs a root folder: voc:ROOT[:SPLIT]")
        return cls(root, split or None)

    def _default_ids(self) -> list[str]:
        annotated = {p.stem for p in (self.root / "Annotations").glob("*.xml")}
        for folder in MASK_FOLDERS:
            annotated |= {p.stem for p in (self.root / folder).glob("*.png")}
        return [i for i in self._images if i in annotated]

    def _split_ids(self, split: str) -> list[str]:
        split_file = self.root / "ImageSets" / "Segmentation" / f"{split}.txt"
        if not split_file.is_file():
            known = sorted(p.stem for p in split_file.parent.glob("*.txt"))
            problem = f"split {split!r} not found; available: {', '.join(known) or 'none'}"
            raise DataError(str(split_file), problem, MISSING_FILE)
        lines = split_file.read_text().split("\n")
        return [
            check_sample_id(line.split()[0], f"{split_file}:{n}")
            for n, line in enumerate(lines, start=1)
            if line.strip()
        ]

    def image_path(self, sample_id: str) -> Path:
        """The image file (``JPEGImages/<id>.jpg`` if none exists, so reading it fails clearly)."""
        path = self._images.get(sample_id) or find_image(self.root / "JPEGImages", sample_id)
        return path or self.root / "JPEGImages" / f"{sample_id}.jpg"

    def xml_path(self, sample_id: str) -> Path:
        return self.root / "Annotations" / f"{sample_id}.xml"

    def mask_path(self, sample_id: str) -> Path | None:
        """The mask file, preferring SegmentationClassAug over SegmentationClass; None if none."""
        for folder in MASK_FOLDERS:
            path = self.root / folder / f"{sample_id}.png"
            if path.is_file():
                return path
        return None

    def read_annotation(self, sample_id: str) -> VOCAnnotation | None:
        """The parsed XML of ``sample_id``, or None when it has no XML."""
        path = self.xml_path(sample_id)
        return parse_voc_xml(path) if path.is_file() else None

    def load(self, sample_id: str) -> Sample:
        image_path = self.image_path(sample_id)
        image = read_image(image_path)
        height, width = image.shape[:2]
        ann = self.read_annotation(sample_id)
        arrays = annotation_arrays(ann or VOCAnnotation("", None, None, []), self.classes)
        if ann is not None:
            arrays["boxes"] = checked_boxes(arrays["boxes"], height, width, ann.path, self.clip)
        mask_path = self.mask_path(sample_id)
        mask = None
        if mask_path is not None:
            mask = read_label_png(mask_path, len(self.classes), (height, width))
        extra = {"xml_size": (ann.height, ann.width)} if ann and ann.height else {}
        return Sample(
            id=sample_id, image=image, mask=mask, source=str(image_path), extra=extra, **arrays
        )
