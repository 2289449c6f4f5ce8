"""Box2Seg Eq. 1 / Eq. 2 and the cross-entropy form, against values computed by hand."""

import math

import torch
import torch.nn.functional as F

from weakseg.losses.common import (
    box_loss,
    cross_entropy,
    grabcut_loss,
    one_hot_labels,
    upsample_to,
)

LN2, LN3 = math.log(2), math.log(3)
# One 2 x 2 image, 3 classes (background + 2). Logits per pixel and their softmax y:
#   (0,0) [ln2, 0, 0]  -> y = [1/2, 1/4, 1/4]     (1,0) [0, ln3, 0] -> y = [1/5, 3/5, 1/5]
#   (0,1) [0, 0, 0]    -> y = [1/3, 1/3, 1/3]     (1,1) [0, 0, ln2] -> y = [1/4, 1/4, 1/2]
LOGITS = torch.tensor(
    [[[[LN2, 0.0], [0.0, 0.0]], [[0.0, 0.0], [LN3, 0.0]], [[0.0, 0.0], [0.0, LN2]]]]
)  # 1 x 3 x 2 x 2
LABELS = torch.tensor([[[0, 1], [1, 2]]])  # the argmax of B: 1 x 2 x 2
# B(i, c): one-hot per pixel (Box2Seg section 3.1), 1 x 3 x 2 x 2
B = torch.tensor([[[[1.0, 0], [0, 0]], [[0, 1.0], [1.0, 0]], [[0, 0], [0, 1.0]]]])
# L_box = -1/4 [log 1/2 + log 1/3 + log 3/5 + log 1/2] = (2 ln2 + ln5) / 4 = ln(20) / 4
EXPECTED = math.log(20) / 4


def test_box_loss_is_eq1_by_hand():
    assert math.isclose(box_loss(LOGITS, B).item(), EXPECTED, rel_tol=1e-6)


def test_grabcut_loss_is_eq2_same_form():
    assert math.isclose(grabcut_loss(LOGITS, B).item(), EXPECTED, rel_tol=1e-6)


def test_cross_entropy_with_the_label_map_equals_eq1():
    assert math.isclose(cross_entropy(LOGITS, LABELS).item(), EXPECTED, rel_tol=1e-6)


def test_one_hot_labels_is_b():
    assert torch.equal(one_hot_labels(LABELS, 3), B)


def test_ignored_pixels_leave_the_sum_and_the_count():
    labels = LABELS.clone()
    labels[0, 1, 1] = 255  # e.g. crop padding: no row in B
    b = one_hot_labels(labels, 3)
    assert b[0, :, 1, 1].sum() == 0 and b.sum() == 3
    # -1/3 [log 1/2 + log 1/3 + log 3/5] = (ln2 + ln5) / 3
    expected = math.log(10) / 3
    assert math.isclose(box_loss(LOGITS, b).item(), expected, rel_tol=1e-6)
    assert math.isclose(cross_entropy(LOGITS, labels).item(), expected, rel_tol=1e-6)


def test_gradient_is_softmax_minus_b_over_m():
    logits = LOGITS.clone().requires_grad_()
    box_loss(logits, B).backward()
    torch.testing.assert_close(logits.grad, (logits.softmax(1) - B).detach() / 4)


def test_all_ignored_gives_zero_not_nan_and_keeps_the_graph():
    logits = LOGITS.clone().requires_grad_()
    loss = cross_entropy(logits, torch.full((1, 2, 2), 255))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_logits_are_upsampled_bilinearly_to_the_target_size():
    logits = torch.randn(2, 3, 4, 5)
    target = torch.randint(0, 3, (2, 16, 20))
    up = F.interpolate(logits, size=(16, 20), mode="bilinear", align_corners=False)
    assert torch.equal(upsample_to(logits, (16, 20)), up)
    torch.testing.assert_close(cross_entropy(logits, target), F.cross_entropy(up, target))
    torch.testing.assert_close(
        box_loss(logits, one_hot_labels(target, 3)), F.cross_entropy(up, target)
    )
