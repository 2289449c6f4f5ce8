"""Segmentation models: encoders (timm, offline ImageNet weights), decoders, heads, Segmenter."""

from weakseg.models.decoders import DECODERS
from weakseg.models.encoders import (
    OFFLINE_WEIGHTS,
    Encoder,
    build_encoder,
    encoder_normalization,
    offline_encoder_names,
)
from weakseg.models.heads import HEADS, CosineClassifier, SegmentationHead
from weakseg.models.segmenter import Segmenter, build_segmenter

__all__ = [
    "DECODERS",
    "HEADS",
    "OFFLINE_WEIGHTS",
    "CosineClassifier",
    "Encoder",
    "SegmentationHead",
    "Segmenter",
    "build_encoder",
    "build_segmenter",
    "encoder_normalization",
    "offline_encoder_names",
]
