"""SEC's cue rules (papers/sec.md supplement 6.1) on toy maps: the CAM threshold per tagged
class, the saliency percentile, the median filter and the smaller-class-wins conflict rule."""

from __future__ import annotations

import numpy as np
import pytest

from weakseg.pseudo.registry import make_generator
from weakseg.pseudo.sec import (
    background_cue,
    combine_cues,
    cue_counts,
    foreground_cues,
    median_filter,
)


def test_foreground_cues_threshold_each_tagged_class_at_its_own_max():
    cam = np.zeros((3, 2, 3), np.float32)
    cam[0] = [[10, 2.5, 1.5], [0, -1, 3]]  # class 1: > 0.2 x 10 = 2
    cam[1] = [[0.1, 0.3, 0.05], [0.5, 0, 0]]  # class 2: > 0.2 x 0.5 = 0.1
    cam[2] = [[9, 9, 9], [9, 9, 9]]  # class 3 is not tagged
    cues = foreground_cues(cam, np.array([1, 2]), 0.2)
    assert sorted(cues) == [1, 2]
    assert cues[1].tolist() == [[True, True, False], [False, False, True]]
    assert cues[2].tolist() == [[False, True, False], [True, False, False]]


def test_foreground_cues_skip_a_class_without_positive_activation():
    cam = -np.ones((1, 2, 2), np.float32)
    assert foreground_cues(cam, np.array([1]), 0.2) == {}


def test_background_cue_is_the_least_salient_share():
    saliency = np.arange(20, dtype=np.float32).reshape(4, 5)[::-1]  # values 0..19, not in order
    cue = background_cue(saliency, 0.1)  # int(0.1 x 20) = 2: the two cells below the 3rd value
    assert cue.sum() == 2 and set(saliency[cue].tolist()) == {0.0, 1.0}
    assert background_cue(saliency, 0.25).sum() == 5


def test_median_filter_removes_a_spike_and_keeps_edges():
    values = np.zeros((5, 5), np.float32)
    values[2, 2] = 100.0
    values[:, 4] = 7.0
    out = median_filter(values, 3)
    assert out[2, 2] == 0.0
    assert out[:, 4].tolist() == [7.0] * 5  # a column of 7s survives (edge replicated)
    assert median_filter(values, 1) is values


def test_conflicts_go_to_the_class_with_the_smaller_area():
    big = np.zeros((3, 3), bool)
    big[:, :2] = True  # class 1: 6 cells
    small = np.zeros((3, 3), bool)
    small[1, 1:] = True  # class 2: 2 cells, one shared with class 1
    background = np.zeros((3, 3), bool)
    background[0, :] = True  # background: 3 cells, two shared with class 1
    out = combine_cues({0: background, 1: big, 2: small})
    assert out.tolist() == [[0, 0, 0], [1, 2, 2], [1, 1, 255]]


def test_cue_counts_share_and_precision():
    grid = np.array([[0, 1], [255, 255]], np.uint8)
    cues = np.kron(grid, np.ones((2, 2), np.uint8))  # 4 x 4, each cell a 2 x 2 block
    mask = np.zeros((4, 4), np.uint8)
    mask[:2, 2:] = [[1, 1], [0, 255]]  # fg cue: 2 right, 1 wrong (on background), 1 not scored
    mask[:2, :2] = [[0, 0], [0, 1]]  # bg cue: 3 right, 1 wrong
    counts = cue_counts(cues, grid, mask)
    assert counts == {"cells": 4, "bg_cells": 1, "fg_cells": 1, "bg_scored": 4, "bg_right": 3,
                      "fg_scored": 3, "fg_right": 2, "fg_on_bg": 1}  # fmt: skip


def test_generator_needs_a_run_and_sane_parameters():
    with pytest.raises(ValueError, match="run_dir"):
        make_generator("sec-cues")
    with pytest.raises(ValueError, match="median"):
        make_generator("sec-cues", run_dir="x", median=2)
