"""LPG's stage-wise EM (papers/lpg.md Fig. 2, section 3.3) on synthetic data with a class split:
the generator learns from classes 1-3 and labels the boxes of classes 4-5, which it never saw."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from weakseg import cli
from weakseg.config import ConfigError
from weakseg.methods import lpg as L
from weakseg.models.lpg import load_generator, read_generator_file
from weakseg.viz.palette import read_label_png

CONFIG = str(Path(__file__).parents[2] / "configs" / "lpg_synthetic.yaml")
TINY = [
    "lpg.aux=classes:1-3:synthetic:12:0", "lpg.target=classes:4-5:synthetic:6:1",
    "lpg.crop_size=64", "lpg.width=16", "lpg.iterations=4", "lpg.batch_size=4",
    "lpg.checkpoint_every=2", "lpg.log_every=2",
    "segmenter.data.val=classes:4-5:synthetic:3:2", "segmenter.train.iterations=2",
    "segmenter.data.batch_size=2", "segmenter.model.decoder_channels=16",
    "segmenter.train.checkpoint_every=1",
]  # fmt: skip


def tiny(*more: str) -> L.LpgConfig:
    return L.load_lpg_config(CONFIG, [*TINY, *more])


@pytest.fixture(scope="module")
def two_stage_run(tmp_path_factory) -> tuple[Path, dict]:
    run = tmp_path_factory.mktemp("lpg") / "run"
    return run, L.run_lpg(tiny("lpg.stages=2"), run, progress=False, say=lambda m: None)


def test_two_stages_keep_each_generator_and_segmenter(two_stage_run):
    run, summary = two_stage_run
    assert [row["stage"] for row in summary["stages"]] == [1, 2]
    g1, g2 = (
        read_generator_file(run / "stage1/generator.pt"),
        read_generator_file(run / "stage2/generator.pt"),
    )
    assert (g1["guide_channels"], g2["guide_channels"]) == (1, 2)  # stage 2 also gets f's p_c
    assert g1["aux"] == "classes:1-3:synthetic:12:0"
    assert (run / "stage1/aux_segmenter/model.pt").exists()  # M-step on the auxiliary set
    assert not (run / "stage2/aux_segmenter").exists()  # nothing would use the last one
    with_boxes = {
        sample_id for sample_id, _ in json.loads((run / "aux_samples.json").read_text())["pairs"]
    }
    assert {p.stem for p in (run / "stage2/aux_probs").glob("*.npz")} == with_boxes
    for r in (1, 2):
        assert (run / f"stage{r}/segmenter/train_summary.json").exists()
        assert 0 <= summary["stages"][r - 1]["labels_miou"] <= 1


def test_unseen_classes_are_labelled_inside_their_boxes(two_stage_run):
    run, _ = two_stage_run
    from weakseg.data.specs import open_dataset

    target = open_dataset("classes:4-5:synthetic:6:1")
    seen = set()
    for sample in target:
        labels = read_label_png(run / "stage1/target_labels" / f"{sample.id}.png")
        seen |= set(np.unique(labels).tolist())
        boxes = np.zeros(labels.shape, bool)
        for x1, y1, x2, y2 in sample.boxes.astype(int):
            boxes[y1:y2, x1:x2] = True
        assert not labels[~boxes].any()
    assert seen <= {0, 4, 5} and seen & {4, 5}


def test_a_finished_run_is_left_alone_and_can_be_extended(two_stage_run, tmp_path):
    run, _ = two_stage_run
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*.pt")}
    summary = L.run_lpg(tiny("lpg.stages=2"), run, progress=False, say=lambda m: None)
    assert len(summary["stages"]) == 2
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*.pt")} == before
    with pytest.raises(ValueError, match="lpg.crop_size"):
        L.run_lpg(tiny("lpg.stages=2", "lpg.crop_size=96"), run, progress=False)


def test_generator_training_resumes_exactly(tmp_path, monkeypatch):
    cfg = tiny()
    aux = L.open_dataset(cfg.lpg.aux)
    pairs = L.aux_pairs(aux)
    whole = tmp_path / "whole.pt"
    L.train_generator(cfg.lpg, aux, pairs, whole, 1, say=lambda m: None)
    real = L.generator_batch

    def dying(dataset, pairs, probs_dir, s, iteration):
        if iteration == 3:
            raise KeyboardInterrupt
        return real(dataset, pairs, probs_dir, s, iteration)

    out = tmp_path / "resumed.pt"
    monkeypatch.setattr(L, "generator_batch", dying)
    with pytest.raises(KeyboardInterrupt):
        L.train_generator(cfg.lpg, aux, pairs, out, 1, say=lambda m: None)
    assert not out.exists() and out.with_name("resumed_checkpoint.pt").exists()
    monkeypatch.setattr(L, "generator_batch", real)
    L.train_generator(cfg.lpg, aux, pairs, out, 1, say=lambda m: None)
    a, b = load_generator(whole)[0].state_dict(), load_generator(out)[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not out.with_name("resumed_checkpoint.pt").exists()


def test_a_generator_that_marks_no_object_is_reported(tmp_path, monkeypatch):
    """The log keeps the share of cells g marks as object; a generator that marks none at the end
    (the hourglass's dead head, benchmarks/RESULTS.md) gets a warning instead of silent empty
    masks, and a working one does not."""
    cfg = tiny()
    aux = L.open_dataset(cfg.lpg.aux)
    pairs = L.aux_pairs(aux)
    real = L.build_generator_net

    class Dead(torch.nn.Module):  # the rest channel always wins by 100
        def __init__(self, *args, **kwargs):
            super().__init__()
            self.net = real(*args, **kwargs)

        def forward(self, image, guide):
            out = self.net(image, guide)
            return out + torch.tensor([100.0, 0.0]).view(1, 2, 1, 1)

    said = []
    monkeypatch.setattr(L, "build_generator_net", Dead)
    L.train_generator(cfg.lpg, aux, pairs, tmp_path / "dead.pt", 1, say=said.append)
    log = [json.loads(x) for x in (tmp_path / "dead_log.jsonl").read_text().splitlines()]
    assert [row["object_share"] for row in log] == [0.0, 0.0]
    assert any(m.startswith("warning: generator stage 1 marked no pixel as object") for m in said)

    monkeypatch.setattr(L, "build_generator_net", real)
    said.clear()
    torch.manual_seed(0)
    L.train_generator(cfg.lpg, aux, pairs, tmp_path / "alive.pt", 1, say=said.append)
    log = [json.loads(x) for x in (tmp_path / "alive_log.jsonl").read_text().splitlines()]
    assert log[-1]["object_share"] > 0 and not any(m.startswith("warning") for m in said)


def test_generator_loss_by_hand():
    """2-way CE at stride 4, target taken at the cells' centres (row/col 2 of each 4x4), 255
    ignored: cells (0,0) [0,1]->1, (0,1) ignored, (1,0) [2,0]->0, (1,1) [0,0]->1."""
    logits = torch.tensor([[[[0.0, 5.0]], [[1.0, -5.0]]], [[[2.0, 0.0]], [[0.0, 0.0]]]])
    target = torch.zeros(2, 4, 8, dtype=torch.long)
    target[0, 2, 2], target[0, 2, 6], target[1, 2, 6] = 1, 255, 1
    target[0, 0, 0] = 1  # not a centre: never read
    want = (math.log1p(math.exp(-1)) + math.log1p(math.exp(-2)) + math.log(2)) / 3
    assert L.generator_loss(logits, target).item() == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("crop", ["boxes", "image"])
def test_training_example_targets_the_class_only(crop):
    cfg = tiny(f"lpg.crop={crop}", "lpg.jitter=0", "lpg.flip=false", "lpg.scales=[1.0]")
    sample = L.open_dataset("synthetic:4:0").load("000000")
    c = int(sample.box_labels[0])
    image, guide, target = L.training_example(sample, c, None, cfg.lpg, np.random.default_rng(0))
    assert image.shape == (64, 64, 3) and guide.shape == (64, 64, 1) and target.shape == (64, 64)
    assert set(np.unique(target)) <= {0, 1, 255} and (target == 1).any()
    assert ((target == 1) <= (guide[..., 0] > 0)).all()  # the object lies inside its box


@pytest.mark.parametrize(
    "override, message",
    [
        ("lpg.crop=tiles", "lpg.crop='tiles'"),
        ("lpg.arch=resnet", "lpg.arch='resnet'"),
        ("lpg.aux=", "lpg.aux"),
        ("lpg.aux_fraction=0", "aux_fraction"),
        ("lpg.colour=1", "unknown config key 'lpg.colour'"),
        ("train.lr=1", "lpg.key=value"),
        ("lpg.deploy_segmenter=false", "1 stage only"),
        ("lpg.crop_size=80", "lpg.crop_size=80: the lite generator needs a multiple of 32"),
        ("lpg.arch=hourglass", "lpg.crop_size=64: the hourglass generator needs a multiple of 128"),
        ("lpg.guide_scale=0", "lpg.guide_scale must be > 0"),
    ],
)
def test_bad_config_is_named(override, message):
    with pytest.raises(ConfigError, match=message):
        tiny(override)


def test_auxiliary_set_without_masks_is_refused(tmp_path):
    from weakseg.data.dataset import DataError

    boxes_only = tmp_path / "f"
    (boxes_only / "images").mkdir(parents=True)
    from tests.fixtures_data import sample_image, write_jpeg

    write_jpeg(boxes_only / "images" / "a.jpg", sample_image(0, 40, 50))
    (boxes_only / "boxes.json").write_text(
        '{"classes": ["cat"], "images": {"a.jpg": [{"box": [1, 1, 20, 20], "label": "cat"}]}}'
    )
    dataset = L.open_dataset(f"folder:{boxes_only}")
    with pytest.raises(DataError, match="no mask"):
        L.aux_pairs(dataset)


def test_reuse_workflow_from_the_command_line(two_stage_run, tmp_path, capsys):
    """README: a generator trained on dataset A's masks labels dataset B's boxes (here classes it
    never saw); a stage-2 generator without its segmenter, and a file that is no generator, are
    refused with one clear line."""
    run, _ = two_stage_run

    def labels(out: str, *params: str) -> int:
        return cli.main(["labels", "--dataset", "classes:4-5:synthetic:4:7", "--generator", "lpg",
                         "--out", str(tmp_path / out), "--workers", "1", "--no-progress",
                         *params])  # fmt: skip

    assert labels("l1", f"generator={run / 'stage1/generator.pt'}") == 0
    assert len(list((tmp_path / "l1").glob("*.png"))) == 4
    g2 = f"generator={run / 'stage2/generator.pt'}"
    assert labels("l2", g2) == 2
    assert "run_dir=RUN" in capsys.readouterr().err
    assert labels("l2", g2, f"run_dir={run / 'stage1/segmenter'}") == 0
    bogus = tmp_path / "bogus.pt"
    bogus.write_text("not a generator")
    assert labels("l3", f"generator={bogus}") == 2
    assert "not a readable LPG generator file" in capsys.readouterr().err
    assert labels("l4", f"generator={tmp_path / 'none.pt'}") == 2
    assert "no such LPG generator file" in capsys.readouterr().err


def test_readme_reuse_workflow_runs(tmp_path, monkeypatch):
    """The README's LPG reuse lines, run as written (outputs moved under tmp_path, and the
    generator's budget cut to seconds by overrides appended to the `weakseg lpg` line)."""
    from tests.bad_input.test_commands import REPO, readme_argv, readme_command_lines

    lines = [
        line
        for line in readme_command_lines()
        if "synthetic_lpg" in line or "lpg_synthetic" in line
    ]
    assert [readme_argv(line)[0] for line in lines] == ["lpg", "labels", "eval-labels"]
    monkeypatch.chdir(REPO)
    for line in lines:
        argv = [w.replace("runs/", f"{tmp_path}/runs/") for w in readme_argv(line)]
        if argv[0] == "lpg":
            argv += ["lpg.iterations=4", "lpg.crop_size=64", "lpg.width=16",
                     "lpg.aux=classes:1-3:synthetic:12:0", "--no-progress"]  # fmt: skip
        else:
            argv += ["--no-progress"] + (["--workers", "1"] if argv[0] == "labels" else [])
        assert cli.main(argv) == 0, line
    assert len(list((tmp_path / "runs/labels/synthetic_lpg").glob("*.png"))) == 64


def test_fixed_final_generator_at_every_stage(tmp_path):
    """Table 2's "Fixed" ablation: g_2 labels the target at stages 1 and 2; at stage 1 its
    segmenter input comes from a segmenter trained on the target's boxes."""
    run = tmp_path / "fixed"
    L.run_lpg(tiny("lpg.stages=2", "lpg.fixed=true"), run, progress=False, say=lambda m: None)
    assert (run / "stage0/box_segmenter/train_summary.json").exists()
    meta1 = json.loads((run / "stage1/target_labels/meta.json").read_text())["params"]
    meta2 = json.loads((run / "stage2/target_labels/meta.json").read_text())["params"]
    final = str((run / "stage2/generator.pt").resolve())
    assert meta1["generator"] == meta2["generator"] == final
    assert meta1["run_dir"] == str((run / "stage0/box_segmenter").resolve())
    assert meta2["run_dir"] == str((run / "stage1/segmenter").resolve())


@pytest.mark.parametrize(
    "name", ["lpg_synthetic", "voc_lpg_cpu", "voc_lpg_split_cpu", "voc_lpg_dev_cpu"]
)
def test_shipped_lpg_configs_load(name):
    from tests.test_config import _budget
    from weakseg.config import load_config

    cfg = L.load_lpg_config(Path(CONFIG).with_name(f"{name}.yaml"))
    assert cfg.segmenter.train.method == "pseudo" and cfg.lpg.stages == 3
    if name.startswith("voc_"):  # the M-steps train in the CPU protocol, like every VOC row
        full = load_config(Path(CONFIG).with_name("voc_full_cpu.yaml"))
        assert _budget(cfg.segmenter) == _budget(full)
        assert cfg.segmenter.data.val.endswith("dev_val")


def test_a_run_made_before_a_new_setting_existed_still_resumes(tmp_path):
    import yaml

    run = tmp_path / "old"
    cfg = tiny("lpg.stages=1", "lpg.target=")
    L.run_lpg(cfg, run, progress=False, say=lambda m: None)
    saved = yaml.safe_load((run / "lpg.yaml").read_text())
    del saved["lpg"]["fixed"]  # as written before lpg.fixed was added
    (run / "lpg.yaml").write_text(yaml.safe_dump(saved))
    L.run_lpg(cfg, run, progress=False, say=lambda m: None)
    saved["lpg"]["fixed"] = True  # a run made with another value is still refused
    (run / "lpg.yaml").write_text(yaml.safe_dump(saved))
    with pytest.raises(ValueError, match="lpg.fixed differ"):
        L.run_lpg(cfg, run, progress=False, say=lambda m: None)
