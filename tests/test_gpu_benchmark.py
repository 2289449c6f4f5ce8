"""`python -m benchmarks.gpu --smoke`: the paper-scale GPU entry's code, on synthetic images on
the CPU (its real run needs CUDA)."""

from __future__ import annotations

import json

from benchmarks import gpu

from tests.methods.base import single_torch_thread


def test_smoke_run_writes_a_row_per_training(tmp_path):
    with single_torch_thread():
        assert gpu.main(["--smoke", "--results", str(tmp_path)]) == 0
    rows = {p.stem: json.loads(p.read_text()) for p in tmp_path.glob("*.json")}
    assert set(rows) == set(gpu.RUNS)
    for row in rows.values():
        assert row["smoke"] and 0.0 <= row["miou"]["mean"] <= 1.0
        command = row["seeds"]["0"]["train_command"]
        assert "model.freeze=none" in command and "data.cache_views=0" in command
    assert "not run yet" in gpu.render({})  # smoke rows never reach RESULTS.md
