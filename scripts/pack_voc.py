"""Pack voc-dev (and the dev_train pseudo labels made here) small enough to travel with the code
to a GPU machine (the device tool sends at most 64 MiB): JPEGs re-encoded at a lower quality at
their original size (so boxes, masks and evaluation are unchanged), masks, XML and split files
copied as they are.

    python scripts/pack_voc.py [--data ../shared/data/voc-dev] [--labels bench-out/voc-dev]
        [--out gpu-pack] [--quality 75]

Writes OUT/voc-dev/VOC2012/... (a VOC layout weakseg reads with voc:OUT/voc-dev) and
OUT/labels/<generator>/ for each pseudo-label folder found under --labels (grabcut, crf-box).
OUT is meant to be ignored by git (gpu-pack/ is in .gitignore) and carried to the device.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from PIL import Image

GENERATORS = ("grabcut", "crf-box")


def pack(data: Path, labels: Path, out: Path, quality: int) -> int:
    """Write the packed copy; returns its size in bytes."""
    src, dst = data / "VOC2012", out / "voc-dev" / "VOC2012"
    for folder in ("Annotations", "SegmentationClassAug", "ImageSets"):
        shutil.copytree(src / folder, dst / folder, dirs_exist_ok=True)
    (dst / "JPEGImages").mkdir(parents=True, exist_ok=True)
    for path in sorted((src / "JPEGImages").glob("*.jpg")):
        Image.open(path).convert("RGB").save(dst / "JPEGImages" / path.name, quality=quality)
    for gen in GENERATORS:
        if (labels / gen / "meta.json").exists():
            shutil.copytree(labels / gen, out / "labels" / gen, dirs_exist_ok=True)
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/data/voc-dev")
    parser.add_argument("--labels", default="bench-out/voc-dev")
    parser.add_argument("--out", default="gpu-pack")
    parser.add_argument("--quality", type=int, default=75)
    args = parser.parse_args()
    size = pack(Path(args.data), Path(args.labels), Path(args.out), args.quality)
    print(f"packed {args.data} into {args.out}: {size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
