"""Training images/s with glibc's malloc as it comes and with ``train.keep_freed_memory``.

Each row trains configs/voc_full_cpu.yaml (the CPU protocol, feature cache of voc-dev dev_train
built beforehand or on first use) for ``--iterations`` steps in a fresh run directory, in a child
process, once per seed (``train.seed``), and keeps each run's images/s (train_summary.json),
minor page faults and user and system CPU seconds (getrusage of the child). Rows: ``system``
(keep_freed_memory=false) and ``kept`` (true, the default), one JSON each under
benchmarks/results/allocator/ with every seed's run and their mean ± sd.

    python -m benchmarks.allocator [--iterations 100] [--threads 1] [--seeds 0 1 2] [--render]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import HERE, load_rows, run_rows, seed_stats
from benchmarks.results_md import replace_section

ROWS = HERE / "results" / "allocator"
SETTINGS = {"system": "false", "kept": "true"}


def train_row(name: str, args: argparse.Namespace) -> dict:
    runs = {str(seed): train_run(name, seed, args) for seed in args.seeds}
    row = {"seeds": runs, "score": seed_stats([r["images_per_s"] for r in runs.values()])}
    first = runs[str(args.seeds[0])]  # the table's single-run columns: the first seed's
    return row | {k: first[k] for k in ("wall_seconds", "minor_faults", "user_seconds",
                                        "system_seconds", "load", "command")}  # fmt: skip


def train_run(name: str, seed: int, args: argparse.Namespace) -> dict:
    run_dir = Path(args.out) / name / f"seed{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = ["weakseg", "train", "--run-dir", str(run_dir), "configs/voc_full_cpu.yaml",
           f"train.threads={args.threads}", f"data.cache_dir={args.cache_dir}",
           f"train.iterations={args.iterations}", "train.eval_every=0",
           "train.checkpoint_every=100000",
           f"train.keep_freed_memory={SETTINGS[name]}", f"train.seed={seed}"]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "weakseg", *cmd[1:]], check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = json.loads((run_dir / "train_summary.json").read_text())
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    return {"images_per_s": summary["images_per_s"], "train_seconds": summary["seconds"],
            "wall_seconds": wall, "minor_faults": after.ru_minflt - before.ru_minflt,
            "user_seconds": user, "system_seconds": system, "load": os.getloadavg()[0],
            "command": " ".join(cmd)}  # fmt: skip


def render(rows: dict[str, dict]) -> str:
    lines = ["## C allocator: training images/s with and without `train.keep_freed_memory`", "",
             "configs/voc_full_cpu.yaml (frozen lite2, cached features, batch 16) for a short run "
             "in a child process: images/s of its training steps, minor page faults per second "
             "of the whole process (cache loading included) and the kernel's share of its CPU "
             "time. `system` = glibc's malloc as it comes (freed blocks above the mmap threshold "
             "go back to the kernel, and are faulted in again at the next step, page by page); "
             "`kept` = weakseg.engine.memory.keep_freed_memory (the default).", "",
             "img/s: mean ± sd over the seeds' runs; the other columns: the first seed's run.", "",
             "| allocator | img/s | per seed | page faults / s | system CPU share | load average "
             "| command (first seed) |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name in [n for n in SETTINGS if n in rows]:
        r = rows[name]
        faults = r["minor_faults"] / r["wall_seconds"]
        kernel = r["system_seconds"] / (r["user_seconds"] + r["system_seconds"])
        per_seed = " / ".join(f"{s['images_per_s']:.1f}" for s in r["seeds"].values())
        score = f"{r['score']['mean']:.1f} ± {r['score']['std']:.1f}"
        lines.append(f"| {name} | {score} | {per_seed} | {faults:,.0f} | {100 * kernel:.0f}% "
                     f"| {r['load']:.1f} | `{r['command']}` |")  # fmt: skip
    if {"system", "kept"} <= rows.keys():
        gain = rows["kept"]["score"]["mean"] / rows["system"]["score"]["mean"]
        lines += ["", f"kept / system: {gain:.2f}x images/s."]
    dates = sorted({f"{r['machine']}, {r['date']}" for r in rows.values()})
    lines += ["", f"Measured on {'; '.join(dates)}, with `python -m benchmarks.allocator`; "
              "other jobs may share the cores (load average column)."]  # fmt: skip
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--cache-dir", default="bench-out/cache")
    parser.add_argument("--out", default="bench-out/allocator")
    parser.add_argument("--render", action="store_true", help="only rewrite RESULTS.md")
    args = parser.parse_args()
    run_rows(list(SETTINGS), ROWS, lambda name: train_row(name, args),
             lambda: replace_section(HERE / "RESULTS.md", "allocator", render(load_rows(ROWS))),
             list(SETTINGS), args.render)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
