"""`weakseg demo --tags`: the tag-only path (SEC, papers/sec.md) end to end on one dataset, with
numbers measured now: the localization network trained on the image-level tags -> the
``sec-cues`` maps and their statistics -> the SEC segmentation network -> mIoU on held-out
images. Nothing reads a box or a mask except the scoring against ground truth. Re-running
resumes: finished runs and labels are kept.
"""

from __future__ import annotations

import time
from pathlib import Path

from weakseg.config import load_config
from weakseg.demo import DemoSettings, default_val
from weakseg.pseudo.runner import run_labels
from weakseg.pseudo.store import write_json_atomic

REPO_CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def run_tags_demo(out: str | Path, settings: DemoSettings | None = None) -> dict:
    """Run the tag-only demo into ``out``; returns the cue statistics and the SEC model's mIoU."""
    from weakseg.data.specs import open_dataset
    from weakseg.engine.evaluate import format_table
    from weakseg.engine.inference import evaluate_model
    from weakseg.engine.loop import load_trained, train
    from weakseg.pseudo.sec import cue_counts
    from weakseg.pseudo.store import LabelStore

    s = settings or DemoSettings()
    out, start = Path(out), time.perf_counter()
    common = [f"data.train={s.dataset}", f"train.iterations={s.iterations}",
              f"data.batch_size={s.batch_size}", f"data.crop_size={s.crop_size}",
              "data.workers=0", "train.eval_every=0"]  # fmt: skip
    print(f"step 1: the localization network on the tags of {s.dataset}")
    cls_cfg = load_config(config_path("sec_classifier_synthetic.yaml"), common)
    train(cls_cfg, out / "runs" / "sec-classifier", progress=s.progress)
    network, _ = load_trained(out / "runs" / "sec-classifier", "cpu")
    from weakseg.pseudo.base import TrainedModel

    print("step 2: localization cues (sec-cues)")
    trained = TrainedModel(network, "sec-classifier", str(out / "runs" / "sec-classifier"))
    summary = run_labels(s.dataset, "sec-cues", out / "labels" / "sec-cues", workers=1,
                         params={"run_dir": trained.run_dir, "size": s.crop_size},
                         progress=s.progress, trained=trained)  # fmt: skip
    print(summary.format())
    data, store = open_dataset(s.dataset), LabelStore(out / "labels" / "sec-cues")
    totals: dict[str, int] = {}
    for sample_id in data.ids:
        counts = cue_counts(store.read(sample_id), store.read(sample_id, "cues"),
                            data.load(sample_id).mask)  # fmt: skip
        totals = {k: totals.get(k, 0) + v for k, v in counts.items()}
    cues = {
        "share": (totals["bg_cells"] + totals["fg_cells"]) / totals["cells"],
        "fg_precision": totals.get("fg_right", 0) / max(totals.get("fg_scored", 0), 1),
        "bg_precision": totals.get("bg_right", 0) / max(totals.get("bg_scored", 0), 1),
    }
    print(
        f"cues: {100 * cues['share']:.1f}% of cells; precision foreground "
        f"{100 * cues['fg_precision']:.1f}%, background {100 * cues['bg_precision']:.1f}%"
    )
    print("step 3: SEC (seed, expand, constrain) on the cues and tags")
    val = open_dataset(s.val or default_val(s.dataset))
    extra = [f"data.val={val.spec}", f"data.labels={store.root}"]
    sec_cfg = load_config(config_path("sec_synthetic.yaml"), [*common, *extra])
    train(sec_cfg, out / "runs" / "sec", progress=s.progress)
    model, run_cfg = load_trained(out / "runs" / "sec", "auto")
    cm = evaluate_model(model, val, progress=s.progress, warp=run_cfg.eval.warp)
    print(f"\nSEC trained on tags only, on held-out images ({val.spec}; mIoU %, measured now):")
    print(format_table({"sec": cm}, val.classes.names))
    result = {"cues": cues, "models": {"sec": cm.miou()}, "dataset": s.dataset,
              "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
    write_json_atomic(out / "results.json", result)
    return result


def config_path(name: str) -> Path:
    """A config of the repository's configs/ folder (the demo's settings come on top)."""
    path = REPO_CONFIGS / name
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: `weakseg demo --tags` runs from a checkout")
    return path


__all__ = ["run_tags_demo"]
