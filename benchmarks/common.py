"""Helpers shared by the benchmark scripts: one JSON file per row, machine description."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

HERE = Path(__file__).parent
DEFAULT_VOC = "../shared/data/voc-dev"  # relative to the repository root, where commands run


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = ""
    try:
        import torch

        if torch.cuda.is_available():
            gpu = f", {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return f"{cpu}, {os.cpu_count()} cores{gpu}"


def train_wall(summary: dict) -> str:
    """A training row's wall time from its train_summary.json; a resumed run says that the time
    covers only the iterations after the resume (the process that finished measured those)."""
    minutes = f"{summary['seconds'] / 60:.1f} min"
    start = summary.get("resumed_from", 0)
    if start:
        minutes += f" (iterations {start}-{summary['iterations']}, resumed)"
    return minutes


def save_row(folder: Path, name: str, row: dict) -> dict:
    """Write one row atomically as folder/name.json, stamped with machine and date."""
    folder.mkdir(parents=True, exist_ok=True)
    row = row | {"machine": machine(), "date": time.strftime("%Y-%m-%d")}
    tmp = folder / f".{name}.json.tmp"
    tmp.write_text(json.dumps(row, indent=2) + "\n")
    tmp.replace(folder / f"{name}.json")
    print(f"row {name}: written", flush=True)
    return row


def load_rows(folder: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def run_rows(
    names: Iterable[str],
    folder: Path,
    make_row: Callable[[str], dict],
    rewrite: Callable[[], None],
    only: list[str] | None = None,
    render_only: bool = False,
) -> None:
    """The loop every table shares: a row already in ``folder`` is skipped unless named in
    ``only``; each new row is saved the moment it exists, then ``rewrite`` redraws RESULTS.md (so
    a table killed half way keeps its finished rows and resumes)."""
    for name in [] if render_only else names:
        if only and name not in only:
            continue
        if (folder / f"{name}.json").exists() and not only:
            print(f"row {name}: already measured, skipped", flush=True)
            continue
        save_row(folder, name, make_row(name))
        rewrite()
    if render_only:
        rewrite()


SEEDS = (0, 1, 2)


def recorded_seeds(row_file: Path, inputs: dict | None = None) -> dict:
    """The per-seed records of a row already saved (``{}`` if none). A seed whose run directory
    is gone (a fresh clone, a cleaned bench-out) is kept from here, not trained again, when its
    record holds the very command it would run: adding seeds to a row never re-trains old ones.
    ``inputs`` names what the command cannot (e.g. which run of a label folder it reads): a row
    saved with other inputs keeps nothing."""
    if not row_file.exists():
        return {}
    row = json.loads(row_file.read_text())
    if inputs is not None and row.get("inputs") != inputs:
        return {}
    seeds = row.get("seeds")
    return seeds if isinstance(seeds, dict) else {}


def kept_seed(recorded: dict, seed: int, run_dir: Path, command: str) -> dict | None:
    """``recorded``'s entry for ``seed`` if its run directory is gone and the entry was made by
    ``command`` (the same settings); None otherwise (train, or resume the run directory)."""
    entry = recorded.get(str(seed))
    if run_dir.exists() or not isinstance(entry, dict):
        return None
    if command not in (entry.get("train_command"), entry.get("command")):
        return None
    print(f"{run_dir}: gone, seed {seed} kept from the row's record of `{command}`", flush=True)
    return entry


def seed_stats(values: list[float]) -> dict:
    """Mean, sample standard deviation and range of one row's per-seed values."""
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / max(len(values) - 1, 1)
    return {"mean": mean, "std": var**0.5, "min": min(values), "max": max(values)}


def compare(a: dict, b: dict) -> str:
    """'+2.7 (larger spread 3.3): no difference' for two seed_stats of fractions: a gap of the
    means smaller than the larger of the two sample sds is no difference."""
    diff, spread = 100 * (a["mean"] - b["mean"]), 100 * max(a["std"], b["std"])
    verdict = "no difference" if abs(diff) < spread else ("better" if diff > 0 else "worse")
    return f"{diff:+.1f} (larger spread {spread:.1f}): {verdict}"


def mean_spread(row: dict, key: str = "miou") -> str:
    """'54.3 ± 0.8' (mean ± sample sd over the row's seeds, in points) for a seeded row;
    '54.3 (one seed)' when it has one."""
    s = row[key]
    if len(row.get("seeds", ())) == 1:
        return f"{100 * s['mean']:.1f} (one seed)"
    return f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}"


def train_seeds(
    name: str,
    config: str,
    overrides: list[str],
    out: Path,
    val_spec: str,
    seeds: Iterable[int] = SEEDS,
    eval_flags: Sequence[str] = (),
    tag: str = "dev_val",
    row_file: Path | None = None,
    inputs: dict | None = None,
) -> dict:
    """Train ``config`` once per seed (``out/<name>/seed<k>``; a finished seed is not re-run, a
    killed one resumes) and evaluate each on ``val_spec`` (``weakseg eval`` with ``eval_flags``,
    result ``eval/<tag>.json``). Returns one row: each seed's mIoU, per-class IoU, wall time and
    commands, and mean/std/min/max over the seeds. Seeds recorded in ``row_file`` (the row's
    saved JSON) whose run directories are gone are kept from it if it was made with the same
    ``inputs`` (see recorded_seeds); ``inputs`` is saved in the row."""
    from weakseg.cli import main as weakseg

    recorded = recorded_seeds(row_file, inputs) if row_file else {}
    per_seed = {}
    for seed in seeds:
        run_dir = out / name / f"seed{seed}"
        cmd = ["train", "--run-dir", str(run_dir), config, *overrides, f"train.seed={seed}"]
        kept = kept_seed(recorded, seed, run_dir, "weakseg " + " ".join(cmd))
        if kept:
            per_seed[str(seed)] = kept
            continue
        if weakseg(cmd) != 0:
            raise SystemExit(f"weakseg {' '.join(cmd)} failed")
        result_file = run_dir / "eval" / f"{tag}.json"
        ecmd = ["eval", "--run-dir", str(run_dir), "--dataset", val_spec, "--no-progress",
                *eval_flags, "--tag", tag]  # fmt: skip
        if not result_file.exists() and weakseg(ecmd) != 0:
            raise SystemExit(f"weakseg {' '.join(ecmd)} failed")
        result = json.loads(result_file.read_text())
        summary = json.loads((run_dir / "train_summary.json").read_text())
        per_seed[str(seed)] = {
            "miou": result["miou"], "iou": result["iou"], "summary": summary,
            "train_command": "weakseg " + " ".join(cmd),
            "eval_command": "weakseg " + " ".join(ecmd),
        }  # fmt: skip
    first = next(iter(per_seed.values()))
    classes = list(first["iou"])
    mean_iou = {}
    for cls in classes:
        values = [s["iou"][cls] for s in per_seed.values() if s["iou"][cls] is not None]
        mean_iou[cls] = sum(values) / len(values) if values else None
    return {
        "name": name, "config": config, "overrides": overrides, "seeds": per_seed,
        "miou": seed_stats([s["miou"] for s in per_seed.values()]),
        "iou": mean_iou, "class_names": classes,
        "train_minutes": seed_stats([s["summary"]["seconds"] / 60 for s in per_seed.values()]),
    } | ({"inputs": inputs} if inputs is not None else {})  # fmt: skip
