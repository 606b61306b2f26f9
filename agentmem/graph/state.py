"""One partition of the knowledge graph in memory: its items and a networkx MultiDiGraph.

Both graph backends load a partition into a :class:`GraphState` (the embedded backend keeps it
there; Neo4j is read into it), and every algorithm (resolution, PageRank, communities, paths,
export) runs on it. :meth:`GraphState.apply` checks a :class:`~agentmem.graph.model.GraphChange`
before touching anything, so a change that would leave the graph inconsistent (a relation to
a missing entity, one name owned by two entities, a cycle in the community hierarchy, an item
of another scope) raises :class:`~agentmem.errors.ValidationError` and changes nothing.
Loading stored items goes through the same checks: what fails them is
:class:`~agentmem.errors.GraphCorrupt`, except a broken community hierarchy, which is derived
data and is dropped (and recomputed) with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError as PydanticValidationError

from agentmem.errors import GraphCorrupt, ValidationError, first_message
from agentmem.graph.model import (
    META_ID,
    Community,
    Entity,
    EpisodeLink,
    FactEntry,
    GraphChange,
    GraphItem,
    GraphMeta,
    ItemKind,
    Merge,
    Relation,
    load_item,
)
from agentmem.models import Scope

if TYPE_CHECKING:
    import networkx as nx

log = logging.getLogger(__name__)


class GraphState:
    """A partition's items, a networkx ``MultiDiGraph`` (entity nodes, relation edges keyed by
    relation id) and a name index. ``version`` is the stored version it reflects, of the
    stored partition's ``generation`` (see :class:`~agentmem.graph.base.GraphPartition`;
    ``""`` before the partition is first written)."""

    def __init__(self, scope: Scope, key: str, version: int = 0, generation: str = "") -> None:
        self.scope = scope
        self.key = key
        self.version = version
        self.generation = generation
        self._reset()

    def _reset(self) -> None:
        import networkx as nx

        self.entities: dict[str, Entity] = {}
        self.relations: dict[str, Relation] = {}
        self.links: dict[str, EpisodeLink] = {}
        self.facts: dict[str, FactEntry] = {}
        self.merges: dict[str, Merge] = {}
        self.communities: dict[str, Community] = {}
        self.meta: GraphMeta | None = None
        self.graph: nx.MultiDiGraph = nx.MultiDiGraph()
        self.stale_communities: set[str] = set()
        """Stored community ids dropped on load (a broken hierarchy): deleted by the next
        community computation."""
        self.derived: dict[str, Any] = {}
        """Caches built from the items (PageRank graph, name lists); cleared on every change."""
        self.vectors: dict[str, np.ndarray] = {}
        """Entity id -> its name embedding as an array (kept in step by :meth:`apply`)."""
        self._owner: dict[str, str] = {}

    # reads -------------------------------------------------------------------------------

    def owner(self, normalised: str) -> str | None:
        """The entity a normalised name belongs to."""
        return self._owner.get(normalised)

    def names(self) -> dict[str, str]:
        """Every normalised name -> its entity id."""
        return dict(self._owner)

    def items(self) -> Iterator[GraphItem]:
        """Every item."""
        yield from self.entities.values()
        yield from self.relations.values()
        yield from self.links.values()
        yield from self.facts.values()
        yield from self.merges.values()
        yield from self.communities.values()
        if self.meta is not None:
            yield self.meta

    def get(self, kind: ItemKind, item_id: str) -> GraphItem | None:
        """One item by kind and id."""
        if kind is ItemKind.META:
            return self.meta
        return self._table(kind).get(item_id)

    def __len__(self) -> int:
        return len(self.entities)

    def _table(self, kind: ItemKind) -> dict[str, Any]:
        tables: dict[ItemKind, dict[str, Any]] = {
            ItemKind.ENTITY: self.entities,
            ItemKind.RELATION: self.relations,
            ItemKind.LINK: self.links,
            ItemKind.FACT: self.facts,
            ItemKind.MERGE: self.merges,
            ItemKind.COMMUNITY: self.communities,
        }
        return tables[kind]

    # loading -----------------------------------------------------------------------------

    @classmethod
    def from_rows(
        cls,
        scope: Scope,
        key: str,
        version: int,
        rows: Iterable[tuple[str, str, str]],
        generation: str = "",
    ) -> GraphState:
        """A state from stored ``(kind, item_id, json)`` rows; :class:`GraphCorrupt` when a row
        cannot be read or the items are inconsistent."""
        state = cls(scope, key, version, generation)
        items: list[GraphItem] = []
        communities: list[GraphItem] = []
        for kind, item_id, data in rows:
            try:
                item = load_item(kind, data)
            except (ValueError, PydanticValidationError) as exc:
                raise state._corrupt(
                    f"{kind} item {item_id!r} is unreadable ({_why(exc)})"
                ) from exc
            if item.id != item_id:
                raise state._corrupt(f"{kind} item {item_id!r} holds the id {item.id!r}")
            (communities if isinstance(item, Community) else items).append(item)
        try:
            state.apply(GraphChange(upserts=items))
        except ValidationError as exc:
            raise state._corrupt(str(exc)) from exc
        try:
            state.apply(GraphChange(upserts=communities))
        except ValidationError as exc:
            log.warning(
                "knowledge graph of scope %s: community hierarchy dropped (%s); it is "
                "recomputed on next use",
                scope,
                exc,
            )
            state.stale_communities = {c.id for c in communities}
            if state.meta is not None:
                state.meta = state.meta.model_copy(update={"communities_version": 0})
        return state

    def _corrupt(self, why: str) -> GraphCorrupt:
        return GraphCorrupt(
            f"the stored knowledge graph of scope {self.scope} is corrupt: {why}; rebuild it "
            "from the store with `agentmem reindex --graph` (or mem.graph.rebuild()); no "
            "memory is lost"
        )

    # changes -----------------------------------------------------------------------------

    def check(self, change: GraphChange) -> None:
        """Raise :class:`ValidationError` if ``change`` would leave the graph inconsistent."""
        upserted: dict[tuple[ItemKind, str], GraphItem] = {
            (i.kind, i.id): i for i in change.upserts
        }
        deleted = set(change.deletes) - set(upserted)
        base = GraphState(self.scope, self.key) if change.replace else self

        def exists(kind: ItemKind, item_id: str) -> bool:
            if (kind, item_id) in upserted:
                return True
            return (kind, item_id) not in deleted and base.get(kind, item_id) is not None

        for item in change.upserts:
            if item.scope != self.scope:
                raise ValidationError(
                    f"{item.kind.value} {item.id!r} belongs to scope {item.scope}, not to the "
                    f"graph of scope {self.scope}; a graph holds one scope's items only"
                )
            if isinstance(item, GraphMeta) and item.id != META_ID:
                raise ValidationError(f"the meta item's id must be {META_ID!r}")
        self._check_names(change, upserted, deleted, base)
        entity = ItemKind.ENTITY
        for item in change.upserts:
            if isinstance(item, Relation):
                for end in (item.source, item.target):
                    if not exists(entity, end):
                        raise ValidationError(
                            f"relation {item.id!r} ({item.predicate}) points to entity {end!r}, "
                            "which is not in the graph"
                        )
            elif isinstance(item, EpisodeLink):
                missing = [e for e in item.entity_ids if not exists(entity, e)]
                if missing:
                    raise ValidationError(
                        f"episode link {item.id!r} names entity {missing[0]!r}, which is not "
                        "in the graph"
                    )
        gone = {i for k, i in deleted if k is entity}
        for entity_id in gone:
            if not base.graph.has_node(entity_id):
                continue
            edges = [
                *base.graph.in_edges(entity_id, keys=True),
                *base.graph.out_edges(entity_id, keys=True),
            ]
            for _, _, rel_id in edges:
                rel = upserted.get((ItemKind.RELATION, rel_id))
                if (ItemKind.RELATION, rel_id) in deleted:
                    continue
                if isinstance(rel, Relation) and entity_id not in (rel.source, rel.target):
                    continue
                raise ValidationError(
                    f"entity {entity_id!r} is deleted but relation {rel_id!r} still uses it; "
                    "delete or re-point the relation in the same change"
                )
        self._check_hierarchy(change, upserted, deleted, base)

    def _check_names(
        self,
        change: GraphChange,
        upserted: dict[tuple[ItemKind, str], GraphItem],
        deleted: set[tuple[ItemKind, str]],
        base: GraphState,
    ) -> None:
        released: set[str] = set()
        for kind, item_id in [*deleted, *upserted]:
            if kind is ItemKind.ENTITY and (old := base.entities.get(item_id)) is not None:
                released.update(old.names)
        claimed: dict[str, str] = {}
        for item in change.upserts:
            if not isinstance(item, Entity):
                continue
            for name in item.names:
                holder = claimed.get(name)
                if holder is None:
                    current = base._owner.get(name)
                    holder = current if current is not None and name not in released else None
                if holder is not None and holder != item.id:
                    raise ValidationError(
                        f"the name {name!r} would belong to two entities ({holder!r} and "
                        f"{item.id!r}); merge them instead"
                    )
                claimed[name] = item.id

    def _check_hierarchy(
        self,
        change: GraphChange,
        upserted: dict[tuple[ItemKind, str], GraphItem],
        deleted: set[tuple[ItemKind, str]],
        base: GraphState,
    ) -> None:
        def community(cid: str) -> Community | None:
            item = upserted.get((ItemKind.COMMUNITY, cid))
            if isinstance(item, Community):
                return item
            if (ItemKind.COMMUNITY, cid) in deleted:
                return None
            return base.communities.get(cid)

        for item in change.upserts:
            if not isinstance(item, Community):
                continue
            seen = {item.id}
            current: Community = item
            while current.parent is not None:
                parent = community(current.parent)
                if parent is None:
                    raise ValidationError(
                        f"community {current.id!r} names parent {current.parent!r}, which is "
                        "not in the graph"
                    )
                if parent.id in seen:
                    raise ValidationError(
                        f"the community hierarchy has a cycle through {parent.id!r}; a "
                        "community cannot contain itself"
                    )
                if parent.level != current.level + 1:
                    raise ValidationError(
                        f"community {current.id!r} (level {current.level}) has parent "
                        f"{parent.id!r} at level {parent.level}; a parent is one level up"
                    )
                seen.add(parent.id)
                current = parent

    def apply(self, change: GraphChange) -> None:
        """Check ``change`` and apply it to the items, the networkx graph and the name index."""
        change = change.compact()
        self.check(change)
        if change.replace:
            self._reset()
        upserted = {(i.kind, i.id) for i in change.upserts}
        # Relations first (old versions out), then entities, then everything else.
        for kind, item_id in [*change.deletes, *upserted]:
            if kind is ItemKind.RELATION and (old := self.relations.pop(item_id, None)):
                self.graph.remove_edge(old.source, old.target, key=item_id)
        for kind, item_id in change.deletes:
            if kind is ItemKind.ENTITY and (entity := self.entities.pop(item_id, None)):
                for name in entity.names:
                    if self._owner.get(name) == item_id:
                        del self._owner[name]
                self.graph.remove_node(item_id)
                self.vectors.pop(item_id, None)
            elif kind is ItemKind.META:
                self.meta = None
            elif kind not in (ItemKind.ENTITY, ItemKind.RELATION):
                self._table(kind).pop(item_id, None)
        for item in change.upserts:
            if isinstance(item, Entity):
                old_entity = self.entities.get(item.id)
                if old_entity is not None:
                    for name in old_entity.names:
                        if self._owner.get(name) == item.id:
                            del self._owner[name]
                self.entities[item.id] = item
                self.graph.add_node(item.id, entity=item)
                if item.embedding is not None:
                    if old_entity is None or old_entity.embedding != item.embedding:
                        self.vectors[item.id] = np.asarray(item.embedding, dtype=np.float32)
                else:
                    self.vectors.pop(item.id, None)
                for name in item.names:
                    self._owner[name] = item.id
        for item in change.upserts:
            if isinstance(item, Relation):
                self.relations[item.id] = item
                self.graph.add_edge(item.source, item.target, key=item.id, relation=item)
            elif isinstance(item, GraphMeta):
                self.meta = item
            elif not isinstance(item, Entity):
                self._table(item.kind)[item.id] = item
        self.derived.clear()


def _why(exc: Exception) -> str:
    if isinstance(exc, PydanticValidationError):
        return first_message(exc)
    return str(exc)[:200]


def communities_of(state: GraphState, entity_id: str) -> list[Community]:
    """The communities holding an entity, level 0 first, up the hierarchy."""
    chain: list[Community] = []
    first = next(
        (c for c in state.communities.values() if c.level == 0 and entity_id in c.members), None
    )
    seen: set[str] = set()
    current = first
    while current is not None and current.id not in seen:
        chain.append(current)
        seen.add(current.id)
        current = state.communities.get(current.parent) if current.parent else None
    return chain


__all__ = ["GraphState", "communities_of"]
