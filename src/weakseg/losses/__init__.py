"""Loss functions: pure functions, each docstring naming the paper and equation it implements."""

from weakseg.losses.common import (
    box_loss,
    cross_entropy,
    grabcut_loss,
    one_hot_labels,
    soft_label_loss,
    upsample_to,
)

__all__ = [
    "box_loss",
    "cross_entropy",
    "grabcut_loss",
    "one_hot_labels",
    "soft_label_loss",
    "upsample_to",
]
