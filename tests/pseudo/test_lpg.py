"""LPG's multi-class composition (supplement Eq. 7, overlap rate) by hand, and the generator's
class-agnosticism: it takes no class id, and relabelling the classes relabels its output."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from weakseg.data.sample import Sample
from weakseg.models.lpg import HourglassGenerator, LiteGenerator, build_generator_net
from weakseg.pseudo.lpg import LpgGenerator, compose_classes, square_region


def _rect(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def test_overlap_goes_to_the_higher_overlap_rate_not_the_first_class():
    # class 2: 4 x 5 = 20 px, class 7: 2 x 3 = 6 px; they share 2 x 2 = 4 px (rows 2-3, cols 3-4).
    # rate(2) = 4 / 20 = 0.2, rate(7) = 4 / 6 = 0.67: class 7 wins although 2 comes first.
    a, b = _rect(6, 8, 0, 4, 0, 5), _rect(6, 8, 2, 4, 3, 6)
    labels = compose_classes({2: a, 7: b}, 6, 8)
    assert (labels[2:4, 3:5] == 7).all()
    assert (labels[a & ~b] == 2).all() and (labels[b & ~a] == 7).all()
    assert (labels[~a & ~b] == 0).all()
    # The same shapes with the class ids swapped: the small one (now class 2) still wins, so
    # neither "first class wins" nor "last class wins" passes both.
    swapped = compose_classes({7: a, 2: b}, 6, 8)
    assert (swapped[2:4, 3:5] == 2).all()


def test_three_classes_each_overlap_measured_against_the_others():
    # A: rows 0-4, cols 0-4 (16 px); B: rows 0-2, cols 2-6 (8 px); C: row 1, cols 3-8 (5 px).
    # Pixel (1, 3) is claimed by A, B and C. rate_A = |A & (B | C)| / 16 = 4 / 16 (B's 2x2 with A
    # plus C's (1,3) already counted) = 0.25; rate_B = |B & (A | C)| / 8 = (4 + 2) / 8 = 0.75
    # (A's 2x2, C's (1,4),(1,5)); rate_C = |C & (A | B)| / 5 = 3 / 5 = 0.6 -> B.
    a, b, c = _rect(5, 9, 0, 4, 0, 4), _rect(5, 9, 0, 2, 2, 6), _rect(5, 9, 1, 2, 3, 8)
    labels = compose_classes({1: a, 2: b, 3: c}, 5, 9)
    assert labels[1, 3] == 2
    # (1, 4), (1, 5): B and C only: rate_B = |B & C| / 8 = 3 / 8 (B & C is (1, 3..5)),
    # rate_C = 3 / 5 -> C.
    assert labels[1, 4] == 3 and labels[1, 5] == 3
    # (0, 2): A and B: rate_A = 4 / 16, rate_B = 4 / 8 -> B.  (2, 0): A alone.  (1, 7): C alone.
    assert labels[0, 2] == 2 and labels[2, 0] == 1 and labels[1, 7] == 3 and labels[4, 8] == 0


def test_no_classes_is_all_background():
    assert (compose_classes({}, 3, 4) == 0).all()


def test_square_region_is_centred_and_widened():
    assert square_region(np.array([10, 20, 30, 30]), 0.5) == (0.0, 5.0, 40.0)


@pytest.mark.parametrize("net_cls", [HourglassGenerator, LiteGenerator])
def test_forward_takes_no_class_argument(net_cls):
    assert list(inspect.signature(net_cls.forward).parameters) == ["self", "image", "guide"]


def test_hourglass_has_the_papers_size_and_stride():
    net = build_generator_net("hourglass", 1)
    assert abs(sum(p.numel() for p in net.parameters()) / 1e6 - 12.1) < 0.05
    out = net.eval()(torch.rand(2, 3, 128, 256), torch.rand(2, 1, 128, 256))
    assert out.shape == (2, 2, 32, 64)
    assert build_generator_net("hourglass", 2).stem[0].in_channels == 5  # image + box + p_c


def test_hourglass_guide_scale_multiplies_the_guide_only():
    """guide_scale=255 with a box of 1s is the scale-1 network fed a box of 255s; the image is
    untouched (a scale applied to the image too, or not at all, gives other logits)."""
    torch.manual_seed(0)
    scaled = HourglassGenerator(guide_scale=255.0).eval()
    plain = HourglassGenerator().eval()
    plain.load_state_dict(scaled.state_dict())
    image = torch.rand(2, 3, 128, 128)
    box = torch.zeros(2, 1, 128, 128)
    box[0, :, 20:90, 30:100], box[1, :, 60:120, 0:50] = 1.0, 1.0
    with torch.no_grad():
        out = scaled(image, box)
        assert torch.allclose(out, plain(image, box * 255.0), atol=1e-4)
        assert not torch.allclose(out, plain(image, box), atol=1e-2)


def test_generator_file_keeps_the_guide_scale_and_the_head_bn(tmp_path):
    from weakseg.models.lpg import load_generator, save_generator

    params = {"guide_scale": 255.0, "head_bn": True}
    net = build_generator_net("hourglass", 1, **params)
    assert isinstance(net.head[1], torch.nn.BatchNorm2d) and net.head[0].bias is None
    save_generator(tmp_path / "g.pt", net, {"arch": "hourglass", "arch_params": params,
                   "guide_channels": 1, "crop": "boxes", "crop_size": 128})  # fmt: skip
    loaded = load_generator(tmp_path / "g.pt")[0]
    assert loaded.guide_scale == 255.0 and isinstance(loaded.head[1], torch.nn.BatchNorm2d)


def test_lite_generator_output_stride_4():
    net = build_generator_net("lite", 2, width=16, weights="none").eval()
    assert net(torch.rand(1, 3, 96, 64), torch.rand(1, 2, 96, 64)).shape == (1, 2, 24, 16)


def _toy_sample(labels):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)
    boxes = np.array([[4, 4, 40, 40], [30, 20, 76, 60], [10, 30, 30, 62]], dtype=np.float32)
    return Sample("toy", image, boxes, np.asarray(labels))


def test_relabelling_the_classes_relabels_the_masks():
    """g is class-agnostic: classes 1, 2, 3 renamed 5, 3, 4 (ids it never saw, another order)
    give the same masks under the new names; only the overlap tie-breaks could differ."""
    torch.manual_seed(0)
    net = build_generator_net("lite", 1, width=16, weights="none")
    info = {"arch": "lite", "guide_channels": 1, "crop": "boxes", "crop_size": 64, "context": 0.5}
    gen = LpgGenerator.for_network(net, info)
    first = gen.generate(_toy_sample([1, 2, 3]))
    second = gen.generate(_toy_sample([5, 3, 4]))
    assert set(np.unique(first)) - {0}, "the random generator marked no object at all"
    lut = np.array([0, 5, 3, 4], dtype=np.uint8)
    assert (second == lut[first]).mean() > 0.99


def test_labels_stay_inside_their_boxes():
    torch.manual_seed(1)
    net = build_generator_net("lite", 1, width=16, weights="none")
    info = {"arch": "lite", "guide_channels": 1, "crop": "image", "crop_size": 64}
    labels = LpgGenerator.for_network(net, info).generate(_toy_sample([1, 2, 1]))
    inside1 = np.zeros((64, 80), bool)
    inside1[4:40, 4:40] = inside1[30:62, 10:30] = True
    assert not (labels == 1)[~inside1].any()
    assert not (labels == 2)[~np.pad(np.ones((40, 46), bool), ((20, 4), (30, 4)))].any()


def test_stage_two_generator_needs_the_segmenter():
    net = build_generator_net("lite", 2, width=16, weights="none")
    info = {"arch": "lite", "guide_channels": 2, "crop": "boxes", "crop_size": 64, "stage": 2}
    gen = LpgGenerator.for_network(net, info)
    assert gen.needs_model
    with pytest.raises(ValueError, match="run_dir=RUN"):
        gen.generate(_toy_sample([1, 2, 3]))


def test_missing_generator_parameter_is_a_clear_error():
    with pytest.raises(ValueError, match="generator=FILE"):
        LpgGenerator()


def test_the_lite_generator_file_keeps_its_encoder(tmp_path):
    from weakseg.methods.lpg import LpgSettings, generator_info
    from weakseg.models.lpg import load_generator, save_generator

    info = generator_info(LpgSettings(aux="x", encoder="tf_efficientnet_lite1", width=16), 1, 1)
    assert info["arch_params"]["encoder"] == "tf_efficientnet_lite1"
    net = build_generator_net("lite", 1, **info["arch_params"], weights="none")
    save_generator(tmp_path / "g.pt", net, info)
    loaded, _ = load_generator(tmp_path / "g.pt")
    lite0 = build_generator_net("lite", 1, width=16, weights="none")  # the default encoder

    def size(m):
        return sum(p.numel() for p in m.encoder.parameters())

    assert size(loaded) == size(net) != size(lite0)  # lite1 is lite0 with more blocks


def test_crf_unaries_are_g_probabilities_inside_the_boxes(monkeypatch):
    """crf=true: q_c = sigmoid(margin_c) * box_c, q_bg = prod_c (1 - q_c), by hand; where two
    objects overlap only the overlap-rate winner stays a candidate. The CRF is replaced by the
    identity so its input is the output."""
    seen = {}

    def identity(image, probs, params):
        seen["probs"] = probs
        return probs.copy()

    monkeypatch.setattr("weakseg.pseudo.lpg.dense_crf", identity)
    l3, l9 = np.log(3.0), np.log(9.0)  # sigmoid: 0.75, 0.9
    box3, box5 = _rect(2, 4, 0, 2, 0, 2), _rect(2, 4, 0, 2, 1, 4)  # columns 0-1 and 1-3
    m3 = np.array([[l3, l3, 5.0, -5.0], [-l3, l3, 5.0, -5.0]], dtype=np.float32)
    m5 = np.array([[l9, l9, l3, l3], [l9, l9, l3, l3]], dtype=np.float32)
    # objects (margin > 0 inside the box): class 3 = 3 px, class 5 = 6 px, sharing column 1;
    # overlap rates 2/3 for class 3, 2/6 for class 5: column 1 is class 3's although p_5 > p_3
    gen = LpgGenerator(generator="unused.pt", crf=True)
    image = np.zeros((2, 4, 3), dtype=np.uint8)
    labels = gen.crf_labels(image, {3: m3, 5: m5}, {3: box3, 5: box5})
    probs = seen["probs"]
    np.testing.assert_allclose(probs[:, 0, 0], [0.25, 0.75, 0.0], atol=1e-6)  # 0.9 off its box
    np.testing.assert_allclose(probs[:, 1, 0], [0.75, 0.25, 0.0], atol=1e-6)
    np.testing.assert_allclose(probs[:, 0, 1], [0.25, 0.75, 0.0], atol=1e-6)  # 5 lost: q_5 = 0
    np.testing.assert_allclose(probs[:, 0, 2], [0.25, 0.0, 0.75], atol=1e-6)  # 3 off its box
    assert labels.tolist() == [[3, 3, 5, 5], [0, 3, 5, 5]]


def test_crf_moves_the_boundary_to_the_colour_edge():
    """g's object (margin > 0) runs 8 px past a black/white edge at column 32; thresholding keeps
    those 8 white columns, the dense CRF gives them to the background like the white rest."""
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    image[:, 32:] = 255
    margin = np.where(np.arange(64) < 40, 1.0, -1.0).astype(np.float32)[None].repeat(64, 0)
    box = np.ones((64, 64), dtype=bool)
    gen = LpgGenerator(generator="unused.pt", crf=True)
    labels = gen.crf_labels(image, {4: margin}, {4: box})
    assert (labels[:, :32] == 4).mean() > 0.95
    assert (labels[:, 32:40] == 0).mean() > 0.95
