"""Keep the knowledge graph in step with the facts, incrementally from the outbox.

The graph is derived from the store, like the vector index. Every acknowledged write passes
through the outbox (:func:`agentmem.indexing.sync_outbox`), which calls :func:`on_sync` with
the records it indexed and the ids it removed; each semantic fact is read into entity
mentions and relations (:mod:`agentmem.graph.fact_reading`) and applied to its scope's partition
(:mod:`agentmem.graph.working`). An update is idempotent (a fact already applied at its
version is skipped), so the crash repair of the outbox repairs the graph too.
:mod:`agentmem.graph.rebuild` derives graphs from the store again;
:mod:`agentmem.graph.merges` merges entities by hand and undoes merges.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from agentmem.embedders.base import checked_vectors
from agentmem.errors import Conflict, GraphCorrupt
from agentmem.graph.base import GraphStore
from agentmem.graph.fact_reading import read_fact
from agentmem.graph.model import GraphChange, ItemKind, partition_key
from agentmem.graph.resolve import Resolver, embed_names
from agentmem.graph.state import GraphState
from agentmem.graph.working import Working
from agentmem.models import MemoryKind, MemoryRecord, Scope, content_hash
from agentmem.settings import GraphSettings
from agentmem.stores import WriteBatch

if TYPE_CHECKING:
    from agentmem.backends import Backends

log = logging.getLogger(__name__)

Embed = Callable[[Sequence[str]], np.ndarray]

RETRIES = 3
"""Times an update is retried after another writer moved the partition's version."""


def name_embedder(backends: Backends) -> Embed | None:
    """Embeds entity names through the store's embedding cache (None: matching by embedding
    is switched off)."""
    if backends.settings.graph.embedding_threshold is None:
        return None

    def embed(names: Sequence[str]) -> np.ndarray:
        model = backends.embedder.name
        by_hash = {content_hash(n): n for n in names}
        cached = backends.store.cached_embeddings(model, list(by_hash))
        missing = [h for h in by_hash if h not in cached]
        if missing:
            backends.check_embedder()
            vectors = checked_vectors(
                backends.embedder,
                backends.embedder.embed_documents([by_hash[h] for h in missing]),
                len(missing),
            )
            fresh = list(zip(missing, vectors, strict=True))
            cached.update(fresh)
            backends.store.apply(WriteBatch(embeddings=[(model, h, v) for h, v in fresh]))
        return np.stack([cached[content_hash(n)] for n in names])

    return embed


def new_names(resolver: Resolver, records: Sequence[MemoryRecord]) -> list[str]:
    """Names the facts mention that the resolver does not know yet (to embed in one batch)."""
    names: list[str] = []
    for record in records:
        for mention in read_fact(record).mentions:
            if mention.name not in resolver.owners:
                names.append(mention.name)
    return list(dict.fromkeys(names))


def plan_update(
    state: GraphState,
    settings: GraphSettings,
    facts: Sequence[MemoryRecord],
    removed: Iterable[str] = (),
    embed: Embed | None = None,
) -> GraphChange:
    """The change that brings a partition up to date with these facts (new, or at a new
    version) and removed record ids (facts or episodes)."""
    working = Working(state, settings)
    for record_id in removed:
        working.remove_fact(record_id)
        working.remove_episode(record_id)
    todo = []
    for record in facts:
        entry = state.facts.get(record.id)
        if entry is not None and entry.version == record.version:
            continue  # already applied: updates are idempotent
        todo.append(record)
    if not todo and not working.deleted:
        return GraphChange()
    vectors = embed_names(embed, new_names(working.resolver, todo))
    for record in todo:
        working.remove_fact(record.id)
        working.add_fact(record, vectors)
    return working.change()


def on_sync(
    backends: Backends, records: Sequence[MemoryRecord], removed: Sequence[str]
) -> set[str]:
    """The graph step of the outbox: apply indexed facts and removed records to their
    partitions. A partition whose stored graph is corrupt is skipped with a warning (writes
    never fail for a derived index; reads say what to do). Returns the ids of the records
    whose update was skipped: their outbox entries stay queued, and are applied by a later
    sync once the partition reads again (after ``agentmem reindex --graph``)."""
    graph = backends.graph
    if graph is None or not backends.settings.graph.enabled:
        return set()
    facts = [r for r in records if r.kind is MemoryKind.SEMANTIC]
    work: dict[str, tuple[Scope, list[MemoryRecord], list[str]]] = {}
    for record in facts:
        key = partition_key(record.scope)
        work.setdefault(key, (record.scope, [], []))[1].append(record)
    if removed:
        for kind in (ItemKind.FACT, ItemKind.LINK):
            for partition in graph.partitions_holding(kind, removed):
                entry = work.setdefault(partition.key, (partition.scope, [], []))
                entry[2].extend(removed)
    skipped: set[str] = set()
    for scope, scoped_facts, scoped_removed in work.values():
        try:
            update_partition(backends, graph, scope, scoped_facts, dict.fromkeys(scoped_removed))
        except GraphCorrupt as exc:
            log.warning("knowledge graph not updated (kept queued in the outbox): %s", exc)
            skipped.update(r.id for r in scoped_facts)
            skipped.update(scoped_removed)
    return skipped


def update_partition(
    backends: Backends,
    graph: GraphStore,
    scope: Scope,
    facts: Sequence[MemoryRecord],
    removed: Iterable[str] = (),
) -> None:
    """Bring one partition up to date, retrying when another writer got there first."""
    removed = list(removed)
    embed = name_embedder(backends)
    for attempt in range(RETRIES + 1):
        state = graph.state_of(scope)
        change = plan_update(state, backends.settings.graph, facts, removed, embed)
        try:
            graph.write(state, change)
            return
        except Conflict:
            if attempt == RETRIES:
                raise
            graph.forget_cache()


__all__ = [
    "RETRIES",
    "Embed",
    "name_embedder",
    "new_names",
    "on_sync",
    "plan_update",
    "update_partition",
]
