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


class NetworkGenerator(Generator):
    """A generator that labels with a trained network (BANA's stage 2, SEC's cues): it holds
    the ``TrainedModel`` handed to :meth:`attach_model` and moves its network to the
    subclass's ``device`` field at first use (in each worker). Subclasses are dataclasses with
    ``run_dir`` and ``device`` fields."""

    _trained: TrainedModel | None = None  # set by attach_model; not a dataclass field
    _network: Any = None

    @classmethod
    def for_model(cls, model: Any, **params) -> NetworkGenerator:
        """A generator around a network already in memory (e.g. for pictures), with ``params``
        as for ``weakseg labels`` (run_dir is then only a name); it runs on the model's device
        unless ``device`` says otherwise."""
        params.setdefault("device", str(next(model.parameters()).device))
        gen = cls(run_dir=params.pop("run_dir", "(in memory)"), **params)
        gen.attach_model(TrainedModel(model, cls.needs_model, gen.run_dir))
        return gen

    def attach_model(self, trained: TrainedModel) -> None:
        self.check_model(trained)
        self._trained, self._network = trained, None

    def model(self) -> Any:
        """The trained network on ``device``, in eval mode."""
        if self._trained is None:
            raise ValueError(
                f"generator {self.name!r} has no network: `weakseg labels` loads it from "
                f"run_dir; in Python use {type(self).__name__}.for_model(model)"
            )
        if self._network is None:
            self._network = self._trained.network.to(self.device).eval()
        return self._network


__all__ = ["Generator", "NetworkGenerator", "TrainedModel"]
