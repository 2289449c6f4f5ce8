"""The training dataset: samples of a weakseg Dataset, with the target a method trains on,
augmented reproducibly.

The target (H x W, 255 = ignore) comes from the method's ``label_source``:

    "gt"      the ground-truth mask (full supervision, the upper bound)
    "box"     the box label map, the argmax form of Box2Seg's box tensor B (smaller box on top)
    "pseudo"  the label map in ``labels/<id>.png`` made by ``weakseg labels`` (Box2Seg's M)
    "semi"    ground truth for a fixed fraction of the ids (chosen by ``labelled_seed``),
              pseudo labels for the rest (Box2Seg Table 5 / BANA Table 4 protocol)
    "mixed"   ground truth for the ids ``mixed`` chooses (weakseg.data.mixed), the box label
              map for the rest (label uncertainty's PP / BB images)
    "tags"    nothing (all 255): the method trains on the image-level tags alone
    "cues"    the label maps in ``labels/<id>.png`` (SEC's localization cues, 255 = no cue)

The two tag-only sources never read a sample's boxes, box flags or mask: items carry no boxes.
Every item carries the image-level tags as "image_labels", a multi-hot vector over the classes
(index 0, the background, is always False).

Every item says whether its target is ground truth of a "semi" / "mixed" choice ("labelled").

Item ``index`` of epoch ``e`` is augmented with ``np.random.default_rng([seed, e, index])``, so a
batch does not depend on the number of loader workers and a resumed run replays exactly.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from weakseg.data.boxes import box_label_map
from weakseg.data.classes import ClassList
from weakseg.data.dataset import DataError, Dataset
from weakseg.data.mixed import MixedSupervision, choose_labelled
from weakseg.data.sample import IGNORE, Sample
from weakseg.data.sampling import RepeatFactorSampler, repeat_factors
from weakseg.data.transforms import TrainTransform
from weakseg.pseudo.store import LabelStore

LABEL_SOURCES = ("gt", "box", "pseudo", "semi", "mixed", "tags", "cues")
TAG_ONLY = ("tags", "cues")  # label sources that read no box and no mask
MAX_LISTED = 5


class TrainingDataset(torch.utils.data.Dataset):
    """Map-style dataset of dicts (see :meth:`__getitem__`) over ``dataset``.

    Args:
        dataset: any weakseg Dataset.
        label_source: one of LABEL_SOURCES (see the module docstring).
        transform: the random training transform.
        seed: with the epoch and the index, seeds each item's augmentation.
        labels_dir: pseudo-label directory ("pseudo", "semi").
        labelled_fraction: "semi": fraction of ids trained on their ground truth.
        labelled_seed: "semi": seed of the choice of those ids (independent of ``seed``, so
            runs with different training seeds see the same labelled images).
        drop_difficult: leave out boxes flagged difficult.
        extra_maps: names of extra label maps of the pseudo-label store (e.g. BANA's "ret"),
            augmented with the target and returned as "target_<name>".
        mixed: which ids keep their masks ("mixed"; for "semi" it replaces the fraction) and
            the PP sampling chance of the loader.
    """

    def __init__(
        self,
        dataset: Dataset,
        label_source: str,
        transform: TrainTransform,
        seed: int = 0,
        labels_dir: str | Path = "",
        labelled_fraction: float = 0.0,
        labelled_seed: int = 0,
        drop_difficult: bool = False,
        extra_maps: tuple[str, ...] = (),
        mixed: MixedSupervision | None = None,
    ) -> None:
        if label_source not in LABEL_SOURCES:
            raise ValueError(f"unknown label source {label_source!r}; use {LABEL_SOURCES}")
        self.dataset, self.label_source, self.transform = dataset, label_source, transform
        self.seed, self.epoch, self.drop_difficult = seed, 0, drop_difficult
        self.extra_maps = tuple(extra_maps)
        if self.extra_maps and label_source != "pseudo":
            raise ValueError("extra label maps need label_source 'pseudo'")
        self.labelled: set[str] = set()
        self.mixed = mixed
        if label_source == "mixed" and mixed is None:
            raise ValueError("label source 'mixed' needs a MixedSupervision (which ids are PP)")
        if mixed is not None:
            self.labelled = mixed.choose(dataset.ids)
        elif label_source == "semi":
            self.labelled = choose_labelled(dataset.ids, labelled_fraction, labelled_seed)
        self.store = LabelStore(labels_dir) if label_source in ("pseudo", "semi", "cues") else None
        if self.store is not None:
            check_pseudo_labels(
                self.store, [i for i in dataset.ids if i not in self.labelled], dataset.spec
            )

    @property
    def classes(self) -> ClassList:
        return self.dataset.classes

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        """Called before each epoch's loader iterator is made (workers copy the dataset then)."""
        self.epoch = epoch

    def image_classes(self) -> list[tuple[int, ...]]:
        """The class indices in each image (its image-level labels), by index: remembered by a
        UsableSubset, else read."""
        known = getattr(self.dataset, "image_labels", None)
        if known is not None:
            return [known[i] for i in self.dataset.ids]
        return [tuple(int(c) for c in sample.image_labels) for sample in self.dataset]

    def describe(self) -> str:
        """One line: how many images and where their targets come from."""
        n = len(self)
        if self.label_source == "mixed":
            return (f"{len(self.labelled)} of {n} images trained on their masks (PP), "
                    f"{n - len(self.labelled)} on their boxes (BB)")  # fmt: skip
        if self.label_source == "semi":
            return (
                f"{len(self.labelled)} of {n} images trained on ground truth, "
                f"{n - len(self.labelled)} on pseudo labels from {self.store.root}"
            )
        where = f" from {self.store.root}" if self.store is not None else ""
        return f"{n} images, targets: {self.label_source}{where}"

    def __getitem__(self, index: int) -> dict:
        """{"image": 3 x S x S float in [0, 1], "target": S x S int64 (255 = ignore),
        "boxes": K x 4 float32 (crop pixels, not clipped to it), "box_labels": K int64,
        "valid": S x S bool (False on the crop's padding), "id": str}"""
        sample = self.dataset[index]
        if self.label_source in TAG_ONLY:  # not even read: tag-only training uses none
            boxes, box_labels = np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
        else:
            boxes, box_labels = sample.boxes, sample.box_labels
        if self.drop_difficult and self.label_source not in TAG_ONLY:
            boxes, box_labels = boxes[~sample.difficult], box_labels[~sample.difficult]
        target = self.target(sample, boxes, box_labels)
        if self.extra_maps:
            extra = [self.read_extra(sample, name) for name in self.extra_maps]
            target = np.stack([target, *extra], axis=-1)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        crop = self.transform(rng, sample.image, target, boxes, box_labels)
        image = torch.from_numpy(np.ascontiguousarray(crop.image)).permute(2, 0, 1)
        maps = torch.from_numpy(np.ascontiguousarray(crop.target)).long()
        item = {f"target_{name}": maps[..., k + 1] for k, name in enumerate(self.extra_maps)}
        return item | {
            "image": image.float().div_(255.0),
            "target": maps[..., 0] if self.extra_maps else maps,
            "boxes": torch.from_numpy(crop.boxes),
            "box_labels": torch.from_numpy(crop.box_labels),
            "valid": torch.from_numpy(np.ascontiguousarray(crop.valid)),
            "labelled": torch.tensor(sample.id in self.labelled),
            "image_labels": self.tags(sample),
            "id": sample.id,
        }

    def tags(self, sample: Sample) -> torch.Tensor:
        """The image-level tags as a multi-hot bool vector over the classes (background False)."""
        tags = torch.zeros(len(self.classes), dtype=torch.bool)
        labels = torch.as_tensor(sample.image_labels, dtype=torch.long)
        if len(labels) and (labels.min() < 1 or labels.max() >= len(self.classes)):
            raise DataError(sample.source, f"{sample.id}: image labels {labels.tolist()} outside "
                            f"1..{len(self.classes) - 1}")  # fmt: skip
        tags[labels] = True
        return tags

    def read_extra(self, sample: Sample, name: str) -> np.ndarray:
        """Extra label map ``name`` of ``sample`` (e.g. BANA's Y_ret), checked like the target."""
        path = self.store.path(sample.id, name)
        if not path.exists():
            raise FileNotFoundError(
                f"no {name!r} map for {sample.id} in {self.store.root} ({path}); the generator "
                "that made these labels does not write it"
            )
        label = self.store.read(sample.id, name)
        if label.shape != (sample.height, sample.width):
            raise DataError(str(path), f"{name} map is {label.shape[::-1]} (WxH) but image "
                            f"{sample.id} is {sample.width}x{sample.height}")  # fmt: skip
        return label

    def target(self, sample: Sample, boxes: np.ndarray, box_labels: np.ndarray) -> np.ndarray:
        """H x W uint8 training target of one sample at its original size."""
        source = self.label_source
        if source in ("semi", "mixed"):
            unlabelled = "pseudo" if source == "semi" else "box"
            source = "gt" if sample.id in self.labelled else unlabelled
        if source == "box":
            return box_label_map(boxes, box_labels, sample.height, sample.width)
        if source == "tags":
            return np.full((sample.height, sample.width), IGNORE, dtype=np.uint8)
        if source == "gt":
            if sample.mask is None:
                raise DataError(
                    sample.source,
                    f"{sample.id} has no ground-truth mask, which "
                    "label source 'gt' (full supervision) needs",
                    "no mask",
                )
            return sample.mask
        return read_pseudo_label(self.store, sample, self.dataset.spec)


def read_pseudo_label(store: LabelStore, sample: Sample, spec: str) -> np.ndarray:
    path = store.path(sample.id)
    if not path.exists():
        raise FileNotFoundError(_missing_message(store, [sample.id], spec))
    label = store.read(sample.id)
    if label.shape != (sample.height, sample.width):
        raise DataError(
            str(path),
            f"pseudo label is {label.shape[1]}x{label.shape[0]} (WxH) "
            f"but image {sample.id} is {sample.width}x{sample.height}",
        )
    return label


def check_pseudo_labels(store: LabelStore, ids: list[str], spec: str) -> None:
    """Fail before training starts if any of ``ids`` has no label map in ``store``."""
    if not str(store.root) or str(store.root) == ".":
        raise ValueError(
            "this method trains on pseudo labels: set data.labels to the directory "
            "written by `weakseg labels --out DIR`"
        )
    done = store.done_ids()
    missing = [i for i in ids if i not in done]
    if missing:
        raise FileNotFoundError(_missing_message(store, missing, spec))


def _missing_message(store: LabelStore, missing: list[str], spec: str) -> str:
    shown = ", ".join(missing[:MAX_LISTED]) + (", ..." if len(missing) > MAX_LISTED else "")
    return (
        f"no pseudo label for {len(missing)} image(s) ({shown}) in {store.root}; make them with "
        f"`weakseg labels --dataset {spec} --generator grabcut --out {store.root}` "
        "(or another --generator), which resumes where it stopped"
    )


def collate_training(items: list[dict]) -> dict:
    """Stack images, targets and valid masks (B x 3 x S x S, B x S x S, B x S x S), the
    "labelled" flags (B) and the tags "image_labels" (B x (L+1) bool); boxes stay lists (K
    varies); cached encoder maps ("features", {level: C x h x w fp16}) become {level: B x C x
    h x w float32}."""
    features = {}
    if "features" in items[0]:
        features["features"] = {
            lvl: torch.stack([it["features"][lvl] for it in items]).float()
            for lvl in items[0]["features"]
        }
    return features | {
        "image": torch.stack([it["image"] for it in items]),
        "target": torch.stack([it["target"] for it in items]),
        "valid": torch.stack([it["valid"] for it in items]),
        "labelled": torch.stack([it["labelled"] for it in items]),
        "image_labels": torch.stack([it["image_labels"] for it in items]),
        **{k: torch.stack([it[k] for it in items]) for k in items[0] if k.startswith("target_")},
        "boxes": [it["boxes"] for it in items],
        "box_labels": [it["box_labels"] for it in items],
        "id": [it["id"] for it in items],
    }


def subsample_batch(batch: dict, stride: int) -> dict:
    """The batch as if its crops were ``stride`` times smaller: every map ("image", "target",
    "target_*", "valid") keeps the pixel at the centre of each stride x stride cell, and boxes
    are divided by ``stride``. Losses computed on it cost stride^2 less (``train.loss_stride``;
    DeepLab's original code also shrinks the labels to the output instead of upsampling the
    scores). Other entries (cached "features", "id", labels) are unchanged."""
    if stride == 1:
        return batch
    first, out = stride // 2, dict(batch)
    for key, value in batch.items():
        if key in ("image", "target", "valid") or key.startswith("target_"):
            out[key] = value[..., first::stride, first::stride]
    out["boxes"] = [b / stride for b in batch["boxes"]]
    return out


class ResumableSampler(torch.utils.data.DistributedSampler):
    """DistributedSampler (order from seed + epoch, this rank's share, padded to equal shares)
    that can begin ``start`` samples into an epoch, so a resumed run continues mid-epoch.
    With one process it is a seeded shuffle."""

    def __init__(self, dataset: TrainingDataset, world_size: int, rank: int, seed: int) -> None:
        super().__init__(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
        self.start = 0

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(super().__iter__(), self.start, None)

    def __len__(self) -> int:
        return self.num_samples - self.start


def training_loader(
    data: TrainingDataset,
    batch_size: int,
    workers: int,
    world_size: int = 1,
    rank: int = 0,
    pin_memory: bool = False,
    sampling: str = "uniform",
    repeat_threshold: float = 0.1,
) -> torch.utils.data.DataLoader:
    """Shuffled (by ``data.seed`` and the epoch), sharded by rank, full batches only; with a
    MixedSupervision PP chance, drawn by its sampler instead; with ``sampling="repeat_factor"``,
    images of rare classes drawn more often (weakseg.data.sampling). ``data`` may also be a
    feature cache's CachedViews around a TrainingDataset. Iterate it through
    :func:`epoch_iterator`."""
    base = getattr(data, "data", data)  # the TrainingDataset inside a CachedViews
    mixed = getattr(base, "mixed", None)
    if mixed is not None and mixed.chance > 0:
        if sampling != "uniform":
            raise ValueError("data.sampling=repeat_factor cannot be combined with a PP chance")
        sampler = mixed.sampler(base, world_size, rank, data.seed)
    elif sampling == "repeat_factor":
        factors = repeat_factors(base.image_classes(), repeat_threshold)
        sampler = RepeatFactorSampler(factors, world_size, rank, data.seed)
    else:
        sampler = ResumableSampler(data, world_size, rank, data.seed)
    return torch.utils.data.DataLoader(
        data,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_training,
        drop_last=True,
        pin_memory=pin_memory,
        # Its own generator: making an iterator must not draw from the global torch RNG.
        generator=torch.Generator(),
    )


def epoch_iterator(loader: torch.utils.data.DataLoader, epoch: int, skip: int = 0) -> Iterator:
    """Batches of ``epoch`` from a :func:`training_loader`, starting ``skip`` samples in."""
    loader.sampler.set_epoch(epoch)
    loader.sampler.start = skip
    loader.dataset.set_epoch(epoch)  # before iter(): worker processes copy the dataset then
    seed = np.random.SeedSequence([loader.dataset.seed, epoch]).generate_state(1)[0]
    loader.generator.manual_seed(int(seed))  # worker seeds: a function of (seed, epoch) too
    return iter(loader)


__all__ = [
    "LABEL_SOURCES",
    "ResumableSampler",
    "epoch_iterator",
    "training_loader",
    "TrainingDataset",
    "check_pseudo_labels",
    "choose_labelled",
    "collate_training",
    "read_pseudo_label",
    "subsample_batch",
]
