"""Where a cache partition's vectors wait for the HNSW index: a lone vector packed aside (a partition with one
entry, e.g. each chat conversation, needs no index), and the batches the background indexer inserts."""

from __future__ import annotations

import struct
from collections.abc import Container
from dataclasses import dataclass

import numpy as np

from fastroute._native import VectorIndex
from fastroute.cache.types import Vector

__all__ = ["IndexBatch", "WaitingVectors", "pack_single", "single_id", "unpack_single"]

_SINGLE_HEAD = struct.Struct("<Qf")  # local id, scale; then the int8 components


@dataclass(frozen=True, slots=True)
class IndexBatch:
    """Vectors waiting for their partition's HNSW index, taken by `SemanticCache.take_index_batch`.

    `run` may be called from any thread (the index releases the GIL and locks itself); afterwards the
    owner of the cache calls `finish_index_batch` on the cache's thread.
    """

    jobs: tuple[tuple[str, VectorIndex, tuple[int, ...], Vector], ...]  # partition, index, ids, vectors

    def __len__(self) -> int:
        return sum(len(ids) for _, _, ids, _ in self.jobs)

    def run(self) -> None:
        """Inserts every vector, one at a time so searches are never locked out for a whole batch."""
        for _, index, ids, vectors in self.jobs:
            for row, local_id in enumerate(ids):
                index.add(np.array([local_id], dtype=np.uint64), vectors[row : row + 1])


def pack_single(local_id: int, vector: Vector) -> bytes:
    """A vector as the HNSW index stores it (int8 + one scale, `Precision::I8`), behind its entry's id."""
    peak = float(np.abs(vector).max()) if len(vector) else 0.0
    scale = peak / 127.0 if 0.0 < peak < float("inf") else 1.0
    components: bytes = np.clip(np.rint(vector / scale), -127, 127).astype(np.int8).tobytes()
    return _SINGLE_HEAD.pack(local_id, scale) + components


def unpack_single(data: bytes) -> tuple[int, Vector]:
    local_id, scale = _SINGLE_HEAD.unpack_from(data)
    components = np.frombuffer(data, dtype=np.int8, offset=_SINGLE_HEAD.size)
    return int(local_id), components.astype(np.float32) * np.float32(scale)


def single_id(data: bytes) -> int:
    """The entry id a packed lone vector belongs to."""
    return int(_SINGLE_HEAD.unpack_from(data)[0])


class WaitingVectors:
    """A partition's vectors waiting for the indexer, as rows of one matrix: a lookup compares the query with
    all of them in one matrix-vector product (a numpy call per vector cost ~1 us each, and up to the cache's
    waiting cap of them wait under load). A removed row takes the last row's place."""

    __slots__ = ("_ids", "_matrix", "_rows")

    def __init__(self, dim: int) -> None:
        self._matrix = np.empty((4, dim), dtype=np.float32)  # grows by doubling
        self._ids: list[int] = []  # row -> entry id
        self._rows: dict[int, int] = {}  # entry id -> row

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, local_id: object) -> bool:
        return local_id in self._rows

    def take(self, ids: list[int]) -> Vector:
        """The vectors of `ids` (all waiting), in that order, as a new matrix (the indexer's batch: a copy, as
        rows move while it runs)."""
        rows: Vector = self._matrix[[self._rows[i] for i in ids]]
        return rows

    def add(self, local_id: int, vector: Vector) -> None:
        if local_id in self._rows:
            self._matrix[self._rows[local_id]] = vector
            return
        row = len(self._ids)
        if row == len(self._matrix):
            grown = np.empty((2 * row, self._matrix.shape[1]), dtype=np.float32)
            grown[:row] = self._matrix
            self._matrix = grown
        self._matrix[row] = vector
        self._ids.append(local_id)
        self._rows[local_id] = row

    def discard(self, local_id: int) -> None:
        row = self._rows.pop(local_id, None)
        if row is None:
            return
        last = len(self._ids) - 1
        moved = self._ids.pop()
        if row != last:
            self._matrix[row] = self._matrix[last]
            self._ids[row] = moved
            self._rows[moved] = row

    def similarities(self, query: Vector, skip: Container[int] = ()) -> list[tuple[int, float]]:
        """`(id, inner product with query)` of every waiting vector not in `skip`."""
        if not self._ids:
            return []
        sims = (self._matrix[: len(self._ids)] @ query).tolist()
        return [(i, s) for i, s in zip(self._ids, sims, strict=True) if i not in skip]
