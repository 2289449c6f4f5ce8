"""LPG's generator network (papers/lpg.md section 3.2, "Network Architectures"): an hourglass.

The architecture of the authors' code (models/hourglassnet.py, ../shared/REFERENCE_NOTES.md LPG):
a CenterNet-style hourglass of one stack and 5 levels, channels per level 96/96/128/128/128/192
with 2/2/2/2/2/4 basic residual blocks (two 3x3 conv + BN each); each lower branch starts with a
stride-2 residual (no max-pooling), the way back up is nearest x2 up-sampling, and the two
branches are merged by addition. Stem: 7x7 stride-2 conv to 48 channels, then a stride-2 residual
to 96, so the output stride is 4. After the hourglass: 3x3 conv 96->256 + BN + ReLU, then the head
3x3 conv 256->96 (+bias, ReLU) and 1x1 conv 96->2: about 12.1 M parameters (the paper's figure).
That ReLU has no BN before it; trained for a few hundred iterations it can die at most object
cells, whose margin is then the last conv's bias difference (benchmarks/RESULTS.md, "the
generator's head"). ``head_bn=True`` (ours) puts a BN between the 3x3 conv and the ReLU.

Input: the image and the guide channels of one class (its box mask, and at stages >= 2 the
previous segmenter's probability of that class), never a class id. The image is taken as RGB in
[0, 1] and, as in the code, scaled to 0..255 minus the Caffe mean, without std scaling (the code
feeds BGR; the channel order of a network trained here is its own). The guide channels are
multiplied by ``guide_scale`` (ours): 1 in the code, so the box enters at about 1/100 of the
image's magnitude; 255 puts it in the image's pixel units (measured: the loss falls faster, the
masks are no better, and the head still dies in some seeds).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# The authors' per-level channels and residual counts (5 levels: 6 entries).
LEVEL_CHANNELS = (96, 96, 128, 128, 128, 192)
LEVEL_BLOCKS = (2, 2, 2, 2, 2, 4)
CAFFE_MEAN_RGB = (122.675, 116.669, 104.008)  # the code's BGR mean (104.008, 116.669, 122.675)


class Residual(nn.Module):
    """Basic residual block: 3x3 conv (stride) + BN + ReLU, 3x3 conv + BN, skip (1x1 conv + BN
    when the shape changes), ReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.skip = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.skip(x))


def _blocks(in_ch: int, out_ch: int, count: int, stride: int = 1) -> nn.Sequential:
    """``count`` residuals in_ch -> out_ch, the first with ``stride`` (CenterNet make_hg_layer)."""
    layers = [Residual(in_ch, out_ch, stride)]
    layers += [Residual(out_ch, out_ch) for _ in range(count - 1)]
    return nn.Sequential(*layers)


def _blocks_back(in_ch: int, out_ch: int, count: int) -> nn.Sequential:
    """``count`` residuals in_ch -> out_ch, the channel change in the last (make_layer_revr)."""
    layers = [Residual(in_ch, in_ch) for _ in range(count - 1)]
    return nn.Sequential(*layers, Residual(in_ch, out_ch))


class HourglassLevel(nn.Module):
    """One level: up = blocks at this resolution; low = stride-2 blocks, the next level (or the
    bottom blocks), blocks back to this level's channels, nearest x2; out = up + low."""

    def __init__(self, channels: tuple[int, ...], blocks: tuple[int, ...]) -> None:
        super().__init__()
        here, below = channels[0], channels[1]
        self.up = _blocks(here, here, blocks[0])
        self.down = _blocks(here, below, blocks[0], stride=2)
        if len(channels) > 2:
            self.inner: nn.Module = HourglassLevel(channels[1:], blocks[1:])
        else:
            self.inner = _blocks(below, below, blocks[1])
        self.back = _blocks_back(below, here, blocks[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.back(self.inner(self.down(x)))
        return self.up(x) + F.interpolate(low, scale_factor=2.0, mode="nearest")


class HourglassGenerator(nn.Module):
    """LPG's generator g: (image, guide) -> 2 logits (rest, object of the box's class) at stride 4.

    ``guide_channels``: 1 at stage 1 (the box mask), 2 at stages >= 2 (+ the previous segmenter's
    probability of the class). Inputs must be padded to a multiple of :attr:`size_multiple`.
    """

    DEFAULT_SIZE_MULTIPLE = 4 * 2 ** (len(LEVEL_CHANNELS) - 1)  # with the default channels

    def __init__(
        self,
        guide_channels: int = 1,
        channels: tuple[int, ...] = LEVEL_CHANNELS,
        blocks: tuple[int, ...] = LEVEL_BLOCKS,
        stem_channels: int = 48,
        neck_channels: int = 256,
        guide_scale: float = 1.0,
        head_bn: bool = False,
    ) -> None:
        super().__init__()
        if len(channels) != len(blocks) or len(channels) < 2:
            raise ValueError("hourglass: need as many block counts as level channels (>= 2)")
        self.guide_channels = guide_channels
        self.guide_scale = float(guide_scale)
        self.size_multiple = 4 * 2 ** (len(channels) - 1)  # 128 for 5 levels
        self.register_buffer("mean", torch.tensor(CAFFE_MEAN_RGB).view(1, 3, 1, 1) / 255.0)
        self.stem = nn.Sequential(
            nn.Conv2d(3 + guide_channels, stem_channels, 7, 2, 3, bias=False),
            nn.BatchNorm2d(stem_channels),
            nn.ReLU(inplace=True),
            Residual(stem_channels, channels[0], stride=2),
        )
        self.hourglass = HourglassLevel(tuple(channels), tuple(blocks))
        self.neck = nn.Sequential(
            nn.Conv2d(channels[0], neck_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(neck_channels),
            nn.ReLU(inplace=True),
        )
        if head_bn:
            hidden = [nn.Conv2d(neck_channels, channels[0], 3, 1, 1, bias=False),
                      nn.BatchNorm2d(channels[0])]  # fmt: skip
        else:
            hidden = [nn.Conv2d(neck_channels, channels[0], 3, 1, 1)]
        self.head = nn.Sequential(*hidden, nn.ReLU(inplace=True), nn.Conv2d(channels[0], 2, 1))

    def forward(self, image: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        """image B x 3 x H x W RGB in [0, 1], guide B x G x H x W in [0, 1] -> B x 2 x H/4 x W/4."""
        x = torch.cat([(image - self.mean) * 255.0, guide * self.guide_scale], dim=1)
        return self.head(self.neck(self.hourglass(self.stem(x))))


__all__ = ["HourglassGenerator", "Residual"]
