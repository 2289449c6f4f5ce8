"""Checkpoints that resume a run exactly, and load with ``torch.load(weights_only=True)``.

A checkpoint holds the model and optimizer state, the GradScaler state, the iteration and epoch
reached, and the random-number-generator states of torch (CPU and CUDA), numpy and Python. The
RNG states are stored as tensors and lists (not numpy arrays or arbitrary objects), so the file
is loadable without unpickling code. Writes go to a temporary file in the same directory and are
renamed into place, so a run killed mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn


def atomic_torch_save(obj: object, path: str | os.PathLike) -> None:
    """``torch.save`` to a temp file next to ``path``, then ``os.replace`` it into place."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a run directory is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def rng_state() -> dict:
    """The global RNG states as tensors / lists / ints (safe for ``weights_only=True``)."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    version, mt, gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": version, "state": list(mt), "gauss": gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    iteration: int,
    epoch: int,
    world_size: int = 1,
) -> None:
    """Everything needed to continue after ``iteration`` optimizer steps (``model`` unwrapped
    from DDP). ``world_size`` is recorded because the data order depends on it."""
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "iteration": iteration,
        "epoch": epoch,
        "world_size": world_size,
        "rng": rng_state(),
    }
    atomic_torch_save(state, path)


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scaler: torch.amp.GradScaler | None = None,
    restore_rng: bool = True,
) -> dict:
    """Load states into ``model`` / ``optimizer`` / ``scaler`` (those given), restore the RNGs,
    and return the checkpoint's {"iteration", "epoch", "world_size"}."""
    state = read_state(path)
    if not isinstance(state, dict) or not {"model", "optimizer", "rng"} <= set(state):
        raise ValueError(f"{path}: not a weakseg training checkpoint (keys missing)")
    load_weights(model, state["model"], path)
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scaler is not None and state["scaler"]:
        scaler.load_state_dict(state["scaler"])
    if restore_rng:
        set_rng_state(state["rng"])
    return {k: state[k] for k in ("iteration", "epoch", "world_size")}


def read_state(path: str | os.PathLike) -> object:
    """``torch.load(path, weights_only=True)`` on CPU; ValueError naming ``path`` when the file is
    truncated, garbage, or holds more than tensors (pickled code is refused, never run)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # noqa: BLE001 - torch raises assorted types for a bad file
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path}: not a readable weight file ({reason[:200]})") from None


def load_weights(model: nn.Module, state: object, path: str | os.PathLike) -> None:
    """``model.load_state_dict(state)``; ValueError naming ``path`` when the weights belong to
    another architecture or class count."""
    if not isinstance(state, dict):
        raise ValueError(f"{path}: holds a {type(state).__name__}, not a model's weights")
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as err:
        first = str(err).strip().splitlines()
        reason = " ".join(line.strip() for line in first[:3])
        raise ValueError(
            f"{path}: these weights do not fit the run's model (another architecture or class "
            f"count?): {reason[:300]}"
        ) from None


__all__ = [
    "atomic_torch_save",
    "load_checkpoint",
    "load_weights",
    "read_state",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]
