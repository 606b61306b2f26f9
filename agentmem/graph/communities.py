"""The community hierarchy: groups of entities, groups of groups, each with a summary.

Level 0 partitions each connected component of the entity graph (relations as undirected
weighted edges, self-loops ignored) with Louvain (networkx's ``louvain_communities``, seeded,
so the same graph always gives the same communities). Level ``n + 1`` runs Louvain again on
the graph of level-``n`` communities (edge weight: relations between their entities), until
one community is left, nothing more groups, or ``GraphSettings.community_levels`` is reached.
Every community names its ``parent`` one level up; the hierarchy is checked to be a forest
(a cycle is rejected when written and dropped when read).

**Incremental**: a connected component whose edges did not change since the last run (same
fingerprint) keeps its level-0 communities, their ids and summaries; only changed components
are clustered again, and the small upper levels are recomputed. Ids are derived from the
members, so a community whose membership did not change keeps its id and summary (an LLM is
asked again only for new or changed communities).

**Summaries**: LLM-free by default ("Caroline, Melanie, LGBTQ ...: 41 entities; went_to,
likes, ..."): the most connected entities and the most frequent predicates. With
``Settings.llm_model`` set, an LLM writes one sentence from the same material (the
``community-summary-v1`` prompt); any LLM failure falls back to the rules summary.

Communities are computed when first asked for after a change (``mem.graph.community``,
``communities``, exports) or by consolidation, not on every write.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from agentmem.errors import AgentMemError, Conflict
from agentmem.graph.base import GraphStore
from agentmem.graph.model import (
    META_ID,
    Community,
    Entity,
    GraphChange,
    GraphMeta,
    ItemKind,
    stable_id,
)
from agentmem.graph.state import GraphState
from agentmem.settings import GraphSettings

if TYPE_CHECKING:
    import networkx as nx

log = logging.getLogger(__name__)

TOP = 5
"""Entities and predicates named in a summary."""

Summarise = Callable[[Sequence[str], Sequence[str], int], str]
"""(top entity names, top predicates, size) -> summary; the LLM's, when configured."""


class CommunitySummary(BaseModel):
    """The answer the community-summary prompt asks for."""

    summary: str = Field(min_length=1, max_length=600)


def community_summary_messages(
    entities: Sequence[str], predicates: Sequence[str], size: int
) -> list[dict[str, str]]:
    """The ``community-summary-v1`` prompt: a pure function of what is summarised."""
    return [
        {
            "role": "system",
            "content": "You summarise a group of related entities from a personal knowledge "
            "graph in one sentence of at most 30 words. Answer JSON: "
            '{"summary": "..."}',
        },
        {
            "role": "user",
            "content": f"{size} entities. Most connected: {', '.join(entities)}. "
            f"Most frequent relations: {', '.join(predicates) or 'none'}.",
        },
    ]


def llm_summariser(settings: Any) -> Summarise | None:
    """A summariser calling ``settings.llm_model`` (None when no LLM is configured)."""
    if not getattr(settings, "llm_model", None):
        return None
    from agentmem.semantic.llm import LLMClient
    from agentmem.semantic.prompts import Prompt

    prompt = Prompt("community-summary", 1, community_summary_messages, CommunitySummary)
    client = LLMClient.from_settings(settings)

    def summarise(entities: Sequence[str], predicates: Sequence[str], size: int) -> str:
        answer = client.ask(prompt, entities=entities, predicates=predicates, size=size)
        assert isinstance(answer, CommunitySummary)
        return answer.summary

    return summarise


def entity_graph(state: GraphState) -> nx.Graph:
    """Entities as an undirected graph, each edge weighted by the relations between them
    (self-loops left out). Nodes are added in id order, so results do not depend on history."""
    import networkx as nx

    graph = nx.Graph()
    graph.add_nodes_from(sorted(state.entities))
    for relation in sorted(state.relations.values(), key=lambda r: r.id):
        a, b = relation.source, relation.target
        if a == b:
            continue
        weight = graph[a][b]["weight"] + 1.0 if graph.has_edge(a, b) else 1.0
        graph.add_edge(a, b, weight=weight)
    return graph


def _fingerprint(graph: nx.Graph, nodes: Iterable[str]) -> str:
    sub = graph.subgraph(nodes)
    parts = sorted(str(n) for n in sub.nodes)
    parts += sorted(f"{min(a, b)}|{max(a, b)}|{d['weight']}" for a, b, d in sub.edges(data=True))
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:24]


def _louvain(graph: nx.Graph, settings: GraphSettings) -> list[set[str]]:
    import networkx as nx

    if graph.number_of_nodes() <= 2 or graph.number_of_edges() == 0:
        if graph.number_of_edges() == 0:
            return [{n} for n in graph.nodes]
        return [set(graph.nodes)]
    parts = nx.community.louvain_communities(
        graph, weight="weight", resolution=settings.community_resolution, seed=settings.seed
    )
    return [set(p) for p in parts]


def plan_communities(
    state: GraphState, settings: GraphSettings, summarise: Summarise | None = None
) -> GraphChange:
    """The change that makes a partition's communities (and entity summaries) current."""
    import networkx as nx

    graph = entity_graph(state)
    old_meta = state.meta
    old_components = old_meta.components if old_meta is not None else {}
    by_id: dict[str, Community] = {}
    components: dict[str, list[str]] = {}
    level0: list[Community] = []
    for nodes in sorted(nx.connected_components(graph), key=lambda c: min(c)):
        fingerprint = _fingerprint(graph, nodes)
        reused = old_components.get(fingerprint)
        if reused and all(cid in state.communities for cid in reused):
            kept = [state.communities[cid] for cid in reused]
        else:
            sub = graph.subgraph(nodes)
            kept = [
                _community(state, 0, sorted(members), [], graph)
                for members in sorted(_louvain(sub, settings), key=lambda p: min(p))
            ]
        components[fingerprint] = [c.id for c in kept]
        level0.extend(kept)
    for community in level0:
        by_id[community.id] = community.model_copy(update={"parent": None})
    current = [by_id[c.id] for c in level0]
    level = 0
    while level + 1 < settings.community_levels and len(current) > 1:
        quotient = nx.Graph()
        quotient.add_nodes_from(c.id for c in current)
        owner = {e: c.id for c in current for e in _entities_under(c, by_id)}
        for a, b, data in graph.edges(data=True):
            ca, cb = owner.get(a), owner.get(b)
            if ca is None or cb is None or ca == cb:
                continue
            weight = (
                quotient[ca][cb]["weight"] + data["weight"]
                if quotient.has_edge(ca, cb)
                else data["weight"]
            )
            quotient.add_edge(ca, cb, weight=weight)
        groups = sorted(_louvain(quotient, settings), key=lambda p: min(p))
        if len(groups) >= len(current):
            break  # nothing grouped: the hierarchy ends here
        level += 1
        upper = []
        for group in groups:
            parent = _community(
                state, level, sorted(group), [by_id[g] for g in group], graph, by_id
            )
            by_id[parent.id] = parent
            for child in group:
                by_id[child] = by_id[child].model_copy(update={"parent": parent.id})
            upper.append(parent)
        current = upper
    _summarise(by_id, summarise)
    change = GraphChange()
    for community in by_id.values():
        if state.communities.get(community.id) != community:
            change.upsert(community)
    for stale in {*state.communities, *state.stale_communities} - set(by_id):
        change.delete(ItemKind.COMMUNITY, stale)
    change.upsert(*_entity_summaries(state, graph))
    change.upsert(
        GraphMeta(
            id=META_ID,
            scope=state.scope,
            communities_version=state.version + 1,
            components=components,
        )
    )
    return change


def _entities_under(community: Community, by_id: dict[str, Community]) -> list[str]:
    if community.level == 0:
        return list(community.members)
    out: list[str] = []
    for child in community.members:
        if child in by_id:
            out.extend(_entities_under(by_id[child], by_id))
    return out


def _community(
    state: GraphState,
    level: int,
    members: list[str],
    children: Sequence[Community],
    graph: nx.Graph,
    by_id: dict[str, Community] | None = None,
) -> Community:
    entities = (
        members if level == 0 else [e for c in children for e in _entities_under(c, by_id or {})]
    )
    previous = state.communities.get(
        stable_id(state.key, "community", str(level), *sorted(entities))
    )
    degree = graph.degree(entities, weight="weight") if entities else []
    ranked = sorted(
        (state.entities[e] for e in entities if e in state.entities),
        key=lambda e: (-dict(degree).get(e.id, 0.0), e.name),
    )
    predicates = Counter(
        r.predicate
        for e in entities
        for _, _, r in state.graph.out_edges(e, data="relation")
        if r is not None and r.predicate != "mentioned_with"
    )
    community = Community(
        id=stable_id(state.key, "community", str(level), *sorted(entities)),
        scope=state.scope,
        level=level,
        members=members,
        size=len(entities),
        top_entities=[e.name for e in ranked[:TOP]],
        top_predicates=most_common(predicates, TOP),
    )
    if previous is not None:
        community = community.model_copy(
            update={
                "summary": previous.summary,
                "summarised_by": previous.summarised_by,
                "created_at": previous.created_at,
            }
        )
    return community


def most_common(counts: Counter[str], n: int) -> list[str]:
    """The ``n`` most frequent names, ties by name: ``Counter.most_common`` breaks ties by
    insertion order, which depends on how the partition was loaded (backend, rebuild), so
    the same graph would get another summary."""
    return sorted(counts, key=lambda name: (-counts[name], name))[:n]


def rules_summary(entities: Sequence[str], predicates: Sequence[str], size: int) -> str:
    """The LLM-free summary of a community."""
    names = ", ".join(entities)
    more = f" and {size - len(entities)} more" if size > len(entities) else ""
    about = f"; mostly {', '.join(predicates)}" if predicates else ""
    return f"{names}{more} ({size} entities{about})"


def _summarise(by_id: dict[str, Community], summarise: Summarise | None) -> None:
    """Fill in missing summaries (a kept community keeps its own)."""
    for cid, community in by_id.items():
        wanted = "llm" if summarise is not None else "rules"
        if community.summary and community.summarised_by.startswith(wanted):
            continue
        text, source = "", "rules"
        if summarise is not None:
            try:
                text, source = summarise(community.top_entities, community.top_predicates,
                                         community.size), "llm"  # fmt: skip
            except AgentMemError as exc:
                log.warning("community summary by LLM failed (%s); using the rules summary", exc)
        if not text:
            text = rules_summary(community.top_entities, community.top_predicates, community.size)
        by_id[cid] = community.model_copy(update={"summary": text, "summarised_by": source})


def _entity_summaries(state: GraphState, graph: nx.Graph) -> list[Entity]:
    """Entities whose LLM-free summary changed: type, facts, strongest relations."""
    changed = []
    for entity in state.entities.values():
        relations: Counter[str] = Counter()
        for _, target, relation in state.graph.out_edges(entity.id, data="relation"):
            if (
                relation is not None
                and relation.predicate != "mentioned_with"
                and target != entity.id
                and target in state.entities
            ):
                relations[f"{relation.predicate} {state.entities[target].name}"] += 1
        top = ", ".join(most_common(relations, 3))
        degree = graph.degree(entity.id) if graph.has_node(entity.id) else 0
        summary = f"{entity.type}; {len(entity.fact_ids)} facts; {degree} related entities"
        if top:
            summary += f"; {top}"
        if entity.summary != summary:
            changed.append(entity.model_copy(update={"summary": summary}))
    return changed


def is_current(state: GraphState) -> bool:
    """Whether the partition's communities reflect its latest change."""
    return (
        state.meta is not None
        and state.meta.communities_version == state.version
        and not state.stale_communities
    )


def ensure_communities(
    graph: GraphStore,
    state: GraphState,
    settings: GraphSettings,
    summarise: Summarise | None = None,
    *,
    retries: int = 2,
) -> GraphState:
    """Recompute a partition's communities if it changed since they were computed; returns
    the (possibly reloaded) state."""
    for attempt in range(retries + 1):
        # A partition whose entities were all forgotten still drops its communities (their
        # summaries name those entities).
        emptied = not state.entities and (state.communities or state.stale_communities)
        if is_current(state) or (not state.entities and not emptied):
            return state
        try:
            graph.write(state, plan_communities(state, settings, summarise))
            state.stale_communities = set()
            return state
        except Conflict:
            if attempt == retries:
                raise
            graph.forget_cache()
            state = graph.state_of(state.scope)
    return state


__all__ = [
    "CommunitySummary",
    "Summarise",
    "community_summary_messages",
    "ensure_communities",
    "entity_graph",
    "is_current",
    "llm_summariser",
    "most_common",
    "plan_communities",
    "rules_summary",
]
