"""Box2Seg ablations on voc-dev in the CPU protocol: paper Table 3 and Table 4.

Rows (one JSON each under benchmarks/results/train_box2seg_cpu/; a finished row is not re-run, a
killed seed resumes from its checkpoint): the Table 3 rows that need Box2Seg's heads and the
Table 4 '+ L_AW' row, each trained with 3 seeds in the protocol of `benchmarks.train_baselines`
(same options) and evaluated on dev_val:

  affinity   L_GC + L_A                       configs/voc_box2seg_affinity_cpu.yaml
  aw-box     L_GC + 10 L_AW + L_alpha^bbox    configs/voc_box2seg_aw_box_cpu.yaml
  aw-fr      L_GC + 10 L_AW + L_alpha^fr      configs/voc_box2seg_aw_fr_cpu.yaml
  box2seg    Eq. 11, two stages               configs/voc_box2seg_cpu.yaml
  full-awl   CE on masks + 10 L_AW + L_alpha  configs/voc_full_awl_cpu.yaml

Table 3's 'Box' and 'GrabCut' rows and Table 4's 'Supervised' row are the baseline rows `box`,
`pseudo-grabcut` and `full` of benchmarks/results/train_baselines_cpu/; the table reads them there.

    python -m benchmarks.train_box2seg [--threads 1] [--only box2seg]

The 300-iteration rows of earlier sessions (benchmarks/results/train_box2seg/) stay in RESULTS.md
as the "earlier protocol" section.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.common import HERE, load_rows, run_rows
from benchmarks.results_md import replace_section
from benchmarks.train_baselines import ROWS as BASELINE_ROWS
from benchmarks.train_baselines import (
    conditions,
    per_class_table,
    protocol_line,
    row_cells,
    table_arguments,
    train_row,
)

ROWS = HERE / "results" / "train_box2seg_cpu"
RUNS = {
    "affinity": ("configs/voc_box2seg_affinity_cpu.yaml", "grabcut"),
    "aw-box": ("configs/voc_box2seg_aw_box_cpu.yaml", "grabcut"),
    "aw-fr": ("configs/voc_box2seg_aw_fr_cpu.yaml", "grabcut"),
    "box2seg": ("configs/voc_box2seg_cpu.yaml", "grabcut"),
    "full-awl": ("configs/voc_full_awl_cpu.yaml", None),
}
# Table 3: (our row, where it lives, the paper's name, its losses, the paper's VOC val mIoU)
TABLE3 = [
    ("box", "baseline", "Box", "L_box", 59.3),
    ("pseudo-grabcut", "baseline", "GrabCut", "L_GC", 72.7),
    ("affinity", "box2seg", "Affinity", "L_GC + L_A", 73.9),
    ("aw-box", "box2seg", "AW-box", "L_GC + L_AW + L_alpha^bbox", 74.1),
    ("aw-fr", "box2seg", "AW-fr", "L_GC + L_AW + L_alpha^fr", 74.6),
    ("box2seg", "box2seg", "Box2Seg", "L_GC + L_AW + L_alpha^fr + L_A", 74.9),
]
TABLE4 = [
    ("full", "baseline", "Supervised", "CE on masks", "—"),
    ("full-awl", "box2seg", "+ L_AW", "CE on masks + L_AW + L_alpha^fr", "+1.5 over Supervised"),
]


def attention_in_boxes(run_dir: Path, val_spec: str, limit: int = 40) -> float | None:
    """Mean attention alpha_c (sigmoid) over the pixels of each class-c box of the first
    ``limit`` images of ``val_spec`` (None for a model without the attention head). Near 0 means
    the attention collapsed (what the earlier 300-iteration rows showed)."""
    from weakseg.data.specs import open_dataset
    from weakseg.engine.loop import load_trained

    model, _ = load_trained(run_dir, "cpu")
    if "attention" not in model.heads:
        return None
    total, count = 0.0, 0
    for sample in itertools.islice(open_dataset(val_spec), limit):
        image = torch.from_numpy(sample.image).permute(2, 0, 1).float()[None] / 255
        with torch.no_grad():
            logits = model(image, heads=("attention",))["attention"]
        up = F.interpolate(logits, scale_factor=float(model.output_stride), mode="bilinear")
        alpha = torch.sigmoid(up)[0, :, : sample.height, : sample.width]
        for box, c in zip(sample.boxes.astype(int), sample.box_labels, strict=True):
            region = alpha[c, max(box[1], 0) : box[3], max(box[0], 0) : box[2]]
            total, count = total + float(region.sum()), count + region.numel()
    return total / max(count, 1)


def box2seg_row(name: str, args: argparse.Namespace) -> dict:
    """A seeded row, plus the mean attention in the boxes of dev_val for the AW rows."""
    row = train_row(name, args, RUNS)
    val = f"voc:{args.data}:dev_val"
    values = [attention_in_boxes(Path(args.out) / name / f"seed{s}", val) for s in args.seeds]
    if values[0] is not None:
        row["attention_in_boxes"] = sum(values) / len(values)
    return row


def _table(title: str, spec: list, rows: dict, baselines: dict, full: dict | None) -> list[str]:
    lines = [title, "",
             "| row | losses | mIoU | per seed | / full | train min / run | img/s | paper | "
             "command |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, where, paper_name, losses, paper in spec:
        r = (baselines if where == "baseline" else rows).get(name)
        paper_cell = paper if isinstance(paper, str) else f"{paper:.1f}"
        if r is None:
            lines.append(f"| {paper_name} | {losses} | not measured yet | | | | | {paper_cell} | |")
            continue
        command = next(iter(r["seeds"].values()))["train_command"]
        lines.append(f"| {paper_name} | {losses} | {row_cells(r, full)} | {paper_cell} | "
                     f"`{command}` |")  # fmt: skip
    return lines


def render(rows: dict[str, dict], baselines: dict[str, dict]) -> str:
    full = baselines.get("full")
    shown = {**{k: v for k, v in baselines.items() if k in ("box", "pseudo-grabcut", "full")},
             **rows}  # fmt: skip
    lines = ["## Box2Seg ablations on voc-dev in the CPU protocol (dev_train -> dev_val)", "",
             f"The protocol of the baseline table: {protocol_line(next(iter(shown.values())))}; "
             "3 seeds per row (mean ± sample sd). The two-stage rows spend the first 10% of the "
             "iterations on embedding pretraining (Eq. 10 against M). M = GrabCut labels of "
             "dev_train. 'paper' is the Box2Seg paper's VOC 2012 val mIoU with ResNet-101 at "
             "full scale: compare orderings, not values.", ""]  # fmt: skip
    lines += _table("Table 3 (ablation of the losses):", TABLE3, rows, baselines, full)
    lines += [""]
    lines += _table("Table 4 (the attention-weighted loss with full supervision):", TABLE4, rows,
                    baselines, full)  # fmt: skip
    attention = [f"{n} {100 * r['attention_in_boxes']:.1f}%" for n, r in rows.items()
                 if "attention_in_boxes" in r]  # fmt: skip
    if attention:
        lines += ["", "Mean attention alpha_c inside the class-c boxes of the first 40 dev_val "
                  f"images (near 0 = collapsed): {', '.join(attention)}."]  # fmt: skip
    lines += ["", "Per-class IoU on dev_val (mean over seeds):", "",
              *per_class_table(shown, ["box", "pseudo-grabcut", *RUNS, "full"]), "",
              f"Measured on {conditions(shown)}, with `python -m benchmarks.train_box2seg` "
              "(Box/GrabCut/Supervised rows: `python -m benchmarks.train_baselines`)."
              ]  # fmt: skip
    return "\n".join(lines)


def main() -> int:
    args = table_arguments(__doc__.split("\n")[0])
    run_rows(RUNS, ROWS, lambda name: box2seg_row(name, args),
             lambda: replace_section(HERE / "RESULTS.md", "train-box2seg-cpu",
                                     render(load_rows(ROWS), load_rows(BASELINE_ROWS))),
             args.only, args.render)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
