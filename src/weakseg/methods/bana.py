"""BANA (Oh, Kim and Ham, CVPR 2021; papers/bana.md) as training methods: stage 1 trains the
classifier with background-aware pooling ("bana-classifier"); stage 3 trains the segmentation
network with the noise-aware loss ("bana"). Stage 2, the pseudo labels Y_crf and Y_ret, is the
``bana`` generator of ``weakseg labels`` (``weakseg.pseudo.bana``).

Stage 1 (section 3.1), per training crop: f is the encoder's last feature map (stride 8), the
boxes and the definite background M are taken to f's grid (box corners rounded outwards, at the
model's output stride, which ``build_model`` records: never inferred from the sizes); the
background queries q_j (Eq. 1) of an N x N grid give the attention A (Eq. 2-3), each box's
foreground feature r_i is the (1 - A)-weighted average of f over the box (Eq. 4), and the (L+1)-way
classifier is trained with cross-entropy on every r_i (its box's class) and every q_j
(background). w is linear and bias-free, so w . r_i is the same weighted average of the score map
w . f, which is what is computed. ``pooling: gap`` sets A = 0 (GAP, the paper's baseline); when the
definite background covers at most ``min_background`` of the crop, A = 0 too (the authors' code).

Where we follow the paper rather than the authors' code (REFERENCE_NOTES): one r_i per box from
the box's own cells on f, instead of the code's RoIAlign crop pooled to 2 x 2 cells (4 samples per
box). A is not detached, as in both (the paper's equations differentiated as written; the code's
stage 1 keeps A in the graph too).

Stage 3 (section 3.3): y_crf = the label directory's main maps, y_ret = its "ret" maps. "ce" is
Eq. 10 on S (Y_crf == Y_ret); for the other pixels ``unreliable`` chooses the term compared in
Table 3 of the paper: "wce" (Eq. 11-13, NAL; sigma from the cosine between phi and the classifier
weights; the gradient flows through sigma, as in the authors' stage-3 script, unless our option
``detach_sigma`` makes it a constant weight), "entropy" (supplement Eq. 4), "bootstrap"
(supplement Eq. 6-7, beta from 1 to 0 on the poly schedule) or "none" (ignored: the baseline).
The classifier is the cosine one with scale tau (supplement Eq. 3) or the bias-free dot product
(Eq. 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from weakseg.config import Config
from weakseg.losses import bana as B
from weakseg.losses.bana import feature_boxes
from weakseg.losses.common import upsample_to
from weakseg.methods.base import Method, build_segmenter_from_config
from weakseg.models.heads import CosineReadout

POOLINGS = ("bap", "gap")
UNRELIABLE = ("wce", "entropy", "bootstrap", "none")
CLASSIFIERS = ("cosine", "dot")


@dataclass
class BapClassification(Method):
    """Stage 1: the (L+1)-way classifier trained on BAP (or GAP) box features and background
    queries. Defaults: the authors' (grid 4, GAP fallback at 12.5% background)."""

    name: ClassVar[str] = "bana-classifier"
    label_source: ClassVar[str] = "box"  # only the boxes are used
    pooling: str = "bap"  # "bap" (Eq. 4) or "gap" (A = 0)
    grid: int = 4  # N for training (paper 4.1)
    min_background: float = 0.125  # at most this share of definite background: A = 0

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"method.pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.grid < 1:
            raise ValueError("method.grid must be >= 1")
        self.output_stride = 0  # f's stride in pixels, from the model build_model makes

    def build_model(self, cfg: Config, num_classes: int) -> nn.Module:
        from weakseg.models.classifier import build_box_classifier

        model = build_box_classifier(cfg.model.encoder, num_classes, cfg.model.weights,
                                     cfg.model.output_stride, cfg.model.freeze)  # fmt: skip
        self.output_stride = model.output_stride
        return model

    def samples(self, batch: dict, outputs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """The pooled class scores (S x (L+1)) and labels (S) of every box and background
        query in the batch."""
        feats, scores = outputs["features"], outputs["cam"]
        _, _, h, w = feats.shape
        stride = self.output_stride
        if stride < 1:
            raise RuntimeError("bana-classifier: build_model sets the output stride; call it first")
        valid = F.interpolate(batch["valid"][:, None].float(), size=(h, w), mode="nearest")
        logits, labels = [], []
        for n, (boxes, classes) in enumerate(zip(batch["boxes"], batch["box_labels"],
                                                 strict=True)):  # fmt: skip
            masks = feature_boxes(boxes, stride, h, w)
            in_boxes = torch.zeros((h, w), dtype=torch.bool, device=feats.device)
            for m in masks:
                in_boxes |= m
            background = ~in_boxes & (valid[n, 0] > 0)
            share = background.sum() / valid[n, 0].sum().clamp(min=1)
            queries, cells = B.background_queries(feats[n], background, self.grid)
            if self.pooling == "bap" and share > self.min_background:
                attention = B.background_attention(feats[n], queries, in_boxes)
            else:
                attention = torch.zeros((h, w), dtype=feats.dtype, device=feats.device)
            for m, c in zip(masks, classes.tolist(), strict=True):
                if m.any():
                    logits.append(B.weighted_pool(scores[n], (1.0 - attention) * m))
                    labels.append(c)
            grid = B.grid_cells(h, w, self.grid)
            for j in cells:  # w . q_j = the background-masked mean of the scores in cell j
                rs, cs = grid[j]
                cell = torch.zeros_like(background)
                cell[rs, cs] = background[rs, cs]
                logits.append(B.weighted_pool(scores[n], cell.to(scores.dtype)))
                labels.append(0)
        if not logits:
            return scores.new_zeros((0, scores.shape[1])), scores.new_zeros(0, dtype=torch.long)
        return torch.stack(logits), torch.tensor(labels, device=scores.device)

    def losses(self, batch: dict, outputs: dict[str, Tensor]) -> dict[str, Tensor]:
        logits, labels = self.samples(batch, outputs)
        if len(labels) == 0:
            return {"cls": outputs["cam"].sum() * 0.0}
        return {"cls": F.cross_entropy(logits, labels)}


@dataclass
class NoiseAwareSegmentation(Method):
    """Stage 3: segmentation on Y_crf / Y_ret with the noise-aware loss (Eq. 14 by default)."""

    name: ClassVar[str] = "bana"
    label_source: ClassVar[str] = "pseudo"
    extra_maps: ClassVar[tuple[str, ...]] = ("ret",)
    classifier: str = "cosine"  # "cosine" (scale tau) or "dot" (supplement Eq. 2-3)
    scale: float = 20.0  # tau
    unreliable: str = "wce"  # loss on ~S: "wce" (NAL), "entropy", "bootstrap", "none"
    gamma: float = 7.0  # damping of sigma (Eq. 12)
    lam: float = 0.1  # lambda (Eq. 14, supplement Eq. 5, 8)
    detach_sigma: bool = False  # True: sigma a constant weight (ours); False: as the code

    def __post_init__(self) -> None:
        if self.classifier not in CLASSIFIERS:
            raise ValueError(f"method.classifier must be one of {CLASSIFIERS}")
        if self.unreliable not in UNRELIABLE:
            raise ValueError(f"method.unreliable must be one of {UNRELIABLE}")
        self.progress = 0.0

    def build_model(self, cfg: Config, num_classes: int) -> nn.Module:
        model = build_segmenter_from_config(cfg.model, num_classes, seg_head=self.classifier)
        if self.classifier == "cosine":
            model.heads["seg"].scale = self.scale
        model.heads["cos"] = CosineReadout(model.heads["seg"])
        return model

    def set_progress(self, iteration: int, total: int) -> None:
        self.progress = iteration / max(total, 1)

    def losses(self, batch: dict, outputs: dict[str, Tensor]) -> dict[str, Tensor]:
        y_crf, y_ret = batch["target"], batch["target_ret"]
        logits = upsample_to(outputs["seg"], y_crf.shape[-2:])
        terms = {"ce": B.nal_ce(logits, y_crf, y_ret)}
        region = ~B.agreement(y_crf, y_ret) & (y_crf != B.IGNORE)
        if self.unreliable == "wce":
            cosine = upsample_to(outputs["cos"], y_crf.shape[-2:])
            if self.detach_sigma:
                cosine = cosine.detach()
            sigma = B.nal_confidence(cosine, y_crf, self.gamma)
            terms["wce"] = self.lam * B.nal_wce(logits, y_crf, y_ret, sigma)
        elif self.unreliable == "entropy":
            terms["entropy"] = self.lam * B.entropy_regularisation(logits, region)
        elif self.unreliable == "bootstrap":
            beta = (1.0 - self.progress) ** 0.9  # 1 -> 0 on the poly schedule
            terms["bootstrap"] = self.lam * B.bootstrapping_loss(logits, y_crf, region, beta)
        return terms


__all__ = ["BapClassification", "NoiseAwareSegmentation", "feature_boxes"]
