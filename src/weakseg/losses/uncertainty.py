"""Label-uncertainty losses (Neven et al., "Weakly-Supervised Semantic Segmentation by Learning
Label Uncertainty"; papers/label-uncertainty.md). Pure per-pixel functions: each returns a map of
the same shape as its inputs (no reduction), so the caller picks the region and the mean.

Notation: mu is the logit mean, sigma the standard deviation of the logit (one per class in the
multi-class case), var = sigma^2, y the training target. Binary maps are B x H x W; multi-class
mu and sigma are B x C x H x W with integer targets B x H x W.

| equation | function |
|---|---|
| Eq. 2, regression with uncertainty | :func:`regression_nll` |
| Eq. 3, L2 on PP pixels + Eq. 2 on BB pixels | :func:`mixed_regression_loss` |
| Eq. 8, probit approximation | :func:`expected_probability`, :func:`probit_logit` |
| Eq. 9, BCE with uncertainty | :func:`bce_with_uncertainty` |
| Eq. 11, bootstrapping weight W | :func:`bootstrap_weight` |
| Eq. 10, bootstrapping loss | :func:`bootstrap_loss` |
| section 3.3, the gradient split | :func:`split_binary_terms`, :func:`split_multiclass_terms` |
| Eq. 14, sampled logits | :func:`sample_logits` |
| Eq. 15, MC cross-entropy with uncertainty | :func:`mc_cross_entropy` |
| Eq. 16, hard flip of the target | :func:`flipped_target` |

Stability (the paper reports instabilities beyond 3 classes): Eq. 15 is evaluated in log space,
-(logsumexp_t log_softmax(l_t)_y - log T), never as the log of a mean of probabilities, so a true
class whose softmax underflows to 0 in every sample still gives a finite loss and gradient; BCEs
take logits (``binary_cross_entropy_with_logits``), never log(sigmoid); log var is computed as
2 log sigma. sigma itself comes from :class:`weakseg.models.heads.UncertaintyHead`
(softplus + 1e-3, so var >= 1e-6 and 1 / var stays finite).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

TAU = 2.5  # bootstrapping threshold on the variance (paper 4.1.2)
TEMPERATURE = 0.2  # denominator of Eq. 11
SAMPLES = 20  # Monte-Carlo samples of Eq. 14-15 (paper section 5)


def regression_nll(mu: Tensor, sigma: Tensor, y: Tensor) -> Tensor:
    """Eq. 2: -log N(y | mu, var) up to a constant = (y - mu)^2 / (2 var) + 1/2 log var."""
    var = sigma.square()
    return (y - mu).square() / (2.0 * var) + torch.log(sigma)  # 1/2 log var = log sigma


def mixed_regression_loss(mu: Tensor, sigma: Tensor, y: Tensor, uncertain: Tensor) -> Tensor:
    """Eq. 3 per pixel: the plain L2 loss (y - mu)^2 where ``uncertain`` is False (pixel-perfect
    labels, and background outside boxes), Eq. 2 where it is True (inside boxes)."""
    return torch.where(uncertain, regression_nll(mu, sigma, y), (y - mu).square())


def probit_logit(mu: Tensor, sigma: Tensor) -> Tensor:
    """The argument of Eq. 8: mu / sqrt(1 + pi var / 8), the "adapted" logit."""
    return mu / torch.sqrt(1.0 + (math.pi / 8.0) * sigma.square())


def expected_probability(mu: Tensor, sigma: Tensor) -> Tensor:
    """Eq. 8: E[sigmoid(l)], l ~ N(mu, var), approximated by sigmoid(mu / sqrt(1 + pi var / 8))."""
    return torch.sigmoid(probit_logit(mu, sigma))


def bce_with_uncertainty(mu: Tensor, sigma: Tensor, y: Tensor) -> Tensor:
    """Eq. 9 (as a loss, i.e. with the minus sign Eq. 5 and 9 leave out):
    -[y log E[p] + (1 - y) log(1 - E[p])], E[p] from Eq. 8. ``y`` is float in [0, 1]."""
    return F.binary_cross_entropy_with_logits(probit_logit(mu, sigma), y, reduction="none")


def bootstrap_weight(sigma: Tensor, tau: float = TAU, temperature: float = TEMPERATURE) -> Tensor:
    """Eq. 11: W = sigmoid((tau - var) / 0.2); ~1 below the threshold, ~0 above it."""
    return torch.sigmoid((tau - sigma.square()) / temperature)


def bootstrap_loss(
    mu: Tensor, sigma: Tensor, y: Tensor, tau: float = TAU, temperature: float = TEMPERATURE
) -> Tensor:
    """Eq. 10: W BCE(mu, y) + (1 - W) BCE(mu, y*), y* = 1 - y the flipped target, W of Eq. 11."""
    w = bootstrap_weight(sigma, tau, temperature)
    keep = F.binary_cross_entropy_with_logits(mu, y, reduction="none")
    flip = F.binary_cross_entropy_with_logits(mu, 1.0 - y, reduction="none")
    return w * keep + (1.0 - w) * flip


def split_binary_terms(
    mu: Tensor, sigma: Tensor, y: Tensor, tau: float = TAU, temperature: float = TEMPERATURE
) -> tuple[Tensor, Tensor]:
    """Section 3.3: (uncertainty term, bootstrapping term) per pixel. The variance learns only
    from the uncertainty term (Eq. 9 with mu detached), the mean only from the bootstrapping
    term (Eq. 10 with sigma, hence W, detached)."""
    uncertainty = bce_with_uncertainty(mu.detach(), sigma, y)
    bootstrap = bootstrap_loss(mu, sigma.detach(), y, tau, temperature)
    return uncertainty, bootstrap


def sample_logits(mu: Tensor, sigma: Tensor, samples: int = SAMPLES) -> Tensor:
    """Eq. 14, read as Kendall and Gal's heteroscedastic sampling: l_t = mu + sigma * eps_t,
    eps_t ~ N(0, I). B x C x ... -> T x B x C x ... (eps from the global torch RNG)."""
    eps = torch.randn((samples, *mu.shape), dtype=mu.dtype, device=mu.device)
    return mu + sigma * eps


def mc_cross_entropy(mu: Tensor, sigma: Tensor, y: Tensor, samples: int = SAMPLES,
                     logits: Tensor | None = None) -> Tensor:  # fmt: skip
    """Eq. 12-15: -log E[softmax(l)_y] with E estimated from T samples of Eq. 14,
    = -(logsumexp_t log_softmax(l_t)_y - log T).

    Args:
        mu, sigma: B x C x H x W (sigma > 0).
        y: B x H x W int64 in 0..C-1 (no ignore value: select pixels before or after).
        logits: T x B x C x H x W samples to use instead of drawing them (tests).
    Returns: B x H x W.
    """
    if logits is None:
        logits = sample_logits(mu, sigma, samples)
    log_p = F.log_softmax(logits, dim=2)  # T x B x C x H x W
    index = y[None, :, None].expand(log_p.shape[0], -1, 1, *y.shape[1:])
    log_p_y = log_p.gather(2, index)[:, :, 0]  # T x B x H x W
    return -(torch.logsumexp(log_p_y, dim=0) - math.log(log_p.shape[0]))


def flipped_target(mu: Tensor, sigma: Tensor, y: Tensor, tau: float = TAU) -> Tensor:
    """Eq. 16: argmax_c mu_c where max_c var_c > tau, else y. B x C x H x W, B x H x W -> B x H x W
    (no gradient: a target)."""
    with torch.no_grad():
        flip = sigma.square().amax(dim=1) > tau
        return torch.where(flip, mu.argmax(dim=1), y)


def split_multiclass_terms(
    mu: Tensor, sigma: Tensor, y: Tensor, tau: float = TAU, samples: int = SAMPLES
) -> tuple[Tensor, Tensor, Tensor]:
    """Section 3.3 with the multi-class terms of section 4.2, per pixel: (uncertainty term
    Eq. 15 with mu detached, bootstrapping term CE(mu, y*) with y* from Eq. 16, y*).

    mu, sigma: B x C x H x W; y: B x H x W int64 (valid classes only)."""
    uncertainty = mc_cross_entropy(mu.detach(), sigma, y, samples)
    target = flipped_target(mu, sigma, y, tau)
    bootstrap = F.cross_entropy(mu, target, reduction="none")
    return uncertainty, bootstrap, target


__all__ = [
    "SAMPLES",
    "TAU",
    "TEMPERATURE",
    "bce_with_uncertainty",
    "bootstrap_loss",
    "bootstrap_weight",
    "expected_probability",
    "flipped_target",
    "mc_cross_entropy",
    "mixed_regression_loss",
    "probit_logit",
    "regression_nll",
    "sample_logits",
    "split_binary_terms",
    "split_multiclass_terms",
]
