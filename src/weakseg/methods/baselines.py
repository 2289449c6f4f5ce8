"""The baselines every paper compares to: cross-entropy on one kind of label map.

| method   | target (label_source)                  | loss term | paper                          |
|----------|----------------------------------------|-----------|--------------------------------|
| "full"   | ground-truth masks ("gt")              | "ce"      | upper bound (all papers)       |
| "box"    | boxes filled, smaller on top ("box")   | "box"     | Box2Seg Eq. 1, L_box           |
| "pseudo" | a pseudo-label directory ("pseudo")    | "pseudo"  | Box2Seg Eq. 2, L_GC            |
| "semi"   | masks for a fraction, pseudo labels    | "ce"      | Box2Seg Table 5, BANA Table 4  |
|          | for the rest ("semi")                  |           |                                |

Eq. 1 and Eq. 2 sum one-hot labels times log-probabilities; with one-hot labels that is the
cross-entropy with their argmax (``weakseg.losses.common.box_loss`` is the literal form; the tests
check the two agree), which is what these methods compute. "pseudo" takes any label directory:
GrabCut (Box2Seg's M), dense CRF on boxes (WSSL), BANA's Y_crf.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor

from weakseg.data.mixed import MixedSupervision
from weakseg.losses.common import cross_entropy
from weakseg.methods.base import Method


@dataclass
class FullSupervision(Method):
    """Cross-entropy on ground-truth masks: the fully supervised upper bound."""

    name: ClassVar[str] = "full"
    label_source: ClassVar[str] = "gt"

    def losses(self, batch: dict, outputs: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"ce": cross_entropy(outputs["seg"], batch["target"])}


@dataclass
class BoxSupervision(Method):
    """L_box (Box2Seg Eq. 1): boxes filled with their class, smaller boxes on top."""

    name: ClassVar[str] = "box"
    label_source: ClassVar[str] = "box"

    def losses(self, batch: dict, outputs: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"box": cross_entropy(outputs["seg"], batch["target"])}


@dataclass
class PseudoLabelSupervision(Method):
    """L_GC (Box2Seg Eq. 2) on the label maps in ``data.labels`` (GrabCut, CRF on boxes ...)."""

    name: ClassVar[str] = "pseudo"
    label_source: ClassVar[str] = "pseudo"

    def losses(self, batch: dict, outputs: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"pseudo": cross_entropy(outputs["seg"], batch["target"])}


@dataclass
class SemiSupervision(Method):
    """Cross-entropy on ground truth for ``labelled_fraction`` of the training ids (chosen by
    ``labelled_seed``) and on the pseudo labels in ``data.labels`` for the rest, in one loss:
    the semi-supervised protocol of Box2Seg Table 5 and BANA Table 4. ``pp_chance`` > 0 draws
    a labelled image for each batch element with that chance (label uncertainty's sampler,
    ``weakseg.data.mixed``), instead of a plain shuffle."""

    name: ClassVar[str] = "semi"
    label_source: ClassVar[str] = "semi"
    labelled_fraction: float = 0.1
    labelled_seed: int = 0
    pp_chance: float = 0.0

    @property
    def mixed(self) -> MixedSupervision | None:
        if self.pp_chance == 0:
            return None
        return MixedSupervision(self.labelled_fraction, seed=self.labelled_seed,
                                chance=self.pp_chance)  # fmt: skip

    def losses(self, batch: dict, outputs: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"ce": cross_entropy(outputs["seg"], batch["target"])}


__all__ = ["BoxSupervision", "FullSupervision", "PseudoLabelSupervision", "SemiSupervision"]
