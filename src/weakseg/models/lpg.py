"""LPG generator networks and the generator file (papers/lpg.md section 3.2).

Two architectures, chosen by name (``GENERATOR_ARCHS``):

- ``hourglass``: the paper's (``weakseg.models.hourglass``), 12.1 M parameters.
- ``lite``: for CPUs. The offline ImageNet ``tf_efficientnet_lite0`` encoder runs on the image
  (frozen by default, so it needs no gradient), and the guide channels (box mask [+ the previous
  segmenter's probability]) are pooled to strides 32, 16, 8 and 4 and concatenated with the
  encoder's features there; a top-down decoder of ``width`` channels returns 2 logits at stride 4.
  The box enters at every scale, so the decoder learns where the object is from the box and what
  it looks like from the features.

Both take ``(image B x 3 x H x W RGB in [0, 1], guide B x G x H x W in [0, 1])`` and return
B x 2 x H/4 x W/4 logits (channel 1 = the object of the box's class); neither sees a class id.

A trained generator is one file (:func:`save_generator`): weights, architecture, guide channels,
how it crops at inference, and how it was trained, so it can be handed to a colleague and used
with ``weakseg labels --generator lpg generator=FILE`` on any dataset with boxes.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from weakseg.models.encoders import build_encoder, encoder_normalization
from weakseg.models.hourglass import HourglassGenerator

FILE_FORMAT = "weakseg-lpg-generator"
FILE_VERSION = 1
LITE_LEVELS = (1, 2, 3, 4)  # the encoder's levels at strides 4, 8, 16, 32


class LiteGenerator(nn.Module):
    """A CPU-sized generator: lite encoder on the image + guide concatenated at 4 scales."""

    DEFAULT_SIZE_MULTIPLE = 32

    def __init__(
        self,
        guide_channels: int = 1,
        encoder: str = "tf_efficientnet_lite0",
        width: int = 64,
        freeze: str = "all",
        weights: str = "imagenet",
    ) -> None:
        super().__init__()
        self.guide_channels = guide_channels
        self.size_multiple = self.DEFAULT_SIZE_MULTIPLE
        self.encoder = build_encoder(encoder, weights, freeze=freeze)
        mean, std = encoder_normalization(encoder)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))
        chans = [self.encoder.channels[i] for i in LITE_LEVELS]
        self.lateral = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(c + guide_channels, width, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            )  # fmt: skip
            for c in chans
        )
        self.fuse = nn.ModuleList(_conv_bn_relu(width, width) for _ in chans[:-1])
        self.head = nn.Sequential(
            _conv_bn_relu(width + guide_channels, width), nn.Conv2d(width, 2, 1)
        )

    def forward(self, image: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        features = self.encoder((image - self.mean) / self.std)
        x = None
        for level in reversed(range(len(LITE_LEVELS))):  # stride 32 -> 4
            f = features[LITE_LEVELS[level]]
            g = F.adaptive_avg_pool2d(guide, f.shape[-2:])
            lateral = self.lateral[level](torch.cat([f, g], dim=1))
            if x is None:
                x = lateral
            else:
                up = F.interpolate(x, size=f.shape[-2:], mode="bilinear", align_corners=False)
                x = self.fuse[level](up + lateral)
        g4 = F.adaptive_avg_pool2d(guide, x.shape[-2:])
        return self.head(torch.cat([x, g4], dim=1))


def _conv_bn_relu(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True)
    )


GENERATOR_ARCHS = {"hourglass": HourglassGenerator, "lite": LiteGenerator}


def build_generator_net(arch: str, guide_channels: int, **params) -> nn.Module:
    """The generator network ``arch`` (a key of ``GENERATOR_ARCHS``) for ``guide_channels``."""
    if arch not in GENERATOR_ARCHS:
        raise ValueError(f"unknown LPG arch {arch!r}; choose from {', '.join(GENERATOR_ARCHS)}")
    if guide_channels not in (1, 2):
        raise ValueError(
            f"guide_channels must be 1 (stage 1) or 2 (stages >= 2), not {guide_channels}"
        )
    return GENERATOR_ARCHS[arch](guide_channels=guide_channels, **params)


def save_generator(path: str | Path, net: nn.Module, info: dict) -> None:
    """Write a trained generator as one self-contained file (atomically).

    ``info`` must hold ``arch``, ``arch_params`` (constructor arguments), ``guide_channels`` and
    ``crop`` (inference cropping, see ``weakseg.pseudo.lpg``); anything else (how it was trained)
    is kept as provenance."""
    missing = {"arch", "arch_params", "guide_channels", "crop"} - set(info)
    if missing:
        raise ValueError(f"generator info lacks {sorted(missing)}")
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save({"format": FILE_FORMAT, "version": FILE_VERSION, **info, "state_dict": state},
                   tmp)  # fmt: skip
        os.chmod(tmp, 0o644)  # a generator file is meant to be handed on
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_generator_file(path: str | Path) -> dict:
    """The contents of a generator file; ValueError naming the file when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such LPG generator file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise ValueError(f"{path}: not a readable LPG generator file ({err})") from None
    if not isinstance(data, dict) or data.get("format") != FILE_FORMAT:
        raise ValueError(f"{path}: not an LPG generator file (made by `weakseg lpg`)")
    if data.get("version") != FILE_VERSION:
        raise ValueError(
            f"{path}: generator file version {data.get('version')}, need {FILE_VERSION}"
        )
    return data


def load_generator(path: str | Path) -> tuple[nn.Module, dict]:
    """(network in eval mode on the CPU, the file's info without the weights)."""
    data = read_generator_file(path)
    params = dict(data["arch_params"])
    if data["arch"] == "lite":
        params["weights"] = "none"  # every weight comes from the file
    net = build_generator_net(data["arch"], data["guide_channels"], **params)
    try:
        net.load_state_dict(data["state_dict"])
    except RuntimeError as err:
        raise ValueError(f"{path}: weights do not fit its architecture ({err})") from None
    info = {k: v for k, v in data.items() if k != "state_dict"}
    return net.eval(), info


__all__ = [
    "GENERATOR_ARCHS",
    "HourglassGenerator",
    "LiteGenerator",
    "build_generator_net",
    "load_generator",
    "read_generator_file",
    "save_generator",
]
