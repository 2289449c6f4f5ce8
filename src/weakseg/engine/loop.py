"""The training loop: one config, one run directory, one ``train`` call (detectron2
plain_train_net / torchvision references/segmentation style).

A run directory ends up holding::

    config.yaml          the resolved config (written first; a resumed run must match it)
    checkpoint.pt        model + optimizer + scaler + iteration + RNG states (the latest)
    metrics.jsonl        one JSON line per log step: iteration, lr, loss, loss/<term>, images/s
    tensorboard/         the same scalars as TensorBoard events
    model.pt             final weights only (state dict)
    snapshots/           model-<iteration>.pt every train.snapshot_every iterations (optional)
    train_summary.json   written last: its presence marks the run finished

Re-running ``train`` with the same run directory resumes from the checkpoint and replays exactly
what an uninterrupted run would have done (data order from (seed, epoch), augmentation from
(seed, epoch, index), RNG states restored); a finished run is left alone; a run directory made
with a different config is refused with the differing keys listed.

An iteration is one optimizer step over ``train.grad_accum`` batches of ``data.batch_size``
images per process. An epoch is ``steps_per_epoch`` full iterations over the (shuffled, sharded)
training set; the remainder that does not fill an iteration is skipped that epoch.
Under torchrun every rank runs this same code on its shard; only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

import weakseg
from weakseg.config import RESUMABLE_KEYS, Config, config_diff, load_config, save_config
from weakseg.data.dataset import Dataset, UsableSubset
from weakseg.data.specs import open_dataset
from weakseg.data.training import (
    TrainingDataset,
    epoch_iterator,
    subsample_batch,
    training_loader,
)
from weakseg.data.transforms import TrainTransform
from weakseg.engine.checkpoint import (
    atomic_torch_save,
    load_checkpoint,
    load_weights,
    read_state,
    save_checkpoint,
)
from weakseg.engine.distributed import (
    DistEnv,
    barrier,
    cleanup_distributed,
    init_distributed,
    is_distributed,
    reduce_mean,
    resolve_device,
    wrap_ddp,
)
from weakseg.engine.inference import evaluate_model
from weakseg.engine.memory import keep_freed_memory
from weakseg.methods import Method, build_method
from weakseg.progress import progress_bar
from weakseg.pseudo.store import write_json_atomic

CONFIG_FILE = "config.yaml"
CHECKPOINT_FILE = "checkpoint.pt"
MODEL_FILE = "model.pt"
SUMMARY_FILE = "train_summary.json"
METRICS_FILE = "metrics.jsonl"
EVENTS_DIR = "tensorboard"
SNAPSHOT_DIR = "snapshots"


@dataclass
class Run:
    """What the loop works with (the model twice: ``ddp_model`` to train, ``model`` to save)."""

    cfg: Config
    run_dir: Path
    env: DistEnv
    method: Method
    data: TrainingDataset  # or CachedViews (data.cache_views)
    model: nn.Module  # model_without_ddp
    ddp_model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    loader: DataLoader
    steps_per_epoch: int
    val: Dataset | None = None
    last: dict = field(default_factory=dict)  # the latest metrics record
    precision: str = "fp32"  # train.precision with "auto" resolved for this device


def train(cfg: Config, run_dir: str | Path, progress: bool = True) -> dict:
    """Train ``cfg`` into ``run_dir``, resuming a checkpoint found there; return the summary.

    Works alone or under torchrun (``WORLD_SIZE`` set: DDP, gloo on CPU, nccl on CUDA).
    """
    run_dir = Path(run_dir)
    owns_group = not is_distributed()
    env = init_distributed(cfg.train.device)
    try:
        method = build_method(cfg.train.method, cfg.method)
        data = build_training_dataset(cfg, method)
        cfg = resolve_num_classes(cfg, len(data.classes))
        finished = check_run_dir(run_dir, cfg, env)
        if finished is not None:
            return finished
        if env.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, run_dir / CONFIG_FILE)
            _say(f"{cfg.train.method}: {data.describe()}")
        run = build_run(cfg, run_dir, env, method, data, progress)
        start = resume(run)
        t0 = time.perf_counter()
        _iterate(run, start, progress)
        return finish(run, start, time.perf_counter() - t0)
    finally:
        if owns_group:
            cleanup_distributed()


def build_training_dataset(cfg: Config, method: Method) -> TrainingDataset:
    """The config's training set with the target ``method`` trains on."""
    d = cfg.data
    transform = TrainTransform(d.crop_size, d.scale_min, d.scale_max, d.flip, d.color_jitter,
                               warp=d.warp)  # fmt: skip
    usable = UsableSubset(open_dataset(d.train))  # bad samples skipped, not fatal mid-run
    if usable.skipped:
        _say(usable.skipped.describe(len(usable.dataset)))
    return TrainingDataset(
        usable,
        method.label_source,
        transform,
        seed=cfg.train.seed,
        labels_dir=d.labels,
        labelled_fraction=getattr(method, "labelled_fraction", 0.0),
        labelled_seed=getattr(method, "labelled_seed", 0),
        drop_difficult=d.drop_difficult,
        extra_maps=getattr(method, "extra_maps", ()),
        mixed=getattr(method, "mixed", None),
    )


def cached_training_data(
    cfg: Config, data: TrainingDataset, model: nn.Module, env: DistEnv, progress: bool = True
):
    """``data`` with the frozen encoder's maps of ``data.cache_views`` views per image, from
    the feature cache (built first if missing; see weakseg.engine.feature_cache)."""
    from weakseg.engine.feature_cache import CachedViews, open_cache

    if not hasattr(model, "frozen_features"):
        raise ValueError(f"method {cfg.train.method!r} has no model that reads cached features; "
                         "set data.cache_views=0")  # fmt: skip
    d = cfg.data
    data.seed = d.cache_seed  # the views' augmentation; train.seed still orders the batches
    cache = open_cache(model, data, d.cache_views, d.cache_dir, d.cache_memory_gb,
                       workers=d.workers, progress=progress and env.is_main)  # fmt: skip
    return CachedViews(data, cache, seed=cfg.train.seed)


def resolve_num_classes(cfg: Config, dataset_classes: int) -> Config:
    """Fill ``model.num_classes`` from the dataset (0 = infer); a mismatch is an error."""
    n = cfg.model.num_classes
    if n not in (0, dataset_classes):
        raise ValueError(
            f"model.num_classes={n} but {cfg.data.train} has {dataset_classes} "
            "classes (background included); set 0 to take the dataset's"
        )
    return dataclasses.replace(
        cfg, model=dataclasses.replace(cfg.model, num_classes=dataset_classes)
    )


def check_run_dir(run_dir: Path, cfg: Config, env: DistEnv) -> dict | None:
    """Refuse a run directory made with another config; return the summary of a finished run
    (nothing to do) or None (start or resume)."""
    saved = run_dir / CONFIG_FILE
    if saved.exists():
        diff = config_diff(load_config(saved), cfg, ignore=RESUMABLE_KEYS)
        if diff:
            raise ValueError(
                f"{run_dir} holds a run with a different config; refusing to mix the two. "
                "Differences (saved -> new): " + "; ".join(diff) + ". Use another run "
                "directory, or the saved config.yaml to resume this one."
            )
    summary = run_dir / SUMMARY_FILE
    barrier()  # every rank has read the directory before rank 0 writes into it
    if not summary.exists():
        return None
    done = json.loads(summary.read_text())
    if env.is_main:
        _say(
            f"{run_dir} holds a finished run ({done.get('iterations')} iterations); nothing "
            "to do. Use another run directory to train again."
        )
    return done


def build_run(
    cfg: Config,
    run_dir: Path,
    env: DistEnv,
    method: Method,
    data: TrainingDataset,
    progress: bool = True,
) -> Run:
    """Model, optimizer, scaler and loader for ``cfg`` (seeded identically on every rank, so
    the global RNG states match across ranks and rank 0's checkpoint resumes them all)."""
    tc = cfg.train
    precision = resolve_precision(tc.precision, env.device)
    if precision == "fp16" and env.device.type != "cuda":
        raise ValueError("train.precision=fp16 needs CUDA; use bf16 (or fp32) on CPU")
    if tc.threads:  # on a shared CPU, threads waiting for a busy core cost more than they give
        torch.set_num_threads(tc.threads)
    if tc.keep_freed_memory:
        keep_freed_memory()
    seed_everything(tc.seed)
    model = method.build_model(cfg, cfg.model.num_classes).to(env.device)
    if tc.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if cfg.data.cache_views:
        data = cached_training_data(cfg, data, model, env, progress)
        if env.is_main:
            _say(data.describe())
    optimizer = build_optimizer(model, cfg)
    scaler = torch.amp.GradScaler(env.device.type, enabled=precision == "fp16")
    loader = training_loader(data, cfg.data.batch_size, cfg.data.workers, env.world_size,
                             env.rank, pin_memory=env.device.type == "cuda",
                             sampling=cfg.data.sampling,
                             repeat_threshold=cfg.data.repeat_threshold)  # fmt: skip
    per_step = cfg.data.batch_size * tc.grad_accum
    steps_per_epoch = loader.sampler.num_samples // per_step
    if steps_per_epoch == 0:
        raise ValueError(
            f"{cfg.data.train} gives {loader.sampler.num_samples} images per process, "
            f"fewer than one iteration (batch_size x grad_accum = {per_step})"
        )
    val = open_dataset(cfg.data.val) if cfg.data.val and tc.eval_every and env.is_main else None
    return Run(cfg, run_dir, env, method, data, model=model, ddp_model=model, optimizer=optimizer,
               scaler=scaler, loader=loader, steps_per_epoch=steps_per_epoch, val=val,
               precision=precision)  # fmt: skip


def native_cpu_bf16() -> bool:
    """True if this CPU computes bf16 natively (AVX512-BF16 or AMX); elsewhere bf16 autocast is
    emulated and about 10x slower than fp32 (measured on an AVX2-only EPYC)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> str:
    """``train.precision`` with "auto" resolved: bf16 on CUDA (if the GPU supports it) and on
    CPUs with native bf16, fp32 otherwise."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if native_cpu_bf16() else "fp32"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_optimizer(model: nn.Module, cfg: Config) -> torch.optim.Optimizer:
    """SGD (momentum) or Adam over the model's parameter groups: "encoder" at ``train.lr``,
    every other group (decoder + heads) at ``lr * head_lr_mult``. Each group keeps its
    ``base_lr`` for the poly schedule."""
    tc = cfg.train
    groups = model.param_groups() if hasattr(model, "param_groups") else {}
    grouped = {id(p) for params in groups.values() for p in params}
    rest = [p for p in model.parameters() if id(p) not in grouped]
    if rest:
        groups = {**groups, "other": rest}
    param_groups = []
    for name, params in groups.items():
        params = [p for p in params if p.requires_grad]
        lr = tc.lr * (1.0 if name == "encoder" else tc.head_lr_mult)
        if params:
            param_groups.append({"params": params, "name": name, "lr": lr, "base_lr": lr})
    if tc.optimizer == "sgd":
        return torch.optim.SGD(
            param_groups, lr=tc.lr, momentum=tc.momentum, weight_decay=tc.weight_decay
        )
    return torch.optim.Adam(param_groups, lr=tc.lr, weight_decay=tc.weight_decay)


def poly_lr(base_lr: float, iteration: int, total: int, power: float) -> float:
    """DeepLab's poly schedule: base_lr * (1 - iteration / total) ** power."""
    return base_lr * (1.0 - iteration / total) ** power


def stage_of(iteration: int, lengths: list[int]) -> tuple[int, int, int]:
    """(stage index, first iteration of the stage, its length) of ``iteration`` (0-based)."""
    start = 0
    for index, length in enumerate(lengths):
        if iteration < start + length:
            return index, start, length
        start += length
    raise ValueError(f"iteration {iteration} is past the stages {lengths}")


def resume(run: Run) -> int:
    """Load the run directory's checkpoint if there is one; return the iteration to start at."""
    path = run.run_dir / CHECKPOINT_FILE
    if not path.exists():
        return 0
    info = load_checkpoint(path, run.model, run.optimizer, run.scaler)
    if info["world_size"] != run.env.world_size:
        raise ValueError(
            f"{path} was made by {info['world_size']} process(es), this run has "
            f"{run.env.world_size}: the data order would differ; resume with "
            f"{info['world_size']}"
        )
    if run.env.is_main:
        _say(f"resuming {run.run_dir} from iteration {info['iteration']}")
    return info["iteration"]


def _iterate(run: Run, start: int, progress: bool = True) -> None:
    tc = run.cfg.train
    run.ddp_model = wrap_ddp(run.model, run.env)
    run.ddp_model.train()
    logger = MetricsLogger(run.run_dir, start) if run.env.is_main else None
    bar = progress_bar(total=tc.iterations, initial=start, desc="train", unit="it",
                       enabled=progress and run.env.is_main)  # fmt: skip
    meter, batches = Meter(), None
    stages = run.method.stage_lengths(tc.iterations)
    per_step = run.cfg.data.batch_size * tc.grad_accum
    for it in range(start, tc.iterations):
        epoch, step = divmod(it, run.steps_per_epoch)
        if batches is None or step == 0:  # a resumed run starts `step` iterations in
            batches = epoch_iterator(run.loader, epoch, skip=step * per_step)
        stage, stage_start, stage_length = stage_of(it, stages)
        run.method.set_stage(stage)
        run.method.set_progress(it - stage_start, stage_length)
        for group in run.optimizer.param_groups:
            group["lr"] = poly_lr(group["base_lr"], it - stage_start, stage_length, tc.poly_power)
        meter.add(train_step(run, batches, check_weights=it == start))
        bar.update()
        _after_step(run, it + 1, meter, logger, bar)
    bar.close()
    if logger is not None:
        logger.close()


def _after_step(run: Run, done: int, meter: Meter, logger: MetricsLogger | None, bar) -> None:
    """Log, checkpoint (every checkpoint_every, each epoch end, the end), validate."""
    tc, last = run.cfg.train, done == run.cfg.train.iterations
    if done % tc.log_every == 0 or last:
        run.last = meter.record(done, (done - 1) // run.steps_per_epoch, run)
        if logger is not None:
            logger.log(run.last)
            bar.set_postfix(loss=f"{run.last['loss']:.4f}")
    if done % tc.checkpoint_every == 0 or done % run.steps_per_epoch == 0 or last:
        _checkpoint(run, done)
    if tc.snapshot_every and done % tc.snapshot_every == 0 and run.env.is_main:
        path = snapshot_path(run.run_dir, done)
        path.parent.mkdir(exist_ok=True)
        atomic_torch_save(run.model.state_dict(), path)
    if tc.eval_every and (done % tc.eval_every == 0 or last):
        _validate_and_log(run, done, logger)
        meter.since = time.perf_counter()  # images/s measures training only


def train_step(run: Run, batches: Iterator[dict], check_weights: bool = False) -> dict[str, Tensor]:
    """One optimizer step over ``grad_accum`` batches; returns the detached mean loss terms
    plus their weighted sum "loss"."""
    tc, device = run.cfg.train, run.env.device
    run.optimizer.zero_grad(set_to_none=True)
    totals: dict[str, Tensor] = {}
    for micro in range(tc.grad_accum):
        batch = to_device(next(batches), device, tc.channels_last)
        last = micro == tc.grad_accum - 1
        with _maybe_no_sync(run.ddp_model, last):
            with _autocast(device, run.precision):
                if "features" in batch:  # cached frozen-encoder maps (data.cache_views)
                    outputs = run.ddp_model(None, features=batch["features"])
                else:
                    outputs = run.ddp_model(batch["image"])
            terms = run.method.losses(subsample_batch(batch, tc.loss_stride),
                                      {k: v.float() for k, v in outputs.items()})  # fmt: skip
            if check_weights and micro == 0:
                _check_loss_weights(tc.loss_weights, terms, tc.method)
            loss = sum(tc.loss_weights.get(name, 1.0) * value for name, value in terms.items())
            if not torch.isfinite(loss):
                values = {k: float(v) for k, v in terms.items()}
                raise FloatingPointError(f"loss is not finite: {values}; lower train.lr?")
            run.scaler.scale(loss / tc.grad_accum).backward()
        for name, value in {"loss": loss, **terms}.items():
            totals[name] = totals.get(name, 0.0) + value.detach() / tc.grad_accum
    run.scaler.step(run.optimizer)
    run.scaler.update()
    return totals


def to_device(batch: dict, device: torch.device, channels_last: bool = False) -> dict:
    """Tensors (and lists of tensors) of a batch moved to ``device``."""
    out = {}
    for key, value in batch.items():
        if isinstance(value, Tensor):
            value = value.to(device, non_blocking=True)
        elif isinstance(value, list) and value and isinstance(value[0], Tensor):
            value = [v.to(device, non_blocking=True) for v in value]
        elif isinstance(value, dict):
            value = {k: v.to(device, non_blocking=True) for k, v in value.items()}
        out[key] = value
    if channels_last:
        out["image"] = out["image"].contiguous(memory_format=torch.channels_last)
    return out


def _maybe_no_sync(model: nn.Module, sync: bool):
    """DDP's no_sync() on accumulation steps that are not the last: one all-reduce per step."""
    return contextlib.nullcontext() if sync or not hasattr(model, "no_sync") else model.no_sync()


def _autocast(device: torch.device, precision: str):
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def _check_loss_weights(weights: dict, terms: dict, method: str) -> None:
    unknown = sorted(set(weights) - set(terms))
    if unknown:
        raise ValueError(
            f"train.loss_weights names {unknown}, but method {method!r} has the "
            f"loss terms {sorted(terms)}"
        )


class Meter:
    """Sums of the loss terms and images since the last record. A term is averaged over the
    steps that had it (a method's stages may have different terms)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.counts: dict[str, int] = {}
        self.steps = 0
        self.since = time.perf_counter()

    def add(self, terms: dict[str, Tensor]) -> None:
        for name, value in terms.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
            self.counts[name] = self.counts.get(name, 0) + 1
        self.steps += 1

    def record(self, iteration: int, epoch: int, run: Run) -> dict:
        """Means over the steps since the last record, averaged over ranks; then reset."""
        names = sorted(self.sums)
        sums = torch.stack([self.sums[n] / self.counts[n] for n in names])
        means = reduce_mean(sums).tolist()
        images = self.steps * run.cfg.data.batch_size * run.cfg.train.grad_accum
        seconds = time.perf_counter() - self.since
        record = {
            "iteration": iteration,
            "epoch": epoch,
            "lr": run.optimizer.param_groups[0]["lr"],
            "loss": means[names.index("loss")],
            **{f"loss/{n}": v for n, v in zip(names, means, strict=True) if n != "loss"},
            "images_per_s": images * run.env.world_size / max(seconds, 1e-9),
        }
        self.reset()
        return record


class MetricsLogger:
    """metrics.jsonl lines and TensorBoard scalars (rank 0 only)."""

    def __init__(self, run_dir: Path, start: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # A killed run may have logged past its last checkpoint (or before its first one):
        # drop those lines and events, the resumed run logs them again.
        self.path = run_dir / METRICS_FILE
        _truncate_metrics(self.path, start)
        self.writer = SummaryWriter(str(run_dir / EVENTS_DIR), purge_step=start)

    def log(self, record: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        for key, value in record.items():
            if key not in ("iteration", "epoch"):
                self.writer.add_scalar(key, value, record["iteration"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _truncate_metrics(path: Path, iteration: int) -> None:
    """Drop the lines of metrics.jsonl past ``iteration``."""
    if not path.exists():
        return
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    kept = [ln for ln in lines if json.loads(ln)["iteration"] <= iteration]
    if len(kept) != len(lines):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(ln + "\n" for ln in kept))
        tmp.replace(path)


def _checkpoint(run: Run, iteration: int) -> None:
    if run.env.is_main:
        epoch = iteration // run.steps_per_epoch
        save_checkpoint(run.run_dir / CHECKPOINT_FILE, run.model, run.optimizer, run.scaler,
                        iteration, epoch, run.env.world_size)  # fmt: skip


def _validate_and_log(run: Run, iteration: int, logger: MetricsLogger | None) -> None:
    if run.val is not None and logger is not None:
        scores = validate(run.model, run.val, run.cfg.eval.warp)
        run.last.update(scores)
        logger.log({"iteration": iteration, **scores})
        _say(f"iteration {iteration}: val mIoU {100 * scores['val_miou']:.1f}")
    barrier()


def validate(model: nn.Module, dataset: Dataset, warp: int = 0) -> dict:
    """Single-scale mIoU at original image size (a quick check during training, with the run's
    ``eval.warp``; ``weakseg eval`` adds multi-scale, flip and CRF)."""
    matrix = evaluate_model(model, dataset, progress=False, warp=warp)  # sets eval mode
    model.train()
    return {"val_miou": matrix.miou(), "val_pixel_accuracy": matrix.pixel_accuracy()}


def finish(run: Run, start: int, seconds: float) -> dict:
    """Write ``model.pt``, then ``train_summary.json`` (which marks the run done)."""
    tc = run.cfg.train
    images = (tc.iterations - start) * run.cfg.data.batch_size * tc.grad_accum
    summary = {
        "finished": True,
        "method": tc.method,
        "method_params": run.method.params(),
        "iterations": tc.iterations,
        "epochs": tc.iterations / run.steps_per_epoch,
        "resumed_from": start,
        "world_size": run.env.world_size,
        "device": str(run.env.device),
        "precision": run.precision,
        "seconds": seconds,
        "images_per_s": images * run.env.world_size / max(seconds, 1e-9),
        "last": run.last,
        "weakseg_version": weakseg.__version__,
        "torch_version": torch.__version__,
    }
    if hasattr(run.data, "cache"):  # trained on a feature cache (its build is not in seconds)
        summary["feature_cache"] = run.data.cache.summary()
    if run.env.is_main:
        atomic_torch_save(run.model.state_dict(), run.run_dir / MODEL_FILE)
        write_json_atomic(run.run_dir / SUMMARY_FILE, summary)
        _say(f"finished {tc.iterations} iterations in {seconds:.0f} s; wrote {run.run_dir}")
    barrier()
    return summary


def snapshot_path(run_dir: Path, iteration: int) -> Path:
    """Where ``train.snapshot_every`` keeps the weights after ``iteration`` iterations."""
    return run_dir / SNAPSHOT_DIR / f"model-{iteration:07d}.pt"


def load_trained(
    run_dir: str | Path, device: str | torch.device = "auto", snapshot: int | None = None
) -> tuple[nn.Module, Config]:
    """The trained model of a finished run (eval mode, on ``device``) and its config; with
    ``snapshot``, the weights kept after that many iterations (``train.snapshot_every``)."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).exists():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no {CONFIG_FILE})")
    cfg = load_config(run_dir / CONFIG_FILE)
    weights = run_dir / MODEL_FILE
    if snapshot is not None:
        weights = snapshot_path(run_dir, snapshot)
        if not weights.exists():
            kept = sorted(p.stem for p in (run_dir / SNAPSHOT_DIR).glob("model-*.pt"))
            listed = ", ".join(kept) or "none (set train.snapshot_every)"
            raise FileNotFoundError(
                f"{run_dir} has no snapshot at iteration {snapshot}; kept: {listed}"
            )
    if not weights.exists():
        raise FileNotFoundError(
            f"{run_dir} has no {MODEL_FILE}: its training has not finished; run "
            "`weakseg train` again with the same config and run directory to resume it"
        )
    method = build_method(cfg.train.method, cfg.method)
    # Random init is enough: every weight is overwritten, and no ImageNet file is needed.
    build_cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, weights="none"))
    model = method.build_model(build_cfg, cfg.model.num_classes)
    load_weights(model, read_state(weights), weights)
    if not isinstance(device, torch.device):
        device = resolve_device(device)
    return model.to(device).eval(), cfg


def _say(message: str) -> None:
    print(f"weakseg train: {message}", file=sys.stderr, flush=True)


__all__ = [
    "Run",
    "build_optimizer",
    "build_training_dataset",
    "check_run_dir",
    "load_trained",
    "poly_lr",
    "stage_of",
    "train",
    "train_step",
    "validate",
]
