"""Class lists and name <-> index maps. Index 0 is always background."""

from __future__ import annotations

VOC_CLASSES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip

# COCO category names (official 80, in category-id order) and their VOC equivalents.
COCO_TO_VOC_NAME: dict[str, str] = {
    "airplane": "aeroplane", "bicycle": "bicycle", "bird": "bird", "boat": "boat",
    "bottle": "bottle", "bus": "bus", "car": "car", "cat": "cat", "chair": "chair", "cow": "cow",
    "dining table": "diningtable", "dog": "dog", "horse": "horse", "motorcycle": "motorbike",
    "person": "person", "potted plant": "pottedplant", "sheep": "sheep", "couch": "sofa",
    "train": "train", "tv": "tvmonitor",
}  # fmt: skip

# Aliases that appear in VOC-style XML written by other tools.
VOC_ALIASES: dict[str, str] = {
    "airplane": "aeroplane", "motorcycle": "motorbike", "tv": "tvmonitor", "monitor": "tvmonitor",
    "dining table": "diningtable", "potted plant": "pottedplant", "couch": "sofa",
}  # fmt: skip


class ClassList:
    """An ordered list of class names with background at index 0."""

    def __init__(self, names: tuple[str, ...] | list[str], aliases: dict[str, str] | None = None):
        if names[0] != "background":
            names = ("background", *names)
        self.names = tuple(names)
        self.aliases = dict(aliases or {})
        self._index = {n.strip().lower(): i for i, n in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: str) -> bool:
        return self.index(name) is not None

    def index(self, name: str) -> int | None:
        """Index of ``name`` (case/space-insensitive, aliases allowed), or None if unknown."""
        key = name.strip().lower()
        key = self.aliases.get(key, key)
        return self._index.get(key)

    @property
    def num_foreground(self) -> int:
        return len(self.names) - 1


VOC = ClassList(VOC_CLASSES, VOC_ALIASES)
