"""benchmarks/lpg_head.py: the dead-head measures on a tiny synthetic generator, one of them with
its head killed by hand."""

from __future__ import annotations

import pytest
import torch
from benchmarks import lpg_head

from tests.methods.test_lpg import tiny
from weakseg.methods import lpg as L
from weakseg.models.lpg import load_generator, read_generator_file, save_generator


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run = tmp_path_factory.mktemp("head") / "run"
    L.run_lpg(tiny("lpg.stages=1", "lpg.deploy_segmenter=false"), run, progress=False,
              say=lambda m: None)  # fmt: skip
    return run


def test_a_head_with_every_hidden_unit_off_is_all_dead_and_gives_the_bias(run):
    """The lite head's BN shifted by -1000: every input of the last conv is 0, so each object
    cell is dead and its margin is the bias margin, whatever the image; the same bias set to
    +0.5 then marks every cell as object."""
    file = run / "stage1" / "generator.pt"
    alive = lpg_head.head_stats(run)
    assert alive["dead_at_object"] < 1.0
    net, _ = load_generator(file)
    info = {k: v for k, v in read_generator_file(file).items() if k != "state_dict"}
    with torch.no_grad():
        net.head[0][1].bias.fill_(-1000.0)
        net.head[-1].bias.copy_(torch.tensor([0.2, -0.3]))
    save_generator(file, net, info)
    dead = lpg_head.head_stats(run)
    assert dead["dead_at_object"] == 1.0
    assert dead["bias_margin"] == pytest.approx(-0.5)
    assert dead["margin_object"] == pytest.approx(-0.5) == dead["margin_rest"]
    assert dead["object_share"] == 0.0
    with torch.no_grad():
        net.head[-1].bias.copy_(torch.tensor([-0.2, 0.3]))
    save_generator(file, net, info)
    assert lpg_head.head_stats(run)["object_share"] == 1.0


def test_run_dir_is_read_from_the_rows_command():
    cmd = "weakseg lpg configs/x.yaml --run-dir 'bench-out/a b' lpg.seed=1 --no-progress"
    assert str(lpg_head.run_dir(cmd)) == "bench-out/a b"
