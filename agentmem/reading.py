"""Reads that are not searches: a scope's records page by page, a record's history, and the
sizes of the whole memory. Shared by :class:`~agentmem.Memory` and agent handles."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from agentmem.backends import Backends
from agentmem.errors import LIST_IDS, IndexUnreadable, ModelUnavailable, NotFound, ValidationError
from agentmem.filters import parse_filters
from agentmem.indexing import unfinished_rebuild
from agentmem.models import HistoryEntry, MemoryKind, MemoryRecord, MemoryStats, Scope, ScopeSet
from agentmem.stores import RecordQuery
from agentmem.urls import redact
from agentmem.validation import check_k, check_kinds, check_offset, check_time


def list_records(
    backends: Backends,
    scope: Scope | ScopeSet,
    *,
    kinds: Sequence[str | MemoryKind] | str | None = None,
    filters: dict[str, Any] | None = None,
    include_invalidated: bool = False,
    event_after: datetime | str | None = None,
    event_before: datetime | str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[MemoryRecord]:
    """Records visible to ``scope``, oldest first, paged by ``limit`` and ``offset``; every
    argument is checked before the store is asked."""
    return backends.store.query(
        RecordQuery(
            scope=scope,
            kinds=check_kinds(kinds),
            conditions=parse_filters(filters),
            include_invalidated=include_invalidated,
            event_after=check_time(event_after, what="event_after"),
            event_before=check_time(event_before, what="event_before"),
            limit=check_k(limit, limit=100_000, what="limit"),
            offset=check_offset(offset),
        )
    )


def history_of(backends: Backends, memory_id: Any, scope: Scope | None) -> list[HistoryEntry]:
    """Every change to a memory, oldest first (kept after it is deleted), or
    :class:`~agentmem.errors.NotFound` when it has none visible to ``scope``."""
    if not isinstance(memory_id, str) or not memory_id:
        raise ValidationError(
            f"memory id must be a non-empty string, got {type(memory_id).__name__}; "
            f"pass one id ({LIST_IDS})"
        )
    entries = backends.store.history(memory_id, scope)
    if not entries:
        where = f" in scope {scope}" if scope is not None else ""
        raise NotFound(f"no history for memory id {memory_id!r}{where}; {LIST_IDS}")
    return entries


def stats(backends: Backends) -> MemoryStats:
    """How many memories, history entries, indexed vectors and pending index updates."""
    counts = backends.store.counts()
    index_error = None
    try:
        indexed = backends.index.count()
    except IndexUnreadable as exc:  # the store's counts are still worth showing
        indexed, index_error = 0, str(exc)
    return MemoryStats(
        records=counts.records,
        by_kind=counts.by_kind,
        history_entries=counts.history_entries,
        indexed_vectors=indexed,
        index_error=index_error,
        index_incomplete=unfinished_rebuild(backends),
        pending_index=counts.pending_index,
        store_url=redact(backends.store.url),
        vectors_url=redact(backends.index.url),
        embedder=_embedder_name(backends),
    )


def _embedder_name(backends: Backends) -> str:
    """The embedder's name; for a model whose files cannot be read (a name is made from them),
    its setting and why, so that stats still answer."""
    try:
        return backends.embedder.name
    except ModelUnavailable as exc:
        return f"{backends.settings.embedder} (unusable: {exc})"


__all__ = ["history_of", "list_records", "stats"]
