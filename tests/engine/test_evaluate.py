import json

import numpy as np
import pytest

from weakseg.data.dataset import DataError
from weakseg.data.synthetic import SyntheticDataset
from weakseg.engine.evaluate import ConfusionMatrix, evaluate_label_dir, format_table
from weakseg.viz.palette import save_label_png

# 2 x 3 toy example, 3 classes.       target      pred
TARGET = np.array([[0, 0, 1], [1, 2, 255]])  # 0 0 1     0 1 1
PRED = np.array([[0, 1, 1], [2, 2, 0]])  #     1 2 255   2 2 0


def test_toy_example_by_hand():
    cm = ConfusionMatrix(3).update(PRED, TARGET)
    # scored pixels (255 dropped): (t,p) = (0,0) (0,1) (1,1) (1,2) (2,2)
    assert cm.matrix.tolist() == [[1, 1, 0], [0, 1, 1], [0, 0, 1]]
    # class 0: TP 1, FP 0, FN 1 -> 1/2; class 1: TP 1, FP 1, FN 1 -> 1/3; class 2: TP 1, FP 1 -> 1/2
    assert np.allclose(cm.iou(), [1 / 2, 1 / 3, 1 / 2])
    assert cm.miou() == pytest.approx((1 / 2 + 1 / 3 + 1 / 2) / 3)
    assert cm.pixel_accuracy() == pytest.approx(3 / 5)


def test_absent_class_is_nan_and_skipped_in_miou():
    cm = ConfusionMatrix(4).update(PRED, TARGET)
    assert np.isnan(cm.iou()[3])
    assert cm.miou() == pytest.approx((1 / 2 + 1 / 3 + 1 / 2) / 3)
    # a class only predicted (never in gt) scores 0, not NaN
    cm = ConfusionMatrix(4).update(np.array([[3, 0]]), np.array([[0, 0]]))
    assert cm.iou()[3] == 0 and cm.iou()[0] == pytest.approx(1 / 2)


def test_ignore_in_target_changes_nothing():
    cm = ConfusionMatrix(3).update(PRED, TARGET)
    target = TARGET.copy()
    target[0, 0] = 255  # hide a correct pixel
    hidden = ConfusionMatrix(3).update(PRED, target)
    assert hidden.matrix.sum() == cm.matrix.sum() - 1 and hidden.matrix[0, 0] == 0


def test_ignore_in_prediction_counts_as_a_miss():
    cm = ConfusionMatrix(3).update(np.array([[255, 1]]), np.array([[1, 1]]))
    assert cm.unlabelled.tolist() == [0, 1, 0]
    assert cm.iou()[1] == pytest.approx(1 / 2) and cm.pixel_accuracy() == pytest.approx(1 / 2)


def test_out_of_range_values_raise():
    with pytest.raises(ValueError, match="prediction has label 3"):
        ConfusionMatrix(3).update(np.array([[3]]), np.array([[0]]))
    with pytest.raises(ValueError, match="ground truth has label 7"):
        ConfusionMatrix(3).update(np.array([[0]]), np.array([[7]]))
    with pytest.raises(ValueError, match="shape"):
        ConfusionMatrix(3).update(np.zeros((2, 2)), np.zeros((2, 3)))


def test_merge_equals_single_accumulation():
    rng = np.random.default_rng(0)
    pairs = [(rng.integers(0, 5, (7, 9)), rng.integers(0, 5, (7, 9))) for _ in range(6)]
    whole, a, b = ConfusionMatrix(5), ConfusionMatrix(5), ConfusionMatrix(5)
    for k, (p, t) in enumerate(pairs):
        whole.update(p, t)
        (a if k % 2 else b).update(p, t)
    assert np.array_equal(a.merge(b).matrix, whole.matrix)
    restored = ConfusionMatrix.from_dict(json.loads(json.dumps(whole.to_dict())))
    assert np.array_equal(restored.matrix, whole.matrix)


def test_format_table():
    cm = ConfusionMatrix(3).update(PRED, TARGET)
    names = ["background", "cat", "dog"]
    text = format_table({"A": cm, "B": np.array([1.0, np.nan, 0.25])}, names)
    lines = text.splitlines()
    assert lines[0].split() == ["class", "A", "B"]
    assert lines[2].split() == ["background", "50.0", "100.0"]
    assert lines[3].split() == ["cat", "33.3", "-"]
    assert lines[-1].split() == ["mIoU", "44.4", "62.5"]
    md = format_table({"A": cm}, names, markdown=True).splitlines()
    assert (
        md[0] == "| class | A |" and md[1] == "| --- | ---: |" and md[-1] == "| **mIoU** | 44.4 |"
    )


def test_evaluate_label_dir(tmp_path):
    ds = SyntheticDataset(4, seed=1)
    for s in ds:
        if s.id != "000002":  # one missing file
            save_label_png(tmp_path / f"{s.id}.png", s.mask)
    result = evaluate_label_dir(ds, tmp_path, progress=False)
    assert (result.scored, result.missing) == (3, ["000002"])
    assert result.miou == pytest.approx(1.0)
    data = json.loads(result.to_json(tmp_path / "eval.json"))
    assert data["missing"] == 1 and data["iou"]["background"] == 1.0
    assert json.loads((tmp_path / "eval.json").read_text()) == data
    assert "MISSING and skipped (000002)" in result.describe()
    assert result.summary().splitlines()[-1] == result.describe()

    save_label_png(tmp_path / "000001.png", np.zeros((10, 10), dtype=np.uint8))
    result = evaluate_label_dir(ds, tmp_path, progress=False)  # a wrong-size map is skipped
    assert result.scored == 2 and "000001.png" in result.skipped.describe(4)
    with pytest.raises(DataError, match="nothing scored: 4 ids have no label map"):
        evaluate_label_dir(ds, tmp_path / "empty", progress=False)
