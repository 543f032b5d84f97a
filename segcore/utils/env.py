"""Process environment helpers: random seeding (as in Detectron2's ``utils/env.py``).

Besides :func:`seed_all_rng` (Detectron2's), this module gives what exact resuming needs:
seeds derived from counters (:func:`derive_seed`: a base seed and, e.g., a rank and an
iteration or a sample position), a re-seeding of every generator that does not touch the
environment (:func:`reseed_all_rng`), and :func:`fork_rng`, which runs code on the process's
generators and restores their states afterwards.
"""
from __future__ import annotations

import contextlib
import logging
import os
import random
import zlib
from datetime import datetime
from typing import Iterator

import numpy as np
import torch

__all__ = ["derive_seed", "fork_rng", "reseed_all_rng", "seed_all_rng"]


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
    reseed_all_rng(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    return seed


def reseed_all_rng(seed: int, *, cuda: bool = True) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch's CPU generator (and, with
    ``cuda``, every CUDA device's).

    Unlike :func:`seed_all_rng` it leaves ``PYTHONHASHSEED`` alone, so it is cheap enough to
    call for every iteration or every sample.

    Args:
        seed: an int in [0, 2**32) (NumPy's limit).
        cuda: also seed the CUDA generators (``torch.manual_seed``); False seeds only torch's
            CPU generator.

    Raises:
        ValueError: ``seed`` is outside [0, 2**32).
    """
    seed = int(seed)
    if not 0 <= seed < 2**32:
        raise ValueError(f"reseed_all_rng: the seed must be in [0, 2**32), got {seed}")
    random.seed(seed)
    np.random.seed(seed)
    if cuda:
        torch.manual_seed(seed)
    else:
        torch.random.default_generator.manual_seed(seed)


def derive_seed(*keys: int | str) -> int:
    """A seed in [0, 2**32) that depends on every key (NumPy's ``SeedSequence`` hash).

    Gives each (base seed, purpose, rank, iteration) or (base seed, purpose, rank, sample
    position) its own random stream: the same keys always give the same seed, and different
    keys give unrelated seeds. A string key (a purpose such as ``"iteration"``) keeps streams
    of different purposes apart even when their counters are equal.

    Args:
        keys: non-negative ints, or strings (hashed with CRC-32), e.g.
            ``derive_seed(base_seed, "sample", rank, position)``.

    Raises:
        ValueError: no key, or a negative int key.
        TypeError: a key that is neither an int nor a str.
    """
    if not keys:
        raise ValueError("derive_seed needs at least one key")
    values = []
    for k in keys:
        if isinstance(k, str):
            values.append(zlib.crc32(k.encode("utf-8")))
        elif isinstance(k, (int, np.integer)) and not isinstance(k, bool):
            if k < 0:
                raise ValueError(f"derive_seed: int keys must be non-negative, got {keys}")
            values.append(int(k))
        else:
            raise TypeError(f"derive_seed: keys must be ints or strings, got {type(k).__name__} in {keys}")
    return int(np.random.SeedSequence(values).generate_state(1, np.uint32)[0])


@contextlib.contextmanager
def fork_rng() -> Iterator[None]:
    """Run the body with the process's Python, NumPy and torch CPU generators, then restore
    their states, so whatever the body draws (or seeds) does not change the streams outside it.

    CUDA generators are not saved (data loading runs on the CPU).
    """
    py_state = random.getstate()
    np_state = np.random.get_state()
    torch_state = torch.get_rng_state()
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)
