"""Atomic file writes: a reader sees the old file or the whole new one, never a partial one.

Every cache and artifact in reclib is written through :func:`atomic_write`: the bytes go to a
temporary file in the target folder, are flushed to disk, and the temporary file is renamed over
the target (``os.replace`` is atomic on POSIX and Windows when both paths share a file system).
The file gets the permissions a plain ``open(path, "w")`` would give (``0666`` less the umask),
not the private ``0600`` of a temporary file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_bytes", "check_writable_folder"]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` when the block succeeds.

    The block writes to the yielded path (with any library: ``df.to_parquet(tmp)``,
    ``np.save(tmp, ...)``). If the block raises, the temporary file is removed and ``path``
    keeps its previous content. ``mode`` is accepted for symmetry with ``open`` and unused.
    """
    del mode
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    os.chmod(tmp_name, 0o666 & ~_umask())       # mkstemp's 0600 -> the mode ``open`` would give
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask() -> int:
    """The process's file-mode creation mask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def check_writable_folder(name: str, folder: str | os.PathLike[str]) -> Path:
    """``folder`` created if needed and checked by writing (and removing) a temporary file in it,
    so a run finds an unwritable output folder before any work; else ``ValueError`` naming
    ``name`` (the argument or flag) and the folder."""
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise ValueError(f"{name} {str(path)!r}: cannot create or write this folder "
                         f"({err.strerror or err})") from None
    return path
