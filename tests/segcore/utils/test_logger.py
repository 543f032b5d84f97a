"""segcore.utils.logger.setup_logger: one handler per logger, each record printed once."""
import contextlib
import io
import logging
import uuid

import pytest

from segcore.utils.logger import setup_logger


@pytest.fixture
def restore_loggers():
    """Remove, after the test, the handlers the test added to the loggers it names."""
    saved = {}

    def track(name: str) -> logging.Logger:
        logger = logging.getLogger(name)
        saved.setdefault(name, (list(logger.handlers), logger.propagate, logger.level))
        return logger

    yield track
    for name, (handlers, propagate, level) in saved.items():
        logger = logging.getLogger(name)
        for handler in logger.handlers[:]:
            if handler not in handlers:
                logger.removeHandler(handler)
        logger.propagate, logger.level = propagate, level


def _unique_name() -> str:
    return f"segcore_test_{uuid.uuid4().hex[:8]}"


def test_setup_logger_twice_adds_one_console_handler(restore_loggers, tmp_path, capsys):
    name = _unique_name()
    restore_loggers(name)
    setup_logger(name=name)
    setup_logger(name=name)
    setup_logger(str(tmp_path), name=name, color=False)  # other arguments: still one console handler
    logger = logging.getLogger(name)
    logger.info("one-line-please")
    captured = capsys.readouterr()
    assert (captured.out + captured.err).count("one-line-please") == 1
    # one file handler per file; a second file gets its own
    setup_logger(str(tmp_path), name=name)
    setup_logger(str(tmp_path / "other.log"), name=name)
    logger.info("to-the-files")
    for handler in logger.handlers:
        handler.flush()
    assert (tmp_path / "log.txt").read_text().count("to-the-files") == 1
    assert (tmp_path / "other.log").read_text().count("to-the-files") == 1
    assert len(logger.handlers) == 3


def test_default_setup_then_demo_setup_prints_once(restore_loggers, tmp_path, capsys):
    """The quickstart's sequence: training's default_setup (console + log.txt), then the demo's setup."""
    restore_loggers("segcore")
    restore_loggers("fvcore")
    setup_logger(str(tmp_path), name="fvcore")
    setup_logger(str(tmp_path))
    setup_logger(name="fvcore")
    setup_logger(name="segcore")
    logging.getLogger("segcore.demo").info("semantic map with 10 classes in 0.06s")
    captured = capsys.readouterr()
    assert (captured.out + captured.err).count("semantic map with 10 classes") == 1


def test_no_second_copy_through_the_root_logger(restore_loggers, capsys):
    name = _unique_name()
    restore_loggers(name)
    root = restore_loggers("")
    root_handler = logging.StreamHandler()  # stderr, at the time of the test (captured)
    root.addHandler(root_handler)
    setup_logger(name=name)
    logging.getLogger(name + ".child").warning("only-once")
    captured = capsys.readouterr()
    assert (captured.out + captured.err).count("only-once") == 1
    setup_logger(name=name, enable_propagation=True)  # asked for: the root handler prints it too
    logging.getLogger(name).warning("twice-now")
    captured = capsys.readouterr()
    assert (captured.out + captured.err).count("twice-now") == 2


def test_console_handler_follows_sys_stdout(restore_loggers):
    name = _unique_name()
    restore_loggers(name)
    logger = setup_logger(name=name, color=False)
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        logger.info("redirected-line")
    assert "redirected-line" in buffer.getvalue()


def test_detached_log_files_receive_nothing_from_the_next_run(restore_loggers, tmp_path):
    """Two runs in one process (the quickstart's --all): the first run's log file handlers are
    detached before the second sets up its own, so each log.txt holds its own run only."""
    from segcore.utils.logger import detach_log_file_handlers, log_file_handlers

    name = _unique_name()
    logger = restore_loggers(name)
    before = log_file_handlers()
    setup_logger(str(tmp_path / "a"), name=name, color=False)
    added = log_file_handlers() - before
    assert [h for lg, h in added if lg is logger]  # the file handler of run a
    logger.info("first run")
    detach_log_file_handlers(added)
    assert log_file_handlers() == before
    setup_logger(str(tmp_path / "b"), name=name, color=False)
    logger.info("second run")
    for handler in logger.handlers:
        handler.flush()
    log_a = (tmp_path / "a" / "log.txt").read_text()
    log_b = (tmp_path / "b" / "log.txt").read_text()
    assert "first run" in log_a and "second run" not in log_a
    assert "second run" in log_b and "first run" not in log_b
