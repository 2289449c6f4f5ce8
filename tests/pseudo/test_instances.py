"""Label maps -> COCO instances (one mask per box), and back through pycocotools and weakseg's
own COCO reader."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO

from tests.fixtures_data import make_coco, sample_image, write_jpeg
from weakseg.cli import main
from weakseg.data.coco import COCODataset
from weakseg.data.specs import open_dataset
from weakseg.pseudo.instances import encode_rle, export_coco, instance_masks
from weakseg.pseudo.store import LabelStore

# A hand-made 6 x 8 label map. Boxes: A class 1 (0,0)-(6,6), B class 1 (2,2)-(4,4) inside A,
# C class 2 (4,0)-(8,3) overlapping A. (0,7) is class 1 outside every class-1 box; (5,7) ignore.
LABELS = np.array(
    [
        [1, 1, 0, 0, 2, 2, 2, 1],
        [1, 1, 1, 1, 2, 2, 2, 0],
        [0, 1, 1, 1, 1, 2, 0, 0],
        [0, 1, 1, 1, 1, 1, 0, 0],
        [0, 0, 1, 1, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 255],
    ],
    dtype=np.uint8,
)
BOXES = np.array([[0, 0, 6, 6], [2, 2, 4, 4], [4, 0, 8, 3]], dtype=np.float32)
BOX_LABELS = np.array([1, 1, 2])


def pixels(mask: np.ndarray) -> set[tuple[int, int]]:
    return {(int(r), int(c)) for r, c in np.argwhere(mask)}


def test_instance_masks_by_hand():
    a, b, c = instance_masks(LABELS, BOXES, BOX_LABELS)
    # B (smaller, same class) takes its 4 pixels out of A; (2,4) is class 1 inside A and C: A's.
    assert pixels(b) == {(2, 2), (2, 3), (3, 2), (3, 3)}
    assert pixels(a) == {(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (1, 3), (2, 1), (2, 4),
                         (3, 1), (3, 4), (3, 5), (4, 2), (4, 3)}  # fmt: skip
    assert pixels(c) == {(0, 4), (0, 5), (0, 6), (1, 4), (1, 5), (1, 6), (2, 5)}
    # (0,7) is class 1 but inside no class-1 box, (5,7) is ignore: no instance holds them.
    assert not (a | b | c)[0, 7] and not (a | b | c)[5, 7]


def test_equal_boxes_of_one_class_give_shared_pixels_to_the_later_box():
    labels = np.zeros((4, 4), dtype=np.uint8)
    labels[:3, :3] = 3
    boxes = np.array([[0, 0, 2, 2], [1, 1, 3, 3]], dtype=np.float32)
    first, second = instance_masks(labels, boxes, np.array([3, 3]))
    assert pixels(second) == {(1, 1), (1, 2), (2, 1), (2, 2)}
    assert pixels(first) == {(0, 0), (0, 1), (1, 0)}


def test_rle_decodes_to_the_mask():
    from pycocotools import mask as mask_utils

    rle = encode_rle(LABELS == 1)
    json.dumps(rle)  # JSON-ready
    decoded = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
    np.testing.assert_array_equal(decoded.astype(bool), LABELS == 1)


def make_overlap_folder(root: Path) -> Path:
    """folder:ROOT with overlapping boxes: nested same-class, crossing other-class, whole image."""
    for k, name in enumerate(("a", "b", "c")):
        write_jpeg(root / "images" / f"{name}.jpg", sample_image(10 + k))
    objects = {
        "a.jpg": [{"box": [2, 2, 40, 40], "label": "cat"},
                  {"box": [10, 10, 20, 20], "label": "cat"},
                  {"box": [30, 5, 60, 30], "label": "dog"}],
        "b.jpg": [{"box": [0, 0, 64, 48], "label": "dog"},
                  {"box": [20, 10, 44, 38], "label": "cat"}],
        "c.jpg": [],
    }  # fmt: skip
    (root / "boxes.json").write_text(json.dumps({"classes": ["cat", "dog"], "images": objects}))
    return root


def read_pycocotools(path: Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def painted(coco: COCO, image_id: int, shape: tuple[int, int], label_of: dict) -> np.ndarray:
    out = np.zeros(shape, dtype=np.uint8)
    for ann in coco.imgToAnns[image_id]:
        mask = coco.annToMask(ann).astype(bool)
        assert not out[mask].any(), "instances overlap"
        x, y, w, h = ann["bbox"]
        outside = mask.copy()
        outside[int(y) : int(np.ceil(y + h)), int(x) : int(np.ceil(x + w))] = False
        assert not outside.any(), "a mask leaves its box"
        out[mask] = label_of[ann["category_id"]]
    return out


@pytest.mark.parametrize("generator", ["box", "grabcut", "crf-box"])
def test_round_trip_through_pycocotools_and_weakseg(tmp_path, generator):
    root = make_overlap_folder(tmp_path / "data")
    spec, out = f"folder:{root}", tmp_path / "labels"
    assert main(["labels", "--dataset", spec, "--generator", generator, "--out", str(out),
                 "--workers", "1", "--no-progress", "--format", "coco"]) == 0  # fmt: skip
    dataset, store = open_dataset(spec), LabelStore(out)
    coco = read_pycocotools(out / "instances.json")
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["cat", "dog"]
    assert len(coco.anns) == 5 and len(coco.imgs) == 3
    reread = COCODataset(root / "images", out / "instances.json")
    assert reread.ids == dataset.ids
    for number, sample_id in enumerate(dataset.ids, start=1):
        sample, labels = dataset.load(sample_id), store.read(sample_id)
        # pycocotools: the masks, painted, are the PNG.
        rebuilt = painted(coco, number, labels.shape, {1: 1, 2: 2})
        np.testing.assert_array_equal(rebuilt, labels)
        # weakseg's COCO reader: same boxes, same classes, and its semantic mask is the PNG.
        again = reread.load(sample_id)
        np.testing.assert_allclose(again.boxes, sample.boxes, atol=0.01)
        np.testing.assert_array_equal(again.box_labels, sample.box_labels)
        np.testing.assert_array_equal(again.mask, labels)


def test_coco_input_keeps_its_image_and_category_ids(tmp_path):
    images, ann_json = make_coco(tmp_path / "coco")
    spec, out = f"coco:{images}:{ann_json}", tmp_path / "labels"
    assert main(["labels", "--dataset", spec, "--generator", "box", "--out", str(out),
                 "--workers", "1", "--no-progress"]) == 0  # fmt: skip
    assert main(["export-labels", "--dataset", spec, "--labels", str(out),
                 "--out", str(tmp_path / "inst.json")]) == 0  # fmt: skip
    data = json.loads((tmp_path / "inst.json").read_text())
    assert [(i["id"], i["file_name"]) for i in data["images"]] == [(1, "a.jpg"), (2, "b.jpg")]
    assert [(c["id"], c["name"]) for c in data["categories"]] == [
        (1, "person"), (18, "dog"), (38, "kite"),
    ]  # fmt: skip
    # Three boxes (the crowd has none); the small dog on top takes its pixels from the person.
    areas = {a["category_id"]: a["area"] for a in data["annotations"]}
    assert areas == {1: 40 * 40 - 10 * 10, 18: 100, 38: 16 * 16}
    assert data["info"]["generator"] == "box"
    reread = COCODataset(images, tmp_path / "inst.json").load("a")
    np.testing.assert_array_equal(reread.mask, LabelStore(out).read("a"))


def test_summary_counts_what_coco_cannot_hold(tmp_path):
    """Ignore pixels and class pixels outside their boxes are counted, not silently lost."""
    images, ann_json = make_coco(tmp_path / "coco")
    dataset = open_dataset(f"coco:{images}:{ann_json}")
    store = LabelStore(tmp_path / "labels")
    labels = np.zeros((48, 64), dtype=np.uint8)
    labels[0:5, 0:5] = 1  # person pixels inside the person's box
    labels[45:48, 0:2] = 1  # person pixels outside it: 6
    labels[0, 63] = 255  # 1 ignore pixel
    store.write("a", {"labels": labels})
    summary = export_coco(dataset, store.root, tmp_path / "x.json")
    assert (summary.images, summary.unlabelled, summary.annotations) == (1, 1, 3)
    assert (summary.outside_pixels, summary.ignore_pixels, summary.empty_masks) == (6, 1, 2)


@pytest.mark.realdata
def test_round_trip_on_coco128(coco128, tmp_path):
    spec = f"coco:{coco128 / 'train2017'}:{coco128 / 'annotations/instances_train2017.json'}"
    out = tmp_path / "box"
    assert main(["labels", "--dataset", spec, "--generator", "box", "--out", str(out), "--workers",
                 "1", "--no-progress", "--shard", "0/8", "--format", "coco"]) == 0  # fmt: skip
    data = json.loads((out / "instances.json").read_text())
    assert len(data["images"]) == 16 and len(data["categories"]) == 80
    reread = COCODataset(coco128 / "train2017", out / "instances.json")
    dataset = open_dataset(spec)
    assert reread.ids == sorted(dataset.ids)[::8]  # the ids of shard 0/8
    for sample_id in reread.ids:
        sample, again = dataset.load(sample_id), reread.load(sample_id)
        assert again.extra["coco_id"] == sample.extra["coco_id"]
        np.testing.assert_array_equal(again.box_labels, sample.box_labels)
        np.testing.assert_array_equal(again.mask, LabelStore(out).read(sample_id))
