"""Decoders: encoder feature pyramid -> one feature map that the heads read.

Every decoder is built as ``Decoder(channels, strides, ...)`` from the encoder's ``channels`` and
``strides`` lists (finest first, e.g. strides [2, 4, 8, 16, 32]), takes that list of feature maps
in ``forward`` and returns one B x out_channels x H/stride x W/stride map. ``out_channels``,
``stride`` and ``in_levels`` (the indices of the maps it reads; the others may be None, which is
how cached features of a frozen encoder arrive) are attributes. ``WIDTH_ARGUMENT`` names the
argument that sets each decoder's width (256 / 1024 / 1024 / 256 by default;
``model.decoder_channels``). Inputs are assumed padded to a multiple of the encoder's largest
stride (``Segmenter`` does that), so neighbouring pyramid levels differ by exactly 2x.

- ``deeplabv3plus`` (DeepLabv3+, Chen et al. ECCV 2018): ASPP on the coarsest map, upsampled and
  fused with a 48-channel projection of the stride-4 map; output stride 4.
- ``largefov`` (DeepLab-LargeFOV, DeepLab v1, as SEC and BANA use): 3x3 conv with dilation 12
  + ReLU + dropout, 1x1 conv + ReLU + dropout (fc6/fc7) on the coarsest map; output stride = the
  encoder's output stride (8 in the paper's VGG-16; 32 or 16 here, see ``build_encoder``).
- ``cam`` (SEC's foreground cue network, supplement 6.1 and the authors' fc6_CAM / fc7_CAM,
  REFERENCE_NOTES): 3x3 conv + ReLU + dropout, 3x3 conv + dropout, NO dilation and no ReLU after
  the second: a small field of view (2 cells each side) so that class activation maps stay local.
- ``fpn`` (FPN, Kirillov et al. 2019, as in Box2Seg's UPerNet-like decoder): smp's FPN decoder
  over strides 4..32, merged at stride 4; needs a non-dilated encoder (strides 4, 8, 16, 32).

The atrous rates of ASPP and LargeFOV were chosen for the stride they run at in the papers
(ASPP rates 6/12/18 at stride 16, LargeFOV rate 12 at stride 8). By default they are rescaled to
the stride they run at here so that their field of view in input pixels stays the same, clipped
to at least 1: ASPP at stride 32 uses 3/6/9, LargeFOV at stride 32 uses 3. Pass them explicitly
to override.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from segmentation_models_pytorch.decoders.deeplabv3.decoder import ASPP, SeparableConv2d
from segmentation_models_pytorch.decoders.fpn.decoder import FPNDecoder
from torch import nn


def _rescaled_rate(rate: int, paper_stride: int, stride: int) -> int:
    """Atrous rate giving the same field of view in input pixels at ``stride`` as at the paper's."""
    return max(1, round(rate * paper_stride / stride))


def _conv_bn_relu(in_ch: int, out_ch: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class DeepLabV3PlusDecoder(nn.Module):
    """ASPP + low-level skip (DeepLabv3+). Output: B x out_channels x H/4 x W/4.

    Built from smp's ``ASPP`` and ``SeparableConv2d``; smp's own ``DeepLabV3PlusDecoder`` is not
    used because it picks the skip by list position (its encoders also return the stride-1
    input) and upsamples by a fixed factor instead of to the skip's size.

    Training needs at least 2 images per batch (per device): ASPP's image-pooling branch has a
    BatchNorm over a 1 x 1 map, as in DeepLab and smp.
    """

    def __init__(
        self,
        channels: Sequence[int],
        strides: Sequence[int],
        out_channels: int = 256,
        atrous_rates: Sequence[int] | None = None,
        skip_stride: int = 4,
        skip_channels: int = 48,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if skip_stride not in strides:
            raise ValueError(f"no stride-{skip_stride} feature among encoder strides {strides}")
        self.skip_index = list(strides).index(skip_stride)
        if atrous_rates is None:
            atrous_rates = [_rescaled_rate(r, 16, strides[-1]) for r in (6, 12, 18)]
        self.atrous_rates = tuple(atrous_rates)
        self.aspp = nn.Sequential(
            ASPP(channels[-1], out_channels, self.atrous_rates, separable=True, dropout=dropout),
            SeparableConv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )
        self.skip = _conv_bn_relu(channels[self.skip_index], skip_channels, 1)
        self.fuse = nn.Sequential(
            SeparableConv2d(out_channels + skip_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )
        self.out_channels = out_channels
        self.stride = skip_stride
        self.in_levels = (self.skip_index, len(channels) - 1)  # the maps forward reads

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        """features: encoder maps, finest first -> B x out_channels x H/4 x W/4."""
        skip = self.skip(features[self.skip_index])
        context = self.aspp(features[-1])
        context = F.interpolate(context, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([context, skip], dim=1))


class LargeFOVDecoder(nn.Module):
    """DeepLab-LargeFOV fc6/fc7 on the coarsest map. Output: B x out_channels x H/s x W/s.

    fc6 = 3x3 conv, dilation ``dilation`` (12 at stride 8 in the paper), fc7 = 1x1 conv, each
    followed by ReLU and dropout 0.5, 1024 channels, as in DeepLab v1 / SEC / BANA. The head (fc8)
    is the segmentation head.
    """

    def __init__(
        self,
        channels: Sequence[int],
        strides: Sequence[int],
        out_channels: int = 1024,
        dilation: int | None = None,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.dilation = _rescaled_rate(12, 8, strides[-1]) if dilation is None else dilation
        d = self.dilation
        self.fc6 = nn.Conv2d(channels[-1], out_channels, 3, padding=d, dilation=d)
        self.fc7 = nn.Conv2d(out_channels, out_channels, 1)
        self.drop6 = nn.Dropout(dropout)
        self.drop7 = nn.Dropout(dropout)
        self.out_channels = out_channels
        self.stride = strides[-1]
        self.in_levels = (len(channels) - 1,)

    relu7 = True  # CamDecoder: fc7 stays linear

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        """features: encoder maps, finest first -> B x out_channels x H/s x W/s (s = stride)."""
        x = self.fc7(self.drop6(F.relu(self.fc6(features[-1]))))
        return self.drop7(F.relu(x) if self.relu7 else x)


class CamDecoder(LargeFOVDecoder):
    """SEC's foreground cue network on the coarsest map (supplement 6.1: "fc6 and fc7 substituted
    with randomly initialized convolutional layers, which have 1024 output channels and kernels of
    size 3"). As the authors' fc6_CAM / fc7_CAM (REFERENCE_NOTES, SEC): no dilation, fc6 followed by
    ReLU and dropout 0.5, fc7 by dropout only, so the class activation map CAM_c = sum_k w_ck fc7_k
    read by the bias-free class layer is linear in fc7 and may be negative. Unlike ``largefov``
    (dilation 12 at stride 8), each output cell sees only its 5 x 5 neighbourhood of encoder cells.
    Output: B x out_channels x H/s x W/s.
    """

    relu7 = False

    def __init__(
        self,
        channels: Sequence[int],
        strides: Sequence[int],
        out_channels: int = 1024,
        dropout: float = 0.5,
    ) -> None:
        super().__init__(channels, strides, out_channels, dilation=1, dropout=dropout)
        self.fc7 = nn.Conv2d(out_channels, out_channels, 3, padding=1)  # 3x3, not LargeFOV's 1x1


class FPNSegDecoder(nn.Module):
    """smp's FPN decoder (strides 4..32 merged by addition at stride 4).

    Output: B x out_channels x H/4 x W/4 (out_channels = ``segmentation_channels``).
    """

    def __init__(
        self,
        channels: Sequence[int],
        strides: Sequence[int],
        pyramid_channels: int = 256,
        segmentation_channels: int = 128,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if list(strides[-4:]) != [4, 8, 16, 32]:
            raise ValueError(
                f"the fpn decoder needs encoder strides ending 4, 8, 16, 32 (output_stride=32); "
                f"got {list(strides)}"
            )
        self.fpn = FPNDecoder(
            encoder_channels=list(channels[-4:]),
            encoder_depth=3,
            pyramid_channels=pyramid_channels,
            segmentation_channels=segmentation_channels,
            dropout=dropout,
            merge_policy="add",
        )
        self.out_channels = segmentation_channels
        self.stride = 4
        self.in_levels = tuple(range(len(channels) - 4, len(channels)))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        """features: encoder maps, finest first -> B x out_channels x H/4 x W/4."""
        return self.fpn(features[-4:])


# The constructor argument that sets each decoder's width (``model.decoder_channels``).
WIDTH_ARGUMENT = {
    "deeplabv3plus": "out_channels",
    "largefov": "out_channels",
    "cam": "out_channels",
    "fpn": "pyramid_channels",
}

DECODERS: dict[str, type[nn.Module]] = {
    "deeplabv3plus": DeepLabV3PlusDecoder,
    "largefov": LargeFOVDecoder,
    "cam": CamDecoder,
    "fpn": FPNSegDecoder,
}
