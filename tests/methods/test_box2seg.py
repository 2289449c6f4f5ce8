"""Box2Seg as a training method: heads, the two stages, the ablation configs, and the attention
regulariser keeping alpha away from 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.methods.base import REPO, MethodTest, single_torch_thread, tiny_config
from weakseg.config import load_config
from weakseg.engine.loop import load_trained, train
from weakseg.losses import box2seg as L
from weakseg.losses.common import cross_entropy
from weakseg.methods import build_method


class TestBox2SegEndToEnd(MethodTest):
    """Stage 2 terms (Eq. 11) with every head."""

    config = "box2seg_synthetic.yaml"
    overrides = ("method.pretrain_fraction=0",)
    method = "box2seg"
    terms = ("gc", "aw", "alpha", "affinity")


class TestBox2SegPretrainStage(MethodTest):
    """Stage 1: only the embedding loss (the loop's smoke run covers both stages)."""

    config = "box2seg_synthetic.yaml"
    method = "box2seg"
    terms = ("affinity",)


class TestAwBoxAblation(MethodTest):
    config = "box2seg_synthetic.yaml"
    overrides = ("method.lambda_affinity=0", "method.alpha_reg=bbox")
    method = "box2seg"
    terms = ("gc", "aw", "alpha")


@pytest.mark.parametrize(
    ("config", "heads", "stages"),
    [
        ("voc_box2seg.yaml", {"seg", "attention", "embed"}, 2),
        ("voc_box2seg_affinity.yaml", {"seg", "embed"}, 2),
        ("voc_box2seg_aw_box.yaml", {"seg", "attention"}, 1),
        ("voc_box2seg_aw_fr.yaml", {"seg", "attention"}, 1),
        ("voc_full_awl.yaml", {"seg", "attention"}, 1),
    ],
)
def test_ablation_configs_build_the_right_heads(config, heads, stages):
    cfg = load_config(REPO / "configs" / config, ["model.weights=none"])
    method = build_method(cfg.train.method, cfg.method)
    model = method.build_model(cfg, 21)
    assert set(model.heads) == heads
    assert len(method.stage_lengths(cfg.train.iterations)) == stages
    assert method.label_source == ("gt" if "full" in config else "pseudo")


def test_stage_lengths_split_the_budget():
    method = build_method("box2seg", {"pretrain_fraction": 0.1})
    assert method.stage_lengths(300) == [30, 270]
    assert method.stage_lengths(2) == [1, 1]
    assert build_method("box2seg", {"pretrain_fraction": 0}).stage_lengths(300) == [300]
    assert build_method("box2seg", {"lambda_affinity": 0}).stage_lengths(300) == [300]


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="alpha_reg"):
        build_method("box2seg", {"alpha_reg": "l1"})
    with pytest.raises(ValueError, match="masks"):
        build_method("box2seg", {"masks": "boxes"})


def test_two_stage_smoke_run_logs_both_stages(tmp_path: Path):
    cfg = tiny_config("box2seg_synthetic.yaml", tmp_path, "train.iterations=2")
    with single_torch_thread():
        summary = train(cfg, tmp_path / "run")
    assert summary["finished"]
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [ln for ln in lines if "loss" in ln]
    assert set(steps[0]) >= {"loss/affinity"} and "loss/gc" not in steps[0]  # stage 1
    assert {"loss/gc", "loss/aw", "loss/alpha", "loss/affinity"} <= set(steps[1])  # stage 2
    # the poly lr restarts at stage 2: its first lr is the base lr again
    assert steps[1]["lr"] == pytest.approx(steps[0]["lr"])
    model, _ = load_trained(tmp_path / "run", device="cpu")
    assert set(model.heads) == {"seg", "attention", "embed"}


def test_exported_model_has_no_attention_or_embedding_weights(tmp_path: Path):
    onnx = pytest.importorskip("onnx")
    from weakseg.export import export_onnx

    cfg = load_config(REPO / "configs" / "box2seg_synthetic.yaml", ["model.weights=none"])
    model = build_method("box2seg", cfg.method).build_model(cfg, 6).eval()
    with single_torch_thread():
        path = export_onnx(model, tmp_path / "m.onnx", 64, 64)
    graph = onnx.load(str(path)).graph
    names = [init.name for init in graph.initializer] + [n.name for n in graph.node]
    assert not any("attention" in n or "embed" in n for n in names)
    # the exported head's weights are all there is: sizes match the seg-only parameter count
    seg_only = sum(
        p.numel()
        for n, p in model.named_parameters()
        if not n.startswith(("heads.attention", "heads.embed"))
    )
    exported = sum(
        int(torch.tensor(list(init.dims)).prod()) if init.dims else 1 for init in graph.initializer
    )
    assert exported <= seg_only + 1000  # BN folding may change counts slightly, never by a head


def test_fill_rate_regulariser_keeps_attention_from_collapsing():
    """Eq. 11 with the paper's weights on one 8 x 8 image whose GrabCut mask fills half its box
    (eta = 0.5), optimising the segmentation and attention logits directly: without L_alpha the
    attention's fill rate decays towards 0 (the collapse the paper warns of); with L_alpha^fr
    (gamma 0.7) it settles at gamma * eta = 0.35."""
    b = torch.zeros(1, 2, 8, 8)
    b[0, 1, 2:6, 2:6] = 1
    b[0, 0] = 1 - b[0, 1]
    m = torch.zeros_like(b)
    m[0, 1, 3:5, 2:6] = 1
    m[0, 0] = 1 - m[0, 1]
    target, eta = m.argmax(1), L.fill_rates(m, b)
    assert eta[0, 1].item() == pytest.approx(0.5)

    def fit(lambda_alpha: float) -> float:
        seg = torch.zeros(1, 2, 8, 8, requires_grad=True)
        att = torch.zeros(1, 2, 8, 8, requires_grad=True)
        opt = torch.optim.SGD([seg, att], lr=0.5)
        for _ in range(1000):
            log_y, alpha = torch.log_softmax(seg, dim=1), torch.sigmoid(att)
            loss = (cross_entropy(seg, target) + 10 * L.attention_weighted_loss(log_y, alpha, b)
                    + lambda_alpha * L.fill_rate_loss(alpha, b, eta, gamma=0.7))  # fmt: skip
            opt.zero_grad()
            loss.backward()
            opt.step()
        return L.predicted_fill_rates(torch.sigmoid(att), b)[0, 1].item()

    assert fit(lambda_alpha=0.0) < 0.1
    assert fit(lambda_alpha=1.0) == pytest.approx(0.35, abs=0.01)


def test_report_writes_attention_and_affinity_pictures(tmp_path: Path):
    from weakseg.cli import main

    cfg = tiny_config("box2seg_synthetic.yaml", tmp_path)
    with single_torch_thread():
        train(cfg, tmp_path / "run")
        code = main(["report", "--run-dir", str(tmp_path / "run"), "--dataset", "synthetic:2:5",
                     "--device", "cpu"])  # fmt: skip
    assert code == 0
    pictures = sorted((tmp_path / "run" / "report").glob("*.png"))
    assert len(pictures) == 2
    page = (tmp_path / "run" / "report" / "index.html").read_text()
    assert "attention" in page and pictures[0].name in page


def test_affinity_map_is_cosine_to_the_chosen_pixel():
    from weakseg.viz.maps import affinity_map

    emb = torch.zeros(2, 2, 2)
    emb[0, 0, 0] = 1.0  # pixel (0,0) along x
    emb[0, 0, 1] = 3.0  # (0,1) along x, longer
    emb[1, 1, 0] = 1.0  # (1,0) along y
    emb[0, 1, 1], emb[1, 1, 1] = -1.0, 0.0  # (1,1) opposite
    a = affinity_map(emb.numpy(), (0, 0))
    assert a.ravel().tolist() == pytest.approx([1.0, 1.0, 0.0, -1.0])


def test_resume_across_the_stage_boundary_is_exact(tmp_path: Path, monkeypatch):
    """Stages [1, 3]: a run stopped after iteration 2 (in stage 2) and resumed ends with the
    weights of an uninterrupted run (the pixel sampling draws from the checkpointed RNG)."""
    import weakseg.engine.loop as loop

    cfg = tiny_config("box2seg_synthetic.yaml", tmp_path, "train.iterations=4",
                      "train.checkpoint_every=2")  # fmt: skip
    with single_torch_thread():
        train(cfg, tmp_path / "whole")
        step, calls = loop.train_step, []

        def stop_at_third(*args, **kwargs):
            calls.append(1)
            if len(calls) == 3:
                raise KeyboardInterrupt
            return step(*args, **kwargs)

        monkeypatch.setattr(loop, "train_step", stop_at_third)
        with pytest.raises(KeyboardInterrupt):
            train(cfg, tmp_path / "resumed")
        monkeypatch.setattr(loop, "train_step", step)
        summary = train(cfg, tmp_path / "resumed")
    assert summary["resumed_from"] == 2
    whole = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)
    resumed = torch.load(tmp_path / "resumed" / "model.pt", weights_only=True)
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_normalise_divides_eq11_by_one_plus_lambda_aw():
    torch.manual_seed(0)
    target = torch.zeros(2, 16, 16, dtype=torch.long)
    target[:, 4:10, 4:10] = 2
    batch = {
        "target": target,
        "valid": torch.ones(2, 16, 16, dtype=torch.bool),
        "boxes": [torch.tensor([[3.0, 3.0, 12.0, 12.0]])] * 2,
        "box_labels": [torch.tensor([2])] * 2,
    }
    outputs = {"seg": torch.randn(2, 3, 4, 4), "attention": torch.randn(2, 3, 4, 4),
               "embed": torch.randn(2, 8, 4, 4)}  # fmt: skip
    params = {"pretrain_fraction": 0.0, "lambda_aw": 10.0}
    torch.manual_seed(1)
    plain = build_method("box2seg", {**params, "normalise": False}).losses(batch, outputs)
    torch.manual_seed(1)
    scaled = build_method("box2seg", {**params, "normalise": True}).losses(batch, outputs)
    for name in plain:
        assert scaled[name].item() == pytest.approx(plain[name].item() / 11.0, rel=1e-5), name
    # without the attention terms nothing is rescaled (the Affinity ablation)
    torch.manual_seed(1)
    aff = build_method("box2seg", {"pretrain_fraction": 0.0, "lambda_aw": 0.0,
                                   "lambda_alpha": 0.0}).losses(batch, outputs)  # fmt: skip
    assert aff["gc"].item() == pytest.approx(plain["gc"].item())
