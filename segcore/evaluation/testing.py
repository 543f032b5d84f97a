"""Result formatting and checking, as in Detectron2's ``evaluation/testing.py``."""
from __future__ import annotations

import logging
import pprint
import sys
from collections.abc import Mapping

import numpy as np

__all__ = ["flatten_results_dict", "print_csv_format", "verify_results"]


def print_csv_format(results: Mapping) -> None:
    """Log the main metrics of each task in a copy-paste friendly csv form.

    For ``{task: {metric: value}}``, three lines per task are logged (logger
    ``segcore.evaluation.testing``): ``copypaste: Task: <task>``, the metric names, and the values
    with 4 decimals. Per-class metrics (names containing "-", e.g. ``IoU-wall``) are left out.
    A non-dict value is logged as ``copypaste: <task>=<value>``.

    Raises:
        TypeError: ``results`` is not a mapping.
    """
    if not isinstance(results, Mapping):
        raise TypeError(f"print_csv_format expects a dict of results, got {type(results).__name__}")
    logger = logging.getLogger(__name__)
    for task, res in results.items():
        if isinstance(res, Mapping):
            important_res = [(k, v) for k, v in res.items() if "-" not in k]
            logger.info(f"copypaste: Task: {task}")
            logger.info("copypaste: " + ",".join(k for k, _ in important_res))
            logger.info("copypaste: " + ",".join(f"{v:.4f}" for _, v in important_res))
        else:
            logger.info(f"copypaste: {task}={res}")


def verify_results(cfg, results: Mapping) -> bool:
    """Check ``results`` against ``cfg.TEST.EXPECTED_RESULTS``.

    ``TEST.EXPECTED_RESULTS`` is a list of ``[task, metric, expected value, tolerance]``. A
    failure is logged (and the process exits with status 1, as Detectron2).

    Returns:
        bool: True when every expected value matches within its tolerance (or there is none).
    """
    expected_results = cfg.TEST.EXPECTED_RESULTS
    if not len(expected_results):
        return True
    ok = True
    for task, metric, expected, tolerance in expected_results:
        actual = results.get(task, {}).get(metric, None)
        if actual is None:
            ok = False
            continue
        if not np.isfinite(actual):
            ok = False
            continue
        diff = abs(actual - expected)
        if diff > tolerance:
            ok = False
    logger = logging.getLogger(__name__)
    if not ok:
        logger.error("Result verification failed!")
        logger.error("Expected Results: " + str(expected_results))
        logger.error("Actual Results: " + pprint.pformat(results))
        sys.exit(1)
    else:
        logger.info("Results verification passed.")
    return ok


def flatten_results_dict(results: Mapping) -> dict:
    """Flatten nested dicts into one level with "/"-joined keys: ``{"a": {"b": 1}} -> {"a/b": 1}``."""
    r = {}
    for k, v in results.items():
        if isinstance(v, Mapping):
            for kk, vv in flatten_results_dict(v).items():
                r[f"{k}/{kk}"] = vv
        else:
            r[k] = v
    return r
