"""Dataset spec strings: the one place that knows every reader.

A spec string names a dataset on the command line:

    voc:ROOT[:SPLIT]                       ROOT holds VOC2012/ or is VOC2012/ itself;
                                           SPLIT names ImageSets/Segmentation/SPLIT.txt
    coco:IMAGES_DIR:ANN_JSON[:classes=voc] COCO instances JSON; classes=all|voc|nonvoc
    folder:PATH                            images/ + boxes.json or annotations.json [+ masks/]
    synthetic:N[:seed]                     the deterministic synthetic set (default seed 0)
    binary:CLASS:SPEC                      CLASS of SPEC against the background (2 classes)
    classes:LIST:SPEC                      only the classes LIST of SPEC (1-10, person,car)

Readers import :mod:`weakseg.data.dataset`, never this module, so there is no import cycle.
"""

from __future__ import annotations

from importlib import import_module

from weakseg.data.dataset import Dataset

# kind -> (module, class); imported on use so that opening a VOC set never loads pycocotools.
READERS = {
    "voc": ("weakseg.data.voc", "VOCDataset"),
    "coco": ("weakseg.data.coco", "COCODataset"),
    "folder": ("weakseg.data.folder", "FolderDataset"),
    "synthetic": ("weakseg.data.synthetic", "SyntheticDataset"),
    "binary": ("weakseg.data.binary", "BinaryDataset"),
    "classes": ("weakseg.data.subset", "ClassSubsetDataset"),
}


def open_dataset(spec: str) -> Dataset:
    """Open a dataset from its spec string (see the module docstring)."""
    kind, _, rest = spec.partition(":")
    if kind not in READERS:
        raise ValueError(
            f"unknown dataset spec {spec!r}: expected voc:ROOT[:SPLIT], "
            "coco:IMAGES_DIR:ANN_JSON[:classes=voc|nonvoc|all], folder:PATH, synthetic:N[:seed], "
            "binary:CLASS:SPEC or classes:LIST:SPEC"
        )
    module, name = READERS[kind]
    return getattr(import_module(module), name).from_spec(rest)
