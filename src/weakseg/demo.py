"""`weakseg demo`: the whole pipeline on one dataset, end to end, with numbers measured now.

dataset -> pseudo labels (box, grabcut, crf-box) -> their per-class IoU -> train `box`,
`pseudo` (on the GrabCut labels) and `full` for a short schedule -> evaluate each on held-out
images -> ``report.html`` with the tables, overlays of labels and predictions, and the
filling-rate plot. The default dataset is the embedded synthetic set, so the demo needs no
download; ``--dataset voc:ROOT:dev_train --val voc:ROOT:dev_val`` runs the same on real data.
Re-running resumes: finished labels and runs are kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from weakseg.config import load_config
from weakseg.data.dataset import Dataset
from weakseg.data.specs import open_dataset
from weakseg.engine.evaluate import ConfusionMatrix, format_table
from weakseg.fillrate import fill_rate_stats, plot_fill_rates
from weakseg.pseudo.runner import run_labels
from weakseg.pseudo.store import LabelStore, write_json_atomic
from weakseg.viz.overlay import overlay, save_png, side_by_side, with_legend
from weakseg.viz.report import write_report

GENERATORS = ("box", "grabcut", "crf-box")
# (run name, method, pseudo-label directory it trains on or None)
RUNS = (("box", "box", None), ("pseudo-grabcut", "pseudo", "grabcut"), ("full", "full", None))
NUM_PICTURES = 6


@dataclass
class DemoSettings:
    dataset: str = "synthetic:96:0"
    val: str = ""  # "" = synthetic: the same generator with the next seed; else the dataset
    iterations: int = 150  # optimizer steps per training run
    batch_size: int = 8
    crop_size: int = 160
    workers: int | None = None  # label processes (default: all cores)
    train: bool = True  # False: pseudo labels only
    progress: bool = True


def default_val(dataset: str) -> str:
    kind, _, rest = dataset.partition(":")
    if kind == "synthetic":
        n, _, seed = rest.partition(":")
        return f"synthetic:{max(int(n) // 2, 8)}:{int(seed or 0) + 1}"
    return dataset


def run_demo(out: str | Path, settings: DemoSettings | None = None) -> dict:
    """Run the demo into ``out``; returns {"labels": {gen: mIoU}, "models": {run: mIoU}}."""
    s = settings or DemoSettings()
    out = Path(out)
    start = time.perf_counter()
    data = open_dataset(s.dataset)
    label_cms = make_labels(data, s, out)
    tables = {"Pseudo labels on the training images": label_cms}
    model_cms = {}
    if s.train:
        val = open_dataset(s.val or default_val(s.dataset))
        model_cms = train_and_evaluate(s, val, out)
        tables[f"Trained models on held-out images ({val.spec})"] = model_cms
    write_pictures(data, out, label_cms, model_cms, s)
    seconds = time.perf_counter() - start
    result = {"labels": {n: cm.miou() for n, cm in label_cms.items()},
              "models": {n: cm.miou() for n, cm in model_cms.items()},
              "dataset": s.dataset, "seconds": round(seconds, 1)}  # fmt: skip
    write_json_atomic(out / "results.json", result)
    write_report(out / "report.html", f"weakseg demo on {s.dataset}", tables,
                 data.classes.names, out, seconds)  # fmt: skip
    for title, cms in tables.items():
        print(f"\n{title} (mIoU %, measured in this run):")
        print(format_table(cms, data.classes.names))
    print(f"\ndemo finished in {seconds / 60:.1f} min; open {out / 'report.html'}")
    return result


def make_labels(data: Dataset, s: DemoSettings, out: Path) -> dict[str, ConfusionMatrix]:
    from weakseg.engine.evaluate import evaluate_label_dir

    cms = {}
    for name in GENERATORS:
        summary = run_labels(data.spec, name, out / "labels" / name, workers=s.workers,
                             progress=s.progress)  # fmt: skip
        print(summary.format())
        cms[name] = evaluate_label_dir(data, out / "labels" / name, progress=False).confusion
    return cms


def train_and_evaluate(s: DemoSettings, val: Dataset, out: Path) -> dict[str, ConfusionMatrix]:
    from weakseg.engine.inference import evaluate_model
    from weakseg.engine.loop import load_trained, train

    cms = {}
    for run_name, method, labels in RUNS:
        overrides = [
            f"data.train={s.dataset}", f"data.val={val.spec}", f"train.method={method}",
            f"data.labels={out / 'labels' / labels if labels else ''}",
            f"train.iterations={s.iterations}", f"data.batch_size={s.batch_size}",
            f"data.crop_size={s.crop_size}", "data.scale_min=0.75", "data.scale_max=1.25",
            "train.precision=auto", "train.channels_last=true", "train.lr=0.01",
            f"train.checkpoint_every={max(s.iterations // 3, 1)}", "train.eval_every=0",
        ]  # fmt: skip
        print(f"\ntraining {run_name} ({method}) for {s.iterations} iterations")
        train(load_config(None, overrides), out / "runs" / run_name)
        model, _ = load_trained(out / "runs" / run_name, "auto")
        cms[run_name] = evaluate_model(model, val, progress=s.progress)
    return cms


def write_pictures(data, out: Path, label_cms: dict, model_cms: dict, s: DemoSettings) -> None:
    """Overlays (image + boxes | ground truth | each generator), predictions, fill-rate plot."""
    names = data.classes.names
    for sample_id in data.ids[:NUM_PICTURES]:
        sample = data.load(sample_id)
        boxed = overlay(sample.image, None, boxes=sample.boxes, box_labels=sample.box_labels,
                        class_names=names)  # fmt: skip
        panels, shown = [("image + boxes", boxed)], [sample.mask]
        if sample.mask is not None:
            panels.append(("ground truth", overlay(sample.image, sample.mask)))
        for name in label_cms:
            store = LabelStore(out / "labels" / name)
            if store.has(sample_id):
                shown.append(store.read(sample_id))
                panels.append((name, overlay(sample.image, shown[-1])))
        picture = with_legend(side_by_side(panels), shown, names, sample.box_labels)
        save_png(out / "overlays" / f"{sample_id}.png", picture)
    if model_cms:
        write_predictions(out, list(model_cms), s)
    rates = {"ground truth": fill_rate_stats(data, None)}
    rates |= {n: fill_rate_stats(data, out / "labels" / n) for n in label_cms}
    plot_fill_rates(rates, names, out / "fill_rates.png")


def write_predictions(out: Path, run_names: list[str], s: DemoSettings) -> None:
    from weakseg.engine.inference import predict_labels
    from weakseg.engine.loop import load_trained

    val = open_dataset(s.val or default_val(s.dataset))
    models = {n: load_trained(out / "runs" / n, "auto")[0] for n in run_names}
    for sample_id in val.ids[:NUM_PICTURES]:
        sample = val.load(sample_id)
        panels, shown = [("image", sample.image)], [sample.mask]
        if sample.mask is not None:
            panels.append(("ground truth", overlay(sample.image, sample.mask)))
        for name, model in models.items():
            shown.append(predict_labels(model, sample.image))
            panels.append((name, overlay(sample.image, shown[-1])))
        picture = with_legend(side_by_side(panels), shown, val.classes.names)
        save_png(out / "predictions" / f"{sample_id}.png", picture)
