"""SEC (Kolesnikov and Lampert, ECCV 2016; papers/sec.md): segmentation from image-level tags
only, in three steps that each read nothing but the tags (``Sample.image_labels``):

1. "sec-classifier": the localization network, a multi-label classifier with global average
   pooling (section 4.1, supplement 6.1), trained on the tags with the multi-label logistic loss.
2. The ``sec-cues`` generator of ``weakseg labels`` (``weakseg.pseudo.sec``): foreground cues from
   its class activation maps, background cues from its gradient saliency.
3. "sec": the segmentation network trained with the SEC loss, Eq. 1 = seed + expand + constrain.

Equation -> function (``weakseg.losses.sec``): Eq. 2 ``seed_loss``; Eq. 3 ``gwrp``; Eq. 4
``expand_loss``; Eq. 5 ``constrain_loss`` with Q from ``crf_targets`` (the dense CRF on the image
downscaled to the output grid, ``small_images``; a constant target).

As in the authors' code (REFERENCE_NOTES, SEC): probabilities = softmax + 1e-4, renormalised;
the seeding loss divides by each image's own number of cue cells; images are warped to a fixed
size without crop or flip (``data.warp: true``, ``data.flip: false`` in the configs); the CRF's
spatial kernels are the dense-CRF defaults divided by ``crf_scale``. Where the paper is open:
``pooling`` (Fig. 6) replaces d+ only (absent classes keep GMP, the background d_bg); a batch
trained on crops with padding would pool over the padding too, so the configs warp.

Ablations (Fig. 6, 7): ``pooling: gmp | gap | gwrp``; ``seed`` / ``expand`` / ``constrain``
switch the loss terms on and off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from weakseg.config import Config
from weakseg.losses import sec as S
from weakseg.methods.base import Method, build_segmenter_from_config

POOLINGS = {"gwrp": None, "gmp": 0.0, "gap": 1.0}  # d+ of each (None: method.d_plus)


@dataclass
class SecClassifier(Method):
    """The localization network: encoder -> decoder (the configs: "cam", the authors' fc6_CAM /
    fc7_CAM, undilated 3x3, no ReLU after fc7) -> bias-free 1x1 class scores at every cell (the
    "seg" head, L outputs, no background: CAM_c) -> global average pooling -> multi-label
    logistic loss on the tags. A Segmenter, so a frozen encoder's feature cache serves it (and
    the "sec" run after it, when encoder, warp size and dataset match)."""

    name: ClassVar[str] = "sec-classifier"
    label_source: ClassVar[str] = "tags"  # nothing but the image-level tags

    def build_model(self, cfg: Config, num_classes: int) -> nn.Module:
        return build_segmenter_from_config(cfg.model, num_classes - 1, seg_head="dot")

    def losses(self, batch: dict, outputs: dict[str, Tensor]) -> dict[str, Tensor]:
        cam = outputs["seg"]  # N x L x h x w
        valid = F.interpolate(batch["valid"][:, None].float(), size=cam.shape[-2:], mode="nearest")
        scores = (cam * valid).sum(dim=(2, 3)) / valid.sum(dim=(2, 3)).clamp(min=1)  # GAP
        tags = batch["image_labels"][:, 1:].to(scores.dtype)
        return {"cls": F.binary_cross_entropy_with_logits(scores, tags)}


@dataclass
class Sec(Method):
    """The segmentation network trained with SEC's loss on the cue maps of ``data.labels``
    (written by ``weakseg labels --generator sec-cues``) and the tags. Defaults: the paper's."""

    name: ClassVar[str] = "sec"
    label_source: ClassVar[str] = "cues"
    seed: bool = True  # Eq. 2
    expand: bool = True  # Eq. 4
    constrain: bool = True  # Eq. 5
    pooling: str = "gwrp"  # for the present classes: "gwrp" (d_plus), "gmp" (d+ = 0), "gap" (1)
    d_plus: float = 0.996  # present classes (paper, for 41 x 41 outputs)
    d_minus: float = 0.0  # absent classes: global max pooling
    d_bg: float = 0.999  # the background (paper, for 41 x 41 outputs)
    crf_scale: float = 12.0  # the CRF's spatial distances divided by this (paper: 12)
    crf_iterations: int = 10

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"method.pooling must be one of {tuple(POOLINGS)}")
        if not (self.seed or self.expand or self.constrain):
            raise ValueError("method sec needs at least one of seed, expand, constrain")
        for key in ("d_plus", "d_minus", "d_bg"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"method.{key} must be in [0, 1], got {getattr(self, key)}")
        if self.crf_scale <= 0 or self.crf_iterations < 1:
            raise ValueError("method.crf_scale must be > 0 and method.crf_iterations >= 1")

    def losses(self, batch: dict, outputs: dict[str, Tensor]) -> dict[str, Tensor]:
        logits = outputs["seg"]  # N x K x h x w, the output grid
        probs = S.sec_probabilities(logits)
        terms = {}
        if self.seed:
            terms["seed"] = S.seed_loss(probs, grid_cues(batch["target"], logits.shape[-2:]))
        if self.expand:
            d_plus = POOLINGS[self.pooling]
            d_plus = self.d_plus if d_plus is None else d_plus
            terms["expand"] = S.expand_loss(probs, batch["image_labels"], d_plus, self.d_minus,
                                            self.d_bg)  # fmt: skip
        if self.constrain:
            images = S.small_images(batch["image"], tuple(logits.shape[-2:]))
            params = S.sec_crf_params(self.crf_scale, self.crf_iterations)
            terms["constrain"] = S.constrain_loss(probs, S.crf_targets(images, probs, params))
        return terms


def grid_cues(target: Tensor, size: tuple[int, int] | torch.Size) -> Tensor:
    """N x H x W cue maps (the crop's, 255 = no cue) -> N x h x w: the value at the centre of each
    of the h x w cells (the cue generator paints each output cell as one block, so the centre
    recovers it)."""
    height, width = target.shape[-2:]
    h, w = size
    rows = ((torch.arange(h, device=target.device) + 0.5) * height / h).long().clamp(max=height - 1)
    cols = ((torch.arange(w, device=target.device) + 0.5) * width / w).long().clamp(max=width - 1)
    return target[:, rows][:, :, cols]


__all__ = ["POOLINGS", "Sec", "SecClassifier", "grid_cues"]
