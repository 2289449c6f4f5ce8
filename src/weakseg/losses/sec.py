"""SEC (Kolesnikov and Lampert, ECCV 2016; papers/sec.md) as pure functions: the seeding loss
(Eq. 2), global weighted rank pooling (Eq. 3), the expansion loss (Eq. 4) and the
constrain-to-boundary loss (Eq. 5) with its dense-CRF target.

Shapes: ``probs`` are N x K x h x w class probabilities at the network's output grid (K = L + 1,
class 0 the background), from :func:`sec_probabilities`; ``cues`` are N x h x w int64 (a class
per cell, 255 = no cue); ``tags`` are N x K bool (the classes present; the background entry is
not read, the background is always present).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from weakseg.crf import CrfParams, dense_crf

NO_CUE = 255
PROB_FLOOR = 1e-4  # the authors' code: softmax + 1e-4, renormalised, before every log


def sec_probabilities(logits: Tensor) -> Tensor:
    """N x K x h x w logits -> softmax probabilities with ``PROB_FLOOR`` added and renormalised
    (the authors' loss code), so no log below is infinite."""
    probs = torch.softmax(logits, dim=1) + PROB_FLOOR
    return probs / probs.sum(dim=1, keepdim=True)


def seed_loss(probs: Tensor, cues: Tensor) -> Tensor:
    """SEC Eq. 2: per image, -sum_c sum_{u in S_c} log f_{u,c} / sum_c |S_c|, the sum over the
    cue cells; then the mean over the batch (an image without cues counts 0).

    Args:
        probs: N x K x h x w; cues: N x h x w int64, 255 = no cue.
    """
    has_cue = cues != NO_CUE
    index = torch.where(has_cue, cues, torch.zeros_like(cues))[:, None]  # N x 1 x h x w
    log_p = torch.log(probs).gather(1, index)[:, 0]  # N x h x w: log f_{u, cue(u)}
    per_image = -(log_p * has_cue).sum(dim=(1, 2)) / has_cue.sum(dim=(1, 2)).clamp(min=1)
    return per_image.mean()


def gwrp(scores: Tensor, decay: Tensor | float) -> Tensor:
    """SEC Eq. 3, global weighted rank pooling: G = sum_j d^(j-1) f_(j) / sum_j d^(j-1) with
    f_(1) >= f_(2) >= ... the scores sorted in descending order (0^0 = 1: d = 0 is global max
    pooling, d = 1 global average pooling).

    Args:
        scores: ... x n (the last axis is pooled); decay: a float or a tensor broadcastable to
            ``scores.shape[:-1]`` (one decay per class and image).

    Returns: ``scores.shape[:-1]``.
    """
    ordered = scores.sort(dim=-1, descending=True).values
    decay = torch.as_tensor(decay, dtype=scores.dtype, device=scores.device)
    ranks = torch.arange(scores.shape[-1], dtype=scores.dtype, device=scores.device)
    weights = torch.pow(decay[..., None], ranks)  # torch.pow(0, 0) = 1
    return (ordered * weights).sum(dim=-1) / weights.sum(dim=-1)


def expand_loss(
    probs: Tensor, tags: Tensor, d_plus: float = 0.996, d_minus: float = 0.0, d_bg: float = 0.999
) -> Tensor:
    """SEC Eq. 4: -1/|T| sum_{c in T} log G_c(d+) - 1/|C' \\ T| sum_{c not in T} log(1 - G_c(d-))
    - log G_bg(d_bg), per image (a sum over an empty set counts 0), then the batch mean.

    Args:
        probs: N x K x h x w; tags: N x K bool, the foreground classes present (column 0 unused:
            the background is always present).
    """
    n, k = probs.shape[:2]
    present = tags.clone().bool()
    present[:, 0] = False
    absent = ~present
    absent[:, 0] = False
    decay = torch.where(present, d_plus, d_minus).to(probs.dtype)
    decay[:, 0] = d_bg
    pooled = gwrp(probs.reshape(n, k, -1), decay)  # N x K
    present_term = -(torch.log(pooled) * present).sum(1) / present.sum(1).clamp(min=1)
    absent_term = -(torch.log(1.0 - pooled) * absent).sum(1) / absent.sum(1).clamp(min=1)
    background_term = -torch.log(pooled[:, 0])
    return (present_term + absent_term + background_term).mean()


def constrain_loss(probs: Tensor, crf_probs: Tensor) -> Tensor:
    """SEC Eq. 5: the mean over cells (and images) of KL(Q || f) = sum_c Q log(Q / f), with Q
    the CRF's output, a constant target (no gradient flows into it).

    Args:
        probs: N x K x h x w network probabilities f; crf_probs: N x K x h x w Q (> 0).
    """
    q = crf_probs.detach()
    return (q * (torch.log(q) - torch.log(probs))).sum(dim=1).mean()


def sec_crf_params(scale: float = 12.0, iterations: int = 10) -> CrfParams:
    """The training-time CRF of SEC (section 4.1; REFERENCE_NOTES): the default kernels of the
    dense-CRF authors' code (bilateral weight 10, theta_alpha 80, theta_beta 13; gaussian weight
    3, theta_gamma 3) with every spatial distance divided by ``scale`` (12: a ~500-pixel image
    taken to the 41 x 41 output)."""
    return CrfParams(iterations=iterations, bi_sxy=80.0 / scale, bi_srgb=13.0, bi_compat=10.0,
                     g_sxy=3.0 / scale, g_compat=3.0)  # fmt: skip


def small_images(images: Tensor, size: tuple[int, int]) -> np.ndarray:
    """N x 3 x H x W RGB in [0, 1] -> N x h x w x 3 uint8, bilinearly resized to the output grid
    and rounded (the authors zoom the image to 41 x 41 the same way)."""
    small = F.interpolate(images.float(), size=size, mode="bilinear", align_corners=False)
    small = (small * 255.0).round().clamp(0, 255).to(torch.uint8)
    return small.permute(0, 2, 3, 1).contiguous().cpu().numpy()


def crf_targets(images: np.ndarray, probs: Tensor, params: CrfParams) -> Tensor:
    """Q for Eq. 5: a dense CRF per image with unary -log f (``weakseg.crf.dense_crf``), output
    floored at ``PROB_FLOOR`` and renormalised (the authors' code).

    Args:
        images: N x h x w x 3 uint8 (``small_images``); probs: N x K x h x w.

    Returns: N x K x h x w on ``probs``' device, without gradient.
    """
    p = probs.detach().float().cpu().numpy()
    q = np.stack([dense_crf(img, pi, params) for img, pi in zip(images, p, strict=True)])
    q = torch.from_numpy(q).clamp(min=PROB_FLOOR)
    return (q / q.sum(dim=1, keepdim=True)).to(probs.device, probs.dtype)


def decay_for(cells: int, top_share: float) -> float:
    """The decay d for which the top ``top_share`` of ``cells`` scores carry half the GWRP
    weight, d^(top_share * cells) = 1/2 (SEC 4.1's rule of thumb: 10% -> d+ = 0.996 and
    30% -> d_bg = 0.999 on 41 x 41 = 1681 cells)."""
    return float(0.5 ** (1.0 / (top_share * cells)))


__all__ = [
    "NO_CUE",
    "PROB_FLOOR",
    "constrain_loss",
    "crf_targets",
    "decay_for",
    "expand_loss",
    "gwrp",
    "sec_crf_params",
    "sec_probabilities",
    "seed_loss",
    "small_images",
]
