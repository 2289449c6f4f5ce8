"""Test-time inference: single scale, multi-scale + flip, optional dense-CRF post-processing.

Every method predicts the same way at test time: only the segmentation output is used
(``Segmenter.predict``), so evaluation, `weakseg predict` and the exported model agree.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from weakseg.crf import CrfParams, dense_crf
from weakseg.data.dataset import DataError, Dataset, SkippedSamples
from weakseg.engine.evaluate import ConfusionMatrix
from weakseg.progress import progress_bar

PAD_MULTIPLE = 32  # the encoders' largest stride: inputs are padded to a multiple of it


def _logits(model: torch.nn.Module, image: torch.Tensor) -> torch.Tensor:
    """1 x 3 x H x W in [0, 1] -> 1 x C x H x W logits; pads bottom/right, then crops back."""
    height, width = image.shape[-2:]
    pad_h, pad_w = -height % PAD_MULTIPLE, -width % PAD_MULTIPLE
    padded = F.pad(image, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else image
    return model.predict(padded)[..., :height, :width]


@torch.no_grad()
def predict_probs(
    model: torch.nn.Module,
    image: np.ndarray,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    warp: int = 0,
) -> np.ndarray:
    """H x W x 3 uint8 RGB -> C x H x W class probabilities, the softmax averaged over scales and
    (if ``flip``) horizontal flips, each resized back to the original size.

    ``warp`` > 0: SEC's test protocol (REFERENCE_NOTES, deploy code): the image is first resized
    to ``warp`` x ``warp`` as in training (``data.warp``; aspect ratio not kept), and the averaged
    probabilities are bilinearly resized back to H x W."""
    if warp > 0:
        height, width = image.shape[:2]
        square = cv2.resize(np.asarray(image, np.uint8), (warp, warp),
                            interpolation=cv2.INTER_LINEAR)  # fmt: skip
        probs = torch.from_numpy(predict_probs(model, square, scales, flip))[None]
        probs = F.interpolate(probs, size=(height, width), mode="bilinear", align_corners=False)
        return probs[0].numpy()
    device = next(model.parameters()).device
    x = torch.from_numpy(np.array(image, dtype=np.uint8)).to(device)  # a writable copy
    x = x.permute(2, 0, 1)[None].float().div_(255.0)
    height, width = image.shape[:2]
    total = None
    for scale in scales:
        size = (max(round(height * scale), 1), max(round(width * scale), 1))
        xs = F.interpolate(x, size=size, mode="bilinear", align_corners=False) if scale != 1 else x
        for flipped in (False, True) if flip else (False,):
            inp = xs.flip(-1) if flipped else xs
            logits = _logits(model, inp).float()
            if flipped:
                logits = logits.flip(-1)
            logits = F.interpolate(logits, size=(height, width), mode="bilinear",
                                   align_corners=False)  # fmt: skip
            probs = logits.softmax(1)
            total = probs if total is None else total + probs
    return (total / total.sum(1, keepdim=True))[0].cpu().numpy()


def predict_labels(
    model: torch.nn.Module,
    image: np.ndarray,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    crf: CrfParams | None = None,
    warp: int = 0,
) -> np.ndarray:
    """H x W x 3 uint8 -> H x W uint8 label map; dense CRF on the probabilities when ``crf``
    (at the image's full size, also with ``warp``)."""
    probs = predict_probs(model, image, scales, flip, warp)
    if crf is not None:
        probs = dense_crf(image, probs, crf)
    return probs.argmax(0).astype(np.uint8)


def evaluate_model(
    model: torch.nn.Module,
    dataset: Dataset,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    crf: CrfParams | None = None,
    progress: bool = True,
    ids: Sequence[str] | None = None,
    skipped: SkippedSamples | None = None,
    warp: int = 0,
) -> ConfusionMatrix:
    """Confusion matrix of the model's predictions over the dataset, scored at each image's own
    size (``warp``: the network sees it resized to ``warp`` x ``warp``, see ``predict_probs``).

    Samples with bad input are left out and recorded in ``skipped`` (a warning lists them when
    no ``skipped`` is given); DataError when no sample could be scored because of them.
    """
    model.eval()
    cm = ConfusionMatrix(len(dataset.classes))
    ids = list(ids if ids is not None else dataset.ids)
    bad = skipped if skipped is not None else SkippedSamples()
    scored = 0
    for sample_id in progress_bar(ids, desc="eval", unit="img", enabled=progress):
        sample = bad.load(dataset, sample_id)
        if sample is None or sample.mask is None:
            continue
        cm.update(predict_labels(model, sample.image, scales, flip, crf, warp), sample.mask)
        scored += 1
    if bad and not scored:
        raise DataError(dataset.spec, "no usable sample; " + bad.describe(len(ids)))
    if bad and skipped is None:
        warnings.warn(bad.describe(len(ids)), stacklevel=2)
    return cm
