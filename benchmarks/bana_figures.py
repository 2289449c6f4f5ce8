"""BANA's pictures from the benchmark's runs (BANA issue, item 4), written under --figures
(default bench-out/bana/figures/: they show VOC photographs, which stay out of git), and one
measured number, u0.json, under benchmarks/results/bana/figures/:

  fig4a.jpg   paper Fig. 4a: CAM_c of the largest box's class (Eq. 6, over the whole image)
              and u_0 (Eq. 7) from the GAP and the BAP classifier, on the first --images
              dev_val images (unseen by both)
  u0.json     the share of feature cells inside the boxes where u_0 > 0 (the authors'
              relative 0.99 threshold on A), BAP classifier, first --u0-images dev_val images
  fig5.jpg    paper Fig. 5: Y_crf, its unreliable region ~S (Y_ret disagrees) and the ground
              truth for one dev_train image, then the NAL confidence sigma (Eq. 12) after each
              snapshot of the seg-nal run's seed 0 (train.snapshot_every)

    python -m benchmarks.bana_figures [--out bench-out/bana] [--images 4] [--fig5-id ID]

Needs the classifier-gap, classifier-bap, labels-bap and seg-nal rows of `python -m
benchmarks.bana`. Without --fig5-id the image is the one with the largest share of ~S among
the first 50 dev_train images with labels that show one object class (as the paper's does).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from benchmarks.common import DEFAULT_VOC, HERE
from weakseg.data.specs import open_dataset
from weakseg.engine.loop import SNAPSHOT_DIR, load_trained
from weakseg.pseudo.store import LabelStore
from weakseg.viz.maps import cam_comparison_figure, confidence_figure
from weakseg.viz.overlay import stack_rows
from weakseg.viz.palette import atomic_save

NUMBERS = HERE / "results" / "bana" / "figures"


def save_jpeg(path: Path, rgb: np.ndarray, width: int) -> None:
    """Shrink ``rgb`` to at most ``width`` pixels wide and write it as a JPEG (a picture for the
    README, not data: the full-size PNGs come from `weakseg report`)."""
    if rgb.shape[1] > width:
        height = round(rgb.shape[0] * width / rgb.shape[1])
        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
    atomic_save(path, Image.fromarray(rgb), quality=85)
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")


def unreliable_share(store: LabelStore, sample_id: str) -> float:
    y_crf, y_ret = store.read(sample_id), store.read(sample_id, "ret")
    valid = y_crf != 255
    return float(((y_crf != y_ret) & valid).sum() / max(valid.sum(), 1))


def u0_share(model: torch.nn.Module, samples: list) -> float:
    """Mean over images of the share of in-box feature cells where u_0 (Eq. 7 with the relative
    0.99 threshold, the generator's default) is above 0."""
    from weakseg.methods.bana import feature_boxes
    from weakseg.pseudo.bana import BanaGenerator

    gen = BanaGenerator.for_model(model)
    shares = []
    for sample in samples:
        f, scores, stride = gen.features(sample.image)
        _, units = gen.unaries(sample, f, scores, stride)
        boxes = torch.as_tensor(sample.boxes, dtype=torch.float32)
        in_boxes = torch.stack(feature_boxes(boxes, stride, *f.shape[1:])).any(0)
        shares.append(float((units[0][in_boxes] > 0).float().mean()))
    return float(np.mean(shares))


def snapshots(run_dir: Path) -> list[int]:
    return sorted(int(p.stem.split("-")[1]) for p in (run_dir / SNAPSHOT_DIR).glob("model-*.pt"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=DEFAULT_VOC)
    parser.add_argument("--out", type=Path, default=Path("bench-out/bana"))
    parser.add_argument("--images", type=int, default=4, help="dev_val images in fig4a")
    parser.add_argument("--fig5-id", help="the dev_train image of fig5")
    parser.add_argument("--u0-images", type=int, default=40, help="dev_val images for u0.json")
    parser.add_argument("--figures", type=Path, help="default: OUT/figures")
    parser.add_argument("--numbers", type=Path, default=NUMBERS, help="where u0.json goes")
    parser.add_argument("--width", type=int, default=1600, help="pixels across each picture")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    args.figures = args.figures or args.out / "figures"
    torch.set_num_threads(args.threads)

    val = open_dataset(f"voc:{args.data}:dev_val")
    names = val.classes.names
    gap, _ = load_trained(args.out / "classifier-gap", "cpu")
    bap, _ = load_trained(args.out / "classifier-bap", "cpu")
    samples = [s for s in (val.load(i) for i in val.ids[: 4 * args.images]) if len(s.boxes)]
    rows = [cam_comparison_figure([("GAP", gap), ("BAP", bap)], s, names)
            for s in samples[: args.images]]  # fmt: skip
    save_jpeg(args.figures / "fig4a.jpg", stack_rows(rows), args.width)
    with_boxes = [s for s in (val.load(i) for i in val.ids[: args.u0_images]) if len(s.boxes)]
    share = u0_share(bap, with_boxes)
    row = {"images": len(with_boxes), "in_box_cells_with_u0_above_0": share}
    args.numbers.mkdir(parents=True, exist_ok=True)
    tmp = args.numbers / ".u0.json.tmp"
    tmp.write_text(json.dumps(row, indent=2) + "\n")
    tmp.replace(args.numbers / "u0.json")
    print(f"u_0 > 0 on {100 * share:.1f}% of the in-box cells ({len(with_boxes)} dev_val images)")

    run_dir = args.out / "seg-nal" / "seed0"
    kept = snapshots(run_dir)
    if not kept:
        raise SystemExit(f"{run_dir} has no snapshots yet (train.snapshot_every)")
    store = LabelStore(args.out / "labels-bap")
    train = open_dataset(f"voc:{args.data}:dev_train")
    fig5_id = args.fig5_id
    if fig5_id is None:
        labelled = [i for i in train.ids if store.path(i, "ret").exists()][:50]
        single = [i for i in labelled if len(set(train.load(i).box_labels.tolist())) == 1]
        fig5_id = max(single or labelled, key=lambda i: unreliable_share(store, i))
    sample = train.load(fig5_id)
    _, cfg = load_trained(run_dir, "cpu", kept[0])
    epoch = cfg.data.batch_size / len(train)
    models = []
    for it in kept:
        model, _ = load_trained(run_dir, "cpu", it)
        models.append((f"iteration {it} ({it * epoch:.1f} epochs)", model))
    figure = confidence_figure(
        models, sample, store.read(fig5_id), store.read(fig5_id, "ret"), names
    )
    save_jpeg(args.figures / "fig5.jpg", figure, args.width)
    print(f"fig5: {fig5_id}, ~S {100 * unreliable_share(store, fig5_id):.0f}% of its pixels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
