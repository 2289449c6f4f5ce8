"""Trainer throughput on this CPU (training-core issue, item 8).

Rows (one JSON each under benchmarks/results/train_throughput/):
  bare-<mode>      a bare PyTorch loop: the same loader, model, optimizer and loss, nothing else
  trainer-<mode>   `weakseg.engine.loop.train` (logs, checkpoints, progress bar), same config
for mode in fp32, bf16, channels_last, bf16+channels_last. Each measures steady-state images/s over
the steps after a warm-up, on voc-dev dev_train crops (batch 8, 320 x 320, lite0 + DeepLabV3+).

    python -m benchmarks.train_throughput [--steps 30] [--warmup 3] [--emulated-bf16-steps 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

from benchmarks.common import DEFAULT_VOC, HERE, load_rows, save_row
from benchmarks.results_md import replace_section
from weakseg.config import load_config
from weakseg.data.training import collate_training
from weakseg.engine.loop import (
    build_optimizer,
    build_training_dataset,
    native_cpu_bf16,
    poly_lr,
    train,
)
from weakseg.methods import build_method

ROWS = HERE / "results" / "train_throughput"
MODES = {
    "fp32": ["train.precision=fp32", "train.channels_last=false"],
    "bf16": ["train.precision=bf16", "train.channels_last=false"],
    "channels_last": ["train.precision=fp32", "train.channels_last=true"],
    "bf16+channels_last": ["train.precision=bf16", "train.channels_last=true"],
}


def config(args: argparse.Namespace, mode: str):
    return load_config("configs/voc_full.yaml", [
        f"data.train=voc:{args.data}:dev_train", "data.val=", f"data.batch_size={args.batch}",
        f"train.iterations={args.warmup + args.steps}", "train.log_every=1",
        f"train.checkpoint_every={10 * (args.warmup + args.steps)}", "train.eval_every=0",
        *MODES[mode],
    ])  # fmt: skip


def bare_loop(cfg, steps: int) -> float:
    """images/s of the plainest loop a user would write for the same work."""
    torch.manual_seed(cfg.train.seed)
    method = build_method(cfg.train.method, cfg.method)
    data = build_training_dataset(cfg, method)
    model = method.build_model(cfg, len(data.classes))
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, cfg)
    loader = torch.utils.data.DataLoader(data, batch_size=cfg.data.batch_size, shuffle=True,
                                         num_workers=cfg.data.workers, drop_last=True,
                                         collate_fn=collate_training)  # fmt: skip
    model.train()
    total, times = cfg.train.iterations, []
    warmup = total - steps
    batches = iter(loader)
    for it in range(total):
        start = time.perf_counter()
        batch = next(batches)
        for group in optimizer.param_groups:
            group["lr"] = poly_lr(group["base_lr"], it, total, cfg.train.poly_power)
        images = batch["image"]
        if cfg.train.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", torch.bfloat16, enabled=cfg.train.precision == "bf16"):
            outputs = model(images)
        loss = sum(method.losses(batch, {k: v.float() for k, v in outputs.items()}).values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return cfg.data.batch_size * (total - warmup) / sum(times[warmup:])


def trainer(cfg, run_dir: Path, warmup: int) -> float:
    shutil.rmtree(run_dir, ignore_errors=True)
    train(cfg, run_dir)
    records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steady = [r for r in records if r["iteration"] > warmup]
    seconds = sum(cfg.data.batch_size / r["images_per_s"] for r in steady)
    return cfg.data.batch_size * len(steady) / seconds


def render(rows: dict) -> str:
    any_row = next(iter(rows.values()))
    lines = ["## Training throughput on this CPU", "",
             f"voc-dev dev_train crops, batch {any_row['batch']}, 320 x 320, lite0 + DeepLabV3+, "
             "`full` method, images/s over the steps after the warm-up steps, data loading "
             "included (2 loader workers), torch on all cores. This CPU computes bf16 "
             + ("natively." if any_row.get("native_bf16") else "by emulation (no AVX512-BF16 "
                "/ AMX), so its bf16 rows run a few steps only."), "",
             "| mode | steps (warm-up) | bare PyTorch loop img/s | weakseg trainer img/s | "
             "trainer overhead |", "|---|---|---|---|---|"]  # fmt: skip
    for mode in MODES:
        bare, ours = rows.get(f"bare-{mode}"), rows.get(f"trainer-{mode}")
        if bare and ours:
            overhead = 100 * (bare["images_per_s"] / ours["images_per_s"] - 1)
            lines.append(f"| {mode} | {bare['steps']} ({bare['warmup']}) | "
                         f"{bare['images_per_s']:.2f} | {ours['images_per_s']:.2f} | "
                         f"{overhead:+.1f}% |")  # fmt: skip
    lines += ["", f"Measured on {any_row['machine']}, {any_row['date']}, with "
              "`python -m benchmarks.train_throughput`."]  # fmt: skip
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=DEFAULT_VOC)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--emulated-bf16-steps", type=int, default=2,
                        help="steps for bf16 modes on CPUs without native bf16")  # fmt: skip
    parser.add_argument("--out", default="bench-out/throughput")
    parser.add_argument("--only", nargs="*", help="modes to (re)run")
    args = parser.parse_args()
    for mode in MODES:
        if args.only and mode not in args.only:
            continue
        run = argparse.Namespace(**vars(args))
        if "bf16" in mode and not native_cpu_bf16():  # emulated bf16: ~10x slower per step
            run.steps, run.warmup = args.emulated_bf16_steps, 1
        cfg = config(run, mode)
        common = {"mode": mode, "steps": run.steps, "warmup": run.warmup, "batch": args.batch,
                  "native_bf16": native_cpu_bf16()}  # fmt: skip
        ips = bare_loop(cfg, run.steps)
        save_row(ROWS, f"bare-{mode}", common | {"images_per_s": ips})
        ips = trainer(cfg, Path(args.out) / mode, run.warmup)
        save_row(ROWS, f"trainer-{mode}", common | {"images_per_s": ips})
        replace_section(HERE / "RESULTS.md", "train-throughput", render(load_rows(ROWS)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
