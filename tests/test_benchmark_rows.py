"""The row loop the benchmark tables share: finished rows are kept and skipped, new rows are
saved the moment they exist, so a table that dies half way resumes where it stopped."""

import json

import pytest
from benchmarks.common import load_rows, run_rows, train_wall


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
