"""Time `make demo` (training-core issue, acceptance: under 10 minutes on 2 cores, and its table
shows pseudo(grabcut) above box). Runs `weakseg demo` with its defaults into a fresh folder (the
demo's pseudo labels resume, so an old folder would make it look faster) and records its own
timing and mIoUs as one row under benchmarks/results/demo/.

    python -m benchmarks.demo    # run on a quiet machine: the timing is the point
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from benchmarks.common import HERE, load_rows, run_rows
from benchmarks.results_md import replace_section
from weakseg.cli import main as weakseg

ROWS = HERE / "results" / "demo"


def demo_row(out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cmd = ["demo", "--out", str(out)]
    if weakseg(cmd) != 0:
        raise SystemExit("weakseg demo failed")
    result = json.loads((out / "results.json").read_text())
    return {"name": "demo", **result, "command": "make demo (= weakseg " + " ".join(cmd) + ")"}


def render(rows: dict[str, dict]) -> str:
    lines = ["## `make demo`", ""]
    r = rows.get("demo")
    if r is None:
        return "\n".join([*lines, "Not measured yet: `python -m benchmarks.demo`."])
    labels = ", ".join(f"{n} {100 * v:.1f}" for n, v in r["labels"].items())
    models = ", ".join(f"{n} {100 * v:.1f}" for n, v in r["models"].items())
    lines += [
        f"`{r['command']}` on {r['machine']}, {r['date']}, nothing else running: "
        f"**{r['seconds'] / 60:.1f} min** end to end on {r['dataset']}.",
        "",
        f"- pseudo labels on the training images (mIoU %): {labels}",
        f"- trained models on held-out synthetic images (mIoU %): {models}",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="bench-out/demo")
    parser.add_argument("--render", action="store_true", help="only rewrite RESULTS.md")
    args = parser.parse_args()
    run_rows(["demo"], ROWS, lambda _: demo_row(Path(args.out)),
             lambda: replace_section(HERE / "RESULTS.md", "demo", render(load_rows(ROWS))),
             ["demo"], args.render)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
