"""DDP on CPU: torchrun with 2 processes (gloo) trains a tiny config; the ranks, which see
different shards of the data, must end with identical parameters, equal to the model.pt that
only rank 0 writes. About 15-30 s."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.methods.base import REPO, TINY
from weakseg.engine.loop import load_trained

# Each rank hashes the parameters of the model it trained into OUT/rank<N>.txt.
SCRIPT = """
import hashlib, os, sys
from pathlib import Path
import weakseg.engine.loop as loop
import weakseg.methods.base as base
from weakseg.config import load_config

config, run_dir, out, *overrides = sys.argv[1:]
built = []
build_model = base.Method.build_model

def keep(self, cfg, num_classes):
    built.append(build_model(self, cfg, num_classes))
    return built[-1]

base.Method.build_model = keep
loop.train(load_config(config, overrides), run_dir)
params = b"".join(p.detach().numpy().tobytes() for p in built[0].parameters())
Path(out, f"rank{os.environ['RANK']}.txt").write_text(hashlib.sha256(params).hexdigest())
"""


def test_two_cpu_processes_end_with_identical_weights(tmp_path: Path):
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    config = REPO / "configs" / "box_synthetic.yaml"
    overrides = [*TINY, "data.train=synthetic:8", "train.iterations=3", "train.checkpoint_every=2"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(script), str(config), str(tmp_path / "run"), str(tmp_path), *overrides]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]

    hashes = {p.name: p.read_text() for p in tmp_path.glob("rank*.txt")}
    assert set(hashes) == {"rank0.txt", "rank1.txt"}
    assert hashes["rank0.txt"] == hashes["rank1.txt"]
    model, _ = load_trained(tmp_path / "run", "cpu")  # rank 0's model.pt
    params = b"".join(p.detach().numpy().tobytes() for p in model.parameters())
    assert hashlib.sha256(params).hexdigest() == hashes["rank0.txt"]

    summary = json.loads((tmp_path / "run" / "train_summary.json").read_text())
    assert summary["world_size"] == 2 and summary["epochs"] == 1.5  # 8 images / (2 x 2) per step
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3  # rank 0 alone writes
