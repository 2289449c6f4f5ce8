"""A run killed with SIGKILL mid-epoch and restarted ends with bit-identical weights (and loss
curve) to an uninterrupted run with the same seed.

The runs are subprocesses with the real model (random init, 64 px crops, one thread). The
interrupted run sleeps before each step (time only; nothing it computes changes) so that the
test can kill it right after its first checkpoint, at iteration 3 of a 4-iteration epoch; it
also uses 2 loader workers where the reference uses none (data.workers may change on resume and
must not change results). About 15-25 s, most of it importing torch three times.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from tests.methods.base import REPO, TINY

SCRIPT = """
import sys, time
import torch
import weakseg.engine.loop as loop
from weakseg.config import load_config

delay, config, run_dir, *overrides = sys.argv[1:]
step = loop.train_step

def slow_step(*args, **kwargs):
    time.sleep(float(delay))
    return step(*args, **kwargs)

loop.train_step = slow_step
loop.train(load_config(config, overrides), run_dir)
"""
# synthetic:8 in batches of 2: 4 iterations per epoch; checkpoints at 3, 4, 6, 8, 9, 10
OVERRIDES = [*TINY, "data.train=synthetic:8", "train.iterations=10", "train.checkpoint_every=3"]
DEADLINE_S = 120


def launch(run_dir: Path, delay: float, *extra: str) -> subprocess.Popen:
    config = str(REPO / "configs" / "full_synthetic.yaml")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-c", SCRIPT, str(delay), config, str(run_dir), *OVERRIDES, *extra]
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def finish(proc: subprocess.Popen) -> str:
    _, err = proc.communicate(timeout=DEADLINE_S)
    assert proc.returncode == 0, err
    return err


def kill_after_first_checkpoint(proc: subprocess.Popen, checkpoint: Path) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not checkpoint.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def losses(run_dir: Path) -> list[tuple]:
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(m["iteration"], m["lr"], m["loss"]) for m in lines]


def test_killed_and_resumed_run_matches_an_uninterrupted_one(tmp_path):
    reference = launch(tmp_path / "reference", 0.0)
    interrupted = launch(tmp_path / "resumed", 0.5, "data.workers=2")
    kill_after_first_checkpoint(interrupted, tmp_path / "resumed" / "checkpoint.pt")
    finish(reference)
    assert not (tmp_path / "resumed" / "model.pt").exists()
    state = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)
    assert state["iteration"] == 3  # mid-epoch: the resumed run skips into epoch 0

    err = finish(launch(tmp_path / "resumed", 0.0, "data.workers=2"))
    assert "from iteration 3" in err

    expected = torch.load(tmp_path / "reference" / "model.pt", weights_only=True)
    resumed = torch.load(tmp_path / "resumed" / "model.pt", weights_only=True)
    assert expected.keys() == resumed.keys()
    different = [k for k in expected if not torch.equal(expected[k], resumed[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"
    assert losses(tmp_path / "resumed") == losses(tmp_path / "reference")
    summary = json.loads((tmp_path / "resumed" / "train_summary.json").read_text())
    assert summary["resumed_from"] == 3
