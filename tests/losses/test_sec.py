"""SEC's losses (papers/sec.md Eq. 2-5) against values computed by hand from the equations, on
batches of two images whose maps are not constant, so a wrong reduction, sign or region changes
the value."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from weakseg.losses import sec as S


def cells(*columns: list[float]) -> torch.Tensor:
    """K x 1 x n probabilities from n per-cell columns of K class probabilities."""
    return torch.tensor(columns, dtype=torch.float64).T[:, None, :]


def test_probabilities_add_the_floor_and_renormalise():
    p = S.sec_probabilities(torch.log(torch.tensor([[0.25, 0.75]])).view(1, 2, 1, 1))
    expected = torch.tensor([0.25 + 1e-4, 0.75 + 1e-4]) / (1 + 2e-4)
    assert torch.allclose(p.view(2), expected)
    extreme = S.sec_probabilities(torch.tensor([0.0, 200.0]).view(1, 2, 1, 1))
    assert float(extreme.min()) == pytest.approx(1e-4 / (1 + 2e-4), rel=1e-4)


def test_seed_loss_by_hand():
    probs = torch.stack([cells([0.8, 0.2], [0.4, 0.6]), cells([0.5, 0.5], [0.1, 0.9])])
    cues = torch.tensor([[[0, 255]], [[1, 1]]])
    # image 1: one cue cell (class 0); image 2: two cue cells (class 1), normalised by 2
    expected = (-math.log(0.8) + (-math.log(0.5) - math.log(0.9)) / 2) / 2
    assert float(S.seed_loss(probs, cues)) == pytest.approx(expected)


def test_seed_loss_image_without_cues_counts_zero():
    probs = torch.stack([cells([0.8, 0.2]), cells([0.3, 0.7])])
    cues = torch.tensor([[[0]], [[255]]])
    assert float(S.seed_loss(probs, cues)) == pytest.approx(-math.log(0.8) / 2)


def test_gwrp_by_hand():
    scores = torch.tensor([1.0, 3.0, 2.0])
    assert float(S.gwrp(scores, 0.5)) == pytest.approx((3 + 2 * 0.5 + 1 * 0.25) / 1.75)


def test_gwrp_is_max_pooling_at_0_and_average_pooling_at_1():
    scores = torch.rand(2, 3, 50, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(S.gwrp(scores, 0.0), scores.amax(-1))
    assert torch.allclose(S.gwrp(scores, 1.0), scores.mean(-1))


def test_gwrp_takes_one_decay_per_class():
    scores = torch.tensor([[1.0, 3.0], [4.0, 2.0]])
    pooled = S.gwrp(scores, torch.tensor([0.0, 1.0]))
    assert pooled.tolist() == [3.0, 3.0]


def test_expand_loss_by_hand():
    # K = 3 (background, classes 1 and 2), two cells per image
    probs = torch.stack([
        cells([0.6, 0.3, 0.1], [0.2, 0.7, 0.1]),  # tags {1}
        cells([0.2, 0.5, 0.3], [0.2, 0.1, 0.7]),  # tags {1, 2}
    ])  # fmt: skip
    tags = torch.tensor([[False, True, False], [True, True, True]])  # column 0 is not read
    loss = S.expand_loss(probs, tags, d_plus=0.5, d_minus=0.0, d_bg=1.0)
    g = lambda hi, lo: (hi + 0.5 * lo) / 1.5  # noqa: E731 - GWRP of two cells at d = 0.5
    first = -math.log(g(0.7, 0.3)) - math.log(1 - 0.1) - math.log((0.6 + 0.2) / 2)
    second = -(math.log(g(0.5, 0.1)) + math.log(g(0.7, 0.3))) / 2 - math.log(0.2)
    assert float(loss) == pytest.approx((first + second) / 2)


def test_expand_loss_paper_decays_use_max_for_absent_classes():
    probs = torch.stack([cells([0.5, 0.4, 0.1], [0.5, 0.1, 0.4])])
    tags = torch.tensor([[False, True, False]])
    loss = S.expand_loss(probs, tags)
    z = 1 + 0.996
    expected = (-math.log((0.4 + 0.996 * 0.1) / z) - math.log(1 - 0.4)
                - math.log((0.5 + 0.999 * 0.5) / (1 + 0.999)))  # fmt: skip
    assert float(loss) == pytest.approx(expected)


def test_constrain_loss_by_hand_and_no_gradient_into_q():
    probs = torch.tensor([[0.6, 0.4], [0.5, 0.5]], dtype=torch.float64).view(2, 2, 1, 1)
    probs.requires_grad_(True)
    q = torch.tensor([[0.9, 0.1], [0.5, 0.5]], dtype=torch.float64).view(2, 2, 1, 1)
    q.requires_grad_(True)
    loss = S.constrain_loss(probs, q)
    expected = (0.9 * math.log(0.9 / 0.6) + 0.1 * math.log(0.1 / 0.4) + 0.0) / 2
    assert float(loss.detach()) == pytest.approx(expected)
    loss.backward()
    assert q.grad is None and probs.grad is not None


def test_training_crf_parameters_are_the_papers_scaled():
    p = S.sec_crf_params(12.0)
    assert (p.bi_sxy, p.bi_srgb, p.bi_compat) == pytest.approx((80 / 12, 13.0, 10.0))
    assert (p.g_sxy, p.g_compat, p.iterations) == pytest.approx((3 / 12, 3.0, 10))


def test_crf_targets_follow_the_image_and_are_floored():
    # left half dark, right half bright; the network says class 1 a little everywhere on the
    # right and is unsure on the left: the CRF makes the right confidently 1, the left 0
    image = np.zeros((1, 6, 6, 3), np.uint8)
    image[:, :, 3:] = 255
    probs = torch.full((1, 2, 6, 6), 0.5)
    probs[0, 1, :, 3:], probs[0, 0, :, 3:] = 0.7, 0.3
    probs[0, 0, :, :3], probs[0, 1, :, :3] = 0.55, 0.45
    q = S.crf_targets(image, probs, S.sec_crf_params(2.0))
    assert q.shape == probs.shape and not q.requires_grad
    assert torch.allclose(q.sum(1), torch.ones(1, 6, 6), atol=1e-5)
    assert float(q.min()) >= 1e-4 / (1 + 2e-4) - 1e-9
    assert (q[0, 1, :, 3:] > 0.7).all() and (q[0, 0, :, :3] > 0.55).all()


def test_small_images_are_rounded_uint8():
    images = torch.full((2, 3, 8, 8), 0.5)
    small = S.small_images(images, (2, 2))
    assert small.shape == (2, 2, 2, 3) and small.dtype == np.uint8
    assert (small == 128).all()


def test_decay_rule_of_thumb_gives_the_papers_values():
    assert S.decay_for(41 * 41, 0.1) == pytest.approx(0.996, abs=5e-4)
    assert S.decay_for(41 * 41, 0.3) == pytest.approx(0.999, abs=5e-4)
