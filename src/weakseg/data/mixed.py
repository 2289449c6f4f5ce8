"""Mixed supervision: a few training images keep their pixel masks (PP), the rest only their boxes
(BB), and a sampler that draws a PP image for each batch element with a fixed chance (Neven et al.
section 4.1.1: 25%, "around two pixel-perfect examples" in a batch of 8).

Which images are PP is given one of three ways (exactly one):

    ids_file   a text file, one image id per line ('#' comments and blank lines skipped): the
               images a user has masks for
    fraction   round(fraction * N) ids drawn by ``seed`` (``choose_labelled``,
               the same draw as the ``semi`` baseline, so equal fraction and seed give equal ids)
    count      that many ids, the same draw (the first ``count`` of the seeded permutation)

The sampler's epoch has as many draws as the dataset has images. Each pool (PP, BB) is walked in
seeded random orders, a new order each time it runs out, so within a pool every image comes up
before any repeats; the PP/BB choice of each draw is a coin with chance ``chance``. Everything
follows from (seed, epoch): a resumed run or another worker count sees the same batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from weakseg.data.sampling import SeededDraws

PP_STREAM = 1  # keeps the sampler's RNG stream apart from the augmentation's [seed, epoch, index]


def choose_labelled(ids: list[str], fraction: float, seed: int) -> set[str]:
    """round(fraction * N) ids drawn without replacement by ``seed`` (order of ``ids`` does
    not matter: they are sorted first)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"labelled_fraction must be in (0, 1], got {fraction}")
    ordered = sorted(ids)
    count = round(fraction * len(ordered))
    chosen = np.random.default_rng(seed).permutation(len(ordered))[:count]
    return {ordered[i] for i in chosen}


@dataclass(frozen=True)
class MixedSupervision:
    """Which ids keep their masks and how often a batch element is one of them.

    Attributes:
        fraction, count, ids_file: the PP images (exactly one of them set; see the module).
        seed: seed of the fraction / count draw.
        chance: chance that a batch element is a PP image (0 = the plain shuffled epoch).
    """

    fraction: float = 0.0
    count: int = 0
    ids_file: str = ""
    seed: int = 0
    chance: float = 0.25

    def __post_init__(self) -> None:
        given = [bool(self.fraction), bool(self.count), bool(self.ids_file)]
        if sum(given) != 1:
            raise ValueError(
                "say which images keep their masks with exactly one of labelled_fraction, "
                f"labelled_count, labelled_ids (got fraction={self.fraction}, count="
                f"{self.count}, ids file={self.ids_file!r})"
            )
        if not 0.0 <= self.chance <= 1.0:
            raise ValueError(f"pp_chance must be in [0, 1], got {self.chance}")

    def choose(self, ids: list[str]) -> set[str]:
        """The PP ids among ``ids``."""
        if self.ids_file:
            return read_ids_file(self.ids_file, ids)
        if self.count:
            if not 0 < self.count <= len(ids):
                raise ValueError(f"labelled_count={self.count}: the dataset has {len(ids)} images")
            return choose_labelled(ids, self.count / len(ids), self.seed)
        return choose_labelled(ids, self.fraction, self.seed)

    def sampler(
        self, data: torch.utils.data.Dataset, world_size: int, rank: int, seed: int
    ) -> MixedSupervisionSampler:
        """The sampler for a TrainingDataset ``data`` whose ``labelled`` set this chose."""
        flags = [i in data.labelled for i in data.dataset.ids]
        return MixedSupervisionSampler(flags, self.chance, world_size, rank, seed)


def read_ids_file(path: str | Path, ids: list[str]) -> set[str]:
    """The ids listed in ``path`` (one per line); ids not in the dataset are an error."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"labelled_ids: {path} does not exist")
    lines = (ln.split("#", 1)[0].strip() for ln in path.read_text().splitlines())
    listed = {ln for ln in lines if ln}
    unknown = sorted(listed - set(ids))
    if unknown:
        raise ValueError(f"{path} lists {len(unknown)} id(s) not in the dataset: {unknown[:5]}")
    if not listed:
        raise ValueError(f"{path} lists no ids")
    return listed


class MixedSupervisionSampler(SeededDraws):
    """Dataset indices: each draw a PP index with chance ``chance``, else a BB index; sharded by
    rank like DistributedSampler (rank r takes draws r, r + n, ...); ``start`` skips that many of
    this rank's draws (a resumed run continues mid-epoch). Same interface as
    ``weakseg.data.training.ResumableSampler`` (num_samples, set_epoch, start)."""

    def __init__(self, labelled: list[bool], chance: float, world_size: int = 1, rank: int = 0,
                 seed: int = 0) -> None:  # fmt: skip
        self.pp = np.flatnonzero(np.asarray(labelled, dtype=bool))
        self.bb = np.flatnonzero(~np.asarray(labelled, dtype=bool))
        if len(self.pp) == 0 and chance > 0:
            raise ValueError("no image keeps its mask, so none can be drawn as pixel-perfect")
        # With one pool empty, every draw comes from the other.
        self.chance = 1.0 if len(self.bb) == 0 else (0.0 if len(self.pp) == 0 else chance)
        self.world_size, self.rank, self.seed = world_size, rank, seed
        self.num_samples = math.ceil(len(labelled) / world_size)
        self.epoch, self.start = 0, 0

    def draws(self) -> np.ndarray:
        """All ranks' draws of this epoch (num_samples x world_size indices)."""
        rng = np.random.default_rng([self.seed, self.epoch, PP_STREAM])
        total = self.num_samples * self.world_size
        is_pp = rng.random(total) < self.chance
        out = np.empty(total, dtype=np.int64)
        out[is_pp] = _walk(rng, self.pp, int(is_pp.sum()))
        out[~is_pp] = _walk(rng, self.bb, int((~is_pp).sum()))
        return out


def _walk(rng: np.random.Generator, pool: np.ndarray, count: int) -> np.ndarray:
    """``count`` items of ``pool``: consecutive random permutations of it, cut to length."""
    if count == 0:
        return np.empty(0, dtype=np.int64)
    rounds = -(-count // len(pool))
    return np.concatenate([rng.permutation(pool) for _ in range(rounds)])[:count]


__all__ = ["MixedSupervision", "MixedSupervisionSampler", "read_ids_file"]
