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

from weakseg.models.decoders import DECODERS, WIDTH_ARGUMENT
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
        self,
        images: torch.Tensor | None,
        heads: Sequence[str] | None = None,
        features: dict[int, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """B x 3 x H x W RGB in [0, 1] -> {head name: B x C_head x h x w}, h = ceil(H / stride).

        ``heads`` picks which heads to run (default all); e.g. {"seg": B x (L+1) x h x w}.
        ``features`` replaces the frozen part of the encoder: {level: map} as
        :meth:`frozen_features` returns them for a padded image (then ``images`` is not read).
        """
        if features is None:
            height, width = images.shape[-2:]
            x = self._pad((images - self.mean) / self.std)
            decoded = self.decoder(self.encoder(x))
            s = self.output_stride
            decoded = decoded[..., : (height + s - 1) // s, : (width + s - 1) // s]
        else:
            decoded = self.decoder(self.complete_features(features))
        names = list(self.heads) if heads is None else heads
        return {name: self.heads[name](decoded) for name in names}

    def cached_levels(self) -> tuple[int, ...]:
        """The frozen encoder levels a feature cache must hold: those the decoder reads and the
        last frozen one (the input of the trainable levels, if any)."""
        frozen = self.encoder.frozen_levels
        if frozen == 0:
            raise ValueError("a feature cache needs a frozen encoder (model.freeze)")
        needed = {lvl for lvl in self.decoder.in_levels if lvl < frozen}
        if frozen < len(self.encoder.channels):
            needed.add(frozen - 1)
        return tuple(sorted(needed))

    @torch.no_grad()
    def frozen_features(self, images: torch.Tensor) -> dict[int, torch.Tensor]:
        """B x 3 x H x W RGB in [0, 1], H and W multiples of ``size_divisor`` -> the frozen
        encoder's maps at :meth:`cached_levels`, {level: B x C x H/s x W/s}."""
        if images.shape[-2] % self.size_divisor or images.shape[-1] % self.size_divisor:
            raise ValueError(f"cached crops must be multiples of {self.size_divisor} pixels")
        x, encoder = (images - self.mean) / self.std, self.encoder
        if encoder.frozen_levels < len(encoder.channels):
            maps = encoder.forward_levels(x, 0, encoder.frozen_levels)
        else:
            maps = list(encoder.body(x))
        return {lvl: maps[lvl] for lvl in self.cached_levels()}

    def complete_features(self, cached: dict[int, torch.Tensor]) -> list[torch.Tensor | None]:
        """The encoder's pyramid from cached frozen maps: the trainable levels are computed from
        the last frozen one; levels neither cached nor computed are None (no decoder reads them)."""
        encoder, frozen = self.encoder, self.encoder.frozen_levels
        pyramid: list[torch.Tensor | None] = [cached.get(i) for i in range(frozen)]
        if frozen < len(encoder.channels):
            pyramid += encoder.forward_levels(cached[frozen - 1], frozen, len(encoder.channels))
        return pyramid

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
    freeze: str = "none",
    decoder_channels: int = 0,
) -> Segmenter:
    """Assemble a Segmenter from names.

    Args:
        encoder: timm name; offline ImageNet weights exist for ``offline_encoder_names()``.
        decoder: a key of ``DECODERS`` ("deeplabv3plus", "largefov", "cam", "fpn").
        num_classes: L + 1 (background included), 21 for VOC.
        weights: "imagenet" or "none" (random init), for the encoder only.
        extra_heads: {name: factory(decoder_channels) -> nn.Module}, e.g. Box2Seg's attention
            and embedding heads; "seg" is always built here.
        seg_head: a key of ``HEADS``: "conv" (1x1 conv) or "cosine" (BANA's cosine classifier).
        output_stride: encoder output stride, 32 or 16/8 (dilated; not for "fpn").
        freeze: "none" | "all" | "strideN": the frozen part of the encoder (``build_encoder``).
        decoder_channels: the decoder's width (0 = its default; ``WIDTH_ARGUMENT``).
    """
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder {decoder!r}; choose from {', '.join(DECODERS)}")
    if seg_head not in HEADS:
        raise ValueError(f"unknown seg_head {seg_head!r}; choose from {', '.join(HEADS)}")
    enc = build_encoder(encoder, weights=weights, output_stride=output_stride, freeze=freeze)
    width = {WIDTH_ARGUMENT[decoder]: decoder_channels} if decoder_channels else {}
    dec = DECODERS[decoder](enc.channels, enc.strides, **width)
    heads = {"seg": HEADS[seg_head](dec.out_channels, num_classes)}
    for name, factory in (extra_heads or {}).items():
        if name == "seg":
            raise ValueError("extra_heads may not replace 'seg'; use seg_head")
        heads[name] = factory(dec.out_channels)
    mean, std = encoder_normalization(encoder)
    return Segmenter(enc, dec, heads, mean, std)
