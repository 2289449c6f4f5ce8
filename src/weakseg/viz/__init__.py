"""Visualisation: VOC palette and label PNGs (palette), overlays and strips (overlay), matplotlib
figures (plots). Only the light palette helpers are re-exported here; overlay needs OpenCV and
plots needs matplotlib, so import those submodules where they are used."""

from weakseg.viz.palette import VOC_PALETTE, colorize, read_label_png, save_label_png, voc_colormap

__all__ = ["VOC_PALETTE", "colorize", "read_label_png", "save_label_png", "voc_colormap"]
