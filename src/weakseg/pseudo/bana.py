"""BANA stage 2 (papers/bana.md section 3.2): pseudo labels Y_crf and Y_ret from a classifier
trained with background-aware pooling (``train.method: bana-classifier``).

For one image and its boxes, with f and the score maps w . f of the stage-1 network:

    u_0   = A with grid N = 1 (Eq. 2-3, 7), inside the boxes zeroed where A < 0.99 max A (relative)
    u_c   = CAM_c / max CAM_c inside the boxes of class c, 0 outside them (Eq. 5-6)
    Y_crf = dense CRF on softmax([u_0, u_c ...]) (upsampled to the image), then any class outside
            its own boxes -> background
    Y_ret = argmax_c cos(f, q_c), q_c the mean feature of Y_crf's class c (Eq. 8-9)

``weakseg labels --generator bana run_dir=RUN`` writes Y_crf as the label maps and Y_ret as the
extra map "ret" (``DIR/ret/<id>.png``); the region where they disagree (stage 3's ~S) is where the
two files differ. Works on images the classifier never saw: only the boxes are needed.

Defaults are the authors' (REFERENCE_NOTES): grid 1, relative threshold 0.99, per-box CAM
normalisation, softmax of the stacked unaries before the CRF, CRF [4, 55, 3, 3, 3] x 10.
``background: cam`` replaces u_0 by the normalised background CAM (Table 1 'Y_crf w/o u_0').
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from weakseg.data.boxes import class_box_masks
from weakseg.data.sample import Sample
from weakseg.losses import bana as B
from weakseg.pseudo.base import Generator
from weakseg.pseudo.crf import CrfParams, dense_crf

BACKGROUNDS = ("attention", "cam")


@dataclass
class BanaGenerator(CrfParams, Generator):
    name: ClassVar[str] = "bana"
    run_dir: str = ""  # a finished `weakseg train` run of method bana-classifier
    grid: int = 1  # N for u_0 (paper 4.1: 1 when generating)
    bg_threshold: float = 0.99  # relative threshold on A inside boxes (0 = keep A)
    background: str = "attention"  # u_0 = A, or "cam": the background CAM (w/o u_0)
    per_box: bool = True  # normalise each box's CAM by its own max (code) or per class (paper)
    device: str = "cpu"
    _model: object = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.run_dir:
            raise ValueError(
                "generator 'bana' needs run_dir=RUN, a stage-1 run trained with "
                "`weakseg train configs/voc_bana_classifier.yaml --run-dir RUN`"
            )
        if self.background not in BACKGROUNDS:
            raise ValueError(f"background must be one of {BACKGROUNDS}, got {self.background!r}")

    @classmethod
    def for_model(cls, model: torch.nn.Module, **params) -> BanaGenerator:
        """A generator around a stage-1 classifier already in memory (e.g. for pictures), with
        ``params`` as for ``weakseg labels`` (run_dir is then only a name)."""
        gen = cls(run_dir=params.pop("run_dir", "(in memory)"), **params)
        gen._model = model.eval()
        return gen

    def params(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init}

    def model(self):
        if self._model is None:
            from weakseg.engine.loop import load_trained

            model, cfg = load_trained(self.run_dir, self.device)
            if cfg.train.method != "bana-classifier":
                raise ValueError(
                    f"{self.run_dir} was trained with method {cfg.train.method!r}; the bana "
                    "generator needs a bana-classifier run"
                )
            self._model = model
        return self._model

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

    def unaries(self, sample: Sample, f, scores, stride) -> tuple[np.ndarray, torch.Tensor]:
        """(the classes present, K x h x w unaries [u_0, u_c ...] on f's grid)."""
        from weakseg.methods.bana import feature_boxes

        h, w = f.shape[1:]
        boxes = torch.as_tensor(sample.boxes, dtype=torch.float32)
        masks = feature_boxes(boxes, stride, h, w)
        in_boxes = torch.zeros((h, w), dtype=torch.bool)
        for m in masks:
            in_boxes |= m
        if self.background == "attention":
            queries, _ = B.background_queries(f, ~in_boxes, self.grid)
            u0 = B.background_unary(B.background_attention(f, queries, in_boxes), in_boxes,
                                    self.bg_threshold)  # fmt: skip
        else:
            cam0 = B.cam(scores[0])
            u0 = torch.where(in_boxes, cam0 / cam0.max().clamp(min=B.EPS), torch.ones_like(cam0))
        classes = np.unique(sample.box_labels)
        units = [u0]
        for c in classes:
            class_masks = [m for m, k in zip(masks, sample.box_labels, strict=True) if k == c]
            units.append(B.class_unary(B.cam(scores[int(c)]), class_masks, self.per_box))
        return classes, torch.stack(units)

    def generate_maps(self, sample: Sample) -> dict[str, np.ndarray]:
        height, width = sample.height, sample.width
        if len(sample.boxes) == 0:
            empty = np.zeros((height, width), dtype=np.uint8)
            return {"labels": empty, "ret": empty.copy()}
        f, scores, stride = self.features(sample.image)
        classes, units = self.unaries(sample, f, scores, stride)
        lut = np.concatenate([[0], classes]).astype(np.uint8)
        up = F.interpolate(units[None], scale_factor=float(stride), mode="bilinear",
                           align_corners=False)[0, :, :height, :width]  # fmt: skip
        probs = torch.softmax(up, dim=0).numpy()
        marginals = dense_crf(sample.image, probs, self.crf_params())
        allowed = np.ones_like(marginals, dtype=bool)  # a class only inside its own boxes
        class_masks = class_box_masks(sample.boxes, sample.box_labels, height, width)
        for i, c in enumerate(classes, start=1):
            allowed[i] = class_masks[int(c)]
        y_crf_index = np.where(allowed, marginals, -1.0).argmax(0)
        y_ret_index = self.retrieval(f, y_crf_index, len(lut), stride, height, width)
        return {"labels": lut[y_crf_index], "ret": lut[y_ret_index]}

    @staticmethod
    def retrieval(f, y_crf_index: np.ndarray, k: int, stride: int, height: int, width: int):
        """Y_ret (Eq. 8-9) as indices into [background, classes ...]: prototypes from Y_crf taken
        to f's grid (nearest), correlation maps upsampled bilinearly to the image, argmax."""
        h, w = f.shape[1:]
        grid_labels = torch.from_numpy(y_crf_index).float()[None, None]
        # nearest sampling at the centre of each stride x stride cell
        rows = torch.clamp(torch.arange(h) * stride + stride // 2, max=height - 1)
        cols = torch.clamp(torch.arange(w) * stride + stride // 2, max=width - 1)
        on_grid = grid_labels[0, 0][rows][:, cols].long()
        q = B.prototypes(f, on_grid, list(range(k)))
        corr = B.correlation(f, q)
        up = F.interpolate(corr[None], scale_factor=float(stride), mode="bilinear",
                           align_corners=False)[0, :, :height, :width]  # fmt: skip
        return up.argmax(0).numpy()


__all__ = ["BanaGenerator"]
