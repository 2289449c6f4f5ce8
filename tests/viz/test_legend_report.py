"""Legends under overlays, per-class IoU as HTML tables, and report.html in a real browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from weakseg.data.classes import VOC
from weakseg.engine.evaluate import ConfusionMatrix
from weakseg.viz.overlay import classes_shown, legend, save_png, with_legend
from weakseg.viz.palette import VOC_PALETTE
from weakseg.viz.report import html_table, write_report

NAMES = list(VOC.names)


def has_colour(picture: np.ndarray, index: int) -> bool:
    return bool((picture.reshape(-1, 3) == VOC_PALETTE[index]).all(1).any())


def test_classes_shown_leaves_out_background_and_adds_box_labels():
    a = np.array([[0, 3], [15, 255]], dtype=np.uint8)
    b = np.array([[0, 0], [3, 3]], dtype=np.uint8)
    assert classes_shown([a, None, b], extra=[7, 3]) == [3, 7, 15, 255]
    assert classes_shown([np.zeros((2, 2), np.uint8)]) == []


def test_legend_shows_exactly_the_colours_of_the_classes_present():
    picture = np.full((40, 300, 3), 90, dtype=np.uint8)
    labels = np.zeros((40, 300), dtype=np.uint8)
    labels[:10, :10], labels[20:, 50:] = 3, 15
    labels[0, -1] = 255
    out = with_legend(picture, [labels], NAMES)
    assert out.shape[1] == 300 and out.shape[0] > 40
    np.testing.assert_array_equal(out[:40], picture)  # the picture itself is untouched
    strip = out[40:]
    for c in (3, 15, 255):  # bird, person, ignore
        assert has_colour(strip, c), c
    for c in (1, 2, 12):
        assert not has_colour(strip, c), c


def test_legend_wraps_into_more_rows_when_narrow():
    classes = list(range(1, 11))
    wide, narrow = legend(classes, NAMES, 1200), legend(classes, NAMES, 150)
    assert narrow.shape[0] > wide.shape[0] and narrow.shape[1] == 150
    for c in classes:
        assert has_colour(narrow, c)


def test_a_picture_without_classes_says_so():
    out = with_legend(np.zeros((10, 120, 3), np.uint8), [np.zeros((10, 120), np.uint8)], NAMES)
    assert out.shape[0] > 10 and (out[10:] < 128).any()  # a dark line of text on white


class Cells(HTMLParser):
    """Collect the tables of a page: per table, rows of (text, css class) cells."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[tuple[str, str]]]] = []
        self.images: list[str] = []
        self._cell: list | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ["", attrs.get("class") or ""]
        elif tag == "img":
            self.images.append(attrs["src"])

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[0] += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(tuple(self._cell))
            self._cell = None


def confusion(diagonal: list[int], off: int) -> ConfusionMatrix:
    """A 3-class matrix with ``diagonal`` hits and ``off`` pixels of class 0 predicted as 1."""
    cm = ConfusionMatrix(3)
    cm.matrix += np.diag(diagonal)
    cm.matrix[0, 1] += off
    return cm


def test_html_table_marks_the_best_value_of_each_row():
    # IoU (%): A = bg 50, c1 50, c2 100 (mIoU 66.7); B = bg 100, c1 100, c2 - (absent) (100).
    results = {"A": confusion([10, 10, 5], 10), "B": confusion([4, 4, 0], 0)}
    parser = Cells()
    parser.feed(html_table(results, ["background", "one", "two"]))
    (rows,) = parser.tables
    assert [c[0] for c in rows[0]] == ["class", "A", "B"]
    body = {r[0][0]: r[1:] for r in rows[1:]}
    assert body["background"] == [("50.0", ""), ("100.0", "best")]
    assert body["one"] == [("50.0", ""), ("100.0", "best")]
    assert body["two"] == [("100.0", ""), ("-", "")]  # one value only: nothing to compare
    assert body["mIoU"] == [("66.7", ""), ("100.0", "best")]


def test_html_table_marks_ties_as_shown():
    results = {"A": np.array([0.5, 0.12341]), "B": np.array([0.25, 0.12344])}
    parser = Cells()
    parser.feed(html_table(results, ["background", "one"]))
    one = parser.tables[0][2]
    assert one == [("one", ""), ("12.3", "best"), ("12.3", "best")]


def make_report(out: Path) -> Path:
    """A demo-style report.html with two tables and real pictures under ``out``."""
    rng = np.random.default_rng(0)
    for folder in ("overlays", "predictions"):
        for k in range(2):
            save_png(out / folder / f"{k}.png", rng.integers(0, 255, (20, 30, 3), dtype=np.uint8))
    save_png(out / "fill_rates.png", np.zeros((10, 10, 3), np.uint8))
    tables = {"Pseudo labels": {"box": confusion([5, 5, 5], 2), "grabcut": confusion([9, 5, 5], 0)},
              "Models": {"full": confusion([3, 3, 3], 1)}}  # fmt: skip
    write_report(out / "report.html", "weakseg demo <test>", tables, ["bg", "a", "b"], out, 12.0)
    return out / "report.html"


def test_report_uses_html_tables_and_existing_pictures(tmp_path):
    page = make_report(tmp_path)
    parser = Cells()
    parser.feed(page.read_text())
    assert len(parser.tables) == 2 and "<pre>" not in page.read_text()
    assert [c[0] for c in parser.tables[0][0]] == ["class", "box", "grabcut"]
    assert len(parser.images) == 5
    for src in parser.images:
        assert (page.parent / src).is_file(), src


BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")

# Loads the page in an iframe (file:// pages may read each other with
# --allow-file-access-from-files) and logs which of its images decoded.
HARNESS = """<!doctype html><meta charset="utf-8"><title>harness</title>
<iframe id="page" src="{url}"></iframe>
<script>
document.getElementById("page").addEventListener("load", () => {{
  const doc = document.getElementById("page").contentDocument;
  const images = [...doc.images].map(
    i => [i.getAttribute("src"), i.complete && i.naturalWidth > 0]);
  const tables = doc.querySelectorAll("table").length;
  console.log("WEAKSEG-CHECK " + JSON.stringify({{images, tables}}));
}});
</script>
"""


def open_in_chromium(page: Path, work: Path) -> tuple[dict, list[str]]:
    """(what the harness saw, every other console message) for ``page`` in headless Chromium."""
    harness = work / "harness.html"
    harness.write_text(HARNESS.format(url=page.resolve().as_uri()))
    cmd = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
           "--v=0", "--allow-file-access-from-files", "--virtual-time-budget=5000",
           f"--user-data-dir={work / 'profile'}", "--dump-dom", harness.as_uri()]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    checks = [line for line in console if "WEAKSEG-CHECK" in line]
    assert len(checks) == 1, proc.stderr[-3000:]
    seen = json.loads(
        re.search(r'WEAKSEG-CHECK (.*)", source:', checks[0]).group(1).replace('\\"', '"')
    )
    return seen, [line for line in console if "WEAKSEG-CHECK" not in line]


@pytest.mark.skipif(BROWSER is None, reason="no chromium installed (Debian: apt install chromium)")
def test_report_opens_cleanly_in_headless_chromium(tmp_path):
    page = make_report(tmp_path / "report")
    seen, errors = open_in_chromium(page, tmp_path)
    assert errors == []
    assert seen["tables"] == 2 and len(seen["images"]) == 5
    assert all(ok for _, ok in seen["images"]), seen["images"]
    # The check can fail: a missing picture and a script error are both caught.
    (tmp_path / "report" / "overlays" / "0.png").unlink()
    with page.open("a") as f:
        f.write("<script>console.error('broken page')</script>\n")
    seen, errors = open_in_chromium(page, tmp_path)
    assert [src for src, ok in seen["images"] if not ok] == ["overlays/0.png"]
    assert len(errors) == 1 and "broken page" in errors[0]
