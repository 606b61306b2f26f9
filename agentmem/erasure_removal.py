"""The removal step of erasure (:mod:`agentmem.erasure`): a forgotten record's copies.

:func:`remove` deletes records with a content-free DELETE history entry, blanks (or with
``purge`` deletes) their history, drops the cached vectors of their texts and windows, and
queues their index entries for deletion (their conversation neighbours for re-indexing, since
the neighbours' windows held the forgotten text). :func:`erase_files` rewrites the files that
still hold deleted bytes after a purge. The other copies: :func:`scrub_absent` (the history of
memories deleted before the forget, found by :func:`deleted_before`), :func:`drop_links`,
:func:`withdraw_evolutions` (what a forgotten note's evolution added to the notes it linked
to), :func:`drop_profile` and :func:`clear_buffers`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from agentmem.backends import Backends
from agentmem.errors import BackendUnavailable, Conflict
from agentmem.models import (
    HistoryEntry,
    HistoryEvent,
    MemoryKind,
    MemoryRecord,
    Scope,
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
from agentmem.stores import (
    ForgetJournal,
    IndexOp,
    NoteStore,
    RecordStore,
    UtilityLedger,
    WriteBatch,
    require,
)

if TYPE_CHECKING:
    from agentmem.buffers import Buffers
    from agentmem.graph.base import GraphStore
    from agentmem.notes.linker import Withdrawal


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
    # Grouped once for every chunk: regrouping the whole scope per chunk made forgetting a
    # whole user quadratic in its size.
    conversations = _Conversations(records, config) if whole else None
    for start in range(0, len(records), size):
        chunk = list(records[start : start + size])
        hashes = {r.content_hash for r in chunk} | {
            content_hash(indexed_text(r, config)) for r in chunk
        }
        if conversations is not None:
            refresh: list[str] = []
            hashes |= {content_hash(t) for t in conversations.windows(chunk)}
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


def deleted_before(
    store: RecordStore, *, scope: Scope | None = None, ids: Sequence[str] = (), skip: set[str]
) -> dict[str, Scope]:
    """Memories deleted before and not forgotten since (their history keeps their content),
    in ``scope`` or among ``ids``, leaving out ``skip``."""
    journal = require(store, ForgetJournal, "forgetting")
    found = journal.history_only(scope=scope, ids=ids)
    fresh = [i for i in found if i not in skip]
    already = journal.tombstoned(fresh)
    return {i: found[i][0] for i in fresh if i not in already}


def scrub_absent(
    backends: Backends, targets: Sequence[str], present: set[str], *, purge: bool
) -> tuple[int, int]:
    """Blank (``purge``: delete) the history of targets no longer stored (deleted before the
    forget, or quarantined) and drop the cached vectors of the texts it held; returns (history
    rows touched, cached vectors dropped)."""
    absent = [i for i in targets if i not in present]
    if not absent:
        return 0, 0
    journal = require(backends.store, ForgetJournal, "forgetting")
    found = journal.history_only(ids=absent)
    if not found:
        return 0, 0
    hashes = sorted({content_hash(t) for _scope, texts in found.values() for t in texts})
    return journal.scrub(sorted(found), hashes, purge=purge)


def drop_links(backends: Backends, ids: Sequence[str]) -> int:
    """Remove the note links touching these ids; returns how many."""
    store = backends.store
    if not isinstance(store, NoteStore):
        return 0
    links = store.link_rows(list(ids))
    if links:
        store.link_write([], [(link.source_id, link.target_id) for link in links])
    return len(links)


def withdraw_evolutions(
    backends: Backends, ids: Sequence[str], gone: set[str], *, forget_id: str
) -> dict[str, int]:
    """Take what the evolution of the forgotten notes ``gone`` added out of the notes ``ids``
    (:func:`agentmem.notes.linker.withdrawal`): from the keywords, tags and context of every
    version in their history first, then of the note itself, as a new version (actor
    ``forget:<id>``) whose index entries are rebuilt; the cached vector of its old window
    text goes. Idempotent: a note no forgotten note is credited in is left as it is."""
    from agentmem.notes.linker import withdrawal

    counts = {"evolved_notes": 0, "history_entries": 0, "cached_vectors": 0}
    journal = require(backends.store, ForgetJournal, "forgetting")
    window_of = backends.settings.retrieval
    for record in backends.store.get_many(list(ids)):
        for _attempt in range(5):
            taken = withdrawal(record, gone)
            if taken is None:
                break
            rows = [
                (seq, taken.apply(old), taken.apply(new))
                for seq, _id, old, new in journal.history_metadata([record.id])
                if (taken.apply(old), taken.apply(new)) != (old, new)
            ]
            counts["history_entries"] += journal.history_metadata_write(rows)
            try:
                backends.store.apply(_withdrawn(record, taken, forget_id))
            except Conflict:  # a write raced this one: read the note again
                again = backends.store.get_many([record.id])
                if not again:
                    break
                record = again[0]
                continue
            window = content_hash(note_text(record, window_of))
            counts["cached_vectors"] += journal.scrub([], [window], purge=False)[1]
            counts["evolved_notes"] += 1
            break
    return counts


def _withdrawn(record: MemoryRecord, taken: Withdrawal, forget_id: str) -> WriteBatch:
    """The new version of an evolved note without a forgotten note's additions; its history
    entry keeps no metadata from before (that held the forgotten words)."""
    metadata = taken.apply(record.metadata) or {}
    now = utcnow()
    updated = record.model_copy(
        update={
            "metadata": metadata,
            "provenance": taken.provenance,
            "version": record.version + 1,
            "updated_at": now,
        }
    )
    entry = HistoryEntry(
        memory_id=record.id,
        scope=record.scope,
        event=HistoryEvent.UPDATE,
        version=updated.version,
        old_text=record.text,
        new_text=record.text,
        new_metadata=metadata,
        actor=f"forget:{forget_id}",
        at=now,
    )
    return WriteBatch(updates=[updated], history=[entry], index=[(record.id, IndexOp.UPSERT)])


def drop_profile(backends: Backends, ids: Sequence[str], whole: Scope | None) -> int:
    """Erase the profile field values read from these ids (``whole``: the scope's profile);
    a list field keeps the items its other facts gave (a new version), as a forget of a note
    takes exactly its additions out of the notes it evolved. Returns the versions erased."""
    if not isinstance(backends.store, NoteStore):
        return 0
    from agentmem.profiles.items import without_forgotten

    keep = partial(without_forgotten, ids=frozenset(ids), now=time.time())
    return backends.store.profile_erase(ids=list(ids), scope=whole, keep=keep)


def drop_utility(backends: Backends, ids: Sequence[str]) -> int:
    """Erase these ids from the learned-utility ledger (their utility, their place in logged
    retrievals and feedback, and the task text of that feedback); returns rows changed."""
    store = backends.store
    if not isinstance(store, UtilityLedger) or not ids:
        return 0
    backends.recalls.flush()  # retrievals still queued in memory reach the table first
    return store.utility_forget(list(ids))


def clear_buffers(buffers: Buffers, scope: Scope) -> int:
    """Delete the live buffers of every thread ``scope`` contains; returns the turns cleared."""
    from agentmem.buffers import scope_from_thread_key

    backend = buffers.ready()
    cleared = 0
    for key in backend.threads():
        if scope.contains(scope_from_thread_key(key)):
            cleared += backend.delete(key)
    return cleared


class _Conversations:
    """The conversations among ``everything`` (records of one exact scope, kind and session
    are neighbours in creation order, as the store's ``adjacent`` orders them), grouped once
    so the windows of each chunk of a whole-scope removal are looked up, not regrouped."""

    def __init__(self, everything: Sequence[MemoryRecord], config: RetrievalSettings) -> None:
        self.config = config
        self.groups: dict[tuple[Any, ...], list[MemoryRecord]] = {}
        for r in everything:
            if in_conversation(r, config):
                self.groups.setdefault(_key(r, config), []).append(r)
        self.position: dict[tuple[Any, ...], dict[str, int]] = {}
        for key, members in self.groups.items():
            members.sort(key=lambda m: (m.created_at, m.id))
            self.position[key] = {m.id: i for i, m in enumerate(members)}

    def windows(self, chunk: Sequence[MemoryRecord]) -> list[str]:
        """The window texts of ``chunk``'s records (each one of the grouped records)."""
        config = self.config
        out = []
        for r in chunk:
            if r.kind is not MemoryKind.EPISODIC:
                out.append(note_text(r, config))
                continue
            if not in_conversation(r, config):  # outside any conversation: windowed alone
                out.append(indexed_text(r, config))
                continue
            key = _key(r, config)
            members = self.groups.get(key, [r])
            i = self.position.get(key, {}).get(r.id, 0)
            before = members[max(0, i - config.window_turns) : i]
            after = members[i + 1 : i + 1 + config.window_turns]
            out.append(window_text(r, before, after, config))
        return out


def _key(record: MemoryRecord, config: RetrievalSettings) -> tuple[Any, ...]:
    return (tuple(sorted(record.scope.fields().items())), _group(record, config))


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


def drop_store_copy(backends: Backends, ids: list[str], scope: Scope | None) -> int:
    """Drop the stale graphs the outbox does not reach: the graph the record store still
    holds when another graph backend is configured (or the graph is off), and with the graph
    off, the graph on the server ``graph_url`` still names. From each, every partition holding
    a forgotten id, and with ``scope`` (a whole-scope forget) every partition that scope reads.
    A switch back then finds no forgotten item (``reindex --graph`` derives it again).
    Returns how many partitions went."""
    from agentmem.graph.rebuild import store_copy

    stale = store_copy(backends)
    dropped = 0 if stale is None else _drop_holding(stale, ids, scope)
    server = open_graph_server(backends, "the forget is journaled and finishes on the next open")
    if server is not None:
        try:
            dropped += _drop_holding(server, ids, scope)
        finally:
            server.close()
    return dropped


def _drop_holding(graph: GraphStore, ids: list[str], scope: Scope | None) -> int:
    from agentmem.graph.model import ItemKind

    scopes = {p.scope for kind in (ItemKind.FACT, ItemKind.LINK)
              for p in graph.partitions_holding(kind, ids)}  # fmt: skip
    dropped = sum(graph.drop(s) for s in scopes)
    return dropped + (graph.drop(scope) if scope is not None else 0)


def open_graph_server(backends: Backends, then: str) -> GraphStore | None:
    """The graph server ``graph_url`` names while the graph is switched off, connected: it
    keeps the graph written there before, which a forget must reach. None when the graph is
    on (the outbox reaches it) or no server is named. A server that does not answer is a
    :class:`~agentmem.errors.BackendUnavailable` saying what to do, ending with ``then``."""
    settings = backends.settings
    if settings.graph.enabled or settings.graph_url is None:
        return None
    from agentmem.graph import graph_from_settings

    on = settings.model_copy(update={"graph": settings.graph.model_copy(update={"enabled": True})})
    graph = graph_from_settings(on, backends.store)
    if graph is None:
        return None
    try:
        graph.setup()
    except BackendUnavailable as exc:
        raise BackendUnavailable(
            "the knowledge graph is switched off (graph.enabled=false) but AGENTMEM_GRAPH_URL "
            "still names a graph server, which keeps the graph written there before: a forget "
            f"must remove the forgotten memories from it and cannot reach it ({exc}). Start "
            "the server and forget again, or, if that graph is gone for good, drop it on its "
            f"server and unset AGENTMEM_GRAPH_URL; {then}"
        ) from exc
    return graph


def check_graph_server(backends: Backends) -> None:
    """Refuse a forget before it changes anything when the graph is off and the graph server
    ``graph_url`` names does not answer (:func:`open_graph_server`)."""
    server = open_graph_server(backends, "nothing was forgotten")
    if server is not None:
        server.close()


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


__all__ = [
    "check_graph_server",
    "clear_buffers",
    "deleted_before",
    "drop_links",
    "drop_profile",
    "drop_store_copy",
    "erase_files",
    "open_graph_server",
    "remove",
    "scrub_absent",
    "withdraw_evolutions",
]
