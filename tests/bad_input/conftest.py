"""A tiny trained run shared by the command tests of the bad-input corpus."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.bad_input.corpus import TINY, TINY_CONFIG
from weakseg.cli import main


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A finished 2-iteration run of the 6-class synthetic set (do not modify: copy it)."""
    run = tmp_path_factory.mktemp("tiny") / "run"
    assert main(["train", TINY_CONFIG, *TINY, "--run-dir", str(run), "--no-progress"]) == 0
    return run


@pytest.fixture
def run_copy(tiny_run, tmp_path) -> Path:
    """A copy of the tiny run that a test may break."""
    return Path(shutil.copytree(tiny_run, tmp_path / "run"))
