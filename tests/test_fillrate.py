import numpy as np
import pytest

from weakseg.data.synthetic import SyntheticDataset
from weakseg.fillrate import (
    fill_rate_stats,
    fill_rates,
    fill_rates_by_class,
    format_fill_rates,
    plot_fill_rates,
)
from weakseg.viz.palette import save_label_png


def test_fill_rates_by_hand():
    label_map = np.zeros((4, 6), dtype=np.uint8)
    label_map[0:2, 0:3] = 1  # 6 pixels of class 1
    label_map[1, 2] = 2  # class 2 occludes one of them
    label_map[3, 5] = 255
    boxes = np.array([[0, 0, 4, 2], [2, 1, 6, 4], [1, 1, 1, 3]], dtype=np.float32)
    labels = np.array([1, 2, 1])
    rates = fill_rates(boxes, labels, label_map)
    # box 0: 8 px, class-1 pixels (0,0..2) + (1,0..1) = 5 -> 5/8
    # box 1: 12 px, class-2 pixel (1,2) only -> 1/12 ; box 2 is empty -> NaN
    assert np.allclose(rates[:2], [5 / 8, 1 / 12]) and np.isnan(rates[2])
    excluded = fill_rates(boxes[1:2], labels[1:2], label_map, exclude_ignore=True)
    assert np.allclose(excluded, [1 / 11])  # the 255 pixel leaves the denominator


def test_stats_from_gt_and_from_label_dir(tmp_path):
    ds = SyntheticDataset(6, seed=2)
    gt = fill_rates_by_class(ds)
    # Box-filled label maps fill every box completely unless a smaller box covers part of it.
    from weakseg.data.boxes import box_label_map

    for s in ds:
        save_label_png(
            tmp_path / f"{s.id}.png", box_label_map(s.boxes, s.box_labels, s.height, s.width)
        )
    boxed = fill_rate_stats(ds, tmp_path)
    assert boxed["all"]["count"] == sum(len(s.boxes) for s in ds)
    assert (
        boxed["all"]["q3"] == 1.0
        and boxed["all"]["mean"] > np.concatenate(list(gt.values())).mean()
    )
    stats = fill_rate_stats(ds)
    for name, rates in gt.items():
        assert stats[name]["count"] == len(rates)
        if len(rates):
            assert stats[name]["q1"] <= stats[name]["median"] <= stats[name]["q3"]


def test_summary_statistics_by_hand():
    from weakseg.fillrate import summarize_fill_rates

    stats = summarize_fill_rates({"cat": np.array([0.2, 0.4, 0.6, 0.8, 1.0]), "dog": np.array([])})
    assert stats["cat"] == pytest.approx(
        {"count": 5, "mean": 0.6, "min": 0.2, "q1": 0.4, "median": 0.6, "q3": 0.8, "max": 1.0}
    )
    assert stats["dog"]["count"] == 0 and np.isnan(stats["dog"]["mean"])
    assert stats["all"]["count"] == 5
    text = format_fill_rates({"gt": stats}, ["background", "cat", "dog"])
    lines = [line.split() for line in text.splitlines()]
    assert lines[0] == ["class", "gt", "mean/median"]
    assert lines[1:] == [
        ["cat", "0.60", "/", "0.60"],
        ["dog", "-"],
        ["all", "0.60", "/", "0.60"],
        ["boxes", "5"],
    ]


def test_plot_fill_rates_writes_png(tmp_path):
    ds = SyntheticDataset(8, seed=0)
    gt = fill_rates_by_class(ds)
    path = tmp_path / "fill.png"
    halved = fill_rate_stats(ds)  # statistics dicts plot too
    halved = {
        c: {k: v / 2 if k != "count" else v for k, v in st.items()} for c, st in halved.items()
    }
    plot_fill_rates({"gt": gt, "half": halved}, ds.classes.names, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["fill.png"]
