"""Frozen encoders (model.freeze) and the cached-features path of the Segmenter."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from weakseg.config import ConfigError, load_config
from weakseg.engine.loop import build_optimizer
from weakseg.models import build_segmenter


def _model(freeze: str, decoder: str = "deeplabv3plus", **kwargs):
    torch.manual_seed(0)
    return build_segmenter(decoder=decoder, num_classes=3, weights="none", freeze=freeze, **kwargs)


def _train_step(model, images):
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    loss = F.cross_entropy(model.predict(images), torch.randint(0, 3, (2, 64, 64)))
    loss.backward()
    opt.step()


def test_freeze_all_keeps_the_encoder_and_its_batchnorm_statistics_fixed():
    model = _model("all")
    encoder_before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    decoder_before = {k: v.clone() for k, v in model.decoder.state_dict().items()}
    _train_step(model, torch.rand(2, 3, 64, 64))
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert all(not m.training for m in model.encoder.body.modules())  # BatchNorm in eval mode
    for key, value in model.encoder.state_dict().items():  # running stats included
        assert torch.equal(value, encoder_before[key]), key
    after = model.decoder.state_dict()
    assert any(not torch.equal(after[k], decoder_before[k]) for k in after)  # the decoder trained


def test_freeze_up_to_stride16_trains_only_the_last_stage():
    model = _model("stride16")
    assert model.encoder.frozen_levels == 4
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    _train_step(model, torch.rand(2, 3, 64, 64))
    moved = {k.split(".")[2] for k, v in model.encoder.state_dict().items()
             if not torch.equal(v, before[k])}  # fmt: skip
    assert moved == {"5", "6"}  # blocks.5 and blocks.6 compute lite0's stride-32 level
    assert model.encoder.body.blocks[6].training and not model.encoder.body.blocks[4].training


def test_frozen_parameters_get_no_optimizer_group_or_state():
    cfg = load_config(None, ["train.optimizer=sgd"])
    model = _model("all")
    optimizer = build_optimizer(model, cfg)
    names = [g["name"] for g in optimizer.param_groups]
    assert names == ["head"]  # no encoder group: no lr, no momentum, no weight decay for it
    frozen = {id(p) for p in model.encoder.parameters()}
    assert not any(id(p) in frozen for g in optimizer.param_groups for p in g["params"])


@pytest.mark.parametrize(("freeze", "decoder", "levels"), [
    ("all", "deeplabv3plus", (1, 4)),  # the stride-4 skip and the last map
    ("stride16", "deeplabv3plus", (1, 3)),  # the skip and the input of the trainable stage
    ("all", "largefov", (4,)),
    ("stride8", "fpn", (1, 2)),
])  # fmt: skip
def test_cached_features_give_the_same_outputs_as_the_image(freeze, decoder, levels):
    model = _model(freeze, decoder).eval()
    assert model.cached_levels() == levels
    images = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        expected = model(images)["seg"]
        cached = model.frozen_features(images)
        got = model(None, features={k: v.half().float() for k, v in cached.items()})["seg"]
    assert set(cached) == set(levels)
    torch.testing.assert_close(got, expected, atol=2e-2, rtol=2e-2)  # fp16 storage


def test_cached_features_need_a_frozen_encoder_and_whole_cells():
    with pytest.raises(ValueError, match="frozen"):
        _model("none").cached_levels()
    with pytest.raises(ValueError, match="multiples of 32"):
        _model("all").frozen_features(torch.rand(1, 3, 50, 64))


def test_decoder_channels_set_the_width():
    assert _model("all", decoder_channels=64).decoder.out_channels == 64
    assert _model("all", "largefov", decoder_channels=128).decoder.out_channels == 128


def test_freeze_values_are_checked():
    with pytest.raises(ValueError, match="stride"):
        _model("stride12")
    with pytest.raises(ConfigError, match="model.freeze"):
        load_config(None, ["model.freeze=some"])
    with pytest.raises(ConfigError, match="cache_views needs a frozen encoder"):
        load_config(None, ["data.cache_views=2"])


def test_bana_classifier_freezes_all_but_its_last_stage():
    from weakseg.models.classifier import build_box_classifier

    model = build_box_classifier(num_classes=3, weights="none", output_stride=16, freeze="stride16")
    trainable = {n.split(".")[2] for n, p in model.encoder.named_parameters() if p.requires_grad}
    assert trainable == {"5", "6"}  # blocks.5 and blocks.6: the stride-32 stage (dilated to 16)
    assert all(p.requires_grad for p in model.classifier.parameters())
