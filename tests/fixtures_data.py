"""Builders of tiny on-disk datasets for tests, written into a temporary folder (nothing binary is
committed). Images are 64 x 48 (W x H)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from weakseg.data import files

HEIGHT, WIDTH = 48, 64
GOOD_IDS = ("good_0", "good_1", "good_2")
GOOD_CLASSES = {"good_0": ("dog", 12), "good_1": ("cat", 8), "good_2": ("person", 15)}
# VOC 1-based inclusive corners of the one object of every good image, and its 0-based box.
GOOD_VOC_BOX = (11, 9, 40, 36)
GOOD_BOX = (10.0, 8.0, 40.0, 36.0)

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE annotation [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<annotation><object><name>&lol9;</name></object></annotation>
"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE annotation [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<annotation><size><width>64</width><height>48</height></size>
<object><name>&x;</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox>
</object></annotation>
"""


def sample_image(seed: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """A deterministic H x W x 3 uint8 image: smooth gradient plus noise."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 200, width, dtype=np.float32)[None, :, None]
    image = ramp + rng.integers(0, 50, (height, width, 3))
    return image.clip(0, 255).astype(np.uint8)


def write_jpeg(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, quality=90)
    return path


def write_png(path: Path, mask: np.ndarray, palette: bool = False) -> Path:
    """Write an index mask as a grey ("L") PNG, or a palette ("P") PNG whose colours differ from
    the indices (as in VOC SegmentationClass)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(mask.astype(np.uint8), mode="L")
    if palette:
        image = image.convert("P")
        colours = np.zeros((256, 3), dtype=np.uint8)
        colours[:, 0] = np.arange(256)[::-1]  # colour of index i is (255 - i, 7, 0)
        colours[:, 1] = 7
        image.putpalette(colours.reshape(-1).tolist())
    image.save(path)
    return path


def voc_xml(
    filename: str,
    objects: list[tuple[str, tuple[float, float, float, float], bool, bool]],
    size: tuple[int, int] = (HEIGHT, WIDTH),
) -> str:
    """VOC annotation XML; objects are (name, 1-based inclusive corners, difficult, truncated)."""
    parts = [
        f"<annotation><filename>{filename}</filename>",
        f"<size><width>{size[1]}</width><height>{size[0]}</height><depth>3</depth></size>",
    ]
    for name, (x1, y1, x2, y2), difficult, truncated in objects:
        parts.append(
            f"<object><name>{name}</name><truncated>{int(truncated)}</truncated>"
            f"<difficult>{int(difficult)}</difficult><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
            f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
        )
    return "\n".join([*parts, "</annotation>"])


def good_mask(label: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """Class ``label`` inside GOOD_BOX with a 1-pixel ignore (255) rim, background elsewhere."""
    x1, y1, x2, y2 = (int(v) for v in GOOD_BOX)
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[y1:y2, x1:x2] = 255
    mask[y1 + 1 : y2 - 1, x1 + 1 : x2 - 1] = label
    return mask


def write_voc_sample(
    voc: Path,
    sample_id: str,
    seed: int,
    objects: list[tuple[str, tuple[float, float, float, float], bool, bool]] | None,
    mask: np.ndarray | None,
) -> None:
    """One image with (optionally) its XML and its SegmentationClassAug mask."""
    write_jpeg(voc / "JPEGImages" / f"{sample_id}.jpg", sample_image(seed))
    if objects is not None:
        xml = voc_xml(f"{sample_id}.jpg", objects)
        (voc / "Annotations" / f"{sample_id}.xml").write_text(xml)
    if mask is not None:
        write_png(voc / "SegmentationClassAug" / f"{sample_id}.png", mask)


def make_voc(root: Path) -> Path:
    """A clean VOC-layout dataset under ``root/VOC2012`` with the ids GOOD_IDS; returns VOC2012/.

    good_0 is a dog, good_1 a cat plus a difficult bottle box with no bottle pixels in the mask,
    good_2 a person; each object's box is GOOD_BOX. Split files: all.txt (all) and one.txt
    (good_0).
    """
    voc = root / "VOC2012"
    for folder in ("JPEGImages", "Annotations", "SegmentationClassAug"):
        (voc / folder).mkdir(parents=True, exist_ok=True)
    for seed, sample_id in enumerate(GOOD_IDS):
        name, label = GOOD_CLASSES[sample_id]
        objects = [(name, GOOD_VOC_BOX, False, seed == 2)]
        if sample_id == "good_1":
            objects.append(("bottle", (50, 5, 60, 20), True, False))
        write_voc_sample(voc, sample_id, seed, objects, good_mask(label))
    splits = voc / "ImageSets" / "Segmentation"
    splits.mkdir(parents=True, exist_ok=True)
    (splits / "all.txt").write_text("\n".join(GOOD_IDS) + "\n")
    (splits / "one.txt").write_text("good_0\n")
    return voc


def make_broken_voc(root: Path) -> dict[str, str]:
    """Write a small VOC-layout dataset into ``root`` (``root/VOC2012/...``; open it with
    ``voc:ROOT``) and return {id: expected problem kind}, "" for a good id.

    Good ids (load fine, ``doctor`` finds nothing wrong with them): good_0, good_1, good_2.
    Bad ids, one problem each (the kinds are ``weakseg.data.files`` constants, and equal both the
    ``DataError.kind`` that ``load`` raises and the ``doctor`` error key):

    - bad_xml: XML that is not well formed (MALFORMED_XML, names the .xml)
    - billion_laughs: nested entity expansion (UNSAFE_XML, names the .xml)
    - external_entity: ``<!ENTITY x SYSTEM "file:///etc/passwd">`` (UNSAFE_XML, names the .xml)
    - truncated_jpeg: a valid JPEG cut in half (UNREADABLE_IMAGE, names the .jpg)
    - wrong_size_mask: 32 x 24 mask for a 64 x 48 image (MASK_SIZE, names the .png)
    - bad_mask_values: mask containing the value 77 (MASK_VALUES, names the .png)
    - box_outside: a box entirely right of the image (BAD_BOX, names the .xml)
    - unknown_class: object named "unicorn" (UNKNOWN_CLASS, names the .xml)

    ImageSets/Segmentation/all.txt lists every id, in the order of the returned dict.
    """
    voc = make_voc(root)
    expected = dict.fromkeys(GOOD_IDS, "")
    dog = [("dog", GOOD_VOC_BOX, False, False)]
    annotations = voc / "Annotations"
    write_voc_sample(voc, "bad_xml", 10, None, good_mask(12))
    (annotations / "bad_xml.xml").write_text("<annotation><object><name>dog</name></annotation")
    expected["bad_xml"] = files.MALFORMED_XML
    for sample_id, text in (
        ("billion_laughs", BILLION_LAUGHS),
        ("external_entity", EXTERNAL_ENTITY),
    ):
        write_voc_sample(voc, sample_id, 11, None, good_mask(12))
        (annotations / f"{sample_id}.xml").write_text(text)
        expected[sample_id] = files.UNSAFE_XML
    write_voc_sample(voc, "truncated_jpeg", 12, dog, good_mask(12))
    jpeg = voc / "JPEGImages" / "truncated_jpeg.jpg"
    jpeg.write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 2])
    expected["truncated_jpeg"] = files.UNREADABLE_IMAGE
    write_voc_sample(voc, "wrong_size_mask", 13, dog, good_mask(12, HEIGHT // 2, WIDTH // 2))
    expected["wrong_size_mask"] = files.MASK_SIZE
    bad_values = good_mask(12)
    bad_values[0, 0] = 77
    write_voc_sample(voc, "bad_mask_values", 14, dog, bad_values)
    expected["bad_mask_values"] = files.MASK_VALUES
    write_voc_sample(voc, "box_outside", 15, [("dog", (100, 5, 120, 20), False, False)], None)
    expected["box_outside"] = files.BAD_BOX
    write_voc_sample(voc, "unknown_class", 16, [("unicorn", GOOD_VOC_BOX, False, False)], None)
    expected["unknown_class"] = files.UNKNOWN_CLASS
    (voc / "ImageSets" / "Segmentation" / "all.txt").write_text("\n".join(expected) + "\n")
    return expected


def uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO uncompressed RLE of an H x W bool mask (column-major runs, starting with zeros)."""
    flat = np.asarray(mask, dtype=np.uint8).flatten(order="F")
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0]:
        counts = [0, *counts]
    return {"size": list(mask.shape), "counts": counts}


def rect_polygon(x1: float, y1: float, x2: float, y2: float) -> list[list[float]]:
    return [[x1, y1, x2, y1, x2, y2, x1, y2]]


def make_coco(root: Path, segmentation: bool = True) -> tuple[Path, Path]:
    """A 2-image COCO set in ``root``: returns (images dir, annotations JSON).

    Image "a" (64 x 48): a big person (box 0,0,40,40), a small dog (box 20,20,30,30) on top of it,
    a kite (box 44,4,60,20) and a crowd of persons (pixels x 50..63, y 30..47, iscrowd=1).
    Image "b": no annotations. Category ids are COCO's: person 1, dog 18, kite 38.
    """
    images = root / "images"
    write_jpeg(images / "a.jpg", sample_image(1))
    write_jpeg(images / "b.jpg", sample_image(2))
    crowd = np.zeros((HEIGHT, WIDTH), dtype=bool)
    crowd[30:, 50:] = True
    anns = [
        (1, 1, (0, 0, 40, 40)),
        (2, 18, (20, 20, 30, 30)),
        (3, 38, (44, 4, 60, 20)),
    ]
    annotations = [
        {"id": i, "image_id": 1, "category_id": c, "iscrowd": 0,
         "bbox": [x1, y1, x2 - x1, y2 - y1], "area": float((x2 - x1) * (y2 - y1)),
         "segmentation": rect_polygon(x1, y1, x2, y2) if segmentation else []}
        for i, c, (x1, y1, x2, y2) in anns
    ]  # fmt: skip
    annotations.append(
        {"id": 4, "image_id": 1, "category_id": 1, "iscrowd": 1, "bbox": [50, 30, 14, 18],
         "area": 252.0, "segmentation": uncompressed_rle(crowd) if segmentation else []}
    )  # fmt: skip
    data = {
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": WIDTH, "height": HEIGHT},
            {"id": 2, "file_name": "b.jpg", "width": WIDTH, "height": HEIGHT},
        ],
        "annotations": annotations,
        "categories": [
            {"id": 1, "name": "person"}, {"id": 18, "name": "dog"}, {"id": 38, "name": "kite"},
        ],
    }  # fmt: skip
    ann_json = root / "instances.json"
    ann_json.write_text(json.dumps(data))
    return images, ann_json
