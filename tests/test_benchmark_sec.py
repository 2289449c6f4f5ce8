"""benchmarks/sec.py: the cue statistics on a label folder, and the table it renders."""

from __future__ import annotations

import numpy as np
from benchmarks import sec

from weakseg.data.sample import Sample
from weakseg.pseudo.store import LabelStore


class TwoImages:
    spec, ids = "fake", ["a", "b"]

    def load(self, sample_id):
        mask = np.zeros((4, 4), np.uint8)
        mask[:, 2:] = 1
        return Sample(sample_id, np.zeros((4, 4, 3), np.uint8), np.zeros((0, 4)), [],
                      image_labels=[1], mask=mask)  # fmt: skip


def test_cue_statistics_pool_the_images(tmp_path, monkeypatch):
    monkeypatch.setattr("weakseg.data.specs.open_dataset", lambda spec: TwoImages())
    store = LabelStore(tmp_path)
    grid = np.array([[0, 1], [255, 1]], np.uint8)  # a: 3 of 4 cells; bg right, fg right
    store.write("a", {"labels": np.kron(grid, np.ones((2, 2), np.uint8)), "cues": grid})
    grid = np.array([[1, 255], [255, 255]], np.uint8)  # b: 1 cell, fg on background: wrong
    store.write("b", {"labels": np.kron(grid, np.ones((2, 2), np.uint8)), "cues": grid})
    stats = sec.cue_statistics("fake", tmp_path)
    assert stats["images"] == 2
    assert stats["cue_share"] == 4 / 8 and stats["bg_share"] == 1 / 8
    assert stats["fg_precision"] == 8 / 12 and stats["bg_precision"] == 1.0


def test_render_reports_the_ratio_to_full():
    seed = {"miou": 0.3, "train_command": "weakseg train x", "miou_crf": 0.32}
    row = {"seeds": {"0": seed}, "miou": {"mean": 0.3, "std": 0.0},
           "miou_crf": {"mean": 0.32, "std": 0.0}, "train_minutes": {"mean": 9.0}}  # fmt: skip
    text = sec.render({"sec": row})
    assert "| sec | seed + expand (GWRP) + constrain | 30.0 (one seed) | 32.0 (one seed)" in text
