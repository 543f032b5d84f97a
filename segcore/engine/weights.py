"""Loading the weights of a model that is going to be evaluated or run on images.

Evaluation (``train_net.py --eval-only``), :class:`~segcore.engine.DefaultPredictor` and the demo
report results, so they must not run a model that did not get its weights: a missing or
mismatched entry, or no ``MODEL.WEIGHTS`` at all, is an error unless the config says
``MODEL.ALLOW_PARTIAL_WEIGHTS: True``; NaN or infinite weights are an error unless
``MODEL.ALLOW_NON_FINITE_WEIGHTS: True``. Training loads its starting weights with the trainer's
checkpointer instead, where a partial load (e.g. a backbone-only file) is the normal case.
"""
from __future__ import annotations

import logging

from torch import nn

from segcore.checkpoint import Checkpointer

__all__ = ["load_inference_weights"]

logger = logging.getLogger(__name__)


def load_inference_weights(model: nn.Module, cfg, *, resume: bool = False, save_dir: str = "") -> Checkpointer:
    """Load ``cfg.MODEL.WEIGHTS`` (or, with ``resume``, the last checkpoint of ``save_dir`` when
    there is one) into ``model``, which is to be evaluated or run for predictions.

    Args:
        model: the built model.
        cfg: the config; reads ``MODEL.WEIGHTS``, ``MODEL.ALLOW_PARTIAL_WEIGHTS`` and
            ``MODEL.ALLOW_NON_FINITE_WEIGHTS``.
        resume: prefer ``<save_dir>/last_checkpoint`` (``--eval-only --resume``).
        save_dir: the folder of the run's checkpoints (``cfg.OUTPUT_DIR``).

    Returns:
        the :class:`~segcore.checkpoint.Checkpointer` that loaded them (its
        ``incompatible_keys`` hold the report).

    Raises:
        IncompleteWeightsError: no weights were given, or some of the model's weights were not
            loaded (missing in the file or of another shape), and ``MODEL.ALLOW_PARTIAL_WEIGHTS``
            is False. The message lists them.
        NonFiniteWeightsError: the file holds NaN / infinite weights and
            ``MODEL.ALLOW_NON_FINITE_WEIGHTS`` is False.
        FileNotFoundError, CheckpointReadError, UnsafeCheckpointError: see
            :meth:`Checkpointer.load <segcore.checkpoint.Checkpointer.load>`.
    """
    allow_partial = bool(cfg.MODEL.ALLOW_PARTIAL_WEIGHTS)
    checkpointer = Checkpointer(model, save_dir=save_dir, allow_non_finite=bool(cfg.MODEL.ALLOW_NON_FINITE_WEIGHTS))
    checkpointer.resume_or_load(cfg.MODEL.WEIGHTS, resume=resume, require_all=not allow_partial)
    if allow_partial:
        incompatible = checkpointer.incompatible_keys
        if incompatible is None:
            logger.warning("MODEL.ALLOW_PARTIAL_WEIGHTS: running a model that loaded no weights (random initialization)")
        elif incompatible.missing_keys or incompatible.incorrect_shapes:
            logger.warning(
                "MODEL.ALLOW_PARTIAL_WEIGHTS: running a model with %d missing and %d mismatched weights (see above)",
                len(incompatible.missing_keys), len(incompatible.incorrect_shapes))
    return checkpointer
