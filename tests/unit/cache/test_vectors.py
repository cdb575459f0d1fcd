"""`cache.vectors.WaitingVectors`: vectors waiting for the indexer, compared with a query in one product."""

from __future__ import annotations

import random

import numpy as np
import pytest

from fastroute.cache.vectors import WaitingVectors

DIM = 256


def _vector(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def test_similarities_equal_one_dot_product_per_vector() -> None:
    waiting = WaitingVectors(DIM)
    kept = {100 + 7 * i: _vector(i) for i in range(32)}  # past the first capacity: the matrix grows
    for i, v in kept.items():
        waiting.add(i, v)
    query = _vector(999)
    got = dict(waiting.similarities(query))
    assert set(got) == set(kept) and len(waiting) == 32
    for i, v in kept.items():
        assert isinstance(got[i], float)
        assert got[i] == pytest.approx(float(v @ query), abs=1e-5)
        assert i in waiting and np.array_equal(waiting.take([i])[0], v)


def test_skipped_ids_are_left_out_and_an_empty_set_gives_nothing() -> None:
    waiting = WaitingVectors(DIM)
    assert waiting.similarities(_vector(0)) == [] and len(waiting) == 0 and not waiting
    for i in range(5):
        waiting.add(i, _vector(i))
    assert sorted(i for i, _ in waiting.similarities(_vector(9), skip={0, 3})) == [1, 2, 4]
    assert waiting.similarities(_vector(9), skip=set(range(5))) == []


def test_removal_in_any_order_keeps_every_other_vector_whole() -> None:
    """Rows move when one leaves (the last takes its place): a model dict must agree after every step."""
    rng = random.Random(5)
    waiting, model = WaitingVectors(DIM), {}
    for step in range(400):
        if model and rng.random() < 0.45:
            gone = rng.choice(list(model))
            waiting.discard(gone)
            del model[gone]
        else:
            i = rng.randrange(60)
            model[i] = _vector(1000 + step)
            waiting.add(i, model[i])  # an id already waiting gets its new vector
        waiting.discard(10_000)  # never added: nothing happens
        assert len(waiting) == len(model)
        assert all(i in waiting and np.array_equal(waiting.take([i])[0], v) for i, v in model.items())
    query = _vector(7)
    got = dict(waiting.similarities(query))
    assert got.keys() == model.keys()
    assert all(got[i] == pytest.approx(float(v @ query), abs=1e-5) for i, v in model.items())
    ids = list(model)[:3]
    taken = waiting.take(ids)
    assert np.array_equal(taken, np.stack([model[i] for i in ids]))
    if ids:
        waiting.discard(ids[0])  # the batch is a copy: rows moving later do not change it
        assert np.array_equal(taken[0], model[ids[0]])


def test_the_nearest_waiting_vector_ranks_first() -> None:
    waiting = WaitingVectors(DIM)
    for i in range(20):
        waiting.add(i, _vector(i))
    best = max(waiting.similarities(_vector(13)), key=lambda c: c[1])
    assert best[0] == 13 and best[1] == pytest.approx(1.0, abs=1e-5)
