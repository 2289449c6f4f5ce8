"""Label-uncertainty losses (papers/label-uncertainty.md) against hand computations, the probit
approximation against Monte-Carlo integration, the gradient split of section 3.3, and stability
with 21 classes and extreme logits (the paper's reported failure beyond 3 classes)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from weakseg.losses import uncertainty as U


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


def test_regression_nll_eq2_by_hand():
    # Two images, two pixels each. (y - mu)^2 / (2 var) + 1/2 log var:
    # (1 - 0.5)^2 / 2 + log 1 = 0.125;  (0 + 1)^2 / 8 + log 2 = 0.125 + 0.693147 = 0.818147
    # (1 - 1)^2 / (2 * 0.25) + log 0.5 = -0.693147;  (0 - 3)^2 / 2 + log 1 = 4.5
    mu, sigma, y = t([[0.5, -1.0], [1.0, 3.0]]), t([[1.0, 2.0], [0.5, 1.0]]), t([[1, 0], [1, 0]])
    expected = t([[0.125, 0.818147], [-0.693147, 4.5]])
    assert torch.allclose(U.regression_nll(mu, sigma, y), expected, atol=1e-5)


def test_mixed_regression_loss_eq3_by_hand():
    # Eq. 3's example: a PP pixel with y = 0 (plain L2) and a BB pixel with y = 1 (Eq. 2), mu 0.3:
    # 0.3^2 = 0.09;  (1 - 0.3)^2 / (2 * 0.25) + log 0.5 = 0.98 - 0.693147 = 0.286853
    mu, sigma = t([0.3, 0.3]), t([0.5, 0.5])
    out = U.mixed_regression_loss(mu, sigma, t([0.0, 1.0]), torch.tensor([False, True]))
    assert torch.allclose(out, t([0.09, 0.286853]), atol=1e-5)


def test_probit_and_bce_with_uncertainty_eq8_eq9_by_hand():
    # mu 2, var 1: 2 / sqrt(1 + pi / 8) = 1.694733, E[p] = sigmoid(.) = 0.844846, y = 1:
    # -log E[p] = log(1 + e^-1.694733) = 0.168601.
    # mu -1, var 4: -1 / sqrt(1 + pi / 2) = -0.623686, y = 0: -log(1 - E[p]) = 0.429159.
    mu, sigma, y = t([2.0, -1.0]), t([1.0, 2.0]), t([1.0, 0.0])
    assert torch.allclose(U.probit_logit(mu, sigma), t([1.694733, -0.623686]), atol=1e-5)
    assert torch.allclose(U.expected_probability(mu, sigma)[0], t(0.844846), atol=1e-5)
    assert torch.allclose(U.bce_with_uncertainty(mu, sigma, y), t([0.168601, 0.429159]), atol=1e-5)


def test_bootstrap_weight_eq11_by_hand():
    # var = tau -> 1/2; var = tau + 0.2 -> sigmoid(-1) = 0.268941; var = tau - 0.2 -> 0.731059
    sigma = t([2.5, 2.7, 2.3]).sqrt()
    assert torch.allclose(U.bootstrap_weight(sigma), t([0.5, 0.268941, 0.731059]), atol=1e-5)
    assert torch.allclose(U.bootstrap_weight(sigma, tau=2.7)[1], t(0.5))


def test_bootstrap_loss_eq10_by_hand():
    # mu = 1, y = 1, var 2.7: W = 0.268941, BCE(1, 1) = log(1 + e^-1) = 0.313262,
    # BCE(1, y* = 0) = log(1 + e) = 1.313262: 0.268941 * 0.313262 + 0.731059 * 1.313262 = 1.044320.
    # mu = -2, y = 0, var 0.25: 1 - W = 1 - sigmoid(11.25) = 1.3007e-5, BCE(-2, 0) =
    # log(1 + e^-2) = 0.126928, BCE(-2, y* = 1) = log(1 + e^2) = 2.126928:
    # 0.126928 + 1.3007e-5 * (2.126928 - 0.126928) = 0.126954.
    mu, sigma, y = t([1.0, -2.0]), t([2.7, 0.25]).sqrt(), t([1.0, 0.0])
    assert torch.allclose(U.bootstrap_loss(mu, sigma, y), t([1.044320, 0.126954]), atol=2e-6)


def test_mc_cross_entropy_eq15_by_hand():
    # T = 2 samples, C = 3, two images of one pixel with targets 0 and 2.
    # Image 0: l_1 = (0, 1, 2), l_2 = (1, 0, 0); softmax_0: 1 / (1 + e + e^2) = 0.090031,
    # e / (e + 2) = 0.576117; -log(mean) = -log(0.333074) = 1.099391.
    # Image 1 uses the same samples with y = 2: e^2 / (1 + e + e^2) = 0.665241, 1 / (e + 2) =
    # 0.211942; -log(0.438592) = 0.824187.
    sample = t([[0.0, 1.0, 2.0], [1.0, 0.0, 0.0]])  # T x C
    logits = torch.stack([sample, sample], dim=1)[..., None, None]  # T x B x C x 1 x 1
    mu, sigma = torch.zeros(2, 3, 1, 1), torch.ones(2, 3, 1, 1)
    y = torch.tensor([0, 2])[:, None, None]
    out = U.mc_cross_entropy(mu, sigma, y, logits=logits)
    assert torch.allclose(out.flatten(), t([1.099391, 0.824187]), atol=1e-5)


def test_sample_logits_eq14_mean_and_spread():
    torch.manual_seed(0)
    mu, sigma = t([[1.0, -2.0]]), t([[0.5, 3.0]])
    samples = U.sample_logits(mu, sigma, samples=20000)
    assert samples.shape == (20000, 1, 2)
    assert torch.allclose(samples.mean(0), mu, atol=0.06)
    assert torch.allclose(samples.std(0), sigma, atol=0.06)


def test_mc_cross_entropy_with_tiny_sigma_is_cross_entropy():
    mu = torch.randn(2, 5, 3, 3, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 5, (2, 3, 3), generator=torch.Generator().manual_seed(2))
    out = U.mc_cross_entropy(mu, torch.full_like(mu, 1e-6), y)
    assert torch.allclose(out, F.cross_entropy(mu, y, reduction="none"), atol=1e-4)


def test_flipped_target_eq16_by_hand():
    # Two images x two pixels, C = 3. A pixel flips to argmax mu where max_c var_c > 2.5.
    mu = t([[[[0.0, 5.0]], [[1.0, 0.0]], [[3.0, 0.0]]], [[[9.0, 0.0]], [[0.0, 0.0]], [[0.0, 2.0]]]])
    var = t(
        [[[[3.0, 0.1]], [[0.1, 0.1]], [[0.1, 0.1]]], [[[0.1, 0.1]], [[0.1, 2.6]], [[0.1, 0.1]]]]
    )
    y = torch.tensor([[[1, 1]], [[1, 1]]])
    # image 0 pixel 0: max var 3.0 > 2.5 -> argmax (0, 1, 3) = 2; pixel 1: kept 1.
    # image 1 pixel 0: kept; pixel 1: var 2.6 (class 1) > 2.5 -> argmax (0, 0, 2) = 2.
    out = U.flipped_target(mu, var.sqrt(), y)
    assert out.tolist() == [[[2, 1]], [[1, 2]]]


@pytest.mark.parametrize(("mu", "sigma"), [(0.0, 1.0), (2.0, 1.0), (-1.5, 2.0), (3.0, 0.3),
                                           (1.0, 4.0), (-4.0, 3.0)])  # fmt: skip
def test_probit_approximation_matches_monte_carlo(mu, sigma):
    """Eq. 8 against E[sigmoid(l)], l ~ N(mu, var), by Monte-Carlo integration (10^6 samples;
    standard error < 5e-4). The approximation itself is good to about 0.02."""
    g = torch.Generator().manual_seed(0)
    samples = mu + sigma * torch.randn(1_000_000, generator=g, dtype=torch.float64)
    monte_carlo = torch.sigmoid(samples).mean().item()
    approx = U.expected_probability(t(mu), t(sigma)).item()
    assert abs(approx - monte_carlo) < 0.02


def test_probit_test_catches_the_squared_variance_bug():
    """The one public adaptation squares the variance inside Eq. 8: the MC check rejects it."""
    mu, sigma = 2.0, 3.0
    samples = mu + sigma * torch.randn(1_000_000, generator=torch.Generator().manual_seed(0))
    monte_carlo = torch.sigmoid(samples).mean().item()
    buggy = torch.sigmoid(t(mu / math.sqrt(1 + math.pi * sigma**4 / 8))).item()
    assert abs(buggy - monte_carlo) > 0.05
    assert abs(U.expected_probability(t(mu), t(sigma)).item() - monte_carlo) < 0.02


def test_binary_gradient_split():
    """Section 3.3: sigma learns only from the uncertainty term, mu only from bootstrapping."""
    mu = t([[1.5, -0.5], [0.2, 2.0]]).requires_grad_()
    sigma = t([[0.8, 2.0], [1.7, 0.3]]).requires_grad_()
    y = t([[1.0, 1.0], [0.0, 1.0]])
    unc, boot = U.split_binary_terms(mu, sigma, y)
    unc.sum().backward()
    assert mu.grad is None and sigma.grad is not None and (sigma.grad != 0).all()
    sigma.grad = None
    boot.sum().backward()
    assert sigma.grad is None and mu.grad is not None and (mu.grad != 0).all()
    # the values are Eq. 9 and Eq. 10 themselves
    assert torch.allclose(unc, U.bce_with_uncertainty(mu, sigma, y))
    assert torch.allclose(boot, U.bootstrap_loss(mu, sigma, y))


def test_multiclass_gradient_split():
    g = torch.Generator().manual_seed(3)
    mu = torch.randn(2, 4, 3, 3, generator=g).requires_grad_()
    sigma = (torch.rand(2, 4, 3, 3, generator=g) * 2 + 0.1).requires_grad_()
    y = torch.randint(0, 4, (2, 3, 3), generator=g)
    unc, boot, target = U.split_multiclass_terms(mu, sigma, y)
    unc.sum().backward()
    assert mu.grad is None and sigma.grad is not None and sigma.grad.abs().sum() > 0
    sigma.grad = None
    boot.sum().backward()
    assert sigma.grad is None and mu.grad.abs().sum() > 0
    assert torch.equal(target, U.flipped_target(mu, sigma, y))
    assert (target != y).any() and (target == y).any()  # some pixels flipped, some kept


def test_paper_failure_mode_underflow_is_finite():
    """With 21 classes and extreme logits the true class's softmax underflows to 0 in every
    sample: the literal -log(mean_t softmax(l_t)_y) is inf (and its gradient NaN); the log-space
    form gives the right, finite value: -log_softmax(mu)_y = 1000 for a tiny sigma."""
    mu = torch.zeros(1, 21, 1, 1)
    mu[0, 3] = 1000.0
    sigma = torch.full_like(mu, 1e-3).requires_grad_()
    y = torch.tensor([[[7]]])
    logits = U.sample_logits(mu, sigma)
    literal = -torch.log(torch.softmax(logits, dim=2)[:, 0, 7].mean())
    assert torch.isinf(literal)
    ours = U.mc_cross_entropy(mu, sigma, y, logits=logits)
    assert torch.allclose(ours, torch.tensor(1000.0), rtol=1e-4)
    ours.sum().backward()
    assert torch.isfinite(sigma.grad).all()


def test_extreme_inputs_give_finite_losses_and_gradients():
    """mu up to 1e4 in size, sigma from its 1e-3 floor to 1e4, 21 classes."""
    g = torch.Generator().manual_seed(0)
    mu = (torch.randn(2, 21, 4, 4, generator=g) * 1e4).requires_grad_()
    sigma = (torch.rand(2, 21, 4, 4, generator=g) * 1e4 + 1e-3).requires_grad_()
    y = torch.randint(0, 21, (2, 4, 4), generator=g)
    unc, boot, _ = U.split_multiclass_terms(mu, sigma, y)
    (unc.sum() + boot.sum()).backward()
    b_mu, b_sigma, b_y = mu[:, 0].detach(), sigma[:, 0].detach(), (y > 10).float()
    binary = [U.regression_nll(b_mu, b_sigma, b_y), *U.split_binary_terms(b_mu, b_sigma, b_y)]
    for value in [unc, boot, mu.grad, sigma.grad, *binary]:
        assert torch.isfinite(value).all()
