"""Derive knowledge graphs from the store again: what ``agentmem reindex --graph`` runs.

The graph is derived from the store, like the vector index; :func:`rebuild_graphs` drops a scope's
stored partitions (a corrupt one included, e.g. after :class:`~agentmem.errors.GraphCorrupt`)
and applies its facts again in the order they were stored, keeping the user's decisions
(manual and undone merges).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agentmem.errors import ValidationError
from agentmem.graph.base import GraphStore
from agentmem.graph.build import name_embedder, new_names
from agentmem.graph.merges import plan_merge
from agentmem.graph.model import GraphChange, ItemKind, Merge, MergeMethod, load_item, partition_key
from agentmem.graph.resolve import embed_names
from agentmem.graph.state import GraphState
from agentmem.graph.working import Working, merge_keeping
from agentmem.indexing import sync_outbox
from agentmem.models import MemoryKind, MemoryRecord, Scope, ScopeSet
from agentmem.stores import RecordQuery

if TYPE_CHECKING:
    from agentmem.backends import Backends


@dataclass(frozen=True)
class RebuildReport:
    """What :func:`rebuild_graphs` did."""

    partitions: int
    facts: int
    entities: int
    relations: int
    seconds: float


def store_copy(backends: Backends) -> GraphStore | None:
    """The graph kept in the record store's own tables when it is not the configured graph
    (left there by the networkx backend before a switch to a graph server, or before the graph
    was switched off): a stale copy, which a forget and a rebuild still reach. None when the
    store is the configured graph or keeps no graph tables."""
    from agentmem.graph.networkx_store import NetworkXGraphStore
    from agentmem.stores import GraphRows

    own = isinstance(backends.graph, NetworkXGraphStore) and backends.settings.graph.enabled
    if own or not isinstance(backends.store, GraphRows):
        return None
    return NetworkXGraphStore(backends.store)


def _saved_merges(graph: GraphStore, scope: Scope | ScopeSet | None) -> dict[str, list[Merge]]:
    """Manual and undone merges of the partitions about to be rebuilt (unreadable rows of a
    corrupt partition are skipped): user decisions survive a rebuild."""
    saved: dict[str, list[Merge]] = {}
    for partition in graph.partitions(scope):
        for kind, _, data in graph.read_rows(partition):
            if kind != ItemKind.MERGE.value:
                continue
            try:
                merge = load_item(kind, data)
            except Exception:  # a corrupt row is exactly what a rebuild repairs
                continue
            if isinstance(merge, Merge) and (
                merge.method is MergeMethod.MANUAL or merge.undone_at is not None
            ):
                saved.setdefault(partition.key, []).append(merge)
    return saved


def _facts_by_partition(
    backends: Backends, scope: Scope | ScopeSet | None, page: int = 1000
) -> dict[str, tuple[Scope, list[MemoryRecord]]]:
    out: dict[str, tuple[Scope, list[MemoryRecord]]] = {}

    def keep(record: MemoryRecord) -> None:
        if record.kind is MemoryKind.SEMANTIC:
            out.setdefault(partition_key(record.scope), (record.scope, []))[1].append(record)

    if scope is None:
        after: str | None = None
        while ids := backends.store.all_ids(after=after, limit=page):
            for record in backends.store.get_many(ids):
                keep(record)
            after = ids[-1]
    else:
        offset = 0
        while True:
            batch = backends.store.query(
                RecordQuery(
                    scope=scope,
                    kinds=(MemoryKind.SEMANTIC,),
                    include_invalidated=True,
                    limit=page,
                    offset=offset,
                )
            )
            for record in batch:
                keep(record)
            if len(batch) < page:
                break
            offset += page
    for _, records in out.values():
        records.sort(key=lambda r: (r.created_at, r.id))
    return out


def rebuild_graphs(backends: Backends, scope: Scope | ScopeSet | None = None) -> RebuildReport:
    """Derive the graphs a scope may read (every graph for ``None``) from the store again.

    The stored partitions are dropped without being read (a corrupt one included), then each
    scope's facts are applied in the order they were stored. Manual merges and undone merges
    are kept. Communities are recomputed on next use. On a graph server, the scope's graph
    left in the record store's tables by the networkx backend is dropped too. Outbox entries
    kept queued while a partition was corrupt are applied afterwards.
    """
    started = time.perf_counter()
    graph = backends.graph
    if graph is None:
        raise ValidationError("this Memory keeps no knowledge graph (graph.enabled is off)")
    saved = _saved_merges(graph, scope)
    graph.drop(scope)
    stale = store_copy(backends)
    if stale is not None:  # the new backend replaces it: it must not come back on a switch
        stale.drop(scope)
    settings = backends.settings.graph
    embed = name_embedder(backends)
    totals = [0, 0, 0, 0]
    existing_episodes: set[str] = set()
    groups = _facts_by_partition(backends, scope)
    all_sources = {
        s for _, rs in groups.values() for r in rs for s in r.provenance.get("sources", [])
    }
    sources = [s for s in all_sources if isinstance(s, str)]
    for start in range(0, len(sources), 500):
        existing_episodes.update(
            r.id for r in backends.store.get_many(sources[start : start + 500])
        )
    for key, (part_scope, records) in sorted(groups.items()):
        state = GraphState(part_scope, key, 0)
        working = Working(state, settings)
        merges = saved.get(key, [])
        for merge in merges:
            if merge.undone_at is not None:
                working.resolver.keep_apart(merge.names, merge.entity_id)
        vectors = embed_names(embed, new_names(working.resolver, records))
        for record in records:
            sources_of = record.provenance.get("sources", [])
            if isinstance(sources_of, list):
                kept = [s for s in sources_of if s in existing_episodes]
                if kept != sources_of:
                    record = record.model_copy(
                        update={"provenance": {**record.provenance, "sources": kept}}
                    )
            working.add_fact(record, vectors)
        change = working.change()
        change.replace = True
        graph.write(state, change)
        for merge in merges:
            _replay(backends, graph, state, merge)
        totals[0] += 1
        totals[1] += len(records)
        totals[2] += len(state.entities)
        totals[3] += len(state.relations)
    # Outbox entries left queued while a partition was corrupt (see graph.build.on_sync) are
    # in the rebuilt graph now: applying them again acknowledges them.
    sync_outbox(backends)
    return RebuildReport(
        partitions=totals[0],
        facts=totals[1],
        entities=totals[2],
        relations=totals[3],
        seconds=time.perf_counter() - started,
    )


def _replay(backends: Backends, graph: GraphStore, state: GraphState, merge: Merge) -> None:
    """Keep a user's merge decision across a rebuild (as far as the entities still exist,
    and only with the names facts still use)."""
    active = merge.method is MergeMethod.MANUAL and merge.undone_at is None
    if active and merge.absorbed_id and {merge.entity_id, merge.absorbed_id} <= set(state.entities):
        change = plan_merge(
            state, backends.settings.graph, merge.entity_id, merge.absorbed_id, merge_id=merge.id
        )
        graph.write(state, change)
        return
    kept = merge_keeping(merge, state.names().__contains__)
    if kept is not None:
        graph.write(state, GraphChange(upserts=[kept]))


__all__ = ["RebuildReport", "rebuild_graphs", "store_copy"]
