"""The interface every training method shares.

A method is a dataclass whose fields are its parameters (the ``method:`` section of a config).
It says where its training target comes from (``label_source``, see
:mod:`weakseg.data.training`), builds its model, and turns (batch, model outputs) into a dict of
named loss terms; the loop sums the terms with ``train.loss_weights`` (1.0 each by default) and
logs every term.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import ClassVar

from torch import Tensor, nn

from weakseg.config import Config, ModelConfig


class Method(ABC):
    name: ClassVar[str]
    label_source: ClassVar[str] = "gt"  # "gt" | "box" | "pseudo" | "semi"

    def build_model(self, cfg: Config, num_classes: int) -> nn.Module:
        """The model to train: by default a Segmenter with only the "seg" head."""
        return build_segmenter_from_config(cfg.model, num_classes)

    @abstractmethod
    def losses(self, batch: dict, outputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """Named scalar loss terms.

        Args:
            batch: from ``weakseg.data.training.collate_training``: "image" B x 3 x S x S,
                "target" B x S x S int64 (255 = ignore), "boxes" / "box_labels" lists of
                K x 4 / K tensors, "id" list of str; tensors on the model's device.
            outputs: the model's named outputs, e.g. "seg": B x C x S/s x S/s logits (float32).
        """

    def stage_lengths(self, iterations: int) -> list[int]:
        """Iterations of each training stage, summing to ``iterations`` (default: one stage).
        The loop restarts the poly learning rate at every stage boundary."""
        return [iterations]

    def set_stage(self, stage: int) -> None:
        """Called by the loop before every iteration with the index of its stage."""
        return None

    def set_progress(self, iteration: int, total: int) -> None:
        """Called by the loop before every iteration: ``iteration`` of ``total`` in its stage
        (for schedules inside a loss, e.g. BANA's bootstrapping beta)."""
        return None

    def params(self) -> dict:
        """The method's parameters as a plain dict (for logs and summaries)."""
        return dataclasses.asdict(self) if dataclasses.is_dataclass(self) else {}


def build_segmenter_from_config(model: ModelConfig, num_classes: int, **kwargs) -> nn.Module:
    """``weakseg.models.build_segmenter`` with the config's arguments; ``kwargs`` (e.g.
    ``extra_heads``, ``seg_head``) come from the method."""
    from weakseg.models import build_segmenter  # lazy: importing timm takes seconds

    return build_segmenter(
        encoder=model.encoder,
        decoder=model.decoder,
        num_classes=num_classes,
        weights=model.weights,
        output_stride=model.output_stride,
        freeze=model.freeze,
        decoder_channels=model.decoder_channels,
        **kwargs,
    )


__all__ = ["Method", "build_segmenter_from_config"]
