"""Label uncertainty (Neven et al., papers/label-uncertainty.md): boxes for most images, pixel
masks for a few, a learned per-pixel uncertainty of the box labels and online bootstrapping.

Data (``weakseg.data.mixed``): the PP images (``labelled_ids`` / ``labelled_count`` /
``labelled_fraction`` with ``labelled_seed``) train on their masks, the BB images on their box
label map (smaller box on top); each batch element is a PP image with chance ``pp_chance``
(section 4.1.1: 25%).

Network: the "seg" head gives the logit mean mu, a :class:`~weakseg.models.heads.UncertaintyHead`
named "sigma" its standard deviation (one channel for a binary task, one per class otherwise).
Binary tasks (2 classes, e.g. ``binary:person:voc:...``) keep a 2-channel "seg" head so that
evaluation and export are those of every other model; the binary logit is mu = seg_1 - seg_0
(softmax over two logits is the sigmoid of their difference).

Loss (``loss``; each term's pixels are summed and divided by the batch's valid pixels, so the
terms add up to a per-pixel mean like cross-entropy). "plain" is the ordinary loss on the PP
pixels and on the BB pixels outside the region; on the region (BB pixels, see ``region``):

    l2    plain (y - mu)^2 (Eq. 3, first term); region: Eq. 2 ("uncertainty")
    bce   plain BCE(mu, y); region with ``bootstrap``: Eq. 9 with mu detached ("uncertainty")
          + Eq. 10 with sigma detached ("bootstrap") (section 3.3); without: Eq. 9 alone
    mc    plain CE(mu, y); region with ``bootstrap``: Eq. 15 with mu detached + CE(mu, y*), y*
          of Eq. 16; without: Eq. 15 alone
    ce    CE(mu, y) on every pixel ("ce"): the "CE on PP + boxes as masks" baseline; with
          ``pp_chance: 1`` only PP images are drawn: the "CE on PP only" baseline

``warmup`` (our addition, 0 = the paper's loss from the first step): the first ``warmup`` share
of the run trains mu with the bootstrapping term on y itself (no flip: W = 1, y* = y) and leaves
sigma untrained. Without it, on 21 VOC classes the plain loss outside the boxes makes mu predict
background everywhere within the first steps, the uncertainty term then raises sigma on every box
pixel (var in the thousands after 1,200 steps), Eq. 16 flips every box pixel to mu's argmax
(background) and mu never learns a box class (12.1 mIoU, below CE on the PP images alone): the
paper's own warning that a too-small tau "flips many foreground pixels to background, which
disables further learning" (section 5), reached through a mu that has not learned yet. The
warm-up alone is not enough (36.0 mIoU; person IoU 4.2): the ``ours`` configs also raise ``tau``
to 10 (README, "Label uncertainty").

``auto`` is ``bce`` for 2 classes and ``mc`` otherwise. ``region: box`` (default, section 4.1.2)
puts the uncertainty only inside the boxes of BB images; ``all`` on every BB pixel (Table 1's
first uncertainty row).

Our choices where the paper is silent (also in the README): sigma = softplus(x) + 1e-3 is a
standard deviation; with ``l2`` the regression target is 2y - 1 (so mu > 0 is the prediction,
as for logits); all terms are computed at the output stride (targets sampled nearest), which keeps
Eq. 15's T x C samples per pixel affordable; eps of Eq. 14 comes from the global torch RNG (seeded
and checkpointed by the loop).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from weakseg.config import Config
from weakseg.data.mixed import MixedSupervision
from weakseg.data.sample import IGNORE
from weakseg.losses import uncertainty as U
from weakseg.losses.common import cross_entropy
from weakseg.methods.base import Method, build_segmenter_from_config
from weakseg.methods.box2seg import labels_at
from weakseg.models.heads import UncertaintyHead

LOSSES = ("auto", "bce", "l2", "mc", "ce")
REGIONS = ("box", "all")


@dataclass
class LabelUncertainty(Method):
    """Neven et al.'s loss on mixed PP / BB data. Defaults are the paper's (tau 2.5, W's 0.2,
    T = 20, PP chance 25%, uncertainty inside boxes, bootstrapping on)."""

    name: ClassVar[str] = "uncertainty"
    label_source: ClassVar[str] = "mixed"
    loss: str = "auto"  # "auto", "bce", "l2", "mc" or "ce" (see the module docstring)
    bootstrap: bool = True  # Eq. 10-11 / Eq. 16 with the gradient split of section 3.3
    region: str = "box"  # where the uncertainty is learned on BB images: "box" or "all"
    tau: float = U.TAU  # threshold on the variance (Eq. 11, 16)
    temperature: float = U.TEMPERATURE  # Eq. 11's 0.2
    samples: int = U.SAMPLES  # T of Eq. 14-15
    labelled_fraction: float = 0.0  # PP images: a seeded fraction of the training ids ...
    labelled_count: int = 0  # ... or a seeded count ...
    labelled_ids: str = ""  # ... or a file listing them (exactly one of the three)
    labelled_seed: int = 0  # seed of the fraction / count draw (as the semi baseline's)
    pp_chance: float = 0.25  # chance that a batch element is a PP image (0 = plain shuffle)
    min_sigma: float = 1e-3  # floor of sigma (UncertaintyHead)
    warmup: float = 0.0  # share of the run with y* = y and sigma untrained (ours; 0 = paper)

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"method.loss must be one of {LOSSES}, got {self.loss!r}")
        if self.region not in REGIONS:
            raise ValueError(f"method.region must be one of {REGIONS}, got {self.region!r}")
        if self.loss == "l2" and self.bootstrap:
            raise ValueError(
                "method.loss=l2 has no bootstrapping in the paper; set bootstrap: false"
            )
        if self.samples < 1 or self.min_sigma <= 0 or self.temperature <= 0:
            raise ValueError("method.samples, min_sigma and temperature must be positive")
        if not 0.0 <= self.warmup < 1.0 or (self.warmup and not self.bootstrap):
            raise ValueError("method.warmup must be in [0, 1) and needs bootstrap: true")
        self.progress = 0.0
        _ = self.mixed  # checks the PP choice now, not at the first batch

    @property
    def mixed(self) -> MixedSupervision:
        return MixedSupervision(self.labelled_fraction, self.labelled_count, self.labelled_ids,
                                self.labelled_seed, self.pp_chance)  # fmt: skip

    def resolved_loss(self, num_classes: int) -> str:
        """``loss`` with "auto" resolved; "bce" / "l2" need a binary task."""
        loss = self.loss if self.loss != "auto" else ("bce" if num_classes == 2 else "mc")
        if loss in ("bce", "l2") and num_classes != 2:
            raise ValueError(
                f"method.loss={loss} is binary but the dataset has {num_classes} classes; use "
                "loss: mc, or a binary:CLASS:SPEC dataset"
            )
        return loss

    def build_model(self, cfg: Config, num_classes: int) -> nn.Module:
        if self.resolved_loss(num_classes) == "ce":
            return build_segmenter_from_config(cfg.model, num_classes)
        channels = 1 if num_classes == 2 else num_classes
        heads = {"sigma": lambda ch: UncertaintyHead(ch, channels, self.min_sigma)}
        model = build_segmenter_from_config(cfg.model, num_classes, extra_heads=heads)
        model.heads["sigma"].tau = self.tau  # for the report's flip maps
        return model

    def set_progress(self, iteration: int, total: int) -> None:
        self.progress = iteration / max(total, 1)

    @property
    def warming_up(self) -> bool:
        return self.progress < self.warmup

    def losses(self, batch: dict, outputs: dict[str, Tensor]) -> dict[str, Tensor]:
        seg = outputs["seg"]
        loss = self.resolved_loss(seg.shape[1])
        if loss == "ce":
            return {"ce": cross_entropy(seg, batch["target"])}
        target = labels_at(batch["target"], seg.shape[-2:])  # B x h x w
        valid = target != IGNORE
        uncertain = self.uncertain_pixels(batch["labelled"], target)
        count = valid.sum().clamp(min=1)
        if loss == "mc":
            terms = self.multiclass_terms(seg, outputs["sigma"], target, valid, uncertain)
        else:
            terms = self.binary_terms(loss, seg, outputs["sigma"], target, valid, uncertain)
        terms = {name: value / count for name, value in terms.items()}
        # Every parameter gets a gradient even in a batch without BB pixels (DDP needs it).
        terms["uncertainty"] = terms["uncertainty"] + 0.0 * outputs["sigma"].sum()
        return terms

    def uncertain_pixels(self, labelled: Tensor, target: Tensor) -> Tensor:
        """B x h x w: the pixels whose loss carries the uncertainty (BB images; inside their
        boxes with ``region: box``)."""
        region = (target != IGNORE) & (target > 0 if self.region == "box" else True)
        return region & ~labelled.bool()[:, None, None]

    def binary_terms(self, loss: str, seg: Tensor, sigma: Tensor, target: Tensor, valid: Tensor,
                     uncertain: Tensor) -> dict[str, Tensor]:  # fmt: skip
        """Summed (not yet averaged) terms of the binary losses."""
        mu, s = seg[:, 1] - seg[:, 0], sigma[:, 0]
        y = target.clamp(max=1).float()  # ignored pixels are masked out below
        plain = valid & ~uncertain
        if loss == "l2":
            per_pixel = U.mixed_regression_loss(mu, s, 2.0 * y - 1.0, uncertain)  # Eq. 3
            return {"plain": per_pixel[plain].sum(), "uncertainty": per_pixel[uncertain].sum()}
        bce = F.binary_cross_entropy_with_logits(mu, y, reduction="none")
        terms = {"plain": bce[plain].sum()}
        if self.warming_up:  # Eq. 10 with W = 1; sigma untrained
            return terms | {"uncertainty": s.new_zeros(()), "bootstrap": bce[uncertain].sum()}
        if self.bootstrap:
            unc, boot = U.split_binary_terms(mu, s, y, self.tau, self.temperature)
            return terms | {"uncertainty": unc[uncertain].sum(), "bootstrap": boot[uncertain].sum()}
        return terms | {"uncertainty": U.bce_with_uncertainty(mu, s, y)[uncertain].sum()}

    def multiclass_terms(self, seg: Tensor, sigma: Tensor, target: Tensor, valid: Tensor,
                         uncertain: Tensor) -> dict[str, Tensor]:  # fmt: skip
        """Summed terms of the multi-class loss; Eq. 15 only on the region's pixels (P x C)."""
        plain_target = torch.where(uncertain, IGNORE, target)
        plain = F.cross_entropy(seg, plain_target, ignore_index=IGNORE, reduction="sum")
        mu_u, s_u = pixels(seg, uncertain), pixels(sigma, uncertain)
        y_u = target[uncertain]
        if self.warming_up:  # CE(mu, y* = y); sigma untrained
            boot = F.cross_entropy(mu_u, y_u, reduction="sum")
            return {"plain": plain, "uncertainty": s_u.new_zeros(()), "bootstrap": boot}
        if self.bootstrap:
            unc, boot, _ = U.split_multiclass_terms(mu_u, s_u, y_u, self.tau, self.samples)
            return {"plain": plain, "uncertainty": unc.sum(), "bootstrap": boot.sum()}
        return {
            "plain": plain,
            "uncertainty": U.mc_cross_entropy(mu_u, s_u, y_u, self.samples).sum(),
        }


def pixels(maps: Tensor, where: Tensor) -> Tensor:
    """B x C x h x w maps at the B x h x w mask ``where`` -> P x C."""
    return maps.permute(0, 2, 3, 1)[where]


__all__ = ["LabelUncertainty", "pixels"]
