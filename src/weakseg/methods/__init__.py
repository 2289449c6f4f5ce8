"""Training methods: ``METHODS`` maps a config's ``train.method`` to its class.

Each class is a dataclass of the method's parameters (the config's ``method:`` section), built
with :func:`build_method`. One file per paper; ``baselines.py`` holds the shared baselines.
"""

from __future__ import annotations

import dataclasses

from weakseg.methods.bana import BapClassification, NoiseAwareSegmentation
from weakseg.methods.base import Method, build_segmenter_from_config
from weakseg.methods.baselines import (
    BoxSupervision,
    FullSupervision,
    PseudoLabelSupervision,
    SemiSupervision,
)
from weakseg.methods.box2seg import Box2Seg
from weakseg.methods.sec import Sec, SecClassifier
from weakseg.methods.uncertainty import LabelUncertainty

METHODS: dict[str, type[Method]] = {
    "full": FullSupervision,
    "box": BoxSupervision,
    "pseudo": PseudoLabelSupervision,
    "semi": SemiSupervision,
    "box2seg": Box2Seg,
    "bana-classifier": BapClassification,
    "bana": NoiseAwareSegmentation,
    "uncertainty": LabelUncertainty,
    "sec-classifier": SecClassifier,
    "sec": Sec,
}


def build_method(name: str, params: dict | None = None) -> Method:
    """The method ``name`` with ``params`` (unknown names are errors listing the known ones)."""
    if name not in METHODS:
        raise ValueError(f"unknown train.method {name!r}; choose from {', '.join(METHODS)}")
    cls = METHODS[name]
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(params or {}) - set(known))
    if unknown:
        listed = ", ".join(known) if known else "none"
        raise ValueError(f"method {name!r} has no parameter(s) {unknown}; its parameters: {listed}")
    return cls(**(params or {}))


__all__ = ["METHODS", "Method", "build_method", "build_segmenter_from_config"]
