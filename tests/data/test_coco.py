"""COCO reader: class subsets, crowds as ignore, smaller instance on top, bad input, real data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.fixtures_data import HEIGHT, WIDTH, make_coco, sample_image, write_jpeg
from weakseg.data import files
from weakseg.data.classes import VOC
from weakseg.data.coco import COCODataset
from weakseg.data.dataset import DataError
from weakseg.data.specs import open_dataset


@pytest.fixture
def coco(tmp_path):
    return make_coco(tmp_path)


def test_all_classes_in_category_id_order(coco):
    dataset = COCODataset(*coco)
    assert dataset.ids == ["a", "b"]
    assert dataset.classes.names == ("background", "person", "dog", "kite")
    sample = dataset.load("a")
    assert sample.boxes.tolist() == [[0, 0, 40, 40], [20, 20, 30, 30], [44, 4, 60, 20]]
    assert sample.box_labels.tolist() == [1, 2, 3]  # the crowd gives no box
    assert sample.extra["coco_id"] == 1


def test_mask_crowd_ignore_and_smaller_instance_on_top(coco):
    mask = COCODataset(*coco).load("a").mask
    assert mask.shape == (HEIGHT, WIDTH)
    assert mask[10, 10] == 1 and mask[25, 25] == 2  # the dog lies on the person: dog wins
    assert mask[10, 50] == 3
    assert (mask[31:, 51:] == 255).all() and mask[5, 62] == 0
    assert not (mask == 255)[:30].any()


def test_image_without_annotations_is_all_background(coco):
    sample = COCODataset(*coco).load("b")
    assert sample.boxes.shape == (0, 4) and (sample.mask == 0).all()


def test_voc_subset_remaps_and_drops_other_categories(coco):
    dataset = COCODataset(*coco, classes="voc")
    assert dataset.classes is VOC
    sample = dataset.load("a")
    assert sample.box_labels.tolist() == [15, 12]  # person, dog; the kite is dropped
    assert sample.mask[10, 10] == 15 and sample.mask[25, 25] == 12
    assert sample.mask[10, 50] == 0  # kite pixels become background
    assert sample.mask[40, 60] == 255  # a crowd of a kept class stays ignore
    assert sample.image_labels.tolist() == [12, 15]


def test_nonvoc_subset(coco):
    dataset = COCODataset(*coco, classes="nonvoc")
    assert dataset.classes.names == ("background", "kite")
    sample = dataset.load("a")
    assert sample.box_labels.tolist() == [1]
    assert sample.mask[10, 50] == 1 and sample.mask[10, 10] == 0 and sample.mask[40, 60] == 0


def test_boxes_only_json_gives_no_mask(tmp_path):
    dataset = COCODataset(*make_coco(tmp_path, segmentation=False))
    sample = dataset.load("a")
    assert sample.mask is None and len(sample.boxes) == 3


def test_spec_round_trip_and_bad_specs(coco):
    images, ann = coco
    dataset = open_dataset(f"coco:{images}:{ann}:classes=voc")
    assert dataset.classes is VOC and open_dataset(dataset.spec).ids == dataset.ids
    assert len(open_dataset(f"coco:{images}:{ann}").classes) == 4
    with pytest.raises(ValueError, match="IMAGES_DIR:ANN_JSON"):
        open_dataset(f"coco:{images}")
    with pytest.raises(ValueError, match="unknown COCO class subset"):
        open_dataset(f"coco:{images}:{ann}:classes=animals")


def test_missing_image_file(coco):
    images, ann = coco
    (images / "b.jpg").unlink()
    dataset = COCODataset(images, ann)
    with pytest.raises(DataError) as err:
        dataset.load("b")
    assert err.value.path == str(images / "b.jpg") and err.value.kind == files.MISSING_FILE
    dataset.load("a")  # the others still load


def test_image_size_must_match_json(coco):
    images, ann = coco
    write_jpeg(images / "b.jpg", sample_image(0, height=20, width=30))
    with pytest.raises(DataError, match="30x20") as err:
        COCODataset(images, ann).load("b")
    assert err.value.kind == files.IMAGE_SIZE


@pytest.mark.parametrize(
    "text, match",
    [("{not json", "not valid JSON"), ('{"images": [{"id": 1}]}', "images\\[0\\] lacks")],
)
def test_malformed_json_names_the_file(coco, text, match):
    images, ann = coco
    ann.write_text(text)
    with pytest.raises(DataError, match=match) as err:
        COCODataset(images, ann)
    assert err.value.path == str(ann) and err.value.kind == files.MALFORMED_ANNOTATION


def test_invalid_box_names_json_and_image(coco):
    images, ann = coco
    data = json.loads(ann.read_text())
    data["annotations"][2]["bbox"] = [80, 4, 10, 10]  # right of the 64-wide image
    ann.write_text(json.dumps(data))
    with pytest.raises(DataError, match="a.jpg.*entirely outside") as err:
        COCODataset(images, ann).load("a")
    assert err.value.path == str(ann) and err.value.kind == files.BAD_BOX


@pytest.fixture
def coco128_paths(coco128):
    return coco128 / "train2017", coco128 / "annotations" / "instances_train2017.json"


@pytest.mark.realdata
def test_real_coco128(coco128_paths):
    dataset = COCODataset(*coco128_paths)
    assert len(dataset) == 128 and len(dataset.classes) == 81
    assert dataset.ids[0] == "000000000009"
    voc = COCODataset(*coco128_paths, classes="voc")
    assert len(voc.classes.names) == 21
    nonvoc = COCODataset(*coco128_paths, classes="nonvoc")
    assert nonvoc.classes.num_foreground == 60
    assert not set(nonvoc.classes.names[1:]) & set(voc.classes.names)


@pytest.mark.realdata
def test_real_coco128_person_remap_and_crowd(coco128_paths):
    data = json.loads(coco128_paths[1].read_text())
    crowd = next(a for a in data["annotations"] if a["iscrowd"] and a["category_id"] == 1)
    image_id = f"{crowd['image_id']:012d}"
    full, voc = COCODataset(*coco128_paths).load(image_id), COCODataset(*coco128_paths, "voc")
    sample = voc.load(image_id)
    assert (sample.mask == 255).any() and (full.mask == 255).any()
    persons = full.box_labels == 1  # person is category 1 -> index 1 in the full list
    assert persons.any() and (sample.box_labels == 15).sum() == persons.sum()
    assert set(np.unique(sample.mask)) <= set(range(21)) | {255}
