"""BANA's stage-1 classification network (papers/bana.md section 3.1): a pretrained encoder's
last feature map f and an (L+1)-way bias-free 1x1 classifier w, applied at every position.

``forward`` returns {"features": f (B x C x h x w), "cam": f . w (B x (L+1) x h x w)}, both at the
encoder's output stride (8 by default: the last stages dilated, as DeepLab/AffinityNet do for
CAMs). Because w is linear and has no bias, w applied to a pooled feature equals the same pooling
of the score map "cam", which is how the BAP loss scores r_i and q_j (``weakseg.methods.bana``);
ReLU("cam") is CAM_c (Eq. 6).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from weakseg.models.encoders import Encoder, build_encoder, encoder_normalization


class BoxClassifier(nn.Module):
    """Encoder + bias-free 1x1 classifier (init N(0, 0.01), as the paper's classifier weights)."""

    def __init__(
        self, encoder: Encoder, num_classes: int, mean: Sequence[float], std: Sequence[float]
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.classifier = nn.Conv2d(encoder.channels[-1], num_classes, kernel_size=1, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.01)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.output_stride = int(encoder.strides[-1])

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """B x 3 x H x W RGB in [0, 1] -> features and class score maps at h = ceil(H / stride).

        The input is padded bottom/right to a multiple of 32 (the mean colour after normalising)
        and the outputs cropped back, as ``Segmenter`` does."""
        height, width = images.shape[-2:]
        x = (images - self.mean) / self.std
        x = F.pad(x, (0, (32 - width % 32) % 32, 0, (32 - height % 32) % 32))
        f = self.encoder(x)[-1]
        s = self.output_stride
        f = f[..., : (height + s - 1) // s, : (width + s - 1) // s]
        return {"features": f, "cam": self.classifier(f)}

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """{"encoder": pretrained, "head": the classifier (10x lr, as the paper's 1e-4 / 1e-3)}."""
        return {"encoder": list(self.encoder.parameters()),
                "head": list(self.classifier.parameters())}  # fmt: skip


def build_box_classifier(
    encoder: str = "tf_efficientnet_lite0",
    num_classes: int = 21,
    weights: str = "imagenet",
    output_stride: int = 8,
    freeze: str = "none",
) -> BoxClassifier:
    """``freeze`` as ``model.freeze`` (the CPU protocol: "stride16" keeps the last stage, whose
    features BAP must learn, trainable; this model reads no feature cache)."""
    enc = build_encoder(encoder, weights=weights, output_stride=output_stride, freeze=freeze)
    mean, std = encoder_normalization(encoder)
    return BoxClassifier(enc, num_classes, mean, std)


__all__ = ["BoxClassifier", "build_box_classifier"]
