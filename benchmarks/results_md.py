"""Keep benchmarks/RESULTS.md as sections that each benchmark script rewrites on its own."""

from __future__ import annotations

from pathlib import Path

HEADER = """# Benchmark results

Every number here was measured by the command printed next to it; the JSON row files under
`benchmarks/results/` hold the full records (per-class values, machine, date). Sections are
rewritten by their benchmark scripts.
"""


def replace_section(path: Path, name: str, body: str) -> None:
    """Put ``body`` between ``<!-- name -->`` markers, replacing what was there."""
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    text = path.read_text() if path.exists() else HEADER
    block = f"{begin}\n{body.rstrip()}\n{end}"
    if begin in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(path)
