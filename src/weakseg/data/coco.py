"""COCO instances reader (pycocotools), with class subsets for cross-dataset setups.

Spec: ``coco:IMAGES_DIR:ANN_JSON[:classes=all|voc|nonvoc]``. The spec separates fields with ':',
so neither path may contain ':'.

Conventions:
- ids are the image file stems (``000000000009``), sorted; every image in the JSON is a sample,
  including images without annotations (all background).
- ``classes="all"``: every category of the JSON in category-id order -> indices 1..N (80 for
  COCO). ``"voc"``: only the 20 categories that are VOC classes, remapped to VOC indices
  (person -> 15); annotations of other categories are dropped: no box, and their pixels are
  background (0), as in the "VOC classes on COCO" setups. ``"nonvoc"``: the 60 other
  categories -> indices 1..60 (LPG's generator-training classes).
- Boxes: COCO (x, y, w, h) -> (x1, y1, x2, y2) via :func:`~weakseg.data.boxes.coco_to_box`;
  clipped to the image when ``clip=True``; inverted / zero-area / outside boxes are errors.
- Crowd annotations (``iscrowd=1``) give no box; their pixels are 255 (ignore) in the mask,
  except where a non-crowd instance covers them.
- Mask: instance masks (``annToMask``) painted largest box first, so the instance with the
  smaller box ends up on top (the same rule as boxes everywhere in weakseg). An annotation
  without a segmentation paints its box as 255. If no annotation in the whole JSON has a
  segmentation (a boxes-only JSON), ``mask`` is None.
- ``file_name`` must be a relative path inside IMAGES_DIR (no absolute paths, no '..'); image
  ids and category ids must be unique; every ``bbox`` must be 4 numbers.
- The image file's real size must equal the JSON's width/height (masks are drawn at that size).
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO

from weakseg.data.boxes import coco_to_box, paint_order
from weakseg.data.classes import COCO_TO_VOC_NAME, VOC, ClassList
from weakseg.data.dataset import DataError, Dataset
from weakseg.data.files import (
    IMAGE_SIZE,
    MALFORMED_ANNOTATION,
    MISSING_FILE,
    UNKNOWN_CLASS,
    check_sample_id,
    checked_boxes,
    inside_folder,
    read_image,
)
from weakseg.data.sample import IGNORE, Sample

CLASS_MODES = ("all", "voc", "nonvoc")

_REQUIRED_FIELDS = {
    "images": ("id", "file_name", "width", "height"),
    "annotations": ("id", "image_id", "category_id", "bbox"),
    "categories": ("id", "name"),
}


def load_coco_json(path: str | Path) -> COCO:
    """Read and index a COCO instances JSON; DataError naming the file if it is not one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(str(path), "file not found", MISSING_FILE) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(str(path), f"not valid JSON ({err})", MALFORMED_ANNOTATION) from None
    _check_structure(data, str(path))
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco.createIndex()
    return coco


def _check_structure(data: object, path: str) -> None:
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataError(path, "not a COCO JSON: no 'images' list", MALFORMED_ANNOTATION)
    for key, fields in _REQUIRED_FIELDS.items():
        entries = data.get(key, [])
        if not isinstance(entries, list):
            raise DataError(path, f"'{key}' is not a list", MALFORMED_ANNOTATION)
        for k, entry in enumerate(entries):
            if not isinstance(entry, dict) or any(f not in entry for f in fields):
                problem = f"{key}[{k}] lacks one of the fields {', '.join(fields)}"
                raise DataError(path, problem, MALFORMED_ANNOTATION)
    if "categories" not in data:
        raise DataError(path, "not a COCO JSON: no 'categories' list", MALFORMED_ANNOTATION)
    _check_unique("images", [i["id"] for i in data["images"]], path)
    _check_unique("categories", [c["id"] for c in data["categories"]], path)
    for k, ann in enumerate(data.get("annotations", [])):
        _check_bbox(ann["bbox"], f"annotations[{k}] (id {ann['id']})", path)


def _check_unique(key: str, ids: list, path: str) -> None:
    seen: set = set()
    for k, value in enumerate(ids):
        if value in seen:
            problem = f"{key}[{k}] repeats the id {value!r}; ids must be unique"
            raise DataError(path, problem, MALFORMED_ANNOTATION)
        seen.add(value)


def _check_bbox(bbox: object, where: str, path: str) -> None:
    numbers = isinstance(bbox, list) and len(bbox) == 4
    if not (numbers and all(isinstance(v, int | float) and not isinstance(v, bool) for v in bbox)):
        problem = f"{where}: bbox is {bbox!r}, expected [x, y, width, height] (4 numbers)"
        raise DataError(path, problem, MALFORMED_ANNOTATION)


def category_map(categories: list[dict], mode: str) -> tuple[ClassList, dict[int, int]]:
    """Class list and COCO category id -> class index for ``mode`` in all / voc / nonvoc.

    Categories absent from the returned map are dropped (no box, background pixels).
    """
    cats = sorted(categories, key=lambda c: c["id"])
    if mode == "all":
        return ClassList([c["name"] for c in cats]), {c["id"]: i + 1 for i, c in enumerate(cats)}
    if mode == "voc":
        kept = [c for c in cats if c["name"] in COCO_TO_VOC_NAME]
        return VOC, {c["id"]: VOC.index(COCO_TO_VOC_NAME[c["name"]]) for c in kept}
    if mode == "nonvoc":
        kept = [c for c in cats if c["name"] not in COCO_TO_VOC_NAME]
        return ClassList([c["name"] for c in kept]), {c["id"]: i + 1 for i, c in enumerate(kept)}
    raise ValueError(f"unknown COCO class subset {mode!r}; choose from {', '.join(CLASS_MODES)}")


class COCODataset(Dataset):
    """COCO images + instances JSON (see the module docstring for conventions).

    Args:
        images_dir: folder the JSON's ``file_name`` entries are relative to.
        ann_json: the instances JSON.
        classes: "all", "voc" or "nonvoc".
        clip: clip boxes that extend past the image border.
    """

    def __init__(
        self, images_dir: str | Path, ann_json: str | Path, classes: str = "all", clip: bool = True
    ):
        self.images_dir = Path(images_dir).expanduser()
        self.ann_json = Path(ann_json).expanduser()
        self.clip = clip
        self.class_mode = classes
        self.spec = f"coco:{images_dir}:{ann_json}:classes={classes}"
        self._coco = load_coco_json(self.ann_json)
        self.classes, self._label_of = category_map(self._coco.dataset["categories"], classes)
        self._image_of = self._index_images()
        self.ids = list(self._image_of)
        self.has_masks = any(a.get("segmentation") for a in self._coco.anns.values())

    @property
    def identity(self) -> str:
        paths = f"{self.images_dir.resolve()}:{self.ann_json.resolve()}"
        return f"coco:{paths}:classes={self.class_mode}"

    @classmethod
    def from_spec(cls, rest: str) -> COCODataset:
        """``IMAGES_DIR:ANN_JSON[:classes=all|voc|nonvoc]`` (the part after ``coco:``)."""
        parts = rest.split(":")
        if len(parts) == 3 and parts[2].startswith("classes="):
            return cls(parts[0], parts[1], classes=parts[2].removeprefix("classes="))
        if len(parts) == 2 and all(parts):
            return cls(parts[0], parts[1])
        raise ValueError(
            f"bad coco spec 'coco:{rest}': expected coco:IMAGES_DIR:ANN_JSON[:classes=voc] "
            "(paths must not contain ':')"
        )

    def coco_image_entry(self, sample_id: str) -> dict:
        """The JSON's ``images`` entry of one sample (its COCO id, file name, size, ...)."""
        return dict(self._coco.imgs[self._image_of[sample_id]])

    def coco_categories(self) -> tuple[list[dict], dict[int, int]]:
        """The JSON's categories that the class mode keeps, and class index -> category id."""
        kept = [c for c in self._coco.dataset["categories"] if c["id"] in self._label_of]
        kept = sorted(kept, key=lambda c: self._label_of[c["id"]])
        return [dict(c) for c in kept], {self._label_of[c["id"]]: c["id"] for c in kept}

    def _index_images(self) -> dict[str, int]:
        image_of: dict[str, int] = {}
        for k, info in enumerate(self._coco.dataset["images"]):
            stem = check_sample_id(Path(info["file_name"]).stem, f"{self.ann_json}: images[{k}]")
            if stem in image_of:
                problem = f"two images share the file stem {stem!r}; ids must be unique"
                raise DataError(str(self.ann_json), problem, MALFORMED_ANNOTATION)
            image_of[stem] = info["id"]
        return dict(sorted(image_of.items()))

    def _kept_annotations(self, image_id: int) -> tuple[list[dict], list[dict]]:
        """(non-crowd, crowd) annotations of the image whose category the class mode keeps."""
        known = self._coco.cats
        objects, crowds = [], []
        for ann in self._coco.imgToAnns.get(image_id, []):
            if ann["category_id"] not in known:
                problem = f"annotation {ann['id']}: category id {ann['category_id']} not defined"
                raise DataError(str(self.ann_json), problem, UNKNOWN_CLASS)
            if ann["category_id"] in self._label_of:
                (crowds if ann.get("iscrowd") else objects).append(ann)
        return objects, crowds

    def load(self, sample_id: str) -> Sample:
        info = self._coco.imgs[self._image_of[sample_id]]
        path = inside_folder(self.images_dir, info["file_name"], str(self.ann_json))
        image = read_image(path)
        height, width = image.shape[:2]
        if (height, width) != (info["height"], info["width"]):
            problem = f"image is {width}x{height} but {self.ann_json} says"
            raise DataError(str(path), f"{problem} {info['width']}x{info['height']}", IMAGE_SIZE)
        objects, crowds = self._kept_annotations(info["id"])
        boxes = np.array([coco_to_box(*a["bbox"]) for a in objects], np.float64).reshape(-1, 4)
        labels = np.array([self._label_of[a["category_id"]] for a in objects], np.int64)
        tags = {self._label_of[a["category_id"]] for a in objects + crowds}
        try:  # before the mask: painting needs sane boxes
            checked = checked_boxes(boxes, height, width, str(self.ann_json), self.clip)
        except DataError as err:
            raise DataError(err.path, f"{info['file_name']}: {err.problem}", err.kind) from None
        mask = None
        if self.has_masks:
            mask = self._semantic_mask(objects, crowds, boxes, labels, (height, width))
        boxes = checked
        return Sample(
            id=sample_id, image=image, boxes=boxes, box_labels=labels,
            image_labels=np.array(sorted(tags), np.int64), mask=mask, source=str(path),
            extra={"coco_id": info["id"]},
        )  # fmt: skip

    def _semantic_mask(
        self,
        objects: list[dict],
        crowds: list[dict],
        boxes: np.ndarray,
        labels: np.ndarray,
        size: tuple[int, int],
    ) -> np.ndarray:
        """H x W uint8: crowds 255, then instances largest box first (smaller box on top)."""
        mask = np.zeros(size, dtype=np.uint8)
        for ann in crowds:
            mask[self._instance_mask(ann, size)] = IGNORE
        for k in paint_order(boxes):
            # Without a segmentation only the box is known: its pixels are unknown, not class.
            value = labels[k] if objects[k].get("segmentation") else IGNORE
            mask[self._instance_mask(objects[k], size)] = value
        return mask

    def _instance_mask(self, ann: dict, size: tuple[int, int]) -> np.ndarray:
        """H x W bool pixels of one annotation; its box when it has no segmentation."""
        if not ann.get("segmentation"):
            x1, y1, x2, y2 = (int(round(v)) for v in coco_to_box(*ann["bbox"]))
            region = np.zeros(size, dtype=bool)
            region[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)] = True
            return region
        try:
            with warnings.catch_warnings():  # pycocotools' decode trips a numpy 2 deprecation
                warnings.simplefilter("ignore", DeprecationWarning)
                return self._coco.annToMask(ann).astype(bool)
        except Exception as err:  # pycocotools raises assorted types for bad polygons/RLE
            problem = f"annotation {ann['id']}: cannot rasterise its segmentation ({err})"
            raise DataError(str(self.ann_json), problem, MALFORMED_ANNOTATION) from None
