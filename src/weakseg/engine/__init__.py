"""Training loop, distributed helpers and evaluation (confusion-matrix mIoU)."""
