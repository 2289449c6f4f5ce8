"""The 'Box' baseline: every box filled with its class, smaller boxes on top (BANA Table 1 'Box',
Box2Seg Table 3 'Box')."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from weakseg.data.boxes import box_label_map
from weakseg.data.sample import Sample
from weakseg.pseudo.base import Generator


@dataclass
class BoxGenerator(Generator):
    name: ClassVar[str] = "box"

    def generate(self, sample: Sample) -> np.ndarray:
        return box_label_map(sample.boxes, sample.box_labels, sample.height, sample.width)
