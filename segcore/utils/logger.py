"""Logging setup and rate-limited logging, as in Detectron2's ``utils/logger.py``.

:func:`setup_logger` configures a named logger with a colourful console handler (main process
only) and a plain file handler (``<output>/log.txt``, ``log.txt.rank<R>`` on other ranks).
:func:`log_first_n`, :func:`log_every_n` and :func:`log_every_n_seconds` limit how often a
call site logs.
"""
from __future__ import annotations

import atexit
import functools
import logging
import os
import sys
import time
from collections import Counter

from termcolor import colored

from .file_io import PathManager

__all__ = ["detach_log_file_handlers", "log_every_n", "log_every_n_seconds", "log_file_handlers", "log_first_n",
           "setup_logger"]

_LOG_FORMAT = "[%(asctime)s] %(name)s %(levelname)s: %(message)s"
_DATE_FORMAT = "%m/%d %H:%M:%S"


class _ColorfulFormatter(logging.Formatter):
    """Console formatter: green time and (abbreviated) logger name, coloured WRN / ERROR tags."""

    def __init__(self, *args, root_name: str, abbrev_name: str = "", **kwargs):
        self._root_name = root_name + "."
        self._abbrev_name = abbrev_name + "." if abbrev_name else ""
        super().__init__(*args, **kwargs)

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.name = record.name.replace(self._root_name, self._abbrev_name)
        log = super().formatMessage(record)
        if record.levelno == logging.WARNING:
            prefix = colored("WRN", "red", attrs=["blink"])
        elif record.levelno in (logging.ERROR, logging.CRITICAL):
            prefix = colored("ERROR", "red", attrs=["blink", "underline"])
        else:
            return log
        return prefix + " " + log


class _StdoutHandler(logging.StreamHandler):
    """A console handler that writes to the *current* ``sys.stdout``, looked up at every record.

    A plain ``StreamHandler(sys.stdout)`` keeps the stream of the moment it was made, so after
    ``sys.stdout`` is replaced (``contextlib.redirect_stdout``, pytest's capture) it writes to the
    old one; this handler follows the replacement.
    """

    def __init__(self):
        super().__init__(stream=sys.stdout)

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ / setStream assign it: always sys.stdout
        pass


#: attribute marking the handlers setup_logger added: the console one (True), a file one (its path)
_CONSOLE_MARK = "_segcore_console"
_FILE_MARK = "_segcore_log_file"


def _has_marked_handler(logger: logging.Logger, mark: str, value) -> bool:
    return any(getattr(h, mark, None) == value for h in logger.handlers)


def setup_logger(
    output: str | None = None,
    distributed_rank: int = 0,
    *,
    color: bool = True,
    name: str = "segcore",
    abbrev_name: str | None = None,
    enable_propagation: bool = False,
    configure_stdout: bool = True,
) -> logging.Logger:
    """Initialize the logger ``name`` and set its level to DEBUG (as Detectron2's ``setup_logger``).

    Idempotent per logger: a logger gets at most one console handler and one handler per log
    file, however often (and with whatever other arguments) this is called, so a program that
    sets up ``segcore`` twice (e.g. ``default_setup`` with an output folder, then the demo
    without) prints every record once. Records do not propagate to the parent (root) logger
    unless ``enable_propagation``, so a handler there does not print them a second time.

    Args:
        output: a file name (ending in ``.txt`` or ``.log``) or a directory (the log goes to
            ``<output>/log.txt``); ``None`` for no file. Ranks > 0 write ``<file>.rank<R>``.
        distributed_rank: rank of this process; only rank 0 logs to the console.
        color: colourful console output (decided by the call that adds the console handler).
        name: the root name of the logger to configure.
        abbrev_name: shown instead of ``name`` on the console (default: ``"sc"`` for
            ``"segcore"``, else ``name``).
        enable_propagation: also pass records to the parent (root) logger.
        configure_stdout: add the console handler (to the current ``sys.stdout``) if the logger
            has none yet.

    Returns:
        logging.Logger: the configured logger.
    """
    logger = logging.getLogger(name)
    logger.setLevel(logging.DEBUG)
    logger.propagate = enable_propagation

    if abbrev_name is None:
        abbrev_name = "sc" if name == "segcore" else name

    plain_formatter = logging.Formatter(_LOG_FORMAT, datefmt=_DATE_FORMAT)
    if configure_stdout and distributed_rank == 0 and not _has_marked_handler(logger, _CONSOLE_MARK, True):
        ch = _StdoutHandler()
        ch.setLevel(logging.DEBUG)
        if color:
            formatter: logging.Formatter = _ColorfulFormatter(
                colored("[%(asctime)s %(name)s]: ", "green") + "%(message)s",
                datefmt=_DATE_FORMAT,
                root_name=name,
                abbrev_name=str(abbrev_name),
            )
        else:
            formatter = plain_formatter
        ch.setFormatter(formatter)
        setattr(ch, _CONSOLE_MARK, True)
        logger.addHandler(ch)

    if output is not None:
        if output.endswith(".txt") or output.endswith(".log"):
            filename = output
        else:
            filename = os.path.join(output, "log.txt")
        if distributed_rank > 0:
            filename = filename + f".rank{distributed_rank}"
        if not _has_marked_handler(logger, _FILE_MARK, filename):
            PathManager.mkdirs(os.path.dirname(filename) or ".")
            fh = logging.StreamHandler(_cached_log_stream(filename))
            fh.setLevel(logging.DEBUG)
            fh.setFormatter(plain_formatter)
            setattr(fh, _FILE_MARK, filename)
            logger.addHandler(fh)
    return logger


def log_file_handlers() -> set:
    """The ``(logger, handler)`` pairs of every handler that :func:`setup_logger` attached to write
    a log file, on any logger."""
    loggers = [logging.getLogger()] + [lg for lg in logging.Logger.manager.loggerDict.values()
                                      if isinstance(lg, logging.Logger)]
    return {(lg, h) for lg in loggers for h in lg.handlers if getattr(h, _FILE_MARK, None)}


def detach_log_file_handlers(pairs) -> None:
    """Flush and remove the ``(logger, handler)`` pairs of :func:`log_file_handlers` (e.g. those a
    finished run added, before the next run in the same process sets up its own ``log.txt``). The
    files stay open for a later :func:`setup_logger` of the same path."""
    for lg, handler in pairs:
        handler.flush()
        lg.removeHandler(handler)


@functools.lru_cache(maxsize=None)
def _cached_log_stream(filename: str):
    """One append-mode stream per log file, shared by all loggers that write to it."""
    io = PathManager.open(filename, "a", buffering=_get_log_stream_buffer_size(filename))
    atexit.register(io.close)
    return io


def _get_log_stream_buffer_size(filename: str) -> int:
    if "://" not in filename:
        return -1  # local file: default buffering
    return 1024 * 1024  # remote file systems: flush less often


# ----------------------------------------------------------------------------------------------
# Rate-limited logging
# ----------------------------------------------------------------------------------------------
def _find_caller() -> tuple[str, tuple[str, int, str]]:
    """The calling module's name and (file, line, function) of the first frame outside this file."""
    frame = sys._getframe(2)
    while frame:
        code = frame.f_code
        if os.path.join("utils", "logger.") not in code.co_filename:
            mod_name = frame.f_globals.get("__name__", "segcore")
            if mod_name == "__main__":
                mod_name = "segcore"
            return mod_name, (code.co_filename, frame.f_lineno, code.co_name)
        frame = frame.f_back
    return "segcore", ("", 0, "")


_LOG_COUNTER: Counter = Counter()
_LOG_TIMER: dict = {}


def log_first_n(lvl: int, msg: str, n: int = 1, *, name: str | None = None, key: str | tuple = "caller") -> None:
    """Log ``msg`` only the first ``n`` times (per key).

    Args:
        lvl: logging level, e.g. ``logging.INFO``.
        n: how many times to log.
        name: logger name (default: the calling module's).
        key: what identifies "the same" message: ``"caller"`` (the call site), ``"message"``,
            or a tuple of both.
    """
    if isinstance(key, str):
        key = (key,)
    if not key or not set(key) <= {"caller", "message"}:
        raise ValueError(f"log_first_n: key must be 'caller', 'message' or both, got {key!r}")
    caller_module, caller_key = _find_caller()
    hash_key: tuple = ()
    if "caller" in key:
        hash_key = hash_key + caller_key
    if "message" in key:
        hash_key = hash_key + (msg,)
    _LOG_COUNTER[hash_key] += 1
    if _LOG_COUNTER[hash_key] <= n:
        logging.getLogger(name or caller_module).log(lvl, msg)


def log_every_n(lvl: int, msg: str, n: int = 1, *, name: str | None = None) -> None:
    """Log ``msg`` once every ``n`` calls from the same call site (the 1st, n+1-th, ...)."""
    caller_module, key = _find_caller()
    _LOG_COUNTER[key] += 1
    if n == 1 or _LOG_COUNTER[key] % n == 1:
        logging.getLogger(name or caller_module).log(lvl, msg)


def log_every_n_seconds(lvl: int, msg: str, n: float = 1, *, name: str | None = None) -> None:
    """Log ``msg`` at most once every ``n`` seconds from the same call site."""
    caller_module, key = _find_caller()
    last_logged = _LOG_TIMER.get(key, None)
    current_time = time.time()
    if last_logged is None or current_time - last_logged >= n:
        logging.getLogger(name or caller_module).log(lvl, msg)
        _LOG_TIMER[key] = current_time
