"""BANA (Oh, Kim and Ham, CVPR 2021; papers/bana.md) as pure functions: background-aware pooling
(Eq. 1-4), the pseudo-label unaries and retrieval (Eq. 5-9) and the noise-aware loss (Eq. 10-14),
plus the losses the supplement compares for the unreliable region (supplement Eq. 4-8).

Shapes: a feature map f is C x h x w (one image); masks are h x w bool; class-score maps are
K x h x w. Batched losses take N x K x H x W logits and N x H x W int64 labels (255 = ignore).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

IGNORE = 255
EPS = 1e-6


# -- Boxes on the feature grid (stages 1 and 2) ---------------------------------------------------
def feature_boxes(boxes: Tensor, stride: int, height: int, width: int) -> list[Tensor]:
    """K x 4 image-pixel boxes -> K h x w bool masks on a grid of ``stride``-pixel cells, corners
    rounded outwards. ``stride`` is the network's output stride, passed explicitly: inferring it
    as ceil(W / w) is wrong for small inputs (W = 20 at stride 8 gives w = 3 and 7)."""
    masks = []
    for x1, y1, x2, y2 in boxes.tolist():
        m = torch.zeros((height, width), dtype=torch.bool, device=boxes.device)
        c1, r1 = max(int(x1 // stride), 0), max(int(y1 // stride), 0)
        c2, r2 = min(-int(-x2 // stride), width), min(-int(-y2 // stride), height)
        m[r1:r2, c1:c2] = True
        masks.append(m)
    return masks


# -- Stage 1: background-aware pooling (section 3.1) ----------------------------------------------
def grid_cells(height: int, width: int, n: int) -> list[tuple[slice, slice]]:
    """The N x N regular grid over an h x w map, row-major; edges split as evenly as possible."""
    rows = np.linspace(0, height, n + 1).round().astype(int)
    cols = np.linspace(0, width, n + 1).round().astype(int)
    return [(slice(rows[i], rows[i + 1]), slice(cols[j], cols[j + 1]))
            for i in range(n) for j in range(n)]  # fmt: skip


def background_queries(f: Tensor, background: Tensor, n: int) -> tuple[Tensor, list[int]]:
    """Eq. 1: q_j = sum_{p in G(j)} M(p) f(p) / sum_{p in G(j)} M(p) for each grid cell that
    overlaps the definite background M.

    Args:
        f: C x h x w features; background: h x w bool (M); n: grid size N.

    Returns: (J x C queries, the indices j of the valid cells), J <= N^2 (0 if M is empty).
    """
    queries, valid = [], []
    m = background.to(f.dtype)
    for j, (rs, cs) in enumerate(grid_cells(*background.shape, n)):
        weight = m[rs, cs]
        total = weight.sum()
        if total > 0:
            queries.append((f[:, rs, cs] * weight).sum(dim=(1, 2)) / total)
            valid.append(j)
    if not queries:
        return f.new_zeros((0, f.shape[0])), []
    return torch.stack(queries), valid


def background_attention(f: Tensor, queries: Tensor, in_boxes: Tensor) -> Tensor:
    """Eq. 2-3: A(p) = 1/J sum_j ReLU(cos(f(p), q_j)) for p inside a box, 1 outside every box.

    Args:
        f: C x h x w; queries: J x C; in_boxes: h x w bool (the union of all boxes).

    Returns: h x w attention in [0, 1]; inside the boxes it is 0 when J = 0 (no background).
    """
    if len(queries) == 0:
        inside = torch.zeros(f.shape[1:], dtype=f.dtype, device=f.device)
    else:
        fn = F.normalize(f, dim=0, eps=EPS).flatten(1)  # C x hw
        qn = F.normalize(queries, dim=1, eps=EPS)  # J x C
        inside = F.relu(qn @ fn).mean(dim=0).view(f.shape[1:])
    return torch.where(in_boxes, inside, torch.ones_like(inside))


def weighted_pool(x: Tensor, weight: Tensor) -> Tensor:
    """Eq. 4 (and Eq. 1's form): sum_p w(p) x(p) / sum_p w(p) over the last two dims.

    x: K x h x w, weight: h x w (>= 0) -> K. With weight = 1 - A over a box this is BAP's r_i;
    with weight = 1 (A = 0) it is GAP. Because the stage-1 classifier is linear and bias-free,
    pooling its score maps equals scoring the pooled feature (w . r_i), which is what the method
    uses."""
    total = weight.sum().clamp(min=EPS)
    return (x * weight).sum(dim=(-2, -1)) / total


# -- Stage 2: pseudo labels (section 3.2) --------------------------------------------------------
def cam(scores: Tensor) -> Tensor:
    """Eq. 6: CAM_c(p) = ReLU(f(p) . w_c), from the classifier's score maps f . w (K x h x w)."""
    return F.relu(scores)


def class_unary(cam_c: Tensor, box_masks: list[Tensor], per_box: bool = True) -> Tensor:
    """Eq. 5: u_c = CAM_c / max CAM_c inside the boxes of class c, 0 outside them.

    ``per_box`` (the authors' code): each box is normalised by its own maximum (the union takes
    the larger value where boxes of the class overlap); otherwise one maximum over all of the
    class's boxes (the paper's max_p). ``box_masks``: h x w bool, one per box of class c."""
    out = torch.zeros_like(cam_c)
    if per_box:
        for m in box_masks:
            peak = cam_c[m].max() if m.any() else cam_c.new_tensor(0.0)
            out = torch.where(m, torch.maximum(out, cam_c / peak.clamp(min=EPS)), out)
        return out
    union = torch.zeros_like(cam_c, dtype=torch.bool)
    for m in box_masks:
        union |= m
    if not union.any():
        return out
    return torch.where(union, cam_c / cam_c[union].max().clamp(min=EPS), out)


def background_unary(
    attention: Tensor, in_boxes: Tensor, threshold: float = 0.99, peak: str = "image"
) -> Tensor:
    """Eq. 7 with the authors' confident-background threshold: u_0 = 1 outside the boxes; inside
    them u_0 = A where A >= threshold * max A, else 0 (a RELATIVE threshold; the paper's text
    reads it as absolute). ``threshold`` = 0 keeps u_0 = A.

    Args:
        attention: h x w, A of Eq. 2-3 at EVERY cell (outside the boxes too, not set to 1).
        in_boxes: h x w bool, the union of the boxes.
        peak: where max A is taken: "image", the whole map (the authors' stage 2:
            ``bg_attn.max()``), or "boxes", the cells inside the boxes (weakseg before issue 13).
    """
    inside = attention
    if threshold > 0 and in_boxes.any():
        if peak not in ("image", "boxes"):
            raise ValueError(f"peak must be 'image' or 'boxes', got {peak!r}")
        top = attention.max() if peak == "image" else attention[in_boxes].max()
        inside = torch.where(attention >= threshold * top, attention, torch.zeros_like(attention))
    return torch.where(in_boxes, inside, torch.ones_like(attention))


def prototypes(f: Tensor, labels: Tensor, classes: list[int], fallback: Tensor | None = None):
    """Eq. 8: q_c = mean of f over the pixels labelled c (background included), K x C for the
    given ``classes``. A class with no pixel gets ``fallback``'s row (K x C; the authors' code
    passes the classifier weights W_c), or a zero prototype without one (correlation 0)."""
    out = []
    for i, c in enumerate(classes):
        m = labels == c
        if m.any():
            out.append(f[:, m].mean(dim=1))
        else:
            out.append(fallback[i].to(f) if fallback is not None else f.new_zeros(f.shape[0]))
    return torch.stack(out)


def correlation(f: Tensor, queries: Tensor) -> Tensor:
    """Eq. 9: C_c(p) = cos(f(p), q_c): C x h x w and K x C -> K x h x w."""
    fn = F.normalize(f, dim=0, eps=EPS).flatten(1)
    qn = F.normalize(queries, dim=1, eps=EPS)
    return (qn @ fn).view(len(queries), *f.shape[1:])


def retrieval_scores(corr: Tensor, class_masks: Tensor) -> Tensor:
    """The authors' form of Y_ret's scores (stage2.py), Y_ret = their arg max: Eq. 9's
    correlations through ReLU, each class's zeroed outside its own boxes, the background's set
    to 1 outside every box.

    Args:
        corr: K x H x W correlations, channel 0 the background, 1.. the classes present.
        class_masks: K x H x W bool, channel k where class k may be (channel 0 is not read).
    """
    out = F.relu(corr) * class_masks.to(corr.dtype)
    outside = ~class_masks[1:].any(dim=0)
    out[0] = torch.where(outside, torch.ones_like(corr[0]), F.relu(corr[0]))
    return out


# -- Stage 3: the noise-aware loss (section 3.3) -------------------------------------------------
def agreement(y_crf: Tensor, y_ret: Tensor) -> Tensor:
    """S: where Y_crf and Y_ret give the same label (and neither is ignore)."""
    return (y_crf == y_ret) & (y_crf != IGNORE)


def nal_ce(logits: Tensor, y_crf: Tensor, y_ret: Tensor) -> Tensor:
    """Eq. 10: -1/|S| sum_c sum_{p in S_c} log H_c(p), the cross-entropy on the agreeing region
    (0 when S is empty). logits: N x K x H x W; labels N x H x W."""
    target = torch.where(agreement(y_crf, y_ret), y_crf, torch.full_like(y_crf, IGNORE))
    if not (target != IGNORE).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits, target, ignore_index=IGNORE)


def nal_confidence(cosine: Tensor, y_crf: Tensor, gamma: float = 7.0) -> Tensor:
    """Eq. 11-12: D_c = 1 + cos(phi, W_c); sigma = (D_{c*} / max_c D_c)^gamma with c* = Y_crf.

    cosine: N x K x H x W; y_crf: N x H x W -> sigma N x H x W in [0, 1] (0 where Y_crf is
    ignore). sigma = 1 exactly where Y_crf is the arg-max class."""
    d = 1.0 + cosine
    label = torch.where(y_crf == IGNORE, torch.zeros_like(y_crf), y_crf)
    d_star = d.gather(1, label[:, None])[:, 0]
    sigma = (d_star / d.max(dim=1).values.clamp(min=EPS)).pow(gamma)
    return torch.where(y_crf == IGNORE, torch.zeros_like(sigma), sigma)


def nal_wce(logits: Tensor, y_crf: Tensor, y_ret: Tensor, sigma: Tensor) -> Tensor:
    """Eq. 13: -sum_{p in ~S} sigma(p) log H_{c*}(p) / sum_{p in ~S} sigma(p), on the region where
    Y_crf and Y_ret disagree, with the Y_crf label (0 when that region is empty)."""
    region = ~agreement(y_crf, y_ret) & (y_crf != IGNORE)
    weight = sigma * region
    total = weight.sum()
    if total <= 0:
        return logits.sum() * 0.0
    label = torch.where(region, y_crf, torch.zeros_like(y_crf))
    nll = F.cross_entropy(logits, label, reduction="none")
    return (weight * nll).sum() / total


def entropy_regularisation(logits: Tensor, region: Tensor) -> Tensor:
    """Supplement Eq. 4: -1/|~S| sum_{p in ~S} sum_c H_c log H_c (0 for an empty region)."""
    if not region.any():
        return logits.sum() * 0.0
    log_h = F.log_softmax(logits, dim=1)
    entropy = -(log_h.exp() * log_h).sum(dim=1)
    return entropy[region].mean()


def bootstrapping_loss(logits: Tensor, y_crf: Tensor, region: Tensor, beta: float) -> Tensor:
    """Supplement Eq. 6-7: -1/|~S| sum_{p in ~S} sum_c Y_c log H_c with the target
    Y = beta onehot(Y_crf) + (1 - beta) H (H detached: the E-step estimate), beta going from 1 to
    0 on the poly schedule (the caller passes it)."""
    region = region & (y_crf != IGNORE)
    if not region.any():
        return logits.sum() * 0.0
    log_h = F.log_softmax(logits, dim=1)
    label = torch.where(region, y_crf, torch.zeros_like(y_crf))
    onehot = F.one_hot(label, logits.shape[1]).permute(0, 3, 1, 2).to(log_h.dtype)
    target = beta * onehot + (1.0 - beta) * log_h.detach().exp()
    return -(target * log_h).sum(dim=1)[region].mean()


__all__ = [
    "agreement",
    "background_attention",
    "background_queries",
    "background_unary",
    "bootstrapping_loss",
    "cam",
    "class_unary",
    "correlation",
    "entropy_regularisation",
    "feature_boxes",
    "grid_cells",
    "nal_ce",
    "nal_confidence",
    "nal_wce",
    "prototypes",
    "retrieval_scores",
    "weighted_pool",
]
