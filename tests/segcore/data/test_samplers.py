"""Resumable index streams: TrainingSampler's state and PositionedSampler's positions."""
import itertools
import logging

import pytest

from segcore.data.samplers import PositionedSampler, TrainingSampler


def _take(iterable, n):
    return list(itertools.islice(iter(iterable), n))


def test_training_sampler_state_restores_a_drawn_seed():
    first = TrainingSampler(9)  # seed drawn at random
    stream = _take(first, 40)
    other = TrainingSampler(9, seed=first.state_dict()["seed"] + 1)
    assert _take(other, 40) != stream
    other.load_state_dict(first.state_dict())
    assert _take(other, 40) == stream
    assert first.state_dict() == {"seed": first.state_dict()["seed"], "size": 9, "shuffle": True}


def test_training_sampler_load_state_checks_and_warns():
    sampler = TrainingSampler(5, seed=1)
    with pytest.raises(KeyError, match="seed"):
        sampler.load_state_dict({"size": 5})
    with pytest.raises(TypeError, match="'seed' must be an int"):
        sampler.load_state_dict({"seed": "3"})
    logger = logging.getLogger("segcore.data.samplers")
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        sampler.load_state_dict({"seed": 3, "size": 6, "shuffle": True})
    finally:
        logger.removeHandler(handler)
    assert sampler.state_dict()["seed"] == 3
    assert any("size=6" in r.getMessage() for r in records)


def test_positioned_sampler_continues_the_stream():
    sampler = TrainingSampler(7, seed=4)
    stream = _take(sampler, 50)
    pairs = _take(PositionedSampler(sampler), 50)
    assert pairs == list(enumerate(stream))
    # from position 23 on, after re-yielding positions 19 and 21 (waiting in a bucket)
    resumed = _take(PositionedSampler(sampler, start=23, pending=[21, 19]), 10)
    assert resumed == [(19, stream[19]), (21, stream[21])] + [(p, stream[p]) for p in range(23, 31)]
    # iterating again starts over from the same state
    assert _take(PositionedSampler(sampler, start=23), 3) == [(p, stream[p]) for p in range(23, 26)]


@pytest.mark.parametrize("start,pending,match", [
    (-1, (), "start must be >= 0"),
    (5, (5,), r"pending positions must be in \[0, start=5\)"),
    (5, (-2, 1), "pending positions"),
])
def test_positioned_sampler_rejects_bad_positions(start, pending, match):
    with pytest.raises(ValueError, match=match):
        PositionedSampler(TrainingSampler(3, seed=0), start=start, pending=pending)
