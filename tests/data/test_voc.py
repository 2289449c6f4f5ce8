"""VOC reader: layout detection, splits, XML boxes, both mask folders and PNG modes, real data."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.fixtures_data import (
    GOOD_BOX,
    GOOD_IDS,
    HEIGHT,
    WIDTH,
    good_mask,
    voc_xml,
    write_png,
    write_voc_sample,
)
from weakseg.data import files
from weakseg.data.dataset import DataError
from weakseg.data.specs import open_dataset
from weakseg.data.voc import VOCDataset, parse_voc_xml


def test_load_good_sample(clean_voc):
    sample = VOCDataset(clean_voc).load("good_1")
    assert sample.image.shape == (HEIGHT, WIDTH, 3) and sample.image.dtype == np.uint8
    assert sample.boxes.tolist() == [list(GOOD_BOX), [49.0, 4.0, 60.0, 20.0]]
    assert sample.box_labels.tolist() == [8, 5]  # cat, bottle
    assert sample.difficult.tolist() == [False, True]
    assert sample.image_labels.tolist() == [5, 8]
    np.testing.assert_array_equal(sample.mask, good_mask(8))
    assert sample.source.endswith("JPEGImages/good_1.jpg")
    assert sample.extra["xml_size"] == (HEIGHT, WIDTH)


def test_root_may_be_parent_or_voc2012_itself(clean_voc):
    assert VOCDataset(clean_voc).ids == list(GOOD_IDS)
    assert VOCDataset(clean_voc / "VOC2012").ids == list(GOOD_IDS)
    with pytest.raises(DataError, match="JPEGImages") as err:
        VOCDataset(clean_voc / "VOC2012" / "Annotations")
    assert err.value.kind == files.MISSING_FILE


def test_spec_and_split(clean_voc):
    dataset = open_dataset(f"voc:{clean_voc}:one")
    assert isinstance(dataset, VOCDataset) and dataset.ids == ["good_0"]
    assert open_dataset(dataset.spec).ids == ["good_0"]  # the spec re-opens the same dataset
    with pytest.raises(DataError, match="available: all, one"):
        VOCDataset(clean_voc, split="train")


def test_default_ids_need_xml_or_mask(clean_voc):
    voc = clean_voc / "VOC2012"
    write_voc_sample(voc, "bare", 5, None, None)  # image only: not a sample
    write_voc_sample(voc, "mask_only", 6, None, good_mask(3))
    dataset = VOCDataset(clean_voc)
    assert dataset.ids == [*GOOD_IDS, "mask_only"]
    sample = dataset.load("mask_only")
    assert sample.boxes.shape == (0, 4) and sample.mask is not None  # boxes not derived from mask


def test_xml_without_mask_loads_with_mask_none(clean_voc):
    voc = clean_voc / "VOC2012"
    write_voc_sample(voc, "xml_only", 5, [("dog", (1, 1, 10, 10), False, False)], None)
    assert VOCDataset(clean_voc).load("xml_only").mask is None


def test_palette_png_in_segmentation_class_gives_indices(clean_voc):
    voc = clean_voc / "VOC2012"
    (voc / "SegmentationClassAug" / "good_0.png").unlink()
    path = write_png(voc / "SegmentationClass" / "good_0.png", good_mask(12), palette=True)
    assert Image.open(path).mode == "P"
    sample = VOCDataset(clean_voc).load("good_0")
    np.testing.assert_array_equal(sample.mask, good_mask(12))


def test_rgb_mask_is_refused(clean_voc):
    path = clean_voc / "VOC2012" / "SegmentationClassAug" / "good_0.png"
    Image.fromarray(np.zeros((HEIGHT, WIDTH, 3), np.uint8)).save(path)
    with pytest.raises(DataError, match="mode RGB") as err:
        VOCDataset(clean_voc).load("good_0")
    assert err.value.path == str(path)


def test_border_boxes_clipped_unless_clip_false(clean_voc):
    voc = clean_voc / "VOC2012"
    write_voc_sample(voc, "edge", 5, [("dog", (-4, 1, 70, 10), False, False)], None)
    assert VOCDataset(clean_voc).load("edge").boxes.tolist() == [[0, 0, WIDTH, 10]]
    assert VOCDataset(clean_voc, clip=False).load("edge").boxes.tolist() == [[-5, 0, 70, 10]]


def test_real_image_size_wins_over_xml_size(clean_voc):
    voc = clean_voc / "VOC2012"
    xml = voc_xml("good_0.jpg", [("dog", (1, 1, 10, 10), False, False)], size=(100, 200))
    (voc / "Annotations" / "good_0.xml").write_text(xml)
    sample = VOCDataset(clean_voc).load("good_0")
    assert sample.image.shape[:2] == (HEIGHT, WIDTH) and sample.extra["xml_size"] == (100, 200)


def test_class_aliases_and_case(clean_voc):
    voc = clean_voc / "VOC2012"
    objects = [("Airplane", (1, 1, 10, 10), False, False), (" TV ", (2, 2, 9, 9), False, True)]
    write_voc_sample(voc, "aliases", 5, objects, None)
    sample = VOCDataset(clean_voc).load("aliases")
    assert sample.box_labels.tolist() == [1, 20] and sample.truncated.tolist() == [False, True]


def test_malformed_coordinates_name_the_tag(tmp_path):
    path = tmp_path / "a.xml"
    path.write_text("<annotation><object><name>dog</name><bndbox><xmin>x</xmin></bndbox></object>"
                    "</annotation>")  # fmt: skip
    with pytest.raises(DataError, match="xmin") as err:
        parse_voc_xml(path)
    assert err.value.kind == files.MALFORMED_XML and err.value.path == str(path)


@pytest.mark.realdata
def test_real_voc_dev_ids_and_known_image(voc_dev):
    assert len(VOCDataset(voc_dev)) == 861
    assert len(open_dataset(f"voc:{voc_dev}:dev_train")) == 689
    sample = VOCDataset(voc_dev / "VOC2012").load("2007_000063")
    assert sample.boxes.tolist() == [[122, 114, 379, 275], [74, 0, 428, 375]]
    assert sample.box_labels.tolist() == [12, 9]  # dog, chair
    assert sample.truncated.tolist() == [False, True]
    assert sample.image.shape == (375, 500, 3) and sample.mask.shape == (375, 500)
    assert set(np.unique(sample.mask)) <= {0, 9, 12, 255} and (sample.mask == 12).any()


@pytest.mark.realdata
def test_real_voc_dev_all_classes_and_mask_sizes(voc_dev):
    dataset = VOCDataset(voc_dev)
    labels = set()
    for sample_id in dataset.ids:
        labels |= {
            dataset.classes.index(o.name) for o in dataset.read_annotation(sample_id).objects
        }
    assert labels == set(range(1, 21))
    for sample_id in dataset.ids[::43]:  # 21 images: a spread, quickly
        sample = dataset.load(sample_id)
        assert sample.mask.shape == sample.image.shape[:2]
        assert set(np.unique(sample.mask)) <= set(range(21)) | {255}
