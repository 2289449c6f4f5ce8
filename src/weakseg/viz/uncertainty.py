"""Label-uncertainty pictures (Neven et al. Fig. 5 and 6): the box target, the learned variance,
the bootstrapping weight, the bootstrapped target and the flipped pixels per class.

``weakseg report`` adds these panels for any model with a "sigma" head; with ``--snapshot N``
(weights kept by ``train.snapshot_every``) they show the state after N iterations, i.e. during
training as in the paper's figures.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from weakseg.data.boxes import box_label_map
from weakseg.data.sample import Sample
from weakseg.viz.overlay import heatmap, overlay


def bootstrapped_target(target: np.ndarray, prediction: np.ndarray, variance: np.ndarray,
                        tau: float, binary: bool) -> np.ndarray:  # fmt: skip
    """The target after bootstrapping inside the boxes: where max_c var_c > tau, the model's class
    (multi-class, Eq. 16) or the opposite label (binary, Eq. 10 with W < 1/2, i.e. var > tau)."""
    flip = (target > 0) & (target != 255) & (variance > tau)
    flipped = (1 - target) if binary else prediction
    return np.where(flip, flipped, target).astype(np.uint8)


def uncertainty_panels(image: np.ndarray, maps: dict[str, np.ndarray], sample: Sample,
                       class_names: Sequence[str], tau: float,
                       classes_shown: int = 2) -> list[tuple[str, np.ndarray]]:  # fmt: skip
    """Panels for one image: box target | max_c var_c (0 to 2 tau, tau in the middle) | 1 - W
    inside the boxes (Eq. 11, Fig. 5's weight mask) | bootstrapped target | the flipped pixels
    of each box class, up to ``classes_shown`` (Fig. 6's flip masks).

    ``maps``: ``weakseg.viz.maps.model_maps`` output with "seg" (H x W labels) and "sigma"
    (C' x H x W standard deviations, C' = 1 for a binary model)."""
    target = box_label_map(sample.boxes, sample.box_labels, sample.height, sample.width)
    variance = np.square(maps["sigma"]).max(axis=0)
    weight = 1.0 / (1.0 + np.exp(np.clip((tau - variance) / 0.2, -50, 50)))  # 1 - W
    in_box = target > 0
    new = bootstrapped_target(target, maps["seg"], variance, tau, maps["sigma"].shape[0] == 1)
    panels = [
        ("target (boxes)", overlay(image, target)),
        (f"max var (0..{2 * tau:g})", heatmap(image, variance / (2 * tau))),
        ("1 - W in boxes", heatmap(image, weight * in_box)),
        ("bootstrapped target", overlay(image, new)),
    ]
    for c in np.unique(sample.box_labels)[:classes_shown].tolist():
        flipped = (target == c) & (new != target)
        panels.append((f"flipped: {class_names[c]}", heatmap(image, flipped.astype(np.float32))))
    return panels


__all__ = ["bootstrapped_target", "uncertainty_panels"]
