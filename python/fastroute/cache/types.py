"""The response cache's value types: who asks (`CacheScope`), what it finds (`CacheHit`), what it stores and
replicates (`CacheEntry`) and a request's keys (`RequestKeys`). Plain data, shared by the cache, its stage,
replication and evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from fastroute.cache.verifier import Signature

__all__ = ["AnalysisLike", "CacheEntry", "CacheHit", "CacheScope", "RequestKeys", "Vector"]

Vector = npt.NDArray[np.float32]


class AnalysisLike(Protocol):
    """What the cache needs from `fastroute.native.PromptAnalysis`."""

    @property
    def key(self) -> str: ...

    @property
    def embedding(self) -> Vector | None: ...


@dataclass(frozen=True, slots=True)
class CacheScope:
    """Who asks and how: entries never cross tenants, and the semantic level may be switched off.

    Attributes:
        tenant: isolation unit (application, or department when the policy says so).
        temperature: the request's temperature; above `semantic_temperature_max` only exact hits are served,
            and entries stored for it get no vector.
        semantic: False when the policy allows only exact hits.
    """

    tenant: str
    temperature: float = 0.0
    semantic: bool = True


@dataclass(frozen=True, slots=True)
class CacheHit:
    """A cached answer that may be served. `body` is the stored response; do not mutate it."""

    kind: Literal["exact", "semantic"]
    body: dict[str, Any]
    similarity: float
    entry_key: str
    age_s: float


@dataclass(slots=True)
class CacheEntry:
    """One answer as produced by `store` or received from another replica (the replication wire shape).

    `key` is the exact key; `origin` names the replica that produced it. The cache itself keeps a compact
    record (a row of `EntryTable` and a record in the `BodyLog`), not this object.
    """

    key: str
    tenant: str
    fingerprint: str
    partition: str
    text: str
    body: dict[str, Any]
    embedding: Vector | None
    created: float
    expires: float
    origin: str = ""
    size: int = 0
    local_id: int = 0
    sig: Signature | None = field(default=None, repr=False)


class RequestKeys(NamedTuple):
    """A request's cache keys, computed once by `SemanticCache.keys` and reused by `lookup` and `store`
    (a named tuple: built on every request, three times cheaper than a frozen dataclass).

    Attributes:
        exact: the exact-level key (tenant, fingerprint, normalised conversation).
        partition: the semantic level's neighbourhood (tenant, fingerprint, earlier turns).
        turn: the last user turn (what is embedded and verified).
    """

    exact: str
    partition: str
    turn: str
