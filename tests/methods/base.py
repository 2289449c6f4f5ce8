"""The shared smoke test that every method's tests subclass (segmentation_models.pytorch style),
and the tiny-run helpers the engine tests use too.

A subclass names the method's synthetic config and the loss terms it expects::

    class TestBox(MethodTest):
        config = "box_synthetic.yaml"
        method = "box"
        terms = ("box",)

and gets: the config loads and names the method; two optimizer steps on synthetic:4 (64 x 64
crops, the real model with random weights, CPU) give finite scalar loss terms and gradients
that reach every trainable parameter; and two iterations through ``weakseg.engine.loop.train``
log every term.
"""

from __future__ import annotations

import contextlib
import itertools
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from weakseg.config import Config, load_config
from weakseg.data.boxes import box_label_map
from weakseg.data.specs import open_dataset
from weakseg.data.training import collate_training
from weakseg.engine.loop import build_optimizer, build_training_dataset, train
from weakseg.methods import build_method
from weakseg.pseudo.store import LabelStore

REPO = Path(__file__).resolve().parents[2]
TINY_SPEC = "synthetic:4"
# Small enough for seconds on one core, big enough for every layer (64 px = two stride-32 cells).
TINY = (
    f"data.train={TINY_SPEC}",
    'data.val=""',
    "data.crop_size=64",
    "data.batch_size=2",
    "data.workers=0",
    "model.weights=none",
    "train.device=cpu",
    "train.iterations=2",
    "train.log_every=1",
    "train.eval_every=0",
)


def write_box_labels(out: Path, spec: str = TINY_SPEC) -> Path:
    """Box-filled pseudo labels for every id of ``spec`` (fast stand-ins for GrabCut's)."""
    store = LabelStore(out)
    for sample in open_dataset(spec):
        label = box_label_map(sample.boxes, sample.box_labels, sample.height, sample.width)
        store.write(sample.id, {"labels": label})
    return out


def tiny_config(config: str, tmp_path: Path, *overrides: str) -> Config:
    """``configs/<config>`` shrunk by TINY, with box pseudo labels in ``tmp_path/labels``."""
    labels = tmp_path / "labels"
    if not labels.exists():
        write_box_labels(labels)
    return load_config(REPO / "configs" / config, [*TINY, f"data.labels={labels}", *overrides])


@contextlib.contextmanager
def single_torch_thread():
    """One torch thread: with 2 threads on 2 busy cores, lite0 steps ran ~100x slower here."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class MethodTest:
    config: str = ""  # a file in configs/
    overrides: tuple[str, ...] = ()  # on top of TINY
    method: str = ""  # the train.method the config must name
    terms: tuple[str, ...] = ()  # the loss terms ``losses`` must return
    frozen: tuple[str, ...] = ()  # parameter-name prefixes that may get no gradient

    @pytest.fixture(autouse=True)
    def _one_thread(self):
        with single_torch_thread():
            yield

    @pytest.fixture
    def cfg(self, tmp_path: Path) -> Config:
        return tiny_config(self.config, tmp_path, *self.overrides)

    def test_config_names_the_method(self, cfg: Config) -> None:
        assert cfg.train.method == self.method

    def test_two_iterations(self, cfg: Config) -> None:
        method = build_method(cfg.train.method, cfg.method)
        data = build_training_dataset(cfg, method)
        torch.manual_seed(0)
        model = method.build_model(cfg, len(data.classes)).train()
        optimizer = build_optimizer(model, cfg)
        loader = DataLoader(data, batch_size=cfg.data.batch_size, collate_fn=collate_training)
        for batch in itertools.islice(loader, 2):
            optimizer.zero_grad()
            outputs = model(batch["image"])
            terms = method.losses(batch, {k: v.float() for k, v in outputs.items()})
            assert sorted(terms) == sorted(self.terms)
            for name, value in terms.items():
                assert value.ndim == 0 and torch.isfinite(value), f"{name} = {value}"
            sum(terms.values()).backward()
            self.check_gradients(model)
            optimizer.step()

    def check_gradients(self, model: nn.Module) -> None:
        """Every trainable parameter (not in ``frozen``) has a finite gradient, and the
        encoder and the head both get a non-zero one."""
        norms = {}
        for name, p in model.named_parameters():
            if not p.requires_grad or name.startswith(self.frozen):
                continue
            assert p.grad is not None, f"no gradient reaches {name}"
            assert torch.isfinite(p.grad).all(), f"non-finite gradient in {name}"
            norms[name] = float(p.grad.norm())
        for group, params in model.param_groups().items():
            names = {id(p) for p in params}
            total = sum(norms.get(n, 0.0) for n, p in model.named_parameters() if id(p) in names)
            assert total > 0, f"no gradient reaches the {group} parameters"

    def test_loop_logs_every_term(self, cfg: Config, tmp_path: Path) -> None:
        summary = train(cfg, tmp_path / "run")
        assert summary["finished"] and summary["iterations"] == 2
        for term in self.terms:
            assert f"loss/{term}" in summary["last"]
