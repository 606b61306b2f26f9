"""``mem.graph``: read and shape a scope's knowledge graph.

>>> mem.graph.neighbors("Caroline", user_id="u")           # doctest: +SKIP
>>> mem.graph.timeline("Caroline", user_id="u")            # facts, ordered by validity
>>> mem.graph.path("Caroline", "Sweden", user_id="u")      # how two entities connect
>>> mem.graph.community("Caroline", user_id="u")           # her community, and the ones above
>>> mem.graph.export("html", user_id="u", path="graph.html")

Every call takes the scope as :class:`~agentmem.Memory`'s methods do (the keywords, or
``scope=Scope(...)``) and reads only the graphs of the partitions that scope contains. An
entity is named by its name, any alias (matched after normalisation), or its id; an unknown
name is :class:`~agentmem.errors.NotFound` with the closest known name suggested.
"""

from __future__ import annotations

import functools
import os
from collections import deque
from collections.abc import Callable
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Concatenate, Literal, ParamSpec, TypeVar, Unpack

from pydantic import BaseModel, ConfigDict

from agentmem.backends import Backends
from agentmem.errors import NotFound, ValidationError
from agentmem.graph.base import GraphStore
from agentmem.graph.communities import ensure_communities, llm_summariser
from agentmem.graph.export import MAX_NODES, ExportFormat, export
from agentmem.graph.merges import plan_merge, plan_undo
from agentmem.graph.model import Community, Entity, Merge, Relation, clean_name
from agentmem.graph.rebuild import RebuildReport, rebuild_graphs
from agentmem.graph.resolve import best_match, normalise
from agentmem.graph.state import GraphState, communities_of
from agentmem.models import MemoryRecord, Scope, as_utc, utcnow
from agentmem.scoping import ScopeKwargs, optional_scope_of, scope_of
from agentmem.twins import async_twin
from agentmem.validation import check_k, check_time


class Neighbor(BaseModel):
    """An entity next to the one asked about, and the relation between them."""

    model_config = ConfigDict(frozen=True)

    entity: Entity
    relation: Relation
    direction: Literal["out", "in"]
    """``out``: asked-about --predicate--> entity; ``in``: the other way round."""
    hops: int = 1


class TimelineEntry(BaseModel):
    """A fact about an entity, with when it held and whether it still does."""

    model_config = ConfigDict(frozen=True)

    record: MemoryRecord
    valid_from: datetime
    valid_to: datetime | None
    current: bool
    relations: list[Relation]


class PathStep(BaseModel):
    """One hop of a path: the relation between two entities, and which way it was walked."""

    model_config = ConfigDict(frozen=True)

    source: Entity
    relation: Relation
    target: Entity
    forward: bool
    """Whether the relation points from ``source`` to ``target`` as stored."""


class GraphStats(BaseModel):
    """Sizes of the graphs a scope may read."""

    partitions: int
    entities: int
    relations: int
    episodes: int
    facts: int
    communities: int
    merges: int


P = ParamSpec("P")
R = TypeVar("R")


def _locked(method: Callable[Concatenate[GraphAPI, P], R]) -> Callable[Concatenate[GraphAPI, P], R]:
    """Run under the graph store's lock, so partitions do not change mid-read."""

    @functools.wraps(method)
    def wrapper(self: GraphAPI, *args: P.args, **kwargs: P.kwargs) -> R:
        with self.store.lock:
            return method(self, *args, **kwargs)

    return wrapper


class GraphAPI:
    """The knowledge graph of a :class:`~agentmem.Memory` (``mem.graph``)."""

    def __init__(self, backends: Backends) -> None:
        self._bundle = backends
        self._call_gate = backends.calls

    @property
    def _backends(self) -> Backends:
        return self._bundle.opened()

    # plumbing -----------------------------------------------------------------------------

    @property
    def store(self) -> GraphStore:
        """The graph backend (for extensions; prefer the methods)."""
        graph = self._backends.graph
        if graph is None:
            raise ValidationError(
                "this Memory keeps no knowledge graph (AGENTMEM_GRAPH__ENABLED=false)"
            )
        return graph

    def _states(self, scope: Scope) -> list[GraphState]:
        return [s for s in self.store.states(scope) if s.entities]

    def _matches(self, scope: Scope, entity: str) -> list[tuple[GraphState, Entity]]:
        if not isinstance(entity, str) or not entity.strip():
            raise ValidationError(f"name an entity with a non-empty string, got {entity!r}")
        states = self._states(scope)
        found: list[tuple[GraphState, Entity]] = []
        key = normalise(clean_name(entity))  # as names are stored: spaces collapsed, cut short
        for state in states:
            hit = state.entities.get(entity)
            owner = state.owner(key) if hit is None and key else None
            if hit is None and owner is not None:
                hit = state.entities.get(owner)
            if hit is not None:
                found.append((state, hit))
        if not found:
            names = {n for s in states for n in s.names()}
            guess = best_match(entity, names)
            hint = ""
            if guess is not None:
                owner_state = next(s for s in states if s.owner(guess))
                owner_id = owner_state.owner(guess)
                hint = f"; did you mean {owner_state.entities[owner_id or ''].name!r}?"
            raise NotFound(
                f"no entity named {entity!r} in the knowledge graph of scope {scope}{hint}"
            )
        return found

    def _one(self, scope: Scope, entity: str) -> tuple[GraphState, Entity]:
        return max(self._matches(scope, entity), key=lambda m: len(m[1].fact_ids))

    def _current(self, state: GraphState) -> GraphState:
        settings = self._backends.settings
        return ensure_communities(self.store, state, settings.graph, llm_summariser(settings))

    # reads --------------------------------------------------------------------------------

    @_locked
    def entities(
        self, *, scope: Scope | None = None, limit: int = 100, **where: Unpack[ScopeKwargs]
    ) -> list[Entity]:
        """The entities of a scope, most mentioned first."""
        scope = scope_of(scope, where)
        found = [e for s in self._states(scope) for e in s.entities.values()]
        found.sort(key=lambda e: (-len(e.fact_ids), e.name, e.id))
        return found[: check_k(limit, limit=1_000_000, what="limit")]

    @_locked
    def entity(
        self, entity: str, *, scope: Scope | None = None, **where: Unpack[ScopeKwargs]
    ) -> Entity:
        """One entity by name, alias or id (the most mentioned, if several scopes hold one)."""
        scope = scope_of(scope, where)
        return self._one(scope, entity)[1]

    @_locked
    def neighbors(
        self,
        entity: str,
        *,
        scope: Scope | None = None,
        depth: int = 1,
        as_of: datetime | str | None = None,
        predicate: str | None = None,
        limit: int = 100,
        **where: Unpack[ScopeKwargs],
    ) -> list[Neighbor]:
        """Entities related to ``entity`` within ``depth`` hops, by relations that hold now (or
        ``as_of``), nearest and most recent first. Self-loops are left out."""
        scope = scope_of(scope, where)
        when = check_time(as_of, what="as_of")
        if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= 5:
            raise ValidationError(f"depth must be an integer from 1 to 5, got {depth!r}")
        limit = check_k(limit, limit=100_000, what="limit")
        now = utcnow()
        out: list[Neighbor] = []
        for state, start in self._matches(scope, entity):
            seen = {start.id}
            frontier: deque[tuple[str, int]] = deque([(start.id, 0)])
            while frontier and len(out) < limit:
                node, hops = frontier.popleft()
                if hops >= depth:
                    continue
                edges = [
                    *((r, "out", t) for _, t, r in state.graph.out_edges(node, data="relation")),
                    *((r, "in", s) for s, _, r in state.graph.in_edges(node, data="relation")),
                ]
                edges.sort(
                    key=lambda e: (-(e[0].valid_from or e[0].created_at).timestamp(), e[0].id)
                )
                # Every relation between this node and a newly reached neighbour is listed (a
                # manager who also asked something is both); each neighbour is expanded once.
                reached: set[str] = set()
                for relation, direction, other in edges:
                    if other == node or (other in seen and other not in reached):
                        continue
                    if not relation.holds(when, now):
                        continue
                    if predicate is not None and relation.predicate != predicate:
                        continue
                    if other not in reached:
                        reached.add(other)
                        seen.add(other)
                        frontier.append((other, hops + 1))
                    out.append(
                        Neighbor(
                            entity=state.entities[other],
                            relation=relation,
                            direction="out" if direction == "out" else "in",
                            hops=hops + 1,
                        )
                    )
                    if len(out) >= limit:
                        break
        return out[:limit]

    @_locked
    def timeline(
        self,
        entity: str,
        *,
        scope: Scope | None = None,
        limit: int = 1000,
        **where: Unpack[ScopeKwargs],
    ) -> list[TimelineEntry]:
        """The facts about ``entity`` ordered by when they held (``valid_from``, else event
        time, else when stored), invalidated ones included and marked ``current=False``."""
        scope = scope_of(scope, where)
        limit = check_k(limit, limit=100_000, what="limit")
        matches = self._matches(scope, entity)
        fact_ids = list(dict.fromkeys(f for _, e in matches for f in e.fact_ids))
        records = self._backends.store.get_many(fact_ids, scope)
        relations: dict[str, list[Relation]] = {}
        for state, _ in matches:
            for relation in state.relations.values():
                for fact_id in relation.fact_ids:
                    relations.setdefault(fact_id, []).append(relation)
        now = utcnow()
        entries = []
        for record in records:
            start = as_utc(record.valid_from or record.event_time or record.created_at)
            current = (
                record.invalidated_at is None
                and (record.valid_from is None or as_utc(record.valid_from) <= now)
                and (record.valid_to is None or record.valid_to > now)
            )
            entries.append(
                TimelineEntry(
                    record=record,
                    valid_from=start,
                    valid_to=record.valid_to,
                    current=current,
                    relations=sorted(relations.get(record.id, []), key=lambda r: r.id),
                )
            )
        entries.sort(key=lambda e: (e.valid_from, e.record.created_at, e.record.id))
        return entries[:limit]

    @_locked
    def path(
        self,
        source: str,
        target: str,
        *,
        scope: Scope | None = None,
        as_of: datetime | str | None = None,
        max_hops: int = 6,
        **where: Unpack[ScopeKwargs],
    ) -> list[PathStep]:
        """The shortest chain of relations (either direction) from ``source`` to ``target``
        that hold now (or ``as_of``); empty when they do not connect within ``max_hops``."""
        import networkx as nx

        scope = scope_of(scope, where)
        when = check_time(as_of, what="as_of")
        if isinstance(max_hops, bool) or not isinstance(max_hops, int) or not 1 <= max_hops <= 20:
            raise ValidationError(f"max_hops must be an integer from 1 to 20, got {max_hops!r}")
        starts = self._matches(scope, source)
        ends = {id(state): entity for state, entity in self._matches(scope, target)}
        now = utcnow()
        for state, start in starts:
            end = ends.get(id(state))
            if end is None:
                continue
            if start.id == end.id:
                return []
            simple = nx.Graph()
            for relation in sorted(state.relations.values(), key=lambda r: r.id):
                if relation.source == relation.target or not relation.holds(when, now):
                    continue
                if not simple.has_edge(relation.source, relation.target):
                    simple.add_edge(relation.source, relation.target, relation=relation)
            try:
                nodes = nx.bidirectional_shortest_path(simple, start.id, end.id)
            except (nx.NetworkXNoPath, nx.NodeNotFound):
                continue
            if len(nodes) - 1 > max_hops:
                continue
            steps = []
            for a, b in pairwise(nodes):
                relation = simple[a][b]["relation"]
                steps.append(
                    PathStep(
                        source=state.entities[a],
                        relation=relation,
                        target=state.entities[b],
                        forward=relation.source == a,
                    )
                )
            return steps
        return []

    @_locked
    def community(
        self, entity: str, *, scope: Scope | None = None, **where: Unpack[ScopeKwargs]
    ) -> list[Community]:
        """The community ``entity`` belongs to, then each community above it (level 0 first).
        Communities are recomputed first if the graph changed since they were found."""
        scope = scope_of(scope, where)
        state, found = self._one(scope, entity)
        state = self._current(state)
        return communities_of(state, found.id)

    @_locked
    def communities(
        self, *, scope: Scope | None = None, level: int | None = None, **where: Unpack[ScopeKwargs]
    ) -> list[Community]:
        """Every community of a scope (of one level, if given), largest first."""
        scope = scope_of(scope, where)
        out: list[Community] = []
        for state in self._states(scope):
            state = self._current(state)
            out.extend(c for c in state.communities.values() if level is None or c.level == level)
        out.sort(key=lambda c: (c.level, -c.size, c.id))
        return out

    @_locked
    def merges(
        self,
        *,
        scope: Scope | None = None,
        include_undone: bool = True,
        **where: Unpack[ScopeKwargs],
    ) -> list[Merge]:
        """Entity-resolution decisions of a scope, newest first."""
        scope = scope_of(scope, where)
        found = [
            m
            for s in self._states(scope)
            for m in s.merges.values()
            if include_undone or m.undone_at is None
        ]
        found.sort(key=lambda m: (m.at, m.id), reverse=True)
        return found

    @_locked
    def stats(self, *, scope: Scope | None = None, **where: Unpack[ScopeKwargs]) -> GraphStats:
        """How big the graphs of a scope are."""
        scope = scope_of(scope, where)
        states = self._states(scope)
        return GraphStats(
            partitions=len(states),
            entities=sum(len(s.entities) for s in states),
            relations=sum(len(s.relations) for s in states),
            episodes=sum(len(s.links) for s in states),
            facts=sum(len(s.facts) for s in states),
            communities=sum(len(s.communities) for s in states),
            merges=sum(len(s.merges) for s in states),
        )

    @_locked
    def export(
        self,
        format: str = "json",
        *,
        scope: Scope | None = None,
        path: str | Path | None = None,
        max_nodes: int = MAX_NODES,
        **where: Unpack[ScopeKwargs],
    ) -> str:
        """The graphs of a scope as ``json``, ``graphml`` or a self-contained ``html`` page
        (communities refreshed first); also written to ``path`` when given."""
        chosen = ExportFormat.parse(format)
        scope = scope_of(scope, where)
        states = [self._current(s) for s in self._states(scope)]
        text = export(states, chosen, title=f"agentmem knowledge graph: {scope}",
                      max_nodes=check_k(max_nodes, limit=100_000, what="max_nodes"))  # fmt: skip
        if path is not None:
            target = Path(path)
            if target.is_dir() or not target.name:
                raise ValidationError(
                    f"cannot write the graph to {target}: it is a folder; pass a file path "
                    f"such as {target / 'graph.html'}"
                )
            if not target.parent.is_dir():
                raise ValidationError(
                    f"cannot write the graph to {target}: folder {target.parent} does not "
                    "exist; create it or pick another path"
                )
            partial = target.with_name(target.name + ".partial")
            try:
                partial.write_text(text, encoding="utf-8")
                os.replace(partial, target)
            except OSError as exc:
                partial.unlink(missing_ok=True)
                raise ValidationError(
                    f"cannot write the graph to {target}: {exc.strerror or exc}"
                ) from None
        return text

    # changes ------------------------------------------------------------------------------

    @_locked
    def merge(
        self, keep: str, absorb: str, *, scope: Scope | None = None, **where: Unpack[ScopeKwargs]
    ) -> Merge:
        """Fold entity ``absorb`` into ``keep`` (both of one scope): its names become
        aliases, its relations and episode links move over. Undo with :meth:`undo_merge`."""
        scope = scope_of(scope, where)
        keep_state, kept = self._one(scope, keep)
        absorb_state, absorbed = self._one(scope, absorb)
        if keep_state.key != absorb_state.key:
            raise ValidationError(
                f"{kept.name!r} ({kept.scope}) and {absorbed.name!r} ({absorbed.scope}) belong "
                "to different scopes; entities of different scopes are never merged"
            )
        change = plan_merge(keep_state, self._backends.settings.graph, kept.id, absorbed.id)
        self.store.write(keep_state, change)
        return next(i for i in change.upserts if isinstance(i, Merge))

    @_locked
    def undo_merge(
        self, merge_id: str, *, scope: Scope | None = None, **where: Unpack[ScopeKwargs]
    ) -> Entity:
        """Split a merge's names back into their own entity (restoring a manually absorbed
        entity with its id) and keep them apart from then on; returns that entity."""
        scope = scope_of(scope, where)
        for state in self._states(scope):
            merge = state.merges.get(merge_id)
            if merge is not None:
                change = plan_undo(state, self._backends.settings.graph, merge_id)
                self.store.write(state, change)
                restored = next(
                    i for i in change.upserts if isinstance(i, Entity) and i.id != merge.entity_id
                )
                return state.entities[restored.id]
        raise NotFound(f"no merge {merge_id!r} in the knowledge graph of scope {scope}")

    def rebuild(self, *, scope: Scope | None = None, **where: Unpack[ScopeKwargs]) -> RebuildReport:
        """Derive the graph again from the store: of one scope, or (no scope) of all. What
        ``agentmem reindex --graph`` runs; it repairs a corrupt graph."""
        return rebuild_graphs(self._backends, optional_scope_of(scope, where))

    # async twins: the same signatures, run in a worker thread (see agentmem.twins) ---------

    aentities = async_twin(entities)
    aentity = async_twin(entity)
    aneighbors = async_twin(neighbors)
    atimeline = async_twin(timeline)
    apath = async_twin(path)
    acommunity = async_twin(community)
    acommunities = async_twin(communities)
    amerges = async_twin(merges)
    astats = async_twin(stats)
    aexport = async_twin(export)
    amerge = async_twin(merge)
    aundo_merge = async_twin(undo_merge)
    arebuild = async_twin(rebuild)


__all__ = ["GraphAPI", "GraphStats", "Neighbor", "PathStep", "TimelineEntry"]
