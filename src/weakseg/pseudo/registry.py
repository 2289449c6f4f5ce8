"""The registry of pseudo-label generators: name -> class, and building one from parameters.

Its own module so that the generator modules, which import ``weakseg.pseudo.base``, and the
registry, which imports them, form no import cycle.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import typing

from weakseg.pseudo.base import Generator

# name -> (module, class). Only the chosen generator's module is imported, so that
# `weakseg labels --generator box` imports neither OpenCV, pydensecrf nor torch.
GENERATORS = {
    "bana": ("weakseg.pseudo.bana", "BanaGenerator"),
    "box": ("weakseg.pseudo.box", "BoxGenerator"),
    "crf-box": ("weakseg.pseudo.crf", "CrfBoxGenerator"),
    "grabcut": ("weakseg.pseudo.grabcut", "GrabCutGenerator"),
    "lpg": ("weakseg.pseudo.lpg", "LpgGenerator"),
    "sec-cues": ("weakseg.pseudo.sec", "SecCueGenerator"),
}


def generator_names() -> list[str]:
    return sorted(GENERATORS)


def generator_class(name: str) -> type[Generator]:
    if name not in GENERATORS:
        raise ValueError(f"unknown generator {name!r}; choose from {', '.join(generator_names())}")
    module, cls = GENERATORS[name]
    return getattr(importlib.import_module(module), cls)


def make_generator(name: str, **params) -> Generator:
    """Build a generator by name; ``params`` override its dataclass defaults."""
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


__all__ = ["GENERATORS", "check_param", "generator_class", "generator_names", "make_generator"]
