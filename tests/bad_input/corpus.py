"""Builders of hostile and broken inputs (written into a temporary folder; nothing binary is
committed), one per defect of issue 12, and a tiny trained run that the command tests share."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from tests.fixtures_data import (
    GOOD_VOC_BOX,
    HEIGHT,
    WIDTH,
    make_broken_voc,
    make_coco,
    sample_image,
    voc_xml,
    write_jpeg,
)

# A tiny training run (2 iterations on 4 synthetic images, random init): enough to test commands.
TINY = ["data.train=synthetic:4:0", "data.val=synthetic:2:1", "data.crop_size=64",
        "data.batch_size=2", "data.workers=0", "model.weights=none", "train.iterations=2",
        "train.checkpoint_every=1", "train.device=cpu", "train.eval_every=0"]  # fmt: skip
TINY_CONFIG = "configs/full_synthetic.yaml"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png_bomb(path: Path, side: int = 13000) -> Path:
    """A valid 1-bit ``side`` x ``side`` PNG of zeros: ~20 KB on disk, below Pillow's bomb limit
    (2 x 89.5 megapixels), 0.5 GB once decoded to RGB."""
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1 bit, greyscale
    png = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", body)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png + png_chunk(b"IEND", b""))
    return path


def grey16(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """A 16-bit grey ramp 0..65535 along x: H x W uint16."""
    ramp = np.linspace(0, 65535, width).round().astype(np.uint16)
    return np.broadcast_to(ramp, (height, width)).copy()


def write_png16(path: Path, values: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values.astype(np.uint16)).save(path)  # mode I;16: a 16-bit PNG
    return path


def write_exif_rotated_jpeg(path: Path, image: np.ndarray, orientation: int = 6) -> Path:
    """A JPEG whose EXIF orientation tag tells viewers to rotate it (6: 90 degrees clockwise)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, exif=exif)
    return path


def dog_xml(sample_id: str, corners: tuple[str, str, str, str] | None) -> str:
    """VOC XML of one dog whose corners are given as text, or without a <bndbox> at all."""
    if corners is None:
        return f"<annotation><filename>{sample_id}.jpg</filename><object><name>dog</name>" \
               "</object></annotation>"  # fmt: skip
    x1, y1, x2, y2 = corners
    return (
        f"<annotation><filename>{sample_id}.jpg</filename><object><name>dog</name><bndbox>"
        f"<xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox>"
        "</object></annotation>"
    )


# id -> (where doctor must name it, "error" or "warning") for every file make_all_broken adds to
# the corpus of tests/fixtures_data.make_broken_voc.
EXTRA_BROKEN = {
    "huge_xmax": ("Annotations/huge_xmax.xml", "error"),
    "big_xmax": ("Annotations/big_xmax.xml", "error"),
    "no_bndbox": ("Annotations/no_bndbox.xml", "error"),
    "bomb": ("JPEGImages/bomb.png", "error"),
    "grey16": ("JPEGImages/grey16.png", "warning"),
    "rotated": ("JPEGImages/rotated.jpg", "warning"),
}


def make_all_broken(root: Path) -> dict[str, str]:
    """make_broken_voc's corpus plus the files of issue 12 (see EXTRA_BROKEN); returns
    {id: file doctor must name}, good ids excluded."""
    expected = make_broken_voc(root)
    voc = root / "VOC2012"
    named = {i: f"{_VOC_NAMED[k]}".format(i) for i, k in expected.items() if k}
    for sample_id, corners in (("huge_xmax", ("1", "1", "1e308", "9")),
                               ("big_xmax", ("1", "1", "1e30", "9")),
                               ("no_bndbox", None)):  # fmt: skip
        write_jpeg(voc / "JPEGImages" / f"{sample_id}.jpg", sample_image(20))
        (voc / "Annotations" / f"{sample_id}.xml").write_text(dog_xml(sample_id, corners))
    write_png_bomb(voc / "JPEGImages" / "bomb.png")
    write_png16(voc / "JPEGImages" / "grey16.png", grey16())
    write_exif_rotated_jpeg(voc / "JPEGImages" / "rotated.jpg", sample_image(21))
    for sample_id in ("bomb", "grey16", "rotated"):
        xml = voc_xml(f"{sample_id}.jpg", [("dog", GOOD_VOC_BOX, False, False)])
        (voc / "Annotations" / f"{sample_id}.xml").write_text(xml)
    named.update({i: where for i, (where, _) in EXTRA_BROKEN.items()})
    return named


_VOC_NAMED = {
    "malformed XML": "Annotations/{}.xml",
    "unsafe XML (entity declarations)": "Annotations/{}.xml",
    "unknown class": "Annotations/{}.xml",
    "invalid box": "Annotations/{}.xml",
    "unreadable image": "JPEGImages/{}.jpg",
    "mask size differs from image": "SegmentationClassAug/{}.png",
    "mask values out of range": "SegmentationClassAug/{}.png",
}


def write_escaping_split(voc: Path, lines: list[str], name: str = "escape") -> Path:
    """A split file whose lines are ``lines`` (ids that try to leave the output folder)."""
    path = voc / "ImageSets" / "Segmentation" / f"{name}.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def edit_coco(ann: Path, change) -> Path:
    """Apply ``change(data)`` to a COCO JSON file in place."""
    data = json.loads(ann.read_text())
    change(data)
    ann.write_text(json.dumps(data))
    return ann


def coco_with_outside_image(root: Path, file_name: str) -> tuple[Path, Path, Path]:
    """make_coco's set whose image "a" is ``file_name`` (e.g. ../outside/secret.jpg), with that
    file present; returns (images dir, JSON, the outside file)."""
    images, ann = make_coco(root)
    secret = (images / file_name).resolve() if not Path(file_name).is_absolute() else file_name
    write_jpeg(Path(secret), sample_image(1))

    def point_outside(data: dict) -> None:
        data["images"][0]["file_name"] = file_name

    return images, edit_coco(ann, point_outside), Path(secret)
