"""BANA equations (main paper Eq. 1-14, supplement Eq. 4-8) against hand computations."""

from __future__ import annotations

import math

import pytest
import torch

from weakseg.losses import bana as B


def test_grid_cells_cover_the_map_once():
    cells = B.grid_cells(5, 4, 2)
    hit = torch.zeros(5, 4)
    for rs, cs in cells:
        hit[rs, cs] += 1
    assert len(cells) == 4 and hit.eq(1).all()


def test_background_queries_eq1_average_masked_features_per_cell():
    # 1-channel features 0..15 on a 4 x 4 map; background = the first column
    f = torch.arange(16.0).view(1, 4, 4)
    bg = torch.zeros(4, 4, dtype=torch.bool)
    bg[:, 0] = True
    q, valid = B.background_queries(f, bg, n=2)
    # cells: top-left has bg pixels 0 and 4 -> 2.0; bottom-left 8 and 12 -> 10.0; right cells none
    assert valid == [0, 2]
    assert q[:, 0].tolist() == [2.0, 10.0]
    q1, valid1 = B.background_queries(f, bg, n=1)
    assert valid1 == [0] and q1[0, 0].item() == pytest.approx((0 + 4 + 8 + 12) / 4)


def test_background_attention_eq2_eq3():
    # 2-D features; queries along x and y; a pixel at 45 degrees has cos 0.7071 with both
    f = torch.tensor([[1.0, 1.0, -1.0], [0.0, 1.0, 0.0]]).view(2, 1, 3)
    queries = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    in_boxes = torch.tensor([[True, True, True]])
    a = B.background_attention(f, queries, in_boxes)
    # pixel 0 (1,0): relu(1), relu(0) -> 0.5 ; pixel 1: (0.7071 + 0.7071) / 2 ; pixel 2 (-1, 0):
    # relu(-1) = 0, relu(0) = 0 -> 0
    assert a[0].tolist() == pytest.approx([0.5, math.sqrt(0.5), 0.0], abs=1e-6)
    outside = B.background_attention(f, queries, torch.zeros(1, 3, dtype=torch.bool))
    assert outside.eq(1).all()  # A = 1 outside every box


def test_bap_equals_gap_when_attention_is_zero():
    x = torch.randn(3, 4, 5)
    box = torch.zeros(4, 5)
    box[1:3, 1:4] = 1
    attention = torch.zeros(4, 5)
    bap = B.weighted_pool(x, (1 - attention) * box)
    gap = x[:, 1:3, 1:4].mean(dim=(1, 2))
    assert torch.allclose(bap, gap, atol=1e-6)


def test_bap_eq4_weights_by_foreground_probability():
    x = torch.tensor([[[2.0, 4.0]]])  # one channel, two pixels in the box
    attention = torch.tensor([[0.5, 0.0]])  # the first pixel is half background
    # r = (0.5 * 2 + 1 * 4) / (0.5 + 1) = 5 / 1.5
    assert B.weighted_pool(x, 1 - attention).item() == pytest.approx(5 / 1.5)


def test_class_unary_eq5_per_box_and_per_class():
    cam = torch.tensor([[1.0, 2.0, 0.0, 4.0, 8.0]])
    box_a = torch.tensor([[True, True, False, False, False]])
    box_b = torch.tensor([[False, False, False, True, True]])
    per_box = B.class_unary(cam, [box_a, box_b], per_box=True)
    assert per_box[0].tolist() == pytest.approx([0.5, 1.0, 0.0, 0.5, 1.0])
    per_class = B.class_unary(cam, [box_a, box_b], per_box=False)
    assert per_class[0].tolist() == pytest.approx([1 / 8, 2 / 8, 0.0, 0.5, 1.0])


def test_background_unary_eq7_relative_threshold_peak_over_the_image_or_the_boxes():
    # A at every cell; the last cell is outside the boxes, where A is 0.95 (not the 1 of u_0)
    a = torch.tensor([[0.5, 0.9, 0.94, 0.95]])
    in_boxes = torch.tensor([[True, True, True, False]])
    # the code: max A over the image is 0.95 (outside the boxes) -> keep A >= 0.9405; even 0.94
    # is below it, so nothing inside the boxes survives; outside u_0 = 1
    u0 = B.background_unary(a, in_boxes, threshold=0.99, peak="image")
    assert u0[0].tolist() == pytest.approx([0.0, 0.0, 0.0, 1.0])
    # threshold 0.9: keep A >= 0.855 -> 0.9 and 0.94 stay
    u0 = B.background_unary(a, in_boxes, threshold=0.9, peak="image")
    assert u0[0].tolist() == pytest.approx([0.0, 0.9, 0.94, 1.0])
    # inside the boxes only: max 0.94 -> keep A >= 0.9306 -> 0.94 stays, 0.9 and 0.5 -> 0
    u0 = B.background_unary(a, in_boxes, threshold=0.99, peak="boxes")
    assert u0[0].tolist() == pytest.approx([0.0, 0.0, 0.94, 1.0])
    u0 = B.background_unary(a, in_boxes, threshold=0.0)
    assert u0[0].tolist() == pytest.approx([0.5, 0.9, 0.94, 1.0])


def test_prototypes_eq8_and_retrieval_eq9():
    f = torch.tensor([[1.0, 3.0, 0.0], [0.0, 0.0, 2.0]]).view(2, 1, 3)
    labels = torch.tensor([[0, 0, 5]])
    q = B.prototypes(f, labels, [0, 5])
    assert q.tolist() == [[2.0, 0.0], [0.0, 2.0]]
    c = B.correlation(f, q)
    assert c[:, 0].ravel().tolist() == pytest.approx([1.0, 1.0, 0.0, 0.0, 0.0, 1.0])
    assert c.argmax(0)[0].tolist() == [0, 0, 1]  # index into [0, 5]


def test_prototypes_of_an_empty_class_fall_back_to_the_classifier_weight():
    f = torch.tensor([[1.0, 3.0, 0.0], [0.0, 0.0, 2.0]]).view(2, 1, 3)
    labels = torch.tensor([[0, 0, 0]])  # no pixel of class 5
    weights = torch.tensor([[9.0, 9.0], [-1.0, 4.0]])  # rows for [0, 5]
    q = B.prototypes(f, labels, [0, 5], fallback=weights)
    assert q[0].tolist() == pytest.approx([4 / 3, 2 / 3])  # mean of the three pixels
    assert q[1].tolist() == [-1.0, 4.0]  # W_5 (the fallback's row 0 is not used)
    assert B.prototypes(f, labels, [0, 5])[1].tolist() == [0.0, 0.0]  # no fallback: zero


def test_retrieval_scores_relu_own_boxes_and_background_one_outside():
    # 3 channels [bg, class a, class b] over 4 pixels in a row; class a's box covers pixels 0-1,
    # class b's pixels 1-2; pixel 3 is outside every box
    corr = torch.tensor([[0.2, -0.3, 0.1, 0.4], [0.5, 0.6, 0.9, 0.8], [-0.2, 0.7, 0.3, 0.9]])
    masks = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [0, 1, 1, 0]], dtype=torch.bool)
    s = B.retrieval_scores(corr.view(3, 1, 4), masks.view(3, 1, 4))[:, 0]
    expected = [[0.2, 0.0, 0.1, 1.0], [0.5, 0.6, 0.0, 0.0], [0.0, 0.7, 0.3, 0.0]]
    assert s.flatten().tolist() == pytest.approx(sum(expected, []))
    assert s.argmax(0).tolist() == [1, 2, 2, 0]  # plain corr.argmax would give [1, 2, 1, 2]
    assert corr.argmax(0).tolist() == [1, 2, 1, 2]


def _logits(probs: list[list[float]]) -> torch.Tensor:
    """N=1, pixels in a row: probabilities (W x K) -> 1 x K x 1 x W log-probabilities (logits)."""
    return torch.tensor(probs).log().T.reshape(1, len(probs[0]), 1, len(probs))


def test_nal_ce_eq10_only_on_agreeing_pixels():
    logits = _logits([[0.8, 0.2], [0.3, 0.7], [0.5, 0.5]])
    y_crf = torch.tensor([[[0, 1, 1]]])
    y_ret = torch.tensor([[[0, 1, 0]]])
    expected = -(math.log(0.8) + math.log(0.7)) / 2
    assert B.nal_ce(logits, y_crf, y_ret).item() == pytest.approx(expected, rel=1e-6)


def test_nal_confidence_eq11_eq12():
    cosine = torch.tensor([[0.5, 0.0], [1.0, -1.0]]).T.reshape(1, 2, 1, 2)  # pixels x classes
    y_crf = torch.tensor([[[0, 1]]])
    sigma = B.nal_confidence(cosine, y_crf, gamma=2.0)
    # pixel 0: label 0 is the arg-max -> 1; pixel 1: D = (2, 0), label 1 -> (0 / 2)^2 = 0
    assert sigma[0, 0].tolist() == pytest.approx([1.0, 0.0])
    cosine2 = torch.tensor([[0.0, 0.5]]).T.reshape(1, 2, 1, 1)
    sigma2 = B.nal_confidence(cosine2, torch.tensor([[[0]]]), gamma=7.0)
    assert sigma2.item() == pytest.approx((1.0 / 1.5) ** 7)


def test_nal_wce_eq13_and_total_eq14():
    logits = _logits([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    y_crf = torch.tensor([[[0, 1, 1]]])
    y_ret = torch.tensor([[[0, 0, 0]]])  # pixels 1 and 2 disagree
    sigma = torch.tensor([[[1.0, 0.5, 0.25]]])
    expected = -(0.5 * math.log(0.7) + 0.25 * math.log(0.4)) / 0.75
    wce = B.nal_wce(logits, y_crf, y_ret, sigma)
    assert wce.item() == pytest.approx(expected, rel=1e-6)
    total = B.nal_ce(logits, y_crf, y_ret) + 0.1 * wce
    assert total.item() == pytest.approx(-math.log(0.8) + 0.1 * expected, rel=1e-6)


def test_entropy_regularisation_supplement_eq4():
    logits = _logits([[0.5, 0.5], [1.0 - 1e-7, 1e-7]])
    region = torch.tensor([[[True, False]]])
    assert B.entropy_regularisation(logits, region).item() == pytest.approx(math.log(2), rel=1e-5)


def test_bootstrapping_supplement_eq6_eq7():
    logits = _logits([[0.6, 0.4]])
    y_crf = torch.tensor([[[1]]])
    region = torch.tensor([[[True]]])
    # beta = 1: plain CE with Y_crf; beta = 0: the prediction's own entropy
    assert B.bootstrapping_loss(logits, y_crf, region, 1.0).item() == pytest.approx(-math.log(0.4))
    entropy = -(0.6 * math.log(0.6) + 0.4 * math.log(0.4))
    assert B.bootstrapping_loss(logits, y_crf, region, 0.0).item() == pytest.approx(entropy)
    half = 0.5 * -math.log(0.4) + 0.5 * entropy
    assert B.bootstrapping_loss(logits, y_crf, region, 0.5).item() == pytest.approx(half)
