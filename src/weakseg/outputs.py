"""Where commands write: checked before any work starts, created with the modes users expect.

Every command that writes checks its output folders and files first (:func:`writable_dir`,
:func:`writable_file`), so a typo'd or read-only ``--out`` fails in a second with one line naming
it instead of after an hour of computing. Atomic writers create a temporary file with
``tempfile.mkstemp`` (mode 0600) and rename it into place; :func:`umask_mode` gives them the mode
an ordinary ``open`` would have used (0644 under the usual umask 022).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def umask_mode(mode: int = 0o666) -> int:
    """``mode`` less the process umask: what ``open(path, "w")`` would create."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def writable_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Create ``path`` (and parents) if needed and prove a file can be written in it.

    Raises ValueError naming ``path`` when it is an existing file, cannot be created, or is not
    writable (checked by writing, which also catches read-only mounts that ``os.access`` misses).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what} {path} is an existing file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".weakseg-write-test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ValueError(f"cannot write to {what} {path}: {err.strerror or err}") from None
    return path


def writable_file(path: str | os.PathLike, what: str = "output file") -> Path:
    """Check that ``path`` can be written: its folder is writable and it is not a folder."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {path} is an existing folder, not a file")
    writable_dir(path.parent, f"folder of the {what}")
    return path
