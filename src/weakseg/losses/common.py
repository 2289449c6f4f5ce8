"""Losses every method shares: per-pixel cross-entropy against a label map, and its literal
one-hot form, Box2Seg Eq. 1 (L_box) and Eq. 2 (L_GC).

Notation of Box2Seg section 3: y (m x (L+1)) are softmax probabilities, B the box tensor, M the
GrabCut tensor, both one-hot per pixel. Logits arrive at the decoder's stride and are upsampled
bilinearly (align_corners=False) to the target's size before any loss, so targets stay exact.
Pixels labelled 255 (ignore, and the padding of training crops) carry no one-hot row and are left
out of the sum and of the pixel count m.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from weakseg.data.sample import IGNORE


def upsample_to(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """B x C x h x w -> B x C x H x W, bilinear, align_corners=False (no-op at equal size)."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)


def cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int = IGNORE
) -> torch.Tensor:
    """Mean per-pixel cross-entropy over the pixels whose label is not ``ignore_index``.

    Args:
        logits: B x C x h x w scores (upsampled to the target size here).
        target: B x H x W int64 labels in 0..C-1 or ``ignore_index``.

    Returns 0 (still attached to the graph) when every pixel is ignored, where the mean would be
    NaN. With target = the box label map this is L_box (Eq. 1), with target = the GrabCut map it
    is L_GC (Eq. 2): see :func:`box_loss`.
    """
    logits = upsample_to(logits.float(), target.shape[-2:])
    if not (target != ignore_index).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits, target, ignore_index=ignore_index)


def one_hot_labels(target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """B x H x W labels -> B x C x H x W float one-hot; ignored pixels get an all-zero row.

    With the box label map (``weakseg.data.boxes.box_label_map``) this is Box2Seg's B.
    """
    valid = target != IGNORE
    onehot = F.one_hot(torch.where(valid, target, 0), num_classes)  # B x H x W x C
    return (onehot * valid[..., None]).permute(0, 3, 1, 2).float()


def soft_label_loss(logits: torch.Tensor, label_tensor: torch.Tensor) -> torch.Tensor:
    """-1/m sum_c sum_i T(i, c) log y(i, c), y = softmax(logits), m = pixels with a label.

    Args:
        logits: B x C x h x w (upsampled to the label tensor's size).
        label_tensor: B x C x H x W, one row per pixel summing to 1, or all zero (unlabelled).
    """
    logits = upsample_to(logits.float(), label_tensor.shape[-2:])
    log_y = F.log_softmax(logits, dim=1)
    m = label_tensor.sum(dim=1).gt(0).sum().clamp(min=1)
    return -(label_tensor * log_y).sum() / m


def box_loss(logits: torch.Tensor, box_tensor: torch.Tensor) -> torch.Tensor:
    """L_box (Box2Seg Eq. 1) = -1/m sum_{c=0}^{L} sum_{i=1}^{m} B(i, c) log y(i, c).

    B is one-hot per pixel, so this equals :func:`cross_entropy` with the box label map (its
    argmax); the baselines train with that cheaper form (tests check the two agree).
    """
    return soft_label_loss(logits, box_tensor)


def grabcut_loss(logits: torch.Tensor, grabcut_tensor: torch.Tensor) -> torch.Tensor:
    """L_GC (Box2Seg Eq. 2) = -1/m sum_{c=0}^{L} sum_{i=1}^{m} M(i, c) log y(i, c), M the one-hot
    GrabCut labels; any pseudo-label map (dense CRF, BANA's Y_crf ...) fits the same form."""
    return soft_label_loss(logits, grabcut_tensor)


__all__ = [
    "box_loss",
    "cross_entropy",
    "grabcut_loss",
    "one_hot_labels",
    "soft_label_loss",
    "upsample_to",
]
