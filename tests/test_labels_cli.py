"""`weakseg labels` / `eval-labels` / `fill-rates` / `demo` through the CLI entry point."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures_data import make_broken_voc
from weakseg.cli import main
from weakseg.pseudo.runner import parse_shard
from weakseg.pseudo.store import LabelStore
from weakseg.viz.palette import read_label_png


def test_labels_then_eval(tmp_path, capsys):
    out = tmp_path / "box"
    assert main(["labels", "--dataset", "synthetic:6:1", "--generator", "box", "--out", str(out),
                 "--workers", "1", "--no-progress"]) == 0  # fmt: skip
    assert len(list(out.glob("*.png"))) == 6
    meta = json.loads((out / "meta.json").read_text())
    assert meta["generator"] == "box" and meta["dataset"] == "synthetic:6:1"
    assert "done 6" in capsys.readouterr().out
    json_path = tmp_path / "eval.json"
    assert main(["eval-labels", "--dataset", "synthetic:6:1", "--labels", str(out),
                 "--json", str(json_path), "--no-progress"]) == 0  # fmt: skip
    result = json.loads(json_path.read_text())
    assert 0.2 < result["miou"] < 1.0
    assert "mIoU" in capsys.readouterr().out


def test_rerun_skips_finished_and_refuses_other_generator(tmp_path, capsys):
    out = str(tmp_path / "labels")
    args = ["labels", "--dataset", "synthetic:4", "--out", out, "--workers", "1", "--no-progress"]
    assert main([*args, "--generator", "box"]) == 0
    assert main([*args, "--generator", "box"]) == 0
    assert "done 0, already done 4" in capsys.readouterr().out
    # Same directory, other generator: refused, nothing overwritten.
    assert main([*args, "--generator", "grabcut"]) == 2
    assert "already holds labels" in capsys.readouterr().err
    runs = (Path(out) / "runs.jsonl").read_text().splitlines()
    assert len(runs) == 2


def test_generator_parameters_from_overrides(tmp_path):
    out = tmp_path / "gc"
    assert main(["labels", "--dataset", "synthetic:2", "--generator", "grabcut", "--out", str(out),
                 "--workers", "1", "--no-progress", "iterations=2"]) == 0  # fmt: skip
    assert json.loads((out / "meta.json").read_text())["params"]["iterations"] == 2
    assert main(["labels", "--dataset", "synthetic:2", "--generator", "grabcut",
                 "--out", str(tmp_path / "x"), "no_such_param=1"]) == 2  # fmt: skip


def test_shards_split_ids_without_overlap(tmp_path):
    out = tmp_path / "sharded"
    for i in range(3):
        assert main(["labels", "--dataset", "synthetic:7", "--generator", "box", "--out", str(out),
                     "--workers", "1", "--shard", f"{i}/3", "--no-progress"]) == 0  # fmt: skip
    runs = [json.loads(x) for x in (out / "runs.jsonl").read_text().splitlines()]
    assert [r["total"] for r in runs] == [3, 2, 2]
    assert sum(r["done"] for r in runs) == 7 == len(list(out.glob("*.png")))
    with pytest.raises(ValueError):
        parse_shard("3/3")


def test_bad_input_is_skipped_and_counted(tmp_path, capsys):
    expected = make_broken_voc(tmp_path / "voc")
    bad = {i for i, kind in expected.items() if kind}
    out = tmp_path / "labels"
    code = main(["labels", "--dataset", f"voc:{tmp_path / 'voc'}", "--generator", "box",
                 "--out", str(out), "--workers", "2", "--no-progress"])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    done = {p.stem for p in out.glob("*.png")}
    assert done == set(expected) - bad
    run = json.loads((out / "runs.jsonl").read_text().splitlines()[-1])
    assert sum(len(v) for v in run["skipped"].values()) == len(bad)
    assert f"skipped {len(bad)}" in printed
    assert not list(out.rglob("*.tmp"))


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_labels(tmp_path):
    """SIGKILL a run midway: only whole PNGs remain, and a re-run completes them all identically."""
    spec, n = "synthetic:24:3", 24
    cmd = [sys.executable, "-m", "weakseg", "labels", "--dataset", spec, "--generator", "crf-box",
           "--workers", "1", "--no-progress"]  # fmt: skip
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*cmd, "--out", str(killed)], env=os.environ | {"OMP_NUM_THREADS": "1"})
    deadline = time.time() + 120
    while len(list(killed.glob("*.png"))) < 3 and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = list(killed.glob("*.png"))
    assert 3 <= len(partial) < n, "the run finished before it could be killed"
    for png in partial:
        read_label_png(png)  # every file present is a whole PNG
    subprocess.run([*cmd, "--out", str(killed)], check=True, capture_output=True)
    main(["labels", "--dataset", spec, "--generator", "crf-box", "--workers", "1",
          "--no-progress", "--out", str(tmp_path / "clean")])  # fmt: skip
    a, b = LabelStore(killed), LabelStore(tmp_path / "clean")
    assert a.done_ids() == b.done_ids() and len(a.done_ids()) == n
    for sample_id in a.done_ids():
        np.testing.assert_array_equal(a.read(sample_id), b.read(sample_id))
