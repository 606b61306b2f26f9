"""The system of record: the interface every record store implements.

The store is the truth; the vector and lexical indexes are derived from it. A write is one
:class:`WriteBatch` applied in one transaction: the records, their history entries, the
outbox entries that tell the indexer what is not yet indexed, and any new cached embeddings.
So a crash either keeps the whole batch or none of it, and what was kept is re-indexed from the
outbox on the next open.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import TracebackType
from typing import TYPE_CHECKING, Self, TypeVar

import numpy as np

from agentmem.filters import Condition
from agentmem.models import (
    HistoryEntry,
    MemoryKind,
    MemoryRecord,
    Scope,
    ScopeSet,
    ScopeSummary,
)
from agentmem.stores._graph_sql import GraphPartition, GraphRow
from agentmem.stores._jobs_sql import Cursor, JobRow, Watermark
from agentmem.stores._keys_sql import KeyRow
from agentmem.stores._notes_sql import LinkRow, ProfileRow

if TYPE_CHECKING:  # _utility_sql imports _sql, which imports this module
    from agentmem.stores._utility_sql import (
        FeedbackWrite,
        RetrievalRow,
        UtilityChange,
        UtilityRow,
    )

T = TypeVar("T")


class IndexOp(StrEnum):
    """What the indexer must do for a record named in the outbox."""

    UPSERT = "upsert"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A record whose index entries are not yet known to match the store."""

    seq: int
    memory_id: str
    op: IndexOp


@dataclass(slots=True)
class WriteBatch:
    """Everything one acknowledged write changes, applied atomically by :meth:`RecordStore.apply`.

    ``updates`` are checked against the version they replace (``record.version - 1``); a store
    raises :class:`~agentmem.errors.Conflict` when another writer got there first.
    """

    inserts: list[MemoryRecord] = field(default_factory=list)
    updates: list[MemoryRecord] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)
    index: list[tuple[str, IndexOp]] = field(default_factory=list)
    embeddings: list[tuple[str, str, np.ndarray]] = field(default_factory=list)
    """(embedder name, content hash, vector) to cache."""


@dataclass(frozen=True, slots=True)
class RecordQuery:
    """Which records to read. ``scope`` is always required: isolation lives in the query.

    A :class:`~agentmem.models.ScopeSet` reads several scopes at once (any member matches).
    """

    scope: Scope | ScopeSet
    kinds: tuple[MemoryKind, ...] = ()
    conditions: tuple[Condition, ...] = ()
    include_invalidated: bool = False
    as_of: datetime | None = None
    event_after: datetime | None = None
    event_before: datetime | None = None
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True, slots=True)
class StoreCounts:
    """Sizes a store reports for ``stats()``."""

    records: int
    by_kind: dict[str, int]
    history_entries: int
    pending_index: int


class RecordStore(ABC):
    """A transactional system of record for memory records, their history and the outbox.

    Lifecycle: the constructor does no I/O; :meth:`setup` connects and applies migrations
    (idempotent); :meth:`close` releases everything. Usable as a context manager.
    """

    url: str
    supports_concurrent_processes: bool = False
    """Whether several processes may write through this store at once."""

    def erase_free_space(self) -> bool:
        """Rewrite the store's files so that deleted rows leave no bytes behind (free pages,
        write-ahead log), after a forget with ``purge=True``. Returns whether it did (False:
        a server's storage is compacted by its operator, e.g. PostgreSQL's VACUUM FULL)."""
        return False

    @abstractmethod
    def setup(self) -> None:
        """Connect and apply any missing migrations. Safe to call again."""

    @abstractmethod
    def close(self) -> None:
        """Release connections. Safe to call again."""

    @abstractmethod
    def apply(self, batch: WriteBatch) -> None:
        """Apply a write batch in one transaction (all or nothing)."""

    @abstractmethod
    def get_many(
        self, ids: Sequence[str], scope: Scope | ScopeSet | None = None
    ) -> list[MemoryRecord]:
        """The records with these ids (in no particular order), limited to ``scope`` if given."""

    @abstractmethod
    def query(self, query: RecordQuery) -> list[MemoryRecord]:
        """Records in scope matching kinds and filters, oldest first, paged."""

    @abstractmethod
    def adjacent(
        self, record: MemoryRecord, group: Condition | None = None
    ) -> tuple[MemoryRecord | None, MemoryRecord | None]:
        """The records just before and just after ``record`` (same scope fields and kind, and
        matching ``group`` if given) in creation order: its neighbours in a conversation."""

    @abstractmethod
    def ids_in_scope(self, scope: Scope | ScopeSet) -> list[str]:
        """Every record id visible to ``scope`` (for delete_all)."""

    @abstractmethod
    def scope_summaries(self, scope: Scope | ScopeSet) -> list[ScopeSummary]:
        """Each exact scope holding records that ``scope`` contains, with its counts by kind
        (invalidated records included), in scope order."""

    @abstractmethod
    def history(self, memory_id: str, scope: Scope | ScopeSet | None = None) -> list[HistoryEntry]:
        """The history of one record, oldest first (deleted records keep theirs)."""

    @abstractmethod
    def pending_index(self, limit: int = 1000) -> list[OutboxItem]:
        """Outbox entries not yet acknowledged by the indexer, oldest first."""

    @abstractmethod
    def ack_index(self, seqs: Sequence[int]) -> None:
        """Mark outbox entries as indexed."""

    @abstractmethod
    def cached_embeddings(self, embedder: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached vectors of ``embedder`` by content hash (missing hashes are absent)."""

    @abstractmethod
    def all_ids(self, after: str | None = None, limit: int = 1000) -> list[str]:
        """Every record id in id order, paged by ``after`` (for a full reindex)."""

    @abstractmethod
    def counts(self) -> StoreCounts:
        """Sizes for ``stats()``."""

    # knowledge graph persistence (the embedded graph backend keeps its graphs here) ----------

    supports_graph: bool = False
    """Whether the store keeps knowledge graphs (``graph_*`` methods; see
    :mod:`agentmem.stores._graph_sql`)."""

    def graph_partitions(self, scope: Scope | ScopeSet | None) -> list[GraphPartition]:
        """The stored graph partitions a scope may read (all of them for ``None``)."""
        raise self._no_graph()

    def graph_partitions_holding(self, kind: str, item_ids: Sequence[str]) -> list[GraphPartition]:
        """The partitions holding a graph item of ``kind`` with one of these ids."""
        raise self._no_graph()

    def graph_rows(self, key: str) -> list[GraphRow]:
        """Every stored item of one partition."""
        raise self._no_graph()

    def graph_write(
        self,
        *,
        key: str,
        scope: Scope,
        expected_version: int,
        upserts: Sequence[GraphRow],
        deletes: Sequence[tuple[str, str]],
        replace: bool = False,
    ) -> int:
        """Apply one change to a partition in one transaction (``replace``: drop its items
        first); returns the new version, or raises :class:`~agentmem.errors.Conflict` when the
        partition is no longer at ``expected_version``."""
        raise self._no_graph()

    def graph_drop(self, scope: Scope | ScopeSet | None) -> int:
        """Delete the graph partitions a scope may read (all for ``None``); returns how many."""
        raise self._no_graph()

    def _no_graph(self) -> NotImplementedError:
        return NotImplementedError(
            f"{type(self).__name__} keeps no knowledge graph; use a graph server "
            "(AGENTMEM_GRAPH_URL=neo4j://...)"
        )

    # consolidation bookkeeping (job ledger, watermarks, leases; see _jobs_sql) ---------------

    supports_jobs: bool = False
    """Whether the store keeps consolidation's job ledger, watermarks and leases."""

    def touch(self, ids: Sequence[str], at: datetime) -> None:  # noqa: B027 - optional
        """Count one recall of each record (``access_count``, ``last_accessed_at``) without a
        new version. Stores that cannot do it cheaply ignore it."""

    def job_write(self, row: JobRow) -> None:
        """Insert or replace the ledger row of ``(row.run_id, row.stage)``."""
        raise self._no_jobs()

    def job_rows(
        self, *, scope: str | None = None, run_id: str | None = None, limit: int = 100
    ) -> list[JobRow]:
        """Ledger rows, newest first, optionally for one scope key or one run."""
        raise self._no_jobs()

    def watermark(self, scope: str, stage: str) -> Watermark | None:
        """How far ``stage`` got for the scope key ``scope`` (None: never completed)."""
        raise self._no_jobs()

    def watermarks(self, stage: str) -> list[Watermark]:
        """The watermarks of ``stage`` for every scope."""
        raise self._no_jobs()

    def set_watermark(self, scope: str, stage: str, value: str) -> None:
        """Record how far ``stage`` got for ``scope`` (a JSON value the stage defines)."""
        raise self._no_jobs()

    def lease(self, name: str, owner: str, ttl_s: float) -> bool:
        """Take or renew the lease ``name`` for ``owner``; False while another owner holds it."""
        raise self._no_jobs()

    def lease_owner(self, name: str) -> str | None:
        """The owner of the unexpired lease ``name``, or None."""
        raise self._no_jobs()

    def release(self, name: str, owner: str) -> bool:
        """Drop the lease ``name`` if ``owner`` holds it."""
        raise self._no_jobs()

    def _no_jobs(self) -> NotImplementedError:
        return NotImplementedError(
            f"{type(self).__name__} keeps no consolidation ledger; use the SQLite or "
            "PostgreSQL store"
        )

    # learned utility (retrievals, feedback, utility estimates; see _utility_sql) -------------

    supports_utility: bool = False
    """Whether the store keeps retrievals, feedback and learned utility (``*_utility*``)."""

    def record_retrieval(self, rid: str, scope: str, ids: Sequence[str], at: float) -> None:
        """Remember which memory ids the retrieval ``rid`` showed to ``scope``."""
        raise self._no_utility()

    def retrieval(self, rid: str) -> RetrievalRow | None:
        """What the retrieval ``rid`` showed, or None when unknown."""
        raise self._no_utility()

    def utilities(self, ids: Sequence[str]) -> dict[str, UtilityRow]:
        """The learned utility of these memories (never-rewarded ones are absent)."""
        raise self._no_utility()

    def rated_utilities(self, min_count: int) -> list[UtilityRow]:
        """Every utility made by at least ``min_count`` rewards."""
        raise self._no_utility()

    def apply_feedback(self, feedback: FeedbackWrite) -> list[UtilityChange] | None:
        """Apply one feedback in one transaction (utility updates and their history entries);
        None when its feedback id was applied before (nothing changes)."""
        raise self._no_utility()

    def _no_utility(self) -> NotImplementedError:
        return NotImplementedError(
            f"{type(self).__name__} keeps no learned utility; use the SQLite or PostgreSQL store"
        )

    # API keys of the memory service (see _keys_sql; written by the server package) ----------

    supports_keys: bool = False
    """Whether the store keeps the memory service's API keys (``key_*``)."""

    def key_write(self, row: KeyRow) -> None:
        """Insert a new API key (its id must be new)."""
        raise self._no_keys()

    def key_get(self, key_id: str) -> KeyRow | None:
        """The API key ``key_id`` (revoked or not), or None."""
        raise self._no_keys()

    def key_rows(self, org_id: str | None = None) -> list[KeyRow]:
        """Every API key (of one org, if given), oldest first."""
        raise self._no_keys()

    def key_revoke(self, key_id: str, at: float) -> bool:
        """Revoke the key ``key_id``; False when no unrevoked key has that id."""
        raise self._no_keys()

    def _no_keys(self) -> NotImplementedError:
        return NotImplementedError(
            f"{type(self).__name__} keeps no API keys; use the SQLite or PostgreSQL store"
        )

    # note links and profile fields (see _notes_sql; written by agentmem.notes / .profiles) ---

    supports_notes: bool = False
    """Whether the store keeps links between notes and profile fields (``link_*``,
    ``profile_*``)."""

    def link_write(self, links: Sequence[LinkRow], deletes: Sequence[tuple[str, str]] = ()) -> None:
        """Insert or replace links and delete ``(source_id, target_id)`` pairs, atomically."""
        raise self._no_notes()

    def link_rows(self, ids: Sequence[str], scope: Scope | ScopeSet | None = None) -> list[LinkRow]:
        """Links touching any of ``ids`` (either end), limited to ``scope`` if given."""
        raise self._no_notes()

    def profile_write(
        self, rows: Sequence[ProfileRow], supersede: Sequence[tuple[str, float, float | None]] = ()
    ) -> None:
        """Close the rows ``(id, superseded_at, valid_to)`` and insert ``rows``, atomically."""
        raise self._no_notes()

    def profile_rows(
        self, profile_key: str, *, current_only: bool = True, field: str | None = None
    ) -> list[ProfileRow]:
        """A profile's current field values (or every version), oldest first."""
        raise self._no_notes()

    def _no_notes(self) -> NotImplementedError:
        return NotImplementedError(
            f"{type(self).__name__} keeps no note links or profiles; use the SQLite or "
            "PostgreSQL store"
        )

    # tables of modules outside the store (forgetting, quarantine: see _forget_sql) -------------

    supports_transact: bool = False
    """Whether :meth:`transact` runs SQL of other modules against this store's tables."""

    def transact(self, fn: Callable[[Cursor, str], T]) -> T:
        """Run ``fn(cursor, placeholder)`` in one transaction and return its result (the SQL
        of :mod:`agentmem.stores._forget_sql` runs through it on both engines)."""
        raise NotImplementedError(
            f"{type(self).__name__} cannot run forgetting or quarantine; use the SQLite or "
            "PostgreSQL store"
        )

    def __enter__(self) -> Self:
        self.setup()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


__all__ = [
    "IndexOp",
    "OutboxItem",
    "RecordQuery",
    "RecordStore",
    "StoreCounts",
    "WriteBatch",
]
