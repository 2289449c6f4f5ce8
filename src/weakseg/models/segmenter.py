"""Segmenter: encoder -> decoder -> named heads, taking [0, 1] RGB and normalising inside.

``Segmenter(encoder, decoder, heads, mean, std)`` is explicit (SAM style); ``build_segmenter``
assembles one from names. Training code reads ``forward``'s dict of named outputs at the decoder's
resolution (``output_stride``, 4 for deeplabv3plus/fpn); inference and export use ``predict``,
which reads only ``"seg"`` and returns logits at the input size.

Input sizes: any H x W. The image is padded (bottom/right, with the mean colour) to a multiple of
``size_divisor`` (the encoder's largest stride, 32) so every pyramid level divides exactly, and
the outputs are cropped back to ceil(H / output_stride) x ceil(W / output_stride): output pixel
(i, j) covers input pixels [i*s, (i+1)*s) x [j*s, (j+1)*s) with s = output_stride.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from weakseg.models.decoders import DECODERS
from weakseg.models.encoders import Encoder, build_encoder, encoder_normalization
from weakseg.models.heads import HEADS


class Segmenter(nn.Module):
    """Encoder + decoder + named heads. The head named "seg" gives class logits (L+1 classes).

    Attributes:
        output_stride: input pixels per output pixel of ``forward`` (the decoder's stride).
        size_divisor: inputs are padded internally to a multiple of this.
    """

    def __init__(
        self,
        encoder: Encoder,
        decoder: nn.Module,
        heads: dict[str, nn.Module],
        mean: Sequence[float],
        std: Sequence[float],
    ) -> None:
        super().__init__()
        if "seg" not in heads:
            raise ValueError(f"a Segmenter needs a 'seg' head; got {sorted(heads)}")
        self.encoder = encoder
        self.decoder = decoder
        self.heads = nn.ModuleDict(heads)
        # Not in the state dict: they follow from the encoder name, not from training.
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.output_stride = int(decoder.stride)
        self.size_divisor = max(encoder.strides)

    def forward(
        self, images: torch.Tensor, heads: Sequence[str] | None = None
    ) -> dict[str, torch.Tensor]:
        """B x 3 x H x W RGB in [0, 1] -> {head name: B x C_head x h x w}, h = ceil(H / stride).

        ``heads`` picks which heads to run (default all); e.g. {"seg": B x (L+1) x h x w}.
        """
        height, width = images.shape[-2:]
        x = self._pad((images - self.mean) / self.std)
        features = self.decoder(self.encoder(x))
        s = self.output_stride
        features = features[..., : (height + s - 1) // s, : (width + s - 1) // s]
        names = list(self.heads) if heads is None else heads
        return {name: self.heads[name](features) for name in names}

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """B x 3 x H x W RGB in [0, 1] -> B x (L+1) x H x W segmentation logits.

        The "seg" output is upsampled bilinearly by ``output_stride`` and cropped to H x W.
        """
        height, width = images.shape[-2:]
        seg = self.forward(images, heads=("seg",))["seg"]
        up = F.interpolate(
            seg, scale_factor=float(self.output_stride), mode="bilinear", align_corners=False
        )
        return up[..., :height, :width]

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        """Zero-pad (= the mean colour after normalising) bottom/right to a multiple of 32."""
        d = self.size_divisor
        height, width = x.shape[-2:]
        return F.pad(x, (0, (d - width % d) % d, 0, (d - height % d) % d))

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """{"encoder": pretrained parameters, "head": decoder + heads (DeepLab's 10x lr)}."""
        head = [*self.decoder.parameters(), *self.heads.parameters()]
        return {"encoder": list(self.encoder.parameters()), "head": head}


HeadFactory = Callable[[int], nn.Module]


def build_segmenter(
    encoder: str = "tf_efficientnet_lite0",
    decoder: str = "deeplabv3plus",
    num_classes: int = 21,
    weights: str = "imagenet",
    extra_heads: dict[str, HeadFactory] | None = None,
    seg_head: str = "conv",
    output_stride: int = 32,
) -> Segmenter:
    """Assemble a Segmenter from names.

    Args:
        encoder: timm name; offline ImageNet weights exist for ``offline_encoder_names()``.
        decoder: a key of ``DECODERS`` ("deeplabv3plus", "largefov", "fpn").
        num_classes: L + 1 (background included), 21 for VOC.
        weights: "imagenet" or "none" (random init), for the encoder only.
        extra_heads: {name: factory(decoder_channels) -> nn.Module}, e.g. Box2Seg's attention
            and embedding heads; "seg" is always built here.
        seg_head: a key of ``HEADS``: "conv" (1x1 conv) or "cosine" (BANA's cosine classifier).
        output_stride: encoder output stride, 32 or 16/8 (dilated; not for "fpn").
    """
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder {decoder!r}; choose from {', '.join(DECODERS)}")
    if seg_head not in HEADS:
        raise ValueError(f"unknown seg_head {seg_head!r}; choose from {', '.join(HEADS)}")
    enc = build_encoder(encoder, weights=weights, output_stride=output_stride)
    dec = DECODERS[decoder](enc.channels, enc.strides)
    heads = {"seg": HEADS[seg_head](dec.out_channels, num_classes)}
    for name, factory in (extra_heads or {}).items():
        if name == "seg":
            raise ValueError("extra_heads may not replace 'seg'; use seg_head")
        heads[name] = factory(dec.out_channels)
    mean, std = encoder_normalization(encoder)
    return Segmenter(enc, dec, heads, mean, std)
