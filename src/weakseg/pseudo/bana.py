"""BANA stage 2 (papers/bana.md section 3.2): pseudo labels Y_crf and Y_ret from a classifier
trained with background-aware pooling (``train.method: bana-classifier``).

For one image and its boxes, with f and the score maps w . f of the stage-1 network, as the
authors' stage2.py does it (REFERENCE_NOTES, BANA):

    u_0   = 1 outside the boxes; inside, A with grid N = 1 (Eq. 2-3, 7), zeroed where
            A < 0.99 max A, the maximum over the whole image (a relative threshold)
    u_c   = CAM_c / max CAM_c in each box of class c, 0 outside the class's boxes (Eq. 5-6)
    Y_crf = dense CRF on [u_0, u_c ...] taken to the image: a softmax over the classes inside the
            boxes, [1, 0, ..., 0] outside them; then a class only inside its own boxes
    Y_ret = argmax_c of ReLU(cos(f, q_c)) (Eq. 8-9), q_c the mean feature of Y_crf's class c, or
            the classifier weight W_c when Y_crf has no pixel of c; each class's score zeroed
            outside its own boxes, the background's set to 1 outside every box

``weakseg labels --generator bana run_dir=RUN`` writes Y_crf as the label maps and Y_ret as the
extra map "ret" (``DIR/ret/<id>.png``); the region where they disagree (stage 3's ~S) is where the
two files differ. Works on images the classifier never saw: only the boxes are needed.

Options for the readings compared in the README (the defaults are the code's): ``bg_threshold``
(0 = u_0 = A), ``bg_threshold_peak: boxes`` (max A inside the boxes), ``softmax_region: image``
(softmax at every pixel), ``retrieval: paper`` (plain Eq. 8-9 arg max, a zero prototype for an
empty class), ``per_box: false`` (Eq. 5's one maximum per class), ``background: cam`` (the
background CAM for u_0: Table 1's 'Y_crf w/o u_0'). Those three first options give weakseg's
stage 2 before issue 13. One difference from the code stays: it upsamples f to the image before
everything; here, as the paper's footnote 3 says, u_0, u_c and the correlations are computed on
f's grid and upsampled bilinearly to the image (cheaper on a CPU).

The network comes from the CLI as a ``TrainedModel`` (``attach_model``), or from a caller that
holds one (``for_model``); this module never loads a run itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from weakseg.crf import CrfParams, dense_crf
from weakseg.data.boxes import class_box_masks
from weakseg.data.sample import Sample
from weakseg.losses import bana as B
from weakseg.pseudo.base import NetworkGenerator

CHOICES = {
    "background": ("attention", "cam"),
    "bg_threshold_peak": ("image", "boxes"),
    "softmax_region": ("boxes", "image"),
    "retrieval": ("code", "paper"),
}


@dataclass
class BanaGenerator(CrfParams, NetworkGenerator):
    name: ClassVar[str] = "bana"
    needs_model: ClassVar[str] = "bana-classifier"
    run_dir: str = ""  # a finished `weakseg train` run of method bana-classifier
    grid: int = 1  # N for u_0 (paper 4.1: 1 when generating)
    bg_threshold: float = 0.99  # relative threshold on A inside boxes (0 = keep A)
    bg_threshold_peak: str = "image"  # max A over the image (code) or "boxes" (inside them)
    background: str = "attention"  # u_0 = A, or "cam": the background CAM (w/o u_0)
    per_box: bool = True  # normalise each box's CAM by its own max (code) or per class (paper)
    softmax_region: str = "boxes"  # softmax inside the boxes, [1, 0...] outside (code); "image"
    retrieval: str = "code"  # Y_ret as the code (ReLU, own boxes, W_c fallback) or "paper"
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not self.run_dir:
            raise ValueError(
                "generator 'bana' needs run_dir=RUN, a stage-1 run trained with "
                "`weakseg train configs/voc_bana_classifier.yaml --run-dir RUN`"
            )
        for key, allowed in CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key} must be one of {allowed}, got {getattr(self, key)!r}")

    def generate(self, sample: Sample) -> np.ndarray:
        return self.generate_maps(sample)["labels"]

    @torch.inference_mode()
    def features(self, image: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, int]:
        """(f: C x h x w, scores w . f: (L+1) x h x w, stride) for one H x W x 3 image, on the
        CPU whatever the model's device (the unaries, CRF and retrieval run there)."""
        model = self.model()
        device = next(model.parameters()).device
        x = torch.from_numpy(np.array(image, dtype=np.uint8)).to(device)
        out = model(x.permute(2, 0, 1)[None].float().div_(255.0))
        return out["features"][0].float().cpu(), out["cam"][0].float().cpu(), model.output_stride

    def class_weights(self) -> torch.Tensor:
        """The stage-1 classifier's weights W, (L+1) x C on the CPU (Y_ret's fallback)."""
        return self.model().classifier.weight.detach().flatten(1).float().cpu()

    def unaries(self, sample: Sample, f, scores, stride: int) -> tuple[np.ndarray, torch.Tensor]:
        """(the classes present, K x h x w unaries [u_0, u_c ...] on f's grid)."""
        h, w = f.shape[1:]
        boxes = torch.as_tensor(sample.boxes, dtype=torch.float32)
        masks = B.feature_boxes(boxes, stride, h, w)
        in_boxes = torch.stack(masks).any(dim=0)
        if self.background == "attention":
            queries, _ = B.background_queries(f, ~in_boxes, self.grid)
            everywhere = torch.ones_like(in_boxes)  # A at every cell: the threshold's peak
            a = B.background_attention(f, queries, everywhere)
            u0 = B.background_unary(a, in_boxes, self.bg_threshold, self.bg_threshold_peak)
        else:
            cam0 = B.cam(scores[0])
            u0 = torch.where(in_boxes, cam0 / cam0.max().clamp(min=B.EPS), torch.ones_like(cam0))
        classes = np.unique(sample.box_labels)
        units = [u0]
        for c in classes:
            class_masks = [m for m, k in zip(masks, sample.box_labels, strict=True) if k == c]
            units.append(B.class_unary(B.cam(scores[int(c)]), class_masks, self.per_box))
        return classes, torch.stack(units)

    @staticmethod
    def allowed_masks(sample: Sample, classes: np.ndarray) -> np.ndarray:
        """K x H x W bool: background everywhere, each class present only inside its boxes."""
        by_class = class_box_masks(sample.boxes, sample.box_labels, sample.height, sample.width)
        allowed = np.ones((1 + len(classes), sample.height, sample.width), dtype=bool)
        for i, c in enumerate(classes, start=1):
            allowed[i] = by_class[int(c)]
        return allowed

    def crf_input(self, units: torch.Tensor, stride: int, allowed: np.ndarray) -> np.ndarray:
        """K x H x W probabilities for the CRF: the unaries upsampled to the image, a softmax over
        K inside the boxes and [1, 0, ..., 0] outside them (``softmax_region: boxes``, the code),
        or a softmax at every pixel (``image``)."""
        up = to_image(units, stride, *allowed.shape[1:])
        if self.softmax_region == "image":
            return torch.softmax(up, dim=0).numpy()
        inside = torch.from_numpy(allowed[1:].any(axis=0))
        probs = torch.zeros_like(up)
        probs[0] = 1.0
        probs[:, inside] = torch.softmax(up[:, inside], dim=0)
        return probs.numpy()

    def generate_maps(self, sample: Sample) -> dict[str, np.ndarray]:
        height, width = sample.height, sample.width
        if len(sample.boxes) == 0:
            empty = np.zeros((height, width), dtype=np.uint8)
            return {"labels": empty, "ret": empty.copy()}
        f, scores, stride = self.features(sample.image)
        classes, units = self.unaries(sample, f, scores, stride)
        lut = np.concatenate([[0], classes]).astype(np.uint8)
        allowed = self.allowed_masks(sample, classes)
        marginals = dense_crf(sample.image, self.crf_input(units, stride, allowed),
                              self.crf_params())  # fmt: skip
        y_crf_index = np.where(allowed, marginals, -1.0).argmax(0)
        y_ret_index = self.retrieve(f, y_crf_index, lut, stride, allowed)
        return {"labels": lut[y_crf_index], "ret": lut[y_ret_index]}

    def retrieve(self, f, y_crf_index: np.ndarray, lut: np.ndarray, stride: int, allowed):
        """Y_ret (Eq. 8-9) as indices into ``lut`` = [0, classes ...]: prototypes from Y_crf
        taken to f's grid (nearest, at each cell's centre), correlations upsampled bilinearly to
        the image, then the code's ReLU / box rule and W_c fallback (``retrieval: code``) or the
        plain arg max (``paper``)."""
        h, w = f.shape[1:]
        height, width = y_crf_index.shape
        rows = torch.clamp(torch.arange(h) * stride + stride // 2, max=height - 1)
        cols = torch.clamp(torch.arange(w) * stride + stride // 2, max=width - 1)
        on_grid = torch.from_numpy(y_crf_index)[rows][:, cols]
        code = self.retrieval == "code"
        fallback = self.class_weights()[torch.from_numpy(lut).long()] if code else None
        q = B.prototypes(f, on_grid, list(range(len(lut))), fallback)
        corr = to_image(B.correlation(f, q), stride, height, width)
        if code:
            corr = B.retrieval_scores(corr, torch.from_numpy(allowed))
        return corr.argmax(0).numpy()


def to_image(maps: torch.Tensor, stride: int, height: int, width: int) -> torch.Tensor:
    """K x h x w maps on f's grid -> K x H x W at the image's size (bilinear, x stride)."""
    up = F.interpolate(maps[None], scale_factor=float(stride), mode="bilinear",
                       align_corners=False)  # fmt: skip
    return up[0, :, :height, :width]


__all__ = ["BanaGenerator", "to_image"]
