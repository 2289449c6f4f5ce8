"""Tests of weakseg.models; ``randomize_`` makes random-init models give O(1..10) logits."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def randomize_(model: nn.Module, seed: int = 1) -> nn.Module:
    """Give every BatchNorm random statistics/affine and the seg head unit-scale weights.

    A freshly built model has running stats (0, 1) and a seg head initialised N(0, 0.01), so its
    logits are ~1e-3 and any numeric comparison would pass trivially; this makes them O(1..10).
    """
    g = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=g) * 0.1)
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=g) + 0.5)
            nn.init.uniform_(module.weight, 0.5, 1.5, generator=g)
            nn.init.normal_(module.bias, std=0.1, generator=g)
    seg = model.heads["seg"]
    nn.init.normal_(seg.conv.weight if hasattr(seg, "conv") else seg.weight, generator=g)
    return model
