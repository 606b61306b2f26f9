"""The vector index: the interface every dense index implements, and the payload it keeps.

The index is derived from the store and can be rebuilt from it at any time. Each point is a
record id, its vector and a small payload (scope fields, kind, metadata and validity times) so
that scope isolation, kinds, metadata filters and ``as_of`` are applied inside the index query.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np

from agentmem.filters import Condition
from agentmem.lexical import SparseVector
from agentmem.models import MemoryKind, MemoryRecord, Scope, ScopeSet

FOREVER = 1e18
"""valid_to of a record that is still valid (a number, so range conditions work)."""

SCOPE_PAYLOAD_KEYS = ("org_id", "user_id", "agent_id", "thread_id")
_I64 = 2**63


def index_value(value: Any) -> Any:
    """How a top-level metadata value is kept in the index payload (``None``: left out).

    The index must filter exactly as :func:`agentmem.filters.matches` does, on every backend:

    - booleans become distinct keywords: Qdrant Edge's Python binding turns ``MatchValue(True)``
      into ``1``, so they could not be matched otherwise;
    - integral floats become integers, since Qdrant matches ``3`` against ``3`` but not ``3.0``;
    - integers outside 64 bits become keywords, which Qdrant can neither store nor match as
      integers (equality still works; ranges over them do not);
    - strings that begin like one of these tags are tagged as strings (``__str__:``);
    - lists, objects and nulls are left out: Qdrant matches a list on any element, while a
      filter never matches a non-scalar value (and ``$ne`` keeps it, as for a missing key).
    """
    if isinstance(value, bool):
        return f"{BOOL_TAG}{'true' if value else 'false'}"
    if isinstance(value, int):
        return value if -_I64 <= value < _I64 else f"{INT_TAG}{value}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return int(value) if value.is_integer() and -_I64 <= value < _I64 else value
    if isinstance(value, str):
        # A string that reads like a tag is tagged itself, so it never matches a boolean or
        # a big integer (nor they it); the pgvector index reads it back unchanged.
        return f"{STR_TAG}{value}" if value.startswith(_TAGS) else value
    return None


BOOL_TAG = "__bool__:"
INT_TAG = "__int__:"
STR_TAG = "__str__:"
_TAGS = (BOOL_TAG, INT_TAG, STR_TAG)


DENSE = "dense"
"""The record's own text, embedded."""
WINDOW = "window"
"""The record with its neighbours in the same session, embedded."""
BM25 = "bm25"
"""The record's own text as BM25 term weights."""
WINDOW_BM25 = "window_bm25"
"""The record with its neighbours as BM25 term weights."""
DENSE_SPACES = (DENSE, WINDOW)
SPARSE_SPACES = (BM25, WINDOW_BM25)


@dataclass(frozen=True, slots=True)
class VectorPoint:
    """One point to index: a record id, its vectors and its payload.

    ``vector`` is the ``dense`` space; ``dense`` holds other named dense vectors (``window``)
    and ``sparse`` the BM25 term weights (``bm25``, ``window_bm25``). A point may lack any
    space but ``dense``; it is then simply not found through that space.
    """

    id: str
    vector: np.ndarray
    payload: dict[str, Any]
    dense: Mapping[str, np.ndarray] = field(default_factory=dict)
    sparse: Mapping[str, SparseVector] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VectorQuery:
    """Which points a search may return; the scope is always required (a
    :class:`~agentmem.models.ScopeSet` admits points of any of its members)."""

    scope: Scope | ScopeSet
    limit: int = 10
    kinds: tuple[MemoryKind, ...] = ()
    conditions: tuple[Condition, ...] = ()
    as_of: datetime | None = None
    include_invalidated: bool = False
    now: float = 0.0
    """Epoch seconds used for "still valid" when ``as_of`` is not given."""
    event_after: float | None = None
    """Only points whose event time is at or after this (epoch seconds)."""
    event_before: float | None = None
    """Only points whose event time is before this (epoch seconds)."""


def payload_for(record: MemoryRecord) -> dict[str, Any]:
    """The payload stored beside a record's vector."""
    payload: dict[str, Any] = dict(record.scope.fields())
    payload["kind"] = record.kind.value
    metadata = {k: index_value(v) for k, v in record.metadata.items()}
    payload["metadata"] = {k: v for k, v in metadata.items() if v is not None}
    start = record.valid_from or record.event_time or record.created_at
    payload["valid_from"] = start.timestamp()
    payload["valid_to"] = record.valid_to.timestamp() if record.valid_to else FOREVER
    payload["status"] = "invalidated" if record.invalidated_at is not None else "active"
    payload["created_at"] = record.created_at.timestamp()
    payload["version"] = record.version
    if record.event_time is not None:
        payload["event_time"] = record.event_time.timestamp()
    return payload


class VectorIndex(ABC):
    """A dense vector index with payload filtering.

    Lifecycle: the constructor does no I/O; :meth:`setup` opens or creates the collection for
    vectors of ``dim`` dimensions (idempotent); :meth:`close` releases it.
    """

    url: str
    supports_concurrent_processes: bool = False
    erases_files: bool = False
    """Whether :meth:`erase_files` rewrites the index's files (an embedded index whose files
    live in the home); a server's storage is the server's to compact."""

    reindex_elsewhere: str = (
        "set AGENTMEM_VECTORS_COLLECTION to a new name and run `agentmem reindex`"
    )
    """How to build a new index beside this one (after changing to an embedder of another
    size), for error messages."""

    damaged_copy: str | None = None
    """Where :meth:`set_aside` last moved a damaged index's files (None: it never did)."""

    def set_aside(self) -> Path | None:
        """Move a damaged index's files aside (kept) and open the index new and empty; returns
        where they went. Only an embedded index can (None: the backend keeps no files of ours,
        so there is nothing to set aside)."""
        return None

    def erase_files(self) -> bool:
        """Drop every point and the files that held them (write-ahead log, payload pages), and
        open the index empty again; the caller re-indexes from the store. Returns whether it
        did (False: the backend keeps no files of ours)."""
        return False

    def stored_dim(self) -> int | None:
        """The size of the vectors an existing index holds, read before :meth:`setup` (None:
        there is no index yet, or this backend cannot tell). Opening a home then needs no
        embedder to learn the size: loading a model is left to the first use that embeds."""
        return None

    @abstractmethod
    def setup(self, dim: int) -> None:
        """Open or create the index for ``dim``-dimensional vectors, with payload indexes."""

    @abstractmethod
    def close(self) -> None:
        """Flush and release the index. Safe to call again."""

    @abstractmethod
    def upsert(self, points: Sequence[VectorPoint]) -> None:
        """Insert or replace points (by id). Durable when it returns. A value the backend
        cannot hold (a lone surrogate, a NaN) raises :class:`~agentmem.errors.IndexRefused`
        and writes nothing."""

    @abstractmethod
    def delete(self, ids: Sequence[str]) -> None:
        """Remove points by id; unknown ids are ignored."""

    @abstractmethod
    def search(
        self, vector: np.ndarray, query: VectorQuery, using: str = DENSE
    ) -> list[tuple[str, float]]:
        """The nearest points (cosine) in a dense space that pass the query's filters:
        (id, score), best first."""

    @abstractmethod
    def search_sparse(
        self, vector: SparseVector, query: VectorQuery, using: str = BM25
    ) -> list[tuple[str, float]]:
        """The best BM25 matches (sparse dot product with IDF) in a sparse space that pass the
        query's filters: (id, score), best first. An empty query vector matches nothing."""

    @abstractmethod
    def count(self) -> int:
        """How many points the index holds."""

    @abstractmethod
    def ids(self, limit: int = 10_000, offset: str | None = None) -> list[str]:
        """Point ids in id order, paged (to find strays during a reindex)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


__all__ = [
    "BM25",
    "DENSE",
    "DENSE_SPACES",
    "FOREVER",
    "SCOPE_PAYLOAD_KEYS",
    "SPARSE_SPACES",
    "WINDOW",
    "WINDOW_BM25",
    "VectorIndex",
    "VectorPoint",
    "VectorQuery",
    "index_value",
    "payload_for",
]
