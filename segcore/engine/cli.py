"""Running a command-line tool so that a user's mistake reads as one line, not a traceback.

The errors in :data:`USER_ERRORS` are raised for bad input from the user (a config key, a weight
file, a dataset name, an output folder, an image) and name what is wrong. :func:`run_cli` prints
such an error as ``<prog>: error: <message>`` on stderr and exits with status 1; any other
exception is a bug and keeps its traceback. A user error raised in a worker process started by
:func:`~segcore.engine.launch` is raised again in the launcher as it is, and reported the same way.

Tests call the tools' ``cli()`` / ``main()`` functions directly and see the exceptions themselves;
only the ``if __name__ == "__main__"`` entry goes through :func:`run_cli`.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Callable, NoReturn, Optional

from segcore.checkpoint import AmbiguousMatchError, CheckpointReadError, IncompleteWeightsError, NonFiniteWeightsError
from segcore.config import ConfigError
from segcore.data import UnknownDatasetError
from segcore.data.detection_utils import ImageReadError, LabelOutOfRangeError, SizeMismatchError
from segcore.export.errors import ExportedFilesError, ExportedInputError, ExportError

from .output_lock import OutputDirError

__all__ = ["USER_ERRORS", "UserErrorExit", "run_cli", "user_error_message"]

#: errors that describe a mistake in the user's input, each with a message naming it
USER_ERRORS = (ConfigError, CheckpointReadError, NonFiniteWeightsError, IncompleteWeightsError, AmbiguousMatchError,
               UnknownDatasetError, OutputDirError, ImageReadError, SizeMismatchError, LabelOutOfRangeError,
               FileNotFoundError, ExportError, ExportedFilesError, ExportedInputError)

#: the exit status of a command stopped by a user error
USER_ERROR_STATUS = 1


class UserErrorExit(SystemExit):
    """The ``SystemExit`` :func:`run_cli` raises for a user error; ``message`` is what it printed."""

    def __init__(self, message: str):
        super().__init__(USER_ERROR_STATUS)
        self.message = message


def user_error_message(error: BaseException) -> Optional[str]:
    """The message for ``error`` if it is one of :data:`USER_ERRORS`, else None."""
    return str(error) if isinstance(error, USER_ERRORS) else None


def run_cli(main: Callable[[], Any], prog: Optional[str] = None) -> Any:
    """Call ``main()``; report a user error on stderr and exit with status 1.

    Args:
        main: the tool's entry function (no arguments; it parses ``sys.argv`` itself).
        prog: the tool's name for the message (default: ``sys.argv[0]``'s file name).

    Returns:
        what ``main()`` returns.

    Raises:
        UserErrorExit: ``main()`` raised one of :data:`USER_ERRORS` (a ``SystemExit`` with status 1).
        Any other exception ``main()`` raises, unchanged (with its traceback).
    """
    try:
        return main()
    except Exception as e:  # noqa: BLE001 - user errors are reported; everything else is re-raised
        message = user_error_message(e)
        if message is None:
            raise
        _exit(prog, message)


def _exit(prog: Optional[str], message: str) -> NoReturn:
    name = prog or os.path.basename(sys.argv[0]) or "segcore"
    print(f"{name}: error: {message}", file=sys.stderr, flush=True)
    raise UserErrorExit(message)
