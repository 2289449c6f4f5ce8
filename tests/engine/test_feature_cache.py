"""The feature cache of a frozen encoder: what it holds, when it is reused or rebuilt, and
training on it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.methods.base import single_torch_thread, tiny_config
from weakseg.data.training import subsample_batch
from weakseg.engine import feature_cache
from weakseg.engine.feature_cache import CachedViews, open_cache
from weakseg.engine.loop import build_training_dataset, train
from weakseg.methods import build_method

CACHED = ("model.freeze=all", "data.cache_views=2", "model.decoder_channels=32")


@pytest.fixture(autouse=True)
def _one_thread():
    with single_torch_thread():
        yield


def _setup(tmp_path, *overrides):
    cfg = tiny_config("full_synthetic.yaml", tmp_path, *CACHED, *overrides)
    method = build_method(cfg.train.method, cfg.method)
    data = build_training_dataset(cfg, method)
    torch.manual_seed(0)
    return cfg, data, method.build_model(cfg, len(data.classes))


def test_rows_hold_the_frozen_maps_of_each_views_crop(tmp_path):
    cfg, data, model = _setup(tmp_path)
    cache = open_cache(model, data, views=2, root=tmp_path / "cache", progress=False)
    assert (cache.views, cache.count) == (2, 4)
    model.eval()
    for view in (0, 1):
        data.set_epoch(view)  # view k is the crop of epoch k
        for index in (0, 3):
            expected = model.frozen_features(data[index]["image"][None])
            got = cache.features(view, index)
            assert set(got) == {1, 4}
            for lvl in got:
                assert got[lvl].dtype == torch.float16
                torch.testing.assert_close(got[lvl].float(), expected[lvl][0], atol=1e-2, rtol=1e-2)
    # the two views of one image are different crops
    assert not torch.equal(cache.features(0, 0)[4], cache.features(1, 0)[4])


def test_a_second_open_reuses_the_cache_and_a_changed_key_rebuilds(tmp_path, monkeypatch):
    cfg, data, model = _setup(tmp_path)
    root = tmp_path / "cache"
    first = open_cache(model, data, views=2, root=root, progress=False)
    built = []
    real_build = feature_cache._build
    monkeypatch.setattr(feature_cache, "_build", lambda *a: built.append(a) or real_build(*a))
    assert open_cache(model, data, views=2, root=root, progress=False).directory == first.directory
    assert built == []  # reused, not rebuilt
    data.seed = 7  # another cache_seed: other crops
    other = open_cache(model, data, views=2, root=root, progress=False)
    data.seed = 0
    data.transform.scale_max = 1.5  # another transform
    third = open_cache(model, data, views=2, root=root, progress=False)
    with torch.no_grad():
        model.encoder.body.conv_stem.weight.add_(1.0)  # other frozen weights
    fourth = open_cache(model, data, views=2, root=root, progress=False)
    dirs = {first.directory, other.directory, third.directory, fourth.directory}
    assert len(dirs) == 4 and len(built) == 3


@pytest.mark.parametrize("wrapper", ["binary:ring:", "classes:1-2:"])
def test_a_binary_or_class_subset_task_reads_the_cache_of_its_inner_dataset(
    tmp_path, monkeypatch, wrapper
):
    cfg, data, model = _setup(tmp_path, "data.train=synthetic:4:0")
    root = tmp_path / "cache"
    plain = open_cache(model, data, views=2, root=root, progress=False)
    _, binary_data, _ = _setup(tmp_path, f"data.train={wrapper}synthetic:4:0")
    assert binary_data.dataset.spec.startswith(wrapper)
    built = []
    monkeypatch.setattr(feature_cache, "_build", lambda *a: built.append(a))
    binary = open_cache(model, binary_data, views=2, root=root, progress=False)
    assert binary.directory == plain.directory and built == []
    binary_data.set_epoch(1)  # the same crops: the binary view replays the cached one
    expected = model.frozen_features(binary_data[2]["image"][None])[4][0]
    torch.testing.assert_close(binary.features(1, 2)[4].float(), expected, atol=1e-2, rtol=1e-2)


def test_a_failed_build_leaves_no_cache_behind(tmp_path, monkeypatch):
    cfg, data, model = _setup(tmp_path)
    root = tmp_path / "cache"

    def broken(images):
        raise RuntimeError("killed")

    monkeypatch.setattr(model, "frozen_features", broken)
    with pytest.raises(RuntimeError, match="killed"):
        open_cache(model, data, views=2, root=root, progress=False)
    assert not [p for p in root.iterdir() if p.is_dir() and not p.name.endswith(".partial")]
    monkeypatch.undo()
    cache = open_cache(model, data, views=2, root=root, progress=False)  # builds cleanly now
    assert json.loads((cache.directory / "meta.json").read_text())["count"] == 4


def test_memory_budget_decides_between_memory_and_disk(tmp_path):
    cfg, data, model = _setup(tmp_path)
    root = tmp_path / "cache"
    in_memory = open_cache(model, data, views=2, root=root, memory_gb=1.0, progress=False)
    on_disk = open_cache(model, data, views=2, root=root, memory_gb=0.0, progress=False)
    assert not any(isinstance(a, np.memmap) for a in in_memory.arrays.values())
    assert all(isinstance(a, np.memmap) for a in on_disk.arrays.values())
    for lvl in in_memory.arrays:
        assert np.array_equal(in_memory.arrays[lvl], on_disk.arrays[lvl])


def test_cached_views_replay_the_crop_of_view_epoch_mod_k(tmp_path):
    cfg, data, model = _setup(tmp_path)
    cache = open_cache(model, data, views=2, root=tmp_path / "cache", progress=False)
    views = CachedViews(data, cache, seed=5)
    views.set_epoch(3)  # epoch 3 -> view 1
    item = views[2]
    data.set_epoch(1)
    plain = data[2]
    assert torch.equal(item["target"], plain["target"])
    assert torch.equal(item["boxes"], plain["boxes"])
    assert torch.equal(item["features"][4], cache.features(1, 2)[4])
    assert views.seed == 5 and data.seed == 0  # the training seed orders batches only


def test_training_on_the_cache_resumes_and_saves_a_whole_model(tmp_path):
    cache_dir = f"data.cache_dir={tmp_path / 'cache'}"
    cfg = tiny_config("full_synthetic.yaml", tmp_path, *CACHED, cache_dir, "train.iterations=4",
                      "train.checkpoint_every=2", "train.loss_stride=4")  # fmt: skip
    summary = train(cfg, tmp_path / "run")
    assert summary["iterations"] == 4 and np.isfinite(summary["last"]["loss"])
    assert summary["feature_cache"]["built_by_this_run"]
    assert summary["feature_cache"]["build_seconds"] > 0
    state = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert any(k.startswith("encoder.") for k in state)  # predict/export need no cache
    assert len(list((tmp_path / "cache").glob("*/meta.json"))) == 1


def test_subsample_batch_keeps_cell_centres_and_scales_boxes():
    target = torch.arange(64).view(1, 8, 8)
    batch = {"image": torch.zeros(1, 3, 8, 8), "target": target, "target_ret": target + 1,
             "valid": torch.ones(1, 8, 8, dtype=torch.bool), "id": ["a"],
             "boxes": [torch.tensor([[0.0, 4.0, 8.0, 6.0]])],
             "box_labels": [torch.tensor([1])]}  # fmt: skip
    small = subsample_batch(batch, 4)
    # rows/cols 2 and 6 are the centres of the 4 x 4 cells: 8 * 2 + 2 = 18, 8 * 6 + 6 = 54
    assert small["target"].tolist() == [[[18, 22], [50, 54]]]
    assert small["target_ret"].tolist() == [[[19, 23], [51, 55]]]
    assert small["image"].shape == (1, 3, 2, 2) and small["valid"].shape == (1, 2, 2)
    assert small["boxes"][0].tolist() == [[0.0, 1.0, 2.0, 1.5]]
    assert subsample_batch(batch, 1) is batch
