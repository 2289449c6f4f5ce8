"""A quick CLI: heavy libraries are imported only by the commands that need them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from weakseg.pseudo.registry import GENERATORS, generator_class

HEAVY = ("torch", "timm", "cv2", "pydensecrf", "segmentation_models_pytorch", "matplotlib")
SRC = str(Path(__file__).parents[1] / "src")

# Runs the CLI in a fresh interpreter, then prints which heavy modules it imported.
PROBE = """
import json, sys
from weakseg.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit_:
    code = exit_.code
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print("HEAVY=" + json.dumps(heavy))
sys.exit(code)
"""


def heavy_imports(*args: str) -> list[str]:
    env = os.environ | {"PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("HEAVY="))
    return json.loads(line.removeprefix("HEAVY="))


@pytest.mark.parametrize("args", [["--help"], ["labels", "--help"], ["train", "--help"]])
def test_help_imports_no_heavy_library(args):
    assert heavy_imports(*args) == []


def test_box_labels_import_neither_torch_nor_opencv(clean_voc, tmp_path):
    out = tmp_path / "box"
    loaded = heavy_imports("labels", "--dataset", f"voc:{clean_voc}", "--generator", "box",
                           "--out", str(out), "--workers", "1", "--no-progress",
                           "--format", "coco")  # fmt: skip
    assert loaded == []
    assert len(list(out.glob("*.png"))) == 3 and (out / "instances.json").exists()


def test_grabcut_labels_do_import_opencv(clean_voc, tmp_path):
    """The probe sees imports: the generator that needs OpenCV shows up."""
    out = tmp_path / "gc"
    loaded = heavy_imports("labels", "--dataset", f"voc:{clean_voc}", "--generator", "grabcut",
                           "--out", str(out), "--workers", "1", "--no-progress")  # fmt: skip
    assert "cv2" in loaded and "torch" not in loaded


def test_registry_names_match_generator_classes():
    for name in GENERATORS:
        assert generator_class(name).name == name
