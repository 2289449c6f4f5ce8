"""The interface every pseudo-label generator shares, and the registry of generators.

A generator is a dataclass whose fields are its parameters. ``generate(sample)`` returns an
H x W uint8 label map (0 = background, 1..L = classes, 255 = ignore) at the image's size.
Generators that produce more than one map (BANA: Y_crf and Y_ret) override ``generate_maps``;
the map named "labels" is the main one.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import typing
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:  # annotations only: `weakseg --help` lists the generators without numpy
    import numpy as np

    from weakseg.data.sample import Sample


class Generator(ABC):
    name: ClassVar[str]

    @abstractmethod
    def generate(self, sample: Sample) -> np.ndarray:
        """H x W uint8 label map for one sample."""

    def generate_maps(self, sample: Sample) -> dict[str, np.ndarray]:
        return {"labels": self.generate(sample)}

    def params(self) -> dict:
        return dataclasses.asdict(self) if dataclasses.is_dataclass(self) else {}


def generator_names() -> list[str]:
    return sorted(GENERATORS)


def make_generator(name: str, **params) -> Generator:
    """Build a generator by name; ``params`` override its dataclass defaults."""
    if name not in GENERATORS:
        raise ValueError(f"unknown generator {name!r}; choose from {', '.join(generator_names())}")
    cls = generator_class(name)
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = set(params) - known
    if unknown:
        raise ValueError(
            f"generator {name!r} has no parameter(s) {sorted(unknown)}; it has {sorted(known)}"
        )
    types = typing.get_type_hints(cls)
    for key, value in params.items():
        check_param(name, key, value, types[key])
    # 1 and 1.0 are one parameter value (meta.json compares them as JSON).
    params = {k: float(v) if types[k] is float else v for k, v in params.items()}
    return cls(**params)


# Parameters that count something and need at least one; other numbers must be >= 0.
AT_LEAST_ONE = ("iterations", "grid")


def check_param(generator: str, key: str, value: object, wanted: type) -> None:
    """ValueError naming ``key`` unless ``value`` has the field's type (int, float, bool, str)
    and, for numbers, is finite and >= 0 (>= 1 for :data:`AT_LEAST_ONE`): checked once, before
    any work, instead of failing on every image."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    fits = {
        int: isinstance(value, int) and not isinstance(value, bool),
        float: number,
        bool: isinstance(value, bool),
        str: isinstance(value, str),
    }.get(wanted, True)
    if not fits:
        raise ValueError(
            f"generator {generator!r}: parameter {key}={value!r} must be {wanted.__name__}"
        )
    low = 1 if key in AT_LEAST_ONE else 0
    if number and not (math.isfinite(value) and value >= low):  # type: ignore[arg-type]
        raise ValueError(f"generator {generator!r}: parameter {key}={value!r} must be >= {low}")


# name -> (module, class). Only the chosen generator's module is imported, so that
# `weakseg labels --generator box` imports neither OpenCV, pydensecrf nor torch.
GENERATORS = {
    "bana": ("weakseg.pseudo.bana", "BanaGenerator"),
    "box": ("weakseg.pseudo.box", "BoxGenerator"),
    "crf-box": ("weakseg.pseudo.crf", "CrfBoxGenerator"),
    "grabcut": ("weakseg.pseudo.grabcut", "GrabCutGenerator"),
}


def generator_class(name: str) -> type[Generator]:
    module, cls = GENERATORS[name]
    return getattr(importlib.import_module(module), cls)
