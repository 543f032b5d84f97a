"""Atomic file writes: a file holds either its old content or the complete new one, never a part."""
from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Callable

from segcore.utils.file_io import PathManager

__all__ = ["atomic_write"]


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(dirname: str) -> None:
    """Persist a rename in ``dirname`` (best effort: not all platforms can open folders)."""
    try:
        fd = os.open(dirname, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str, write_fn: Callable[[IO[bytes]], None], path_manager=PathManager) -> None:
    """Write a file so that ``path`` holds either its old content or the complete new one.

    ``write_fn(f)`` writes to a temporary file ``.<name>.<random>.tmp`` in the same folder,
    which is then flushed, ``fsync`` ed and renamed onto ``path`` (``os.replace``, atomic on
    POSIX and Windows). If ``write_fn`` raises, the temporary file is removed and the error
    propagates. Non-local paths (``scheme://``) are written directly through ``path_manager``.

    Args:
        path: destination file.
        write_fn: writes the content to the binary file object it is given.
    """
    if "://" in path:
        with path_manager.open(path, "wb") as f:
            write_fn(f)
        return
    dirname = os.path.dirname(os.path.abspath(path))
    os.makedirs(dirname, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=dirname)
    try:
        with os.fdopen(fd, "wb") as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_path, 0o666 & ~_current_umask())  # mkstemp creates 0600
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_path)
        raise
    _fsync_dir(dirname)


