"""Where a cache partition's vectors wait for the HNSW index: a lone vector packed aside (a partition with one
entry, e.g. each chat conversation, needs no index), and the batches the background indexer inserts."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from fastroute._native import VectorIndex
from fastroute.cache.types import Vector

__all__ = ["IndexBatch", "pack_single", "single_id", "unpack_single"]

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
