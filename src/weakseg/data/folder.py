"""A plain folder of images with boxes: the easiest way to bring your own data.

Spec: ``folder:PATH`` (PATH must not contain ':'). Layout::

    PATH/images/<name>.jpg|png       the images
    PATH/boxes.json                  boxes in the simple format below, OR
    PATH/annotations.json            a COCO instances JSON (the COCO reader, all classes), OR
    PATH/tags.json | PATH/tags.csv   image-level tags only (below; for SEC, no boxes at all)
    PATH/masks/<stem>.png            optional index masks (0 = background, 1..L, 255 = ignore);
                                     they override masks drawn from annotations.json

``boxes.json``::

    {"classes": ["cat", "dog"],
     "images": {"img1.jpg": [{"box": [x1, y1, x2, y2], "label": "cat"},
                             {"box": [10, 20, 30, 40], "label": "dog", "difficult": true}],
                "img2.jpg": []}}

- ``classes`` fixes the indices: "cat" = 1, "dog" = 2 (0 is background). Matching of labels is
  case-insensitive.
- Boxes are 0-based pixel corners with x2/y2 exclusive (a box over columns 3..5 has x1 = 3,
  x2 = 6), clipped to the image when ``clip=True``; inverted / zero-area / outside boxes are
  errors. ``difficult`` is optional (default false).
- The dataset is every image listed in ``images`` (an empty list means: no objects, all
  background) plus every image with a mask. Images in ``images/`` that are in neither are not
  part of the dataset (unannotated is not the same as empty).
- File names in ``images`` must be relative paths inside ``images/`` (no absolute paths, no '..').
- An unknown label is an error of the image that uses it (other images still load); a file that
  is not in this format is an error when the dataset is opened.

Tags only (``Sample.image_labels``; the samples have no boxes), ``tags.json``::

    {"classes": ["cat", "dog"], "images": {"img1.jpg": ["cat", "dog"], "img2.jpg": []}}

or ``tags.csv``, a header ``image,<class 1>,<class 2>,...`` and one row per image with 1 (present)
or 0 per class, e.g. ``img1.jpg,1,1``. The classes and their order come from the header.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from weakseg.data.classes import ClassList
from weakseg.data.coco import COCODataset
from weakseg.data.dataset import DataError, Dataset
from weakseg.data.files import (
    MALFORMED_ANNOTATION,
    MISSING_FILE,
    UNKNOWN_CLASS,
    check_sample_id,
    checked_boxes,
    find_image,
    inside_folder,
    read_image,
    read_label_png,
)
from weakseg.data.sample import Sample


def read_boxes_json(path: Path) -> tuple[ClassList, dict[str, list[dict]]]:
    """Parse and structurally validate ``boxes.json``: (classes, file name -> list of objects)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(str(path), f"not valid JSON ({err})", MALFORMED_ANNOTATION) from None
    classes = data.get("classes") if isinstance(data, dict) else None
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        problem = "needs a non-empty 'classes' list of names"
        raise DataError(str(path), problem, MALFORMED_ANNOTATION)
    if not isinstance(images, dict):
        problem = "needs an 'images' object: file name -> list of boxes"
        raise DataError(str(path), problem, MALFORMED_ANNOTATION)
    for name, objects in images.items():
        _check_objects(objects, f"images[{name!r}]", str(path))
    return ClassList(classes), images


def _check_objects(objects: object, where: str, path: str) -> None:
    if not isinstance(objects, list):
        raise DataError(path, f"{where} is not a list of boxes", MALFORMED_ANNOTATION)
    for k, obj in enumerate(objects):
        box = obj.get("box") if isinstance(obj, dict) else None
        ok = isinstance(box, list) and len(box) == 4
        if not (ok and all(isinstance(v, int | float) for v in box) and "label" in obj):
            problem = f'{where}[{k}] must be {{"box": [x1, y1, x2, y2], "label": NAME}}'
            raise DataError(path, problem, MALFORMED_ANNOTATION)


def read_tags(path: Path) -> tuple[ClassList, dict[str, list[str]]]:
    """Parse ``tags.json`` or ``tags.csv``: (classes, file name -> tag names)."""
    import csv

    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            data = json.loads(text)
            classes, images = data.get("classes"), data.get("images")
        else:
            rows = [r for r in csv.reader(text.splitlines()) if r]
            classes = [c.strip() for c in rows[0][1:]]
            images = {r[0].strip(): [c for c, v in zip(classes, r[1:], strict=True)
                                     if v.strip() == "1"] for r in rows[1:]}  # fmt: skip
            if any(v.strip() not in ("0", "1") for r in rows[1:] for v in r[1:]):
                raise ValueError("every class column must be 0 or 1")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError, IndexError,
            AttributeError) as err:  # fmt: skip
        raise DataError(str(path), f"not a valid tags file ({err})", MALFORMED_ANNOTATION) from None
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise DataError(str(path), "needs a non-empty list of class names", MALFORMED_ANNOTATION)
    if not isinstance(images, dict) or not all(
        isinstance(t, list) and all(isinstance(x, str) for x in t) for t in images.values()
    ):
        problem = "needs 'images': file name -> list of class names"
        raise DataError(str(path), problem, MALFORMED_ANNOTATION)
    return ClassList(classes), images


class FolderDataset(Dataset):
    """``PATH/images`` + ``boxes.json`` or ``annotations.json`` (+ ``masks/``); see the module
    docstring for the format and conventions."""

    def __init__(self, path: str | Path, clip: bool = True):
        self.path = Path(path).expanduser()
        self.images_dir = self.path / "images"
        self.masks_dir = self.path / "masks"
        self.spec = f"folder:{path}"
        self._clip = clip
        self._coco: COCODataset | None = None
        self._objects: dict[str, list[dict]] = {}
        self._file_of: dict[str, str] = {}
        boxes_json, coco_json = self.path / "boxes.json", self.path / "annotations.json"
        tag_files = [p for p in (self.path / "tags.json", self.path / "tags.csv") if p.is_file()]
        found = [p.name for p in (boxes_json, coco_json, *tag_files) if p.is_file()]
        if len(found) > 1:
            problem = f"has {'both ' if len(found) == 2 else ''}{' and '.join(found)}; keep one"
            raise DataError(str(self.path), problem, MALFORMED_ANNOTATION)
        self._tags: dict[str, list[str]] | None = None
        if tag_files:
            self.classes, self._tags = read_tags(tag_files[0])
            ids = self._index_files({n: [] for n in self._tags}, str(tag_files[0]))
            self._tags = {Path(n).stem: t for n, t in self._tags.items()}
        elif coco_json.is_file():
            self._coco = COCODataset(self.images_dir, coco_json, classes="all", clip=clip)
            self.classes, ids = self._coco.classes, set(self._coco.ids)
        elif boxes_json.is_file():
            self.classes, objects = read_boxes_json(boxes_json)
            ids = self._index_files(objects, str(boxes_json))
        else:
            problem = (
                "no boxes.json or annotations.json, nor tags.json or tags.csv (see "
                "weakseg.data.folder for the format)"
            )
            raise DataError(str(self.path), problem, MISSING_FILE)
        masks = {p.stem for p in self.masks_dir.glob("*.png")}
        self.ids = sorted(ids | {s for s in masks if find_image(self.images_dir, s)})

    @property
    def identity(self) -> str:
        return f"folder:{self.path.resolve()}"

    @classmethod
    def from_spec(cls, rest: str) -> FolderDataset:
        """``PATH`` (the part of ``folder:PATH`` after ``folder:``)."""
        if not rest:
            raise ValueError("folder spec needs a path: folder:PATH")
        return cls(rest)

    @property
    def clip(self) -> bool:
        return self._clip

    @clip.setter
    def clip(self, value: bool) -> None:
        self._clip = value
        if self._coco is not None:
            self._coco.clip = value

    def _index_files(self, objects: dict[str, list[dict]], path: str) -> set[str]:
        for name, objs in objects.items():
            stem = check_sample_id(Path(name).stem, f"{path}: images[{name!r}]")
            if stem in self._file_of:
                problem = f"{self._file_of[stem]!r} and {name!r} share the id {stem!r}"
                raise DataError(path, problem, MALFORMED_ANNOTATION)
            self._file_of[stem] = name
            self._objects[stem] = objs
        return set(self._file_of)

    def load(self, sample_id: str) -> Sample:
        if self._coco is not None and sample_id in self._coco.ids:
            sample = self._coco.load(sample_id)
        else:
            sample = self._load_boxes_json(sample_id)
        mask_path = self.masks_dir / f"{sample_id}.png"
        if mask_path.is_file():
            sample.mask = read_label_png(mask_path, len(self.classes), sample.image.shape[:2])
        return sample

    def _load_boxes_json(self, sample_id: str) -> Sample:
        name = self._file_of.get(sample_id)
        json_path = str(self.path / "boxes.json")
        if name:
            found = inside_folder(self.images_dir, name, json_path)
        else:
            found = find_image(self.images_dir, sample_id)
        image_path = found or self.images_dir / sample_id
        image = read_image(image_path)
        height, width = image.shape[:2]
        if self._tags is not None:
            source = "tags.json" if (self.path / "tags.json").is_file() else "tags.csv"
            tags = [self._label(t, str(self.path / source), name)
                    for t in self._tags.get(sample_id, [])]  # fmt: skip
            return Sample(id=sample_id, image=image, boxes=np.zeros((0, 4), np.float32),
                          box_labels=np.zeros(0, np.int64), image_labels=np.unique(tags),
                          source=str(image_path))  # fmt: skip
        objects = self._objects.get(sample_id, [])
        labels = [self._label(obj["label"], json_path, name) for obj in objects]
        boxes = np.array([obj["box"] for obj in objects], dtype=np.float64).reshape(-1, 4)
        try:
            boxes = checked_boxes(boxes, height, width, json_path, self._clip)
        except DataError as err:
            raise DataError(err.path, f"{name}: {err.problem}", err.kind) from None
        return Sample(
            id=sample_id, image=image, boxes=boxes, box_labels=np.array(labels, np.int64),
            difficult=np.array([bool(o.get("difficult", False)) for o in objects], bool),
            source=str(image_path),
        )  # fmt: skip

    def _label(self, label: object, json_path: str, name: str | None) -> int:
        index = self.classes.index(label) if isinstance(label, str) else None
        if not index:
            problem = f"{name}: unknown label {label!r}; classes are {list(self.classes.names[1:])}"
            raise DataError(json_path, problem, UNKNOWN_CLASS)
        return index
