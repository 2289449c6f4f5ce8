"""Dense CRF (Kraehenbuehl & Koltun, NeurIPS 2011): the parameters and the one inference wrapper
that every CRF user shares: BANA stage 2 (Y_crf), the WSSL box-unary baseline, SEC's
constrain-to-boundary target and test-time post-processing.

A leaf module (numpy only; pydensecrf is imported when a CRF runs), so that the pseudo-label
generators, the engine and the config all use it without importing one another.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

EPS = 1e-6  # probability floor before -log, so no unary is infinite


@dataclass
class CrfParams:
    """Dense-CRF parameters. Defaults: BANA stage 2 (REFERENCE_NOTES, BANA section: bilateral
    compat 4, sxy 55, srgb 3; gaussian compat 3, sxy 3; 10 mean-field iterations).

    ``bi_*``: the contrast-sensitive (appearance) kernel, positions scaled by ``bi_sxy`` pixels and
    RGB values by ``bi_srgb``; ``g_*``: the smoothness kernel on positions only. Generators that
    run a CRF inherit these as flat fields (so `weakseg labels ... bi_sxy=60` works) and pass
    ``self.crf_params()`` to ``dense_crf``.
    """

    iterations: int = 10
    bi_sxy: float = 55.0
    bi_srgb: float = 3.0
    bi_compat: float = 4.0
    g_sxy: float = 3.0
    g_compat: float = 3.0

    def crf_params(self) -> CrfParams:
        """Just these parameters (also when ``self`` is a generator that inherits them)."""
        return CrfParams(**{f.name: getattr(self, f.name) for f in fields(CrfParams)})

    @classmethod
    def from_prefixed(cls, source: object, prefix: str) -> CrfParams:
        """The parameters stored on ``source`` under prefixed names, e.g. the config's
        ``eval.crf_bi_sxy`` ... with ``prefix="crf_"``."""
        return cls(**{f.name: getattr(source, prefix + f.name) for f in fields(cls)})


def dense_crf(image: np.ndarray, probs: np.ndarray, params: CrfParams | None = None) -> np.ndarray:
    """Mean-field dense-CRF inference with Potts pairwise terms.

    Args:
        image: H x W x 3 uint8 RGB (the bilateral kernel compares raw 0..255 values).
        probs: C x H x W label probabilities (need not be exactly normalised); unary = -log(probs).
        params: kernel parameters; BANA stage-2 values when None.

    Returns:
        C x H x W float32 marginals, summing to 1 over C at every pixel.
    """
    import pydensecrf.densecrf as dcrf  # lazy: only CRF users pay for the import

    params = params or CrfParams()
    n_labels, height, width = probs.shape
    if image.shape[:2] != (height, width):
        raise ValueError(f"image {image.shape[:2]} and probs {probs.shape[1:]} differ in size")
    if image.dtype != np.uint8:  # a cast would hide BANA's normalised-image bug (REFERENCE_NOTES)
        raise TypeError(f"dense_crf needs the H x W x 3 uint8 RGB image, got {image.dtype}")
    unary = -np.log(np.clip(probs, EPS, None)).reshape(n_labels, -1)
    crf = dcrf.DenseCRF2D(width, height, n_labels)
    crf.setUnaryEnergy(np.ascontiguousarray(unary, dtype=np.float32))
    crf.addPairwiseGaussian(sxy=params.g_sxy, compat=params.g_compat)
    # pydensecrf takes a writable C-contiguous uint8 buffer (PIL-backed arrays are read-only).
    rgb = np.require(image, dtype=np.uint8, requirements=["C", "W"])
    crf.addPairwiseBilateral(
        sxy=params.bi_sxy, srgb=params.bi_srgb, rgbim=rgb, compat=params.bi_compat
    )
    marginals = crf.inference(params.iterations)
    return np.asarray(marginals, dtype=np.float32).reshape(n_labels, height, width)


__all__ = ["CrfParams", "dense_crf"]
