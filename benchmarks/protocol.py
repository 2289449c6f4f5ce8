"""The CPU training protocol on voc-dev: the acceptance row and the options it was chosen from.

Rows (one JSON each under benchmarks/results/protocol/; a finished row is not re-run):

  full-cpu-cold   `weakseg train configs/voc_full_cpu.yaml` as a user runs it, with an empty
                  feature-cache folder: the cache build (seed 0) and the training are both
                  timed, then `weakseg eval` on dev_val; seeds --seeds
  last-stage-cold the same with lite2's last stage trainable (`model.freeze=stride16`)
  last-stage-1000-cold  the same at 1,000 iterations instead of 1,200 (to fit 15 minutes)
  option rows     voc_full_cpu.yaml with one setting changed, at the config's budget (as the
                  method tables; --iterations overrides it), to compare quality per
                  minute: decoder width (the config's is 64), LargeFOV, views per image K,
                  encoder lite0/1/2, the last encoder stage trainable. The unchanged setting
                  is the `full` row of benchmarks/results/train_baselines_cpu/.

    python -m benchmarks.protocol [--only full-cpu-cold] [--seeds 0 1 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from benchmarks.common import (
    HERE,
    SEEDS,
    compare,
    load_rows,
    mean_spread,
    run_rows,
    save_row,
    train_seeds,
)
from benchmarks.results_md import replace_section
from benchmarks.train_baselines import ROWS as BASELINE_ROWS
from benchmarks.train_baselines import conditions, protocol_line

ROWS = HERE / "results" / "protocol"
SEARCH = HERE / "results" / "protocol_search"
CONFIG = "configs/voc_full_cpu.yaml"
# row -> (overrides of voc_full_cpu.yaml, what changes)
OPTIONS = {
    "width-256": (["model.decoder_channels=256"], "DeepLabV3+ width 256"),
    "width-128": (["model.decoder_channels=128"], "DeepLabV3+ width 128"),
    "largefov": (["model.decoder=largefov", "model.decoder_channels=256"],
                 "LargeFOV (fc6/fc7) width 256 instead of DeepLabV3+"),
    "views-1": (["data.cache_views=1"], "K = 1 view per image"),
    "views-4": (["data.cache_views=4"], "K = 4 views per image"),
    "lite0": (["model.encoder=tf_efficientnet_lite0"], "encoder lite0"),
    "lite1": (["model.encoder=tf_efficientnet_lite1"], "encoder lite1"),
    "last-stage": (["model.freeze=stride16"], "lite2's stride-32 stage trainable (cache at 16)"),
    "last-stage-1000": (["model.freeze=stride16", "train.iterations=1000"],
                        "the last stage trainable, 1,000 iterations (to fit 15 min cold)"),
}  # fmt: skip
# rows timed from an empty cache folder -> (their overrides of voc_full_cpu.yaml, what they run)
COLD = {
    "full-cpu-cold": ([], f"`{CONFIG}` from a cold cache"),
    "last-stage-cold": (OPTIONS["last-stage"][0],
                        f"`{CONFIG} model.freeze=stride16` (the last stage trainable) from a "
                        "cold cache"),
    "last-stage-1000-cold": (OPTIONS["last-stage-1000"][0],
                             f"`{CONFIG} model.freeze=stride16 train.iterations=1000` (the last "
                             "stage trainable, 1,000 iterations) from a cold cache"),
}  # fmt: skip


def cold_row(name: str, args: argparse.Namespace) -> dict:
    """voc_full_cpu.yaml (with COLD[name]'s overrides) from an empty cache folder, timed end
    to end."""
    cache = Path(args.out) / "cold-cache"
    shutil.rmtree(cache, ignore_errors=True)
    overrides = [*COLD[name][0], f"data.cache_dir={cache}", f"train.threads={args.threads}"]
    row = train_seeds(name, CONFIG, overrides, Path(args.out), f"voc:{args.data}:dev_val",
                      args.seeds)  # fmt: skip
    first = next(iter(row["seeds"].values()))["summary"]
    cached = first["feature_cache"]
    row["note"] = args.note
    row["cold"] = {"cache_minutes": cached["build_seconds"] / 60,
                   "built_by_this_run": cached["built_by_this_run"],
                   "train_minutes": first["seconds"] / 60,
                   "total_minutes": (cached["build_seconds"] + first["seconds"]) / 60}  # fmt: skip
    return row


def option_row(name: str, args: argparse.Namespace) -> dict:
    overrides = [*OPTIONS[name][0], f"train.threads={args.threads}",
                 f"data.cache_dir={args.cache_dir}"]  # fmt: skip
    if args.iterations:
        overrides.append(f"train.iterations={args.iterations}")
    row = train_seeds(name, CONFIG, overrides, Path(args.out), f"voc:{args.data}:dev_val",
                      args.seeds, row_file=ROWS / f"{name}.json")  # fmt: skip
    caches = [s["summary"]["feature_cache"] for s in row["seeds"].values()]
    built = [c["build_seconds"] for c in caches if c["build_seconds"] is not None]
    row["cache_minutes"] = max(built) / 60 if built else None  # None: built before it was timed
    row["cache_mib"] = caches[0]["mib"]
    return row


def search_row(run_dir: Path) -> dict:
    """A finished, evaluated run of voc_full_cpu.yaml with overrides (one seed), made by hand
    while choosing the protocol's defaults: its settings, mIoU and minutes."""
    from weakseg.config import load_config

    cfg = load_config(run_dir / "config.yaml")
    summary = json.loads((run_dir / "train_summary.json").read_text())
    evaluated = run_dir / "eval" / "dev_val.json"
    if not evaluated.exists():
        evaluated = run_dir / "eval" / "ss.json"  # `weakseg eval --dataset ...:dev_val`, no tag
    result = json.loads(evaluated.read_text())
    m, d, t = cfg.model, cfg.data, cfg.train
    settings = {
        "encoder": m.encoder.removeprefix("tf_efficientnet_"),
        "decoder": m.decoder,
        "width": m.decoder_channels,
        "optimizer": t.optimizer,
        "decoder lr": t.lr * t.head_lr_mult,
        "iterations": t.iterations,
        "batch": d.batch_size,
        "views": d.cache_views,
        "loss stride": t.loss_stride,
        "output stride": m.output_stride,
        "sampling": d.sampling,
    }
    return {"name": run_dir.name, "settings": settings, "miou": result["miou"],
            "iou": result["iou"], "seed": t.seed, "eval_dataset": result["dataset"],
            "train_minutes": summary["seconds"] / 60, "images_per_s": summary["images_per_s"],
            "command": f"weakseg train --run-dir {run_dir} {CONFIG} model.encoder={m.encoder} "
                       f"model.decoder={m.decoder} model.decoder_channels={m.decoder_channels} "
                       f"train.optimizer={t.optimizer} train.lr={t.lr:g} "
                       f"train.iterations={t.iterations} data.batch_size={d.batch_size} "
                       f"data.cache_views={d.cache_views} train.loss_stride={t.loss_stride} "
                       f"model.output_stride={m.output_stride} data.sampling={d.sampling} "
                       f"train.seed={t.seed}",
            }  # fmt: skip


# Settings that older search rows did not record, at the value they all had.
SETTING_DEFAULTS = {"output stride": 32, "sampling": "uniform"}


def _search_lines(rows: dict[str, dict]) -> list[str]:
    rows = {n: r | {"settings": r["settings"] | {k: v for k, v in SETTING_DEFAULTS.items()
                                                   if k not in r["settings"]}}
            for n, r in rows.items()}  # fmt: skip
    keys = list(max(rows.values(), key=lambda r: len(r["settings"]))["settings"])
    lines = ["How the defaults were chosen (one seed each, `train.seed=0`; only large gaps count, "
             "see the spread of the tables' rows):", "",
             "| run | " + " | ".join(keys) + " | mIoU | train min | img/s |",
             "|---|" + "---|" * (len(keys) + 3)]  # fmt: skip
    for r in sorted(rows.values(), key=lambda r: r["miou"]):
        cells = " | ".join(f"{r['settings'][k]:g}" if isinstance(r["settings"][k], float)
                           else str(r["settings"][k]) for k in keys)  # fmt: skip
        lines.append(f"| {r['name']} | {cells} | {100 * r['miou']:.1f} | "
                     f"{r['train_minutes']:.1f} | {r['images_per_s']:.1f} |")  # fmt: skip
    return lines


def _against(r: dict, default: dict | None) -> str:
    """An option against the default: the verdict by the spreads over 3 seeds; for one seed,
    only the gap to the default's run with the same seed."""
    if not default or r is default:
        return "—"
    if len(r["seeds"]) > 1:
        return compare(r["miou"], default["miou"])
    seed, run = next(iter(r["seeds"].items()))
    if seed not in default["seeds"]:
        return "—"
    gap = 100 * (run["miou"] - default["seeds"][seed]["miou"])
    return f"{gap:+.1f} vs its seed {seed} (one seed: no verdict)"


def _option_line(name: str, about: str, r: dict, default: dict | None) -> str:
    per_seed = " / ".join(f"{100 * s['miou']:.1f}" for s in r["seeds"].values())
    minutes = r["train_minutes"]["mean"]
    cache = "—" if r["cache_minutes"] is None else f"{r['cache_minutes']:.1f}"
    return (
        f"| {name} | {about} | {mean_spread(r)} | {per_seed} | {_against(r, default)} | "
        f"{cache} | {r['cache_mib']:.0f} | {minutes:.1f} | "
        f"{100 * r['miou']['mean'] / minutes:.1f} |"
    )


def _options_lines(rows: dict[str, dict], default: dict | None) -> list[str]:
    lines = ["Options, each changing one setting of the protocol at the tables' budget; cache = "
             "its one-off build (shared by every run with the same key), train = minutes per "
             "run, points per training minute = mIoU / train minutes:", "",
             "| row | change | mIoU | per seed | vs default | cache min | cache MiB | train min "
             "| mIoU pts / train min |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    shown = {n: rows[n] for n in OPTIONS if n in rows}
    if default:
        summary = next(iter(default["seeds"].values()))["summary"].get("feature_cache", {})
        seconds = summary.get("build_seconds")
        default = default | {"cache_minutes": seconds / 60 if seconds is not None else None,
                             "cache_mib": summary.get("mib", 0)}  # fmt: skip
        lines.append(_option_line("default (`full` row)", "as voc_full_cpu.yaml", default,
                                  default))  # fmt: skip
        shown["full"] = default
    for name, (_, about) in OPTIONS.items():
        if name in rows:
            lines.append(_option_line(name, about, rows[name], default))
    return [*lines, "", f"Measured on {conditions(shown)}, with `python -m benchmarks.protocol` "
            "(options at the command's --iterations)."]  # fmt: skip


def _cold_line(cold: dict, what: str) -> str:
    c = cold["cold"]
    seeds = " / ".join(f"{100 * s['miou']:.1f}" for s in cold["seeds"].values())
    command = next(iter(cold["seeds"].values()))["train_command"]
    return (f"**{what}**: {protocol_line(cold)}. Feature cache built in "
            f"{c['cache_minutes']:.1f} min, training {c['train_minutes']:.1f} min: "
            f"{c['total_minutes']:.1f} min in all (seed {next(iter(cold['seeds']))}; the other "
            f"seeds reuse the cache). mIoU on dev_val {mean_spread(cold)}; per seed: {seeds}. "
            f"Command: `{command}`. {cold.get('note', '')}")  # fmt: skip


def render(rows: dict[str, dict], baselines: dict[str, dict]) -> str:
    lines = ["## The CPU protocol (training-protocol issue)", ""]
    for name, (_, what) in COLD.items():
        if name in rows:
            lines += [_cold_line(rows[name], what), ""]
    if "full-cpu-cold-300it" in rows:
        lines += [
            _cold_line(
                rows["full-cpu-cold-300it"],
                "The same at the protocol's first "
                "budget (300 iterations, 2 views; rows named *-300it)",
            ),
            "",
        ]
    if "lite0-300it" in rows:
        r = rows["lite0-300it"]
        lines += [
            f"At that budget, lite0 instead of lite2: {mean_spread(r)} (seed "
            f"{next(iter(r['seeds']))}, against 48.0 for lite2 with the same seed).",
            "",
        ]
    default = baselines.get("full")
    if default or any(n in rows for n in OPTIONS):
        lines += [*_options_lines(rows, default), ""]
    search = load_rows(SEARCH)
    if search:
        lines += [*_search_lines(search), "",
                  "Recorded with `python -m benchmarks.protocol --record RUN_DIR ...` from runs "
                  "of `weakseg train` on configs/voc_full_cpu.yaml; each JSON row under "
                  "benchmarks/results/protocol_search/ holds the run's command with these "
                  "settings as overrides."]  # fmt: skip
    return "\n".join(lines)


def main() -> int:
    from benchmarks.common import DEFAULT_VOC

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=DEFAULT_VOC)
    parser.add_argument("--out", default="bench-out/protocol")
    parser.add_argument("--cache-dir", default="bench-out/cache")
    parser.add_argument("--iterations", type=int, default=0, help="option rows (0 = config's)")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--only", nargs="*", help="rows to (re)run")
    parser.add_argument("--note", default="", help="conditions of the cold row, e.g. load")
    parser.add_argument("--render", action="store_true", help="only rewrite RESULTS.md")
    parser.add_argument("--record", nargs="*", default=[],
                        help="evaluated run directories of voc_full_cpu.yaml to record as "
                        "search rows (then only RESULTS.md is rewritten)")  # fmt: skip
    args = parser.parse_args()
    for run_dir in map(Path, args.record):
        save_row(SEARCH, run_dir.name, search_row(run_dir))
    if args.record:
        args.render = True
    names = [*COLD, *OPTIONS]
    run_rows(names, ROWS,
             lambda name: cold_row(name, args) if name in COLD else option_row(name, args),
             lambda: replace_section(HERE / "RESULTS.md", "protocol",
                                     render(load_rows(ROWS), load_rows(BASELINE_ROWS))),
             args.only, args.render)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
