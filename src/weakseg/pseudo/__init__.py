"""Pseudo-label generators: box -> label map. One file each, one interface (see base.py)."""
