"""Segmenter, decoders and heads: shapes and strides, normalisation inside, parameter groups,
channels_last and bf16 autocast. Random-init weights only (no downloads, no package weights)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.models import randomize_
from weakseg.models import (
    DECODERS,
    CosineClassifier,
    SegmentationHead,
    Segmenter,
    build_encoder,
    build_segmenter,
)


@pytest.fixture(scope="module")
def lite0_deeplab() -> Segmenter:
    torch.manual_seed(0)
    return randomize_(build_segmenter(weights="none")).eval()


@pytest.mark.parametrize(
    ("decoder", "output_stride", "stride", "channels"),
    [
        ("deeplabv3plus", 32, 4, 256),
        ("deeplabv3plus", 16, 4, 256),
        ("largefov", 32, 32, 1024),
        ("largefov", 16, 16, 1024),
        ("cam", 16, 16, 1024),
        ("fpn", 32, 4, 128),
    ],
)
def test_decoder_output_shapes_and_strides(decoder, output_stride, stride, channels):
    model = build_segmenter(
        decoder=decoder, weights="none", num_classes=5, output_stride=output_stride
    ).eval()
    assert (model.output_stride, model.decoder.out_channels) == (stride, channels)
    with torch.no_grad():
        for h, w in [(64, 96), (50, 70)]:  # divisible by 32, and not
            out = model(torch.rand(2, 3, h, w))
            assert tuple(out["seg"].shape) == (2, 5, -(-h // stride), -(-w // stride))
            assert tuple(model.predict(torch.rand(1, 3, h, w)).shape) == (1, 5, h, w)


def test_registry_lists_the_four_decoders():
    assert set(DECODERS) == {"deeplabv3plus", "largefov", "cam", "fpn"}


def _changed_cells(decoder: nn.Module, channels: int) -> set[tuple[int, int]]:
    """Output cells (row, col) of a 15 x 15 map that move when one input cell (7, 7) changes."""
    torch.manual_seed(0)
    base = torch.rand(1, channels, 15, 15)
    bumped = base.clone()
    bumped[0, :, 7, 7] += 5.0
    with torch.no_grad():
        diff = (decoder([bumped]) - decoder([base])).abs().amax(dim=1)[0]
    return {(int(r), int(c)) for r, c in torch.nonzero(diff > 1e-6)}


def test_cam_decoder_sees_two_cells_each_side_and_largefov_more():
    """SEC's cue network (supplement 6.1): fc6_CAM and fc7_CAM are two undilated 3x3 convs, so a
    CAM cell depends on the 5 x 5 encoder cells around it; LargeFOV at stride 16 (dilation 6)
    reaches 6 cells away (the diffuse CAMs of the first SEC cue row came from that)."""
    cam = DECODERS["cam"]([8], [16], out_channels=16).eval()
    assert _changed_cells(cam, 8) == {(r, c) for r in range(5, 10) for c in range(5, 10)}
    largefov = DECODERS["largefov"]([8], [16], out_channels=16).eval()
    assert (7, 1) in _changed_cells(largefov, 8)


def test_cam_decoder_fc7_is_linear():
    """fc7_CAM has no ReLU (REFERENCE_NOTES, SEC): fc6 = ReLU(x), fc7 = -fc6 at the centre tap
    gives -ReLU(x) at every cell, negative where x > 0 (a ReLU after fc7 would give 0)."""
    decoder = DECODERS["cam"]([2], [16], out_channels=2).eval()
    with torch.no_grad():
        for conv, sign in ((decoder.fc6, 1.0), (decoder.fc7, -1.0)):
            conv.weight.zero_()
            conv.bias.zero_()
            conv.weight[:, :, 1, 1] = sign * torch.eye(2)
        x = torch.tensor([[[[1.0, -2.0], [3.0, 0.5]], [[-1.0, 2.0], [0.0, -4.0]]]])
        expected = torch.tensor([[[[-1.0, 0.0], [-3.0, -0.5]], [[0.0, -2.0], [0.0, 0.0]]]])
        torch.testing.assert_close(decoder([x]), expected)


def test_fpn_rejects_a_dilated_encoder():
    with pytest.raises(ValueError, match="output_stride=32"):
        build_segmenter(decoder="fpn", weights="none", output_stride=16)


def test_deeplab_rates_keep_the_field_of_view_of_the_paper():
    encoder = build_encoder("tf_efficientnet_lite0", weights="none")
    assert DECODERS["deeplabv3plus"](encoder.channels, [2, 4, 8, 16, 16]).atrous_rates == (
        6,
        12,
        18,
    )
    assert DECODERS["deeplabv3plus"](encoder.channels, encoder.strides).atrous_rates == (3, 6, 9)
    assert DECODERS["largefov"](encoder.channels, [2, 4, 8, 8, 8]).dilation == 12


def test_forward_normalises_inside(lite0_deeplab):
    seen = []
    hook = lite0_deeplab.encoder.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    images = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        lite0_deeplab(images)
    hook.remove()
    torch.testing.assert_close(seen[0], (images - 0.5) / 0.5)


def test_inputs_are_padded_with_the_mean_colour(lite0_deeplab):
    seen = []
    hook = lite0_deeplab.encoder.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    with torch.no_grad():
        lite0_deeplab(torch.rand(1, 3, 50, 70))
    hook.remove()
    assert tuple(seen[0].shape) == (1, 3, 64, 96)
    assert seen[0][..., 50:, :].abs().max() == 0 and seen[0][..., 70:].abs().max() == 0


def test_predict_is_the_upsampled_seg_output(lite0_deeplab):
    images = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        seg = lite0_deeplab(images)["seg"]
        expected = F.interpolate(seg, size=(64, 96), mode="bilinear", align_corners=False)
        torch.testing.assert_close(lite0_deeplab.predict(images), expected)


def test_param_groups_cover_every_parameter_exactly_once():
    model = build_segmenter(weights="none", extra_heads={"embed": lambda c: nn.Conv2d(c, 8, 1)})
    groups = model.param_groups()
    encoder_ids = [id(p) for p in groups["encoder"]]
    head_ids = [id(p) for p in groups["head"]]
    assert len(encoder_ids + head_ids) == len(set(encoder_ids + head_ids))
    assert set(encoder_ids + head_ids) == {id(p) for p in model.parameters()}
    assert set(encoder_ids) == {id(p) for p in model.encoder.parameters()}
    assert id(model.heads["embed"].weight) in head_ids


def test_channels_last_equals_contiguous(lite0_deeplab):
    images = torch.rand(2, 3, 64, 96)
    cl_model = build_segmenter(weights="none").eval()
    cl_model.load_state_dict(lite0_deeplab.state_dict())
    cl_model = cl_model.to(memory_format=torch.channels_last)
    with torch.no_grad():
        expected = lite0_deeplab.predict(images)
        got = cl_model.predict(images.contiguous(memory_format=torch.channels_last))
    assert expected.abs().max() > 1.0
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_bf16_autocast_forward_is_close_to_fp32(lite0_deeplab):
    images = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        expected = lite0_deeplab.predict(images)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = lite0_deeplab.predict(images)
    assert got.dtype == torch.bfloat16
    assert (got.float() - expected).abs().max() < 0.05 * expected.abs().max()


def test_training_step_reaches_every_parameter():
    model = build_segmenter(decoder="fpn", weights="none", num_classes=3)
    images, target = torch.rand(2, 3, 64, 64), torch.randint(0, 3, (2, 64, 64))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = F.cross_entropy(model.predict(images).float(), target)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_extra_heads_run_and_can_be_skipped():
    model = build_segmenter(
        weights="none", num_classes=4, extra_heads={"embed": lambda c: nn.Conv2d(c, 8, 1)}
    ).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 64))
        assert {k: tuple(v.shape) for k, v in out.items()} == {
            "seg": (1, 4, 16, 16),
            "embed": (1, 8, 16, 16),
        }
        assert set(model(torch.rand(1, 3, 64, 64), heads=("seg",))) == {"seg"}


def test_segmentation_head_is_a_1x1_conv():
    head = SegmentationHead(16, 3)
    x = torch.randn(2, 16, 5, 7)
    expected = torch.einsum("bdhw,cd->bchw", x, head.conv.weight[:, :, 0, 0])
    expected = expected + head.conv.bias.view(1, 3, 1, 1)
    torch.testing.assert_close(head(x), expected)


def test_cosine_classifier_is_scaled_cosine():
    head = CosineClassifier(16, 3, scale=20.0)
    x = torch.randn(2, 16, 5, 7)
    logits = head(x)
    f, w = x[1, :, 2, 3], head.weight[2]
    torch.testing.assert_close(logits[1, 2, 2, 3], 20.0 * f.dot(w) / (f.norm() * w.norm()))
    assert logits.abs().max() <= 20.0 + 1e-4
    torch.testing.assert_close(head(3.0 * x), logits)  # invariant to feature magnitude


def test_cosine_classifier_rows_start_at_unit_norm_so_one_step_turns_them_little():
    """A direction-only weight turns by ~lr * |grad| / |w| per step, with |grad| ~ 1 / |w|: at
    unit norm one SGD step of lr 0.1 (the CPU protocol's decoder lr) turns each row by a few
    degrees; rows drawn at std 0.01 turn by tens of degrees (the collapse it caused)."""
    torch.manual_seed(0)

    def largest_turn(head: CosineClassifier) -> float:
        x, y = torch.randn(4, 64, 8, 8), torch.randint(0, 21, (4, 8, 8))
        before = head.weight.detach().clone()
        torch.nn.functional.cross_entropy(head(x), y).backward()
        with torch.no_grad():
            head.weight -= 0.1 * head.weight.grad
        cos = torch.nn.functional.cosine_similarity(before, head.weight.detach(), dim=1)
        return float(torch.rad2deg(torch.arccos(cos.clamp(max=1.0))).max())

    head = CosineClassifier(64, 21)
    torch.testing.assert_close(head.weight.norm(dim=1), torch.ones(21))
    assert largest_turn(head) < 5.0
    tiny = CosineClassifier(64, 21)
    with torch.no_grad():
        tiny.weight.normal_(std=0.01)
    assert largest_turn(tiny) > 20.0


def test_cosine_seg_head_is_selectable():
    model = build_segmenter(weights="none", seg_head="cosine")
    assert isinstance(model.heads["seg"], CosineClassifier)


def test_unknown_names_raise():
    with pytest.raises(ValueError, match="decoder"):
        build_segmenter(decoder="unet", weights="none")
    with pytest.raises(ValueError, match="seg_head"):
        build_segmenter(seg_head="mlp", weights="none")
