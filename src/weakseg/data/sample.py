"""The one sample type every reader returns and every generator, loss and metric consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

IGNORE = 255  # label value that is never scored and never trained on


@dataclass
class Sample:
    """One image with its weak (and maybe full) annotation.

    Attributes:
        id: dataset-unique identifier, safe to use as a file stem.
        image: H x W x 3 uint8 RGB.
        boxes: K x 4 float32, (x1, y1, x2, y2), 0-based pixel corners, x2/y2 exclusive,
            so a box covering pixel columns 3..5 is (3, y1, 6, y2) and its width is x2 - x1.
        box_labels: K int64 class indices in 1..L (0 is background and never a box label).
        image_labels: sorted unique class indices present in the image (tags for SEC).
        mask: H x W uint8 ground truth, 0 = background, 1..L = classes, 255 = ignore; or None.
        difficult: K bool, the VOC "difficult" flag (False where the format has none).
        truncated: K bool, the VOC "truncated" flag (False where the format has none).
        source: path of the image file (or a description for synthetic data), for error messages.
    """

    id: str
    image: np.ndarray
    boxes: np.ndarray
    box_labels: np.ndarray
    image_labels: np.ndarray | None = None
    mask: np.ndarray | None = None
    difficult: np.ndarray | None = None
    truncated: np.ndarray | None = None
    source: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.box_labels = np.asarray(self.box_labels, dtype=np.int64).reshape(-1)
        k = len(self.boxes)
        if len(self.box_labels) != k:
            raise ValueError(f"{self.id}: {k} boxes but {len(self.box_labels)} box labels")
        if self.image_labels is None:
            self.image_labels = np.unique(self.box_labels)
        self.image_labels = np.asarray(self.image_labels, dtype=np.int64).reshape(-1)
        if self.difficult is None:
            self.difficult = np.zeros(k, dtype=bool)
        if self.truncated is None:
            self.truncated = np.zeros(k, dtype=bool)
        self.difficult = np.asarray(self.difficult, dtype=bool).reshape(-1)
        self.truncated = np.asarray(self.truncated, dtype=bool).reshape(-1)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


def collate(samples: list[Sample]) -> dict:
    """Batch samples of equal image size into tensors; boxes stay a list (K varies).

    Returns a dict with ``image`` (B x 3 x H x W float32 in [0, 1]), ``mask`` (B x H x W int64,
    only if every sample has one), ``boxes`` / ``box_labels`` (lists of K x 4 / K tensors),
    ``image_labels`` (list) and ``id`` (list of str).
    """
    import torch

    images = np.stack([s.image for s in samples])
    batch = {
        "image": torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0),
        "boxes": [torch.from_numpy(s.boxes) for s in samples],
        "box_labels": [torch.from_numpy(s.box_labels) for s in samples],
        "image_labels": [torch.from_numpy(s.image_labels) for s in samples],
        "id": [s.id for s in samples],
    }
    if all(s.mask is not None for s in samples):
        batch["mask"] = torch.from_numpy(np.stack([s.mask for s in samples])).long()
    return batch
