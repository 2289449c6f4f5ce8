"""Box2Seg losses (Eq. 3-10) against values worked out by hand on tiny tensors.

The fixture: one 1 x 4 image (four pixels in a row), classes {0: background, 1, 2}. Class 1's box
covers pixels 0-1, the other pixels are definite background; class 2 has no box.
"""

from __future__ import annotations

import math

import pytest
import torch

from weakseg.losses import box2seg as L


def onehot_row(labels: list[int], classes: int = 3) -> torch.Tensor:
    """1 x C x 1 x W one-hot from per-pixel labels (-1 = all-zero row)."""
    t = torch.zeros(1, classes, 1, len(labels))
    for i, c in enumerate(labels):
        if c >= 0:
            t[0, c, 0, i] = 1.0
    return t


@pytest.fixture
def scene():
    b = onehot_row([1, 1, 0, 0])
    # y: per-pixel probabilities over (bg, 1, 2)
    y = torch.tensor([[0.2, 0.7, 0.1], [0.5, 0.4, 0.1], [0.8, 0.1, 0.1], [0.6, 0.3, 0.1]])
    y = y.T.reshape(1, 3, 1, 4)
    alpha = torch.zeros(1, 3, 1, 4)
    alpha[0, 1, 0] = torch.tensor([0.9, 0.5, 0.2, 0.1])
    alpha[0, 2, 0] = torch.tensor([0.3, 0.3, 0.3, 0.3])
    return b, y, alpha


def test_fg_loss_eq3(scene):
    b, y, alpha = scene
    # class 1: -(0.9 log 0.7 + 0.5 log 0.4) / 2 ; class 2 has no box
    expected = -(0.9 * math.log(0.7) + 0.5 * math.log(0.4)) / 2
    got = L.attention_fg_loss(y.log(), alpha, b)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_bg_loss_eq4(scene):
    b, y, _ = scene
    expected = -(math.log(0.8) + math.log(0.6)) / 2
    assert L.background_loss(y.log(), b).item() == pytest.approx(expected, rel=1e-6)


def test_aw_loss_eq5_is_the_sum(scene):
    b, y, alpha = scene
    total = L.attention_weighted_loss(y.log(), alpha, b)
    parts = L.attention_fg_loss(y.log(), alpha, b) + L.background_loss(y.log(), b)
    assert total.item() == pytest.approx(parts.item())
    expected = (
        -(0.9 * math.log(0.7) + 0.5 * math.log(0.4)) / 2 - (math.log(0.8) + math.log(0.6)) / 2
    )
    assert total.item() == pytest.approx(expected, rel=1e-6)


def test_fg_loss_normalises_each_class_by_its_box():
    # two classes, boxes of 1 and 3 pixels, every log y = log 0.5, alpha = 1:
    # each class contributes -log 0.5 whatever its size -> total 2 * log 2.
    b = onehot_row([1, 2, 2, 2])
    y = torch.full((1, 3, 1, 4), 0.5)
    alpha = torch.ones(1, 3, 1, 4)
    assert L.attention_fg_loss(y.log(), alpha, b).item() == pytest.approx(2 * math.log(2))


def test_attention_box_loss_eq6(scene):
    b, _, alpha = scene
    valid = torch.ones(1, 1, 4, dtype=torch.bool)
    # class 1: (1-.9)^2 + (1-.5)^2 + .2^2 + .1^2 = .01 + .25 + .04 + .01 = .31
    # class 2 (no box, pulled to 0): 4 * .09 = .36 ; sum .67 over 4 valid pixels
    got = L.attention_box_loss(alpha, b, valid)
    assert got.item() == pytest.approx(0.67 / 4, rel=1e-6)


def test_fill_rates_eq7_eq8(scene):
    b, _, alpha = scene
    m = onehot_row([1, 0, 0, 0])  # GrabCut kept one of the two box pixels
    eta = L.fill_rates(m, b)
    assert eta[0, 1].item() == pytest.approx(0.5)
    assert eta[0, 2].item() == 0.0  # no box
    eta_pred = L.predicted_fill_rates(alpha, b)
    assert eta_pred[0, 1].item() == pytest.approx((0.9 + 0.5) / 2)
    assert eta_pred[0, 2].item() == 0.0


def test_fill_rate_margin_loss(scene):
    b, _, alpha = scene
    eta = torch.tensor([[0.0, 1.0, 0.0]])
    # gamma * eta = 0.7 ; eta' = 0.7 -> margin 0 ; with gamma 0.9: 0.9 - 0.7 = 0.2
    assert L.fill_rate_loss(alpha, b, eta, gamma=0.7).item() == pytest.approx(0.0, abs=1e-6)
    assert L.fill_rate_loss(alpha, b, eta, gamma=0.9).item() == pytest.approx(0.2, rel=1e-5)


def test_affinity_eq9_and_loss_eq10():
    beta = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    a = L.affinity(beta, beta)
    assert torch.allclose(a, torch.tensor([[1.0, 1, 0], [1, 1, 0], [0, 0, 1]]))
    # y: pixels 0 and 2 share class 0, pixel 1 is class 1 -> y y^T = [[1,0,1],[0,1,0],[1,0,1]]
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    # (A - yy^T)^2 is 1 at (0,1), (1,0), (0,2), (2,0): 4 of 9 pairs
    assert L.affinity_loss(beta, y).item() == pytest.approx(4 / 9)


def test_sample_pixels_equal_per_class_and_bounded():
    labels = torch.zeros(1, 10, 10, dtype=torch.long)
    labels[0, :2, :2] = 3  # 4 pixels of class 3, 96 of class 0
    labels[0, 9, 9] = 255
    torch.manual_seed(0)
    (idx,) = L.sample_pixels(labels, count=64)
    assert len(idx) == 64
    picked = labels.flatten()[idx]
    assert (picked == 3).sum() == 32 and (picked == 0).sum() == 32
    assert not (picked == 255).any()


def test_sampled_affinity_loss_is_zero_for_perfect_embeddings():
    labels = torch.tensor([[[0, 0, 1, 1]]])
    y = torch.nn.functional.one_hot(labels, 2).permute(0, 3, 1, 2).float()
    beta = y.clone()  # embedding = one-hot class: cosine 1 within a class, 0 across
    picks = L.sample_pixels(labels, 8)
    assert L.sampled_affinity_loss(beta, y, picks).item() == pytest.approx(0.0, abs=1e-6)


def test_box_tensor_smaller_box_on_top_and_padding_zero():
    valid = torch.ones(1, 6, 6, dtype=torch.bool)
    valid[0, :, 5] = False  # padding column
    boxes = [torch.tensor([[0.0, 0.0, 6.0, 6.0], [1.0, 1.0, 3.0, 3.0]])]
    labels = [torch.tensor([1, 2])]
    b = L.box_tensor(boxes, labels, 3, valid)
    assert b.shape == (1, 3, 6, 6)
    assert b[0, 2, 1:3, 1:3].eq(1).all()  # the small box wins
    assert b[0, 1].sum() == 6 * 5 - 4  # 6 rows x 5 valid columns, minus the small box
    assert b[0, :, :, 5].sum() == 0  # padding has no label
    assert b[0, 0].sum() == 0  # no definite background here
