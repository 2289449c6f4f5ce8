"""Training transforms (weakseg.data.transforms) and the training dataset built on them
(weakseg.data.training)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from weakseg.data.boxes import box_label_map
from weakseg.data.dataset import DataError, Dataset
from weakseg.data.sample import IGNORE, Sample
from weakseg.data.synthetic import SyntheticDataset
from weakseg.data.training import ResumableSampler, TrainingDataset, collate_training
from weakseg.data.transforms import PAD_COLOR, TrainTransform, color_jitter, hflip
from weakseg.pseudo.store import LabelStore

H, W = 50, 70
BOXES = np.array([[5, 4, 40, 30], [20, 10, 60, 45], [30, 20, 38, 28]], np.float32)
LABELS = np.array([1, 2, 3])


def labelled_image(target: np.ndarray) -> np.ndarray:
    """An image whose every channel is 40 x the label: alignment is checkable pixel by pixel."""
    return np.repeat((target * 40).astype(np.uint8)[..., None], 3, axis=2)


def run(transform: TrainTransform, seed: int):
    target = box_label_map(BOXES, LABELS, H, W)
    return transform(np.random.default_rng(seed), labelled_image(target), target, BOXES, LABELS)


def test_same_generator_state_same_result_and_seeds_differ():
    t = TrainTransform(crop_size=48, scale_min=0.5, scale_max=2.0, color_jitter=0.3)
    a, b, c = run(t, 7), run(t, 7), run(t, 8)
    for field in ("image", "target", "boxes", "box_labels"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.image, c.image)


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_image_target_and_boxes_stay_aligned(scale):
    # scale 1 and 2 are exact for nearest-neighbour labels, so boxes must repaint the target
    t = TrainTransform(crop_size=64, scale_min=scale, scale_max=scale, flip=True)
    flips = set()
    for seed in range(12):
        crop = run(t, seed)
        assert crop.image.shape == (64, 64, 3) and crop.target.shape == (64, 64)
        pad = crop.target == IGNORE
        assert (crop.image[pad] == PAD_COLOR).all()
        if scale == 1.0:  # bilinear resampling blends the image at label edges
            assert (crop.image[~pad][:, 0] == crop.target[~pad] * 40).all()
        repainted = box_label_map(crop.boxes, crop.box_labels, 64, 64)
        assert np.array_equal(repainted[~pad], crop.target[~pad])
        flips.add(crop.image[:, :, 0].tobytes())
    assert len(flips) > 6  # crops and flips vary with the seed


def test_hflip_mirrors_boxes():
    image, target = np.zeros((2, 10, 3), np.uint8), np.zeros((2, 10), np.uint8)
    target[:, :3] = 1
    _, flipped, boxes = hflip(image, target, np.array([[0, 0, 3, 2]], np.float32))
    assert boxes.tolist() == [[7, 0, 10, 2]]
    assert (flipped[:, 7:] == 1).all() and (flipped[:, :7] == 0).all()


def test_boxes_that_leave_the_crop_are_dropped_with_their_labels():
    t = TrainTransform(crop_size=16, scale_min=1.0, scale_max=1.0, flip=False)
    counts = set()
    for seed in range(10):
        crop = run(t, seed)
        assert len(crop.boxes) == len(crop.box_labels)
        inside = crop.boxes.clip(0, 16)  # boxes keep their full extent but overlap the crop
        assert ((inside[:, 2] > inside[:, 0]) & (inside[:, 3] > inside[:, 1])).all()
        assert set(crop.box_labels) >= set(np.unique(crop.target)) - {0, IGNORE}
        counts.add(len(crop.boxes))
    assert len(counts) > 1  # some crops lost boxes


def test_scale_range_and_padding():
    small = TrainTransform(crop_size=128, scale_min=0.5, scale_max=0.5, flip=False)
    crop = run(small, 0)  # 25 x 35 image padded to 128 x 128
    assert (crop.target[25:] == IGNORE).all() and (crop.target[:, 35:] == IGNORE).all()
    assert (crop.target[:25, :35] != IGNORE).all()
    np.testing.assert_allclose(crop.boxes[0], BOXES[0] * 0.5)


def test_color_jitter_changes_colours_only():
    image = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    out = color_jitter(np.random.default_rng(1), image, 0.4)
    assert out.shape == image.shape and out.dtype == np.uint8 and not np.array_equal(out, image)
    assert np.array_equal(color_jitter(np.random.default_rng(1), image, 0.0), image)


# -- the training dataset -----------------------------------------------------------------------
PLAIN = TrainTransform(crop_size=224, scale_min=1.0, scale_max=1.0, flip=False)  # 160 x 224 -> pad


class NoMasks(Dataset):
    """Synthetic samples without masks, the first box flagged difficult."""

    def __init__(self, n: int = 2) -> None:
        self.inner = SyntheticDataset(n)
        self.ids, self.classes, self.spec = self.inner.ids, self.inner.classes, "nomasks"

    def load(self, sample_id: str) -> Sample:
        s = self.inner.load(sample_id)
        difficult = np.arange(len(s.boxes)) == 0
        return Sample(s.id, s.image, s.boxes, s.box_labels, difficult=difficult, source="x.jpg")


def test_items_have_the_documented_shapes():
    item = TrainingDataset(SyntheticDataset(2), "gt", TrainTransform(crop_size=64))[1]
    assert item["image"].shape == (3, 64, 64) and item["image"].dtype == torch.float32
    assert item["image"].min() >= 0 and item["image"].max() <= 1
    assert item["target"].shape == (64, 64) and item["target"].dtype == torch.int64
    assert item["boxes"].shape[1] == 4 and len(item["boxes"]) == len(item["box_labels"])
    assert item["id"] == "000001"


def test_augmentation_depends_on_seed_epoch_and_index_only():
    data = TrainingDataset(SyntheticDataset(3), "gt", TrainTransform(crop_size=64), seed=5)
    first = data[2]["image"]
    assert torch.equal(first, data[2]["image"])
    data.set_epoch(1)
    assert not torch.equal(first, data[2]["image"])
    data.set_epoch(0)
    assert torch.equal(first, data[2]["image"])


def test_batches_do_not_depend_on_the_number_of_workers():
    data = TrainingDataset(SyntheticDataset(4), "box", TrainTransform(crop_size=64), seed=1)
    data.set_epoch(3)
    batches = []
    for workers in (0, 2):
        loader = DataLoader(data, batch_size=2, num_workers=workers, collate_fn=collate_training)
        batches.append(list(loader))
    for a, b in zip(*batches, strict=True):
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["target"], b["target"])
        assert all(torch.equal(x, y) for x, y in zip(a["boxes"], b["boxes"], strict=True))


def test_box_target_is_the_box_label_map():
    dataset = SyntheticDataset(2)
    data = TrainingDataset(dataset, "box", PLAIN)
    for index, s in enumerate(dataset):
        expected = box_label_map(s.boxes, s.box_labels, s.height, s.width)
        assert np.array_equal(data[index]["target"][:160].numpy(), expected)


def test_drop_difficult_removes_flagged_boxes():
    kept = TrainingDataset(NoMasks(), "box", PLAIN)[0]
    dropped = TrainingDataset(NoMasks(), "box", PLAIN, drop_difficult=True)[0]
    assert len(dropped["boxes"]) == len(kept["boxes"]) - 1


def test_gt_without_mask_names_the_file():
    with pytest.raises(DataError, match="x.jpg: 000000 has no ground-truth mask"):
        TrainingDataset(NoMasks(), "gt", PLAIN)[0]


def test_pseudo_labels_are_read_and_checked(tmp_path: Path):
    dataset = SyntheticDataset(3)
    store = LabelStore(tmp_path / "grabcut")
    with pytest.raises(FileNotFoundError) as err:
        TrainingDataset(dataset, "pseudo", PLAIN, labels_dir=store.root)
    message = str(err.value)
    assert "3 image(s) (000000, 000001, 000002)" in message and str(store.root) in message
    assert f"weakseg labels --dataset {dataset.spec} --generator grabcut" in message
    for s in dataset:
        store.write(s.id, {"labels": np.full((s.height, s.width), 4, np.uint8)})
    data = TrainingDataset(dataset, "pseudo", PLAIN, labels_dir=store.root)
    assert (data[1]["target"][:160] == 4).all()
    store.write("000002", {"labels": np.zeros((10, 10), np.uint8)})
    with pytest.raises(DataError, match="pseudo label is 10x10 .* image 000002 is 224x160"):
        data[2]
    store.path("000001").unlink()  # deleted after the start: still a clear message
    with pytest.raises(FileNotFoundError, match="no pseudo label for 1 image.*000001"):
        data[1]


def test_pseudo_without_a_directory_says_which_key_to_set():
    with pytest.raises(ValueError, match="set data.labels"):
        TrainingDataset(SyntheticDataset(1), "pseudo", PLAIN)


def test_collate_keeps_a_variable_number_of_boxes():
    data = TrainingDataset(SyntheticDataset(4), "gt", TrainTransform(crop_size=32))
    batch = collate_training([data[i] for i in range(4)])
    assert batch["image"].shape == (4, 3, 32, 32) and batch["target"].shape == (4, 32, 32)
    assert len(batch["boxes"]) == 4 and batch["id"] == ["000000", "000001", "000002", "000003"]


def test_sampler_order_comes_from_seed_and_epoch_and_can_start_mid_epoch():
    data = TrainingDataset(SyntheticDataset(10), "gt", TrainTransform())
    sampler = ResumableSampler(data, world_size=1, rank=0, seed=3)
    sampler.set_epoch(2)
    order = list(sampler)
    assert sorted(order) == list(range(10)) and order == list(sampler)
    sampler.start = 4
    assert list(sampler) == order[4:] and len(sampler) == 6
    sampler.start = 0
    sampler.set_epoch(3)
    assert list(sampler) != order
    shares = [list(ResumableSampler(data, 3, r, seed=3)) for r in range(3)]  # 10 -> 3 x 4
    assert all(len(s) == 4 for s in shares) and set(sum(shares, [])) == set(range(10))


def test_warp_resizes_the_whole_image_without_crop():
    from weakseg.data.transforms import TrainTransform

    image = np.zeros((40, 80, 3), np.uint8)
    image[:, 40:] = 200  # right half bright
    target = np.zeros((40, 80), np.uint8)
    target[:, 40:] = 1
    boxes = np.array([[40, 0, 80, 40]], np.float32)
    t = TrainTransform(crop_size=32, flip=False, warp=True)
    crop = t(np.random.default_rng(0), image, target, boxes, np.array([1]))
    assert crop.image.shape == (32, 32, 3) and crop.valid.all()
    assert (crop.target[:, 16:] == 1).all() and (crop.target[:, :16] == 0).all()
    assert crop.boxes.tolist() == [[16, 0, 32, 32]]
