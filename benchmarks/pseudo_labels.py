"""Pseudo-label benchmark on voc-dev (issue: foundation, item 9).

Rows (one JSON each under benchmarks/results/pseudo_labels/, so an interrupted run resumes):
  labels-<gen>         `weakseg labels` over all images with --workers 2, then `weakseg eval-labels`
                       on dev_train and dev_val: mIoU, per-class IoU, s/img, wall time
  grabcut-vs-plain     ours vs a plain per-box cv2.grabCut on the whole image (GC_INIT_WITH_RECT,
                       5 iterations), both on one core over the same images: mIoU and s/img
  workers-<gen>        the same labels with --workers 1 and --workers 2: wall time and speed-up
Then benchmarks/RESULTS.md's pseudo-label section is rewritten from the JSON rows.

    python -m benchmarks.pseudo_labels [--data ../shared/data/voc-dev] [--out bench-out]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common import DEFAULT_VOC, load_rows, save_row
from benchmarks.results_md import replace_section
from weakseg.cli import main as weakseg
from weakseg.data.specs import open_dataset
from weakseg.engine.evaluate import ConfusionMatrix
from weakseg.pseudo.grabcut import limit_threads, plain_grabcut
from weakseg.pseudo.registry import make_generator

HERE = Path(__file__).parent
ROWS = HERE / "results" / "pseudo_labels"
GENERATORS = ("box", "grabcut", "crf-box")
# BANA Table 1 (VOC 2012 train / val pseudo-label mIoU): the anchors our rows sit next to.
PAPER = {"box": (65.4, 62.2), "grabcut": (65.7, 66.1), "crf-box": (69.7, 71.1)}


def labels_row(voc: str, gen: str, out: Path, workers: int) -> dict:
    """Label all of voc-dev with the CLI, score dev_train and dev_val with the CLI."""
    label_dir = out / gen
    cmd = ["labels", "--dataset", f"voc:{voc}", "--generator", gen, "--out", str(label_dir),
           "--workers", str(workers), "--no-progress"]  # fmt: skip
    if weakseg(cmd) != 0:
        raise SystemExit(f"weakseg {' '.join(cmd)} failed")
    runs = [json.loads(line) for line in (label_dir / "runs.jsonl").read_text().splitlines()]
    run = runs[-1]
    row = {"generator": gen, "workers": workers, "command": "weakseg " + " ".join(cmd),
           "wall_seconds": sum(r["wall_seconds"] for r in runs),
           "images_labelled": sum(r["done"] for r in runs),
           "cpu_seconds_per_image": run["cpu_seconds_per_image"]}  # fmt: skip
    for split in ("dev_train", "dev_val"):
        json_path = out / f"eval-{gen}-{split}.json"
        ecmd = ["eval-labels", "--dataset", f"voc:{voc}:{split}", "--labels", str(label_dir),
                "--json", str(json_path), "--no-progress"]  # fmt: skip
        weakseg(ecmd)
        row[split] = json.loads(json_path.read_text()) | {"command": "weakseg " + " ".join(ecmd)}
    return row


def grabcut_vs_plain(voc: str, n: int) -> dict:
    """Ours vs plain whole-image cv2.grabCut on the first n dev_val images, one core each."""
    limit_threads()
    data = open_dataset(f"voc:{voc}:dev_val")
    ours = make_generator("grabcut")
    rows = {}
    for name, fn in (("ours", ours.generate), ("plain", plain_grabcut)):
        cm, seconds = ConfusionMatrix(len(data.classes)), 0.0
        for sample_id in data.ids[:n]:
            sample = data.load(sample_id)
            start = time.perf_counter()
            labels = fn(sample)
            seconds += time.perf_counter() - start
            cm.update(labels, sample.mask)
        rows[name] = {"miou": cm.miou(), "seconds_per_image": seconds / n}
        print(f"grabcut {name}: mIoU {100 * cm.miou():.1f}, {seconds / n:.3f} s/img", flush=True)
    return {"images": n, "split": "dev_val", **rows,
            "speedup": rows["plain"]["seconds_per_image"] / rows["ours"]["seconds_per_image"],
            "command": f"python -m benchmarks.pseudo_labels --plain-images {n}"}  # fmt: skip


def workers_row(voc: str, gen: str, out: Path, split: str) -> dict:
    walls = {}
    for workers in (1, 2):
        label_dir = out / f"workers-{gen}-{workers}"
        shutil.rmtree(label_dir, ignore_errors=True)  # a timing needs a cold directory
        cmd = ["labels", "--dataset", f"voc:{voc}:{split}", "--generator", gen,
               "--out", str(label_dir), "--workers", str(workers), "--no-progress"]  # fmt: skip
        start = time.perf_counter()
        weakseg(cmd)
        walls[workers] = time.perf_counter() - start
        print(f"{gen} workers={workers}: {walls[workers]:.1f} s", flush=True)
    n = len(open_dataset(f"voc:{voc}:{split}"))
    return {"generator": gen, "split": split, "images": n, "wall_1": walls[1], "wall_2": walls[2],
            "speedup": walls[1] / walls[2],
            "command": "weakseg " + " ".join(cmd[:-3]) + " --workers 1|2"}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=DEFAULT_VOC)
    parser.add_argument("--out", default="bench-out/voc-dev")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--plain-images", type=int, default=100)
    parser.add_argument("--only", nargs="*", help="row names to run (default: all missing)")
    args = parser.parse_args()
    if not Path(args.data).is_dir():
        print(f"voc-dev not found at {args.data}", file=sys.stderr)
        return 1
    out = Path(args.out)
    # The rows that use both cores first; the single-core grabcut-vs-plain row last.
    jobs = {f"workers-{g}": lambda g=g: workers_row(args.data, g, out, "dev_val")
            for g in ("grabcut", "crf-box")}  # fmt: skip
    for gen in GENERATORS:
        jobs[f"labels-{gen}"] = lambda g=gen: labels_row(args.data, g, out, args.workers)
    jobs["grabcut-vs-plain"] = lambda: grabcut_vs_plain(args.data, args.plain_images)
    for name, job in jobs.items():
        if args.only and name not in args.only:
            continue
        if (ROWS / f"{name}.json").exists() and not args.only:
            print(f"row {name}: already measured, skipped", flush=True)
            continue
        save_row(ROWS, name, job())
        write_results()
    return 0


def write_results() -> None:
    rows = load_rows(ROWS)
    replace_section(HERE / "RESULTS.md", "pseudo-labels", render(rows))


def pct(x: float) -> str:
    return "—" if x is None or np.isnan(x) else f"{100 * x:.1f}"  # None: class absent


def render(rows: dict) -> str:
    lines = ["## Pseudo labels from boxes on voc-dev", ""]
    labelled = [rows[f"labels-{g}"] for g in GENERATORS if f"labels-{g}" in rows]
    if labelled:
        lines += [
            "All 861 voc-dev images labelled from their original XML boxes, scored against the "
            "SegmentationClassAug masks (confusion-matrix mIoU over the split, 255 ignored). "
            "Paper anchors: BANA Table 1 on VOC 2012 train / val.", "",
            "| generator | mIoU dev_train | mIoU dev_val | paper train / val | s/img (1 core) "
            "| wall, all 861 | workers | command |",
            "|---|---|---|---|---|---|---|---|",
        ]  # fmt: skip
        for r in labelled:
            p = PAPER[r["generator"]]
            lines.append(
                f"| {r['generator']} | {pct(r['dev_train']['miou'])} | {pct(r['dev_val']['miou'])}"
                f" | {p[0]} / {p[1]} | {r['cpu_seconds_per_image']:.3f} | "
                f"{r['wall_seconds']:.0f} s | {r['workers']} | `{r['command']}` |"
            )
        lines += ["", "Score a label directory with the eval command recorded in each row's JSON "
                  "(`benchmarks/results/pseudo_labels/labels-<generator>.json`), e.g. "
                  f"`{labelled[0]['dev_val']['command']}`.", ""]  # fmt: skip
        lines += per_class_table(labelled)
    if "grabcut-vs-plain" in rows:
        r = rows["grabcut-vs-plain"]
        lines += [
            "", f"### GrabCut: ours vs plain whole-image cv2.grabCut ({r['images']} dev_val "
            "images, one core; plain: 5 iterations, ours: its defaults)", "",
            "| variant | mIoU | s/img |", "|---|---|---|",
            f"| weakseg `grabcut` (crop around box) | {pct(r['ours']['miou'])} | "
            f"{r['ours']['seconds_per_image']:.3f} |",
            f"| plain per-box cv2.grabCut, whole image | {pct(r['plain']['miou'])} | "
            f"{r['plain']['seconds_per_image']:.3f} |",
            "", f"Speed-up {r['speedup']:.2f}x. Command: `{r['command']}`.",
        ]  # fmt: skip
    scaling = [rows[k] for k in ("workers-grabcut", "workers-crf-box") if k in rows]
    if scaling:
        lines += ["", "### Parallel labelling: --workers 1 vs 2", "",
                  "| generator | images | wall, 1 worker | wall, 2 workers | speed-up | command |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for r in scaling:
            lines.append(f"| {r['generator']} | {r['images']} ({r['split']}) | "
                         f"{r['wall_1']:.1f} s | {r['wall_2']:.1f} s | {r['speedup']:.2f}x | "
                         f"`{r['command']}` |")  # fmt: skip
    any_row = next(iter(rows.values()))
    lines += ["", f"Measured on {any_row['machine']}, {any_row['date']}, with "
              "`python -m benchmarks.pseudo_labels`."]  # fmt: skip
    return "\n".join(lines)


def per_class_table(labelled: list[dict]) -> list[str]:
    names = labelled[0]["dev_val"]["class_names"]
    head = "| class | " + " | ".join(f"{r['generator']} train / val" for r in labelled) + " |"
    lines = ["Per-class IoU (dev_train / dev_val):", "", head,
             "|---|" + "---|" * len(labelled)]  # fmt: skip
    for name in names:
        cells = [f"{pct(r['dev_train']['iou'][name])} / {pct(r['dev_val']['iou'][name])}"
                 for r in labelled]  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


if __name__ == "__main__":
    sys.exit(main())
