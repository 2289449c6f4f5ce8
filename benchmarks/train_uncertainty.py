"""Label-uncertainty benchmark on voc-dev: PP masks + BB boxes, 3 seeds per row (issue 16).

Boxes for every dev_train image, masks for a share of them (PP); every row is trained with 3
seeds and evaluated on dev_val.

Tasks: "person" (binary person vs background, ``binary:person:...``; score = person IoU, the
paper's Table 2 setting) and "voc" (21 classes; score = mIoU, Table 3). Variants per task and PP
share: ``ours`` (binary: BCE with uncertainty + bootstrapping; 21 classes: MC cross-entropy +
Eq. 16 flips), ``l2`` (binary only: regression with uncertainty, Table 1), ``ce-pp`` (CE on the
PP images only), ``ce-boxes`` (CE on PP masks + BB boxes as masks), ``semi`` (PP masks + GrabCut
labels for BB, drawn with the same PP chance); plus ``full`` (every mask) once per seed.

Rows: one JSON each under benchmarks/results/train_uncertainty/, named TASK-VARIANT-ppNN-sS (or
TASK-full-sS); a finished row is not re-run and a killed one resumes (``weakseg train`` resumes
its run directory). ``--extra`` overrides go to every training command (e.g. the CPU protocol's
fields); the shared budget options are those of benchmarks.train_baselines.

    python -m benchmarks.train_uncertainty [--tasks person voc] [--pp 0.2 0.1 0.05]
        [--seeds 0 1 2] [--variants ours ce-pp ce-boxes semi] [--extra KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from benchmarks.common import HERE, load_rows, run_rows, train_wall
from benchmarks.results_md import replace_section
from benchmarks.train_baselines import add_budget_arguments, budget_overrides
from weakseg.cli import main as weakseg

ROWS = HERE / "results" / "train_uncertainty"
SECTION = "train-uncertainty"
# (task, variant) -> config; the PP share and seed are overrides.
CONFIGS = {
    ("person", "ours"): "configs/voc_uncertainty_person.yaml",
    ("person", "l2"): "configs/voc_uncertainty_person_l2.yaml",
    ("person", "ce-pp"): "configs/voc_uncertainty_person_ce_pp.yaml",
    ("person", "ce-boxes"): "configs/voc_uncertainty_person_ce_boxes.yaml",
    ("person", "semi"): "configs/voc_uncertainty_person_semi.yaml",
    ("person", "full"): "configs/voc_uncertainty_person_full.yaml",
    ("voc", "ours"): "configs/voc_uncertainty.yaml",
    ("voc", "ce-pp"): "configs/voc_uncertainty_ce_pp.yaml",
    ("voc", "ce-boxes"): "configs/voc_uncertainty_ce_boxes.yaml",
    ("voc", "semi"): "configs/voc_uncertainty_semi.yaml",
    ("voc", "full"): "configs/voc_full.yaml",
}
VARIANTS = ("ours", "l2", "ce-pp", "ce-boxes", "semi")
# GrabCut label folder under --labels for the semi rows (benchmarks.pseudo_labels makes
# "grabcut" for all voc-dev images; the person one is made here on first use).
GRABCUT = {"voc": "grabcut", "person": "person-grabcut"}


def row_name(task: str, variant: str, pp: float | None, seed: int) -> str:
    share = "" if pp is None else f"-pp{round(100 * pp):02d}"
    return f"{task}-{variant}{share}-s{seed}"


def plan(args: argparse.Namespace) -> dict[str, tuple[str, str, float | None, int]]:
    """Row name -> (task, variant, PP share or None for full, seed), in running order."""
    rows = {}
    for task in args.tasks:
        for seed in args.seeds:
            rows[row_name(task, "full", None, seed)] = (task, "full", None, seed)
            for pp in args.pp:
                for variant in args.variants:
                    if (task, variant) in CONFIGS:
                        rows[row_name(task, variant, pp, seed)] = (task, variant, pp, seed)
    return rows


def spec(task: str, data: str, split: str) -> str:
    voc = f"voc:{data}:{split}"
    return f"binary:person:{voc}" if task == "person" else voc


def person_grabcut(args: argparse.Namespace) -> Path:
    """GrabCut labels of dev_train's person boxes (resumable; skipped when done)."""
    out = Path(args.labels) / GRABCUT["person"]
    cmd = ["labels", "--dataset", spec("person", args.data, "dev_train"), "--generator",
           "grabcut", "--out", str(out), "--no-progress"]  # fmt: skip
    if weakseg(cmd) != 0:
        raise SystemExit(f"weakseg {' '.join(cmd)} failed")
    return out


def train_row(name: str, entry: tuple, args: argparse.Namespace) -> dict:
    """Train one row and evaluate it on dev_val."""
    task, variant, pp, seed = entry
    config, run_dir = CONFIGS[(task, variant)], Path(args.out) / name
    overrides = [*budget_overrides(args), f"train.seed={seed}", *args.extra]
    if pp is not None:
        overrides.append(f"method.labelled_fraction={pp}")
    if variant == "semi":
        labels = person_grabcut(args) if task == "person" else Path(args.labels) / GRABCUT[task]
        overrides.append(f"data.labels={labels}")
    cmd = ["train", config, *overrides, "--run-dir", str(run_dir)]
    if weakseg(cmd) != 0:
        raise SystemExit(f"weakseg {' '.join(cmd)} failed")
    summary = json.loads((run_dir / "train_summary.json").read_text())
    ecmd = ["eval", "--run-dir", str(run_dir), "--dataset", spec(task, args.data, "dev_val"),
            "--no-progress", "--tag", "dev_val"]  # fmt: skip
    if weakseg(ecmd) != 0:
        raise SystemExit(f"weakseg {' '.join(ecmd)} failed")
    result = json.loads((run_dir / "eval" / "dev_val.json").read_text())
    score = result["iou"]["person"] if task == "person" else result["miou"]
    return {"name": name, "task": task, "variant": variant, "pp": pp, "seed": seed,
            "config": config, "overrides": overrides, "summary": summary, "score": score,
            "miou": result["miou"], "iou": result["iou"],
            "train_command": "weakseg " + " ".join(cmd),
            "eval_command": "weakseg " + " ".join(ecmd)}  # fmt: skip


def mean_sd(values: list[float]) -> str:
    sd = f" ± {100 * statistics.stdev(values):.1f}" if len(values) > 1 else ""
    return f"{100 * statistics.mean(values):.1f}{sd}"


def group(rows: dict[str, dict]) -> dict[tuple, list[dict]]:
    """(task, variant, pp) -> its rows (one per seed)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows.values():
        groups.setdefault((r["task"], r["variant"], r["pp"]), []).append(r)
    return groups


def render(rows: dict[str, dict]) -> str:
    groups = group(rows)
    lines = ["## Label uncertainty on voc-dev (dev_train -> dev_val)", "",
             "Boxes for every dev_train image, masks for a seeded share of them (PP); person = "
             "binary person vs background (score: person IoU), voc = 21 classes (score: mIoU). "
             "Mean ± standard deviation over the seeds; ratios of the means.", "",
             "| task | variant | PP | score | seeds | / full | / CE on PP | train wall (each) "
             "| command (seed 0) |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for (task, variant, pp), members in sorted(groups.items(), key=_order):
        scores = [r["score"] for r in members]
        full = groups.get((task, "full", None))
        pp_only = groups.get((task, "ce-pp", pp))
        ratio_full = _ratio(scores, full)
        ratio_pp = _ratio(scores, pp_only) if pp is not None else "—"
        walls = ", ".join(train_wall(r["summary"]) for r in sorted(members, key=_seed))
        share = "all" if pp is None else f"{round(100 * pp)}%"
        first = min(members, key=_seed)
        command = first["train_command"]
        lines.append(f"| {task} | {variant} | {share} | {mean_sd(scores)} | {len(scores)} | "
                     f"{ratio_full} | {ratio_pp} | {walls} | `{command}` |")  # fmt: skip
    machines = sorted({(r["machine"], r["date"]) for r in rows.values()})
    lines += ["", "Measured on " + "; ".join(f"{m}, {d}" for m, d in machines) +
              " with `python -m benchmarks.train_uncertainty`; each row's eval command is in its "
              "JSON file."]  # fmt: skip
    return "\n".join(lines)


def _ratio(scores: list[float], reference: list[dict] | None) -> str:
    if not reference:
        return "—"
    return f"{statistics.mean(scores) / statistics.mean(r['score'] for r in reference):.2f}"


def _seed(row: dict) -> int:
    return row["seed"]


def _order(item: tuple) -> tuple:
    (task, variant, pp), _ = item
    rank = VARIANTS.index(variant) if variant in VARIANTS else -1
    return (task, -(pp or 1.0), rank)


def main() -> int:
    from benchmarks.common import DEFAULT_VOC

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=DEFAULT_VOC)
    parser.add_argument("--labels", default="bench-out/voc-dev", help="pseudo-label dirs")
    parser.add_argument("--out", default="bench-out/uncertainty")
    parser.add_argument("--tasks", nargs="+", default=["person", "voc"], choices=["person", "voc"])
    parser.add_argument("--pp", nargs="+", type=float, default=[0.2, 0.1, 0.05],
                        help="shares of dev_train that keep their masks")  # fmt: skip
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--extra", nargs="*", default=[], help="overrides for every row")
    add_budget_arguments(parser)
    parser.add_argument("--only", nargs="*", help="rows to (re)run, by name")
    parser.add_argument("--render", action="store_true", help="only rewrite RESULTS.md")
    args = parser.parse_args()
    rows = plan(args)
    run_rows(rows, ROWS, lambda name: train_row(name, rows[name], args),
             lambda: replace_section(HERE / "RESULTS.md", SECTION, render(load_rows(ROWS))),
             args.only, args.render)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
