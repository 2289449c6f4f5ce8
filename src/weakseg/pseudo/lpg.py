"""LPG pseudo masks (papers/lpg.md): a trained, class-agnostic generator g applied per class.

For one image, each class c present and g of stage r:

    guide_c = [union of c's boxes as a binary mask (+ the previous segmenter's softmax of c,
              stages >= 2)]                                            (section 3.2, Eq. 3)
    p_c     = softmax(g(image, guide_c)), 2 channels at stride 4, taken to the image
    fg_c    = psi(p_c) * y^{b_c}: argmax of the 2 channels inside c's boxes   (supplement Eq. 7)
    y^p     = sum_c c * fg_c, where two classes claim a pixel it goes to the class with the higher
              overlap rate = overlap area / predicted area of that class (supplement A; the
              authors' code lets the first class in XML order win instead: not followed)

g never sees c: the same network labels every class, including classes it never saw in training.
With three or more classes on one pixel, class c's overlap is its predicted area covered by any of
the others there (for two classes this is the supplement's rule exactly); ties go to the smaller
predicted area, then to the lower class index.

Where g looks (``crop`` of the generator file): ``boxes`` (the CPU default) runs g on a square
region around the union of c's boxes, widened by ``context`` on each side and resized to
``crop_size``, as it was trained; ``image`` runs g on the whole image padded to the network's size
multiple, as the authors' code does at inference (its training crops are random 512 x 512 crops
of the rescaled image that overlap the class's boxes).

``crf=true`` (ours, not in the paper or the authors' code): instead of thresholding each class's
p_c, a dense CRF (``weakseg.crf``, BANA's stage-2 kernels unless given) runs over background and
the classes present with unaries

    q_c = p_c * y^{b_c},   q_bg = prod_c (1 - q_c)

and each pixel takes the argmax of the marginals among background and the classes whose boxes
cover it (overlaps are then decided by the marginals, not the overlap-rate rule). g predicts at
stride 4 from a frozen encoder; the CRF moves its boundaries to the image's colour edges.

``weakseg labels --generator lpg generator=FILE [run_dir=SEGMENTER_RUN]``: FILE is a generator
file written by `weakseg lpg` (``RUN/stageR/generator.pt``); a stage >= 2 generator needs the
previous stage's segmenter run, which the CLI loads and hands over (``attach_model``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import ClassVar

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from weakseg.crf import CrfParams, dense_crf
from weakseg.data.boxes import class_box_masks
from weakseg.data.sample import Sample
from weakseg.pseudo.base import Generator, TrainedModel

CROP_MODES = ("boxes", "image")
PAD_GREY = 0.5  # image padding in [0, 1] (the normalised mean of both architectures, roughly)


def compose_classes(foregrounds: dict[int, np.ndarray], height: int, width: int) -> np.ndarray:
    """Supplement Eq. 7 with the overlap-rate rule: {class: H x W bool fg_c} -> H x W uint8.

    A pixel claimed by the set S of classes (|S| >= 2) goes to the c in S with the highest
    rate_c(S) = |fg_c and (union of fg_d, d in S, d != c)| / |fg_c|."""
    labels = np.zeros((height, width), dtype=np.uint8)
    classes = sorted(foregrounds)
    if not classes:
        return labels
    stack = np.stack([foregrounds[c] for c in classes])  # K x H x W bool
    count = stack.sum(0)
    single = count == 1
    labels[single] = np.asarray(classes, dtype=np.uint8)[stack[:, single].argmax(0)]
    contested = count >= 2
    if not contested.any():
        return labels
    areas = stack.reshape(len(classes), -1).sum(1)
    codes = np.zeros((height, width), dtype=np.int64)  # bit k set: class k claims the pixel
    for k in range(len(classes)):
        codes |= stack[k].astype(np.int64) << k
    for code in np.unique(codes[contested]):
        members = [k for k in range(len(classes)) if code >> k & 1]
        best = max(members, key=lambda k: (_overlap_rate(stack, members, k, areas), -areas[k], -k))
        labels[codes == code] = classes[best]
    return labels


def _overlap_rate(stack: np.ndarray, members: list[int], k: int, areas: np.ndarray) -> float:
    others = np.any(stack[[m for m in members if m != k]], axis=0)
    return float((stack[k] & others).sum()) / float(max(areas[k], 1))


def square_region(
    box: np.ndarray, context: float, scale: float = 1.0, shift: tuple[float, float] = (0.0, 0.0)
) -> tuple[float, float, float]:
    """(x0, y0, side) of the square around ``box`` = (x1, y1, x2, y2): side = the longer edge
    x (1 + 2 context) x scale, centred on the box shifted by ``shift`` x side."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1, 1.0) * (1.0 + 2.0 * context) * scale
    cx, cy = (x1 + x2) / 2 + shift[0] * side, (y1 + y2) / 2 + shift[1] * side
    return cx - side / 2, cy - side / 2, side


def region_matrix(region: tuple[float, float, float], size: int) -> np.ndarray:
    """2 x 3 affine map from image pixels to the ``size`` x ``size`` crop of ``region``."""
    x0, y0, side = region
    s = size / side
    return np.array([[s, 0.0, -x0 * s], [0.0, s, -y0 * s]], dtype=np.float64)


def warp(array: np.ndarray, matrix: np.ndarray, size: tuple[int, int], linear: bool,
         border: float, inverse: bool = False) -> np.ndarray:  # fmt: skip
    """cv2.warpAffine of an H x W (x C) array to ``size`` = (width, height)."""
    flags = cv2.INTER_LINEAR if linear else cv2.INTER_NEAREST
    if inverse:
        flags |= cv2.WARP_INVERSE_MAP
    channels = 1 if array.ndim == 2 else array.shape[2]
    value = (border,) * min(channels, 4)
    return cv2.warpAffine(array, matrix, size, flags=flags, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=value)  # fmt: skip


def union_box(mask: np.ndarray) -> np.ndarray:
    """(x1, y1, x2, y2) of the True pixels of an H x W bool mask (x2/y2 exclusive)."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.float32)


@dataclass
class LpgGenerator(CrfParams, Generator):
    name: ClassVar[str] = "lpg"
    needs_model: ClassVar[str] = "segmenter"  # any `weakseg train` run (stage >= 2 only)
    generator: str = ""  # a generator file of `weakseg lpg` (RUN/stageR/generator.pt)
    run_dir: str = ""  # stage >= 2: the previous stage's segmenter run on these images
    batch: int = 8  # classes per forward pass
    flip: bool = False  # average g's margin with that of the mirrored input (test-time flip)
    crf: bool = False  # a dense CRF on g's probabilities instead of thresholds (module docstring)
    device: str = "cpu"
    _net: object = field(default=None, init=False, repr=False, compare=False)
    _info: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _segmenter: object = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.generator:
            raise ValueError(
                "generator 'lpg' needs generator=FILE, a generator trained by `weakseg lpg` "
                "(RUN/stage1/generator.pt)"
            )

    def params(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init}

    @classmethod
    def for_network(cls, net: torch.nn.Module, info: dict, segmenter=None, **params):
        """A generator around a network in memory (``info`` as in a generator file)."""
        gen = cls(generator=params.pop("generator", "(in memory)"), **params)
        gen._net, gen._info = net.eval(), dict(info)
        gen._check_stage()
        if segmenter is not None:
            gen.attach_model(TrainedModel(segmenter, "any", "(in memory)"))
        return gen

    def prepare(self) -> None:
        """Read the generator file (clear errors before any image is labelled)."""
        if self._net is None:
            from weakseg.models.lpg import load_generator

            self._net, self._info = load_generator(self.generator)
            self._check_stage()

    def _check_stage(self) -> None:
        self.needs_model = "segmenter" if self.uses_segmenter else ""  # type: ignore[misc]

    @property
    def uses_segmenter(self) -> bool:
        return int(self._info.get("guide_channels", 1)) == 2

    def check_model(self, trained: TrainedModel) -> None:
        if not hasattr(trained.network, "predict"):
            raise ValueError(f"{trained.run_dir}: not a segmentation network")

    def attach_model(self, trained: TrainedModel) -> None:
        self.prepare()
        if not self.uses_segmenter:
            raise ValueError(
                f"{self.generator} is a stage-1 generator: it takes no segmenter (drop run_dir)"
            )
        self.check_model(trained)
        self._segmenter = trained.network

    def network(self) -> torch.nn.Module:
        self.prepare()
        net = self._net
        if next(net.parameters()).device != torch.device(self.device):
            self._net = net = net.to(self.device)
        return net

    def generate(self, sample: Sample) -> np.ndarray:
        net = self.network()
        if self.uses_segmenter and self._segmenter is None:
            raise ValueError(
                f"{self.generator} is a stage-{self._info.get('stage', '>=2')} generator: pass "
                "run_dir=RUN, the previous stage's segmenter run"
            )
        height, width = sample.height, sample.width
        masks = class_box_masks(sample.boxes, sample.box_labels, height, width)
        probs = self.segmenter_probs(sample.image) if self.uses_segmenter else None
        margins = {}
        classes = sorted(masks)
        for start in range(0, len(classes), self.batch):
            chunk = classes[start : start + self.batch]
            guides = [self.guide(masks[c], probs, c) for c in chunk]
            found = self.object_margins(net, sample.image, guides, [masks[c] for c in chunk])
            margins.update(zip(chunk, found, strict=True))
        if self.crf:
            return self.crf_labels(sample.image, margins, masks)
        foreground = {c: (margins[c] > 0) & masks[c] for c in classes}  # psi(p) x y^{b_c}
        return compose_classes(foreground, height, width)

    def crf_labels(self, image: np.ndarray, margins: dict[int, np.ndarray],
                   masks: dict[int, np.ndarray]) -> np.ndarray:  # fmt: skip
        """``crf=true``: dense CRF over q_bg = prod_c (1 - q_c) and q_c = p_c * y^{b_c}, where
        p_c = softmax of g's two channels = sigmoid(margin); a class only inside its boxes."""
        height, width = image.shape[:2]
        classes = sorted(margins)
        if not classes:
            return np.zeros((height, width), dtype=np.uint8)
        boxes = np.stack([masks[c] for c in classes]).astype(np.float32)
        stacked = np.stack([margins[c] for c in classes])
        objects = boxes / (1.0 + np.exp(-stacked))
        # where several classes' objects overlap, only the overlap-rate winner stays a candidate
        winner = compose_classes({c: (margins[c] > 0) & masks[c] for c in classes}, height, width)
        for k, c in enumerate(classes):
            objects[k][(stacked[k] > 0) & (winner != c) & (winner > 0)] = 0.0
        background = np.prod(1.0 - objects, axis=0, keepdims=True)
        marginals = dense_crf(image, np.concatenate([background, objects]), self.crf_params())
        marginals[1:] *= boxes
        lut = np.asarray([0, *classes], dtype=np.uint8)
        return lut[marginals.argmax(0)]

    @staticmethod
    def guide(box_mask: np.ndarray, probs: np.ndarray | None, c: int) -> np.ndarray:
        """H x W x G float32: the box mask [+ the segmenter's probability of class c]."""
        channels = [box_mask.astype(np.float32)]
        if probs is not None:
            if c >= len(probs):
                raise ValueError(f"class {c}: the segmenter predicts only {len(probs)} classes")
            channels.append(probs[c].astype(np.float32))
        return np.stack(channels, axis=-1)

    @torch.inference_mode()
    def segmenter_probs(self, image: np.ndarray) -> np.ndarray:
        """C x H x W softmax of the previous segmenter at the image's size."""
        seg = self._segmenter
        device = next(seg.parameters()).device
        x = torch.from_numpy(np.array(image, dtype=np.uint8)).to(device)
        x = x.permute(2, 0, 1)[None].float().div_(255.0)
        return seg.eval().predict(x).float().softmax(1)[0].cpu().numpy()

    @torch.inference_mode()
    def object_margins(self, net, image: np.ndarray, guides: list[np.ndarray],
                       box_masks: list[np.ndarray]) -> list[np.ndarray]:  # fmt: skip
        """H x W float32 margin of g's object channel over its rest channel (> 0: argmax(p_c)
        is the object), one per guide."""
        if self._info.get("crop", "boxes") == "image":
            return [self._whole_image(net, image, g) for g in guides]
        size = int(self._info["crop_size"])
        context = float(self._info.get("context", 0.5))
        img = image.astype(np.float32) / 255.0
        crops, mats = [], []
        for g, m in zip(guides, box_masks, strict=True):
            mat = region_matrix(square_region(union_box(m), context), size)
            mats.append(mat)
            crops.append(
                (
                    warp(img, mat, (size, size), True, PAD_GREY),
                    warp(g, mat, (size, size), True, 0.0).reshape(size, size, -1),
                )
            )
        logits = self._run(net, np.stack([c[0] for c in crops]), np.stack([c[1] for c in crops]))
        height, width = image.shape[:2]
        out = []
        for lg, mat in zip(logits, mats, strict=True):
            margin = (lg[1] - lg[0]).astype(np.float32)  # > 0 where the object wins
            out.append(warp(margin, mat, (width, height), True, -1.0, inverse=True))
        return out

    def _whole_image(self, net, image: np.ndarray, guide: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        m = net.size_multiple
        ph, pw = -height % m, -width % m
        img = np.pad(image.astype(np.float32) / 255.0, ((0, ph), (0, pw), (0, 0)),
                     constant_values=PAD_GREY)  # fmt: skip
        g = np.pad(guide, ((0, ph), (0, pw), (0, 0)))
        lg = self._run(net, img[None], g[None])[0]
        return (lg[1] - lg[0])[:height, :width].astype(np.float32)

    def _run(self, net, images: np.ndarray, guides: np.ndarray) -> np.ndarray:
        """B x H x W x 3 and B x H x W x G arrays -> B x 2 x H x W logits (bilinear from
        stride 4)."""
        dev = next(net.parameters()).device
        x = torch.from_numpy(images).permute(0, 3, 1, 2).to(dev)
        g = torch.from_numpy(np.ascontiguousarray(guides)).permute(0, 3, 1, 2).to(dev)
        logits = net(x, g).float()
        if self.flip:  # the mean of the logits of the crop and of its mirror image
            logits = (logits + net(x.flip(-1), g.flip(-1)).float().flip(-1)) / 2
        up = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return up.cpu().numpy()


__all__ = ["LpgGenerator", "compose_classes", "region_matrix", "square_region", "union_box", "warp"]
