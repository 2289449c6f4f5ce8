"""BANA stage 2 (the ``bana`` generator) on a toy image whose every number is computed by hand.

The toy: a 4 x 6 image, a stand-in stage-1 network at output stride 1 (so f's grid is the image
and no upsampling blurs the numbers), two boxes: class 1 at x 0-1, y 0-1 ("box A") and class 3
at x 3-4, y 0-2 ("box B"). Outside the boxes every feature is [1, 0], so the grid-1 background
query is q = [1, 0] and A = ReLU(cos(f, q)) is 1 there: the maximum of A over the image is 1.
Inside the boxes (row, col): f and A are

    box A  (0,0) [1,1] 0.7071   (0,1) [0,1] 0      (1,0) [-1,1] 0      (1,1) [3,1] 0.9487
    box B  (0,3) [0,2] 0        (0,4) [1,3] 0.3162 (1,3) [2,1] 0.8944  (1,4) [0,1] 0
           (2,3) [3,1] 0.9487   (2,4) [2,3] 0.5547

With bg_threshold 0.9 the code's rule keeps A >= 0.9 x 1 (the image's max): (1,1) and (2,3);
the in-box rule keeps A >= 0.9 x 0.9487 = 0.8538: (1,3) as well.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from weakseg.data.sample import Sample
from weakseg.pseudo import bana as bana_module
from weakseg.pseudo.bana import BanaGenerator
from weakseg.pseudo.base import TrainedModel

H, W = 4, 6
BOX_A = (0, 1)  # rows, cols of box A: both 0..1
BOX_B_PIXELS = [(r, c) for r in range(3) for c in (3, 4)]
R2, R5, R10 = math.sqrt(2), math.sqrt(5), math.sqrt(10)


class ToyClassifier(nn.Module):
    """Returns fixed features and score maps; ``classifier`` holds W (for Y_ret's fallback)."""

    output_stride = 1

    def __init__(self, features: torch.Tensor, scores: torch.Tensor, weights: torch.Tensor):
        super().__init__()
        self.register_buffer("f", features)
        self.register_buffer("s", scores)
        self.classifier = nn.Conv2d(features.shape[0], scores.shape[0], 1, bias=False)
        with torch.no_grad():
            self.classifier.weight.copy_(weights[:, :, None, None])

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"features": self.f[None], "cam": self.s[None]}


def toy_features() -> torch.Tensor:
    f = torch.zeros(2, H, W)
    f[0] = 1.0  # [1, 0] everywhere, then the boxes' own features
    inside = {(0, 0): [1, 1], (0, 1): [0, 1], (1, 0): [-1, 1], (1, 1): [3, 1],
              (0, 3): [0, 2], (0, 4): [1, 3], (1, 3): [2, 1], (1, 4): [0, 1],
              (2, 3): [3, 1], (2, 4): [2, 3]}  # fmt: skip
    for (r, c), v in inside.items():
        f[:, r, c] = torch.tensor(v, dtype=torch.float32)
    return f


def toy_scores() -> torch.Tensor:
    s = torch.zeros(4, H, W)  # classes 0..3
    for (r, c), v in {(0, 0): 1, (0, 1): 4, (1, 0): 2, (1, 1): -1, (3, 0): 5}.items():
        s[1, r, c] = v  # (3, 0) is outside box A: u_1 must ignore it
    for (r, c), v in {(0, 3): 2, (0, 4): 6, (1, 3): 3, (1, 4): 0.6, (2, 3): -2, (2, 4): 1,
                      (0, 0): 7}.items():  # fmt: skip
        s[3, r, c] = v  # (0, 0) is in box A, not B: u_3 must ignore it
    return s


TOY_WEIGHTS = torch.tensor([[5.0, 5.0], [-1.0, 1.0], [1.0, 1.0], [0.0, 1.0]])


@pytest.fixture
def sample() -> Sample:
    return Sample(
        image=np.zeros((H, W, 3), dtype=np.uint8),
        boxes=np.array([[0, 0, 2, 2], [3, 0, 5, 3]], dtype=np.float32),
        box_labels=np.array([1, 3]),
        image_labels=np.array([1, 3]),
        mask=None,
        id="toy",
    )


def generator(**params) -> BanaGenerator:
    model = ToyClassifier(toy_features(), toy_scores(), TOY_WEIGHTS)
    return BanaGenerator.for_model(model, bg_threshold=0.9, **params)


@pytest.fixture
def identity_crf(monkeypatch):
    """dense_crf replaced by the identity on its input, which it records."""
    seen = {}

    def crf(image, probs, params):
        seen["probs"] = probs.copy()
        return probs

    monkeypatch.setattr(bana_module, "dense_crf", crf)
    return seen


def test_unaries_u0_threshold_over_the_image_and_per_box_cams(sample):
    gen = generator()
    f, scores, stride = gen.features(sample.image)
    classes, units = gen.unaries(sample, f, scores, stride)
    assert classes.tolist() == [1, 3] and stride == 1
    a = 3 / R10  # A at (1,1) and (2,3), the only in-box cells with A >= 0.9
    u0 = [[0, 0, 1, 0, 0, 1], [0, a, 1, 0, 0, 1], [1, 1, 1, a, 0, 1], [1, 1, 1, 1, 1, 1]]
    assert units[0].flatten().tolist() == pytest.approx(sum(u0, []))
    u1 = torch.zeros(H, W)
    u1[0, 0], u1[0, 1], u1[1, 0] = 1 / 4, 1.0, 2 / 4  # CAM / 4 (box A's max); ReLU(-1) = 0
    assert torch.allclose(units[1], u1)
    u3 = torch.zeros(H, W)
    for (r, c), v in {(0, 3): 2, (0, 4): 6, (1, 3): 3, (1, 4): 0.6, (2, 4): 1}.items():
        u3[r, c] = v / 6  # box B's max is 6; (2,3) has ReLU(-2) = 0; (0,0) is not in box B
    assert torch.allclose(units[2], u3)


def test_u0_threshold_over_the_boxes_keeps_one_more_cell(sample):
    gen = generator(bg_threshold_peak="boxes")
    _, units = gen.unaries(sample, *gen.features(sample.image))
    assert units[0, 1, 3].item() == pytest.approx(2 / R5)  # A = 0.8944 >= 0.8538: kept
    assert units[0, 0, 0].item() == 0.0  # A = 0.7071: still below


def softmax(values: list[float]) -> list[float]:
    e = [math.exp(v) for v in values]
    return [v / sum(e) for v in e]


def test_crf_input_softmax_inside_the_boxes_one_hot_background_outside(sample, identity_crf):
    generator().generate_maps(sample)
    probs = identity_crf["probs"]
    assert probs.shape == (3, H, W)
    outside = np.ones((H, W), dtype=bool)
    outside[0:2, 0:2] = outside[0:3, 3:5] = False
    assert (probs[0][outside] == 1.0).all() and (probs[1:][:, outside] == 0.0).all()
    assert probs[:, 0, 0].tolist() == pytest.approx(softmax([0, 0.25, 0]))
    assert probs[:, 1, 3].tolist() == pytest.approx(softmax([0, 0, 0.5]))
    assert probs[:, 1, 1].tolist() == pytest.approx(softmax([3 / R10, 0, 0]))


def test_crf_input_softmax_everywhere_is_the_old_option(sample, identity_crf):
    generator(softmax_region="image").generate_maps(sample)
    probs = identity_crf["probs"]
    assert probs[:, 3, 5].tolist() == pytest.approx(softmax([1, 0, 0]))  # 0.576 background
    assert probs[:, 0, 0].tolist() == pytest.approx(softmax([0, 0.25, 0]))


def test_y_crf_allowed_classes_and_y_ret_as_the_code(sample, identity_crf):
    maps = generator().generate_maps(sample)
    y_crf = [[1, 1, 0, 3, 3, 0], [1, 0, 0, 3, 3, 0], [0, 0, 0, 0, 3, 0], [0] * 6]
    assert maps["labels"].tolist() == y_crf
    # prototypes: q_0 = mean of the 14 outside [1,0] and (1,1), (2,3) = [3,1]: [1.25, 0.125];
    # q_1 = mean of [1,1], [0,1], [-1,1] = [0, 1]; q_3 = mean of box B's five class-3 pixels =
    # [1, 2]. ReLU(cos), class 1 only in box A, class 3 only in box B, background 1 outside:
    #   (0,0) [1,1]: bg 0.774, c1 0.707 (c3 0.949 is outside its box) -> 0
    #   (1,0) [-1,1]: bg ReLU(-0.633) = 0, c1 0.707 -> 1;  (0,1) [0,1]: c1 1 -> 1
    #   (1,3) [2,1]: bg 0.934, c3 0.8 -> 0;  (2,3) [3,1]: bg 0.975, c3 0.707 -> 0
    #   (0,3), (0,4), (1,4), (2,4): c3 0.894 / 0.990 / 0.894 / 0.992 above bg -> 3
    y_ret = [[0, 1, 0, 3, 3, 0], [1, 0, 0, 0, 3, 0], [0, 0, 0, 0, 3, 0], [0] * 6]
    assert maps["ret"].tolist() == y_ret


def test_old_readings_threshold_inside_boxes_and_plain_retrieval(sample, identity_crf):
    maps = generator(bg_threshold_peak="boxes", retrieval="paper").generate_maps(sample)
    assert maps["labels"][1, 3] == 0  # u_0 = 0.894 kept beats u_3 = 0.5
    assert maps["ret"][0, 0] == 3  # plain arg max: class 3's 0.949, outside its box


def test_y_ret_falls_back_to_the_classifier_weight_for_an_empty_class(sample):
    gen = generator()
    f, _, _ = gen.features(sample.image)
    lut = np.array([0, 1, 3], dtype=np.uint8)
    allowed = gen.allowed_masks(sample, np.array([1, 3]))
    y_crf_index = np.zeros((H, W), dtype=np.int64)  # no pixel of class 1 or 3
    code = gen.retrieve(f, y_crf_index, lut, 1, allowed)
    # q_0 = mean of all 24 features = [25, 15] / 24; q_3 = W_3 = [0, 1]. At (0,3), f = [0, 2]:
    # cos with q_0 = 30 / (2 sqrt(850)) = 0.514, with W_3 = 1 -> class 3 (index 2)
    assert code[0, 3] == 2
    plain = BanaGenerator.for_model(gen.model(), bg_threshold=0.9, retrieval="paper")
    assert plain.retrieve(f, y_crf_index, lut, 1, allowed)[0, 3] == 0  # zero prototype: bg


def test_generator_without_a_network_or_with_the_wrong_one():
    gen = BanaGenerator(run_dir="somewhere")
    with pytest.raises(ValueError, match="no network"):
        gen.model()
    with pytest.raises(ValueError, match="bana-classifier"):
        gen.attach_model(TrainedModel(nn.Linear(1, 1), "box", "runs/box"))
    with pytest.raises(ValueError, match="softmax_region"):
        BanaGenerator(run_dir="x", softmax_region="everywhere")
