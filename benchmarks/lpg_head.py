"""Why an LPG generator marks no object: its head, measured on training batches (issue 14).

For each seed of the given stage-1 rows (benchmarks/results/lpg/<row>.json, whose commands name
the run directories), load ``RUN/stage1/generator.pt`` and its ``lpg.yaml``, draw 8 batches of the
auxiliary set the way training does (batches 100000-100007 of the run's sampler, 64 crops), and
record at stride 4:

  object_share     share of cells where g's object channel wins
  dead_at_object   share of the object cells (ground truth) where every input of the last 1x1
                   conv is 0: the ReLU before it is dead there, so the margin is the bias
  margin_object    median margin (object logit - rest logit) at object cells; rest cells too
  bias_margin      the last conv's object bias - rest bias: the margin of a dead cell
  guide_to_image   mean |stem weight| on the box channel x guide_scale over that on the image
                   channels x 255 (hourglass: the box's weight in the first conv, in pixel units)

    python -m benchmarks.lpg_head --rows stage1-c-hourglass stage1-c-hourglass-guide255
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import machine, save_row
from benchmarks.lpg import ROWS
from benchmarks.results_md import replace_section

HERE = Path(__file__).parent
OUT = ROWS / "head"
BATCHES = range(100000, 100008)


def run_dir(command: str) -> Path:
    words = shlex.split(command)
    return Path(words[words.index("--run-dir") + 1])


@torch.inference_mode()
def head_stats(run: Path) -> dict:
    """The quantities of the module docstring for ``run``'s stage-1 generator."""
    from weakseg.data.specs import open_dataset
    from weakseg.methods.lpg import aux_pairs, generator_batch, load_lpg_config, target_at_cells
    from weakseg.models.lpg import load_generator

    net, info = load_generator(run / "stage1" / "generator.pt")
    s = load_lpg_config(run / "lpg.yaml").lpg
    aux = open_dataset(s.aux)
    pairs = aux_pairs(aux, s.aux_fraction, s.seed)
    last = net.head[-1]
    hidden = {}
    handle = last.register_forward_pre_hook(lambda m, args: hidden.__setitem__("x", args[0]))
    shares, dead, m_obj, m_rest = [], [], [], []
    for it in BATCHES:
        x, g, t = generator_batch(aux, pairs, None, s, it)
        logits = net(x, g)
        cells = target_at_cells(logits, t)
        margin = logits[:, 1] - logits[:, 0]
        shares.append((margin > 0).float().mean().item())
        obj, rest = cells == 1, cells == 0
        dead.append((hidden["x"] <= 0).all(1)[obj].float())
        m_obj.append(margin[obj]), m_rest.append(margin[rest])
    handle.remove()
    row = {
        "generator": str(run / "stage1" / "generator.pt"),
        "arch": info["arch"],
        "object_share": float(np.mean(shares)),
        "dead_at_object": torch.cat(dead).mean().item(),
        "margin_object": torch.cat(m_obj).median().item(),
        "margin_rest": torch.cat(m_rest).median().item(),
        "bias_margin": (last.bias[1] - last.bias[0]).item(),
    }
    if info["arch"] == "hourglass":
        w = net.stem[0].weight.abs()
        row["guide_to_image"] = (w[:, 3].mean() * net.guide_scale / (w[:, :3].mean() * 255)).item()
    return row


def measure(name: str) -> dict:
    source = json.loads((ROWS / f"{name}.json").read_text())
    seeds = {}
    for seed, entry in source["seeds"].items():
        run = run_dir(entry["command"])
        if not (run / "stage1" / "generator.pt").exists():
            print(f"{name} seed {seed}: {run} is gone, skipped", file=sys.stderr)
            continue
        seeds[seed] = {"miou": entry["miou"], **head_stats(run)}
        print(f"{name} seed {seed}: {seeds[seed]}")
    if not seeds:
        raise SystemExit(f"{name}: none of its run directories is left; rerun the row first")
    command = f"python -m benchmarks.lpg_head --rows {name}"
    return {"name": name, "command": command, "seeds": seeds, "machine": machine()}


def render(rows: list[dict]) -> str:
    lines = [
        "## LPG: the generator's head (why a generator marks no object)",
        "",
        "`python -m benchmarks.lpg_head --rows ROW`: each seed's stage-1 generator on 64 training "
        "crops of its auxiliary set (stride-4 cells). dead at object = share of the object cells "
        "where every input of the last 1x1 conv is 0 (the margin there is the bias margin).",
        "",
        "| row | seed | dev_val mIoU | object share | dead at object | margin at object "
        "(median) | at rest | bias margin | box : image in the stem |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        for seed, r in row["seeds"].items():
            ratio = f"{r['guide_to_image']:.3f}" if "guide_to_image" in r else "—"
            lines.append(
                f"| {row['name']} | {seed} | {100 * r['miou']:.1f} | {r['object_share']:.3f} | "
                f"{r['dead_at_object']:.2f} | {r['margin_object']:+.2f} | {r['margin_rest']:+.2f}"
                f" | {r['bias_margin']:+.3f} | {ratio} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", nargs="*", default=[], help="stage-1 rows of benchmarks.lpg")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    for name in args.rows:
        save_row(OUT, name, measure(name))
    rows = [json.loads(f.read_text()) for f in sorted(OUT.glob("*.json"))]
    replace_section(HERE / "RESULTS.md", "lpg-head", render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
