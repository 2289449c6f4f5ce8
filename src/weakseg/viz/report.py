"""A self-contained HTML report: result tables, then the pictures a person looks at."""

from __future__ import annotations

import html
import os
from pathlib import Path

from weakseg.engine.evaluate import format_table

STYLE = """body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}
pre{background:#f6f6f6;padding:1em;overflow-x:auto}img{max-width:100%;margin:.5em 0}
h2{border-bottom:1px solid #ccc}"""


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
        parts += [f"<h2>{html.escape(name)}</h2>", "<p>IoU per class and mIoU, %.</p>",
                  f"<pre>{html.escape(format_table(cms, class_names))}</pre>"]  # fmt: skip
    sections = (("Pseudo labels", "overlays"), ("Predictions of the trained models", "predictions"))
    for heading, folder in sections:
        pictures = sorted((out / folder).glob("*.png"))
        if pictures:
            parts.append(f"<h2>{heading}</h2>")
            parts += [f'<img src="{os.path.relpath(p, path.parent)}">' for p in pictures]
    if (out / "fill_rates.png").exists():
        rel = os.path.relpath(out / "fill_rates.png", path.parent)
        parts += ["<h2>Box filling rates per class</h2>", f'<img src="{rel}">']
    doc = f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
    doc += f"<style>{STYLE}</style>\n" + "\n".join(parts) + "\n"
    tmp = path.with_suffix(".html.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(doc)
    tmp.replace(path)
