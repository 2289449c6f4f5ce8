"""Mask AP of the exported COCO instances on coco128 (issue 17, item 1).

One row per generator (box, grabcut, crf-box), one JSON each under
benchmarks/results/coco_mask_ap/: `weakseg labels --format coco` over the 128 images from their
official boxes (COCO reader, all 80 classes), then pycocotools' COCOeval with iouType "segm" of
LABELS/instances.json against the official instances of the same images. Every exported instance
has score 1, so AP here measures mask quality at the given boxes (a detector's ranking plays no
part); crowd regions are the ground truth's ignore areas, as in any COCO evaluation. Also the mean
mask IoU of each instance with the ground-truth instance of its box.

    python -m benchmarks.coco_mask_ap [--data ../shared/data/coco128] [--out bench-out/coco128]
                                      [--workers 1] [--only box grabcut] [--render]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from benchmarks.common import HERE, load_rows, run_rows
from benchmarks.results_md import replace_section
from weakseg.cli import main as weakseg

ROWS = HERE / "results" / "coco_mask_ap"
GENERATORS = ("box", "grabcut", "crf-box")
STATS = ("AP", "AP50", "AP75", "APs", "APm", "APl")  # COCOeval.stats[0:6]


def quiet_coco(path: Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def mask_ap(gt: COCO, exported: Path) -> dict:
    """COCOeval segm of ``exported`` (every instance scored 1) against ``gt``."""
    data = json.loads(exported.read_text())
    results = [{"image_id": a["image_id"], "category_id": a["category_id"],
                "segmentation": a["segmentation"], "score": 1.0}
               for a in data["annotations"]]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(results)
        evaluation = COCOeval(gt, dt, iouType="segm")
        evaluation.params.imgIds = sorted(i["id"] for i in data["images"])
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return {name: float(evaluation.stats[k]) for k, name in enumerate(STATS)}


def paired_iou(gt: COCO, exported: Path) -> float:
    """Mean mask IoU of each exported instance with the ground-truth instance of the same box
    (the reader keeps the non-crowd annotations of an image in file order, so do the exports)."""
    data = json.loads(exported.read_text())
    by_image: dict[int, list[dict]] = {}
    for ann in data["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    ious = []
    for image_id, anns in by_image.items():
        truth = [a for a in gt.imgToAnns[image_id] if not a.get("iscrowd")]
        if len(truth) != len(anns):
            raise ValueError(f"image {image_id}: {len(anns)} exported, {len(truth)} true boxes")
        for ours, true in zip(anns, truth, strict=True):
            rle = {"size": ours["segmentation"]["size"],
                   "counts": ours["segmentation"]["counts"].encode()}  # fmt: skip
            ious.append(float(mask_utils.iou([rle], [gt.annToRLE(true)], [0])[0, 0]))
    return float(np.mean(ious))


def generator_row(data: Path, gen: str, out: Path, workers: int) -> dict:
    ann_json = data / "annotations" / "instances_train2017.json"
    spec = f"coco:{data / 'train2017'}:{ann_json}"
    label_dir = out / gen
    cmd = ["labels", "--dataset", spec, "--generator", gen, "--out", str(label_dir),
           "--workers", str(workers), "--no-progress", "--format", "coco"]  # fmt: skip
    if weakseg(cmd) != 0:
        raise SystemExit(f"weakseg {' '.join(cmd)} failed")
    runs = [json.loads(x) for x in (label_dir / "runs.jsonl").read_text().splitlines()]
    gt = quiet_coco(ann_json)
    exported = label_dir / "instances.json"
    instances = json.loads(exported.read_text())
    return {
        "generator": gen, "command": "weakseg " + " ".join(cmd), "workers": workers,
        "images": len(instances["images"]), "instances": len(instances["annotations"]),
        "wall_seconds": sum(r["wall_seconds"] for r in runs),
        "cpu_seconds_per_image": runs[-1]["cpu_seconds_per_image"],
        "mask_ap": mask_ap(gt, exported), "mean_instance_iou": paired_iou(gt, exported),
        "load_average": os.getloadavg()[0],  # wall-clock times stretch on busy cores
    }  # fmt: skip


def render(rows: dict[str, dict]) -> str:
    lines = [
        "## Mask AP of the exported COCO instances on coco128",
        "",
        "`weakseg labels --format coco` on the 128 coco128 images from their official boxes "
        "(80 classes), one mask per box; pycocotools COCOeval (segm) against the official "
        "instances, every instance scored 1, so AP measures the masks at the given boxes. "
        "Mean IoU: each instance against the ground-truth instance of its box. BANA Tables 2 "
        "and 6 train Mask R-CNN on masks like these; the rows here score the masks themselves.",
        "",
        "| generator | mask AP | AP50 | AP75 | APs | APm | APl | mean IoU | instances | "
        "s/img (1 core) | wall | command |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for gen in GENERATORS:
        r = rows.get(f"ap-{gen}")
        if r is None:
            lines.append(f"| {gen} | not measured yet: `python -m benchmarks.coco_mask_ap` |")
            continue
        ap = " | ".join(f"{100 * r['mask_ap'][k]:.1f}" for k in STATS)
        lines.append(f"| {gen} | {ap} | {100 * r['mean_instance_iou']:.1f} | {r['instances']} | "
                     f"{r['cpu_seconds_per_image']:.2f} | {r['wall_seconds']:.0f} s | "
                     f"`{r['command']}` |")  # fmt: skip
    notes = [f"- {gen}: {rows[f'ap-{gen}']['note']}" for gen in GENERATORS
             if "note" in rows.get(f"ap-{gen}", {})]  # fmt: skip
    loads = [f"{g} {rows[f'ap-{g}']['load_average']:.1f}" for g in GENERATORS
             if "load_average" in rows.get(f"ap-{g}", {})]  # fmt: skip
    if loads:
        notes.append(f"- 1-minute load average at the end of each row: {', '.join(loads)}.")
    if notes:
        lines += [
            "",
            "s/img and wall are wall-clock times (the mean per image of the worker):",
            *notes,
        ]
    measured = sorted({f"{r['machine']}, {r['date']}" for r in rows.values()})
    if measured:
        lines += [
            "",
            f"Measured on {'; '.join(measured)} with `python -m benchmarks.coco_mask_ap`.",
        ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/data/coco128")
    parser.add_argument("--out", default="bench-out/coco128")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--only", nargs="*", help="generators to (re)measure")
    parser.add_argument("--render", action="store_true", help="only rewrite RESULTS.md")
    args = parser.parse_args()
    data = Path(args.data)
    if not args.render and not (data / "annotations").is_dir():
        print(f"coco128 not found at {data}", file=sys.stderr)
        return 1
    only = [f"ap-{g}" for g in args.only] if args.only else None
    run_rows([f"ap-{g}" for g in GENERATORS], ROWS,
             lambda name: generator_row(data, name.removeprefix("ap-"), Path(args.out),
                                        args.workers),
             lambda: replace_section(HERE / "RESULTS.md", "coco-mask-ap", render(load_rows(ROWS))),
             only, args.render)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
