"""Label maps -> a COCO instances JSON: one mask per input box, for tools that train or edit
instance masks (detectron2 / mmdetection Mask R-CNN, YOLO-seg converters, CVAT, Label Studio).

``weakseg labels ... --format coco`` and ``weakseg export-labels`` write it from a label directory
and the dataset the labels were made from. For every box of every labelled image: one annotation
with the box's category, the box (COCO x, y, w, h), its mask as compressed RLE (pycocotools) and
the mask's area. Image entries and categories are the input's when it is a COCO JSON (same ids,
file names, category ids); otherwise images are numbered 1..N in id order with their file names,
and category ids are weakseg's class indices.

Which pixels belong to which box (:func:`instance_masks`): a pixel labelled c belongs to the box of
class c that covers it and is painted last in the PNGs' order, i.e. the smaller box is on top
(Box2Seg section 3.1; equal areas: the later box). Each mask thus lies inside its box, masks never
overlap, and painting them back gives the label map exactly (weakseg's COCO reader does this,
tested), except for what an instances file cannot hold: ignore (255) pixels and class pixels
outside every box of their class, which come back as background. The summary counts both; the
box, grabcut and crf-box generators make neither.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

import weakseg
from weakseg.data.boxes import paint_order, pixel_box
from weakseg.data.dataset import DataError, Dataset
from weakseg.data.sample import IGNORE, Sample
from weakseg.pseudo.store import LabelStore, write_json_atomic


def instance_masks(label_map: np.ndarray, boxes: np.ndarray, box_labels: np.ndarray) -> np.ndarray:
    """K x H x W bool: box k's pixels of its own class that no box painted later claims.

    Args:
        label_map: H x W uint8 label map (0 background, 1..L classes, 255 ignore).
        boxes: K x 4 (x1, y1, x2, y2), 0-based, x2/y2 exclusive.
        box_labels: K class indices.
    """
    height, width = label_map.shape
    owner = np.full((height, width), -1, dtype=np.int64)  # index of the box a pixel belongs to
    for k in paint_order(boxes):
        x1, y1, x2, y2 = pixel_box(boxes[k], height, width)
        inside = owner[y1:y2, x1:x2]  # a view: writing it writes owner
        inside[label_map[y1:y2, x1:x2] == box_labels[k]] = k
    return owner[None] == np.arange(len(boxes))[:, None, None]


def encode_rle(mask: np.ndarray) -> dict:
    """H x W bool -> COCO compressed RLE with the counts as a str (JSON-ready)."""
    rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


@dataclass
class ExportSummary:
    out: str
    images: int = 0  # image entries written (labelled ids)
    annotations: int = 0  # one per box
    empty_masks: int = 0  # boxes whose mask has no pixel (e.g. fully under a smaller box)
    unlabelled: int = 0  # dataset ids without a label PNG (not exported)
    skipped: int = 0  # ids whose image or annotation could not be read
    ignore_pixels: int = 0  # 255 pixels of the label maps: not representable, dropped
    outside_pixels: int = 0  # class pixels outside every box of their class: dropped

    def format(self) -> str:
        text = (f"wrote {self.out}: {self.images} images, {self.annotations} instances "
                f"({self.empty_masks} with an empty mask)")  # fmt: skip
        if self.unlabelled or self.skipped:
            text += f"; not exported: {self.unlabelled} unlabelled, {self.skipped} unreadable"
        if self.ignore_pixels or self.outside_pixels:
            text += (f"; dropped {self.ignore_pixels} ignore pixels and {self.outside_pixels} "
                     "class pixels outside their boxes")  # fmt: skip
        return text


def dataset_categories(dataset: Dataset) -> tuple[list[dict], dict[int, int]]:
    """(COCO categories, class index -> category id): the input JSON's for a COCO dataset,
    else one category per foreground class with the class index as its id."""
    if hasattr(dataset, "coco_categories"):
        return dataset.coco_categories()
    names = dataset.classes.names
    categories = [{"id": c, "name": names[c], "supercategory": ""} for c in range(1, len(names))]
    return categories, {c: c for c in range(1, len(names))}


def image_entry(dataset: Dataset, sample: Sample, number: int) -> dict:
    """The COCO ``images`` entry of a sample: the input JSON's, or numbered ``number``."""
    if hasattr(dataset, "coco_image_entry"):
        return dataset.coco_image_entry(sample.id)
    name = Path(sample.source).name if Path(sample.source).suffix else f"{sample.id}.png"
    return {"id": number, "file_name": name, "width": sample.width, "height": sample.height}


def sample_annotations(
    sample: Sample, labels: np.ndarray, image_id: int, category_of: dict[int, int], first_id: int
) -> tuple[list[dict], np.ndarray]:
    """One annotation per box of ``sample`` (ids from ``first_id``) and the K x H x W masks."""
    masks = instance_masks(labels, sample.boxes, sample.box_labels)
    annotations = []
    for k, (box, label) in enumerate(zip(sample.boxes, sample.box_labels, strict=True)):
        x1, y1, x2, y2 = (float(v) for v in box)
        annotations.append({
            "id": first_id + k, "image_id": image_id, "category_id": category_of[int(label)],
            "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
            "area": int(masks[k].sum()), "iscrowd": 0, "segmentation": encode_rle(masks[k]),
        })  # fmt: skip
    return annotations, masks


def export_coco(dataset: Dataset, label_dir: str | Path, out: str | Path) -> ExportSummary:
    """Write ``out``: the COCO instances JSON of ``label_dir``'s label maps over ``dataset``."""
    store = LabelStore(label_dir)
    categories, category_of = dataset_categories(dataset)
    summary = ExportSummary(out=str(out))
    images, annotations = [], []
    for number, sample_id in enumerate(dataset.ids, start=1):
        if not store.has(sample_id):
            summary.unlabelled += 1
            continue
        try:
            sample = dataset.load(sample_id)
        except DataError:
            summary.skipped += 1
            continue
        labels = store.read(sample_id)
        if labels.shape != (sample.height, sample.width):
            raise ValueError(f"{store.path(sample_id)}: label map {labels.shape} does not match "
                             f"its image {(sample.height, sample.width)}")  # fmt: skip
        entry = image_entry(dataset, sample, number)
        anns, masks = sample_annotations(sample, labels, entry["id"], category_of,
                                         len(annotations) + 1)  # fmt: skip
        images.append(entry)
        annotations += anns
        summary.empty_masks += sum(a["area"] == 0 for a in anns)
        summary.ignore_pixels += int((labels == IGNORE).sum())
        covered = masks.any(0) if len(masks) else np.zeros(labels.shape, dtype=bool)
        summary.outside_pixels += int(((labels != 0) & (labels != IGNORE) & ~covered).sum())
    summary.images, summary.annotations = len(images), len(annotations)
    data = {"info": _info(dataset, store), "images": images, "annotations": annotations,
            "categories": categories}  # fmt: skip
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, data)
    return summary


def _info(dataset: Dataset, store: LabelStore) -> dict:
    meta = store.meta() or {}
    return {
        "description": f"weakseg pseudo labels of {dataset.spec}, one mask per box",
        "generator": meta.get("generator"), "params": meta.get("params"),
        "labels": str(store.root), "dataset": dataset.spec,
        "weakseg_version": weakseg.__version__, "date_created": time.strftime("%Y-%m-%d"),
    }  # fmt: skip


__all__ = ["ExportSummary", "encode_rle", "export_coco", "instance_masks"]
