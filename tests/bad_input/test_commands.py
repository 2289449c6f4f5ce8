"""Issue 12: the README's command lines (15), progress output (16), file modes (17), EXIF
orientation (18), and `weakseg doctor` on a folder holding every broken file of the corpus."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import stat
from pathlib import Path

import pytest

from tests.bad_input.corpus import EXTRA_BROKEN, make_all_broken, write_exif_rotated_jpeg
from tests.fixtures_data import sample_image, write_jpeg
from weakseg import cli
from weakseg.config import load_config
from weakseg.data import files
from weakseg.data.specs import READERS
from weakseg.doctor import diagnose
from weakseg.outputs import umask_mode
from weakseg.progress import LineProgress, progress_bar
from weakseg.pseudo.registry import make_generator
from weakseg.pseudo.store import write_json_atomic

REPO = Path(__file__).parents[2]


def readme_command_lines() -> list[str]:
    """Every `weakseg ...` line of README.md's fenced code blocks (torchrun's included)."""
    text = (REPO / "README.md").read_text()
    lines = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            if re.match(r"\s*weakseg\s", line) or " -m weakseg " in line:
                lines.append(line.strip())
    return lines


def readme_argv(line: str) -> list[str]:
    """The argument list of a README line: comments dropped, ``[--flag]`` taken as given."""
    words = shlex.split(line, comments=True)
    start = words.index("weakseg") + 1
    return [w.strip("[]") for w in words[start:]]


def test_readme_quotes_command_lines():
    lines = readme_command_lines()
    assert len(lines) >= 20
    assert {readme_argv(line)[0] for line in lines} >= {"labels", "train", "eval", "doctor"}


@pytest.mark.parametrize("line", readme_command_lines())
def test_readme_command_line_is_accepted(line, monkeypatch):
    """A dry run: the line parses, its config and overrides load, its generator parameters are
    valid and its dataset specs name a reader. Nothing is computed."""
    monkeypatch.chdir(REPO)
    args = cli.parse_args(readme_argv(line))
    if args.command == "train":
        load_config(args.config, args.overrides)
    if args.command == "labels":
        make_generator(args.generator, **cli.load_params(args.config, args.params))
    for spec in (getattr(args, "dataset", None), getattr(args, "val", None)):
        if spec:
            assert spec.partition(":")[0] in READERS, spec


def test_overrides_go_anywhere_on_the_line(tiny_run, capsys):
    """README: `weakseg train CONFIG --run-dir DIR key=value` (before the fix: unrecognized
    arguments). The finished run is found and left alone, so this is cheap."""
    from tests.bad_input.corpus import TINY, TINY_CONFIG

    assert cli.main(["train", TINY_CONFIG, "--run-dir", str(tiny_run), *TINY]) == 0
    assert cli.main(["train", TINY_CONFIG, *TINY[:3], "--run-dir", str(tiny_run),
                     *TINY[3:]]) == 0  # fmt: skip
    args = cli.parse_args(["labels", "--dataset", "synthetic:2", "iterations=2", "--generator",
                           "grabcut", "--out", "o", "margin=0.1"])  # fmt: skip
    assert args.params == ["iterations=2", "margin=0.1"]


# -- 16: progress ---------------------------------------------------------------------------------


def test_progress_off_a_terminal_prints_a_line_every_five_percent():
    stream = io.StringIO()  # not a TTY, like a CI log or a nohup file
    bar = progress_bar(total=1000, desc="labels:box", unit="img", file=stream)
    assert isinstance(bar, LineProgress)
    for _ in range(1000):
        bar.update(1)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 20 and "\r" not in stream.getvalue()
    assert lines[0].startswith("labels:box:   5% (50/1000 img)")
    assert lines[-1].startswith("labels:box: 100% (1000/1000 img)")


def test_progress_can_be_switched_off():
    stream = io.StringIO()
    bar = progress_bar(range(50), desc="eval", enabled=False, file=stream)
    assert list(bar) == list(range(50)) and stream.getvalue() == ""


def test_train_passes_no_progress_on(monkeypatch, tmp_path):
    import weakseg.engine.loop as loop

    seen = {}

    def fake_train(cfg, run_dir, progress=True):
        seen["progress"] = progress
        return {}

    monkeypatch.setattr(loop, "train", fake_train)
    from tests.bad_input.corpus import TINY, TINY_CONFIG

    cli.main(["train", TINY_CONFIG, *TINY, "--run-dir", str(tmp_path / "r"), "--no-progress"])
    assert seen == {"progress": False}


# -- 17: file modes ------------------------------------------------------------------------


def test_outputs_get_the_mode_the_umask_gives(tmp_path, tiny_run):
    previous = os.umask(0o022)
    try:
        assert cli.main(["labels", "--dataset", "synthetic:2", "--generator", "box", "--out",
                         str(tmp_path / "l"), "--workers", "1", "--no-progress"]) == 0  # fmt: skip
        write_json_atomic(tmp_path / "x.json", {"a": 1})
        for path in [*(tmp_path / "l").glob("*.png"), tmp_path / "l" / "meta.json",
                     tmp_path / "x.json"]:  # fmt: skip
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
        os.umask(0o027)
        write_json_atomic(tmp_path / "y.json", {"a": 1})
        assert stat.S_IMODE((tmp_path / "y.json").stat().st_mode) == 0o640
    finally:
        os.umask(previous)
    summary = tiny_run / "train_summary.json"
    assert stat.S_IMODE(summary.stat().st_mode) == umask_mode(0o666)


# -- 18: EXIF orientation -----------------------------------------------------------------------


def test_doctor_reports_exif_rotated_images_in_a_folder(tmp_path):
    folder = tmp_path / "folder"
    write_exif_rotated_jpeg(folder / "images" / "phone.jpg", sample_image(0))
    write_jpeg(folder / "images" / "plain.jpg", sample_image(1))
    boxes = {"classes": ["cat"], "images": {"phone.jpg": [], "plain.jpg": []}}
    (folder / "boxes.json").write_text(json.dumps(boxes))
    report = diagnose(f"folder:{folder}", progress=False)
    found = report.warnings[files.EXIF_ROTATION]
    assert found == [f"{folder / 'images' / 'phone.jpg'}: EXIF orientation 6"]
    assert report.ok  # usable: the stored pixels are read, as the boxes were drawn on them


# -- acceptance: doctor on every broken file ------------------------------------------------------


def test_doctor_names_every_broken_file_and_exits_1(tmp_path, capsys):
    named = make_all_broken(tmp_path)
    report_json = tmp_path / "doctor.json"
    code = cli.main(["doctor", "--dataset", f"voc:{tmp_path}", "--json", str(report_json),
                     "--no-progress"])  # fmt: skip
    assert code == 1 and "result: FAILED" in capsys.readouterr().out
    report = json.loads(report_json.read_text())
    errors = [line for lines in report["errors"].values() for line in lines]
    warnings = [line for lines in report["warnings"].values() for line in lines]
    for sample_id, where in named.items():
        severity = EXTRA_BROKEN.get(sample_id, ("", "error"))[1]
        lines = errors if severity == "error" else warnings
        assert any(str(tmp_path / "VOC2012" / where) in line for line in lines), where
    assert "READER_CRASHED" not in json.dumps(report) and "crashed" not in json.dumps(report)
    assert report["errors"][files.IMAGE_TOO_LARGE][0].startswith(str(tmp_path / "VOC2012"))
    assert len(report["errors"][files.BOX_OUT_OF_RANGE]) == 2  # huge_xmax, big_xmax
