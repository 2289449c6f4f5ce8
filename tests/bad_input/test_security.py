"""Issue 12, security: no write outside --out (1), no read outside the dataset (2), no
decompression bomb decoded (3)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.bad_input.corpus import (
    coco_with_outside_image,
    edit_coco,
    write_escaping_split,
    write_png_bomb,
)
from tests.fixtures_data import make_coco, make_voc, sample_image, write_jpeg
from weakseg.cli import main
from weakseg.data import files
from weakseg.data.coco import COCODataset
from weakseg.data.dataset import DataError
from weakseg.data.folder import FolderDataset
from weakseg.data.voc import VOCDataset
from weakseg.doctor import diagnose
from weakseg.pseudo.store import LabelStore


@pytest.mark.parametrize("escape", ["../../../escape/evil", "ABSOLUTE", "a/../../b", "..", "x\0y"])
def test_split_line_that_names_a_path_is_refused_naming_file_and_line(tmp_path, escape, capsys):
    voc = make_voc(tmp_path / "voc")
    escape = str(tmp_path / "abs" / "evil") if escape == "ABSOLUTE" else escape
    split = write_escaping_split(voc, ["good_0", escape])
    with pytest.raises(DataError) as err:
        VOCDataset(tmp_path / "voc", "escape")
    assert err.value.kind == files.UNSAFE_ID and err.value.path == f"{split}:2"
    out = tmp_path / "deep" / "er" / "out"
    code = main(["labels", "--dataset", f"voc:{tmp_path / 'voc'}:escape", "--generator", "box",
                 "--out", str(out), "--workers", "1", "--no-progress"])  # fmt: skip
    assert code == 2 and f"{split}:2" in capsys.readouterr().err
    assert not (tmp_path / "escape").exists() and not (tmp_path / "abs").exists()
    assert not out.exists()  # nothing written at all
    report = diagnose(f"voc:{tmp_path / 'voc'}:escape", progress=False)
    assert (
        list(report.errors) == [files.UNSAFE_ID]
        and f"{split}:2" in report.errors[files.UNSAFE_ID][0]
    )


def test_coco_and_folder_ids_that_name_a_path_are_refused(tmp_path):
    images, ann = make_coco(tmp_path / "coco")
    edit_coco(ann, lambda d: d["images"][1].update(file_name="sub/.."))
    with pytest.raises(DataError) as err:
        COCODataset(images, ann)
    assert err.value.kind == files.UNSAFE_ID and "images[1]" in err.value.path
    folder = tmp_path / "folder"
    write_jpeg(folder / "images" / "a.jpg", sample_image(0))
    boxes = {"classes": ["cat"], "images": {"a.jpg": [], "x/..": []}}
    (folder / "boxes.json").write_text(json.dumps(boxes))
    with pytest.raises(DataError) as err:
        FolderDataset(folder)
    assert err.value.kind == files.UNSAFE_ID


def test_label_store_refuses_ids_that_are_paths(tmp_path):
    store = LabelStore(tmp_path / "out")
    for bad in ("../evil", "/abs/evil", "..", "a\\b"):
        with pytest.raises(ValueError, match="not a plain file name"):
            store.write(bad, {"labels": np.zeros((2, 2), np.uint8)})
    assert not list(tmp_path.rglob("*.png"))


@pytest.mark.parametrize("where", ["../outside/secret.jpg", "ABSOLUTE"])
def test_coco_file_name_outside_the_images_folder_is_not_read(tmp_path, where):
    where = str(tmp_path / "elsewhere" / "secret.jpg") if where == "ABSOLUTE" else where
    images, ann, secret = coco_with_outside_image(tmp_path / "coco", where)
    assert secret.is_file()  # the file exists: only the check stops the read
    dataset = COCODataset(images, ann)
    with pytest.raises(DataError) as err:
        dataset.load("secret")
    assert err.value.kind == files.OUTSIDE_FOLDER and err.value.path == str(ann)
    report = diagnose(f"coco:{images}:{ann}", progress=False)
    assert len(report.errors[files.OUTSIDE_FOLDER]) == 1


def test_folder_file_name_outside_the_images_folder_is_not_read(tmp_path):
    folder = tmp_path / "folder"
    write_jpeg(tmp_path / "outside" / "secret.jpg", sample_image(0))
    write_jpeg(folder / "images" / "a.jpg", sample_image(1))
    boxes = {"classes": ["cat"], "images": {"a.jpg": [], "../../outside/secret.jpg": []}}
    (folder / "boxes.json").write_text(json.dumps(boxes))
    dataset = FolderDataset(folder)
    assert dataset.load("a").image.shape == (48, 64, 3)
    with pytest.raises(DataError) as err:
        dataset.load("secret")
    assert err.value.kind == files.OUTSIDE_FOLDER


def test_decompression_bomb_below_pillows_limit_is_refused_from_its_header(tmp_path):
    bomb = write_png_bomb(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 40_000  # 13000 x 13000 in a small file
    with pytest.raises(DataError) as err:
        files.read_image(bomb)
    assert err.value.kind == files.IMAGE_TOO_LARGE == "image too large"
    assert "13000x13000" in err.value.problem


def test_pixel_budget_is_configurable(tmp_path, monkeypatch):
    image = write_jpeg(tmp_path / "small.jpg", sample_image(0))  # 64 x 48 = 3072 pixels
    monkeypatch.setenv("WEAKSEG_MAX_PIXELS", "3000")
    with pytest.raises(DataError, match="image too large"):
        files.read_image(image)
    monkeypatch.setenv("WEAKSEG_MAX_PIXELS", "3072")
    assert files.read_image(image).shape == (48, 64, 3)
