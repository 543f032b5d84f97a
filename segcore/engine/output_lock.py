"""One run per output folder: claiming ``cfg.OUTPUT_DIR`` for the process that writes into it.

:func:`lock_output_dir` creates the folder, checks that files can be written in it and takes an
exclusive OS lock (``fcntl.flock``) on ``<OUTPUT_DIR>/.lock``, writing the holder's pid, host,
start time and command line into that file. A second run on the same folder (on this machine, or
on another one that shares the file system) is refused with :class:`OutputDirInUseError`, which
names the folder and the holder. The OS releases the lock when its holder exits, however it exits
(``kill -9`` included), so a dead run never leaves the folder locked; the file itself stays.

A process holds at most one such lock: locking another folder releases the previous one, locking
the same folder again keeps it (so one process may run ``default_setup`` several times, e.g. a
training then an evaluation, or many tests). Children forked by the holder (data-loader workers)
do not keep the lock: their copy of its descriptor is closed at fork, so a killed run's workers,
which live on for a few seconds, do not block the run that resumes it.

Where the file system has no ``flock`` (some network mounts) or the platform has no ``fcntl``,
the folder is used without a lock and a warning says so.
"""
from __future__ import annotations

import errno
import json
import logging
import multiprocessing
import os
import socket
import sys
import threading
import time
from typing import Any

try:
    import fcntl
except ImportError:  # not a POSIX platform
    fcntl = None

__all__ = ["LOCK_FILE_NAME", "OutputDirError", "OutputDirInUseError", "OutputDirLock", "lock_output_dir",
           "release_output_dir_lock"]

#: the lock file's name inside the output folder
LOCK_FILE_NAME = ".lock"

#: errors of a file system that cannot lock (the folder is then used without a lock)
_LOCKING_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}

logger = logging.getLogger(__name__)


def _describe(path: str) -> str:
    absolute = os.path.abspath(path)
    return repr(path) if absolute == path else f"{path!r} ({absolute})"


class OutputDirError(OSError):
    """The output folder cannot be used by this run.

    ``str(error)`` is one line naming the folder and the reason, e.g.
    ``OUTPUT_DIR 'out' (/abs/out) cannot be used: it is a file, not a folder``.

    Attributes:
        path: the folder, as given.
        reason: why it cannot be used ("it is a file, not a folder", "permission denied ...",
            "read-only file system ...", or the holder of the lock for :class:`OutputDirInUseError`).
    """

    def __init__(self, path: str, reason: str):
        super().__init__(f"OUTPUT_DIR {_describe(path)} cannot be used: {reason}")
        self.path = path
        self.reason = reason

    def __reduce__(self):  # pickled by the launcher's workers: rebuilt from the same arguments
        return (type(self), (self.path, self.reason))


class OutputDirInUseError(OutputDirError):
    """Another live process holds the output folder's lock.

    Attributes:
        path: the folder, as given.
        holder: what the holder wrote into the lock file (``pid``, ``launcher_pid`` (the process
            that started it with :func:`~segcore.engine.launch`, else ``None``), ``host``,
            ``started``, ``command``), or ``None`` when it could not be read.
    """

    def __init__(self, path: str, holder: dict[str, Any] | None):
        if holder:
            launcher = f" (a worker of pid {holder['launcher_pid']})" if holder.get("launcher_pid") else ""
            who = (f"pid {holder.get('pid', '?')}{launcher} on host {holder.get('host', '?')}, started "
                   f"{holder.get('started', '?')}: {holder.get('command', '?')}")
        else:
            who = f"its pid and host could not be read from {os.path.join(path, LOCK_FILE_NAME)}"
        super().__init__(path, f"another run is using it ({who}). Wait for that run to end or stop it, "
                               f"or give this one another folder (OUTPUT_DIR <folder> on the command line)")
        self.holder = holder

    def __reduce__(self):
        return (type(self), (self.path, self.holder))


def _os_reason(e: OSError, action: str) -> str:
    if isinstance(e, PermissionError):
        return f"permission denied (cannot {action})"
    if e.errno == errno.EROFS:
        return f"read-only file system (cannot {action})"
    return f"{e.strerror or e} (cannot {action})"


def _first_file_above(path: str) -> str | None:
    """The deepest existing component of ``path`` (itself or a parent) that is not a folder."""
    current = os.path.abspath(path)
    while True:
        if os.path.exists(current):
            return None if os.path.isdir(current) else current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def _make_folder(path: str) -> None:
    file = _first_file_above(path)
    if file is not None:
        where = "it is" if file == os.path.abspath(path) else f"{file!r} (a parent) is"
        raise OutputDirError(path, f"{where} a file, not a folder")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise OutputDirError(path, _os_reason(e, "create it")) from e


class OutputDirLock:
    """The lock on one output folder, held by this process until :meth:`release` or its exit.

    Made by :func:`lock_output_dir`; usable as a context manager (releases on exit).

    Attributes:
        path: the folder, as given.
        lock_file: ``<path>/.lock``.
        holder: what was written into the lock file (``pid``, ``launcher_pid``, ``host``,
            ``started``, ``command``).
        locked: whether the OS lock is held (``False`` after :meth:`release`, or where the file
            system cannot lock).
    """

    def __init__(self, path: str, fd: int | None, holder: dict[str, Any]):
        self.path = path
        self.lock_file = os.path.join(path, LOCK_FILE_NAME)
        self.holder = holder
        self._fd = fd

    @property
    def locked(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Release the lock (closing its file); does nothing when it is not held."""
        global _held
        with _guard:
            if self._fd is not None:
                os.close(self._fd)  # closing the last descriptor releases the flock
                self._fd = None
            if _held is self:
                _held = None

    def _forget_in_child(self) -> None:
        """In a forked child: close the inherited descriptor, so the lock dies with the parent."""
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None

    def __enter__(self) -> "OutputDirLock":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"OutputDirLock({self.path!r}, locked={self.locked})"


_guard = threading.Lock()
_held: OutputDirLock | None = None


def _after_fork_in_child() -> None:
    global _guard, _held
    _guard = threading.Lock()  # another thread of the parent may have held it at the fork
    if _held is not None:
        _held._forget_in_child()
        _held = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _read_holder(fd: int) -> dict[str, Any] | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = os.read(fd, 65536)
        holder = json.loads(data.decode("utf-8"))
    except (OSError, ValueError):  # empty (the holder is writing it) or not ours
        return None
    return holder if isinstance(holder, dict) else None


def _write_holder(fd: int) -> dict[str, Any]:
    parent = multiprocessing.parent_process()  # the launcher, in a worker it spawned
    holder = {
        "pid": os.getpid(),
        "launcher_pid": parent.pid if parent is not None else None,
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
    }
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, (json.dumps(holder) + "\n").encode("utf-8"))
    return holder


def lock_output_dir(path: str) -> OutputDirLock:
    """Create the output folder ``path`` if needed and lock it for this process.

    If this process already holds the lock of ``path`` (the same folder, by its real path), that
    lock is returned; if it holds another folder's, that one is released first.

    Args:
        path: the output folder (``cfg.OUTPUT_DIR``), relative or absolute.

    Returns:
        The lock, held until :meth:`OutputDirLock.release`, :func:`release_output_dir_lock`, the
        next call with another folder, or the end of the process.

    Raises:
        OutputDirError: ``path`` or a parent is a file, or the folder cannot be created or written
            in (permission denied, read-only file system, ...); the message names it and says why.
        OutputDirInUseError: another live process holds the lock; the message names the folder
            and that process (pid, host, start time, command).
    """
    global _held
    _make_folder(path)
    real = os.path.realpath(path)
    with _guard:
        if _held is not None and os.path.realpath(_held.path) == real and _held.locked:
            return _held
    release_output_dir_lock()
    lock_file = os.path.join(path, LOCK_FILE_NAME)
    try:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by exec'd children
    except IsADirectoryError as e:
        raise OutputDirError(path, f"{lock_file!r} is a folder") from e
    except OSError as e:
        raise OutputDirError(path, _os_reason(e, "write in it")) from e
    if fcntl is None:
        logger.warning(f"OUTPUT_DIR {_describe(path)}: no fcntl on this platform, used without a lock")
        os.close(fd)
        return OutputDirLock(path, None, {})
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as e:
        holder = _read_holder(fd)
        os.close(fd)
        raise OutputDirInUseError(path, holder) from e
    except OSError as e:
        os.close(fd)
        if e.errno in _LOCKING_UNSUPPORTED:
            logger.warning(f"OUTPUT_DIR {_describe(path)}: the file system cannot lock files ({e.strerror}); "
                           "used without a lock, so nothing stops a second run from writing into it")
            return OutputDirLock(path, None, {})
        raise OutputDirError(path, _os_reason(e, f"lock {lock_file}")) from e
    try:
        holder = _write_holder(fd)
    except OSError as e:  # e.g. a full disk
        os.close(fd)
        raise OutputDirError(path, _os_reason(e, "write in it")) from e
    lock = OutputDirLock(path, fd, holder)
    with _guard:
        _held = lock
    return lock


def release_output_dir_lock() -> None:
    """Release this process's output-folder lock, if it holds one (the end of the process does it
    too). Safe to call at any time."""
    with _guard:
        held = _held
    if held is not None:
        held.release()
