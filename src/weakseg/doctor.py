"""``weakseg doctor``: find every bad input file of a dataset before a long run trips on it.

:func:`diagnose` reads every sample of a dataset spec and sorts what it finds into

- **errors** (the sample cannot be used; the readers raise DataError for these): missing or
  unreadable/truncated images, malformed or unsafe XML/JSON, unknown class names, invalid boxes
  (inverted, zero-area, entirely outside the image), masks of the wrong size or with values
  outside 0..L and 255;
- **warnings** (usable, but probably not what you meant): boxes extending past the border (the
  readers clip them), image size disagreeing with the XML ``<size>`` (the image wins), VOC files
  without a partner (an XML or mask with no image), 16-bit images (scaled to 8 bits), images
  with an EXIF orientation (not applied: boxes and masks refer to the stored pixels);
- **info** counts: boxes, difficult and truncated boxes, boxes with no pixels of their class in
  the mask (e.g. the SBD masks of VOC "aug" leave many difficult objects unlabelled).

For VOC every file (image, XML, mask) is checked on its own, so one sample can show several
problems; other formats are checked through the reader's ``load``. Error kinds are the
``DataError.kind`` values of :mod:`weakseg.data.files`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from weakseg.data.boxes import box_problems, pixel_box
from weakseg.data.dataset import DataError, Dataset
from weakseg.data.files import (
    BOX_EXTENDS_OUTSIDE,
    IMAGE_SIZE,
    UNKNOWN_CLASS,
    UNSAFE_ID,
    box_problem_kind,
    image_stems,
    image_warnings,
    read_image,
    read_label_png,
)
from weakseg.data.sample import Sample
from weakseg.data.specs import open_dataset
from weakseg.data.voc import MASK_FOLDERS, VOCAnnotation, VOCDataset, VOCObject
from weakseg.progress import progress_bar

NO_PIXELS = "boxes with no pixels of their class in the mask"
NO_PIXELS_DIFFICULT = NO_PIXELS + " (difficult)"
CANNOT_OPEN = "cannot open dataset"
READER_CRASHED = "reader crashed (a bug: please report)"


@dataclass
class DoctorReport:
    """What :func:`diagnose` found. ``errors``/``warnings`` map a problem kind to every offending
    "file: detail" line; ``info`` maps a name to a count. ``ok`` is True when there are no
    errors."""

    spec: str
    num_samples: int = 0
    errors: dict[str, list[str]] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    info: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, kind: str, example: str) -> None:
        self.errors.setdefault(kind, []).append(example)

    def warn(self, kind: str, example: str) -> None:
        self.warnings.setdefault(kind, []).append(example)

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the info count ``name`` (a count of 0 is not listed)."""
        if n:
            self.info[name] = self.info.get(name, 0) + n

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec, "ok": self.ok, "num_samples": self.num_samples,
            "errors": self.errors, "warnings": self.warnings, "info": self.info,
        }  # fmt: skip

    def format(self, examples: int = 3) -> str:
        """A human-readable table: each kind with its count and up to ``examples`` files."""
        lines = [f"weakseg doctor: {self.spec} ({self.num_samples} samples)"]
        width = max(map(len, [*self.errors, *self.warnings, *self.info, ""]))
        for title, problems in (("errors", self.errors), ("warnings", self.warnings)):
            lines.append(f"{title}:" + ("" if problems else " none"))
            for kind, found in sorted(problems.items()):
                lines.append(f"  {kind:<{width}} {len(found):>7}")
                lines += [f"      {line}" for line in found[:examples]]
                if len(found) > examples:
                    lines.append(f"      ... and {len(found) - examples} more")
        lines.append("info:" + ("" if self.info else " none"))
        lines += [f"  {name:<{width}} {n:>7}" for name, n in sorted(self.info.items())]
        n_errors = sum(len(v) for v in self.errors.values())
        verdict = "OK" if self.ok else f"FAILED ({n_errors} errors of {len(self.errors)} kinds)"
        return "\n".join([*lines, f"result: {verdict}"])


def diagnose(spec: str, progress: bool = True) -> DoctorReport:
    """Check every sample of the dataset ``spec`` (see :mod:`weakseg.data.dataset`)."""
    report = DoctorReport(spec=spec)
    try:
        dataset = open_dataset(spec)
    except DataError as err:
        report.error(err.kind if err.kind == UNSAFE_ID else CANNOT_OPEN, str(err))
        return report
    except (ValueError, OSError) as err:
        report.error(CANNOT_OPEN, str(err))
        return report
    if hasattr(dataset, "clip"):
        dataset.clip = False  # see boxes as written; readers clip by default
    check = _check_voc_sample if isinstance(dataset, VOCDataset) else _check_loaded_sample
    bar = progress_bar(dataset.ids, desc="doctor", unit="img", enabled=progress)
    for sample_id in bar:
        try:
            check(dataset, sample_id, report)
        except Exception as err:  # one surprising file must not stop the whole check
            report.error(READER_CRASHED, f"{sample_id}: {type(err).__name__}: {err}")
    report.num_samples = len(dataset.ids)
    if isinstance(dataset, VOCDataset):
        _check_voc_pairing(dataset, report)
    return report


def main_doctor(spec: str, progress: bool = True) -> int:
    """Print the report of ``spec``; return the exit status (0 when ok, 1 otherwise)."""
    report = diagnose(spec, progress=progress)
    print(report.format())
    return 0 if report.ok else 1


def _attempt(report: DoctorReport, read: Callable[..., Any], *args: Any) -> Any:
    """``read(*args)``, or None after recording its DataError."""
    try:
        return read(*args)
    except DataError as err:
        report.error(err.kind, str(err))
        return None


def _check_voc_sample(dataset: VOCDataset, sample_id: str, report: DoctorReport) -> None:
    """Check the image, XML and mask of one VOC id separately."""
    image_path = dataset.image_path(sample_id)
    image = _attempt(report, read_image, image_path)
    size = image.shape[:2] if image is not None else None
    if image is not None:
        _warn_image(image_path, report)
    has_xml = dataset.xml_path(sample_id).is_file()
    ann = _attempt(report, dataset.read_annotation, sample_id) if has_xml else None
    mask_path = dataset.mask_path(sample_id)
    if not has_xml and mask_path is None:
        report.warn("no annotation XML and no mask", str(image_path))
    mask = None
    if mask_path is not None:
        report.count("samples with a mask")
        mask = _attempt(report, read_label_png, mask_path, len(dataset.classes), size)
    if ann is not None:
        _check_voc_annotation(dataset, ann, size, mask, report)


def _check_voc_annotation(
    dataset: VOCDataset,
    ann: VOCAnnotation,
    size: tuple[int, int] | None,
    mask: np.ndarray | None,
    report: DoctorReport,
) -> None:
    if size and ann.height and (ann.height, ann.width) != tuple(size):
        detail = f"<size> says {ann.width}x{ann.height}, the image is {size[1]}x{size[0]}"
        report.warn(IMAGE_SIZE, f"{ann.path}: {detail}")
    size = size or ((ann.height, ann.width) if ann.height and ann.width else None)
    for k, obj in enumerate(ann.objects):
        label = dataset.classes.index(obj.name)
        if not label:
            report.error(UNKNOWN_CLASS, f"{ann.path}: object {k}: unknown class {obj.name!r}")
        elif _check_voc_box(obj, size, f"{ann.path}: object {k} ({obj.name})", report):
            _count_box(obj.box, label, obj.difficult, obj.truncated, mask, report)


def _check_voc_box(
    obj: VOCObject, size: tuple[int, int] | None, where: str, report: DoctorReport
) -> bool:
    """Record the box's problem; True unless it is invalid."""
    if size is None:
        return True
    problem = box_problems(np.array(obj.box), *size)[0]
    if problem == BOX_EXTENDS_OUTSIDE:
        report.warn(BOX_EXTENDS_OUTSIDE, f"{where}: {problem}")
    elif problem:
        report.error(box_problem_kind(problem), f"{where}: {problem}")
        return False
    return True


def _count_box(
    box: Any,
    label: int,
    difficult: bool,
    truncated: bool,
    mask: np.ndarray | None,
    report: DoctorReport,
) -> None:
    """Info counts for one valid box; ``mask`` (if any) tells whether its class has pixels."""
    report.count("boxes")
    report.count("difficult boxes", int(difficult))
    report.count("truncated boxes", int(truncated))
    if mask is not None:
        x1, y1, x2, y2 = pixel_box(np.asarray(box), *mask.shape)
        if not np.any(mask[y1:y2, x1:x2] == label):
            report.count(NO_PIXELS)
            report.count(NO_PIXELS_DIFFICULT, int(difficult))


def _check_loaded_sample(dataset: Dataset, sample_id: str, report: DoctorReport) -> None:
    """Formats other than VOC: load the sample and check what came back."""
    try:
        sample: Sample = dataset.load(sample_id)
    except DataError as err:
        report.error(err.kind, str(err))
        return
    if sample.mask is not None:
        report.count("samples with a mask")
    if sample.source:
        _warn_image(sample.source, report)
    problems = box_problems(sample.boxes, sample.height, sample.width)
    for k, box in enumerate(sample.boxes):
        if problems[k]:  # readers raise for the fatal ones, so only border crossings remain
            report.warn(problems[k], f"{sample.source}: box {k}: {problems[k]}")
        label, difficult = int(sample.box_labels[k]), bool(sample.difficult[k])
        _count_box(box, label, difficult, bool(sample.truncated[k]), sample.mask, report)


def _warn_image(path: Any, report: DoctorReport) -> None:
    """16-bit pixels (scaled to 8 bits) and EXIF rotations (not applied) are worth a look."""
    for kind, detail in image_warnings(path):
        report.warn(kind, detail)


def _check_voc_pairing(dataset: VOCDataset, report: DoctorReport) -> None:
    """XMLs and masks without an image, and images that are in no sample."""
    images = image_stems(dataset.root / "JPEGImages")
    for path in sorted((dataset.root / "Annotations").glob("*.xml")):
        if path.stem not in images:
            report.warn("annotation XML without image", str(path))
    for folder in MASK_FOLDERS:
        for path in sorted((dataset.root / folder).glob("*.png")):
            if path.stem not in images:
                report.warn("mask without image", str(path))
    if dataset.split is None:
        report.count(
            "images with no XML and no mask (not samples)", len(set(images) - set(dataset.ids))
        )
