"""A self-contained HTML report: result tables, then the pictures a person looks at."""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from weakseg.engine.evaluate import ConfusionMatrix

STYLE = """body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}
img{max-width:100%;margin:.5em 0}h2{border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0}th,td{padding:.15em .6em;border-bottom:1px solid #ddd}
td{text-align:right}td:first-child,th:first-child{text-align:left}
td.best{font-weight:bold;background:#e6f4e6}tr.mean td{border-top:2px solid #888}"""


def html_table(
    results: dict[str, np.ndarray | ConfusionMatrix], class_names: Sequence[str], digits: int = 1
) -> str:
    """Per-class IoU (%) as an HTML table: a row per class and a last mIoU row, a column per
    method. In a row with two or more values, the cells showing the best value have class
    "best" (bold); classes absent from a method's data show "-"."""
    ious = {m: r.iou() if isinstance(r, ConfusionMatrix) else np.asarray(r, dtype=float)
            for m, r in results.items()}  # fmt: skip
    means = [np.nanmean(iou) if np.isfinite(iou).any() else np.nan for iou in ious.values()]
    rows = [(name, [iou[c] for iou in ious.values()], "") for c, name in enumerate(class_names)]
    rows.append(("mIoU", means, "mean"))
    header = "".join(f"<th>{html.escape(m)}</th>" for m in ["class", *ious])
    lines = ["<table>", f"<thead><tr>{header}</tr></thead>", "<tbody>"]
    for name, values, css in rows:
        shown = ["-" if np.isnan(v) else f"{100 * v:.{digits}f}" for v in values]
        numbers = [float(t) for t in shown if t != "-"]
        best = f"{max(numbers):.{digits}f}" if len(numbers) >= 2 else None
        cells = "".join(f'<td class="best">{t}</td>' if t == best else f"<td>{t}</td>"
                        for t in shown)  # fmt: skip
        row_class = f' class="{css}"' if css else ""
        lines.append(f"<tr{row_class}><td>{html.escape(name)}</td>{cells}</tr>")
    return "\n".join([*lines, "</tbody>", "</table>"])


def write_report(
    path: str | Path,
    title: str,
    tables: dict[str, dict],
    class_names,
    out: Path,
    seconds: float,
) -> None:
    """Write ``path``: each table (name -> {method: ConfusionMatrix}) and every PNG found under
    ``out``'s overlays/, predictions/ and fill_rates.png, linked relatively."""
    path = Path(path)
    parts = [f"<h1>{html.escape(title)}</h1>", f"<p>Total time {seconds / 60:.1f} min.</p>"]
    for name, cms in tables.items():
        parts += [f"<h2>{html.escape(name)}</h2>",
                  "<p>IoU per class and mIoU, %; the best value of each row in bold.</p>",
                  html_table(cms, class_names)]  # fmt: skip
    sections = (("Pseudo labels", "overlays"), ("Predictions of the trained models", "predictions"))
    for heading, folder in sections:
        pictures = sorted((out / folder).glob("*.png"))
        if pictures:
            parts.append(f"<h2>{heading}</h2>")
            parts += [f'<img src="{html.escape(os.path.relpath(p, path.parent))}" '
                      f'alt="{html.escape(p.stem)}">' for p in pictures]  # fmt: skip
    if (out / "fill_rates.png").exists():
        rel = os.path.relpath(out / "fill_rates.png", path.parent)
        parts += ["<h2>Box filling rates per class</h2>",
                  f'<img src="{html.escape(rel)}" alt="box filling rates">']  # fmt: skip
    write_page(path, title, parts)


def write_page(path: str | Path, title: str, parts: list[str]) -> None:
    """Write an HTML page (atomically) with the shared style and ``parts`` as its body."""
    path = Path(path)
    doc = (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
           f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
           + "\n".join(parts) + "\n</body></html>\n")  # fmt: skip
    tmp = path.with_name(f".{path.name}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(doc)
    tmp.replace(path)


def run_eval_tables(run_dir: str | Path) -> tuple[dict[str, ConfusionMatrix], list[str]]:
    """The results `weakseg eval` kept in RUN_DIR/eval/ ({"TAG (DATASET)": matrix}) and their
    class names, for the report's table; empty when none was run."""
    tables, names = {}, []
    for path in sorted((Path(run_dir) / "eval").glob("*.json")):
        result = json.loads(path.read_text())
        if "confusion_matrix" not in result:
            continue
        tables[f"{path.stem} ({result.get('dataset', '?')})"] = ConfusionMatrix.from_dict(result)
        names = result.get("class_names", names)
    return tables, names
