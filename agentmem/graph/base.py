"""The graph store: the interface every knowledge-graph backend implements.

A backend keeps **partitions** (one per exact scope, see :mod:`agentmem.graph.model`), each a
set of items with a version. Its abstract core is five methods over whole items: list the
partitions a scope may read (isolation lives in that query), find the partitions holding some
items, read a partition's items, write one :class:`~agentmem.graph.model.GraphChange`
atomically with compare-and-set on the version, and drop partitions. Everything else is
concrete here: a partition is loaded into a :class:`~agentmem.graph.state.GraphState` (checked
on load: :class:`~agentmem.errors.GraphCorrupt` if it cannot be read), cached while its stored
version and generation do not move, and every change is checked before it is written.

A partition's **generation** is a random id given when it is first written: a partition
dropped and written again (``agentmem reindex --graph``) starts again at version 1 as a new
generation, so a copy another process cached before the drop, at the same version number, is
reloaded instead of served, and a write computed on it is a ``Conflict``.

Bounded reads (:meth:`GraphStore.subgraph`: the k-hop neighbourhood of some entities, with the
facts and episodes that mention them) are concrete too, built from four small reads that a
server backend answers with indexed queries instead of loading the whole partition.

Lifecycle as for the other backends: a constructor that does no I/O, ``setup()`` (idempotent:
tables, indexes and constraints), ``close()``, context-manager use.
"""

from __future__ import annotations

import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from types import TracebackType
from typing import Self

from agentmem.errors import GraphCorrupt, ValidationError
from agentmem.graph.model import (
    Entity,
    EpisodeLink,
    FactEntry,
    GraphChange,
    GraphItem,
    ItemKind,
    dump_item,
    load_item,
    partition_key,
)
from agentmem.graph.state import GraphState
from agentmem.models import Scope, ScopeSet
from agentmem.stores._graph_sql import GraphPartition


class GraphStore(ABC):
    """Knowledge graphs, one partition per scope, loaded into memory for the algorithms."""

    url: str
    persistent: bool = True
    """Whether graphs survive a restart of the process."""
    shared: bool = False
    """Whether several processes may write the same graphs (each reloads a partition whose
    version moved)."""
    bounded_reads: bool = False
    """Whether the bounded reads below are answered by the backend (indexed queries on a
    server) rather than from the whole partition in memory."""

    def __init__(self) -> None:
        self._cache: dict[str, GraphState] = {}
        self._lock: threading.RLock = threading.RLock()

    # the abstract core --------------------------------------------------------------------

    @abstractmethod
    def setup(self) -> None:
        """Connect and create what the backend needs (tables, indexes, constraints). Safe to
        call again."""

    @abstractmethod
    def close(self) -> None:
        """Release connections. Safe to call again."""

    @abstractmethod
    def partitions(self, scope: Scope | ScopeSet | None) -> list[GraphPartition]:
        """The stored partitions a query scope may read (every one for ``None``), by key.
        A partition is readable when the query scope contains the partition's scope."""

    @abstractmethod
    def partitions_holding(self, kind: ItemKind, item_ids: Sequence[str]) -> list[GraphPartition]:
        """The partitions holding an item of ``kind`` with one of these ids."""

    @abstractmethod
    def read_rows(self, partition: GraphPartition) -> list[tuple[str, str, str]]:
        """Every stored item of a partition as ``(kind, id, json)``."""

    @abstractmethod
    def write_change(
        self,
        scope: Scope,
        key: str,
        expected_version: int,
        change: GraphChange,
        *,
        generation: str,
    ) -> int:
        """Apply a (checked, compacted) change in one transaction if the partition is still
        ``generation`` at ``expected_version`` (0: not stored yet; it is then created as
        ``generation``); returns the new version. Raises :class:`~agentmem.errors.Conflict`
        otherwise."""

    @abstractmethod
    def drop_partitions(self, scope: Scope | ScopeSet | None) -> int:
        """Delete the partitions a scope may read (all for ``None``); returns how many."""

    # concrete conveniences ------------------------------------------------------------------

    @property
    def lock(self) -> threading.RLock:
        """Held while a cached partition changes; hold it to read partitions consistently
        while other threads write (reentrant)."""
        return self._lock

    def state(self, partition: GraphPartition) -> GraphState:
        """A stored partition in memory (cached while its version and generation do not
        move). :class:`~agentmem.errors.GraphCorrupt` when its items cannot be read, or when
        it is marked broken."""
        with self._lock:
            if partition.broken:
                self._cache.pop(partition.key, None)
                raise _broken(partition)
            cached = self._cache.get(partition.key)
            if (
                cached is not None
                and cached.version == partition.version
                and cached.generation == partition.generation
            ):
                return cached
            loaded = GraphState.from_rows(
                partition.scope,
                partition.key,
                partition.version,
                self.read_rows(partition),
                generation=partition.generation,
            )
            self._cache[partition.key] = loaded
            return loaded

    def states(self, scope: Scope | ScopeSet) -> list[GraphState]:
        """Every partition a query scope may read, in memory."""
        return [self.state(p) for p in self.partitions(scope)]

    def state_of(self, scope: Scope) -> GraphState:
        """The partition of exactly this scope (empty, version 0, when none is stored yet)."""
        key = partition_key(scope)
        for partition in self.partitions(scope):
            if partition.key == key:
                return self.state(partition)
        with self._lock:
            self._cache.pop(key, None)
        return GraphState(scope, key, 0)

    def write(self, state: GraphState, change: GraphChange) -> None:
        """Check ``change`` against ``state``, store it, then apply it to ``state`` (which
        becomes the cached copy). Bad changes raise :class:`~agentmem.errors.ValidationError`
        and store nothing; a concurrent writer makes it :class:`~agentmem.errors.Conflict`."""
        change = change.compact()
        if change.is_empty():
            return
        with self._lock:
            state.check(change)
            # A partition written for the first time is a new generation.
            generation = state.generation if state.version else uuid.uuid4().hex
            try:
                version = self.write_change(
                    state.scope, state.key, state.version, change, generation=generation
                )
                state.apply(change)
            except BaseException:
                self._cache.pop(state.key, None)
                raise
            state.version, state.generation = version, generation
            self._cache[state.key] = state

    def drop(self, scope: Scope | ScopeSet | None = None) -> int:
        """Delete the graphs a scope may read (all for ``None``); returns how many partitions."""
        with self._lock:
            try:
                dropped = self.drop_partitions(scope)
            finally:
                self.forget_cache()
        return dropped

    def forget_cache(self) -> None:
        """Drop every partition held in memory, and anything cached about them (they are read
        again on next use)."""
        with self._lock:
            self._cache.clear()

    # bounded reads -----------------------------------------------------------------------
    # In memory here; the Cypher backends answer each with one indexed query instead.

    def entity_count(self, partition: GraphPartition) -> int:
        """How many entities a partition holds."""
        return len(self.state(partition).entities)

    def entities_named(self, partition: GraphPartition, names: Sequence[str]) -> list[str]:
        """Ids of the partition's entities known by one of these normalised names, sorted."""
        state = self.state(partition)
        return sorted({owner for n in names if (owner := state.owner(n)) is not None})

    def neighbour_ids(
        self, partition: GraphPartition, ids: Sequence[str], exclude: Sequence[str], limit: int
    ) -> list[str]:
        """Entities one relation away from ``ids`` (either direction) and not in ``exclude``:
        the smallest ``limit`` ids, sorted."""
        graph = self.state(partition).graph
        found: set[str] = set()
        for entity_id in ids:
            if graph.has_node(entity_id):
                found.update(graph.successors(entity_id))
                found.update(graph.predecessors(entity_id))
        return sorted(found - set(exclude))[:limit]

    def item_rows(
        self, partition: GraphPartition, kind: ItemKind, ids: Sequence[str]
    ) -> list[tuple[str, str, str]]:
        """Rows ``(kind, id, json)`` of the partition's nodes of ``kind`` with these ids."""
        state = self.state(partition)
        found = (state.get(kind, i) for i in dict.fromkeys(ids))
        return [(kind.value, item.id, dump_item(item)) for item in found if item is not None]

    def relation_rows_between(
        self, partition: GraphPartition, ids: Sequence[str]
    ) -> list[tuple[str, str, str]]:
        """Rows ``(kind, id, json)`` of the relations whose two ends are both in ``ids``."""
        state = self.state(partition)
        inside = set(ids)
        return [
            (ItemKind.RELATION.value, r.id, dump_item(r))
            for r in state.relations.values()
            if r.source in inside and r.target in inside
        ]

    def subgraph(
        self,
        partition: GraphPartition,
        seeds: Sequence[str],
        *,
        hops: int = 2,
        max_entities: int = 2000,
    ) -> GraphState:
        """The bounded neighbourhood of ``seeds`` (entity ids) as a graph of its own: entities
        reached by a breadth-first walk of at most ``hops`` relations (either direction; at
        most ``max_entities``, smallest ids first at each hop), the relations between them, the
        facts that mention them and those facts' episodes (their links trimmed to the entities
        present). Every backend returns the same subgraph for the same data."""
        if partition.broken:
            raise _broken(partition)
        if not 0 <= hops <= 5:
            raise ValidationError(f"hops must be between 0 and 5, got {hops!r}")
        if max_entities < 1:
            raise ValidationError(f"max_entities must be at least 1, got {max_entities!r}")
        entity = ItemKind.ENTITY
        known = [i for _, i, _ in self.item_rows(partition, entity, sorted(set(seeds)))]
        visited = sorted(known)[:max_entities]
        frontier = visited
        for _ in range(hops):
            room = max_entities - len(visited)
            if not frontier or room <= 0:
                break
            frontier = self.neighbour_ids(partition, frontier, visited, room)
            visited = [*visited, *frontier]
        rows = self.item_rows(partition, entity, visited)
        rows += self.relation_rows_between(partition, visited)
        items: list[GraphItem] = [load_item(kind, data) for kind, _, data in rows]
        fact_ids = sorted({f for item in items if isinstance(item, Entity) for f in item.fact_ids})
        facts = [
            load_item(kind, data)
            for kind, _, data in self.item_rows(partition, ItemKind.FACT, fact_ids)
        ]
        episode_ids = sorted({e for f in facts if isinstance(f, FactEntry) for e in f.episode_ids})
        inside = set(visited)
        for kind, _, data in self.item_rows(partition, ItemKind.LINK, episode_ids):
            link = load_item(kind, data)
            assert isinstance(link, EpisodeLink)
            keep = [i for i, e in enumerate(link.entity_ids) if e in inside]
            parallel = len(link.names) == len(link.entity_ids)
            names = [link.names[i] for i in keep] if parallel else link.names
            entity_ids = [link.entity_ids[i] for i in keep]
            items.append(link.model_copy(update={"entity_ids": entity_ids, "names": names}))
        state = GraphState(partition.scope, partition.key, partition.version, partition.generation)
        state.apply(GraphChange(upserts=[*items, *facts]))
        return state

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


def _broken(partition: GraphPartition) -> GraphCorrupt:
    return GraphCorrupt(
        f"the stored knowledge graph of scope {partition.scope} is incomplete: a change to it "
        "was only partly written (the graph server rejected one of its statements, e.g. on a "
        "query timeout or memory limit); rebuild it from the store with `agentmem reindex "
        "--graph` (or mem.graph.rebuild()); no memory is lost"
    )


__all__ = ["GraphPartition", "GraphStore"]
