"""Pictures of a model's auxiliary outputs: Box2Seg's attention maps with their box (paper
Fig. 4) and pixel-affinity heatmaps for chosen pixels (Fig. 5), BANA's CAMs, background unary
and NAL confidence (BANA Fig. 4a and 5), plus ``write_model_report``, the body of
``weakseg report``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from weakseg.data.boxes import background_mask, box_area
from weakseg.data.sample import Sample
from weakseg.viz.overlay import (
    draw_box,
    heatmap,
    overlay,
    save_png,
    side_by_side,
    stack_rows,
    with_legend,
)
from weakseg.viz.palette import VOC_PALETTE
from weakseg.viz.uncertainty import uncertainty_panels


def attention_panel(
    image: np.ndarray, alpha: np.ndarray, box: np.ndarray, label: int, name: str
) -> np.ndarray:
    """Fig. 4 (c): the attention map of ``label`` (H x W in [0, 1]) over the image, its box
    drawn in the class colour."""
    out = heatmap(image, alpha)
    draw_box(out, box, name, tuple(int(v) for v in VOC_PALETTE[label]))
    return out


def affinity_map(embeddings: np.ndarray, pixel: tuple[int, int]) -> np.ndarray:
    """Box2Seg Eq. 9 against one pixel: d x H x W embeddings -> H x W cosine similarity with
    the embedding at ``pixel`` = (row, col)."""
    e = torch.from_numpy(embeddings).float()
    e = F.normalize(e, dim=0, eps=1e-6)
    return (e * e[:, pixel[0], pixel[1]][:, None, None]).sum(0).numpy()


def affinity_panel(image: np.ndarray, affinity: np.ndarray, pixel: tuple[int, int]) -> np.ndarray:
    """Fig. 5: affinity in [-1, 1] mapped to [0, 1] as a heatmap, the pixel marked with a '+'."""
    out = heatmap(image, (affinity + 1.0) / 2.0)
    row, col = pixel
    size = max(6, min(image.shape[:2]) // 30)
    for colour, thickness in (((0, 0, 0), 4), ((255, 0, 255), 2)):
        cv2.drawMarker(out, (int(col), int(row)), colour, cv2.MARKER_CROSS, size * 2, thickness)
    return out


def chosen_pixels(sample: Sample, count: int = 2) -> list[tuple[int, int]]:
    """Pixels to show affinities for: the centres of the largest boxes (up to ``count - 1``)
    and the definite-background pixel farthest from every box (if any)."""
    pixels = []
    order = np.argsort(-box_area(sample.boxes), kind="stable")
    for k in order[: max(count - 1, 1)]:
        x1, y1, x2, y2 = sample.boxes[k]
        row = int(np.clip((y1 + y2) / 2, 0, sample.height - 1))
        col = int(np.clip((x1 + x2) / 2, 0, sample.width - 1))
        pixels.append((row, col))
    background = background_mask(sample.boxes, sample.height, sample.width)
    if background.any():
        distance = cv2.distanceTransform(background.astype(np.uint8), cv2.DIST_L2, 3)
        row, col = np.unravel_index(int(np.argmax(distance)), distance.shape)
        pixels.append((int(row), int(col)))
    return pixels[:count] if len(pixels) > count else pixels


@torch.no_grad()
def model_maps(model: torch.nn.Module, image: np.ndarray) -> dict[str, np.ndarray]:
    """Every head's output for one image at its size: "seg" -> H x W labels, "attention" ->
    C x H x W sigmoid maps, "embed" -> d x H x W embeddings (bilinearly upsampled)."""
    device = next(model.parameters()).device
    x = torch.from_numpy(np.array(image, dtype=np.uint8)).to(device)
    x = x.permute(2, 0, 1)[None].float().div_(255.0)
    height, width = image.shape[:2]
    outputs = model.eval()(x)
    maps = {}
    for name, value in outputs.items():
        up = F.interpolate(value.float(), scale_factor=float(model.output_stride),
                           mode="bilinear", align_corners=False)[0, :, :height, :width]  # fmt: skip
        if name == "seg":
            maps[name] = up.argmax(0).to(torch.uint8).cpu().numpy()
        elif name == "attention":
            maps[name] = torch.sigmoid(up).cpu().numpy()
        else:
            maps[name] = up.cpu().numpy()
    return maps


def _full(m: torch.Tensor, stride: int, height: int, width: int) -> np.ndarray:
    """An h x w map on the feature grid -> H x W in [0, 1] at the image's size (bilinear)."""
    up = F.interpolate(m[None, None].float(), scale_factor=float(stride), mode="bilinear",
                       align_corners=False)[0, 0, :height, :width]  # fmt: skip
    return up.clamp(0, 1).numpy()


def bana_maps(model: torch.nn.Module, sample: Sample) -> dict[str, np.ndarray]:
    """BANA stage 2 for one image with boxes, every map H x W in [0, 1] at the image's size:
    "A" (background attention, grid 1, Eq. 2-3 and 7 without the threshold), "u_0" (Eq. 7 with
    the relative 0.99 threshold), "cam:<c>" (CAM_c of Eq. 6 over the whole image divided by its
    maximum, paper Fig. 4a) and "u:<c>" (u_c, Eq. 5) for each class c with a box."""
    from weakseg.losses.bana import cam
    from weakseg.pseudo.bana import BanaGenerator

    gen = BanaGenerator.for_model(model)
    h, w = sample.height, sample.width
    f, scores, stride = gen.features(sample.image)
    classes, units = gen.unaries(sample, f, scores, stride)
    _, raw = BanaGenerator.for_model(model, bg_threshold=0.0).unaries(sample, f, scores, stride)
    maps = {"A": _full(raw[0], stride, h, w), "u_0": _full(units[0], stride, h, w)}
    for i, c in enumerate(classes, start=1):
        cam_c = cam(scores[int(c)])
        maps[f"cam:{int(c)}"] = _full(cam_c / cam_c.max().clamp(min=1e-6), stride, h, w)
        maps[f"u:{int(c)}"] = _full(units[i], stride, h, w)
    return maps


def _largest_classes(sample: Sample, count: int) -> list[int]:
    """The classes of the largest boxes, largest first, each once, at most ``count``."""
    classes: list[int] = []
    for k in np.argsort(-box_area(sample.boxes), kind="stable"):
        c = int(sample.box_labels[k])
        if c not in classes:
            classes.append(c)
    return classes[:count]


def _image_panels(sample: Sample, class_names: Sequence[str]) -> list[tuple[str, np.ndarray]]:
    """The panels every strip starts with: the image with its boxes, then the ground truth (if
    the sample has a mask)."""
    boxed = overlay(sample.image, None, boxes=sample.boxes, box_labels=sample.box_labels,
                    class_names=class_names)  # fmt: skip
    panels = [("image + boxes", boxed)]
    if sample.mask is not None:
        panels.append(("ground truth", overlay(sample.image, sample.mask)))
    return panels


def classifier_figure(
    model: torch.nn.Module, sample: Sample, class_names: Sequence[str], boxes_shown: int = 2
) -> np.ndarray:
    """BANA stage 1-2 for one image (paper Fig. 3-5): image with boxes | background attention A
    (grid 1) | u_0 | u_c of the largest boxes' classes | Y_crf | Y_ret (generator defaults)."""
    from weakseg.pseudo.bana import BanaGenerator

    image = sample.image
    panels = _image_panels(sample, class_names)
    if len(sample.boxes) == 0:
        return with_legend(side_by_side(panels), [sample.mask], class_names)
    maps = bana_maps(model, sample)
    panels.append(("background attention A", heatmap(image, maps["A"])))
    panels.append(("u_0 (A, 0.99 max)", heatmap(image, maps["u_0"])))
    for c in _largest_classes(sample, boxes_shown):
        panels.append((f"u_c: {class_names[c]}", heatmap(image, maps[f"u:{c}"])))
    labels = BanaGenerator.for_model(model).generate_maps(sample)
    panels.append(("Y_crf", overlay(image, labels["labels"])))
    panels.append(("Y_ret", overlay(image, labels["ret"])))
    shown = [sample.mask, labels["labels"], labels["ret"]]
    return with_legend(side_by_side(panels), shown, class_names, sample.box_labels)


def cam_comparison_figure(
    classifiers: Sequence[tuple[str, torch.nn.Module]], sample: Sample, class_names: Sequence[str]
) -> np.ndarray:
    """BANA Fig. 4a for one image with boxes: image with boxes | ground truth | then for each
    (name, stage-1 classifier), e.g. GAP and BAP: CAM_c of the largest box's class over the
    whole image (Eq. 6, divided by its maximum) and u_0 (Eq. 7)."""
    if len(sample.boxes) == 0:
        raise ValueError(f"{sample.id}: a CAM comparison needs an image with boxes")
    image = sample.image
    panels = _image_panels(sample, class_names)
    c = _largest_classes(sample, 1)[0]
    for name, model in classifiers:
        maps = bana_maps(model, sample)
        panels.append((f"{name} CAM: {class_names[c]}", heatmap(image, maps[f"cam:{c}"])))
        panels.append((f"{name} u_0", heatmap(image, maps["u_0"])))
    return with_legend(side_by_side(panels), [sample.mask], class_names, sample.box_labels)


def nal_sigma(model: torch.nn.Module, image: np.ndarray, y_crf: np.ndarray) -> np.ndarray:
    """BANA Eq. 11-12 for one image: the confidence sigma of ``y_crf`` under a stage-3 model with
    a cosine classifier, H x W in [0, 1] (0 where Y_crf is ignore)."""
    from weakseg.losses.bana import nal_confidence

    maps = model_maps(model, image)
    if "cos" not in maps:
        raise ValueError("sigma needs a BANA segmentation model with a cosine classifier")
    cosine = torch.from_numpy(maps["cos"])[None]
    return nal_confidence(cosine, torch.from_numpy(y_crf.astype(np.int64))[None])[0].numpy()


def confidence_figure(
    snapshots: Sequence[tuple[str, torch.nn.Module]],
    sample: Sample,
    y_crf: np.ndarray,
    y_ret: np.ndarray,
    class_names: Sequence[str],
) -> np.ndarray:
    """BANA Fig. 5 for one training image. Top: image with boxes | ground truth | Y_crf | Y_crf
    with the unreliable region ~S (Y_ret disagrees) in the ignore colour. Bottom: the NAL
    confidence sigma (Eq. 12) over the image for each (title, model), e.g. after each epoch."""
    image = sample.image
    unreliable = np.where((y_crf != y_ret) & (y_crf != 255), 255, y_crf).astype(np.uint8)
    top = [*_image_panels(sample, class_names), ("Y_crf", overlay(image, y_crf)),
           ("Y_crf, ~S marked", overlay(image, unreliable))]  # fmt: skip
    bottom = [(f"sigma, {t}", heatmap(image, nal_sigma(m, image, y_crf))) for t, m in snapshots]
    figure = stack_rows([side_by_side(top), side_by_side(bottom)])
    return with_legend(figure, [sample.mask, y_crf], class_names, sample.box_labels)


def sample_figure(
    model: torch.nn.Module,
    sample: Sample,
    class_names: Sequence[str],
    boxes_shown: int = 2,
    labels: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """One strip per image: image with boxes | ground truth | prediction | the attention map of
    each of its largest ``boxes_shown`` boxes (Box2Seg Fig. 4) | affinity heatmaps (Fig. 5) |
    with a BANA segmentation model and its ``labels`` ({"labels": Y_crf, "ret": Y_ret}): the
    disagreement ~S and the NAL confidence sigma (Eq. 12) there (BANA Fig. 5)."""
    from weakseg.models.classifier import BoxClassifier

    if isinstance(model, BoxClassifier):
        return classifier_figure(model, sample, class_names, boxes_shown)
    image = sample.image
    maps = model_maps(model, image)
    panels = _image_panels(sample, class_names)
    panels.append(("prediction", overlay(image, maps["seg"])))
    if "attention" in maps:
        for k in np.argsort(-box_area(sample.boxes), kind="stable")[:boxes_shown]:
            label = int(sample.box_labels[k])
            panel = attention_panel(image, maps["attention"][label], sample.boxes[k], label,
                                    class_names[label])  # fmt: skip
            panels.append((f"attention: {class_names[label]}", panel))
    if "embed" in maps:
        for pixel in chosen_pixels(sample):
            panel = affinity_panel(image, affinity_map(maps["embed"], pixel), pixel)
            panels.append((f"affinity to ({pixel[1]}, {pixel[0]})", panel))
    if "sigma" in maps:  # label uncertainty (Neven et al. Fig. 5-6)
        tau = getattr(model.heads["sigma"], "tau", 2.5)
        panels += uncertainty_panels(image, maps, sample, class_names, tau)
    if "cos" in maps and labels is not None:
        y_crf, y_ret = labels["labels"], labels["ret"]
        disagree = ((y_crf != y_ret) & (y_crf != 255)).astype(np.float32)
        panels.append(("Y_crf", overlay(image, y_crf)))
        panels.append(("Y_ret", overlay(image, y_ret)))
        panels.append(("~S (disagree)", heatmap(image, disagree)))
        panels.append(("sigma on ~S", heatmap(image, nal_sigma(model, image, y_crf) * disagree)))
    shown = [sample.mask, maps["seg"], *(labels.values() if labels else ())]
    return with_legend(side_by_side(panels), shown, class_names, sample.box_labels)


def write_model_report(
    model: torch.nn.Module, samples: Sequence[Sample], class_names: Sequence[str], out: Path,
    title: str, label_store=None, tables: dict | None = None,
) -> Path:  # fmt: skip
    """Write one PNG per sample under ``out`` and ``out/index.html`` showing them; return it.
    ``label_store``: a LabelStore with Y_crf / Y_ret for the BANA confidence panels;
    ``tables``: {column: ConfusionMatrix} shown as a per-class IoU table (e.g. the run's evals)."""
    from weakseg.viz.report import html_table, write_page

    out.mkdir(parents=True, exist_ok=True)
    names = []
    for sample in samples:
        name = f"{sample.id}.png"
        labels = None
        if label_store is not None and label_store.path(sample.id, "ret").exists():
            labels = {
                "labels": label_store.read(sample.id),
                "ret": label_store.read(sample.id, "ret"),
            }  # noqa: E501
        figure = sample_figure(model, sample, class_names, labels=labels)
        save_png(out / name, stack_rows([figure]))
        names.append(name)
    heads = ", ".join(sorted(getattr(model, "heads", {"seg": None})))
    parts = [f"<h1>{html.escape(title)}</h1>"]
    if tables:
        parts += ["<h2>Evaluations of this run</h2>",
                  "<p>IoU per class and mIoU, %, from RUN_DIR/eval/; the best value of each row "
                  "in bold.</p>", html_table(tables, class_names)]  # fmt: skip
    parts += [f"<p>Heads: {html.escape(heads)}. Under each picture, the colour and name of "
              "every class it shows. Attention maps are sigmoid values 0 (blue) to 1 "
              "(red) with their box (Box2Seg Fig. 4); affinity maps show the cosine similarity "
              "(Eq. 9) of every pixel's embedding to the marked pixel, -1 (blue) to 1 (red) "
              "(Fig. 5). BANA: A and u_0 are background scores, u_c normalised CAMs (Eq. 5-7); "
              "sigma is the noise-aware loss's confidence (Eq. 12) on the pixels where Y_crf and "
              "Y_ret disagree. Label uncertainty: the learned variance, the bootstrapping weight "
              "1 - W (Eq. 11) and the pixels of the box target flipped where the variance "
              "exceeds tau (Eq. 10, 16; Neven et al. Fig. 5-6).</p>"]  # fmt: skip
    parts += [f'<h3>{html.escape(n[:-4])}</h3><img src="{html.escape(n)}" '
              f'alt="{html.escape(n[:-4])}">' for n in names]  # fmt: skip
    index = out / "index.html"
    write_page(index, title, parts)
    return index


__all__ = [
    "affinity_map",
    "affinity_panel",
    "attention_panel",
    "bana_maps",
    "cam_comparison_figure",
    "chosen_pixels",
    "classifier_figure",
    "confidence_figure",
    "heatmap",
    "model_maps",
    "nal_sigma",
    "sample_figure",
    "write_model_report",
]
