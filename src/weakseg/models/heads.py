"""Heads: decoder feature map (B x D x h x w) -> one named output at the same resolution.

Here now: ``SegmentationHead`` (1x1 conv classifier, DeepLab's fc8), ``CosineClassifier``
(BANA's classifier for the noise-aware loss: logits = scale * cosine(feature, class weight)) and
``ConvHead`` (two convolutions, Box2Seg's attention and embedding branches) and
``UncertaintyHead`` (the label-uncertainty sigma; its mean mu is the "seg" head). Each is an
``nn.Module`` taking the decoder channels as its first argument, so
``build_segmenter(extra_heads=...)`` can attach it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SegmentationHead(nn.Module):
    """Dropout (optional) + 1x1 conv: B x in_ch x h x w -> B x num_classes x h x w logits.

    Weights init N(0, 0.01), bias 0, as DeepLab initialises its new classifier layer.
    """

    def __init__(self, in_ch: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv = nn.Conv2d(in_ch, num_classes, kernel_size=1)
        nn.init.normal_(self.conv.weight, std=0.01)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.dropout(x))


class CosineClassifier(nn.Module):
    """Cosine-similarity classifier: logits = scale * <x / |x|, w_c / |w_c|>.

    B x in_ch x h x w -> B x num_classes x h x w, each logit in [-scale, scale]. BANA's
    segmentation classifier (supplementary Sec. 4, Eq. 3, scale tau = 20; no bias).

    The rows start as random directions of unit norm (our choice; the paper gives no init).
    The logits see only w_c's direction, so an SGD step turns it by about lr * |grad| / |w_c|
    while |grad| itself scales as 1 / |w_c|: rows drawn at std 0.01 (norm ~0.1) were thrown
    about by the first steps at the CPU protocol's decoder lr of 0.1, grew to norms of 10-80
    and froze in the direction of another class (seg-nal: boat, aeroplane or bus never
    predicted, a different set per seed).
    """

    def __init__(self, in_ch: int, num_classes: int, scale: float = 20.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(F.normalize(torch.randn(num_classes, in_ch), dim=1))
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.normalize(x, dim=1, eps=1e-6)
        w = F.normalize(self.weight, dim=1, eps=1e-6).to(x.dtype)
        return self.scale * F.conv2d(x, w[:, :, None, None])


class DotClassifier(nn.Module):
    """Bias-free 1x1 conv: logits = phi . W_c (BANA supplement Eq. 2, the dot-product classifier
    its cosine classifier is compared with). Init N(0, 0.01)."""

    def __init__(self, in_ch: int, num_classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, in_ch))
        nn.init.normal_(self.weight, std=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight.to(x.dtype)[:, :, None, None])


class CosineReadout(nn.Module):
    """cos(phi(p), W_c) for the weights W of another classifier head (shared, not copied):
    BANA Eq. 11's correlation, whatever the classifier (cosine or dot product). It owns no
    parameters of its own, so it adds nothing to train or to export."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self._classifier = [classifier]  # a list: not registered as a submodule (no duplicate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self._classifier[0].weight.reshape(self._classifier[0].weight.shape[0], -1)
        x = F.normalize(x, dim=1, eps=1e-6)
        w = F.normalize(weight, dim=1, eps=1e-6).to(x.dtype)
        return F.conv2d(x, w[:, :, None, None])


class ConvHead(nn.Module):
    """k x k conv + BatchNorm + ReLU + 1x1 conv: B x in_ch x h x w -> B x out_ch x h x w.

    Box2Seg's attention (out_ch = L + 1 logits; the sigmoid is taken in the loss) and embedding
    (out_ch = d) branches: the paper's decoders "consist of 2 convolutional layers" (section 4.1);
    ours share the decoder trunk with the segmentation head and add these two layers each. At
    stride 4 a 3 x 3 first layer costs more than the rest of lite0 + DeepLabV3+ together (256 ->
    128 channels: ~3.8 GFLOP per 320 x 320 image), so the default is 1 x 1.
    """

    def __init__(self, in_ch: int, out_ch: int, hidden: int = 64, kernel: int = 1) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(in_ch, hidden, kernel_size=kernel, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_ch, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class UncertaintyHead(nn.Module):
    """1x1 conv -> the standard deviation of the logits: B x in_ch x h x w -> B x out_ch x h x w,
    sigma = softplus(x) + min_sigma (Neven et al. section 3.1; the mean mu is the "seg" head).

    out_ch is 1 for a binary task (one logit) and C in the multi-class case (a diagonal
    covariance, one sigma per class, section 4.2). The parametrisation is ours (the paper leaves
    it open): softplus keeps sigma > 0 without the overflow of exp, grows only linearly for large
    x, and the floor 1e-3 (edward2's MC-softmax layer) keeps 1 / var and log var finite.
    Init N(0, 0.01), bias 0: sigma ~ softplus(0) = 0.69 (var 0.48, below tau = 2.5: no flips
    at the start).
    """

    def __init__(self, in_ch: int, out_ch: int, min_sigma: float = 1e-3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size=1)
        nn.init.normal_(self.conv.weight, std=0.01)
        nn.init.zeros_(self.conv.bias)
        self.min_sigma = min_sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.softplus(self.conv(x).float()) + self.min_sigma


HEADS: dict[str, type[nn.Module]] = {
    "conv": SegmentationHead,
    "cosine": CosineClassifier,
    "dot": DotClassifier,
}
