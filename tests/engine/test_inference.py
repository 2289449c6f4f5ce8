"""engine/inference.py: the test-time resize of SEC's protocol (``warp``)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from weakseg.engine.inference import predict_labels, predict_probs


class RedDetector(nn.Module):
    """Logits (red, 1 - red) at every pixel; remembers the input sizes it saw."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(8.0))
        self.seen: list[tuple[int, int]] = []

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(x.shape[-2:]))
        red = x[:, :1]
        return self.scale * torch.cat([red, 1 - red], dim=1)


def red_left_image(height: int, width: int) -> np.ndarray:
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2, 0] = 255
    return image


def test_warp_feeds_the_square_and_returns_the_image_size():
    model = RedDetector()
    probs = predict_probs(model, red_left_image(30, 50), warp=64)
    assert model.seen == [(64, 64)]  # the warped square, not 30 x 50 (padded to 32 x 64)
    assert probs.shape == (2, 30, 50)
    assert np.allclose(probs.sum(0), 1.0, atol=1e-5)
    labels = predict_labels(model, red_left_image(30, 50), warp=64)
    assert (labels[:, :24] == 0).all() and (labels[:, 26:] == 1).all()


def test_warp_to_the_image_own_square_size_changes_nothing():
    model = RedDetector()
    image = red_left_image(32, 32)
    image[5:9, 20:30, 0] = 128  # a non-constant map
    assert np.allclose(predict_probs(model, image, warp=32), predict_probs(model, image), atol=1e-6)
