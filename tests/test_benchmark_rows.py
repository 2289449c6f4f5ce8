"""The row loop the benchmark tables share: finished rows are kept and skipped, new rows are
saved the moment they exist, so a table that dies half way resumes where it stopped."""

import json
import shutil
from pathlib import Path

import pytest
from benchmarks.common import load_rows, run_rows, save_row, train_seeds, train_wall

import weakseg.cli


def test_rows_are_saved_one_by_one_and_a_rerun_resumes(tmp_path):
    made, redraws = [], []

    def make_row(name):
        if name == "c" and not made.count("retry"):
            raise RuntimeError("killed")
        made.append(name)
        return {"value": len(name)}

    with pytest.raises(RuntimeError):
        run_rows(["a", "b", "c"], tmp_path, make_row, lambda: redraws.append(1))
    assert sorted(load_rows(tmp_path)) == ["a", "b"]  # the finished rows survived
    assert len(redraws) == 2
    made.append("retry")
    run_rows(["a", "b", "c"], tmp_path, make_row, lambda: redraws.append(1))
    assert made == ["a", "b", "retry", "c"]  # a and b were not measured again
    row = json.loads((tmp_path / "c.json").read_text())
    assert row["value"] == 1 and {"machine", "date"} <= set(row)


def test_only_reruns_named_rows_and_render_only_measures_nothing(tmp_path):
    made, redraws = [], []
    run_rows(["a", "b"], tmp_path, lambda n: made.append(n) or {}, lambda: redraws.append(1))
    run_rows(["a", "b"], tmp_path, lambda n: made.append(n) or {}, lambda: None, only=["b"])
    assert made == ["a", "b", "b"]
    run_rows(["a", "b"], tmp_path, lambda n: made.append(n) or {}, lambda: redraws.append(1),
             render_only=True)  # fmt: skip
    assert made == ["a", "b", "b"] and len(redraws) == 3


def test_train_wall_says_when_a_run_was_resumed():
    assert train_wall({"seconds": 90.0, "iterations": 300, "resumed_from": 0}) == "1.5 min"
    resumed = train_wall({"seconds": 1512.0, "iterations": 300, "resumed_from": 86})
    assert resumed == "25.2 min (iterations 86-300, resumed)"


def test_bana_tables_render_from_the_committed_rows():
    """RESULTS.md's BANA sections are drawn from the row JSONs: every committed row shows."""
    from benchmarks import bana
    from benchmarks.common import load_rows

    rows, earlier = load_rows(bana.ROWS), load_rows(bana.EARLIER_ROWS)
    text = bana.render(rows) + bana.render_earlier(earlier)
    for name in [*rows, *earlier]:
        assert name in text, name


def test_seeds_recorded_in_the_row_are_kept_when_their_run_directories_are_gone(
    tmp_path, monkeypatch
):
    """Adding seed 1 to a row measured on another clone keeps seed 0 from the row's JSON; a
    record made with other settings, or a run directory still there, is not taken from it."""
    trained = []

    def fake_weakseg(argv):
        run_dir = Path(argv[2])
        if argv[0] == "train":
            if not (run_dir / "train_summary.json").exists():  # a finished run: nothing to do
                trained.append(argv[-1])
                run_dir.mkdir(parents=True, exist_ok=True)
                (run_dir / "train_summary.json").write_text(json.dumps({"seconds": 60.0}))
        else:
            (run_dir / "eval").mkdir(exist_ok=True)
            miou = 0.5 if argv[2].endswith("seed1") else 0.6
            (run_dir / "eval" / "dev_val.json").write_text(
                json.dumps({"miou": miou, "iou": {"a": miou}})
            )
        return 0

    monkeypatch.setattr(weakseg.cli, "main", fake_weakseg)
    out = tmp_path / "runs"
    row = train_seeds("r", "c.yaml", ["x=1"], out, "val", seeds=(0,))
    save_row(tmp_path / "rows", "r", row | {"seeds": {"0": row["seeds"]["0"] | {"miou": 0.7}}})
    recorded = tmp_path / "rows" / "r.json"
    assert trained == ["train.seed=0"]

    # run directory still there: it is read, not the record (0.6, not the record's 0.7)
    row = train_seeds("r", "c.yaml", ["x=1"], out, "val", seeds=(0,), row_file=recorded)
    assert row["seeds"]["0"]["miou"] == 0.6

    shutil.rmtree(out)
    row = train_seeds("r", "c.yaml", ["x=1"], out, "val", seeds=(0, 1), row_file=recorded)
    assert trained == ["train.seed=0", "train.seed=1"]  # seed 0 kept, only seed 1 trained
    assert row["seeds"]["0"]["miou"] == 0.7
    assert row["miou"]["mean"] == pytest.approx(0.6)  # (0.7 + 0.5) / 2

    shutil.rmtree(out)
    train_seeds("r", "c.yaml", ["x=2"], out, "val", seeds=(0,), row_file=recorded)
    assert trained[-1] == "train.seed=0"  # other settings: trained again

    # the same command on other inputs (a label folder made again): trained again
    save_row(tmp_path / "rows", "r", row | {"inputs": {"labels": "run 1"}})
    shutil.rmtree(out)
    row = train_seeds("r", "c.yaml", ["x=1"], out, "val", seeds=(0,), row_file=recorded,
                      inputs={"labels": "run 2"})  # fmt: skip
    assert trained[-1] == "train.seed=0" and len(trained) == 4
    assert row["inputs"] == {"labels": "run 2"}
    shutil.rmtree(out)
    save_row(tmp_path / "rows", "r", row)
    train_seeds("r", "c.yaml", ["x=1"], out, "val", seeds=(0,), row_file=recorded,
                inputs={"labels": "run 2"})  # fmt: skip
    assert len(trained) == 4  # same inputs: kept


def test_bana_stage3_rows_say_which_labels_run_they_trained_on():
    """Rows trained on different runs of labels-bap (a retrained classifier) are named apart."""
    from benchmarks.bana import _labels_line, labels_record

    old = {"name": "labels-bap", "date": "2026-12-03", "y_crf_dev_train": {"miou": 0.7078}}
    new = old | {"date": "2026-12-04", "y_crf_dev_train": {"miou": 0.7077}}
    rows = {n: {"inputs": {"labels": labels_record(old if n != "seg-entropy" else new)}}
            for n in ("seg-ycrf", "seg-nal", "seg-entropy")} | {"seg-none": {}}  # fmt: skip
    line = _labels_line(rows, ["seg-ycrf", "seg-nal", "seg-entropy", "seg-none"])
    assert line == ("Labels: seg-ycrf, seg-nal on the labels-bap of 2026-12-03 (Y_crf 70.8 on "
                    "dev_train); seg-entropy on the labels-bap of 2026-12-04 (Y_crf 70.8 on "
                    "dev_train); seg-none: not recorded.")  # fmt: skip
