"""BANA on voc-dev (BANA issue, item 6): the three stages, one JSON row each under
benchmarks/results/bana/ (a finished row is skipped, a killed training resumes).

  classifier-bap, classifier-gap   stage 1: `weakseg train configs/voc_bana_classifier.yaml`
                                   (method.pooling=bap|gap), fully fine-tuned (BAP needs features
                                   that learn): 300 iterations of batch 8 at output stride 16
  labels-gap, labels-bap-no-u0,    stage 2: `weakseg labels --generator bana` over all 861 images
  labels-bap, labels-bap-u0-a,     (the classifier saw only dev_train: dev_val is unseen), scored
  labels-bap-before                with `weakseg eval-labels` on dev_train and dev_val: Y_crf, and
                                   for labels-bap(-before) also Y_ret and "Y_crf & Y_ret" (mIoU
                                   on the agreeing pixels, with the share of pixels left out);
                                   labels-bap-u0-a (ours): u_0 = A, without the 0.99 threshold;
                                   labels-bap-before: the same classifier with stage 2 as weakseg
                                   read it before the BANA fidelity issue (13)
  cam-precision                    supplement Table 2: per-class precision of u_c, GAP vs BAP,
                                   on dev_train (sum of u_c inside the class's mask / sum of u_c)
  seg-ycrf, seg-yret, seg-nal,     stage 3 and Table 3/4 of the paper in the CPU protocol
  seg-none, seg-entropy,           (`configs/voc_bana_cpu.yaml`, `voc_pseudo_grabcut_cpu.yaml`,
  seg-bootstrap                    3 seeds, as benchmarks.train_baselines): on Y_crf, on Y_ret,
                                   with NAL, and with the compared losses on ~S (none / entropy /
                                   bootstrapping), then `weakseg eval` on dev_val
  seg-none-again                   seg-none on a later run of labels-bap (the classifier
                                   retrained): a control for rows trained on that run

    python -m benchmarks.bana [--threads 1] [--only labels-bap] [--seeds 0 1 2]

The stage-3 rows of the earlier 300-iteration budget (benchmarks/results/bana_300it/, one run
each) stay in RESULTS.md as the "earlier protocol" section. On a CUDA machine training and the
CAMs of cam-precision run on the GPU (``--device``); the label generator's CRF runs on
``--workers`` CPU processes either way.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import (
    DEFAULT_VOC,
    HERE,
    SEEDS,
    load_rows,
    run_rows,
    train_seeds,
    train_wall,
)
from benchmarks.results_md import replace_section
from benchmarks.train_baselines import ROWS as BASELINE_ROWS
from benchmarks.train_baselines import conditions, per_class_table, protocol_line, row_cells
from weakseg.cli import main as weakseg
from weakseg.data.classes import VOC_CLASSES
from weakseg.data.specs import open_dataset
from weakseg.engine.evaluate import ConfusionMatrix
from weakseg.pseudo.store import LabelStore

ROWS = HERE / "results" / "bana"
EARLIER_ROWS = HERE / "results" / "bana_300it"  # stage 3 at the earlier budget, one run each
EARLIER_FULL = HERE / "results" / "train_baselines" / "full.json"  # full at that budget
CLASSIFIERS = {"classifier-bap": "bap", "classifier-gap": "gap"}
# stage 2 as weakseg read it before the BANA fidelity issue (13): the other reading of each fix
BEFORE_ISSUE_13 = ["bg_threshold_peak=boxes", "softmax_region=image", "retrieval=paper"]
LABELS = {  # row -> (classifier row, generator overrides)
    "labels-gap": ("classifier-gap", []),
    "labels-bap-no-u0": ("classifier-bap", ["background=cam"]),
    "labels-bap": ("classifier-bap", []),
    "labels-bap-u0-a": ("classifier-bap", ["bg_threshold=0"]),  # ours: u_0 = A, no threshold
    "labels-bap-before": ("classifier-bap", BEFORE_ISSUE_13),
}
WITH_RET = ("labels-bap", "labels-bap-before")  # rows whose Y_ret is scored too
SEGMENTATION = {  # row -> (config, label folder under the labels-bap directory, overrides)
    "seg-ycrf": ("configs/voc_pseudo_grabcut_cpu.yaml", "", []),
    "seg-yret": ("configs/voc_pseudo_grabcut_cpu.yaml", "ret", []),
    "seg-nal": ("configs/voc_bana_cpu.yaml", "", ["train.snapshot_every=200"]),  # Fig. 5 sigma
    "seg-none": ("configs/voc_bana_cpu.yaml", "", ["method.unreliable=none"]),
    "seg-entropy": ("configs/voc_bana_cpu.yaml", "", ["method.unreliable=entropy"]),
    "seg-bootstrap": ("configs/voc_bana_cpu.yaml", "", ["method.unreliable=bootstrap"]),
    # seg-none again on a later labels-bap run (the classifier retrained): a control for the
    # rows trained on that run, the same command in its own run directory
    "seg-none-again": ("configs/voc_bana_cpu.yaml", "", ["method.unreliable=none"]),
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
    "seg-none-again": ("CE on S, ~S ignored (seg-none on the later labels)", "61.8 / 67.5"),
    "seg-ycrf-seed1": ("CE on Y_crf, train.seed=1", "—"),  # earlier budget only
    "seg-nal-seed1": ("NAL, train.seed=1", "—"),
}
BUDGET_KEYS = ("train.iterations", "data.batch_size", "data.crop_size", "train.precision")
PAPER = {"labels-gap": (75.5, 76.1), "labels-bap-no-u0": (77.0, 77.8), "labels-bap": (78.7, 79.2)}


def add_budget_arguments(parser: argparse.ArgumentParser) -> None:
    """Stage 1's budget (full fine-tuning, 300 iterations; the earlier protocol's, also used by
    the stage-3 rows of bana_300it) and the CPU protocol's options for stage 3."""
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--crop", type=int, default=320)
    parser.add_argument("--precision", default="fp32",
                        help="bf16 only on CPUs with AVX512-BF16/AMX")  # fmt: skip
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS),
                        help="stage-3 seeds")  # fmt: skip
    parser.add_argument("--cache-dir", default="bench-out/cache",
                        help="stage 3's feature cache (shared with the baselines)")  # fmt: skip


def budget_overrides(args: argparse.Namespace) -> list[str]:
    """The one budget every row shares (recorded in each row and in RESULTS.md)."""
    return [f"train.iterations={args.iterations}", f"data.batch_size={args.batch_size}",
            f"data.crop_size={args.crop}", f"train.precision={args.precision}",
            "train.channels_last=true", f"train.threads={args.threads}",
            f"train.checkpoint_every={max(args.iterations // 6, 1)}"]  # fmt: skip


def protocol_overrides(args: argparse.Namespace) -> list[str]:
    """What every stage-3 row adds to its protocol config (the budget lives in the config)."""
    return [f"train.threads={args.threads}", f"data.cache_dir={args.cache_dir}",
            f"train.device={args.device}", "train.eval_every=0"]  # fmt: skip


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
    maps = {"y_crf": label_dir} | ({"y_ret": label_dir / "ret"} if name in WITH_RET else {})
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
        if name in WITH_RET:
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
    """Stage 3 in the CPU protocol: the row's config on labels-bap, once per seed."""
    config, folder, extra = SEGMENTATION[name]
    labels = Path(args.out) / "labels-bap" / folder
    overrides = [*protocol_overrides(args), f"data.train=voc:{args.data}:dev_train",
                 f"data.labels={labels}", *extra]  # fmt: skip
    labels_run = labels_record(json.loads((ROWS / "labels-bap.json").read_text()))
    return train_seeds(name, config, overrides, Path(args.out), f"voc:{args.data}:dev_val",
                       args.seeds, row_file=ROWS / f"{name}.json",
                       inputs={"labels": labels_run})  # fmt: skip


def labels_record(labels_row: dict) -> dict:
    """Which run of labels-bap a stage-3 row trained on: its date and Y_crf mIoU on dev_train
    (the classifier behind it is retrained when its run directory is lost, not bit for bit)."""
    return {"row": labels_row["name"], "date": labels_row["date"],
            "y_crf_dev_train": labels_row["y_crf_dev_train"]["miou"]}  # fmt: skip


def _labels_line(rows: dict[str, dict], seg: list[str]) -> str:
    """Which labels-bap run each stage-3 row trained on, grouped by run."""
    runs: dict[tuple, list[str]] = {}
    for name in seg:
        record = rows[name].get("inputs", {}).get("labels")
        key = (record["date"], record["y_crf_dev_train"]) if record else None
        runs.setdefault(key, []).append(name)
    parts = [f"{', '.join(names)}: not recorded" if key is None else
             f"{', '.join(names)} on the labels-bap of {key[0]} (Y_crf {100 * key[1]:.1f} on "
             "dev_train)" for key, names in runs.items()]  # fmt: skip
    return "Labels: " + "; ".join(parts) + "."


def render(rows: dict[str, dict]) -> str:
    lines = ["## BANA on voc-dev", ""]
    if not rows:
        return "\n".join([*lines, "No rows measured yet: `python -m benchmarks.bana`."])
    classifier = next((rows[n] for n in CLASSIFIERS if n in rows), None)
    if classifier:
        words = classifier["command"].split()
        budget = [w for w in words if w.split("=")[0] in BUDGET_KEYS]
        stride = next(w.split("=")[1] for w in words if w.startswith("model.output_stride="))
        lines += [
            "Stage 1, the classifier: lite0 (offline ImageNet weights) fully fine-tuned (BAP "
            "needs features that learn, so it is not in the frozen-encoder protocol), "
            f"{', '.join(budget)}, output stride {stride}, on dev_train's boxes only; "
            "train wall "
            + ", ".join(f"{n} {train_wall(rows[n]['summary'])}" for n in CLASSIFIERS if n in rows)
            + ".",
            "",
        ]
    lines += label_table(rows)
    dated = [n for n in [*CLASSIFIERS, *LABELS, "cam-precision"] if n in rows]
    lines += ["", "Each classifier row is one training run; training it again replaces its run "
              "directory, so a row dated before its classifier read an earlier run of it. Dates: "
              + ", ".join(f"{n} {rows[n].get('date', '?')}" for n in dated) + "."]  # fmt: skip
    if "cam-precision" in rows:
        r = rows["cam-precision"]
        lines += [
            "",
            "CAM precision on dev_train (supplement Table 2; paper mean GAP 73.0, "
            f"BAP 77.9): GAP {100 * r['classifier-gap']['mean']:.1f}, "
            f"BAP {100 * r['classifier-bap']['mean']:.1f} (`{r['command']}`).",
        ]
    seg = [n for n in SEGMENTATION if n in rows]
    if seg:
        full = load_rows(BASELINE_ROWS).get("full")
        lines += [
            "",
            f"Stage 3 on dev_val in the CPU protocol ({protocol_line(rows[seg[0]])}; labels: "
            "labels-bap above), single scale, no CRF; mean ± sd over the seeds, a gap smaller "
            "than the spread is no difference (paper Tables 3 and 4: VOC 2012 val, DeepLab-V1; "
            "'before / after CRF' where the paper gives both):",
            "",
            "| row | trained with | mIoU | per seed | / full | train min / run | img/s | paper "
            "| command |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name in seg:
            r = rows[name]
            about, paper = SEGMENTATION_ABOUT[name]
            command = next(iter(r["seeds"].values()))["train_command"]
            lines.append(f"| {name} | {about} | {row_cells(r, full)} | {paper} | `{command}` |")
        lines += ["", _labels_line(rows, seg)]
        lines += ["", "Per-class IoU on dev_val (mean over seeds):", "",
                  *per_class_table(rows, seg)]  # fmt: skip
    lines += ["", f"Measured on {conditions(rows)}, with `python -m benchmarks.bana`."]
    return "\n".join(lines)


def label_table(rows: dict[str, dict]) -> list[str]:
    """Table 1: Y_crf of each generator row, Y_ret and the agreeing pixels where scored."""
    if not any(k in rows for k in LABELS):
        return []
    lines = [
        "Pseudo labels (paper Table 1; the classifier trained on dev_train only, so "
        "dev_val is unseen). Paper: VOC 2012 train / val, VGG-16.",
        "",
        "| labels | dev_train mIoU | dev_val mIoU | paper train / val | s/img | command |",
        "|---|---|---|---|---|---|",
    ]
    for name in (n for n in LABELS if n in rows):
        r = rows[name]
        paper = PAPER.get(name)
        paper = f"{paper[0]} / {paper[1]}" if paper else "—"
        lines.append(f"| {name} Y_crf | {100 * r['y_crf_dev_train']['miou']:.1f} | "
                     f"{100 * r['y_crf_dev_val']['miou']:.1f} | {paper} | "
                     f"{r['cpu_seconds_per_image']:.2f} | `{r['command']}` |")  # fmt: skip
        if name in WITH_RET:
            paper = "70.8 / 69.9" if name == "labels-bap" else "—"
            lines.append(f"| {name} Y_ret | {100 * r['y_ret_dev_train']['miou']:.1f} | "
                         f"{100 * r['y_ret_dev_val']['miou']:.1f} | {paper} | | |")  # fmt: skip
            a, b = r["agree_dev_train"], r["agree_dev_val"]
            paper = "85.3* / 68.2*" if name == "labels-bap" else "—"
            cells = [f"{100 * x['miou']:.1f} ({100 * x['unreliable_share']:.0f}% left out)"
                     for x in (a, b)]  # fmt: skip
            lines.append(f"| {name} Y_crf & Y_ret (agreeing pixels) | {cells[0]} | {cells[1]} | "
                         f"{paper} | | |")  # fmt: skip
    lines += ["", "\\*: the paper's mark for 'pseudo labels contain unreliable regions': scored "
              "on the pixels where Y_crf and Y_ret agree, as here. labels-bap-u0-a (ours, not in "
              "the paper): u_0 = A without the authors' relative 0.99 threshold "
              "(`bg_threshold=0`). labels-bap-before: the same BAP classifier with stage 2 as "
              "weakseg read it before the BANA fidelity issue "
              f"(`{' '.join(BEFORE_ISSUE_13)}`)."]  # fmt: skip
    return lines


def render_earlier(rows: dict[str, dict]) -> str:
    """The stage-3 rows of the earlier budget (300 iterations of full fine-tuning, one run
    each, labels from stage 2 before the BANA fidelity issue)."""
    full = json.loads(EARLIER_FULL.read_text())["miou"] if EARLIER_FULL.exists() else None
    first = next(iter(rows.values()))["train_command"].split()
    budget = [w for w in first if w.split("=")[0] in BUDGET_KEYS]
    lines = ["## Earlier protocol: BANA stage 3 at 300 iterations (dev_train -> dev_val)", "",
             f"lite0 fully fine-tuned, {', '.join(budget)}, DeepLabV3+ at stride 32, one run per "
             "row (two rows again with seed 1); labels from stage 2 as it was before the BANA "
             "fidelity issue, with the classifiers of that time. Single scale, no CRF.", "",
             "| row | trained with | mIoU | / full (33.2) | paper | train wall | command |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    seg = [n for n in SEGMENTATION_ABOUT if n in rows]
    for name in seg:
        r = rows[name]
        ratio = f"{r['miou'] / full:.2f}" if full else "—"
        about, paper = SEGMENTATION_ABOUT[name]
        lines.append(f"| {name} | {about} | {100 * r['miou']:.1f} | {ratio} | {paper} | "
                     f"{train_wall(r['summary'])} | `{r['train_command']}` |")  # fmt: skip
    lines += ["", "Per-class IoU on dev_val (— = no pixel of the class in dev_val):", "",
              "| class | " + " | ".join(seg) + " |", "|---|" + "---|" * len(seg)]  # fmt: skip
    for cls in VOC_CLASSES:
        cells = [rows[n]["iou"].get(cls) for n in seg]
        lines.append(f"| {cls} | " + " | ".join("—" if v is None else f"{100 * v:.1f}"
                                                for v in cells) + " |")  # fmt: skip
    lines += ["", f"Measured on {conditions(rows)}, with `python -m benchmarks.bana` of that "
              "time, two rows at a time (one torch thread each)."]  # fmt: skip
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
            earlier = load_rows(EARLIER_ROWS)
            if earlier:
                replace_section(HERE / "RESULTS.md", "bana-300it", render_earlier(earlier))

    run_rows(plan, args.results, lambda name: make_row(name, args), rewrite, args.only, args.render)
    return 0


if __name__ == "__main__":
    sys.exit(main())
