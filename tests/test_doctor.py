"""weakseg doctor: clean data is ok; warnings and info are counted; the report formats and
serialises; real data is checked end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.fixtures_data import GOOD_IDS, make_coco, voc_xml, write_png, write_voc_sample
from weakseg.data import files
from weakseg.doctor import CANNOT_OPEN, NO_PIXELS, NO_PIXELS_DIFFICULT, diagnose, main_doctor


def test_clean_voc_is_ok(clean_voc, capsys):
    report = diagnose(f"voc:{clean_voc}", progress=False)
    assert report.ok and report.num_samples == len(GOOD_IDS)
    assert report.errors == {} and report.warnings == {}
    assert report.info["boxes"] == 4 and report.info["difficult boxes"] == 1
    assert report.info[NO_PIXELS] == 1 == report.info[NO_PIXELS_DIFFICULT]  # good_1's bottle
    assert report.format().endswith("result: OK")
    assert capsys.readouterr().err == ""  # progress=False draws no bar


def test_main_doctor_exit_status(clean_voc, broken_voc, capsys):
    assert main_doctor(f"voc:{clean_voc}", progress=False) == 0
    assert "result: OK" in capsys.readouterr().out
    root, _ = broken_voc
    assert main_doctor(f"voc:{root}", progress=False) == 1
    assert "result: FAILED" in capsys.readouterr().out


def test_progress_bar_goes_to_stderr(clean_voc, capsys):
    diagnose(f"voc:{clean_voc}", progress=True)
    captured = capsys.readouterr()
    assert "doctor" in captured.err and captured.out == ""


def test_voc_warnings_size_border_and_orphans(clean_voc):
    voc = clean_voc / "VOC2012"
    xml = voc_xml("good_0.jpg", [("dog", (-3, 1, 70, 10), False, False)], size=(100, 200))
    (voc / "Annotations" / "good_0.xml").write_text(xml)
    (voc / "Annotations" / "lost.xml").write_text(voc_xml("lost.jpg", []))
    write_png(voc / "SegmentationClassAug" / "gone.png", np.zeros((4, 4), np.uint8))
    write_voc_sample(voc, "bare", 3, None, None)
    report = diagnose(f"voc:{clean_voc}", progress=False)
    assert report.ok
    assert [len(report.warnings[k]) for k in (files.IMAGE_SIZE, files.BOX_EXTENDS_OUTSIDE)] == [
        1,
        1,
    ]
    assert "<size> says 200x100, the image is 64x48" in report.warnings[files.IMAGE_SIZE][0]
    assert report.warnings["annotation XML without image"][0].endswith("lost.xml")
    assert report.warnings["mask without image"][0].endswith("gone.png")
    assert report.info["images with no XML and no mask (not samples)"] == 1


def test_split_id_without_any_file(clean_voc):
    splits = clean_voc / "VOC2012" / "ImageSets" / "Segmentation"
    (splits / "ghost.txt").write_text("good_0\nghost\n")
    report = diagnose(f"voc:{clean_voc}:ghost", progress=False)
    assert report.errors[files.MISSING_FILE][0].endswith("JPEGImages/ghost.jpg: file not found")
    assert len(report.warnings["no annotation XML and no mask"]) == 1


def test_unopenable_dataset(tmp_path):
    report = diagnose(f"voc:{tmp_path}", progress=False)
    assert not report.ok and list(report.errors) == [CANNOT_OPEN]
    assert not diagnose("nonsense:1", progress=False).ok


def test_coco_through_load(tmp_path):
    images, ann = make_coco(tmp_path)
    data = json.loads(ann.read_text())
    data["annotations"][0]["bbox"] = [-4, 0, 44, 40]  # crosses the left border
    ann.write_text(json.dumps(data))
    (images / "b.jpg").write_bytes(b"garbage")
    report = diagnose(f"coco:{images}:{ann}", progress=False)
    assert report.num_samples == 2 and not report.ok
    assert report.errors[files.UNREADABLE_IMAGE][0].startswith(str(images / "b.jpg"))
    assert report.warnings[files.BOX_EXTENDS_OUTSIDE][0].startswith(str(images / "a.jpg"))
    assert report.info["boxes"] == 3


def test_report_to_dict_is_json(broken_voc):
    root, expected = broken_voc
    report = diagnose(f"voc:{root}", progress=False)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is False and data["num_samples"] == len(expected)
    assert sum(map(len, data["errors"].values())) == sum(1 for k in expected.values() if k)
    text = report.format(examples=1)
    assert "... and 1 more" in text  # two unsafe XML files, one example shown


@pytest.mark.realdata
def test_real_voc_dev(voc_dev):
    report = diagnose(f"voc:{voc_dev}", progress=False)
    assert report.ok and report.num_samples == 861, report.format()
    assert report.warnings == {}
    # From ../shared/data/README.md: 228 boxes without pixels of their class, 219 of them difficult.
    assert report.info[NO_PIXELS] == 228 and report.info[NO_PIXELS_DIFFICULT] == 219
    assert report.info["difficult boxes"] > 219
    assert "difficult boxes" in report.format()


@pytest.mark.realdata
def test_real_coco128(coco128):
    images, ann = coco128 / "train2017", coco128 / "annotations" / "instances_train2017.json"
    report = diagnose(f"coco:{images}:{ann}:classes=voc", progress=False)
    assert report.ok and report.num_samples == 128, report.format()
    assert report.info["samples with a mask"] == 128
