"""Keep the vector index in step with the store: the outbox, and full reindexing.

The store records in its outbox every record whose index entry may be stale. After each write,
and on every open, :func:`sync_outbox` applies the outbox to the index and acknowledges it, so a
crash between the store commit and the index update is repaired on the next start.

A point the index refuses for its values (:class:`IndexRefused`: a value beyond the backend's
limits, which no retry cures) is left out of the index, logged, and its entry acknowledged
like the rest: one such record must not keep every later write, and every open, waiting on it.
The record stays in the store (``get``/``list`` find it; search does not).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import numpy as np

from agentmem.backends import Backends
from agentmem.embedders.base import checked_vectors
from agentmem.errors import IndexRefused, IndexUnreadable, ValidationError
from agentmem.models import MemoryRecord, content_hash
from agentmem.representation import indexed_text, window_parts, window_vector
from agentmem.stores import IndexOp, MaintenanceLog, OutboxItem, WriteBatch
from agentmem.vectors import VectorPoint, payload_for
from agentmem.vectors.base import BM25, WINDOW, WINDOW_BM25

logger = logging.getLogger(__name__)


def vectors_for_texts(
    backends: Backends, texts: Sequence[str]
) -> tuple[dict[str, np.ndarray], list[tuple[str, np.ndarray]]]:
    """Vectors by content hash of ``texts``: from the cache, embedding only what is missing.

    Returns the vectors and the newly computed (hash, vector) pairs to add to the cache.
    """
    name = backends.embedder.name
    by_hash = {content_hash(t): t for t in texts}
    cached = backends.store.cached_embeddings(name, list(by_hash))
    missing = [h for h in by_hash if h not in cached]
    for vector in cached.values():  # cached for this embedder, maybe for an older index
        backends.check_size(len(vector))
    fresh: list[tuple[str, np.ndarray]] = []
    if missing:
        backends.check_embedder()
        vectors = checked_vectors(
            backends.embedder,
            backends.embedder.embed_documents([by_hash[h] for h in missing]),
            len(missing),
        )
        fresh = list(zip(missing, vectors, strict=True))
        cached.update(fresh)
    return cached, fresh


def vectors_for(
    backends: Backends, records: Sequence[MemoryRecord]
) -> tuple[dict[str, np.ndarray], list[tuple[str, np.ndarray]]]:
    """Vectors of the records' indexed texts (see :mod:`agentmem.representation`)."""
    config = backends.settings.retrieval
    return vectors_for_texts(backends, [indexed_text(r, config) for r in records])


def sync_outbox(backends: Backends, batch_size: int = 1000) -> int:
    """Apply every pending outbox entry to the index; returns how many entries were applied.

    Call it after committing a write: on return, that write's entries are applied (by this
    call, or by a concurrent one that read the outbox after the commit). Concurrent writers
    queue on one lock, and the holder applies everything pending, so a writer whose entries a
    holder already applied returns without touching the store: under load the outbox is
    applied in batches instead of one reader per writer in turn.

    An index that fails (:class:`IndexUnreadable`) leaves the entries in the outbox, and the
    error says that the write itself was committed. An entry whose knowledge-graph update was
    skipped (a corrupt partition, :func:`agentmem.graph.build.on_sync`) stays in the outbox
    too, without an error, and is tried again by every later sync."""
    try:
        return _sync(backends, batch_size)
    except IndexUnreadable as exc:
        raise IndexUnreadable(
            "the change was saved in the store (nothing is lost), but the vector index could "
            "not be updated: it stays queued and is indexed on the next open once the index "
            f"works again (what to do follows). {exc}"
        ) from exc


def sync_on_open(backends: Backends) -> None:
    """Apply the outbox left by an earlier process; a damaged index (:class:`IndexUnreadable`)
    is only logged, so that the store stays readable and ``reindex --rebuild`` can repair it.
    So is a rebuild that did not finish (:func:`unfinished_rebuild`)."""
    try:
        _sync(backends)
    except IndexUnreadable as exc:
        logger.warning("pending index updates not applied: %s", exc)
    if (unfinished := unfinished_rebuild(backends)) is not None:
        logger.warning("%s", unfinished)


def unfinished_rebuild(backends: Backends) -> str | None:
    """What to do about a ``reindex --rebuild`` that began and has not finished (interrupted,
    or still running in another process), or None. Its rebuild emptied the index first, so
    until a reindex completes, search misses the records it had not indexed again."""
    store = backends.store
    if not isinstance(store, MaintenanceLog):
        return None
    started = store.maintenance_unfinished().get(_REBUILD)
    if started is None:
        return None
    when = datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds")
    return (
        f"a vector index rebuild (`agentmem reindex --rebuild`) started at {when} has not "
        "finished: it was interrupted, or still runs in another process. The index may miss "
        "records, which search then does not find; run `agentmem reindex --rebuild` "
        "(`mem.reindex(rebuild=True)`) again to finish it"
    )


# The maintenance task a rebuild records before it empties the index.
_REBUILD = "index_rebuild"


def _sync(backends: Backends, batch_size: int = 1000) -> int:
    ticket = next(backends.outbox_tickets)
    if backends.outbox_synced >= ticket:
        return 0
    applied = 0
    # One pooled connection for the pass, taken once the lock is held (a waiter holds none).
    with backends.index_lock, backends.store.pinned():
        if backends.outbox_synced >= ticket:  # applied by the holder this caller waited for
            return 0
        # Every ticket taken by now belongs to a commit this pass sees.
        seen = next(backends.outbox_tickets)
        # Entries this pass applied but left queued (their graph partition is corrupt): they
        # are the oldest still pending, so each read takes that many more and skips them, and
        # the pass still reaches the entries behind them.
        kept: set[int] = set()
        while True:
            limit = batch_size + len(kept)
            page = backends.store.pending_index(limit=limit)
            items = [i for i in page if i.seq not in kept]
            if items:
                left = _apply(backends, items)
                kept.update(left)
                applied += len(items) - len(left)
            if len(page) < limit or not items:
                break
        backends.outbox_synced = seen
        return applied


def _apply(backends: Backends, items: Sequence[OutboxItem]) -> set[int]:
    """Apply outbox entries to the index and the graph and acknowledge them, except those
    whose graph update was skipped (a corrupt partition): they stay queued for a later sync.
    Returns the sequence numbers of those."""
    last_op: dict[str, IndexOp] = {}
    for item in items:
        last_op[item.memory_id] = item.op
    upsert_ids = [i for i, op in last_op.items() if op is IndexOp.UPSERT]
    delete_ids = [i for i, op in last_op.items() if op is IndexOp.DELETE]
    records = backends.store.get_many(upsert_ids)
    # A record deleted after its upsert was queued has no row; drop its point too.
    gone = set(upsert_ids) - {r.id for r in records}
    refused = _upsert(backends, records)
    if records and backends.index.supports_concurrent_processes:
        # Another process sharing the index may have deleted one of these records (and its
        # point) between the read above and the upsert, which wrote the point back: read
        # again, after the upsert, and drop the points of records gone by now. (An index of
        # one process has no such writer: its deletes queue behind this apply.)
        written = [r.id for r in records]
        gone |= set(written) - {f.id for f in backends.store.rank_fields(written)}
        records = [r for r in records if r.id not in gone]
    # A refused record keeps no point: an older version's would be stale.
    backends.index.delete([*delete_ids, *gone, *refused])
    skipped: set[str] = set()
    if backends.graph is not None:
        skipped = _sync_graph(backends, records, [*delete_ids, *sorted(gone)])
    left = {item.seq for item in items if item.memory_id in skipped}
    backends.store.ack_index([item.seq for item in items if item.seq not in left])
    return left


def _sync_graph(
    backends: Backends, records: Sequence[MemoryRecord], removed: list[str]
) -> set[str]:
    """The knowledge graph is derived too: facts indexed here update it (before the ack, so a
    crash in between is repaired on the next open like the index). Returns the record ids
    whose graph update was skipped."""
    # Imported here: agentmem.graph reads facts with agentmem.semantic, which imports this
    # module, so a module-level import would be circular.
    from agentmem.graph.build import on_sync

    return on_sync(backends, records, removed)


def _upsert(backends: Backends, records: Sequence[MemoryRecord]) -> list[str]:
    """Index ``records``; returns the ids of those the index refused (see :func:`_write`)."""
    if not records:
        return []
    config = backends.settings.retrieval
    texts = {r.id: indexed_text(r, config) for r in records}
    windows = window_parts(backends.store, records, config) if config.windows else {}
    # One model call per memory: an episode's window vector is made from its own and its
    # neighbours' vectors (cached when they were added); only a note's window text is embedded.
    needed = [*texts.values()]
    for window in windows.values():
        needed.extend(window.parts or (window.text,))
    vectors, fresh = vectors_for_texts(backends, needed)
    if fresh:
        backends.store.apply(
            WriteBatch(embeddings=[(backends.embedder.name, h, v) for h, v in fresh])
        )
    bm25 = backends.bm25
    points = []
    for r in records:
        text = texts[r.id]
        dense: dict[str, np.ndarray] = {}
        sparse = {BM25: bm25.document(text)}
        if r.id in windows:
            window = windows[r.id]
            if window.parts:
                own, *around = (vectors[content_hash(t)] for t in window.parts)
                dense[WINDOW] = window_vector(own, around, config.window_self_weight)
            else:
                dense[WINDOW] = vectors[content_hash(window.text)]
            sparse[WINDOW_BM25] = bm25.document(window.text)
        points.append(
            VectorPoint(
                r.id, vectors[content_hash(text)], payload_for(r), dense=dense, sparse=sparse
            )
        )
    return _write(backends, points)


def _write(backends: Backends, points: Sequence[VectorPoint]) -> list[str]:
    """Upsert ``points``; when the index refuses the batch (:class:`IndexRefused`), write them
    one by one and return the ids of those it still refuses, each logged."""
    try:
        backends.index.upsert(points)
        return []
    except IndexRefused:
        pass
    refused: list[str] = []
    for p in points:
        try:
            backends.index.upsert([p])
        except IndexRefused as exc:
            logger.warning(
                "memory %s is stored but left out of the vector index (search will not find "
                "it; get and list do): %s",
                p.id,
                exc,
            )
            refused.append(p.id)
    return refused


def reindex(
    backends: Backends,
    *,
    rebuild: bool = False,
    page: int = 500,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Make the index match the store: apply the outbox, upsert every record, drop strays.

    With ``rebuild`` the index's points are all removed first, and an embedded index that
    fails (:class:`IndexUnreadable`: damaged files) is moved aside, kept, and built anew (the
    records are then indexed, and ``progress`` told, a second time). A rebuild is recorded
    in the store before the index is emptied and cleared once every record is back, so an
    interrupted one is reported on the next open (:func:`unfinished_rebuild`) until a
    reindex, of either kind, completes. Returns the records indexed.
    """
    if progress is not None and not callable(progress):
        raise ValidationError(
            f"progress must be a function taking a count, got {type(progress).__name__}"
        )
    backends.check_embedder()  # before a rebuild empties the index
    store = backends.store
    log = store if isinstance(store, MaintenanceLog) else None
    started = time.time()
    if rebuild:
        if log is not None:  # before a point goes: an interrupted rebuild is named on open
            log.maintenance_begin(_REBUILD, started)
        total = _rebuild(backends, page, progress)
    else:
        _sync(backends)
        total = _index_all(backends, page, progress)
    if log is not None:  # every record is indexed now: an earlier rebuild is finished too
        log.maintenance_end(_REBUILD, started_by=started)
    return total


def _rebuild(backends: Backends, page: int, progress: Callable[[int], None] | None) -> int:
    try:
        with backends.index_lock:
            _drop_all_points(backends)
        _sync(backends)
        return _index_all(backends, page, progress)
    except IndexUnreadable as exc:
        with backends.index_lock:
            aside = backends.index.set_aside()
        if aside is None:
            raise
        logger.warning("moved the unreadable vector index aside to %s (%s)", aside, exc)
    _sync(backends)
    return _index_all(backends, page, progress)


def _index_all(backends: Backends, page: int, progress: Callable[[int], None] | None) -> int:
    with backends.index_lock:
        store_ids: set[str] = set()
        after: str | None = None
        total = 0
        while True:
            ids = backends.store.all_ids(after=after, limit=page)
            if not ids:
                break
            records = backends.store.get_many(ids)
            backends.index.delete(_upsert(backends, records))  # no stale point of a refused one
            store_ids.update(ids)
            total += len(records)
            after = ids[-1]
            if progress is not None:
                progress(len(records))
        strays = [i for i in _all_point_ids(backends) if i not in store_ids]
        backends.index.delete(strays)
        # A record another process added after its page was read is no stray: whichever of
        # them the store holds now gets its point back (read after the delete, so a record
        # committed meanwhile is either seen here or indexed by its writer afterwards).
        _upsert(backends, backends.store.get_many(strays))
    return total


def _all_point_ids(backends: Backends) -> list[str]:
    return backends.index.ids(limit=10_000_000)


def _drop_all_points(backends: Backends) -> None:
    ids = _all_point_ids(backends)
    for start in range(0, len(ids), 1000):
        backends.index.delete(ids[start : start + 1000])


__all__ = [
    "reindex",
    "sync_on_open",
    "sync_outbox",
    "unfinished_rebuild",
    "vectors_for",
    "vectors_for_texts",
]
