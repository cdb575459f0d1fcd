"""`_native.VectorIndex`: recall against exact search, deletes, persistence, errors, concurrent search."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt
import pytest

from fastroute._native import VectorIndex

Array = npt.NDArray[np.float32]


def clustered(n: int, dim: int, seed: int, centers: int = 50) -> Array:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, dim)).astype(np.float32)
    x = c[rng.integers(0, centers, n)] + 0.6 * rng.standard_normal((n, dim)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data() -> tuple[Array, Array, VectorIndex]:
    x = clustered(4000, 64, seed=1)
    q = clustered(300, 64, seed=1)[:300] + 0.05 * np.random.default_rng(2).standard_normal((300, 64)).astype(np.float32)
    q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
    idx = VectorIndex(64, m=16, ef_construction=100, max_elements=10_000)
    idx.add(np.arange(len(x), dtype=np.uint64), x)
    return x, q, idx


def test_recall_at_1_against_exact_search(data: tuple[Array, Array, VectorIndex]) -> None:
    x, q, idx = data
    truth = np.argmax(q @ x.T, axis=1)
    got = np.array([idx.search(v, 1, 64)[0][0] for v in q])
    assert np.mean(got == truth) >= 0.97
    ids, sims = idx.search(q[0], 10, 64)
    assert len(ids) == 10 and np.all(np.diff(sims) <= 1e-6)  # best first
    assert sims[0] == pytest.approx(float(q[0] @ x[ids[0]]), abs=1e-5)


def test_batch_search_matches_single(data: tuple[Array, Array, VectorIndex]) -> None:
    _, q, idx = data
    ids, sims = idx.search_batch(q[:20], 3, 64)
    assert ids.shape == (20, 3) and sims.shape == (20, 3)
    for row, v in enumerate(q[:20]):
        assert list(ids[row]) == list(idx.search(v, 3, 64)[0])


@pytest.mark.parametrize("int8", [False, True])
def test_search_pairs_match_search(int8: bool) -> None:
    x = clustered(1000, 48, seed=5)
    idx = VectorIndex(48, m=8, ef_construction=64, max_elements=1000, int8=int8)
    idx.add(np.arange(len(x), dtype=np.uint64), x)
    for v in x[:40:3] + 0.01:
        ids, sims = idx.search(v.astype(np.float32), 4, 16)
        pairs = idx.search_pairs(v.astype(np.float32), 4, 16)
        assert pairs == list(zip(ids.tolist(), sims.tolist(), strict=True))
        assert all(isinstance(i, int) and isinstance(s, float) for i, s in pairs)
    strided = np.stack([x[0], x[1]], axis=1)[:, 0]  # x[0] as a non-contiguous view
    assert not strided.flags.c_contiguous
    assert idx.search_pairs(strided, 1) == idx.search_pairs(x[0], 1)


@pytest.mark.parametrize("int8", [False, True])
def test_min_similarity_keeps_every_result_above_it(int8: bool) -> None:
    # Near copies of every tenth item, as a response cache holds near-duplicate prompts.
    rng = np.random.default_rng(9)
    base = clustered(3000, 48, seed=9)
    copies = np.repeat(base[::10], 3, axis=0) + 0.02 * rng.standard_normal((900, 48)).astype(np.float32)
    x = np.concatenate([base, copies / np.linalg.norm(copies, axis=1, keepdims=True)]).astype(np.float32)
    idx = VectorIndex(48, m=16, ef_construction=100, max_elements=len(x), int8=int8)
    idx.add(np.arange(len(x), dtype=np.uint64), x)
    queries = base[::10][:100] + 0.03 * rng.standard_normal((100, 48)).astype(np.float32)
    above = 0
    for v in (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32):
        for t in (0.85, 0.95):
            plain = idx.search_pairs(v, 4, 16)
            bounded = idx.search_pairs(v, 4, 16, min_similarity=t)
            assert [p for p in bounded if p[1] >= t] == [p for p in plain if p[1] >= t]
            above += sum(p[1] >= t for p in plain)
    assert above > 400  # most queries have their item and its copies above both bounds
    # Nothing that similar: the plain search, result for result.
    for v in clustered(20, 48, seed=10):
        assert idx.search_pairs(v, 4, 16, min_similarity=0.999) == idx.search_pairs(v, 4, 16)


def test_delete_hides_entries_and_slots_are_reused() -> None:
    x = clustered(500, 32, seed=3)
    idx = VectorIndex(32, m=8, ef_construction=64, max_elements=500)
    idx.add(np.arange(500, dtype=np.uint64), x)
    assert len(idx) == 500 and 7 in idx
    for i in range(0, 500, 2):
        assert idx.delete(i)
    assert not idx.delete(0) and len(idx) == 250 and 0 not in idx
    for v in x[:50]:
        ids, _ = idx.search(v, 5, 64)
        assert all(i % 2 == 1 for i in ids)
    # max_elements is reached, but deleted slots are reused.
    idx.add(np.arange(1000, 1250, dtype=np.uint64), clustered(250, 32, seed=4))
    assert len(idx) == 500
    with pytest.raises(ValueError):
        idx.add(np.array([5000], dtype=np.uint64), x[:1])


def test_bytes_round_trip_and_corrupt_input(data: tuple[Array, Array, VectorIndex]) -> None:
    _, q, idx = data
    blob = idx.to_bytes()
    again = VectorIndex.from_bytes(blob)
    assert len(again) == len(idx) and again.dim == 64
    for v in q[:20]:
        a, b = idx.search(v, 5, 64), again.search(v, 5, 64)
        assert list(a[0]) == list(b[0])
    with pytest.raises(ValueError):
        VectorIndex.from_bytes(blob[:-7])
    with pytest.raises(ValueError):
        VectorIndex.from_bytes(b"garbage")


def test_dimension_errors_and_empty_index() -> None:
    idx = VectorIndex(8)
    ids, sims = idx.search(np.full(8, 0.35, dtype=np.float32), 3, 16)
    assert len(ids) == 0 and len(sims) == 0
    with pytest.raises(ValueError):
        idx.add(np.array([1], dtype=np.uint64), np.ones((1, 7), dtype=np.float32))
    with pytest.raises(ValueError):
        idx.add(np.array([1, 2], dtype=np.uint64), np.ones((1, 8), dtype=np.float32))
    with pytest.raises(ValueError):
        idx.search(np.ones(9, dtype=np.float32), 1, 16)
    with pytest.raises(ValueError):
        VectorIndex(0)


def test_concurrent_search_agrees_with_serial(data: tuple[Array, Array, VectorIndex]) -> None:
    _, q, idx = data
    serial = [list(idx.search(v, 3, 64)[0]) for v in q]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda v: list(idx.search(v, 3, 64)[0]), q))
    assert parallel == serial


def test_half_precision_index_keeps_recall_in_less_memory(data: tuple[Array, Array, VectorIndex]) -> None:
    x, q, full = data
    half = VectorIndex(64, m=16, ef_construction=100, max_elements=10_000, half=True)
    half.add(np.arange(len(x), dtype=np.uint64), x)
    assert half.half and not full.half
    assert half.memory_bytes < full.memory_bytes
    truth = np.argmax(q @ x.T, axis=1)
    got_half = np.array([half.search(v, 1, 64)[0][0] for v in q])
    got_full = np.array([full.search(v, 1, 64)[0][0] for v in q])
    assert np.mean(got_half == truth) >= np.mean(got_full == truth) - 0.01
    ids, sims = half.search(q[0], 3, 64)
    assert sims[0] == pytest.approx(float(q[0] @ x[ids[0]]), abs=2e-3)  # f16 rounding, ~1e-3 relative
    again = VectorIndex.from_bytes(half.to_bytes())
    assert again.half and list(again.search(q[1], 5, 64)[0]) == list(half.search(q[1], 5, 64)[0])
