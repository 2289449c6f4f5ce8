"""Shared fixtures: paths to the real data in ../shared/data (skipped when absent) and small
on-disk datasets built by tests/fixtures_data.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures_data import make_broken_voc, make_voc

SHARED_DATA = Path(__file__).parents[1] / "../shared/data"


def _real_data(name: str) -> Path:
    path = (SHARED_DATA / name).resolve()
    if not path.is_dir():
        pytest.skip(f"{path} not found: real-data tests need ../shared/data")
    return path


@pytest.fixture(scope="session")
def voc_dev() -> Path:
    """The 861-image VOC 2012 subset (folder holding VOC2012/)."""
    return _real_data("voc-dev")


@pytest.fixture(scope="session")
def coco128() -> Path:
    """128 COCO train2017 images (folder holding train2017/ and annotations/)."""
    return _real_data("coco128")


@pytest.fixture
def clean_voc(tmp_path: Path) -> Path:
    """A clean 3-image VOC dataset; returns the folder holding VOC2012/."""
    make_voc(tmp_path / "clean")
    return tmp_path / "clean"


@pytest.fixture
def broken_voc(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """(folder holding VOC2012/, {id: expected problem kind or "" if good})."""
    return tmp_path / "broken", make_broken_voc(tmp_path / "broken")


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tests run beside other processes (pytest-xdist, subprocess tests, a second job on 2 cores);
    torch's intra-op threads then contend and a 10 ms forward can take seconds. One thread keeps
    test time predictable; benchmarks, not tests, measure speed."""
    import os

    import torch

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # for subprocesses the tests start
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
