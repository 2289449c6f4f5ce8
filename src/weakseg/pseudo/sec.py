"""SEC's localization cues (papers/sec.md section 4.1, supplement 6.1) from a multi-label
classifier trained on image-level tags (``train.method: sec-classifier``): the ``sec-cues``
generator of ``weakseg labels``. It reads a sample's image and its tags (``image_labels``), never
its boxes or mask.

On the image warped to ``size`` x ``size`` (as SEC trains), at the classifier's output grid:

- foreground cues: for each tagged class c, the cells where CAM_c > ``fg_threshold`` x max CAM_c
  (Zhou et al.'s CAM, the bias-free class weights applied at every cell);
- background cues: the ``bg_share`` least salient cells of a class-independent gradient saliency
  map (Simonyan et al.): the gradient of the sum of the class scores with respect to the encoder
  map ``saliency_depth`` levels before the last (at the output grid), max |grad| over channels,
  a ``median`` x ``median`` median filter; cells below the value at sorted index
  int(bg_share x cells), as the authors' code. By default the map is the encoder's last one,
  the decoder's input (the authors take VGG's conv4_1, also at the 41 x 41 output grid);
- conflicts: a cell claimed by several classes (the background included) goes to the class with
  the smallest cue area (supplement 6.1).

Written as two maps per image: ``<id>.png`` the cue map at the image's size (each output cell
painted as a block, 255 = no cue: what ``weakseg eval-labels`` scores and the "sec" method
trains on, warped with the image), and ``cues/<id>.png`` the cue map at the output grid (the
format of the authors' cue file). One network gives both cues here; the paper uses a second,
plain VGG classifier for the saliency (the README lists the differences).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from weakseg.data.sample import IGNORE, Sample
from weakseg.pseudo.base import NetworkGenerator


def foreground_cues(
    cam: np.ndarray, classes: np.ndarray, threshold: float
) -> dict[int, np.ndarray]:
    """{class c: h x w bool, CAM_c > threshold x max CAM_c} for each tagged class c (1..L);
    ``cam`` is L x h x w (channel c - 1 is class c). A class whose maximum is <= 0 gets none."""
    cues = {}
    for c in (int(c) for c in classes):
        peak = cam[c - 1].max()
        if peak > 0:
            cues[c] = cam[c - 1] > threshold * peak
    return cues


def background_cue(saliency: np.ndarray, share: float) -> np.ndarray:
    """h x w bool: the cells less salient than the value at sorted index int(share x cells)."""
    ordered = np.sort(saliency, axis=None)
    index = min(int(share * saliency.size), saliency.size - 1)
    return saliency < ordered[index]


def median_filter(values: np.ndarray, size: int) -> np.ndarray:
    """``size`` x ``size`` median of an h x w map, edges replicated (size 1: unchanged)."""
    if size <= 1:
        return values
    r = size // 2
    padded = np.pad(values, r, mode="edge")
    h, w = values.shape
    shifted = [padded[i : i + h, j : j + w] for i in range(size) for j in range(size)]
    return np.median(np.stack(shifted), axis=0)


def combine_cues(masks: dict[int, np.ndarray]) -> np.ndarray:
    """Stack the cue masks {class: h x w bool} into one h x w uint8 map (255 = no cue): classes
    are painted from the largest area to the smallest, so in a conflict the class occupying the
    smaller fraction of the image wins (ties: the higher class index wins)."""
    shape = next(iter(masks.values())).shape
    out = np.full(shape, IGNORE, dtype=np.uint8)
    for c in sorted(masks, key=lambda c: (-int(masks[c].sum()), c)):
        out[masks[c]] = c
    return out


def cue_counts(cues: np.ndarray, grid: np.ndarray, mask: np.ndarray | None) -> dict[str, int]:
    """Counts for the cue statistics of one image: cells of the grid map with a cue (background
    / foreground), and, against the ground truth ``mask`` (image size, 255 not scored), the
    pixels of the image-size cue map whose cue is right and the foreground cue pixels that lie
    on ground-truth background."""
    counts = {"cells": int(grid.size), "bg_cells": int((grid == 0).sum()),
              "fg_cells": int(((grid != 0) & (grid != IGNORE)).sum())}  # fmt: skip
    if mask is not None:
        scored, foreground = mask != IGNORE, (cues != 0) & (cues != IGNORE)
        for name, region in (("bg", cues == 0), ("fg", foreground)):
            counts[f"{name}_scored"] = int((region & scored).sum())
            counts[f"{name}_right"] = int((region & scored & (cues == mask)).sum())
        counts["fg_on_bg"] = int((foreground & (mask == 0)).sum())
    return counts


@dataclass
class SecCueGenerator(NetworkGenerator):
    name: ClassVar[str] = "sec-cues"
    needs_model: ClassVar[str] = "sec-classifier"
    run_dir: str = ""  # a finished `weakseg train` run of method sec-classifier
    size: int = 320  # images warped to size x size (the sec config's data.crop_size)
    fg_threshold: float = 0.2  # CAM > fg_threshold x max (paper)
    bg_share: float = 0.1  # the least salient share of cells (paper)
    median: int = 3  # median filter of the saliency (paper: 3 x 3)
    saliency_depth: int = 0  # gradient at the encoder's last map (0) or this many levels before
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not self.run_dir:
            raise ValueError(
                "generator 'sec-cues' needs run_dir=RUN, a classifier trained with "
                "`weakseg train configs/voc_sec_classifier_cpu.yaml --run-dir RUN`"
            )
        if not 0.0 <= self.fg_threshold < 1.0 or not 0.0 < self.bg_share < 1.0:
            raise ValueError("fg_threshold must be in [0, 1) and bg_share in (0, 1)")
        if self.size < 32 or self.median < 1 or self.median % 2 == 0 or self.saliency_depth < 0:
            raise ValueError("size must be >= 32, median odd, saliency_depth >= 0")

    def cam_and_saliency(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(L x h x w CAMs, h x w saliency before filtering) of one H x W x 3 uint8 image,
        warped to ``size``; h x w is the classifier's output grid."""
        model = self.model()
        device = next(model.parameters()).device
        warped = cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        x = torch.from_numpy(warped).to(device).permute(2, 0, 1)[None].float().div_(255.0)
        x = model._pad((x - model.mean) / model.std)
        encoder, levels = model.encoder, len(model.encoder.channels)
        inner_level = levels - 1 - self.saliency_depth
        with torch.no_grad():
            pyramid = list(encoder(x))
        inner = pyramid[inner_level].detach().requires_grad_(True)
        with torch.enable_grad():
            rest = encoder.forward_levels(inner, inner_level + 1, levels)
            cam = model.heads["seg"](model.decoder([*pyramid[:inner_level], inner, *rest]))
            cam.mean(dim=(2, 3)).sum().backward()  # all-ones gradient on the class scores
        h = w = -(-self.size // model.output_stride)
        saliency = inner.grad.abs().amax(dim=1, keepdim=True)
        if saliency.shape[-2:] != cam.shape[-2:]:
            saliency = F.interpolate(saliency, size=cam.shape[-2:], mode="bilinear")
        cam, saliency = cam.detach()[0, :, :h, :w], saliency[0, 0, :h, :w]
        return cam.float().cpu().numpy(), saliency.float().cpu().numpy()

    def generate_maps(self, sample: Sample) -> dict[str, np.ndarray]:
        cam, saliency = self.cam_and_saliency(sample.image)
        return self.maps_from(cam, saliency, sample)

    def maps_from(
        self,
        cam: np.ndarray,
        saliency: np.ndarray,
        sample: Sample,
        fg_threshold: float | None = None,
    ) -> dict[str, np.ndarray]:
        """The cue maps of ``cam_and_saliency``'s output for ``sample``'s tags: "cues" at the
        output grid, "labels" at the image's size (``fg_threshold``: another foreground
        threshold than the generator's, e.g. to compare thresholds on the same CAMs)."""
        threshold = self.fg_threshold if fg_threshold is None else fg_threshold
        masks = {0: background_cue(median_filter(saliency, self.median), self.bg_share)}
        masks |= foreground_cues(cam, sample.image_labels, threshold)
        grid = combine_cues(masks)
        full = cv2.resize(grid, (sample.width, sample.height), interpolation=cv2.INTER_NEAREST)
        return {"labels": full, "cues": grid}

    def generate(self, sample: Sample) -> np.ndarray:
        return self.generate_maps(sample)["labels"]


__all__ = [
    "SecCueGenerator",
    "background_cue",
    "combine_cues",
    "cue_counts",
    "foreground_cues",
    "median_filter",
]
