"""Label uncertainty as a training method: a 2-iteration smoke run of every variant on synthetic
data, the regions and reductions of its terms, the gradient split through the method, and a long
21-class run with extreme values that must stay finite."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.methods.base import REPO, MethodTest
from weakseg.config import load_config
from weakseg.losses import uncertainty as U
from weakseg.methods import build_method
from weakseg.models.heads import UncertaintyHead

BINARY = ("data.train=binary:ellipse:synthetic:4",)


class TestMultiClassBootstrap(MethodTest):
    """Eq. 14-16 with the gradient split (6 synthetic classes)."""

    config = "uncertainty_synthetic.yaml"
    method = "uncertainty"
    terms = ("plain", "uncertainty", "bootstrap")


class TestMultiClassNoBootstrap(MethodTest):
    config = "uncertainty_synthetic.yaml"
    overrides = ("method.bootstrap=false",)
    method = "uncertainty"
    terms = ("plain", "uncertainty")


class TestBinaryBceBootstrap(MethodTest):
    """Eq. 8-11 on one class against the background."""

    config = "uncertainty_synthetic.yaml"
    overrides = (*BINARY, "method.labelled_fraction=0.5")
    method = "uncertainty"
    terms = ("plain", "uncertainty", "bootstrap")


class TestBinaryBceNoBootstrap(MethodTest):
    config = "uncertainty_synthetic.yaml"
    overrides = (*BINARY, "method.bootstrap=false", "method.region=all")
    method = "uncertainty"
    terms = ("plain", "uncertainty")


class TestBinaryRegression(MethodTest):
    """Eq. 2-3."""

    config = "uncertainty_synthetic.yaml"
    overrides = (*BINARY, "method.loss=l2", "method.bootstrap=false")
    method = "uncertainty"
    terms = ("plain", "uncertainty")


class TestCrossEntropyBaseline(MethodTest):
    """CE on PP masks + BB boxes as masks (and, with pp_chance 1, on PP only)."""

    config = "uncertainty_synthetic.yaml"
    overrides = ("method.loss=ce", "method.pp_chance=1.0")
    method = "uncertainty"
    terms = ("ce",)


def make_batch(target, labelled):
    return {"target": torch.tensor(target), "labelled": torch.tensor(labelled)}


def test_binary_terms_regions_and_reduction():
    """Two images of 1 x 3 pixels at the output size. Image 0 is PP (plain everywhere), image 1
    BB with a box on its first two pixels (uncertainty there, plain on the third); pixel 2 of
    image 0 is ignored. Every term is a sum over its pixels divided by the 5 valid pixels."""
    method = build_method("uncertainty", {"labelled_fraction": 0.2})
    batch = make_batch([[[1, 0, 255]], [[1, 1, 0]]], [True, False])
    seg = torch.zeros(2, 2, 1, 3)
    seg[:, 1] = torch.tensor([[[2.0, -1.0, 5.0]], [[0.5, -3.0, 1.0]]])  # mu = seg_1 - seg_0
    sigma = torch.tensor([[[[1.0, 1.0, 1.0]]], [[[0.5, 2.0, 1.0]]]])
    terms = method.losses(batch, {"seg": seg, "sigma": sigma})
    bce = F.binary_cross_entropy_with_logits
    plain = bce(torch.tensor([2.0, -1.0, 1.0]), torch.tensor([1.0, 0.0, 0.0]), reduction="sum")
    mu_b, s_b, y_b = torch.tensor([0.5, -3.0]), torch.tensor([0.5, 2.0]), torch.ones(2)
    assert torch.allclose(terms["plain"], plain / 5)
    assert torch.allclose(terms["uncertainty"], U.bce_with_uncertainty(mu_b, s_b, y_b).sum() / 5)
    assert torch.allclose(terms["bootstrap"], U.bootstrap_loss(mu_b, s_b, y_b).sum() / 5)
    # by hand, plain: log(1 + e^-2) + log(1 + e^-1) + log(1 + e^1) = 0.126928 + 0.313262 +
    # 1.313262 = 1.753452, over 5 pixels = 0.350690
    assert torch.allclose(terms["plain"], torch.tensor(0.350690), atol=1e-5)


def test_region_all_puts_bb_background_under_uncertainty():
    method = build_method("uncertainty", {"labelled_fraction": 0.2, "region": "all"})
    target = torch.tensor([[[1, 0, 255]], [[1, 1, 0]]])
    uncertain = method.uncertain_pixels(torch.tensor([True, False]), target)
    assert uncertain.tolist() == [[[False, False, False]], [[True, True, True]]]
    boxed = build_method("uncertainty", {"labelled_fraction": 0.2})
    assert boxed.uncertain_pixels(torch.tensor([True, False]), target).tolist() == [
        [[False, False, False]], [[True, True, False]]
    ]  # fmt: skip


def test_multiclass_terms_use_flipped_targets():
    """One BB image, three pixels, C = 3; pixel 0 is background (plain CE), pixels 1-2 inside a
    class-1 box. Pixel 2's class-2 variance 4 > 2.5 flips its target to argmax mu = 2."""
    method = build_method("uncertainty", {"labelled_fraction": 0.2})
    batch = make_batch([[[0, 1, 1]]], [False])
    mu = torch.tensor([[[[3.0, 0.0, 0.0]], [[0.0, 2.0, 0.0]], [[0.0, 0.0, 1.0]]]])
    sigma = torch.tensor([[[[1.0, 1.0, 1.0]], [[1.0, 0.5, 1.0]], [[1.0, 1.0, 2.0]]]])
    torch.manual_seed(0)
    terms = method.losses(batch, {"seg": mu, "sigma": sigma})
    ce = F.cross_entropy(mu[0].permute(1, 2, 0)[0], torch.tensor([0, 1, 2]), reduction="none")
    assert torch.allclose(terms["plain"], ce[0] / 3)
    assert torch.allclose(terms["bootstrap"], (ce[1] + ce[2]) / 3)
    # by hand: CE at pixel 2 with target 2 and logits (0, 0, 1): log(2 + e) - 1 = 0.551445
    assert torch.allclose(ce[2], torch.tensor(0.551445), atol=1e-5)


def test_warmup_trains_mu_on_the_box_labels_and_leaves_sigma_alone():
    """The example above with warmup 0.5: before half the run, pixel 2 keeps its box target 1
    despite var 4 > tau and sigma gets no gradient; from half the run on, Eq. 16 flips it."""
    method = build_method("uncertainty", {"labelled_fraction": 0.2, "warmup": 0.5})
    batch = make_batch([[[0, 1, 1]]], [False])
    mu = torch.tensor([[[[3.0, 0.0, 0.0]], [[0.0, 2.0, 0.0]], [[0.0, 0.0, 1.0]]]])
    sigma = torch.tensor([[[[1.0, 1.0, 1.0]], [[1.0, 0.5, 1.0]], [[1.0, 1.0, 2.0]]]])
    sigma.requires_grad_()
    logits = mu[0].permute(1, 2, 0)[0]
    method.set_progress(599, 1200)
    terms = method.losses(batch, {"seg": mu, "sigma": sigma})
    ce_box = F.cross_entropy(logits, torch.tensor([0, 1, 1]), reduction="none")
    assert torch.allclose(terms["bootstrap"], (ce_box[1] + ce_box[2]) / 3)
    # by hand, pixel 2 with target 1 and logits (0, 0, 1): log(2 + e) - 0 = 1.551445
    assert torch.allclose(ce_box[2], torch.tensor(1.551445), atol=1e-5)
    sum(terms.values()).backward()
    assert not sigma.grad.any()
    method.set_progress(600, 1200)
    terms = method.losses(batch, {"seg": mu, "sigma": sigma})
    ce_flip = F.cross_entropy(logits, torch.tensor([0, 1, 2]), reduction="none")
    assert torch.allclose(terms["bootstrap"], (ce_flip[1] + ce_flip[2]) / 3)
    assert terms["uncertainty"] > 0
    # binary: W = 1 in the warm-up, BCE(mu, y) on the box pixels
    binary = build_method("uncertainty", {"labelled_fraction": 0.2, "warmup": 0.5})
    batch = make_batch([[[1, 1, 0]]], [False])
    seg = torch.zeros(1, 2, 1, 3)
    seg[:, 1] = torch.tensor([[[0.5, -3.0, 1.0]]])
    huge = torch.full((1, 1, 1, 3), 10.0)  # var 100 >> tau: W ~ 0 after the warm-up
    terms = binary.losses(batch, {"seg": seg, "sigma": huge})
    bce = F.binary_cross_entropy_with_logits(
        torch.tensor([0.5, -3.0]), torch.ones(2), reduction="sum"
    )
    assert torch.allclose(terms["bootstrap"], bce / 3)
    with pytest.raises(ValueError, match="warmup"):
        build_method("uncertainty", {"labelled_fraction": 0.2, "warmup": 0.5, "bootstrap": False})


def test_method_gradient_split():
    """Through the method: "uncertainty" sends no gradient to mu (the "seg" output), "bootstrap"
    none to sigma."""
    method = build_method("uncertainty", {"labelled_fraction": 0.2})
    batch = make_batch([[[0, 1, 1, 2]], [[2, 2, 0, 1]]], [False, False])
    g = torch.Generator().manual_seed(0)
    for channels in (3, 2):  # multi-class, binary
        seg = torch.randn(2, channels, 1, 4, generator=g).requires_grad_()
        sigma = torch.rand(2, 1 if channels == 2 else channels, 1, 4, generator=g) + 0.5
        sigma.requires_grad_()
        target = batch["target"].clamp(max=channels - 1)
        terms = method.losses({**batch, "target": target}, {"seg": seg, "sigma": sigma})
        terms["uncertainty"].backward(retain_graph=True)
        assert seg.grad is None and sigma.grad.abs().sum() > 0
        sigma.grad = None
        terms["bootstrap"].backward()
        assert seg.grad.abs().sum() > 0 and (sigma.grad is None or not sigma.grad.any())


def test_binary_losses_refuse_multiclass_data():
    method = build_method("uncertainty", {"labelled_fraction": 0.2, "loss": "bce"})
    with pytest.raises(ValueError, match="binary"):
        method.resolved_loss(21)
    with pytest.raises(ValueError, match="exactly one"):
        build_method("uncertainty", {})


def test_long_21_class_run_with_extreme_logits_stays_finite():
    """500 Adam steps at lr 1 on free mu / sigma parameters, 21 classes, starting from logits of
    size 1e3 and sigma up to 1e3, half the pixels in boxes of BB images: every term and gradient
    stays finite and sigma stays above its floor (the paper's instability beyond 3 classes)."""
    g = torch.Generator().manual_seed(0)
    method = build_method("uncertainty", {"labelled_fraction": 0.2})
    head = UncertaintyHead(8, 21)
    mu = (torch.randn(4, 21, 12, 12, generator=g) * 1e3).requires_grad_()
    raw = (torch.randn(4, 21, 12, 12, generator=g) * 1e3).requires_grad_()
    optimizer = torch.optim.Adam([mu, raw], lr=1.0)
    target = torch.randint(0, 21, (4, 12, 12), generator=g)
    target[:, :, :6] = 0  # outside the boxes
    target[:, 0] = 255
    batch = {"target": target, "labelled": torch.tensor([True, False, False, False])}
    start, flipped = time.perf_counter(), 0
    for _ in range(500):
        sigma = F.softplus(raw) + head.min_sigma  # UncertaintyHead's parametrisation
        terms = method.losses(batch, {"seg": mu, "sigma": sigma})
        loss = sum(terms.values())
        optimizer.zero_grad()
        loss.backward()
        assert all(torch.isfinite(v) for v in terms.values()), terms
        assert torch.isfinite(mu.grad).all() and torch.isfinite(raw.grad).all()
        assert sigma.min() >= head.min_sigma
        flipped += int((sigma.square().amax(1) > method.tau).sum())
        optimizer.step()
    assert flipped > 0  # the flip rule was exercised, not only the plain path
    assert time.perf_counter() - start < 30


def test_voc_configs_build(tmp_path):
    """Every label-uncertainty config loads, its method builds, and its heads fit its task."""
    configs = sorted((REPO / "configs").glob("voc_uncertainty*_cpu.yaml"))
    assert len(configs) >= 10
    for path in configs:
        cfg = load_config(path, ["model.weights=none"])
        method = build_method(cfg.train.method, cfg.method)
        binary = cfg.data.train.startswith("binary:")
        classes = 2 if binary else 21
        if cfg.train.method == "uncertainty":
            loss = method.resolved_loss(classes)
            assert loss in (("bce", "l2", "ce") if binary else ("mc", "ce")), path.name
        assert method.label_source in ("mixed", "semi", "gt"), path.name


@pytest.mark.parametrize("binary", [False, True])
def test_report_draws_uncertainty_and_flip_maps(tmp_path, binary):
    from tests.methods.base import single_torch_thread, tiny_config
    from weakseg.cli import main
    from weakseg.engine.loop import train

    extra = BINARY if binary else ()
    cfg = tiny_config("uncertainty_synthetic.yaml", tmp_path, *extra, "train.snapshot_every=1")
    spec = "binary:ellipse:synthetic:2:5" if binary else "synthetic:2:5"
    with single_torch_thread():
        train(cfg, tmp_path / "run")
        code = main(["report", "--run-dir", str(tmp_path / "run"), "--dataset", spec,
                     "--device", "cpu", "--snapshot", "1"])  # fmt: skip
    assert code == 0
    out = tmp_path / "run" / "report-1"
    assert len(sorted(out.glob("*.png"))) == 2
    assert "flipped" in (out / "index.html").read_text()


def test_bootstrapped_target_flips_only_uncertain_box_pixels():
    from weakseg.viz.uncertainty import bootstrapped_target

    target = np.array([[0, 1, 1, 2, 255]])
    prediction = np.array([[3, 0, 2, 2, 1]])
    variance = np.array([[9.0, 3.0, 1.0, 3.0, 9.0]])
    # pixel 0 background and pixel 4 ignore: kept; 1: var 3 > 2.5 -> prediction 0; 2: var 1 kept;
    # 3: var 3 -> prediction 2 (= the target: no change)
    out = bootstrapped_target(target, prediction, variance, 2.5, binary=False)
    assert out.tolist() == [[0, 0, 1, 2, 255]]
    binary = bootstrapped_target(
        np.array([[0, 1, 1]]), None, np.array([[9.0, 3.0, 1.0]]), 2.5, True
    )
    assert binary.tolist() == [[0, 0, 1]]


def test_trains_on_the_feature_cache_of_a_frozen_encoder(tmp_path):
    """The CPU protocol: frozen encoder, cached views, losses at the decoder's stride."""
    from tests.methods.base import single_torch_thread, tiny_config
    from weakseg.engine.loop import train

    cfg = tiny_config("uncertainty_synthetic.yaml", tmp_path, "model.freeze=all",
                      "data.cache_views=1", "train.loss_stride=4",
                      f"data.cache_dir={tmp_path / 'cache'}")  # fmt: skip
    with single_torch_thread():
        summary = train(cfg, tmp_path / "run")
    assert "feature_cache" in summary
    assert all(f"loss/{t}" in summary["last"] for t in ("plain", "uncertainty", "bootstrap"))


def test_labelled_ids_file_marks_the_pp_images(tmp_path):
    """The user-facing format: a file of ids with masks; the rest train on their boxes."""
    from tests.methods.base import tiny_config
    from weakseg.data.boxes import box_label_map
    from weakseg.engine.loop import build_training_dataset

    ids = tmp_path / "with_masks.txt"
    ids.write_text("# checked by hand\n000001\n000003\n")
    cfg = tiny_config("uncertainty_synthetic.yaml", tmp_path, "method.labelled_fraction=0",
                      f"method.labelled_ids={ids}")  # fmt: skip
    method = build_method(cfg.train.method, cfg.method)
    data = build_training_dataset(cfg, method)
    assert data.labelled == {"000001", "000003"}
    for sample in data.dataset:
        boxes = box_label_map(sample.boxes, sample.box_labels, sample.height, sample.width)
        expected = sample.mask if sample.id in data.labelled else boxes
        assert np.array_equal(data.target(sample, sample.boxes, sample.box_labels), expected)
