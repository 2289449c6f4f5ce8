"""ONNX export: onnxruntime reproduces Segmenter.predict, at several sizes when dynamic, and
training-only heads stay out of the graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper
from torch import nn

from tests.models import randomize_
from weakseg.export import export_onnx
from weakseg.models import Segmenter, build_segmenter


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _max_abs_diff(model: Segmenter, session: ort.InferenceSession, shape: tuple) -> float:
    images = torch.rand(*shape, generator=torch.Generator().manual_seed(sum(shape)))
    with torch.no_grad():
        expected = model.predict(images).numpy()
    (got,) = session.run(None, {"images": images.numpy()})
    assert got.shape == expected.shape
    assert np.abs(expected).max() > 1.0  # logits of real magnitude, not ~0
    return float(np.abs(got - expected).max())


@pytest.fixture(scope="module")
def lite0_model() -> Segmenter:
    torch.manual_seed(0)
    return randomize_(build_segmenter(weights="none")).eval()


def test_dynamic_export_matches_pytorch_at_several_sizes(lite0_model, tmp_path):
    path = export_onnx(lite0_model, tmp_path / "model.onnx", height=128, width=160)
    session = _session(path)
    # The tracing size, another batch and size, and one not divisible by 32 (padding in-graph).
    for shape in [(1, 3, 128, 160), (2, 3, 96, 224), (1, 3, 100, 130)]:
        assert _max_abs_diff(lite0_model, session, shape) < 1e-4, shape


def test_static_export_has_a_fixed_input_shape(lite0_model, tmp_path):
    path = export_onnx(lite0_model, tmp_path / "static.onnx", 64, 96, dynamic=False)
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 3, 64, 96]
    assert _max_abs_diff(lite0_model, _session(path), (1, 3, 64, 96)) < 1e-4


def test_export_restores_training_mode(lite0_model, tmp_path):
    lite0_model.train()
    try:
        export_onnx(lite0_model, tmp_path / "m.onnx", 64, 64, dynamic=False)
        assert lite0_model.training
    finally:
        lite0_model.eval()


def _initializers(path: Path) -> list[np.ndarray]:
    return [numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer]


def test_extra_heads_are_not_exported(tmp_path):
    torch.manual_seed(0)
    with_embed = build_segmenter(
        decoder="largefov",
        weights="none",
        extra_heads={"embed": lambda c: nn.Conv2d(c, 37, 1)},
    ).eval()
    seg_only = Segmenter(
        with_embed.encoder,
        with_embed.decoder,
        {"seg": with_embed.heads["seg"]},
        mean=with_embed.mean.flatten().tolist(),
        std=with_embed.std.flatten().tolist(),
    ).eval()
    a = _initializers(export_onnx(with_embed, tmp_path / "a.onnx", 64, 64))
    b = _initializers(export_onnx(seg_only, tmp_path / "b.onnx", 64, 64))
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    embed = with_embed.heads["embed"].weight.detach().numpy()
    assert not any(x.shape == embed.shape or 37 in x.shape for x in a)
    assert [o.name for o in onnx.load(str(tmp_path / "a.onnx")).graph.output] == ["logits"]
