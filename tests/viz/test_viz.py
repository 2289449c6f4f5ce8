import numpy as np
import pytest
from PIL import Image

from weakseg.data.synthetic import SYNTHETIC_CLASSES, SyntheticDataset
from weakseg.viz.overlay import overlay, save_png, side_by_side
from weakseg.viz.palette import colorize, read_label_png, save_label_png, voc_colormap
from weakseg.viz.plots import plot_iou_bars


def test_voc_palette_known_colours():
    cmap = voc_colormap()
    assert cmap.shape == (256, 3) and cmap.dtype == np.uint8
    assert cmap[0].tolist() == [0, 0, 0]
    assert cmap[1].tolist() == [128, 0, 0]  # aeroplane
    assert cmap[2].tolist() == [0, 128, 0]  # bicycle
    assert cmap[15].tolist() == [192, 128, 128]  # person
    assert cmap[20].tolist() == [0, 64, 128]  # tvmonitor
    assert cmap[255].tolist() == [224, 224, 192]  # ignore
    assert len({tuple(c) for c in cmap}) == 256


def test_label_png_round_trip(tmp_path):
    label = np.random.default_rng(0).integers(0, 21, (13, 17)).astype(np.uint8)
    label[0, :5] = 255
    save_label_png(tmp_path / "a.png", label)
    with Image.open(tmp_path / "a.png") as image:
        assert image.mode == "P"
        assert image.getpalette()[3 * 15 : 3 * 16] == [192, 128, 128]
    assert np.array_equal(read_label_png(tmp_path / "a.png"), label)
    Image.fromarray(label).save(tmp_path / "l.png")  # grey (L mode) label files read the same
    assert np.array_equal(read_label_png(tmp_path / "l.png"), label)
    Image.fromarray(colorize(label)).save(tmp_path / "rgb.png")  # VOC-coloured RGB too
    assert np.array_equal(read_label_png(tmp_path / "rgb.png"), label)


def test_writes_are_atomic_and_leave_no_temp_files(tmp_path, monkeypatch):
    save_label_png(tmp_path / "sub" / "x.png", np.zeros((4, 4), dtype=np.uint8))
    save_png(tmp_path / "sub" / "y.png", np.zeros((4, 4, 3), dtype=np.uint8))
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["x.png", "y.png"]

    # A write that dies half-way leaves the old file intact and no temp file behind.
    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG half")
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        save_label_png(tmp_path / "sub" / "x.png", np.ones((4, 4), dtype=np.uint8))
    monkeypatch.undo()
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["x.png", "y.png"]
    assert read_label_png(tmp_path / "sub" / "x.png").max() == 0


def test_overlay_and_strip(tmp_path):
    s = SyntheticDataset(1, seed=0)[0]
    plain = overlay(s.image, s.mask, alpha=0.5)
    assert plain.shape == s.image.shape and plain.dtype == np.uint8
    objects = s.mask > 0
    assert np.array_equal(plain[~objects], s.image[~objects])  # background left as it was
    tint = 0.5 * s.image[objects] + 0.5 * colorize(s.mask)[objects]
    assert np.abs(plain[objects] - tint).max() <= 1  # objects blended half-half
    boxed = overlay(s.image, s.mask, 0.5, s.boxes[:1], s.box_labels[:1], SYNTHETIC_CLASSES.names)
    x1, y1, x2, y2 = s.boxes[0].astype(int)
    colour = voc_colormap()[s.box_labels[0]]
    assert (boxed[y2 - 1, x1:x2] == colour).all()  # bottom edge on the last row inside the box
    assert not (boxed[y2, x1:x2] == colour).all(axis=1).all()
    strip = side_by_side([("image", s.image), ("gt", colorize(s.mask)), ("half", s.image[::2])])
    assert strip.shape == (s.height + 18 + 8, 3 * s.width + 4 * 4, 3)
    save_png(tmp_path / "strip.png", strip)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "strip.png")), strip)


def test_plot_iou_bars(tmp_path):
    path = tmp_path / "iou.png"
    plot_iou_bars(
        {"box": np.array([0.9, 0.5, np.nan]), "gc": np.array([0.95, 0.7, 0.2])},
        ["bg", "a", "b"],
        path,
    )
    with Image.open(path) as image:
        assert image.size[0] > 300 and image.size[1] > 200


def test_atomic_save_writes_jpeg_for_a_jpg_name(tmp_path):
    from weakseg.viz.palette import atomic_save

    rgb = np.zeros((8, 8, 3), dtype=np.uint8)
    rgb[:, 4:] = 200
    atomic_save(tmp_path / "a.jpg", Image.fromarray(rgb), quality=90)
    atomic_save(tmp_path / "a.png", Image.fromarray(rgb))
    assert Image.open(tmp_path / "a.jpg").format == "JPEG"
    assert Image.open(tmp_path / "a.png").format == "PNG"
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), rgb)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg", "a.png"]
