"""The bad-input corpus: every broken file gives a DataError naming it, and doctor counts it."""

from __future__ import annotations

import pickle
import time

import pytest
from PIL import ImageFile

from tests.fixtures_data import make_broken_voc, write_png
from weakseg.data import files
from weakseg.data.dataset import DataError
from weakseg.data.specs import open_dataset
from weakseg.data.voc import VOCDataset
from weakseg.doctor import diagnose

# Which file of the sample each problem must name.
NAMED_FILE = {
    files.MALFORMED_XML: "Annotations/{}.xml",
    files.UNSAFE_XML: "Annotations/{}.xml",
    files.UNKNOWN_CLASS: "Annotations/{}.xml",
    files.BAD_BOX: "Annotations/{}.xml",
    files.UNREADABLE_IMAGE: "JPEGImages/{}.jpg",
    files.MASK_SIZE: "SegmentationClassAug/{}.png",
    files.MASK_VALUES: "SegmentationClassAug/{}.png",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("broken")
    return root, make_broken_voc(root)


def test_corpus_ids_are_the_dataset_ids(corpus):
    root, expected = corpus
    assert VOCDataset(root).ids == sorted(expected)
    assert open_dataset(f"voc:{root}:all").ids == list(expected)
    assert sum(1 for kind in expected.values() if not kind) == 3
    assert set(expected.values()) - {""} <= set(NAMED_FILE)


def test_each_broken_file_raises_data_error_naming_it(corpus):
    root, expected = corpus
    dataset = VOCDataset(root)
    for sample_id, kind in expected.items():
        if not kind:
            assert dataset.load(sample_id).id == sample_id
            continue
        with pytest.raises(DataError) as err:
            dataset.load(sample_id)
        wanted = str(root / "VOC2012" / NAMED_FILE[kind].format(sample_id))
        assert (err.value.kind, err.value.path) == (kind, wanted), sample_id
        assert str(err.value).startswith(wanted)


def test_entities_are_refused_not_expanded(corpus):
    root, _ = corpus
    dataset = VOCDataset(root)
    for sample_id in ("billion_laughs", "external_entity"):
        start = time.perf_counter()
        with pytest.raises(DataError) as err:
            dataset.load(sample_id)
        assert time.perf_counter() - start < 1.0
        assert "root:" not in str(err.value) and "lollol" not in str(err.value)


def test_doctor_counts_every_problem(corpus):
    root, expected = corpus
    report = diagnose(f"voc:{root}", progress=False)
    assert not report.ok and report.num_samples == len(expected)
    wanted: dict[str, list[str]] = {}
    for sample_id, kind in expected.items():
        if kind:
            wanted.setdefault(kind, []).append(NAMED_FILE[kind].format(sample_id))
    found = {kind: sorted(lines) for kind, lines in report.errors.items()}
    assert sorted(found) == sorted(wanted)
    for kind, names in wanted.items():
        assert len(found[kind]) == len(names), kind
        for name, line in zip(sorted(names), found[kind], strict=True):
            assert name in line, (kind, line)
    assert "FAILED (8 errors of 7 kinds)" in report.format()


def test_data_error_survives_pickling():
    err = pickle.loads(pickle.dumps(DataError("a.jpg", "cannot decode", files.UNREADABLE_IMAGE)))
    assert (err.path, err.problem, err.kind, str(err)) == (
        "a.jpg",
        "cannot decode",
        files.UNREADABLE_IMAGE,
        "a.jpg: cannot decode",
    )


def test_truncated_images_refused_even_if_pil_is_told_to_accept_them(corpus, monkeypatch):
    root, _ = corpus
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(DataError, match="LOAD_TRUNCATED_IMAGES"):
        files.read_image(root / "VOC2012" / "JPEGImages" / "good_0.jpg")


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"x" * 20])
def test_garbage_files_are_unreadable(tmp_path, content):
    path = tmp_path / "x.png"
    path.write_bytes(content)
    with pytest.raises(DataError) as err:
        files.read_image(path)
    assert err.value.kind == files.UNREADABLE_IMAGE and err.value.path == str(path)
    with pytest.raises(DataError) as err:
        files.read_label_png(path, 21)
    assert err.value.kind == files.UNREADABLE_MASK


def test_mask_values_message_lists_the_bad_values(tmp_path):
    import numpy as np

    mask = np.zeros((4, 4), np.uint8)
    mask[0, :3] = [21, 30, 255]
    with pytest.raises(DataError, match="mask values 21, 30 not in 0..20 or 255"):
        files.read_label_png(write_png(tmp_path / "m.png", mask), 21)
