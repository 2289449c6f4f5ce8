"""Baseline training benchmark on voc-dev in the CPU protocol (training-protocol issue).

Rows (one JSON each under benchmarks/results/train_baselines_cpu/; a finished row is not re-run
and a killed seed resumes from its checkpoint, because `weakseg train` resumes its run directory):
  full, box, pseudo-grabcut, pseudo-crf-box   `weakseg train configs/voc_*_cpu.yaml` on dev_train,
                                              once per seed (3 seeds), then `weakseg eval` on
                                              dev_val; mean, sample sd and range over the seeds
The pseudo-label rows train on dev_train labels made by `weakseg labels` (see --labels). Every row
shares the frozen encoder's feature cache (--cache-dir), built by the first row.

    python -m benchmarks.train_baselines [--only full box] [--seeds 0 1 2] [--threads 1]

The 300-iteration full-fine-tuning rows of earlier sessions (benchmarks/results/train_baselines/)
stay in RESULTS.md as the "earlier protocol" section.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.common import HERE, SEEDS, load_rows, mean_spread, run_rows, train_seeds
from benchmarks.results_md import replace_section

ROWS = HERE / "results" / "train_baselines_cpu"
# The same table at the protocol's first budget (300 iterations, 2 views), kept for comparison.
EARLIER_ROWS = HERE / "results" / "train_baselines_cpu_300it"
EARLIER_TITLE = ("## Earlier CPU protocol: the baselines at 300 iterations and 2 views "
                 "(dev_train -> dev_val)")  # fmt: skip
# row name -> (config, pseudo-label directory under --labels or None)
RUNS = {
    "full": ("configs/voc_full_cpu.yaml", None),
    "box": ("configs/voc_box_cpu.yaml", None),
    "pseudo-grabcut": ("configs/voc_pseudo_grabcut_cpu.yaml", "grabcut"),
    "pseudo-crf-box": ("configs/voc_pseudo_crfbox_cpu.yaml", "crf-box"),
}


def add_budget_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every protocol table takes (the budget itself lives in the configs)."""
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--iterations", type=int, default=0, help="0 = the config's")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per run")
    parser.add_argument("--cache-dir", default="bench-out/cache", help="feature cache")


def budget_overrides(args: argparse.Namespace) -> list[str]:
    """Overrides every row of a table shares (recorded in each row)."""
    out = [f"train.threads={args.threads}", f"data.cache_dir={args.cache_dir}",
           "train.eval_every=0"]  # fmt: skip
    if args.iterations:
        out.append(f"train.iterations={args.iterations}")
    return out


def train_row(name: str, args: argparse.Namespace, runs: dict = RUNS,
              rows: Path | None = None) -> dict:  # fmt: skip
    """Train row ``name`` of ``runs`` (name -> (config, label folder or None)) once per seed
    and evaluate each on dev_val; seeds recorded in ``rows``/<name>.json whose run directories
    are gone are kept (for tables that need nothing else from the run directories)."""
    config, labels = runs[name]
    overrides = [*budget_overrides(args), f"data.train=voc:{args.data}:dev_train"]
    if labels:
        overrides.append(f"data.labels={Path(args.labels) / labels}")
    row_file = rows / f"{name}.json" if rows else None
    return train_seeds(name, config, overrides, Path(args.out), f"voc:{args.data}:dev_val",
                       args.seeds, row_file=row_file)  # fmt: skip


def conditions(rows: dict[str, dict]) -> str:
    """Machines and dates of the rows, e.g. 'AMD EPYC, 2 cores, 2026-12-02'."""
    pairs = sorted({(r["machine"], r["date"]) for r in rows.values()})
    return "; ".join(f"{m}, {d}" for m, d in pairs)


def protocol_line(row: dict) -> str:
    """What a seeded row's config trains, read from its first seed's run."""
    from weakseg.config import load_config

    seed = next(iter(row["seeds"].values()))
    cfg = load_config(row["config"], row["overrides"])
    m, d, t = cfg.model, cfg.data, cfg.train
    views = seed["summary"].get("feature_cache", {}).get("views", d.cache_views)  # as trained
    return (f"{m.encoder} frozen ({m.freeze}), feature cache of {views} views per "
            f"image, {m.decoder} width {m.decoder_channels or 'default'}, "
            f"{seed['summary']['iterations']} iterations x batch {d.batch_size} of "
            f"{d.crop_size} px crops, losses at stride {t.loss_stride}, SGD with decoder lr "
            f"{t.lr * t.head_lr_mult:g} (poly)")  # fmt: skip


def row_cells(row: dict, full: dict | None) -> str:
    """'mean ± sd | per-seed values | / full | minutes per run | img/s' of a seeded row."""
    values = " / ".join(f"{100 * s['miou']:.1f}" for s in row["seeds"].values())
    ratio = f"{row['miou']['mean'] / full['miou']['mean']:.2f}" if full else "—"
    speed = [s["summary"]["images_per_s"] for s in row["seeds"].values()]
    return (f"{mean_spread(row)} | {values} | {ratio} | {row['train_minutes']['mean']:.1f} | "
            f"{sum(speed) / len(speed):.1f}")  # fmt: skip


def per_class_table(rows: dict[str, dict], names: list[str]) -> list[str]:
    """Per-class IoU (mean over seeds) of the named rows."""
    shown = [n for n in names if n in rows]
    lines = ["| class | " + " | ".join(shown) + " |", "|---|" + "---|" * len(shown)]
    for cls in rows[shown[0]]["class_names"]:
        cells = [rows[n]["iou"][cls] for n in shown]
        lines.append(f"| {cls} | " + " | ".join("—" if v is None else f"{100 * v:.1f}"
                                                for v in cells) + " |")  # fmt: skip
    return lines


def render(rows: dict[str, dict],
           title: str = "## Baselines on voc-dev in the CPU protocol (dev_train -> dev_val)",
           ) -> str:  # fmt: skip
    full = rows.get("full")
    lines = [title, "",
             f"{protocol_line(next(iter(rows.values())))}. Each row is trained with seeds "
             f"{', '.join(next(iter(rows.values()))['seeds'])} (the seed sets the decoder's "
             "initialisation and the batch order; the cached views are the same for every seed "
             "and row) and evaluated single-scale on the 172 dev_val images at their original "
             "size. mIoU: mean ± sample sd over the seeds; a gap smaller than the rows' spread "
             "is no difference.", "",
             "| method | labels | mIoU | per seed | / full | train min / run | img/s | command |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, (_, labels) in RUNS.items():
        if name in rows:
            r = rows[name]
            command = next(iter(r["seeds"].values()))["train_command"]
            what = labels or ("masks" if name == "full" else "boxes")
            lines.append(f"| {name} | {what} | {row_cells(r, full)} | `{command}` |")
    lines += ["", "Per-class IoU on dev_val (mean over seeds):", "",
              *per_class_table(rows, list(RUNS)), "",
              f"Measured on {conditions(rows)}, with `python -m benchmarks.train_baselines`; "
              "train minutes exclude the one-off feature cache (see the protocol table)."
              ]  # fmt: skip
    return "\n".join(lines)


def table_arguments(description: str) -> argparse.Namespace:
    """The command line of every protocol table trained on voc-dev (this one, Box2Seg's)."""
    from benchmarks.common import DEFAULT_VOC

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", default=DEFAULT_VOC)
    parser.add_argument("--labels", default="bench-out/voc-dev", help="pseudo-label dirs")
    parser.add_argument("--out", default="bench-out/train-cpu")
    add_budget_arguments(parser)
    parser.add_argument("--only", nargs="*", help="rows to (re)run")
    parser.add_argument("--render", action="store_true", help="only rewrite RESULTS.md")
    return parser.parse_args()


def main() -> int:
    args = table_arguments(__doc__.split("\n")[0])
    run_rows(RUNS, ROWS, lambda name: train_row(name, args, rows=ROWS), rewrite, args.only,
             args.render)  # fmt: skip
    return 0


def rewrite() -> None:
    """RESULTS.md's sections of this table: the protocol's and the earlier budget's."""
    rows = load_rows(ROWS)
    if rows:
        replace_section(HERE / "RESULTS.md", "train-baselines-cpu", render(rows))
    earlier = load_rows(EARLIER_ROWS)
    if earlier:
        replace_section(HERE / "RESULTS.md", "train-baselines-cpu-300it",
                        render(earlier, EARLIER_TITLE))  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
