import numpy as np
import pytest

from tests.pseudo.scenes import SHAPES, class_iou, overlap_scene, single_scene
from weakseg.data.sample import Sample
from weakseg.pseudo.box import BoxGenerator
from weakseg.pseudo.registry import generator_names, make_generator


def _sample(boxes, labels, h=20, w=30) -> Sample:
    return Sample(id="t", image=np.zeros((h, w, 3), np.uint8), boxes=boxes, box_labels=labels)


def test_fills_boxes_and_nothing_else():
    out = BoxGenerator().generate(_sample([[2, 3, 10, 8]], [5]))
    assert out.dtype == np.uint8 and out.shape == (20, 30)
    assert (out[3:8, 2:10] == 5).all()
    assert out.sum() == 5 * 8 * 5  # x2/y2 exclusive: 8 columns, 5 rows


def test_smaller_box_on_top_whatever_the_file_order():
    big, small = [0, 0, 20, 15], [5, 5, 12, 10]
    for boxes, labels in (([big, small], [1, 2]), ([small, big], [2, 1])):
        out = BoxGenerator().generate(_sample(boxes, labels))
        assert (out[5:10, 5:12] == 2).all()
        assert out[0, 0] == 1


def test_no_boxes_gives_background():
    out = BoxGenerator().generate(_sample(np.zeros((0, 4)), []))
    assert out.shape == (20, 30) and not out.any()


@pytest.mark.parametrize("shape", SHAPES)
def test_box_iou_on_scenes_is_the_shape_fill_rate(shape):
    # The scenes' objects do not fill their boxes: this is the bar grabcut and crf-box must beat.
    sample = single_scene(shape)
    iou = class_iou(BoxGenerator().generate(sample), sample.mask, 1)
    assert iou == pytest.approx(sample.mask.sum() / (70 * 70), abs=1e-6)
    assert iou < 0.8


def test_overlap_scene_box_labels_follow_paint_order():
    sample = overlap_scene()
    out = BoxGenerator().generate(sample)
    assert (out[40:110, 85:145] == 2).all()  # the smaller (triangle) box is on top


def test_registry_lists_the_three_baselines():
    assert {"box", "grabcut", "crf-box"} <= set(generator_names())
    assert isinstance(make_generator("box"), BoxGenerator)
    with pytest.raises(ValueError, match="unknown generator"):
        make_generator("nope")
