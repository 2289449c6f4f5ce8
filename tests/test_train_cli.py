"""`weakseg train / eval / predict / export / demo` through the CLI entry point, on tiny runs."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from weakseg.cli import main
from weakseg.demo import DemoSettings, run_demo
from weakseg.engine.loop import load_trained
from weakseg.viz.palette import read_label_png

TINY = ["data.train=synthetic:4:0", "data.val=synthetic:2:1", "data.crop_size=64",
        "data.batch_size=2", "data.workers=0", "model.weights=none", "train.iterations=2",
        "train.checkpoint_every=1", "train.device=cpu"]  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("run") / "full"
    assert main(["train", "configs/full_synthetic.yaml", *TINY, "--run-dir", str(run)]) == 0
    return run


def test_train_writes_a_resolved_run(run_dir, capsys):
    assert (run_dir / "config.yaml").exists() and (run_dir / "model.pt").exists()
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) >= 1
    # The same command again finds the finished run and leaves it alone.
    before = (run_dir / "model.pt").stat().st_mtime_ns
    assert main(["train", "configs/full_synthetic.yaml", *TINY, "--run-dir", str(run_dir)]) == 0
    assert (run_dir / "model.pt").stat().st_mtime_ns == before
    # A different config in the same run directory is refused, naming the key.
    assert main(["train", "configs/full_synthetic.yaml", *TINY, "train.lr=0.5",
                 "--run-dir", str(run_dir)]) == 2  # fmt: skip
    assert "train.lr" in capsys.readouterr().err


def test_eval_writes_table_json_and_confusion_picture(run_dir, capsys):
    assert main(["eval", "--run-dir", str(run_dir), "--no-progress"]) == 0
    assert "mIoU" in capsys.readouterr().out
    result = json.loads((run_dir / "eval" / "ss.json").read_text())
    assert result["dataset"] == "synthetic:2:1" and 0 <= result["miou"] <= 1
    assert (run_dir / "eval" / "ss-confusion.png").stat().st_size > 1000
    assert main(["eval", "--run-dir", str(run_dir), "--multiscale", "--crf", "--no-progress",
                 "--dataset", "synthetic:1:5"]) == 0  # fmt: skip
    ms = json.loads((run_dir / "eval" / "ms-crf.json").read_text())
    assert ms["scales"] == [0.5, 0.75, 1.0, 1.5] and ms["flip"] and ms["crf"]["iterations"] == 10
    assert result["warp"] == 0  # the run's eval.warp
    assert main(["eval", "--run-dir", str(run_dir), "--warp", "96", "--tag", "w96",
                 "--no-progress"]) == 0  # fmt: skip
    assert json.loads((run_dir / "eval" / "w96.json").read_text())["warp"] == 96


def test_predict_folder_writes_label_maps_and_overlays(run_dir, tmp_path):
    from weakseg.data.synthetic import SyntheticDataset
    from weakseg.viz.overlay import save_png

    images = tmp_path / "images"
    for sample in SyntheticDataset(2, seed=7):
        save_png(images / f"{sample.id}.png", sample.image)
    (images / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "pred"
    assert main(["predict", "--run-dir", str(run_dir), str(images), "--out", str(out)]) == 0
    labels = sorted(out.glob("*.png"))
    assert len(labels) == 2 and len(list((out / "overlays").glob("*.png"))) == 2
    assert read_label_png(labels[0]).shape == (160, 224)
    # The overlay strip (title, 4 px pads, 160 px panels) has a legend below it.
    overlay_png = np.asarray(Image.open(out / "overlays" / labels[0].name))
    assert overlay_png.shape[0] > 18 + 160 + 8
    # predictions.json: per image, each class present and its share of the pixels.
    summary = json.loads((out / "predictions.json").read_text())
    names = list(SyntheticDataset(1).classes.names)
    assert summary["classes"] == names and len(summary["images"]) == 2
    for entry in summary["images"]:
        label_map = read_label_png(out / entry["labels"])
        counts = np.bincount(label_map.ravel(), minlength=len(names))
        expected = {names[c]: counts[c] / label_map.size for c in np.flatnonzero(counts)}
        assert entry["classes"].keys() == expected.keys()
        for name, share in expected.items():
            assert entry["classes"][name] == pytest.approx(share, abs=1e-5)


def test_report_page_has_the_eval_table_and_opens_in_a_browser(run_dir, tmp_path):
    from tests.viz.test_legend_report import BROWSER, Cells, open_in_chromium

    assert main(["eval", "--run-dir", str(run_dir), "--no-progress", "--tag", "t1"]) == 0
    assert main(["report", "--run-dir", str(run_dir), "--limit", "2", "--device", "cpu",
                 "--out", str(tmp_path / "report")]) == 0  # fmt: skip
    page = tmp_path / "report" / "index.html"
    parser = Cells()
    parser.feed(page.read_text())
    assert len(parser.tables) == 1 and "t1 (synthetic:2:1)" in [c[0] for c in parser.tables[0][0]]
    assert len(parser.images) == 2 and all((page.parent / s).is_file() for s in parser.images)
    if BROWSER:
        seen, errors = open_in_chromium(page, tmp_path)
        assert errors == [] and all(ok for _, ok in seen["images"])


def test_export_matches_pytorch(run_dir, tmp_path):
    path = tmp_path / "model.onnx"
    assert main(["export", "--run-dir", str(run_dir), "--onnx", str(path),
                 "--height", "96", "--width", "128"]) == 0  # fmt: skip
    model, _ = load_trained(run_dir, "cpu")
    x = torch.rand(1, 3, 160, 224)
    with torch.no_grad():
        expected = model.predict(x).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-4)


@pytest.mark.slow
def test_demo_end_to_end_tiny(tmp_path):
    """The demo pipeline at toy size: labels, three short runs, tables, report with pictures."""
    settings = DemoSettings(dataset="synthetic:6:0", val="synthetic:2:1", iterations=2,
                            crop_size=64, batch_size=2, workers=1, progress=False)  # fmt: skip
    result = run_demo(tmp_path, settings)
    assert set(result["labels"]) == {"box", "grabcut", "crf-box"}
    assert set(result["models"]) == {"box", "pseudo-grabcut", "full"}
    report = (tmp_path / "report.html").read_text()
    assert "overlays/" in report and "predictions/" in report and "fill_rates.png" in report
    # Pseudo labels on the synthetic set: GrabCut and dense CRF beat filled boxes.
    assert result["labels"]["grabcut"] > result["labels"]["box"] + 0.05
    assert result["labels"]["crf-box"] > result["labels"]["box"] + 0.05
