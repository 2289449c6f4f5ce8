"""weakseg: semantic segmentation from weak labels."""

__version__ = "0.1.0"
