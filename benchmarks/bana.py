"""BANA on voc-dev (BANA issue, item 6): the three stages, one JSON row each under
benchmarks/results/bana/ (a finished row is skipped, a killed training resumes).

  classifier-bap, classifier-gap   stage 1: `weakseg train configs/voc_bana_classifier.yaml`
                                   (method.pooling=bap|gap), the baselines' iteration budget
  labels-gap, labels-bap-no-u0,    stage 2: `weakseg labels --generator bana` over all 861 images
  labels-bap, labels-bap-u0-a      (the classifier saw only dev_train: dev_val is unseen), scored
                                   with `weakseg eval-labels` on dev_train and dev_val: Y_crf, and
                                   for labels-bap also Y_ret and "Y_crf & Y_ret" (mIoU on the
                                   agreeing pixels, with the share of pixels left unreliable);
                                   labels-bap-u0-a (ours): u_0 = A, without the 0.99 threshold
  cam-precision                    supplement Table 2: per-class precision of u_c, GAP vs BAP,
                                   on dev_train (sum of u_c inside the class's mask / sum of u_c)
  seg-ycrf, seg-yret, seg-nal,     stage 3 and Table 3/4 of the paper: `weakseg train` on Y_crf,
  seg-none, seg-entropy,           on Y_ret, with NAL, and with the compared losses on ~S
  seg-bootstrap                    (none / entropy / bootstrapping), then `weakseg eval` on dev_val
  seg-ycrf-seed1, seg-nal-seed1    two of them again with train.seed=1: how far one row moves

    python -m benchmarks.bana [--iterations 300 --threads 1] [--only labels-bap]

On a CUDA machine training and the CAMs of cam-precision run on the GPU (``--device``); the label
generator's CRF runs on ``--workers`` CPU processes either way.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import DEFAULT_VOC, HERE, load_rows, run_rows, train_wall
from benchmarks.results_md import replace_section
from benchmarks.train_baselines import ROWS as BASELINE_ROWS
from weakseg.cli import main as weakseg
from weakseg.data.classes import VOC_CLASSES
from weakseg.data.specs import open_dataset
from weakseg.engine.evaluate import ConfusionMatrix
from weakseg.pseudo.store import LabelStore

ROWS = HERE / "results" / "bana"
CLASSIFIERS = {"classifier-bap": "bap", "classifier-gap": "gap"}
LABELS = {  # row -> (classifier row, generator overrides)
    "labels-gap": ("classifier-gap", []),
    "labels-bap-no-u0": ("classifier-bap", ["background=cam"]),
    "labels-bap": ("classifier-bap", []),
    "labels-bap-u0-a": ("classifier-bap", ["bg_threshold=0"]),  # ours: u_0 = A, no threshold
}
SEGMENTATION = {  # row -> (config, label folder under the labels-bap directory, overrides)
    "seg-ycrf": ("configs/voc_pseudo_grabcut.yaml", "", []),
    "seg-yret": ("configs/voc_pseudo_grabcut.yaml", "ret", []),
    "seg-nal": ("configs/voc_bana.yaml", "", ["train.snapshot_every=50"]),  # Fig. 5 sigma
    "seg-none": ("configs/voc_bana.yaml", "", ["method.unreliable=none"]),
    "seg-entropy": ("configs/voc_bana.yaml", "", ["method.unreliable=entropy"]),
    "seg-bootstrap": ("configs/voc_bana.yaml", "", ["method.unreliable=bootstrap"]),
    # the same two rows with another seed (init and data order): the spread of one row
    "seg-ycrf-seed1": ("configs/voc_pseudo_grabcut.yaml", "", ["train.seed=1"]),
    "seg-nal-seed1": ("configs/voc_bana.yaml", "", ["train.seed=1"]),
}
# row -> (what it trains on, the paper's VOC 2012 val mIoU: Table 4 after CRF for the first
# three, Table 3 before / after CRF for the losses on ~S; DeepLab-V1 VGG-16)
SEGMENTATION_ABOUT = {
    "seg-ycrf": ("CE on Y_crf", "67.8 (CRF)"),
    "seg-yret": ("CE on Y_ret", "66.1 (CRF)"),
    "seg-nal": ("NAL: CE on S + 0.1 L_wce on ~S", "62.4 / 68.1"),
    "seg-none": ("CE on S, ~S ignored", "61.8 / 67.5"),
    "seg-entropy": ("CE on S + entropy on ~S", "61.4 / 67.3"),
    "seg-bootstrap": ("CE on S + bootstrapping on ~S", "61.9 / 67.6"),
    "seg-ycrf-seed1": ("CE on Y_crf, train.seed=1", "—"),
    "seg-nal-seed1": ("NAL, train.seed=1", "—"),
}
BUDGET_KEYS = ("train.iterations", "data.batch_size", "data.crop_size", "train.precision")
PAPER = {"labels-gap": (75.5, 76.1), "labels-bap-no-u0": (77.0, 77.8), "labels-bap": (78.7, 79.2)}


def add_budget_arguments(parser: argparse.ArgumentParser) -> None:
    """The earlier protocol's budget (full fine-tuning, 300 iterations) that this table was
    measured with; re-measuring BANA in the CPU protocol is still to do."""
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--crop", type=int, default=320)
    parser.add_argument("--precision", default="fp32",
                        help="bf16 only on CPUs with AVX512-BF16/AMX")  # fmt: skip
    parser.add_argument("--threads", type=int, default=0)


def budget_overrides(args: argparse.Namespace) -> list[str]:
    """The one budget every row shares (recorded in each row and in RESULTS.md)."""
    return [f"train.iterations={args.iterations}", f"data.batch_size={args.batch_size}",
            f"data.crop_size={args.crop}", f"train.precision={args.precision}",
            "train.channels_last=true", f"train.threads={args.threads}",
            f"train.checkpoint_every={max(args.iterations // 6, 1)}"]  # fmt: skip


def _run(cmd: list[str]) -> None:
    if weakseg(cmd) != 0:
        raise SystemExit(f"weakseg {' '.join(cmd)} failed")


def train_overrides(args: argparse.Namespace) -> list[str]:
    """The shared budget plus this benchmark's data, device and loader settings."""
    return [*budget_overrides(args), f"data.train=voc:{args.data}:dev_train",
            f"data.workers={args.loader_workers}", f"train.device={args.device}",
            "train.eval_every=0"]  # fmt: skip


def classifier_row(name: str, args: argparse.Namespace) -> dict:
    run_dir = Path(args.out) / name
    overrides = [*train_overrides(args), f"method.pooling={CLASSIFIERS[name]}",
                 f"model.output_stride={args.classifier_stride}"]  # fmt: skip
    cmd = ["train", "configs/voc_bana_classifier.yaml", *overrides, "--run-dir", str(run_dir)]
    _run(cmd)
    summary = json.loads((run_dir / "train_summary.json").read_text())
    return {"name": name, "summary": summary, "command": "weakseg " + " ".join(cmd)}


def score_agreement(data_spec: str, labels: Path) -> dict:
    """mIoU of Y_crf on the pixels where Y_crf == Y_ret, and the share of pixels left out."""
    data = open_dataset(data_spec)
    store, cm, left, total = LabelStore(labels), ConfusionMatrix(len(data.classes)), 0, 0
    for sample in data:
        y_crf, y_ret = store.read(sample.id), store.read(sample.id, "ret")
        agree = y_crf == y_ret
        cm.update(np.where(agree, y_crf, 255), np.where(agree, sample.mask, 255))
        left += int((~agree).sum())
        total += agree.size
    return {"miou": cm.miou(), "unreliable_share": left / total}


def labels_row(name: str, args: argparse.Namespace) -> dict:
    classifier, extra = LABELS[name]
    label_dir = Path(args.out) / name
    run_dir = Path(args.out) / classifier
    cmd = [
        "labels",
        "--dataset",
        f"voc:{args.data}",
        "--generator",
        "bana",
        "--out",
        str(label_dir),
        "--workers",
        str(args.workers),
        "--no-progress",
        f"run_dir={run_dir}",
        f"device={args.device}",
        *extra,
    ]
    _run(cmd)
    runs = [json.loads(ln) for ln in (label_dir / "runs.jsonl").read_text().splitlines()]
    row = {
        "name": name,
        "command": "weakseg " + " ".join(cmd),
        "wall_seconds": sum(r["wall_seconds"] for r in runs),
        "cpu_seconds_per_image": runs[-1]["cpu_seconds_per_image"],
    }
    maps = (
        {"y_crf": label_dir, "y_ret": label_dir / "ret"}
        if name == "labels-bap"
        else {"y_crf": label_dir}
    )
    for split in ("dev_train", "dev_val"):
        for key, folder in maps.items():
            out = Path(args.out) / f"eval-{name}-{key}-{split}.json"
            ecmd = [
                "eval-labels",
                "--dataset",
                f"voc:{args.data}:{split}",
                "--labels",
                str(folder),
                "--json",
                str(out),
                "--no-progress",
            ]
            _run(ecmd)
            row[f"{key}_{split}"] = json.loads(out.read_text()) | {
                "command": "weakseg " + " ".join(ecmd)
            }  # noqa: E501
        if name == "labels-bap":
            row[f"agree_{split}"] = score_agreement(f"voc:{args.data}:{split}", label_dir)
    return row


def cam_precision_row(args: argparse.Namespace) -> dict:
    """Supplement Table 2: precision_c = sum of u_c on class-c mask pixels / sum of u_c, over
    dev_train, with each classifier's u_c (Eq. 5) upsampled to the image."""
    import torch.nn.functional as F

    from weakseg.engine.loop import load_trained
    from weakseg.pseudo.bana import BanaGenerator

    data = open_dataset(f"voc:{args.data}:dev_train")
    names = data.classes.names
    row = {"name": "cam-precision", "command": "python -m benchmarks.bana --only cam-precision"}
    for classifier in CLASSIFIERS:
        run_dir = Path(args.out) / classifier
        model, _ = load_trained(run_dir, args.device)
        gen = BanaGenerator.for_model(model, run_dir=str(run_dir), device=args.device)
        tp, mass = np.zeros(len(names)), np.zeros(len(names))
        for sample in data:
            if len(sample.boxes) == 0:
                continue
            f, scores, stride = gen.features(sample.image)
            classes, units = gen.unaries(sample, f, scores, stride)
            up = F.interpolate(
                units[None], scale_factor=float(stride), mode="bilinear", align_corners=False
            )[0, :, : sample.height, : sample.width]
            for i, c in enumerate(classes, start=1):
                u = up[i].numpy()
                tp[c] += float(u[sample.mask == c].sum())
                mass[c] += float(u.sum())
        precision = {
            names[c]: (tp[c] / mass[c] if mass[c] > 0 else None) for c in range(1, len(names))
        }
        values = [v for v in precision.values() if v is not None]
        row[classifier] = {"precision": precision, "mean": float(np.mean(values))}
    return row


def segmentation_row(name: str, args: argparse.Namespace) -> dict:
    config, folder, extra = SEGMENTATION[name]
    labels = Path(args.out) / "labels-bap" / folder
    run_dir = Path(args.out) / name
    cmd = [
        "train",
        config,
        *train_overrides(args),
        f"data.val=voc:{args.data}:dev_val",
        f"data.labels={labels}",
        *extra,
        "--run-dir",
        str(run_dir),
    ]
    _run(cmd)
    ecmd = [
        "eval",
        "--run-dir",
        str(run_dir),
        "--dataset",
        f"voc:{args.data}:dev_val",
        "--no-progress",
        "--tag",
        "dev_val",
        "--device",
        args.device,
    ]
    _run(ecmd)
    result = json.loads((run_dir / "eval" / "dev_val.json").read_text())
    summary = json.loads((run_dir / "train_summary.json").read_text())
    return {
        "name": name,
        "miou": result["miou"],
        "iou": result["iou"],
        "summary": summary,
        "train_command": "weakseg " + " ".join(cmd),
        "eval_command": "weakseg " + " ".join(ecmd),
    }


def render(rows: dict[str, dict]) -> str:
    lines = ["## BANA on voc-dev", ""]
    if not rows:
        return "\n".join([*lines, "No rows measured yet: `python -m benchmarks.bana`."])
    command = next(r.get("command") or r["train_command"] for n, r in rows.items() if n in
                   (*CLASSIFIERS, *SEGMENTATION))  # fmt: skip
    budget = [p for p in command.split() if p.split("=")[0] in BUDGET_KEYS]
    stride = next((p.split("=")[1] for n in CLASSIFIERS if n in rows
                   for p in rows[n]["command"].split() if p.startswith("model.output_stride=")),
                  "8")  # fmt: skip
    lines += [
        f"Every training row: lite0 (offline ImageNet weights), {', '.join(budget)} (the "
        f"baselines' budget). Stage 1, the classifier, at output stride {stride}, trained on "
        "dev_train's boxes only; the segmentation rows use DeepLabV3+ at stride 32 as the "
        "baselines do.",
        "",
    ]
    if any(k in rows for k in LABELS):
        lines += [
            "Pseudo labels (paper Table 1; the classifier trained on dev_train only, so "
            "dev_val is unseen). Paper: VOC 2012 train / val, VGG-16.",
            "",
            "| labels | dev_train mIoU | dev_val mIoU | paper train / val | s/img | command |",
            "|---|---|---|---|---|---|",
        ]
        for name in LABELS:
            if name not in rows:
                continue
            r = rows[name]
            paper = PAPER.get(name)
            paper = f"{paper[0]} / {paper[1]}" if paper else "—"
            lines.append(
                f"| {name} Y_crf | {100 * r['y_crf_dev_train']['miou']:.1f} | "
                f"{100 * r['y_crf_dev_val']['miou']:.1f} | {paper} | "
                f"{r['cpu_seconds_per_image']:.2f} | `{r['command']}` |"
            )
            if name == "labels-bap":
                lines.append(
                    f"| labels-bap Y_ret | {100 * r['y_ret_dev_train']['miou']:.1f} | "
                    f"{100 * r['y_ret_dev_val']['miou']:.1f} | 70.8 / 69.9 | | |"
                )
                a, b = r["agree_dev_train"], r["agree_dev_val"]
                lines.append(
                    f"| Y_crf & Y_ret (agreeing pixels) | {100 * a['miou']:.1f} "
                    f"({100 * a['unreliable_share']:.0f}% left out) | "
                    f"{100 * b['miou']:.1f} ({100 * b['unreliable_share']:.0f}% left out)"
                    " | 85.3* / 68.2* | | |"
                )
        lines.append("")
        if "labels-bap" in rows:
            lines.append(
                "\\*: the paper's mark for 'pseudo labels contain unreliable regions': "
                "scored on the pixels where Y_crf and Y_ret agree, as here."
            )
        if "labels-bap-u0-a" in rows:
            lines += [
                "",
                "labels-bap-u0-a (ours, not in the paper): u_0 = A without the authors' "
                "relative 0.99 threshold (`bg_threshold=0`).",
            ]
    if "cam-precision" in rows:
        r = rows["cam-precision"]
        lines += [
            "",
            "CAM precision on dev_train (supplement Table 2; paper mean GAP 73.0, "
            f"BAP 77.9): GAP {100 * r['classifier-gap']['mean']:.1f}, "
            f"BAP {100 * r['classifier-bap']['mean']:.1f}.",
        ]
    full = load_rows(BASELINE_ROWS).get("full", {}).get("miou")
    seg = [n for n in SEGMENTATION if n in rows]
    if seg:
        lines += [
            "",
            "Segmentation on dev_val, single scale, no CRF (paper Tables 3 and 4: VOC 2012 val, "
            "DeepLab-V1; 'before / after CRF' where the paper gives both):",
            "",
            "| row | trained with | mIoU | / full | paper | train wall | command |",
            "|---|---|---|---|---|---|---|",
        ]
        for name in seg:
            r = rows[name]
            ratio = f"{r['miou'] / full:.2f}" if full else "—"
            about, paper = SEGMENTATION_ABOUT[name]
            lines.append(
                f"| {name} | {about} | {100 * r['miou']:.1f} | {ratio} | {paper} | "
                f"{train_wall(r['summary'])} | `{r['train_command']}` |"
            )
        lines += ["", "Per-class IoU on dev_val (— = no pixel of the class in dev_val):", "",
                  "| class | " + " | ".join(seg) + " |", "|---|" + "---|" * len(seg)]  # fmt: skip
        for cls in VOC_CLASSES:
            cells = [rows[n]["iou"].get(cls) for n in seg]
            cells = ["—" if v is None else f"{100 * v:.1f}" for v in cells]
            lines.append(f"| {cls} | " + " | ".join(cells) + " |")
    some = next(iter(rows.values()))
    lines += [
        "",
        f"Measured on {some['machine']}, {some['date']}, with `python -m benchmarks.bana`. "
        "Rows ran two at a time (one torch thread each), sometimes beside tests or label "
        "generation: wall times show the cost, not a clean speed comparison.",
    ]
    return "\n".join(lines)


def make_row(name: str, args: argparse.Namespace) -> dict:
    if name in CLASSIFIERS:
        return classifier_row(name, args)
    if name in LABELS:
        return labels_row(name, args)
    if name == "cam-precision":
        return cam_precision_row(args)
    return segmentation_row(name, args)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=DEFAULT_VOC)
    parser.add_argument("--out", default="bench-out/bana")
    add_budget_arguments(parser)
    parser.add_argument("--workers", type=int, default=2, help="label processes")
    parser.add_argument(
        "--classifier-stride",
        type=int,
        default=8,
        help="stage 1's output stride: 8 as the paper; 16 costs ~5x less on "
        "a CPU (stride 8 dilates lite0's last stages: ~7x the FLOPs of stride 32)",
    )
    parser.add_argument("--loader-workers", type=int, default=2, help="data.workers")
    parser.add_argument("--device", default="auto", help="train.device, and the CAMs' device")
    parser.add_argument("--results", type=Path, default=ROWS, help="where the row JSONs go")
    parser.add_argument("--only", nargs="*", help="rows to (re)run")
    parser.add_argument("--render", action="store_true", help="only rewrite RESULTS.md")
    args = parser.parse_args()
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.threads:
        torch.set_num_threads(args.threads)
    plan = [*CLASSIFIERS, *LABELS, "cam-precision", *SEGMENTATION]

    def rewrite() -> None:
        if args.results == ROWS:  # a trial run elsewhere leaves RESULTS.md alone
            replace_section(HERE / "RESULTS.md", "bana", render(load_rows(ROWS)))

    run_rows(plan, args.results, lambda name: make_row(name, args), rewrite, args.only, args.render)
    return 0


if __name__ == "__main__":
    sys.exit(main())
