"""The removal step of erasure (:mod:`agentmem.erasure`): a forgotten record's copies.

:func:`remove` deletes records with a content-free DELETE history entry, blanks (or with
``purge`` deletes) their history, drops the cached vectors of their texts and windows, and
queues their index entries for deletion (their conversation neighbours for re-indexing, since
the neighbours' windows held the forgotten text). :func:`erase_files` rewrites the files that
still hold deleted bytes after a purge.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agentmem.backends import Backends
from agentmem.models import (
    HistoryEntry,
    HistoryEvent,
    MemoryKind,
    MemoryRecord,
    content_hash,
    utcnow,
)
from agentmem.representation import (
    in_conversation,
    indexed_text,
    neighbours_to_refresh,
    note_text,
    window_text,
    windows_for,
)
from agentmem.settings import RetrievalSettings
from agentmem.stores import ForgetJournal, IndexOp, WriteBatch, require


def remove(
    backends: Backends,
    records: Sequence[MemoryRecord],
    *,
    forget_id: str,
    purge: bool,
    whole: bool = False,
) -> dict[str, int]:
    """Delete records with content-free history, scrub their history and cached vectors.

    ``whole``: the records are a whole scope, so every neighbour of theirs goes too (nothing to
    re-index) and their windows are built in memory instead of two queries per record."""
    counts = {"records": 0, "history_entries": 0, "index_points": 0, "cached_vectors": 0}
    if not records:
        return counts
    config = backends.settings.retrieval
    size = backends.settings.forget.batch_size
    gone = {r.id for r in records}
    graph_before = _graph_partitions(backends, list(gone))
    now = utcnow()
    for start in range(0, len(records), size):
        chunk = list(records[start : start + size])
        hashes = {r.content_hash for r in chunk} | {
            content_hash(indexed_text(r, config)) for r in chunk
        }
        if whole:
            refresh: list[str] = []
            hashes |= {content_hash(t) for t in _windows_in_memory(chunk, records, config)}
        else:
            hashes |= {content_hash(t) for t in windows_for(backends.store, chunk, config).values()}
            refresh = neighbours_to_refresh(backends.store, chunk, config, exclude=gone)
            hashes |= {
                content_hash(t)
                for t in windows_for(
                    backends.store, backends.store.get_many(refresh), config
                ).values()
            }
        backends.store.apply(
            WriteBatch(
                deletes=[r.id for r in chunk],
                history=[
                    HistoryEntry(
                        memory_id=r.id,
                        scope=r.scope,
                        event=HistoryEvent.DELETE,
                        version=r.version + 1,
                        actor=f"forget:{forget_id}",
                        at=now,
                    )
                    for r in chunk
                ],
                index=[(r.id, IndexOp.DELETE) for r in chunk]
                + [(i, IndexOp.UPSERT) for i in refresh],
            )
        )
        touched, dropped = require(backends.store, ForgetJournal, "forgetting").scrub(
            [r.id for r in chunk], sorted(hashes), purge=purge
        )
        counts["records"] += len(chunk)
        counts["history_entries"] += touched
        counts["index_points"] += len(chunk)
        counts["cached_vectors"] += dropped
    counts["graph_partitions"] = graph_before
    return counts


def _windows_in_memory(
    chunk: Sequence[MemoryRecord], everything: Sequence[MemoryRecord], config: RetrievalSettings
) -> list[str]:
    """The window texts of ``chunk`` among ``everything`` (records of one exact scope, kind and
    session are neighbours in creation order, as the store's ``adjacent`` orders them)."""
    groups: dict[tuple[Any, ...], list[MemoryRecord]] = {}
    for r in everything:
        if in_conversation(r, config):
            key = (tuple(sorted(r.scope.fields().items())), _group(r, config))
            groups.setdefault(key, []).append(r)
    position: dict[tuple[Any, ...], dict[str, int]] = {}
    for key, members in groups.items():
        members.sort(key=lambda m: (m.created_at, m.id))
        position[key] = {m.id: i for i, m in enumerate(members)}
    out = []
    for r in chunk:
        if r.kind is not MemoryKind.EPISODIC:
            out.append(note_text(r, config))
            continue
        if not in_conversation(r, config):  # outside any conversation: windowed alone
            out.append(indexed_text(r, config))
            continue
        key = (tuple(sorted(r.scope.fields().items())), _group(r, config))
        members = groups.get(key, [r])
        i = position.get(key, {}).get(r.id, 0)
        prev = members[i - 1] if i > 0 else None
        nxt = members[i + 1] if i + 1 < len(members) else None
        out.append(window_text(r, prev, nxt, config))
    return out


def _group(record: MemoryRecord, config: RetrievalSettings) -> Any:
    value = record.metadata.get(config.window_group_key)
    return value if isinstance(value, str | int) and not isinstance(value, bool) else None


def _graph_partitions(backends: Backends, ids: list[str]) -> int:
    graph = getattr(backends, "graph", None)
    if graph is None or not backends.settings.graph.enabled:
        return 0
    from agentmem.graph.model import ItemKind

    keys = {
        p.key
        for kind in (ItemKind.FACT, ItemKind.LINK)
        for p in graph.partitions_holding(kind, ids)
    }
    return len(keys)


def erase_files(backends: Backends) -> int:
    """Erasure down to the bytes (``purge=True``): an embedded vector index is rewritten from
    the store (its write-ahead log and payload pages kept deleted points), and the store's
    files are compacted (free pages, write-ahead log). Returns how many were rewritten."""
    from agentmem.indexing import reindex

    rewritten = 0
    with backends.index_lock:
        if backends.index.erases_files and backends.index.erase_files():
            rewritten += 1
    if rewritten:
        reindex(backends)
    if backends.store.erase_free_space():
        rewritten += 1
    return rewritten


__all__ = ["erase_files", "remove"]
