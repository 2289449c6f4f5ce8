from pathlib import Path

import pytest
import yaml

from weakseg.config import (
    Config,
    ConfigError,
    config_diff,
    config_to_dict,
    load_config,
    save_config,
)
from weakseg.crf import CrfParams
from weakseg.methods import METHODS, build_method

# LPG's configs hold an lpg: and a segmenter: section (tests/methods/test_lpg.py checks them).
CONFIGS = sorted(
    p
    for p in (Path(__file__).resolve().parents[1] / "configs").glob("*.yaml")
    if "lpg" not in p.name
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def test_missing_sections_and_fields_keep_defaults(tmp_path):
    cfg = load_config(write(tmp_path, "train:\n  lr: 0.02\n"))
    assert cfg.train.lr == 0.02
    assert cfg.train.head_lr_mult == 10.0 and cfg.data.crop_size == 320
    assert cfg.model.encoder == "tf_efficientnet_lite0" and cfg.method == {}
    assert load_config(None) == Config()


def test_overrides_are_yaml_typed_and_dotted(tmp_path):
    cfg = load_config(
        write(tmp_path, "train:\n  lr: 0.02\n"),
        ["train.lr=1e-3", "data.flip=false", "eval.scales=[0.75, 1, 1.25]",
         "train.loss_weights.box=2", "method.labelled_fraction=0.2", "data.val="],
    )  # fmt: skip
    assert cfg.train.lr == 0.001  # "1e-3" is a string to YAML 1.1; floats accept it
    assert cfg.data.flip is False
    assert cfg.eval.scales == [0.75, 1.0, 1.25] and all(
        isinstance(s, float) for s in cfg.eval.scales
    )
    assert cfg.train.loss_weights == {"box": 2.0}
    assert cfg.method == {"labelled_fraction": 0.2}
    assert cfg.data.val == ""


def test_unknown_key_names_it_and_lists_the_valid_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"'train.lrr' \(did you mean 'lr'\?\); valid keys in "
                       r"train: method, iterations, optimizer, lr,"):  # fmt: skip
        load_config(None, ["train.lrr=0.1"])
    with pytest.raises(ConfigError, match="'trian'.*valid keys at the top level: data, model"):
        load_config(write(tmp_path, "trian:\n  lr: 0.1\n"))


def test_wrong_types_and_values_are_errors():
    with pytest.raises(ConfigError, match="train.iterations: expected int, got 1.5"):
        load_config(None, ["train.iterations=1.5"])
    with pytest.raises(ConfigError, match="data.flip: expected bool, got 'maybe'"):
        load_config(None, ["data.flip=maybe"])
    with pytest.raises(ConfigError, match="train.optimizer='adamw': choose from sgd, adam"):
        load_config(None, ["train.optimizer=adamw"])
    with pytest.raises(ConfigError, match="data.scale_min <= data.scale_max"):
        load_config(None, ["data.scale_min=2", "data.scale_max=1"])
    with pytest.raises(ConfigError, match="must look like section.key=value"):
        load_config(None, ["train.lr"])


def test_save_then_load_round_trips(tmp_path):
    cfg = load_config(None, ["train.loss_weights.box=2", "method.gamma=0.7", "eval.scales=[1,2]"])
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert saved == config_to_dict(cfg) and saved["train"]["head_lr_mult"] == 10.0
    assert not list(tmp_path.glob(".*.tmp"))  # atomic: no temp file left


def test_config_diff_lists_changed_keys():
    old, new = load_config(None), load_config(None, ["train.lr=0.5", "method.x=1"])
    assert config_diff(old, new) == ["method.x: '<unset>' -> 1", "train.lr: 0.01 -> 0.5"]
    assert config_diff(old, new, ignore=("train.lr", "method.x")) == []


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_load_and_name_a_method(path):
    cfg = load_config(path)
    method = build_method(cfg.train.method, cfg.method)
    assert cfg.train.method in METHODS
    if method.label_source in ("pseudo", "semi"):
        assert cfg.data.labels, "pseudo-label methods need data.labels"


def _budget(c) -> tuple:
    m, d, t = c.model, c.data, c.train
    return (t.iterations, d.batch_size, d.crop_size, t.lr, t.optimizer, t.loss_stride, m.encoder,
            m.decoder, m.decoder_channels, m.freeze, d.cache_views, d.cache_seed)  # fmt: skip


def test_voc_configs_share_one_budget_per_protocol():
    """Every VOC segmentation config (not BANA's stage-1 classifier) trains on its protocol's
    budget: the earlier full fine-tuning (voc_*.yaml) or the CPU protocol (voc_*_cpu.yaml)."""
    voc = {p.name: load_config(p) for p in CONFIGS if p.name.startswith("voc_")}
    voc = {n: c for n, c in voc.items() if c.train.method != "bana-classifier"}
    # SEC's configs are the CPU protocol with SEC's own heads and input (stride 16, one warped
    # view per image): one budget among themselves, the protocol's schedule. The segmentation
    # network is LargeFOV, the cue classifier SEC's cue network ("cam", supplement 6.1).
    sec = [c for c in voc.values() if c.train.method in ("sec", "sec-classifier")]
    assert {c.model.decoder for c in sec if c.train.method == "sec"} == {"largefov"}
    assert {c.model.decoder for c in sec if c.train.method == "sec-classifier"} == {"cam"}
    voc = {n: c for n, c in voc.items() if c.train.method not in ("sec", "sec-classifier")}
    cpu = [c for n, c in voc.items() if n.endswith("_cpu.yaml")]
    earlier = [c for n, c in voc.items() if not n.endswith("_cpu.yaml")]
    assert len(earlier) == 11 and len(cpu) >= 11
    assert len({_budget(c) for c in earlier}) == 1
    assert len({_budget(c) for c in cpu}) == 1
    assert cpu[0].model.freeze == "all" and cpu[0].data.cache_views > 0
    assert len({_budget(c) for c in sec if c.train.method == "sec"}) == 1
    shared = {(c.train.iterations, c.data.batch_size, c.data.crop_size, c.model.encoder,
               c.model.freeze, c.data.cache_views) for c in sec}  # fmt: skip
    assert len(sec) == 7 and len(shared) == 1
    assert _budget(cpu[0])[:3] + (cpu[0].model.encoder,) == _budget(sec[0])[:3] + (
        sec[0].model.encoder,
    )


def test_sec_cue_classifiers_use_the_papers_cue_network():
    """SEC's localization network (supplement 6.1, the authors' fc6_CAM / fc7_CAM): undilated 3x3
    fc6 / fc7, no ReLU after fc7 (the "cam" decoder), not the segmentation network's dilated
    LargeFOV head, whose field of view spreads every CAM over most of the image."""
    classifiers = [load_config(p) for p in CONFIGS if "sec_classifier" in p.name]
    assert len(classifiers) == 2
    assert {c.model.decoder for c in classifiers} == {"cam"}


def test_eval_crf_fields_map_onto_crf_params():
    cfg = load_config(None, ["eval.crf_bi_sxy=55", "eval.crf_iterations=5"])
    params = CrfParams.from_prefixed(cfg.eval, "crf_")
    assert (params.bi_sxy, params.iterations, params.bi_compat, params.g_sxy) == (55.0, 5, 4.0, 1.0)


def test_every_test_time_setting_may_change_when_a_run_resumes():
    import dataclasses

    from weakseg.config import RESUMABLE_KEYS, EvalConfig

    assert {f"eval.{f.name}" for f in dataclasses.fields(EvalConfig)} <= set(RESUMABLE_KEYS)


def test_negative_eval_warp_is_refused():
    with pytest.raises(ConfigError, match="eval.warp must be >= 0"):
        load_config(None, ["eval.warp=-1"])
