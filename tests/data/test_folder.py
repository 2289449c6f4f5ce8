"""Folder reader: boxes.json format, optional masks, delegation to the COCO reader."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.fixtures_data import HEIGHT, WIDTH, make_coco, sample_image, write_jpeg, write_png
from weakseg.data import files
from weakseg.data.dataset import DataError
from weakseg.data.folder import FolderDataset
from weakseg.data.specs import open_dataset


@pytest.fixture
def folder(tmp_path):
    """images: one.jpg (cat + difficult dog), two.png (listed, no objects), extra.jpg (not listed),
    masked.jpg (not listed, has a mask); classes Cat, dog."""
    for seed, name in enumerate(("one.jpg", "two.png", "extra.jpg", "masked.jpg")):
        write_jpeg(tmp_path / "images" / name, sample_image(seed))
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    mask[5:10, 5:10] = 2
    write_png(tmp_path / "masks" / "masked.png", mask)
    boxes = {
        "classes": ["Cat", "dog"],
        "images": {
            "one.jpg": [
                {"box": [3, 4, 20, 30.5], "label": "cat"},
                {"box": [-2, 0, 70, 10], "label": "dog", "difficult": True},
            ],
            "two.png": [],
        },
    }
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    return tmp_path


def test_boxes_json(folder):
    dataset = open_dataset(f"folder:{folder}")
    assert isinstance(dataset, FolderDataset)
    assert dataset.ids == ["masked", "one", "two"]  # extra.jpg is neither listed nor masked
    assert dataset.classes.names == ("background", "Cat", "dog")
    one = dataset.load("one")
    assert one.boxes.tolist() == [[3, 4, 20, 30.5], [0, 0, WIDTH, 10]]  # as written, then clipped
    assert one.box_labels.tolist() == [1, 2] and one.difficult.tolist() == [False, True]
    assert one.mask is None and one.source == str(folder / "images" / "one.jpg")
    assert dataset.load("two").boxes.shape == (0, 4)
    masked = dataset.load("masked")
    assert masked.boxes.shape == (0, 4) and masked.mask[7, 7] == 2
    assert open_dataset(dataset.spec).ids == dataset.ids


def test_clip_false_keeps_boxes_as_written(folder):
    assert FolderDataset(folder, clip=False).load("one").boxes[1].tolist() == [-2, 0, 70, 10]


def test_unknown_label_fails_only_its_image(folder):
    data = json.loads((folder / "boxes.json").read_text())
    data["images"]["one.jpg"][0]["label"] = "unicorn"
    (folder / "boxes.json").write_text(json.dumps(data))
    dataset = FolderDataset(folder)
    with pytest.raises(DataError, match="one.jpg: unknown label 'unicorn'") as err:
        dataset.load("one")
    assert err.value.path == str(folder / "boxes.json") and err.value.kind == files.UNKNOWN_CLASS
    dataset.load("two")


def test_mask_must_match_image_size(folder):
    write_png(folder / "masks" / "one.png", np.zeros((10, 10), np.uint8))
    with pytest.raises(DataError, match="mask is 10x10") as err:
        FolderDataset(folder).load("one")
    assert err.value.path == str(folder / "masks" / "one.png")


def test_listed_image_missing(folder):
    (folder / "images" / "two.png").unlink()
    with pytest.raises(DataError) as err:
        FolderDataset(folder).load("two")
    assert err.value.kind == files.MISSING_FILE and err.value.path.endswith("two.png")


@pytest.mark.parametrize(
    "content, match",
    [
        ({"images": {}}, "'classes' list"),
        ({"classes": ["a"], "images": []}, "'images' object"),
        ({"classes": ["a"], "images": {"x.jpg": [{"box": [1, 2, 3]}]}}, "x.jpg.*must be"),
    ],
)
def test_malformed_boxes_json(folder, content, match):
    (folder / "boxes.json").write_text(json.dumps(content))
    with pytest.raises(DataError, match=match) as err:
        FolderDataset(folder)
    assert err.value.kind == files.MALFORMED_ANNOTATION


def test_needs_exactly_one_annotation_file(folder):
    (folder / "annotations.json").write_text("{}")
    with pytest.raises(DataError, match="both"):
        FolderDataset(folder)
    (folder / "annotations.json").unlink()
    (folder / "boxes.json").unlink()
    with pytest.raises(DataError, match="no boxes.json or annotations.json"):
        FolderDataset(folder)


def test_annotations_json_delegates_to_coco(tmp_path):
    images, ann = make_coco(tmp_path / "src")
    shutil.copytree(images, tmp_path / "set" / "images")
    shutil.copy(ann, tmp_path / "set" / "annotations.json")
    dataset = FolderDataset(tmp_path / "set", clip=True)
    assert dataset.ids == ["a", "b"] and dataset.classes.names[1:] == ("person", "dog", "kite")
    sample = dataset.load("a")
    assert sample.box_labels.tolist() == [1, 2, 3] and sample.mask[25, 25] == 2
    override = np.full((HEIGHT, WIDTH), 3, np.uint8)
    write_png(tmp_path / "set" / "masks" / "a.png", override)
    np.testing.assert_array_equal(dataset.load("a").mask, override)  # masks/ wins over the JSON


@pytest.fixture
def tagged(tmp_path):
    """images one.jpg (Cat, dog) and two.png (no tag); tags only, no boxes anywhere."""
    for seed, name in enumerate(("one.jpg", "two.png")):
        write_jpeg(tmp_path / "images" / name, sample_image(seed))
    return tmp_path


def test_tags_json_gives_image_labels_and_no_boxes(tagged):
    tags = {"classes": ["Cat", "dog"], "images": {"one.jpg": ["dog", "cat"], "two.png": []}}
    (tagged / "tags.json").write_text(json.dumps(tags))
    data = open_dataset(f"folder:{tagged}")
    assert data.ids == ["one", "two"] and data.classes.names == ("background", "Cat", "dog")
    one, two = data.load("one"), data.load("two")
    assert one.image_labels.tolist() == [1, 2] and one.boxes.shape == (0, 4) and one.mask is None
    assert two.image_labels.tolist() == []


def test_tags_csv_reads_the_classes_from_the_header(tagged):
    (tagged / "tags.csv").write_text("image,Cat,dog\none.jpg,0,1\ntwo.png,0,0\n")
    data = FolderDataset(tagged)
    assert data.classes.names == ("background", "Cat", "dog")
    assert data.load("one").image_labels.tolist() == [2]


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("tags.csv", "image,Cat\none.jpg,yes\n", "0 or 1"),
        ("tags.json", '{"classes": ["Cat"], "images": {"one.jpg": "Cat"}}', "list of class"),
        ("tags.json", "[", "not a valid tags file"),
    ],
)
def test_malformed_tags_files(tagged, name, content, match):
    (tagged / name).write_text(content)
    with pytest.raises(DataError, match=match):
        FolderDataset(tagged)


def test_unknown_tag_fails_its_image(tagged):
    (tagged / "tags.json").write_text('{"classes": ["Cat"], "images": {"one.jpg": ["bird"]}}')
    with pytest.raises(DataError, match="unknown label 'bird'"):
        FolderDataset(tagged).load("one")
