"""BANA's pictures (paper Fig. 4a and 5): the maps behind them and the strips' layout, on
untrained tiny models and synthetic images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.methods.base import REPO, single_torch_thread
from weakseg.config import load_config
from weakseg.data.boxes import background_mask
from weakseg.data.specs import open_dataset
from weakseg.methods import build_method
from weakseg.viz.maps import (
    bana_maps,
    cam_comparison_figure,
    confidence_figure,
    model_maps,
    nal_sigma,
)
from weakseg.viz.overlay import classes_shown, legend

PAD, TITLE = 4, 18  # side_by_side's defaults
NAMES = [str(i) for i in range(6)]


def legend_height(sample, width: int) -> int:
    """Rows of the legend under a figure: the classes of the mask and the boxes."""
    return legend(classes_shown([sample.mask], sample.box_labels), NAMES, width).shape[0]


def _model(config: str, method: str, *overrides: str) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = load_config(REPO / "configs" / config, ["model.weights=none", *overrides])
    return build_method(method, cfg.method).build_model(cfg, 6).eval()


@pytest.fixture(scope="module")
def sample():
    return open_dataset("synthetic:1:3")[0]


def test_bana_maps_are_the_stage_2_quantities(sample):
    with single_torch_thread():
        maps = bana_maps(_model("bana_classifier_synthetic.yaml", "bana-classifier"), sample)
    classes = sorted({int(c) for c in sample.box_labels})
    assert set(maps) == {"A", "u_0", *(f"cam:{c}" for c in classes), *(f"u:{c}" for c in classes)}
    for m in maps.values():
        assert m.shape == (sample.height, sample.width)
        assert m.min() >= 0.0 and m.max() <= 1.0
    # Eq. 7: u_0 = 1 outside the boxes; Eq. 5: u_c = 0 outside its class's boxes, checked
    # 24 px from any box: boxes round outwards to stride-8 cells, and bilinear upsampling
    # blends in one more cell
    outside = background_mask(sample.boxes, sample.height, sample.width)
    far = cv2_erode(outside, 49)
    assert far.any()
    assert np.allclose(maps["u_0"][far], 1.0)
    for c in classes:
        assert np.allclose(maps[f"u:{c}"][far], 0.0)
    for c in classes:  # CAM_c divided by its maximum peaks at 1 unless it is 0 everywhere
        assert maps[f"cam:{c}"].max() == pytest.approx(1.0, abs=0.05) or maps[f"cam:{c}"].max() == 0


def cv2_erode(mask: np.ndarray, size: int) -> np.ndarray:
    import cv2

    return cv2.erode(mask.astype(np.uint8), np.ones((size, size), np.uint8)).astype(bool)


def test_sigma_is_one_where_the_label_is_the_arg_max(sample):
    model = _model("bana_synthetic.yaml", "bana")
    with single_torch_thread():
        prediction = model_maps(model, sample.image)["seg"]
        sigma = nal_sigma(model, sample.image, prediction)
        other = (prediction + 1) % 6
        lower = nal_sigma(model, sample.image, other)
    assert sigma.shape == (sample.height, sample.width)
    assert np.allclose(sigma, 1.0, atol=1e-5)  # Eq. 12 with c* = arg max D_c
    assert (lower < 1.0 + 1e-6).all() and lower.mean() < 1.0
    ignore = np.full_like(prediction, 255)
    assert nal_sigma(model, sample.image, ignore).max() == 0.0


def test_figures_have_one_panel_per_map(sample):
    gap = _model("bana_classifier_synthetic.yaml", "bana-classifier", "method.pooling=gap")
    bap = _model("bana_classifier_synthetic.yaml", "bana-classifier")
    seg = _model("bana_synthetic.yaml", "bana")
    w, h = sample.width, sample.height
    with single_torch_thread():
        fig = cam_comparison_figure(
            [("GAP", gap), ("BAP", bap)], sample, [str(i) for i in range(6)]
        )
        # image | ground truth | (CAM, u_0) per classifier, then the legend
        width = 6 * w + 7 * PAD
        assert fig.shape == (TITLE + h + 2 * PAD + legend_height(sample, width), width, 3)
        y_crf = sample.mask
        y_ret = np.where(np.arange(w)[None] < w // 2, y_crf, 0).astype(np.uint8)
        fig = confidence_figure([("1", seg), ("2", seg), ("3", seg)], sample, y_crf, y_ret,
                                [str(i) for i in range(6)])  # fmt: skip
    # top: image | ground truth | Y_crf | Y_crf with ~S; bottom: three sigma maps; legend
    strip, width = TITLE + h + 2 * PAD, 4 * w + 5 * PAD
    assert fig.shape == (2 * strip + PAD + legend_height(sample, width), width, 3)
    with pytest.raises(ValueError, match="boxes"):
        empty = open_dataset("synthetic:1:3")[0]
        empty.boxes, empty.box_labels = empty.boxes[:0], empty.box_labels[:0]
        cam_comparison_figure([("BAP", bap)], empty, [str(i) for i in range(6)])
