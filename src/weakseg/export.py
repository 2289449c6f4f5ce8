"""ONNX export of a Segmenter's inference path.

The exported graph is ``Segmenter.predict``: input ``images`` B x 3 x H x W float32 RGB in [0, 1]
(normalisation is inside the graph), output ``logits`` B x (L+1) x H x W float32 at the input
size (apply argmax over dim 1 for a label map; softmax for probabilities). Only the "seg" head is
traced, so training-only heads (attention, embedding, ...) and their weights are absent.

With ``dynamic=True`` batch, height and width are dynamic axes (any H x W: padding to a multiple
of 32 and the crop back are part of the graph); with ``dynamic=False`` the graph is fixed at
1 x 3 x height x width. Uses the TorchScript-based exporter (``dynamo=False``), which needs no
onnxscript.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from weakseg.models.segmenter import Segmenter


class _SegLogits(nn.Module):
    """Wraps ``Segmenter.predict`` so the exporter traces only the segmentation path."""

    def __init__(self, model: Segmenter) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.predict(images)


def export_onnx(
    model: Segmenter,
    path: str | Path,
    height: int,
    width: int,
    opset: int = 17,
    dynamic: bool = True,
) -> Path:
    """Write ``model``'s segmentation logits graph to ``path`` and check it with onnx.checker.

    ``height`` x ``width`` is the example input size used for tracing (and the fixed size when
    ``dynamic=False``). The model is exported in eval mode, float32, on CPU, and then put back in
    its previous training mode. Returns the path.
    """
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    wrapper = _SegLogits(model).eval()
    example = torch.rand(1, 3, height, width, device=next(model.parameters()).device)
    axes = {
        "images": {0: "batch", 2: "height", 3: "width"},
        "logits": {0: "batch", 2: "height", 3: "width"},
    }
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # Shape arithmetic in padding/cropping warns under tracing, yet is traced correctly
            # (checked at other sizes by tests/test_export.py); the TorchScript exporter is
            # deprecated in favour of the dynamo one, which would need onnxscript.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                wrapper,
                (example,),
                str(path),
                input_names=["images"],
                output_names=["logits"],
                opset_version=opset,
                dynamic_axes=axes if dynamic else None,
                dynamo=False,
            )
    finally:
        model.train(was_training)
    onnx.checker.check_model(onnx.load(str(path)))
    return path
