"""Start-up time of the command line (issue 17, item 3: `weakseg --help` under 0.5 s).

Each command runs in a fresh interpreter `--repeats` times and the median wall time is kept, next
to a bare `python -c pass` (the interpreter's own start-up) and the heavy libraries each command
imported. One row per source tree under benchmarks/results/cli_startup/: `--src src` (this tree)
and, for comparison, `--src ../main/src --name before` (the code before the change).

    python -m benchmarks.cli_startup [--src src] [--name this-tree] [--repeats 9] [--render]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import HERE, load_rows, run_rows
from benchmarks.results_md import replace_section

ROWS = HERE / "results" / "cli_startup"
COMMANDS = {
    "python -c pass": ["-c", "pass"],
    "weakseg --help": ["-m", "weakseg", "--help"],
    "weakseg labels --help": ["-m", "weakseg", "labels", "--help"],
    "weakseg train --help": ["-m", "weakseg", "train", "--help"],
}
HEAVY = ("torch", "timm", "cv2", "pydensecrf", "matplotlib")
PROBE = ("import runpy, sys, json; sys.argv = ['weakseg', *sys.argv[1:]]\n"
         "try: runpy.run_module('weakseg', run_name='__main__')\n"
         "except SystemExit: pass\n"
         f"print('HEAVY=' + json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")  # fmt: skip


def timed(args: list[str], env: dict) -> tuple[float, float]:
    """(wall, CPU) seconds of one run; CPU (user + system) suffers less from a busy machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def heavy_modules(args: list[str], env: dict) -> list[str]:
    if args[:1] != ["-m"]:
        return []
    out = subprocess.run([sys.executable, "-c", PROBE, *args[2:]], env=env, check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    return json.loads(out.split("HEAVY=")[1])


def startup_row(src: Path, repeats: int) -> dict:
    env = os.environ | {"PYTHONPATH": str(src.resolve())}
    commit = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    row = {"src": str(src), "commit": commit, "repeats": repeats, "seconds": {},
           "cpu_seconds": {}, "heavy": {}}  # fmt: skip
    for name, args in COMMANDS.items():
        timed(args, env)  # warm the file cache
        walls, cpus = zip(*(timed(args, env) for _ in range(repeats)), strict=True)
        row["seconds"][name] = statistics.median(walls)
        row["cpu_seconds"][name] = statistics.median(cpus)
        row["heavy"][name] = heavy_modules(args, env)
        print(
            f"{name}: {row['seconds'][name]:.3f} s wall, {row['cpu_seconds'][name]:.3f} s CPU "
            f"{row['heavy'][name]}",
            flush=True,
        )
    row["load"] = os.getloadavg()[0]
    row["command"] = f"python -m benchmarks.cli_startup --src {src} --repeats {repeats}"
    return row


def render(rows: dict[str, dict]) -> str:
    names = list(rows)
    lines = [
        "## Command-line start-up",
        "",
        "Median wall / CPU (user + system) seconds of a fresh interpreter running each command "
        "(issue 17: `--help` under 0.5 s); heavy libraries it imported in brackets. Other jobs "
        "shared the 2 cores (1-minute load average in the last row), which stretches wall times; "
        "CPU time is the steadier number.",
        "",
        "| command | " + " | ".join(f"{n} ({rows[n]['commit']})" for n in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for command in COMMANDS:
        cells = []
        for n in names:
            heavy = rows[n]["heavy"][command]
            cells.append(f"{rows[n]['seconds'][command]:.2f} / "
                         f"{rows[n]['cpu_seconds'][command]:.2f} s"
                         + (f" [{', '.join(heavy)}]" if heavy else ""))  # fmt: skip
        lines.append(f"| `{command}` | " + " | ".join(cells) + " |")
    lines.append("| load average | " + " | ".join(f"{rows[n]['load']:.1f}" for n in names) + " |")
    lines += [
        "",
        "Measured with "
        + "; ".join(
            f"`{rows[n]['command']}` ({rows[n]['machine']}, {rows[n]['date']})" for n in names
        )
        + ".",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", default="src", help="the weakseg source tree to time")
    parser.add_argument("--name", default="this-tree", help="row name")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--render", action="store_true", help="only rewrite RESULTS.md")
    args = parser.parse_args()
    run_rows([args.name], ROWS, lambda _: startup_row(Path(args.src), args.repeats),
             lambda: replace_section(HERE / "RESULTS.md", "cli-startup", render(load_rows(ROWS))),
             [args.name], args.render)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
