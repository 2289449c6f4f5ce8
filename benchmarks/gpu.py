"""Paper-scale training on one GPU: full fine-tuning for the baseline, Box2Seg and BANA rows.

Where the CPU protocol freezes the encoder and trains a small decoder on cached features, this
entry trains everything as the papers do: the encoder fine-tuned at output stride 16, the
DeepLabV3+ decoder at its full width (256), batch 16, `--epochs` (20) epochs of dev_train,
bf16 autocast, losses at the crop's full resolution, 14 loader workers. It is sized to finish
inside 8 minutes on one H200-class GPU fed by 16 CPU cores.

    python scripts/pack_voc.py                 # here: voc-dev + pseudo labels, < 64 MiB
    python -m benchmarks.gpu --data gpu-pack/voc-dev --labels gpu-pack/labels   # on the GPU
    python -m benchmarks.gpu --smoke           # the same code on synthetic images, CPU, seconds

Rows (one JSON each under benchmarks/results/gpu/, RESULTS.md section "gpu"; a finished row is
not re-run): full, box, pseudo-grabcut, pseudo-crf-box (the baselines), affinity and box2seg
(Box2Seg Table 3), full-awl (Table 4), then BANA: its stage-1 classifier at output stride 8,
its Y_crf / Y_ret labels for dev_train (`weakseg labels --generator bana`, dense CRF on all
cores) and the NAL segmentation row. Pseudo labels for the grabcut / crf-box rows are read from
--labels (made on the CPU machine and packed) or made here when missing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from benchmarks.common import HERE, load_rows, mean_spread, run_rows, train_seeds
from benchmarks.results_md import replace_section

ROWS = HERE / "results" / "gpu"
# row -> (config, pseudo-label folder or None, extra overrides)
RUNS = {
    "full": ("configs/voc_full_cpu.yaml", None, []),
    "box": ("configs/voc_box_cpu.yaml", None, []),
    "pseudo-grabcut": ("configs/voc_pseudo_grabcut_cpu.yaml", "grabcut", []),
    "pseudo-crf-box": ("configs/voc_pseudo_crfbox_cpu.yaml", "crf-box", []),
    "affinity": ("configs/voc_box2seg_affinity_cpu.yaml", "grabcut", []),
    "box2seg": ("configs/voc_box2seg_cpu.yaml", "grabcut", []),
    "full-awl": ("configs/voc_full_awl_cpu.yaml", None, []),
    "bana-nal": ("configs/voc_bana_cpu.yaml", "bana", []),
}
TRAIN_IMAGES = 689  # dev_train


def paper_overrides(args: argparse.Namespace) -> list[str]:
    """Full fine-tuning at paper-like settings (or the tiny CPU version of it for --smoke)."""
    common = ["model.freeze=none", "data.cache_views=0", "model.decoder_channels=256",
              "train.loss_stride=1", "train.eval_every=0", "train.checkpoint_every=100000",
              f"data.train={args.train_spec}"]  # fmt: skip
    if args.smoke:
        return [*common, "data.crop_size=64", "data.batch_size=2", "data.workers=0",
                "model.weights=none", "train.device=cpu", "train.iterations=2",
                "train.threads=1"]  # fmt: skip
    iterations = args.epochs * TRAIN_IMAGES // args.batch_size
    return [*common, "model.output_stride=16", f"data.batch_size={args.batch_size}",
            f"train.iterations={iterations}", "train.precision=bf16", "train.device=cuda",
            f"data.workers={args.loader_workers}", "train.lr=0.01"]  # fmt: skip


def _weakseg(cmd: list[str]) -> None:
    from weakseg.cli import main as weakseg

    if weakseg(cmd) != 0:
        raise SystemExit(f"weakseg {' '.join(cmd)} failed")


def ensure_labels(generator: str, args: argparse.Namespace) -> Path:
    """The pseudo-label folder of ``generator`` under --labels, made first if missing."""
    out = Path(args.labels) / generator
    if (out / "meta.json").exists() and not args.smoke:
        return out  # packed with the data (made on the CPU machine from the same images)
    if generator == "bana":
        classifier = Path(args.out) / "bana-classifier"
        _weakseg(["train", "--run-dir", str(classifier), "configs/voc_bana_classifier.yaml",
                  *paper_overrides(args), "model.output_stride=8" if not args.smoke else
                  "model.output_stride=32"])  # fmt: skip
        extra = [f"run_dir={classifier}", f"device={'cpu' if args.smoke else 'cuda'}"]
    else:
        extra = []
    _weakseg(["labels", "--dataset", args.train_spec, "--generator", generator, "--out",
              str(out), "--workers", str(args.label_workers), "--no-progress", *extra])  # fmt: skip
    return out


def train_row(name: str, args: argparse.Namespace) -> dict:
    config, labels, extra = RUNS[name]
    overrides = [*paper_overrides(args), *extra]
    if labels:
        overrides.append(f"data.labels={ensure_labels(labels, args)}")
    row = train_seeds(name, config, overrides, Path(args.out), args.val_spec, args.seeds)
    return row | {"smoke": args.smoke}


def render(rows: dict[str, dict]) -> str:
    full = rows.get("full")
    lines = ["## Paper scale on a GPU (full fine-tuning)", "",
             "`python -m benchmarks.gpu` on a CUDA machine: lite2 + DeepLabV3+ (width 256) "
             "fine-tuned end to end at output stride 16, batch 16, 20 epochs of dev_train, bf16, "
             "losses at full resolution; dev_val single-scale. GPU and date in each row.", "",
             "| row | mIoU | / full | train min / run | img/s | machine | date |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name in RUNS:
        r = rows.get(name)
        if r is None or r.get("smoke"):
            continue
        ratio = f"{r['miou']['mean'] / full['miou']['mean']:.2f}" if full else "—"
        speed = [s["summary"]["images_per_s"] for s in r["seeds"].values()]
        lines.append(f"| {name} | {mean_spread(r)} | {ratio} | {r['train_minutes']['mean']:.1f} | "
                     f"{sum(speed) / len(speed):.0f} | {r['machine']} | {r['date']} |")  # fmt: skip
    if len(lines) == 6:
        lines.append("| (not run yet: no GPU session has run it) | | | | | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="gpu-pack/voc-dev", help="VOC root (packed copy)")
    parser.add_argument("--labels", default="gpu-pack/labels", help="pseudo-label folders")
    parser.add_argument("--out", default="bench-out/gpu", help="run directories")
    parser.add_argument("--results", default=str(ROWS), help="one JSON per row")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--loader-workers", type=int, default=14)
    parser.add_argument("--label-workers", type=int, default=16)
    parser.add_argument("--only", nargs="*", help="rows to (re)run")
    parser.add_argument("--smoke", action="store_true",
                        help="synthetic images, 2 iterations a row, CPU (tests)")  # fmt: skip
    args = parser.parse_args(argv)
    if not args.smoke:
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("benchmarks.gpu needs a CUDA GPU; --smoke runs it on the CPU")
        args.train_spec, args.val_spec = f"voc:{args.data}:dev_train", f"voc:{args.data}:dev_val"
        results = Path(args.results)
        run_rows(RUNS, results, lambda name: train_row(name, args),
                 lambda: replace_section(HERE / "RESULTS.md", "gpu", render(load_rows(results))),
                 args.only)  # fmt: skip
        return 0
    with tempfile.TemporaryDirectory(prefix="weakseg-gpu-smoke-") as tmp:
        args.train_spec, args.val_spec = "synthetic:6:0", "synthetic:2:1"
        args.labels, args.out, args.label_workers = f"{tmp}/labels", f"{tmp}/runs", 1
        results = Path(tmp) / "rows" if args.results == str(ROWS) else Path(args.results)
        run_rows(RUNS, results, lambda name: train_row(name, args), lambda: None, args.only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
