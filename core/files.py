"""Writing files so that a crash never leaves one half-written: one way to do it, used everywhere."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_durably(path: Path, data: str | bytes) -> None:
    """Write (text as UTF-8) and fsync: once this returns, a crash cannot leave the file half-written on disk.

    For a file no reader sees until something else points at it (a part or an
    index version before it is renamed or made CURRENT).
    """
    with open(path, "wb") as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        handle.flush()
        os.fsync(handle.fileno())


def replace_atomically(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` so a reader sees the old file or the new one, never a mix.

    Written to a temporary file in the same folder, fsynced, renamed over
    ``path``; then the folder is fsynced, so the rename itself survives a crash.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write_durably(Path(tmp), data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
