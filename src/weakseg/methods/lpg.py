"""LPG: learning class-agnostic pseudo mask generation (Xie et al., papers/lpg.md).

Equations and where they live:

- Eq. 3, the generator g(y^b, x, f(x; theta'); omega) of one class: ``weakseg.models.lpg``
  (``hourglass``: the paper's network; ``lite``: a CPU one), fed by :func:`training_example`.
- Eq. 6, upper problem (E-step): omega = argmin CE(y^p_aux, g(...)) on the auxiliary set's masks,
  one sample per (image, class present): :func:`train_generator`.
- Eq. 4 / 6, lower problem (M-step): theta = argmin CE(g's masks, f(x_aux; theta)): the existing
  training engine (``train.method: pseudo``) on g's labels of the auxiliary images.
- Supplement Eq. 7, several classes in one image: ``weakseg.pseudo.lpg.compose_classes``.
- Fig. 2 / section 3.3, stages: :func:`run_lpg` (``lpg.fixed``: Table 2's fixed final generator
  at every deployment stage). Stage r: E_r trains g_r (with the probabilities
  of the auxiliary segmenter f_{r-1} as input for r >= 2); M_r labels the auxiliary images with
  g_r and trains f_r on them (skipped at the last stage: nothing uses it). Deployment on the target
  (section 3.3): label the target's boxes with g_1, train a segmenter; label with g_2 fed by that
  segmenter, retrain; ... Each stage's generator and both segmenters stay in the run directory.

Paper vs code (../shared/REFERENCE_NOTES.md, LPG). Followed from the code: the stage-1 generator
sees only the image and the box mask (the paper's text also feeds stage 1 a segmenter trained on
boxes); Adam with weight decay 5e-4 and a poly schedule; one sample per (image, class present);
the ``image`` crop mode (random scale from ``scales``, padding, a random ``crop_size`` crop
overlapping one of the class's boxes, flip; whole padded image at inference). Not repeated from the
code: the stage-1 generator can be trained, a partial batch cannot happen (every batch is drawn
whole), overlaps follow the overlap rate, crowd regions (255) are ignored by the loss, weights are
saved on the CPU. Our CPU default ``crop: boxes`` crops a square around the union of the class's
boxes (``context`` on each side, jittered in position and size) at ``crop_size`` 192 and runs g on
the same square at inference; ``benchmarks/lpg.py`` has a row per crop mode. Measured there, the
code's ``image`` mode (``crop_size`` 320) labels better (dev_val, setup c: 73.7 +- 1.1 against
69.2 +- 0.4 over 3 seeds); ``boxes`` stays the configs' setting because the other LPG rows were
measured with it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from weakseg.config import (
    Config,
    ConfigError,
    _section_from_dict,
    config_from_dict,
    config_to_dict,
    read_yaml,
    read_yaml_value,
)
from weakseg.data.boxes import class_box_masks
from weakseg.data.dataset import DataError, Dataset
from weakseg.data.sample import IGNORE
from weakseg.data.specs import open_dataset
from weakseg.engine.memory import keep_freed_memory
from weakseg.models.lpg import (
    GENERATOR_ARCHS,
    build_generator_net,
    load_generator,
    read_generator_file,
    save_generator,
)
from weakseg.pseudo.lpg import (
    CROP_MODES,
    PAD_GREY,
    LpgGenerator,
    region_matrix,
    square_region,
    union_box,
    warp,
)
from weakseg.pseudo.store import write_json_atomic

CONFIG_FILE = "lpg.yaml"


@dataclass
class LpgSettings:
    """The ``lpg:`` section of an LPG config: data, generator and E-step training."""

    aux: str = ""  # auxiliary dataset with pixel masks (classes disjoint from the target's)
    target: str = ""  # dataset whose boxes are labelled ("" = train the generators only)
    stages: int = 3  # EM stages (paper: 3)
    arch: str = "lite"  # "lite" (CPU) or "hourglass" (the paper's 12.1 M network)
    encoder: str = "tf_efficientnet_lite0"  # lite: the offline ImageNet encoder (lite0/1/2)
    width: int = 64  # lite: decoder width
    freeze: str = "all"  # lite: encoder levels frozen ("all", "none", "strideN")
    guide_scale: float = 1.0  # hourglass: multiplier of the guide channels (the code: 1)
    head_bn: bool = False  # hourglass: BN before the head's ReLU (ours; the code has none)
    crop: str = "boxes"  # "boxes" (square around the class's boxes) or "image" (the code's)
    crop_size: int = 192  # training crop (the code: 512); boxes mode: also at inference
    context: float = 0.5  # boxes: margin on each side, as a fraction of the box's longer edge
    jitter: float = 0.15  # boxes: random shift (x side) and scale (1 +- jitter) when training
    scales: list[float] = field(default_factory=lambda: [0.5, 0.75, 1.0, 1.25, 1.5])  # image mode
    flip: bool = True
    aux_fraction: float = 1.0  # share of auxiliary images used (Table 8: 0.3 / 0.6 / 1.0)
    batch_size: int = 8  # the code: 32
    iterations: int = 1500  # per stage (the code: 100k)
    lr: float = 1e-4  # Adam (paper Table 1)
    weight_decay: float = 5e-4
    poly_power: float = 0.9
    seed: int = 0
    threads: int = 1  # torch CPU threads while training the generator (0 = torch's default)
    keep_freed_memory: bool = True  # glibc: reuse freed memory (weakseg.engine.memory)
    device: str = "auto"
    checkpoint_every: int = 100
    log_every: int = 20
    workers: int = 1  # label processes
    deploy_segmenter: bool = True  # train a segmenter on the target's labels (needed by stage 2+)
    fixed: bool = False  # deploy the final generator at every stage (Table 2 "HgNet (Fixed)")


@dataclass
class LpgConfig:
    lpg: LpgSettings = field(default_factory=LpgSettings)
    segmenter: Config = field(default_factory=Config)  # the M-steps' training (data.train set here)


def load_lpg_config(path: str | Path | None, overrides: list[str] | None = None) -> LpgConfig:
    """Read an LPG YAML (sections ``lpg`` and ``segmenter``) with ``lpg.key=value`` /
    ``segmenter.train.iterations=...`` overrides on top."""
    raw = (read_yaml(path) or {}) if path else {}
    if not isinstance(raw, dict) or set(raw) - {"lpg", "segmenter"}:
        raise ConfigError(f"{path}: an LPG config has the sections lpg and segmenter only")
    for text in overrides or []:
        key, sep, value = text.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) < 2 or parts[0] not in ("lpg", "segmenter"):
            raise ConfigError(f"override {text!r} must look like lpg.key=value or segmenter.x.y=v")
        node = raw
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = read_yaml_value(value, f"override {text!r}")
    settings = _section_from_dict("lpg", LpgSettings, raw.get("lpg") or {})
    cfg = LpgConfig(settings, config_from_dict(raw.get("segmenter") or {}))
    check_settings(cfg.lpg)
    return cfg


def check_settings(s: LpgSettings) -> None:
    if not s.aux:
        raise ConfigError("lpg.aux: name the auxiliary dataset with pixel masks")
    if s.crop not in CROP_MODES:
        raise ConfigError(f"lpg.crop={s.crop!r}: choose from {', '.join(CROP_MODES)}")
    if s.arch not in ("lite", "hourglass"):
        raise ConfigError(f"lpg.arch={s.arch!r}: choose from lite, hourglass")
    for key in ("stages", "crop_size", "batch_size", "iterations", "checkpoint_every",
                "log_every", "width", "workers"):  # fmt: skip
        if getattr(s, key) < 1:
            raise ConfigError(f"lpg.{key} must be >= 1, got {getattr(s, key)}")
    multiple = GENERATOR_ARCHS[s.arch].DEFAULT_SIZE_MULTIPLE
    if s.crop_size % multiple:
        raise ConfigError(
            f"lpg.crop_size={s.crop_size}: the {s.arch} generator needs a multiple of {multiple}"
        )
    if not 0 < s.aux_fraction <= 1:
        raise ConfigError(f"lpg.aux_fraction must be in (0, 1], got {s.aux_fraction}")
    if s.fixed and not s.target:
        raise ConfigError("lpg.fixed needs lpg.target: it changes only the deployment")
    if s.stages > 1 and s.target and not s.deploy_segmenter:
        raise ConfigError("lpg.deploy_segmenter: false allows 1 stage only (g_2 needs f_1)")
    if s.guide_scale <= 0:
        raise ConfigError(f"lpg.guide_scale must be > 0, got {s.guide_scale}")
    if s.context < 0 or not 0 <= s.jitter < 1 or s.lr <= 0 or not s.scales:
        raise ConfigError("lpg: need context >= 0, 0 <= jitter < 1, lr > 0 and some scales")


def lpg_config_dict(cfg: LpgConfig) -> dict:
    return {"lpg": dataclasses.asdict(cfg.lpg), "segmenter": config_to_dict(cfg.segmenter)}


# -- E-step: the generator's training samples ---------------------------------------------------


def aux_pairs(dataset: Dataset, fraction: float = 1.0, seed: int = 0) -> list[tuple[str, int]]:
    """(id, class) for every class with a box in every auxiliary image that has a mask (one
    training sample each, as the authors' code); ``fraction`` < 1 keeps that share of images."""
    ids = list(dataset.ids)
    if fraction < 1:
        keep = max(1, round(fraction * len(ids)))
        ids = sorted(np.random.default_rng(seed).choice(ids, keep, replace=False).tolist())
    pairs = []
    for sample_id in ids:
        sample = dataset.load(sample_id)
        if sample.mask is None:
            raise DataError(sample.source or sample_id, "no mask: LPG's auxiliary set needs masks")
        pairs += [(sample_id, int(c)) for c in np.unique(sample.box_labels)]
    if not pairs:
        raise ValueError(f"{dataset.spec}: no (image, class) with a box and a mask to train on")
    return pairs


def training_example(
    sample, c: int, prob: np.ndarray | None, s: LpgSettings, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One (image crop_size^2 x 3 in [0, 1], guide crop_size^2 x G, target crop_size^2 uint8) for
    class ``c``: target 1 on c's pixels, 255 where the mask ignores, 0 elsewhere."""
    box = class_box_masks(sample.boxes, sample.box_labels, sample.height, sample.width)[c]
    target = np.where(sample.mask == IGNORE, IGNORE, sample.mask == c).astype(np.uint8)
    guide = [box.astype(np.float32)] + ([prob.astype(np.float32)] if prob is not None else [])
    image = sample.image.astype(np.float32) / 255.0
    size = s.crop_size
    if s.crop == "boxes":
        j = s.jitter
        region = square_region(union_box(box), s.context, 1 + rng.uniform(-j, j),
                               tuple(rng.uniform(-j, j, 2)))  # fmt: skip
        mat = region_matrix(region, size)
    else:
        mat = _code_crop(box, sample.boxes[sample.box_labels == c], s, rng)
    image = warp(image, mat, (size, size), True, PAD_GREY)
    guide_crop = warp(np.stack(guide, -1), mat, (size, size), True, 0.0).reshape(size, size, -1)
    target = warp(target, mat, (size, size), False, IGNORE if s.crop == "boxes" else 0)
    if s.flip and rng.random() < 0.5:
        image, guide_crop, target = image[:, ::-1], guide_crop[:, ::-1], target[:, ::-1]
    return image, guide_crop, target


def _code_crop(box_mask, boxes, s: LpgSettings, rng) -> np.ndarray:
    """The authors' crop: scale the image by a random factor of ``scales``, then a crop_size
    window (padding bottom/right as needed) whose origin lets it overlap one of c's boxes."""
    scale = float(rng.choice(s.scales))
    height, width = box_mask.shape
    x1, y1, x2, y2 = boxes[rng.integers(len(boxes))] * scale
    size = s.crop_size
    span_w, span_h = max(round(width * scale), size), max(round(height * scale), size)
    x0 = rng.integers(
        max(0, int(x1) - size + 1), max(min(span_w - size, int(np.ceil(x2)) - 1), 0) + 1
    )
    y0 = rng.integers(
        max(0, int(y1) - size + 1), max(min(span_h - size, int(np.ceil(y2)) - 1), 0) + 1
    )
    return np.array([[scale, 0.0, -float(x0)], [0.0, scale, -float(y0)]])


def generator_batch(dataset, pairs, probs_dir, s: LpgSettings, iteration: int):
    """The batch of ``iteration``: ``batch_size`` pairs drawn with a generator seeded by
    (seed, iteration), so a resumed run draws exactly what an uninterrupted one would have."""
    rng = np.random.default_rng([s.seed, iteration])
    images, guides, targets = [], [], []
    for index in rng.choice(len(pairs), s.batch_size, replace=len(pairs) < s.batch_size):
        sample_id, c = pairs[index]
        sample = dataset.load(sample_id)
        prob = read_prob(probs_dir, sample_id, c) if probs_dir else None
        image, guide, target = training_example(sample, c, prob, s, rng)
        images.append(image), guides.append(guide), targets.append(target)
    x = torch.from_numpy(np.ascontiguousarray(np.stack(images))).permute(0, 3, 1, 2)
    g = torch.from_numpy(np.ascontiguousarray(np.stack(guides))).permute(0, 3, 1, 2)
    t = torch.from_numpy(np.ascontiguousarray(np.stack(targets))).long()
    return x, g, t


def target_at_cells(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """B x h x w: the full-size target B x H x W (H = 4h) sampled at the centres of the logits'
    stride-4 cells."""
    stride = target.shape[-1] // logits.shape[-1]
    small = target[:, stride // 2 :: stride, stride // 2 :: stride]
    return small[..., : logits.shape[-2], : logits.shape[-1]]


def generator_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 6's upper CE: 2-way cross-entropy at stride 4 (target sampled at the cells' centres,
    255 ignored). logits B x 2 x h x w, target B x H x W with H = 4h."""
    return F.cross_entropy(logits, target_at_cells(logits, target), ignore_index=IGNORE)


# -- E-step: training ---------------------------------------------------------------------------


def generator_info(s: LpgSettings, guide_channels: int, stage: int) -> dict:
    lite = {"encoder": s.encoder, "width": s.width, "freeze": s.freeze}
    params = lite if s.arch == "lite" else {"guide_scale": s.guide_scale, "head_bn": s.head_bn}
    return {
        "arch": s.arch,
        "arch_params": params,
        "guide_channels": guide_channels,
        "crop": s.crop,
        "crop_size": s.crop_size,
        "context": s.context,
        "stage": stage,
    }


def train_generator(s: LpgSettings, dataset: Dataset, pairs: list, out: Path, stage: int,
                    probs_dir: Path | None = None, say=print) -> dict:  # fmt: skip
    """E-step: train g on ``pairs`` of ``dataset`` into the generator file ``out`` (resumable
    from ``out``'s checkpoint); returns the file's info. ``probs_dir``: the previous auxiliary
    segmenter's probabilities (stages >= 2)."""
    if out.exists():
        return load_generator(out)[1]
    from weakseg.engine.distributed import resolve_device

    device = resolve_device(s.device)
    if s.threads:
        torch.set_num_threads(s.threads)
    if s.keep_freed_memory:
        keep_freed_memory()
    torch.manual_seed(s.seed + stage)
    info = generator_info(s, 2 if probs_dir else 1, stage)
    net = build_generator_net(s.arch, info["guide_channels"], **info["arch_params"]).to(device)
    trainable = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(trainable, lr=s.lr, weight_decay=s.weight_decay)
    ckpt, log = out.with_name(out.stem + "_checkpoint.pt"), out.with_name(out.stem + "_log.jsonl")
    start, seconds = _resume_generator(ckpt, net, opt)
    net.train()
    t0, losses, shares, line = time.perf_counter(), [], [], None
    for it in range(start, s.iterations):
        for group in opt.param_groups:
            group["lr"] = s.lr * (1 - it / s.iterations) ** s.poly_power
        x, g, t = generator_batch(dataset, pairs, probs_dir, s, it)
        logits = net(x.to(device), g.to(device))
        loss = generator_loss(logits, t.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        shares.append((logits.detach().argmax(1) == 1).float().mean().item())
        done = it + 1
        if done % s.log_every == 0 or done == s.iterations:
            lr = opt.param_groups[0]["lr"]
            line = {"iteration": done, "loss": float(np.mean(losses)), "lr": lr,
                    "object_share": float(np.mean(shares)),
                    "seconds": seconds + time.perf_counter() - t0}  # fmt: skip
            with open(log, "a") as f:
                f.write(json.dumps(line) + "\n")
            say(f"generator stage {stage}: iteration {done}/{s.iterations} loss {line['loss']:.4f}"
                f" object share {line['object_share']:.3f}")  # fmt: skip
            losses, shares = [], []
        if done % s.checkpoint_every == 0 and done < s.iterations:
            _save_checkpoint(ckpt, net, opt, done, seconds + time.perf_counter() - t0)
    if line is not None and line["object_share"] == 0.0:
        say(
            f"warning: generator stage {stage} marked no pixel as object in its last "
            f"{s.log_every} training batches: its masks will be empty (a dead head, "
            "README LPG); try another lpg.seed, or with the hourglass lpg.head_bn=true"
        )
    total = seconds + time.perf_counter() - t0
    info |= {"aux": dataset.spec, "samples": len(pairs), "iterations": s.iterations,
             "batch_size": s.batch_size, "lr": s.lr, "train_seconds": total}  # fmt: skip
    save_generator(out, net, info)
    ckpt.unlink(missing_ok=True)
    return info


def _save_checkpoint(path: Path, net, opt, iteration: int, seconds: float) -> None:
    from weakseg.engine.checkpoint import atomic_torch_save

    atomic_torch_save({"net": net.state_dict(), "opt": opt.state_dict(), "iteration": iteration,
                       "seconds": seconds}, path)  # fmt: skip


def _resume_generator(path: Path, net, opt) -> tuple[int, float]:
    if not path.exists():
        return 0, 0.0
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(state["net"])
    opt.load_state_dict(state["opt"])
    return int(state["iteration"]), float(state["seconds"])


# -- the previous segmenter's probabilities of the auxiliary images (inputs of g_r, r >= 2) -----


def read_prob(probs_dir: Path, sample_id: str, c: int) -> np.ndarray:
    with np.load(probs_dir / f"{sample_id}.npz") as data:
        return data[f"c{c}"].astype(np.float32) / 255.0


def write_aux_probs(segmenter, dataset: Dataset, pairs: list, out: Path, say=print) -> None:
    """Softmax of ``segmenter`` for the classes of each auxiliary image, uint8, one npz per image
    (resumable: images already written are skipped)."""
    out.mkdir(parents=True, exist_ok=True)
    by_id: dict[str, list[int]] = {}
    for sample_id, c in pairs:
        by_id.setdefault(sample_id, []).append(c)
    gen = LpgGenerator(generator="(probabilities only)")
    gen._segmenter = segmenter
    for n, (sample_id, classes) in enumerate(sorted(by_id.items())):
        path = out / f"{sample_id}.npz"
        if path.exists():
            continue
        probs = gen.segmenter_probs(dataset.load(sample_id).image)
        arrays = {f"c{c}": np.round(probs[c] * 255).astype(np.uint8) for c in classes}
        tmp = out / f".{sample_id}.tmp.npz"
        np.savez_compressed(tmp, **arrays)
        tmp.replace(path)
        if (n + 1) % 100 == 0:
            say(f"segmenter probabilities: {n + 1}/{len(by_id)} images")


# -- the stage-wise EM loop ----------------------------------------------------------------------


def run_lpg(cfg: LpgConfig, run_dir: str | Path, progress: bool = True, say=print) -> dict:
    """All stages of Fig. 2 (+ deployment on ``lpg.target``), resuming whatever ``run_dir``
    already holds; returns the run's summary (also ``run_dir/summary.json``)."""
    run_dir = Path(run_dir)
    _claim_run_dir(cfg, run_dir)
    s = cfg.lpg
    aux = open_dataset(s.aux)
    pairs = _cached_pairs(run_dir, aux, s)
    target = open_dataset(s.target) if s.target else None
    summary: dict = {"aux": s.aux, "target": s.target, "aux_samples": len(pairs), "stages": []}
    aux_seg_prev, target_seg_prev = None, None
    for r in range(1, s.stages + 1):
        stage_dir = run_dir / f"stage{r}"
        stage_dir.mkdir(exist_ok=True)
        row: dict = {"stage": r}
        probs_dir = None
        if aux_seg_prev is not None:
            probs_dir = stage_dir / "aux_probs"
            write_aux_probs(_load_segmenter(aux_seg_prev), aux, pairs, probs_dir, say)
        gen_file = stage_dir / "generator.pt"
        info = train_generator(s, aux, pairs, gen_file, r, probs_dir, say)
        row["generator"] = str(gen_file)
        row["generator_seconds"] = info.get("train_seconds")
        if r < s.stages:  # M-step on the auxiliary set: f_r, the input of g_{r+1}
            aux_seg_prev = _label_and_train(cfg, aux, gen_file, aux_seg_prev, stage_dir / "aux",
                                            val="", progress=progress)  # fmt: skip
            row["aux_segmenter"] = str(aux_seg_prev)
        if target is not None and not s.fixed:
            target_seg_prev = _deploy(cfg, target, gen_file, target_seg_prev, stage_dir, row,
                                      progress)  # fmt: skip
        summary["stages"].append(row)
        write_json_atomic(run_dir / "summary.json", summary)
    if target is not None and s.fixed:
        _deploy_fixed(cfg, target, run_dir, summary, progress)
    return summary


def _deploy_fixed(cfg: LpgConfig, target: Dataset, run_dir: Path, summary: dict, progress) -> None:
    """Table 2's "HgNet (Fixed)": the final generator g_R at every deployment stage. Its input
    at stage 1 is a segmenter trained on the target's boxes (``train.method: box``), as the
    paper's text gives every stage one."""
    final = run_dir / f"stage{cfg.lpg.stages}" / "generator.pt"
    seg_prev = None
    if read_generator_file(final)["guide_channels"] == 2:
        seg_prev = run_dir / "stage0" / "box_segmenter"
        _train_segmenter(cfg, target.spec, None, "", seg_prev, progress, method="box")
    for row in summary["stages"]:
        stage_dir = run_dir / f"stage{row['stage']}"
        seg_prev = _deploy(cfg, target, final, seg_prev, stage_dir, row, progress)
        write_json_atomic(run_dir / "summary.json", summary)


def _claim_run_dir(cfg: LpgConfig, run_dir: Path) -> None:
    """Write the resolved config, or refuse a run directory made with another one."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / CONFIG_FILE
    wanted = lpg_config_dict(cfg)
    if path.exists():
        found = yaml.safe_load(path.read_text())
        # A run may be extended: more stages, or a deployed segmenter after labels only.
        keep = {
            "workers",
            "threads",
            "device",
            "log_every",
            "checkpoint_every",
            "stages",
            "deploy_segmenter",
        }
        # A field added to LpgSettings after the run was made counts with its default.
        old = dataclasses.asdict(LpgSettings()) | found["lpg"]
        differ = [k for k in wanted["lpg"] if k not in keep and old[k] != wanted["lpg"][k]]
        if differ or found["segmenter"] != wanted["segmenter"]:
            what = ", ".join(f"lpg.{k}" for k in differ) or "the segmenter section"
            raise ValueError(f"{run_dir} was made with another config ({what} differ); use "
                             "another --run-dir or the same config")  # fmt: skip
        return
    path.write_text(yaml.safe_dump(wanted, sort_keys=False, default_flow_style=None))


def _cached_pairs(run_dir: Path, aux: Dataset, s: LpgSettings) -> list[tuple[str, int]]:
    path = run_dir / "aux_samples.json"
    if path.exists():
        return [tuple(p) for p in json.loads(path.read_text())["pairs"]]
    pairs = aux_pairs(aux, s.aux_fraction, s.seed)
    write_json_atomic(path, {"aux": aux.spec, "pairs": pairs})
    return pairs


def _load_segmenter(run: Path):
    from weakseg.engine.loop import load_trained

    return load_trained(run, "cpu")[0]


def _label_and_train(cfg: LpgConfig, dataset: Dataset, gen_file: Path, seg_prev: Path | None,
                     prefix: Path, val: str, progress: bool) -> Path:  # fmt: skip
    """Label ``dataset`` with the generator (fed by ``seg_prev``), then train a segmenter on the
    labels: the M-step. Returns the segmenter's run directory."""
    labels = prefix.with_name(prefix.name + "_labels")
    _label(cfg, dataset, gen_file, seg_prev, labels, progress)
    run = prefix.with_name(prefix.name + "_segmenter")
    _train_segmenter(cfg, dataset.spec, labels, val, run, progress)
    return run


def _deploy(cfg, target, gen_file, seg_prev, stage_dir: Path, row: dict, progress: bool) -> Path:
    """Section 3.3 at one stage: label the target's boxes, score them, train its segmenter."""
    labels = stage_dir / "target_labels"
    _label(cfg, target, gen_file, seg_prev, labels, progress)
    row["target_labels"] = str(labels)
    row["labels_miou"] = _score_labels(target, labels, progress)
    if not cfg.lpg.deploy_segmenter:
        return None
    run = stage_dir / "segmenter"
    seg = cfg.segmenter
    row["segmenter_miou"] = _train_segmenter(cfg, target.spec, labels, seg.data.val, run, progress)
    row["segmenter"] = str(run)
    return run


def _label(cfg, dataset, gen_file, seg_prev, out: Path, progress: bool) -> None:
    from weakseg.pseudo.base import TrainedModel
    from weakseg.pseudo.runner import run_labels
    from weakseg.pseudo.store import LabelStore

    store = LabelStore(out)
    if store.meta() is not None and store.done_ids() >= set(dataset.ids):
        return  # a finished step is left alone, as `weakseg train` leaves a finished run

    # Resolved paths: the labels' meta.json must not depend on how --run-dir was spelled.
    params = {"generator": str(Path(gen_file).resolve())}
    trained = None
    if seg_prev is not None:
        params["run_dir"] = str(Path(seg_prev).resolve())
        trained = TrainedModel(_load_segmenter(seg_prev), "any", str(seg_prev))
    summary = run_labels(dataset.spec, "lpg", out, params, cfg.lpg.workers, progress=progress,
                         trained=trained)  # fmt: skip
    if summary.num_failed or summary.nothing_done:
        raise ValueError(f"labelling {dataset.spec} into {out} failed:\n{summary.format()}")


def _score_labels(dataset: Dataset, labels: Path, progress: bool) -> float | None:
    from weakseg.engine.evaluate import evaluate_label_dir

    try:
        result = evaluate_label_dir(dataset, labels, progress=progress)
    except DataError:  # no masks: nothing to score
        return None
    result.to_json(labels.with_name(labels.name + "_eval.json"))
    return result.miou


def _train_segmenter(cfg: LpgConfig, train_spec: str, labels: Path | None, val: str, run: Path,
                     progress: bool, method: str = "pseudo") -> float | None:  # fmt: skip
    """The M-step: ``train.method: pseudo`` on ``labels``; mIoU on ``val`` when given."""
    from weakseg.engine.inference import evaluate_model
    from weakseg.engine.loop import load_trained, train

    seg = cfg.segmenter
    seg_cfg = dataclasses.replace(
        seg, data=dataclasses.replace(seg.data, train=train_spec, labels=str(labels or ""), val=""),
        train=dataclasses.replace(seg.train, method=method, eval_every=0),
    )  # fmt: skip
    train(seg_cfg, run, progress=progress)
    if not val:
        return None
    result_path = run / "eval" / "ss.json"
    if result_path.exists():
        return json.loads(result_path.read_text())["miou"]
    dataset = open_dataset(val)
    cm = evaluate_model(load_trained(run, "cpu")[0], dataset, progress=progress)
    result_path.parent.mkdir(exist_ok=True)
    write_json_atomic(result_path, {"dataset": val, **cm.to_dict(dataset.classes.names)})
    return cm.miou()


__all__ = [
    "LpgConfig",
    "LpgSettings",
    "aux_pairs",
    "generator_loss",
    "load_lpg_config",
    "run_lpg",
    "train_generator",
    "training_example",
]
