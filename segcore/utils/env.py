"""Process environment helpers: random seeding (as in Detectron2's ``utils/env.py``)."""
from __future__ import annotations

import logging
import os
import random
from datetime import datetime

import numpy as np
import torch

__all__ = ["seed_all_rng"]


def seed_all_rng(seed: int | None = None) -> int:
    """Seed the random number generators of Python, NumPy and torch.

    Args:
        seed: the seed; ``None`` draws a fresh one from the process id, the time and
            ``os.urandom`` (so concurrent processes get different seeds).

    Returns:
        int: the seed used.
    """
    if seed is None:
        seed = (
            os.getpid()
            + int(datetime.now().strftime("%S%f"))
            + int.from_bytes(os.urandom(2), "big")
        )
        logging.getLogger(__name__).info(f"Using a generated random seed {seed}")
    seed = int(seed) % 2**32
    np.random.seed(seed)
    torch.manual_seed(seed)
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    return seed
