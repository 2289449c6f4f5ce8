"""Class-balanced image sampling: repeat-factor sampling (Gupta et al., LVIS, CVPR 2019, Sec. 4).

A small training set leaves its rare classes with a handful of images (in voc-dev's dev_train,
cow is in 11 of 689 images, person in 274), and a short run learns them or does not: they are
what moves a row between seeds. Repeat-factor sampling draws images that contain rare classes
more often. With f_c the fraction of training images that contain class c and t a threshold,

    r_c = max(1, sqrt(t / f_c)),    r_i = max over the classes c in image i of r_c,

so a class in fewer than a fraction t of the images is oversampled (by sqrt(t / f_c)) and the
others are left alone. LVIS repeats image i floor(r_i) times plus once more with chance
frac(r_i), which makes the epoch length vary; here each epoch draws a fixed number of images (the
dataset's size, so an "epoch" stays the same number of steps) with replacement, with
probabilities proportional to r_i. ``data.sampling=repeat_factor`` with ``data.repeat_threshold``
= t turns it on; the classes of an image are its image-level labels (its box classes), so every
label source (masks, boxes, pseudo labels, tags) balances the same way. Background is in every
image and is not counted.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

import numpy as np
import torch

SAMPLING = ("uniform", "repeat_factor")
STREAM = 0x52465300  # separates these draws from other seeded streams of the same epoch


def repeat_factors(image_classes: Sequence[Sequence[int]], threshold: float) -> np.ndarray:
    """r_i = max(1, max_{c in image i} sqrt(t / f_c)) (LVIS Sec. 4) for each image, where f_c
    is the fraction of the images containing class c. Images without classes get 1."""
    if threshold <= 0:
        raise ValueError(f"data.repeat_threshold must be > 0, got {threshold}")
    n = len(image_classes)
    counts: dict[int, int] = {}
    for classes in image_classes:
        for c in set(classes):
            counts[c] = counts.get(c, 0) + 1
    per_class = {c: max(1.0, math.sqrt(threshold / (k / n))) for c, k in counts.items()}
    return np.array([max([per_class[c] for c in set(cls)], default=1.0) for cls in image_classes])


class SeededDraws(torch.utils.data.Sampler[int], ABC):
    """A sampler whose epoch is ``draws()``: ``num_samples x world_size`` indices made from
    (seed, epoch) alone; rank r takes draws r, r + n, ...; ``start`` skips that many of this
    rank's draws (a resumed run continues mid-epoch). Same interface as
    ``weakseg.data.training.ResumableSampler`` (num_samples, set_epoch, start). Subclasses set
    ``num_samples``, ``world_size``, ``rank``, ``seed`` and implement ``draws``."""

    num_samples: int
    world_size: int
    rank: int
    seed: int
    epoch: int = 0
    start: int = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @abstractmethod
    def draws(self) -> np.ndarray:
        """All ranks' draws of this epoch."""

    def __iter__(self) -> Iterator[int]:
        mine = self.draws()[self.rank :: self.world_size][self.start :]
        return iter(mine.tolist())

    def __len__(self) -> int:
        return self.num_samples - self.start


class RepeatFactorSampler(SeededDraws):
    """Each epoch, ``num_samples x world_size`` indices drawn with replacement with chance
    proportional to ``factors``, from (seed, epoch); sharded and resumable (SeededDraws)."""

    def __init__(self, factors: np.ndarray, world_size: int = 1, rank: int = 0,
                 seed: int = 0) -> None:  # fmt: skip
        factors = np.asarray(factors, dtype=np.float64)
        if len(factors) == 0 or (factors <= 0).any():
            raise ValueError("repeat factors must be positive, one per image")
        self.chances = factors / factors.sum()
        self.world_size, self.rank, self.seed = world_size, rank, seed
        self.num_samples = math.ceil(len(factors) / world_size)
        self.epoch, self.start = 0, 0

    def draws(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch, STREAM])
        return rng.choice(len(self.chances), self.num_samples * self.world_size, p=self.chances)


__all__ = ["SAMPLING", "RepeatFactorSampler", "SeededDraws", "repeat_factors"]
