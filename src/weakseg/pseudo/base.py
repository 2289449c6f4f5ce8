"""The interface every pseudo-label generator shares (the registry: ``weakseg.pseudo.registry``).

A generator is a dataclass whose fields are its parameters. ``generate(sample)`` returns an
H x W uint8 label map (0 = background, 1..L = classes, 255 = ignore) at the image's size.
Generators that produce more than one map (BANA: Y_crf and Y_ret) override ``generate_maps``;
the map named "labels" is the main one.

Generators that turn a trained network into labels (BANA's stage 2 now; LPG and SEC's cues next)
say which ``train.method`` the network must come from (``needs_model``) and receive it as a
``TrainedModel`` through ``attach_model``: the CLI loads it from the run directory, so this
package never imports the engine or the methods (DESIGN: generators that need a trained model).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # annotations only: `weakseg --help` lists the generators without numpy
    import numpy as np

    from weakseg.data.sample import Sample


@dataclass
class TrainedModel:
    """A network trained by `weakseg train`, as a generator receives it.

    ``network``: the torch module (loaded on the CPU by the CLI; the generator moves it to its own
    ``device``); ``method``: the run's ``train.method``; ``run_dir``: where it came from."""

    network: Any
    method: str
    run_dir: str = ""


class Generator(ABC):
    name: ClassVar[str]
    needs_model: ClassVar[str] = ""  # the train.method of the network it needs ("" = none)

    @abstractmethod
    def generate(self, sample: Sample) -> np.ndarray:
        """H x W uint8 label map for one sample."""

    def generate_maps(self, sample: Sample) -> dict[str, np.ndarray]:
        return {"labels": self.generate(sample)}

    def params(self) -> dict:
        return dataclasses.asdict(self) if dataclasses.is_dataclass(self) else {}

    def prepare(self) -> None:
        """Read what the generator needs from disk (LPG: its generator file) before any image
        is labelled, so that a bad file is one clear error, not one failure per image."""
        return None

    def attach_model(self, trained: TrainedModel) -> None:
        """Hand the generator its trained network (only for those with ``needs_model``)."""
        raise TypeError(f"generator {self.name!r} uses no trained network")

    def check_model(self, trained: TrainedModel) -> None:
        """A ValueError unless ``trained`` comes from a run of ``needs_model``."""
        if trained.method != self.needs_model:
            raise ValueError(
                f"{trained.run_dir or 'the network'} was trained with method "
                f"{trained.method!r}; the {self.name} generator needs a {self.needs_model} run"
            )


__all__ = ["Generator", "TrainedModel"]
