"""Box2Seg losses (Kulharia et al., ECCV 2020; papers/box2seg.md, section 3), as pure functions.

Notation of the paper: y (softmax, L+1 channels), alpha (sigmoid attention, one map per foreground
class), beta (d-dimensional pixel embeddings), B the one-hot box tensor (smaller box on top), M the
one-hot GrabCut tensor. Here every tensor carries a batch dimension:

    y, B, M   N x (L+1) x H x W     (a pixel with no label, e.g. crop padding, has an all-zero row)
    alpha     N x (L+1) x H x W     channel 0 (background) is present but never read
    beta      N x d x h x w
    valid     N x H x W bool        pixels that come from the image (not crop padding)

Each term is computed per image and averaged over the images of the batch. Where the paper leaves
a reduction open we choose one and say so in the function (and in the README):

- Eq. 3 (L_fg) sums over classes, each class normalised by its box area, as printed.
- Eq. 6 (L_alpha^bbox) is printed as a plain sum over pixels and classes; we divide by the number
  of valid pixels, so that lambda_alpha = 1 weighs it like the other (per-pixel mean) terms.
- L_alpha^fr (after Eq. 8) is averaged over the (image, class) pairs that have a box.
- Eq. 10 (L_A) is a mean over the sampled pixel pairs, not a sum, for the same reason as Eq. 6.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from weakseg.data.boxes import box_label_map

EPS = 1e-6


def _per_class_area(b: Tensor) -> Tensor:
    """N x C: pixels of each class channel, per image."""
    return b.sum(dim=(2, 3))


def attention_fg_loss(log_y: Tensor, alpha: Tensor, b: Tensor) -> Tensor:
    """L_fg (Box2Seg Eq. 3): attention-weighted cross-entropy on the foreground classes,

        L_fg = - sum_{c=1}^{L} [ sum_i alpha(i,c) B(i,c) log y(i,c) ] / sum_i B(i,c),

    per image (classes with no box pixels are skipped), then the mean over the batch.

    Args:
        log_y: N x (L+1) x H x W log-softmax of the segmentation logits.
        alpha: N x (L+1) x H x W attention in [0, 1] (channel 0 unused).
        b: N x (L+1) x H x W one-hot box tensor B.
    """
    area = _per_class_area(b)[:, 1:]  # N x L
    weighted = (alpha[:, 1:] * b[:, 1:] * log_y[:, 1:]).sum(dim=(2, 3))  # N x L
    per_class = torch.where(area > 0, weighted / area.clamp(min=1.0), torch.zeros_like(area))
    return -per_class.sum(dim=1).mean()


def background_loss(log_y: Tensor, b: Tensor) -> Tensor:
    """L_bg (Box2Seg Eq. 4): cross-entropy of the background class on definite background,

        L_bg = - sum_i B(i,0) log y(i,0) / sum_i B(i,0),

    per image (0 for an image with no pixel outside its boxes), then the mean over the batch.
    ``b``'s channel 0 must be 0 on crop padding (see :func:`box_tensor`)."""
    area = b[:, 0].sum(dim=(1, 2))
    total = (b[:, 0] * log_y[:, 0]).sum(dim=(1, 2))
    return -(torch.where(area > 0, total / area.clamp(min=1.0), torch.zeros_like(area))).mean()


def attention_weighted_loss(log_y: Tensor, alpha: Tensor, b: Tensor) -> Tensor:
    """L_AW (Box2Seg Eq. 5) = L_fg (Eq. 3) + L_bg (Eq. 4)."""
    return attention_fg_loss(log_y, alpha, b) + background_loss(log_y, b)


def attention_box_loss(alpha: Tensor, b: Tensor, valid: Tensor) -> Tensor:
    """L_alpha^bbox (Box2Seg Eq. 6) = sum_i sum_{c=1}^{L} (B(i,c) - alpha(i,c))^2, divided by the
    number of valid pixels of the image (our normalisation; the paper prints the plain sum), mean
    over the batch. Absent classes are included: their attention is pulled to 0."""
    sq = ((b[:, 1:] - alpha[:, 1:]) ** 2).sum(dim=1) * valid  # N x H x W
    return (sq.sum(dim=(1, 2)) / valid.sum(dim=(1, 2)).clamp(min=1)).mean()


def fill_rates(m: Tensor, b: Tensor) -> Tensor:
    """eta (Box2Seg Eq. 7): N x (L+1), eta_c = sum_i M(i,c) / sum_i B(i,c) per image and class,
    0 where class c has no box pixels; clipped to 1 (a box partly covered by a smaller box can
    count more mask than box pixels). Channel 0 is meaningless and set to 0."""
    area = _per_class_area(b)
    eta = torch.where(area > 0, _per_class_area(m) / area.clamp(min=1.0), torch.zeros_like(area))
    eta[:, 0] = 0.0
    return eta.clamp(max=1.0)


def predicted_fill_rates(alpha: Tensor, b: Tensor) -> Tensor:
    """eta' (Box2Seg Eq. 8): N x (L+1), eta'_c = sum_i B(i,c) alpha(i,c) / sum_i B(i,c),
    0 where class c has no box pixels (channel 0 set to 0)."""
    area = _per_class_area(b)
    inside = (b * alpha).sum(dim=(2, 3))
    eta = torch.where(area > 0, inside / area.clamp(min=1.0), torch.zeros_like(area))
    return torch.cat([torch.zeros_like(eta[:, :1]), eta[:, 1:]], dim=1)


def fill_rate_loss(alpha: Tensor, b: Tensor, eta: Tensor, gamma: float = 0.7) -> Tensor:
    """L_alpha^fr (Box2Seg section 3.3, after Eq. 8) = max(0, gamma * eta_c - eta'_c), averaged
    over the (image, foreground class) pairs with box pixels; 0 if there are none.

    Args:
        alpha: N x (L+1) x H x W attention; b: the box tensor B; eta: N x (L+1) fill rates of M
        (Eq. 7, :func:`fill_rates`, a constant); gamma: the margin factor (paper: 0.7).
    """
    present = _per_class_area(b)[:, 1:] > 0
    if not present.any():
        return alpha.sum() * 0.0
    margin = F.relu(gamma * eta[:, 1:] - predicted_fill_rates(alpha, b)[:, 1:])
    return margin[present].mean()


def affinity(beta_i: Tensor, beta_j: Tensor) -> Tensor:
    """A(i, j) (Box2Seg Eq. 9): cosine similarity of embeddings, P x d and Q x d -> P x Q."""
    return F.normalize(beta_i, dim=1, eps=EPS) @ F.normalize(beta_j, dim=1, eps=EPS).T


def affinity_loss(beta: Tensor, y: Tensor) -> Tensor:
    """L_A (Box2Seg Eq. 10) = sum_{i,j} (A(i,j) - y_j^T y_i)^2 over the given pixels, as a mean
    over the P x P pairs (our normalisation; the paper prints the sum).

    Args:
        beta: P x d embeddings of the sampled pixels.
        y: P x (L+1) class probabilities of the same pixels (stage 1: one-hot M, section 4.1).
    """
    target = y @ y.T
    return ((affinity(beta, beta) - target) ** 2).mean()


def sample_pixels(
    labels: Tensor, count: int, generator: torch.Generator | None = None
) -> list[Tensor]:
    """Pixels sampled equally from each class present, per image (Box2Seg section 3.4).

    Args:
        labels: N x h x w int64 labels (255 = not sampled).
        count: pixels per image, split evenly over its classes (each class gives
            ``count // classes`` pixels, with replacement if it has fewer), so memory is bounded
            by ``count`` whatever the image size.

    Returns: per image, a 1-D tensor of flat pixel indices (empty if no pixel is labelled).
    """
    picks = []
    for lab in labels.flatten(1):
        classes = [c for c in lab.unique().tolist() if c != 255]
        per_class = count // max(len(classes), 1)
        chosen = []
        for c in classes:
            where = (lab == c).nonzero().squeeze(1)
            idx = torch.randint(len(where), (per_class,), generator=generator, device="cpu")
            chosen.append(where[idx.to(where.device)])
        picks.append(torch.cat(chosen) if chosen else lab.new_zeros(0))
    return picks


def sampled_affinity_loss(beta: Tensor, y: Tensor, picks: list[Tensor]) -> Tensor:
    """L_A (Eq. 10) per image on its sampled pixels (:func:`sample_pixels`), mean over the
    images that have samples.

    Args:
        beta: N x d x h x w embeddings; y: N x (L+1) x h x w probabilities (or one-hot M);
        picks: per image, flat pixel indices into h x w.
    """
    losses = []
    for n, idx in enumerate(picks):
        if len(idx) == 0:
            continue
        b = beta[n].flatten(1)[:, idx].T  # P x d
        p = y[n].flatten(1)[:, idx].T  # P x (L+1)
        losses.append(affinity_loss(b, p))
    if not losses:
        return beta.sum() * 0.0
    return torch.stack(losses).mean()


def box_tensor(
    boxes: list[Tensor], box_labels: list[Tensor], num_classes: int, valid: Tensor
) -> Tensor:
    """Box tensor B (Box2Seg section 3.1) for a batch: N x (L+1) x H x W one-hot, the smaller
    box on top where boxes overlap, background channel 1 outside every box, all-zero rows where
    ``valid`` (N x H x W bool) is False.

    Args:
        boxes: per image K x 4 (x1, y1, x2, y2) in pixels of the H x W crop, not clipped.
        box_labels: per image K classes in 1..L.
    """
    _, height, width = valid.shape
    maps = [
        box_label_map(bx.detach().cpu().numpy(), lb.cpu().numpy(), height, width)
        for bx, lb in zip(boxes, box_labels, strict=True)
    ]
    labels = torch.from_numpy(np.stack(maps)).long().to(valid.device)
    onehot = F.one_hot(labels, num_classes).permute(0, 3, 1, 2).float()
    return onehot * valid[:, None].float()


__all__ = [
    "affinity",
    "affinity_loss",
    "attention_box_loss",
    "attention_fg_loss",
    "attention_weighted_loss",
    "background_loss",
    "box_tensor",
    "fill_rate_loss",
    "fill_rates",
    "predicted_fill_rates",
    "sample_pixels",
    "sampled_affinity_loss",
]
