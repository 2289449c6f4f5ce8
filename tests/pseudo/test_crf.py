import numpy as np
import pytest

from tests.pseudo.scenes import SHAPES, class_iou, overlap_scene, single_scene
from weakseg.data.boxes import background_mask, class_box_masks
from weakseg.data.sample import Sample
from weakseg.pseudo.box import BoxGenerator
from weakseg.pseudo.crf import CrfBoxGenerator, CrfParams, dense_crf
from weakseg.pseudo.registry import make_generator


def _quadrant_probs(strength: float, n_labels: int = 3, h: int = 40, w: int = 50):
    labels = np.zeros((h, w), dtype=np.int64)
    labels[: h // 2, w // 2 :] = 1
    labels[h // 2 :, :] = 2
    probs = np.full((n_labels, h, w), (1 - strength) / (n_labels - 1), dtype=np.float32)
    np.put_along_axis(probs, labels[None], strength, axis=0)
    return labels, probs


def test_dense_crf_returns_normalised_probabilities_and_keeps_a_strong_argmax():
    labels, probs = _quadrant_probs(0.95)
    image = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    out = dense_crf(image, probs, CrfParams(iterations=5))
    assert out.shape == probs.shape and out.dtype == np.float32
    np.testing.assert_allclose(out.sum(0), 1.0, atol=1e-4)
    assert np.array_equal(out.argmax(0), labels)


def test_dense_crf_accepts_read_only_and_non_contiguous_images():
    _, probs = _quadrant_probs(0.9)
    image = np.zeros((40, 100, 3), dtype=np.uint8)[:, ::2]  # a strided view
    image.flags.writeable = False  # as np.asarray(PIL image) gives
    assert dense_crf(image, probs).shape == probs.shape


def test_dense_crf_rejects_mismatched_sizes_and_non_uint8_images():
    _, probs = _quadrant_probs(0.9)
    with pytest.raises(ValueError, match="differ in size"):
        dense_crf(np.zeros((10, 10, 3), np.uint8), probs)
    with pytest.raises(TypeError, match="uint8"):
        dense_crf(np.zeros((40, 50, 3), np.float32), probs)  # e.g. a mean-subtracted image


@pytest.mark.parametrize("shape", SHAPES)
def test_beats_box_on_scenes(shape):
    sample = single_scene(shape)
    box_iou = class_iou(BoxGenerator().generate(sample), sample.mask, 1)
    out = CrfBoxGenerator().generate(sample)
    assert out.dtype == np.uint8 and out.shape == sample.mask.shape
    assert class_iou(out, sample.mask, 1) >= box_iou + 0.1


def test_smaller_box_on_top_in_overlaps():
    sample = overlap_scene()
    out = CrfBoxGenerator().generate(sample)
    for c in (1, 2):
        assert class_iou(out, sample.mask, c) > 0.9
    overlap = np.zeros_like(sample.mask, dtype=bool)
    overlap[40:105, 85:110] = True
    assert (out[overlap & (sample.mask == 2)] == 2).mean() > 0.95


def test_never_labels_a_class_outside_its_boxes(monkeypatch):
    # A box cutting the object in half and a weak outside unary: the CRF alone spills the class
    # along the object's colour out of its box; the generator must not.
    sample = single_scene("ellipse")
    half = Sample(id="t", image=sample.image, boxes=[[45, 25, 80, 95], [90, 5, 150, 20]],
                  box_labels=[1, 7])  # fmt: skip
    h, w = sample.mask.shape
    outside = background_mask(half.boxes, h, w)
    gen = CrfBoxGenerator(p_outside_bg=0.4)
    out = gen.generate(half)
    assert not out[outside].any()
    masks = class_box_masks(half.boxes, half.box_labels, h, w)
    for c, inside in masks.items():
        assert not (out[~inside] == c).any()
    assert set(np.unique(out)) <= {0, 1, 7}

    monkeypatch.setattr(gen, "allowed_labels", lambda s, c: np.ones((1 + len(c), h, w)))
    assert gen.generate(half)[outside].any()  # the constraint above was needed


def test_unaries():
    sample = overlap_scene()
    gen = CrfBoxGenerator(p_box=0.6, p_center=0.9, overlap_ratio=0.5)
    probs = gen.box_probabilities(sample, np.array([1, 2]))
    assert probs.shape == (3, *sample.mask.shape)
    np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-6)
    np.testing.assert_allclose(probs[:, 2, 2], [gen.p_outside_bg, 0.005, 0.005], atol=1e-6)
    np.testing.assert_allclose(probs[:, 60, 65], [0.1, 0.9, 0.0], atol=1e-6)  # big box's centre
    np.testing.assert_allclose(probs[:, 20, 22], [0.4, 0.6, 0.0], atol=1e-6)  # big box's rim
    # Overlap, on the small box's rim: bg = 1 - 0.6; the big box's class scaled by 0.5.
    np.testing.assert_allclose(probs[:, 100, 88] * 1.3, [0.4, 0.3, 0.6], atol=1e-6)


def test_deterministic_and_empty():
    sample = overlap_scene(seed=3)
    gen = CrfBoxGenerator(iterations=3)
    assert np.array_equal(gen.generate(sample), gen.generate(sample))
    empty = Sample(id="e", image=sample.image, boxes=np.zeros((0, 4)), box_labels=[])
    assert not gen.generate(empty).any()


def test_make_generator_with_params():
    gen = make_generator("crf-box", p_box=0.6, iterations=3)
    assert isinstance(gen, CrfBoxGenerator) and gen.crf_params().iterations == 3
    with pytest.raises(ValueError, match="no parameter"):
        make_generator("crf-box", sxy=3)
