"""The training loop on tiny synthetic runs (real model, random weights, 64 px crops, CPU)."""

import json
import math
from pathlib import Path

import pytest
import torch

from tests.methods.base import single_torch_thread, tiny_config
from weakseg.config import load_config
from weakseg.engine.loop import (
    build_optimizer,
    load_trained,
    poly_lr,
    train,
)
from weakseg.methods import build_method


@pytest.fixture(autouse=True)
def _one_thread():
    with single_torch_thread():
        yield


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, dict]:
    """One finished 4-iteration run (2 per epoch) with validation, shared by several tests."""
    tmp = tmp_path_factory.mktemp("run")
    cfg = tiny_config("full_synthetic.yaml", tmp, "train.iterations=4", "train.checkpoint_every=3",
                      "train.eval_every=4", "data.val=synthetic:2:1")  # fmt: skip
    with single_torch_thread():
        return tmp / "run", train(cfg, tmp / "run")


def test_run_directory_holds_everything(finished):
    run_dir, summary = finished
    names = {p.name for p in run_dir.iterdir()}
    assert names == {"config.yaml", "checkpoint.pt", "metrics.jsonl", "tensorboard", "model.pt",
                     "train_summary.json"}  # fmt: skip
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert load_config(run_dir / "config.yaml").model.num_classes == 6  # resolved from the data
    assert json.loads((run_dir / "train_summary.json").read_text()) == summary
    assert summary["finished"] and summary["iterations"] == 4 and summary["epochs"] == 2.0
    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert (checkpoint["iteration"], checkpoint["epoch"]) == (4, 2)


def test_metrics_log_every_term_and_the_poly_lr(finished):
    run_dir, summary = finished
    lines = metrics(run_dir)
    train_lines = [m for m in lines if "loss" in m]
    assert [m["iteration"] for m in train_lines] == [1, 2, 3, 4]
    cfg = load_config(run_dir / "config.yaml")
    for m in train_lines:
        assert set(m) == {"iteration", "epoch", "lr", "loss", "loss/ce", "images_per_s"}
        assert m["loss"] == m["loss/ce"] and math.isfinite(m["loss"]) and m["images_per_s"] > 0
        # the encoder group's lr of the step that ended at this iteration
        assert m["lr"] == pytest.approx(poly_lr(cfg.train.lr, m["iteration"] - 1, 4, 0.9))
    (val,) = [m for m in lines if "val_miou" in m]
    assert val["iteration"] == 4 and 0 <= val["val_miou"] <= 1
    assert summary["last"]["val_miou"] == val["val_miou"]


def test_finished_run_is_left_alone(finished, capsys):
    run_dir, summary = finished
    before = (run_dir / "model.pt").stat().st_mtime_ns
    cfg = load_config(run_dir / "config.yaml", ["data.workers=1"])  # may differ on resume
    assert train(cfg, run_dir) == summary
    assert (run_dir / "model.pt").stat().st_mtime_ns == before
    assert "holds a finished run (4 iterations); nothing to do" in capsys.readouterr().err


def test_other_test_time_settings_do_not_make_another_run(finished):
    run_dir, summary = finished
    cfg = load_config(run_dir / "config.yaml", ["eval.warp=32", "eval.crf=true"])
    assert train(cfg, run_dir) == summary  # eval.* does not touch training


def test_a_different_config_is_refused_with_the_differences(finished):
    run_dir, _ = finished
    cfg = load_config(run_dir / "config.yaml", ["train.lr=0.5", "data.flip=false"])
    with pytest.raises(ValueError, match=r"different config.*data.flip: True -> False; "
                       r"train.lr: 0.005 -> 0.5"):  # fmt: skip
        train(cfg, run_dir)


def test_load_trained_gives_the_final_weights(finished):
    run_dir, _ = finished
    model, cfg = load_trained(run_dir, "cpu")
    saved = torch.load(run_dir / "model.pt", weights_only=True)
    assert not model.training and cfg.train.method == "full"
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())
    assert model.predict(torch.rand(1, 3, 40, 56)).shape == (1, 6, 40, 56)


def test_load_trained_of_an_unfinished_run_says_how_to_finish(tmp_path):
    cfg = tiny_config("full_synthetic.yaml", tmp_path)
    train(cfg, tmp_path / "run")
    (tmp_path / "run" / "model.pt").unlink()
    with pytest.raises(FileNotFoundError, match="has not finished.*resume"):
        load_trained(tmp_path / "run")
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        load_trained(tmp_path)


def test_optimizer_groups_get_the_head_lr_multiplier(tmp_path):
    cfg = tiny_config("full_synthetic.yaml", tmp_path, "train.lr=0.01")
    model = build_method("full").build_model(cfg, 6)
    groups = {g["name"]: g for g in build_optimizer(model, cfg).param_groups}
    assert set(groups) == {"encoder", "head"}
    assert groups["encoder"]["lr"] == 0.01 and groups["head"]["lr"] == pytest.approx(0.1)
    n = sum(len(g["params"]) for g in groups.values())
    assert n == len(list(model.parameters()))
    assert poly_lr(0.01, 0, 100, 0.9) == 0.01
    assert poly_lr(0.01, 50, 100, 0.9) == pytest.approx(0.01 * 0.5**0.9)


def test_loss_weights_scale_the_sum_and_unknown_names_are_errors(tmp_path):
    cfg = tiny_config("full_synthetic.yaml", tmp_path, "train.loss_weights.ce=0.5")
    train(cfg, tmp_path / "a")
    for m in metrics(tmp_path / "a"):
        assert m["loss"] == pytest.approx(0.5 * m["loss/ce"])
    cfg = tiny_config("full_synthetic.yaml", tmp_path, "train.loss_weights.box=2")
    with pytest.raises(ValueError, match=r"loss_weights names \['box'\].*terms \['ce'\]"):
        train(cfg, tmp_path / "b")


def test_bf16_adam_channels_last_and_accumulation_run_on_cpu(tmp_path):
    cfg = tiny_config("box_synthetic.yaml", tmp_path, "train.precision=bf16",
                      "train.optimizer=adam", "train.lr=1e-4", "train.channels_last=true",
                      "train.grad_accum=2", "data.color_jitter=0.3")  # fmt: skip
    summary = train(cfg, tmp_path / "run")
    assert math.isfinite(summary["last"]["loss/box"])


def test_fp16_needs_cuda(tmp_path):
    cfg = tiny_config("full_synthetic.yaml", tmp_path, "train.precision=fp16")
    with pytest.raises(ValueError, match="fp16 needs CUDA; use bf16"):
        train(cfg, tmp_path / "run")


def test_a_dataset_smaller_than_one_iteration_is_an_error(tmp_path):
    cfg = tiny_config("full_synthetic.yaml", tmp_path, "data.batch_size=8")
    with pytest.raises(ValueError, match="4 images per process, fewer than one iteration"):
        train(cfg, tmp_path / "run")


def test_a_run_killed_before_its_first_checkpoint_restarts_without_duplicate_metrics(tmp_path):
    cfg = tiny_config("full_synthetic.yaml", tmp_path)
    run_dir = tmp_path / "run"
    train(cfg, run_dir)
    first = metrics(run_dir)
    for name in ("checkpoint.pt", "model.pt", "train_summary.json"):  # as if killed early
        (run_dir / name).unlink()
    assert train(cfg, run_dir)["resumed_from"] == 0
    again = metrics(run_dir)
    assert [m["iteration"] for m in again] == [1, 2]
    assert [m["loss"] for m in again] == [m["loss"] for m in first]


def test_auto_precision_is_fp32_without_native_bf16(monkeypatch):
    import torch

    from weakseg.engine import loop

    monkeypatch.setattr(loop, "native_cpu_bf16", lambda: False)
    assert loop.resolve_precision("auto", torch.device("cpu")) == "fp32"
    monkeypatch.setattr(loop, "native_cpu_bf16", lambda: True)
    assert loop.resolve_precision("auto", torch.device("cpu")) == "bf16"
    assert loop.resolve_precision("fp16", torch.device("cpu")) == "fp16"  # explicit stays
