"""Box conventions: 0-based end-exclusive corners, VOC/COCO conversion, smaller box on top."""

from __future__ import annotations

import numpy as np
import pytest

from weakseg.data.boxes import (
    background_mask,
    box_area,
    box_label_map,
    box_problems,
    box_tensor,
    box_to_voc,
    class_box_masks,
    clip_boxes,
    coco_to_box,
    paint_order,
    pixel_box,
    voc_to_box,
)


def test_voc_to_box_known_example():
    # 2007_000063's dog: XML (123, 115, 379, 275) covers columns 122..378 0-based.
    assert voc_to_box(123, 115, 379, 275) == (122.0, 114.0, 379.0, 275.0)


@pytest.mark.parametrize("corners", [(1, 1, 1, 1), (123, 115, 379, 275), (5, 7, 500, 375)])
def test_voc_round_trip(corners):
    assert box_to_voc(*voc_to_box(*corners)) == corners


def test_single_pixel_voc_box_has_area_one():
    box = np.array([voc_to_box(5, 5, 5, 5)])
    assert box_area(box).tolist() == [1.0]
    label_map = box_label_map(box, np.array([3]), 10, 10)
    assert np.argwhere(label_map == 3).tolist() == [[4, 4]]


def test_coco_to_box():
    assert coco_to_box(10.5, 20, 30, 40) == (10.5, 20, 40.5, 60)


def test_box_tensor_smaller_box_on_top_whatever_the_file_order():
    big, small = [0, 0, 8, 8], [2, 2, 4, 4]
    for boxes, labels in (([big, small], [1, 2]), ([small, big], [2, 1])):
        t = box_tensor(np.array(boxes, np.float32), np.array(labels), 10, 10, num_classes=3)
        assert t.shape == (3, 10, 10)
        assert np.all(t.sum(0) == 1)  # exactly one channel per pixel
        assert t[2, 3, 3] == 1 and t[1, 3, 3] == 0  # the small box wins where they overlap
        assert t[1, 0, 0] == 1 and t[0, 9, 9] == 1  # big box elsewhere, background outside


def test_equal_area_boxes_keep_file_order():
    boxes = np.array([[0, 0, 4, 4], [2, 2, 6, 6]], np.float32)
    assert paint_order(boxes).tolist() == [0, 1]  # painted in file order: the later box on top
    assert box_label_map(boxes, np.array([1, 2]), 8, 8)[3, 3] == 2


def test_pixel_box_rounds_outwards_and_clips():
    assert pixel_box(np.array([1.2, 2.7, 5.1, 6.0]), 10, 10) == (1, 2, 6, 6)
    assert pixel_box(np.array([-3.0, -1.0, 20.0, 5.0]), 10, 12) == (0, 0, 12, 5)


def test_background_mask():
    boxes = np.array([[1, 1, 3, 3], [2, 2, 5, 4]], np.float32)
    bg = background_mask(boxes, 6, 6)
    assert bg.sum() == 36 - 4 - 6 + 1  # union of a 2x2 and a 3x2 box overlapping in one pixel
    assert not bg[1, 1] and not bg[3, 4] and bg[0, 0] and bg[5, 5]
    assert background_mask(np.zeros((0, 4)), 3, 4).all()


def test_class_box_masks_union_per_class():
    boxes = np.array([[0, 0, 2, 2], [3, 3, 4, 4], [1, 1, 3, 3]], np.float32)
    masks = class_box_masks(boxes, np.array([1, 1, 2]), 5, 5)
    assert sorted(masks) == [1, 2]
    assert masks[1].sum() == 5 and masks[2].sum() == 4


def test_clip_boxes():
    clipped = clip_boxes(np.array([[-5, 2, 70, 50]], np.float32), height=48, width=64)
    assert clipped.tolist() == [[0, 2, 64, 48]]


def test_box_problems_names_each_kind():
    boxes = np.array(
        [
            [0, 0, 64, 48],  # the whole image: fine
            [10, 10, 5, 20],  # inverted
            [10, 10, 10, 20],  # zero width
            [70, 10, 80, 20],  # right of the image
            [-5, 10, 20, 20],  # crosses the left border
            [np.nan, 0, 1, 1],
        ],
        np.float32,
    )
    assert box_problems(boxes, 48, 64) == [
        "",
        "inverted box (x2 < x1 or y2 < y1)",
        "zero-area box",
        "box entirely outside the image",
        "box extends outside the image",
        "non-finite coordinates",
    ]
