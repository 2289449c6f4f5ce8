"""Issue 12, clear messages instead of tracebacks (10), coordinates out of range (11), skipping
bad samples in every command (12), non-zero exit when nothing was done (13), nothing written for
a spec that does not open (14)."""

from __future__ import annotations

import json
import os
import re
import warnings

import pytest
import torch
import yaml

from tests.bad_input.corpus import TINY, TINY_CONFIG, dog_xml, edit_coco
from tests.fixtures_data import make_broken_voc, make_coco, make_voc, sample_image, write_jpeg
from weakseg.cli import main
from weakseg.data import files
from weakseg.data.coco import COCODataset
from weakseg.data.dataset import DataError, Dataset, SkippedSamples, UsableSubset
from weakseg.data.specs import open_dataset
from weakseg.doctor import diagnose
from weakseg.engine.inference import evaluate_model
from weakseg.engine.loop import load_trained


def one_line_error(capsys, code: int, *needles: str) -> str:
    """Assert exit status 2, no traceback, and one error line holding every needle (progress
    lines may come before it)."""
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "Traceback" not in err, err
    line = err.splitlines()[-1]
    assert re.match(r"weakseg [a-z-]+: error: ", line), err
    for needle in needles:
        assert needle in line, (needle, err)
    return line


# -- 10: COCO files ----------------------------------------------------------------------------


def test_coco_without_categories(tmp_path, capsys):
    images, ann = make_coco(tmp_path)
    edit_coco(ann, lambda d: d.pop("categories"))
    with pytest.raises(DataError, match="no 'categories' list"):
        COCODataset(images, ann)
    code = main(["doctor", "--dataset", f"coco:{images}:{ann}", "--no-progress"])
    assert code == 1 and "no 'categories' list" in capsys.readouterr().out


@pytest.mark.parametrize("bbox", ["0,0,10,10", [0, 0, 10], [0, 0, "10", 10], None])
def test_coco_bbox_that_is_not_four_numbers(tmp_path, capsys, bbox):
    images, ann = make_coco(tmp_path)
    edit_coco(ann, lambda d: d["annotations"][1].update(bbox=bbox))
    with pytest.raises(DataError, match=r"annotations\[1\] \(id 2\): bbox is") as err:
        COCODataset(images, ann)
    assert err.value.path == str(ann)
    report = diagnose(f"coco:{images}:{ann}", progress=False)
    assert str(ann) in report.errors["cannot open dataset"][0]  # not "reader crashed (a bug)"


# -- 10: configs, checkpoints, output folders ---------------------------------------------------


@pytest.mark.parametrize(
    "text,needle",
    [("train:\n  lr: [0.1\n", "not valid YAML"), ("train: !!python/object:os.system x\n", "tag"),
     ("train: !custom 3\n", "!custom")],
)  # fmt: skip
def test_yaml_errors_in_configs_name_the_file(tmp_path, capsys, text, needle):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    code = main(["train", str(config), "--run-dir", str(tmp_path / "run")])
    one_line_error(capsys, code, str(config), needle)
    code = main(["labels", "--dataset", "synthetic:1", "--generator", "box", "--out",
                 str(tmp_path / "l"), "--config", str(config)])  # fmt: skip
    one_line_error(capsys, code, str(config), needle)
    assert not (tmp_path / "run").exists() and not (tmp_path / "l").exists()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "other-architecture", "pickle"])
def test_broken_model_file_is_one_line(run_copy, capsys, damage):
    model = run_copy / "model.pt"
    if damage == "truncate":
        model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    elif damage == "garbage":
        model.write_bytes(b"\x80\x02}q\x00(K\x65" + os.urandom(200))
    elif damage == "other-architecture":
        torch.save({"conv.weight": torch.zeros(3, 3)}, model)
    else:
        torch.save({"weights": object()}, model)  # needs pickled code: refused
    code = main(["eval", "--run-dir", str(run_copy), "--no-progress"])
    one_line_error(capsys, code, str(model))


def test_broken_checkpoint_when_resuming_is_one_line(run_copy, capsys):
    (run_copy / "model.pt").unlink()
    (run_copy / "train_summary.json").unlink()
    checkpoint = run_copy / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    code = main(["train", TINY_CONFIG, *TINY, "--run-dir", str(run_copy), "--no-progress"])
    one_line_error(capsys, code, str(checkpoint))


def test_out_that_is_an_existing_file(tmp_path, capsys):
    out = tmp_path / "file.txt"
    out.write_text("keep me")
    code = main(["labels", "--dataset", "synthetic:2", "--generator", "box", "--out", str(out),
                 "--workers", "1", "--no-progress"])  # fmt: skip
    one_line_error(capsys, code, str(out), "existing file")
    assert out.read_text() == "keep me"


def test_unwritable_output_fails_before_computing(run_copy, capsys, monkeypatch):
    import weakseg.engine.inference as inference

    def must_not_run(*args, **kwargs):
        raise AssertionError("evaluation ran before the output was checked")

    monkeypatch.setattr(inference, "evaluate_model", must_not_run)
    unwritable = "/proc/weakseg-cannot-write-here/result.json"  # read-only even for root
    code = main(["eval", "--run-dir", str(run_copy), "--json", unwritable, "--no-progress"])
    one_line_error(capsys, code, "weakseg-cannot-write-here")
    (run_copy / "eval").mkdir(exist_ok=True)
    os.chmod(run_copy / "eval", 0o555)
    if os.geteuid() != 0:  # root writes into read-only folders; /proc above covers root
        code = main(["eval", "--run-dir", str(run_copy), "--no-progress"])
        one_line_error(capsys, code, "eval")


def test_export_height_zero_is_a_usage_error(run_copy, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["export", "--run-dir", str(run_copy), "--onnx", str(run_copy / "m.onnx"),
              "--height", "0"])  # fmt: skip
    assert exit_.value.code == 2 and "--height: 0 must be at least 1" in capsys.readouterr().err
    assert not (run_copy / "m.onnx").exists()


def test_eval_without_any_dataset(run_copy, capsys):
    config = run_copy / "config.yaml"
    cfg = yaml.safe_load(config.read_text())
    cfg["data"]["val"] = ""
    config.write_text(yaml.safe_dump(cfg))
    code = main(["eval", "--run-dir", str(run_copy), "--no-progress"])
    one_line_error(capsys, code, "no dataset: pass --dataset", "data.val")


@pytest.mark.parametrize("param", ["iterations=abc", "iterations=-3", "margin=-1", "seed=1.5",
                                   "min_fill=.nan"])  # fmt: skip
def test_generator_parameters_are_validated_before_any_work(tmp_path, capsys, param):
    out = tmp_path / "gc"
    code = main(["labels", "--dataset", "synthetic:2", "--generator", "grabcut", "--out",
                 str(out), "--workers", "1", "--no-progress", param])  # fmt: skip
    one_line_error(capsys, code, param.split("=")[0])
    assert not out.exists()


# -- 11: coordinates out of range, missing <bndbox> ---------------------------------------------


@pytest.mark.parametrize("xmax", ["1e308", "1e30", "-1e20"])
def test_absurd_coordinates_are_out_of_range_in_labels_and_doctor(tmp_path, capsys, xmax):
    voc = make_voc(tmp_path)
    (voc / "Annotations" / "good_0.xml").write_text(dog_xml("good_0", ("1", "1", xmax, "9")))
    with pytest.raises(DataError, match="out of range"):
        open_dataset(f"voc:{tmp_path}").load("good_0")
    report = diagnose(f"voc:{tmp_path}", progress=False)
    assert "out of range" in report.errors[files.BOX_OUT_OF_RANGE][0]
    main(["labels", "--dataset", f"voc:{tmp_path}", "--generator", "box", "--out",
          str(tmp_path / "l"), "--workers", "1", "--no-progress"])  # fmt: skip
    run = json.loads((tmp_path / "l" / "runs.jsonl").read_text())
    assert list(run["skipped"]) == [files.BOX_OUT_OF_RANGE]
    assert "box coordinates out of range" in capsys.readouterr().out


def test_missing_bndbox_says_so(tmp_path):
    voc = make_voc(tmp_path)
    (voc / "Annotations" / "good_0.xml").write_text(dog_xml("good_0", None))
    with pytest.raises(DataError, match=r"object 0 \(dog\) has no <bndbox>"):
        open_dataset(f"voc:{tmp_path}").load("good_0")


# -- 12: every command skips bad samples ---------------------------------------------------------


def test_eval_labels_and_fill_rates_skip_bad_samples(tmp_path, capsys):
    expected = make_broken_voc(tmp_path / "voc")
    spec = f"voc:{tmp_path / 'voc'}"
    assert main(["labels", "--dataset", spec, "--generator", "box", "--out",
                 str(tmp_path / "l"), "--workers", "1", "--no-progress"]) == 0  # fmt: skip
    capsys.readouterr()
    bad = sum(1 for kind in expected.values() if kind)
    code = main(["eval-labels", "--dataset", spec, "--labels", str(tmp_path / "l"),
                 "--json", str(tmp_path / "e.json"), "--no-progress"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and f"skipped {bad} of {len(expected)} samples with bad input" in out
    assert "wrong_size_mask" in out
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["scored"] == 3 and sum(map(len, result["skipped_bad_input"].values())) == bad
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(["fill-rates", "--dataset", spec, "--no-progress"])
    assert code == 0 and any(f"skipped {bad} of" in str(w.message) for w in caught)


class _OneBad(Dataset):
    """Two synthetic samples, the second of which raises DataError like a bad mask."""

    def __init__(self) -> None:
        self.inner = open_dataset("synthetic:2:0")
        self.classes, self.ids, self.spec = self.inner.classes, self.inner.ids, "one-bad"

    def load(self, sample_id: str):
        if sample_id == self.ids[1]:
            raise DataError("bad.png", "mask values 77 not in 0..5 or 255", files.MASK_VALUES)
        return self.inner.load(sample_id)


def test_eval_and_train_skip_bad_samples(tiny_run):
    model, _ = load_trained(tiny_run, "cpu")
    skipped = SkippedSamples()
    cm = evaluate_model(model, _OneBad(), progress=False, skipped=skipped)
    assert cm.matrix.sum() == 160 * 224 - (open_dataset("synthetic:1:0")[0].mask == 255).sum()
    assert skipped.found == {files.MASK_VALUES: ["bad.png: mask values 77 not in 0..5 or 255"]}
    usable = UsableSubset(_OneBad())  # what train trains on
    assert usable.ids == _OneBad().ids[:1] and len(usable.skipped) == 1


def test_train_skips_bad_samples_and_fails_only_when_none_is_left(tmp_path, capsys):
    make_broken_voc(tmp_path / "voc")
    data = [*TINY, f"data.train=voc:{tmp_path / 'voc'}", "data.val="]
    code = main(["train", TINY_CONFIG, *data, "--run-dir", str(tmp_path / "r"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0 and "skipped 8 of 11 samples with bad input" in err
    splits = tmp_path / "voc" / "VOC2012" / "ImageSets" / "Segmentation"
    (splits / "bad.txt").write_text("truncated_jpeg\nbad_mask_values\n")
    data[-2] = f"data.train=voc:{tmp_path / 'voc'}:bad"
    code = main(["train", TINY_CONFIG, *data, "--run-dir", str(tmp_path / "r2"), "--no-progress"])
    one_line_error(capsys, code, "no usable sample")


# -- 13, 14 ----------------------------------------------------------------------------------------


def test_nothing_labelled_is_a_failure(tmp_path, capsys):
    make_broken_voc(tmp_path / "voc")
    splits = tmp_path / "voc" / "VOC2012" / "ImageSets" / "Segmentation"
    (splits / "bad.txt").write_text("truncated_jpeg\nbox_outside\n")
    code = main(["labels", "--dataset", f"voc:{tmp_path / 'voc'}:bad", "--generator", "box",
                 "--out", str(tmp_path / "l"), "--workers", "1", "--no-progress"])  # fmt: skip
    assert code == 1 and "nothing was labelled" in capsys.readouterr().out


def test_a_spec_that_does_not_open_writes_nothing(tmp_path, capsys):
    out = tmp_path / "l"
    for spec in (f"voc:{tmp_path / 'nowhere'}", "synthetic:abc", "coco:x"):
        code = main(["labels", "--dataset", spec, "--generator", "box", "--out", str(out),
                     "--workers", "1", "--no-progress"])  # fmt: skip
        one_line_error(capsys, code)
        assert not out.exists()


def test_unreadable_image_in_folder_is_skipped_by_labels(tmp_path):
    folder = tmp_path / "folder"
    write_jpeg(folder / "images" / "a.jpg", sample_image(0))
    (folder / "images" / "b.jpg").write_bytes(b"not a jpeg")
    boxes = {"classes": ["cat"], "images": {"a.jpg": [], "b.jpg": []}}
    (folder / "boxes.json").write_text(json.dumps(boxes))
    assert main(["labels", "--dataset", f"folder:{folder}", "--generator", "box", "--out",
                 str(tmp_path / "l"), "--workers", "1", "--no-progress"]) == 0  # fmt: skip
    assert [p.name for p in (tmp_path / "l").glob("*.png")] == ["a.png"]
