"""Label-uncertainty benchmark on voc-dev: PP masks + BB boxes, 3 seeds per row (issue 16).

Boxes for every dev_train image, masks for a seeded share of them (PP), in the CPU protocol
(configs/voc_uncertainty*_cpu.yaml, the budget of voc_full_cpu.yaml); every row is trained once
per seed (benchmarks.common.train_seeds) and evaluated on dev_val.

Tasks: "person" (binary person vs background, ``binary:person:...``; score = person IoU, the
paper's Table 2 setting) and "voc" (21 classes; score = mIoU, Table 3). Variants per task and PP
share: ``ours`` (binary: BCE with uncertainty + bootstrapping; 21 classes: MC cross-entropy +
Eq. 16 flips; both with our tau 10 and warm-up, ``method.tau`` / ``method.warmup``), variants
of ours that were tried (``TRIED``, run with --variants NAME: ``paper`` = tau 2.5 and no
warm-up, ``ours-tau25``, ``ours-warmup50``), ``l2`` (binary only: regression with uncertainty,
Table 1), ``ce-pp`` (CE on the PP images only), ``ce-boxes`` (CE on PP masks + BB boxes as
masks), ``semi`` (PP masks + GrabCut labels for BB, drawn with the same PP chance); plus ``full``
(every mask).

Rows: one JSON each under benchmarks/results/train_uncertainty/, named TASK-VARIANT-ppNN (or
TASK-full), holding every seed; a finished row is not re-run and a killed seed resumes (``weakseg
train`` resumes its run directory). ``--extra`` overrides go to every training command.

    python -m benchmarks.train_uncertainty [--tasks person voc] [--pp 0.2 0.1 0.05]
        [--seeds 0 1 2] [--variants ours ce-pp ce-boxes semi] [--extra KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.common import (
    HERE,
    compare,
    load_rows,
    mean_spread,
    run_rows,
    seed_stats,
    train_seeds,
)
from benchmarks.results_md import replace_section
from benchmarks.train_baselines import add_budget_arguments, budget_overrides, conditions
from weakseg.cli import main as weakseg

ROWS = HERE / "results" / "train_uncertainty"
SECTION = "train-uncertainty"
# (task, variant) -> config; the PP share and the seed are overrides.
CONFIGS = {
    ("person", "ours"): "configs/voc_uncertainty_person_cpu.yaml",
    ("person", "l2"): "configs/voc_uncertainty_person_l2_cpu.yaml",
    ("person", "ce-pp"): "configs/voc_uncertainty_person_ce_pp_cpu.yaml",
    ("person", "ce-boxes"): "configs/voc_uncertainty_person_ce_boxes_cpu.yaml",
    ("person", "semi"): "configs/voc_uncertainty_person_semi_cpu.yaml",
    ("person", "full"): "configs/voc_uncertainty_person_full_cpu.yaml",
    ("voc", "ours"): "configs/voc_uncertainty_cpu.yaml",
    ("voc", "ce-pp"): "configs/voc_uncertainty_ce_pp_cpu.yaml",
    ("voc", "ce-boxes"): "configs/voc_uncertainty_ce_boxes_cpu.yaml",
    ("voc", "semi"): "configs/voc_uncertainty_semi_cpu.yaml",
}
VARIANTS = ("ours", "l2", "ce-pp", "ce-boxes", "semi")
# Variants of "ours" (tau 10 after a 25% warm-up) that were tried, run by name: variant ->
# overrides of ours' config. "paper": the paper's tau and its loss from the first step.
TRIED = {
    "paper": ["method.tau=2.5", "method.warmup=0"],
    "ours-tau25": ["method.tau=2.5"],
    "ours-warmup50": ["method.warmup=0.5"],
}
# GrabCut label folder under --labels for the semi rows: "grabcut" (all 21 classes, as
# benchmarks.train_baselines uses), "person-grabcut" (made here on first use).
GRABCUT = {"voc": "grabcut", "person": "person-grabcut"}
# voc's full row is the baselines table's (configs/voc_full_cpu.yaml, the same protocol and
# seeds), read from there as benchmarks.sec does, not trained again.
BASELINES_FULL = HERE / "results" / "train_baselines_cpu" / "full.json"


def row_name(task: str, variant: str, pp: float | None) -> str:
    return f"{task}-{variant}" + ("" if pp is None else f"-pp{round(100 * pp):02d}")


def plan(args: argparse.Namespace) -> dict[str, tuple[str, str, float | None]]:
    """Row name -> (task, variant, PP share or None for full), in running order."""
    rows = {}
    for task in args.tasks:
        if (task, "full") in CONFIGS:
            rows[row_name(task, "full", None)] = (task, "full", None)
        for pp in args.pp:
            for variant in args.variants:
                if config_of(task, variant):
                    rows[row_name(task, variant, pp)] = (task, variant, pp)
    return rows


def config_of(task: str, variant: str) -> str | None:
    """The config of a (task, variant) row (a tried variant uses ours'), None if there is none."""
    return CONFIGS.get((task, "ours" if variant in TRIED else variant))


def spec(task: str, data: str, split: str) -> str:
    voc = f"voc:{data}:{split}"
    return f"binary:person:{voc}" if task == "person" else voc


def person_grabcut(args: argparse.Namespace) -> Path:
    """GrabCut labels of dev_train's person boxes (resumable; quick when done)."""
    out = Path(args.labels) / GRABCUT["person"]
    cmd = ["labels", "--dataset", spec("person", args.data, "dev_train"), "--generator",
           "grabcut", "--out", str(out), "--no-progress"]  # fmt: skip
    if weakseg(cmd) != 0:
        raise SystemExit(f"weakseg {' '.join(cmd)} failed")
    return out


def train_row(name: str, entry: tuple, args: argparse.Namespace) -> dict:
    """Train one row once per seed and evaluate each seed on dev_val."""
    task, variant, pp = entry
    overrides = [*budget_overrides(args), f"data.train={spec(task, args.data, 'dev_train')}"]
    if pp is not None:
        overrides.append(f"method.labelled_fraction={pp}")
    overrides += TRIED.get(variant, [])
    if variant == "semi":
        labels = person_grabcut(args) if task == "person" else Path(args.labels) / GRABCUT[task]
        overrides.append(f"data.labels={labels}")
    overrides += args.extra
    row = train_seeds(name, config_of(task, variant), overrides, Path(args.out),
                      spec(task, args.data, "dev_val"), args.seeds)  # fmt: skip
    scores = [s["iou"]["person"] if task == "person" else s["miou"] for s in row["seeds"].values()]
    row |= {"task": task, "variant": variant, "pp": pp, "score": seed_stats(scores)}
    if variant == "ours" or variant in TRIED:
        train = spec(task, args.data, "dev_train")
        row["flips"] = {seed: flip_statistics(Path(args.out) / name / f"seed{seed}", train)
                        for seed in row["seeds"]}  # fmt: skip
    return row


def flip_statistics(run_dir: Path, train_spec: str, images: int = 40) -> dict:
    """What the trained sigma flips, on the first ``images`` BB images of the training set: the
    share of box pixels whose target it changes (max_c var_c > tau: Eq. 11's W < 0.5 flips to
    background; Eq. 16 flips to argmax mu, counted where that is not the box label), and the flip
    precision: the share of those whose ground truth is not the box label (a right flip).
    Saved in the run's eval folder (computed once)."""
    out = run_dir / "eval" / "flips.json"
    if out.exists():
        return json.loads(out.read_text())
    import numpy as np
    import torch

    from weakseg.data.boxes import box_label_map
    from weakseg.data.specs import open_dataset
    from weakseg.engine.loop import load_trained
    from weakseg.methods import build_method
    from weakseg.viz.maps import model_maps

    model, cfg = load_trained(run_dir, "cpu")
    method = build_method(cfg.train.method, cfg.method)
    dataset = open_dataset(train_spec)
    pp = method.mixed.choose(dataset.ids)
    counts = {"box": 0, "flipped": 0, "wrong": 0, "flipped_wrong": 0}
    with torch.no_grad():
        for sample_id in [i for i in dataset.ids if i not in pp][:images]:
            sample = dataset.load(sample_id)
            y = box_label_map(sample.boxes, sample.box_labels, sample.height, sample.width)
            box = (y > 0) & (y != 255) & (sample.mask != 255)
            maps = model_maps(model, sample.image)
            flipped = box & ((maps["sigma"] ** 2).max(0) > method.tau)
            if len(dataset.classes) > 2:  # Eq. 16: a flip to the box label changes nothing
                flipped &= maps["seg"] != y
            wrong = box & (sample.mask != y)
            for key, where in (("box", box), ("flipped", flipped), ("wrong", wrong),
                               ("flipped_wrong", flipped & wrong)):  # fmt: skip
                counts[key] += int(np.count_nonzero(where))
    stats = counts | {
        "images": min(images, len(dataset.ids) - len(pp)),
        "flipped_share": counts["flipped"] / max(counts["box"], 1),
        "precision": counts["flipped_wrong"] / max(counts["flipped"], 1),
        "wrong_share": counts["wrong"] / max(counts["box"], 1),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(stats, indent=1))
    return stats


def table_rows() -> dict[str, dict]:
    """The rows of this table, plus the baselines table's `full` row as voc's full."""
    rows = load_rows(ROWS)
    if BASELINES_FULL.exists():
        full = json.loads(BASELINES_FULL.read_text())
        scores = [s["miou"] for s in full["seeds"].values()]
        source = str(BASELINES_FULL.relative_to(HERE.parent))
        rows["voc-full"] = full | {"name": "voc-full", "task": "voc", "variant": "full",
                                   "pp": None, "score": seed_stats(scores),
                                   "source": source}  # fmt: skip
    return rows


def render(rows: dict[str, dict]) -> str:
    by_key = {(r["task"], r["variant"], r["pp"]): r for r in rows.values()}
    wrong = _wrong_share(rows)
    lines = ["## Label uncertainty on voc-dev in the CPU protocol (dev_train -> dev_val)", "",
             "Boxes for every dev_train image, masks for a seeded share of them (PP); person = "
             "binary person vs background (score: person IoU), voc = 21 classes (score: mIoU). "
             "Score: mean ± sample sd over the seeds; ratios of the means.", "",
             "Flipped: share of the box pixels of 40 BB dev_train images whose target the "
             "trained sigma changes (max_c var_c > tau: to background in Eq. 11, to argmax mu "
             "in Eq. 16, counted where that differs from the box label), and in brackets the "
             "share of those whose ground truth is not the box label (flip precision; of all box "
             f"pixels, {wrong} are not their box's label).", "",
             "| task | variant | PP | score | per seed | / full | / CE on PP | flipped (precision) "
             "| train min / run | command (first seed) |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for key in sorted(by_key, key=_order):
        task, variant, pp = key
        r = by_key[key]
        per_seed = [s["iou"]["person"] if task == "person" else s["miou"]
                    for s in r["seeds"].values()]  # fmt: skip
        values = " / ".join(f"{100 * v:.1f}" for v in per_seed)
        ratio_full = _ratio(r, by_key.get((task, "full", None)))
        ratio_pp = _ratio(r, by_key.get((task, "ce-pp", pp))) if pp is not None else "—"
        share = "all" if pp is None else f"{round(100 * pp)}%"
        command = next(iter(r["seeds"].values()))["train_command"]
        lines.append(f"| {task} | {variant} | {share} | {mean_spread(r, 'score')} | {values} | "
                     f"{ratio_full} | {ratio_pp} | {_flips(r)} | "
                     f"{r['train_minutes']['mean']:.1f} | `{command}` |")  # fmt: skip
    lines += [
        "",
        "Variants of ours (`--variants NAME`; a row exists only if run): "
        + "; ".join(
            f"`{name}` = ours with {' '.join(overrides)}" for name, overrides in TRIED.items()
        )
        + ".",
    ]
    lines += _verdicts(by_key) + _tried(by_key)
    lines += ["", f"Measured on {conditions(rows)}, with `python -m benchmarks.train_uncertainty`"
              "; each seed's eval command is in the row's JSON file. Train minutes depend on the "
              "machine of the row's date and its load (the 2026-12-03 machine ran 1.5x slower "
              "until train.keep_freed_memory, see \"C allocator\"): compare scores across "
              "dates, not minutes."]  # fmt: skip
    lines += [f"Row {r['name']} is {r['source']} (the same config and protocol)."
              for r in rows.values() if r.get("source")]  # fmt: skip
    return "\n".join(lines)


def _verdicts(by_key: dict) -> list[str]:
    """Each ours row with 2+ seeds against the baselines at the same task and PP share (CE on PP
    + boxes, semi with GrabCut, CE on the PP images only): a difference of the means smaller
    than the larger of the two spreads is no difference."""
    out = []
    for (task, variant, pp), row in sorted(by_key.items(), key=lambda kv: _order(kv[0])):
        if variant != "ours" and variant not in TRIED:
            continue
        for baseline in ("ce-boxes", "semi", "ce-pp"):
            reference = by_key.get((task, baseline, pp))
            if not reference or len(row["seeds"]) < 2 or len(reference["seeds"]) < 2:
                continue
            verdict = compare(row["score"], reference["score"])
            out.append(f"- {task}, {round(100 * pp)}% PP: {variant} vs {baseline} {verdict}.")
    return [""] + out if out else []


def _tried(by_key: dict) -> list[str]:
    """Where ours (2+ seeds) is not ahead of CE on PP + boxes: the variants tried there."""
    out = []
    for (task, variant, pp), row in sorted(by_key.items(), key=lambda kv: _order(kv[0])):
        reference = by_key.get((task, "ce-boxes", pp))
        if variant != "ours" or not reference or len(reference["seeds"]) < 2:
            continue
        if len(row["seeds"]) < 2 or compare(row["score"], reference["score"]).endswith("better"):
            continue
        same_share = [key for key in sorted(by_key, key=_order) if key[::2] == (task, pp)]
        tried = [f"{v} {mean_spread(by_key[(t, v, p)], 'score')}"
                 for t, v, p in same_share if v in TRIED]  # fmt: skip
        out.append(f"- {task}, {round(100 * pp)}% PP: ours does not beat ce-boxes; variants tried "
                   f"there: {', '.join(tried) or 'none'}.")  # fmt: skip
    return [""] + out if out else []


def _flips(row: dict) -> str:
    """Mean flipped share and flip precision over the seeds, or "—"."""
    if not row.get("flips"):
        return "—"
    flips = list(row["flips"].values())
    share = sum(f["flipped_share"] for f in flips) / len(flips)
    precision = sum(f["precision"] for f in flips) / len(flips)
    return f"{100 * share:.1f}% ({100 * precision:.0f}%)"


def _wrong_share(rows: dict[str, dict]) -> str:
    """The share of box pixels whose ground truth is not the box label, per task."""
    shares = {}
    for r in rows.values():
        for f in r.get("flips", {}).values():
            shares.setdefault(r["task"], f["wrong_share"])
    return ", ".join(f"{100 * v:.0f}% for {task}" for task, v in sorted(shares.items())) or "—"


def _ratio(row: dict, reference: dict | None) -> str:
    if not reference:
        return "—"
    return f"{row['score']['mean'] / reference['score']['mean']:.2f}"


def _order(key: tuple) -> tuple:
    task, variant, pp = key
    order = ["ours", *TRIED, *VARIANTS[1:]]
    rank = order.index(variant) if variant in order else -1
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
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS),
                        choices=[*VARIANTS, *TRIED])  # fmt: skip
    parser.add_argument("--extra", nargs="*", default=[], help="overrides for every row")
    add_budget_arguments(parser)  # --seeds, --iterations, --threads, --cache-dir
    parser.add_argument("--only", nargs="*", help="rows to (re)run, by name")
    parser.add_argument("--render", action="store_true", help="only rewrite RESULTS.md")
    args = parser.parse_args()
    rows = plan(args)
    run_rows(rows, ROWS, lambda name: train_row(name, rows[name], args),
             lambda: replace_section(HERE / "RESULTS.md", SECTION, render(table_rows())),
             args.only, args.render)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
