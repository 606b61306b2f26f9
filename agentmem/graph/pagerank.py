"""The graph retrieval channel: Personalized PageRank from the entities a query names (HippoRAG).

The ``graph`` retrieval channel (weight in ``Settings.retrieval.weights``):

1. **seeds**: entity names in the query, matched on normalised word n-grams (exact name or
   alias, then rapidfuzz for longer words: "Carolines" still finds Caroline), at most
   ``GraphSettings.max_seeds``; each weighted by its specificity, 1 / (facts mentioning it),
   as HippoRAG does, so a rare entity steers more than one mentioned everywhere;
2. **spread**: PageRank with restart to the seeds (damping ``ppr_damping``, 0.5) over one
   undirected graph of entities, facts and episodes: entity - entity for every relation that
   holds (at ``as_of`` when given, else now), fact - entity for every mention, fact - episode
   for every source; so mass flows from the query's entities through the facts that connect
   them to other entities, and back into facts and episodes;
3. **rank**: facts and episodes by their PageRank score; the records are then read from the
   store in the query's scope and kept only if they pass the query's kinds, metadata filters,
   validity (``as_of``) and event-time bounds, exactly as the index channels apply them.

The channel costs one indexed query and returns nothing when the scope has no graph, or when
the query names no entity of it. The PageRank matrix is built once per partition version and
cached; one query is then a few sparse matrix-vector products (NumPy, no scipy).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from agentmem.filters import matches
from agentmem.graph.fact_reading import concept_words
from agentmem.graph.resolve import normalise
from agentmem.graph.state import GraphState
from agentmem.models import MemoryKind, MemoryRecord, Scope, ScopeSet, utcnow
from agentmem.semantic.text import STOPWORDS
from agentmem.settings import GraphSettings
from agentmem.vectors import VectorQuery
from agentmem.vectors.base import DENSE

if TYPE_CHECKING:
    from agentmem.backends import Backends
    from agentmem.graph.base import GraphPartition, GraphStore
    from agentmem.retrieval import SearchRequest

MAX_NGRAM = 5
ITERATIONS = 40
TOLERANCE = 1e-7
ENTITY, FACT, EPISODE, CONCEPT = "e", "f", "p", "c"


@dataclass(frozen=True)
class Transition:
    """A sparse square matrix as its entries (``T[target, source] = value``, repeated entries
    summed); ``T @ x`` is one weighted count over the edges (NumPy only, no scipy)."""

    sources: np.ndarray
    targets: np.ndarray
    values: np.ndarray
    size: int

    def __matmul__(self, x: np.ndarray) -> np.ndarray:
        return np.bincount(self.targets, weights=self.values * x[self.sources], minlength=self.size)


@dataclass(frozen=True)
class PPRGraph:
    """A partition as a PageRank operator: node labels (``kind:id``), the column-stochastic
    transition matrix of the undirected graph, and which nodes have no edges."""

    nodes: list[str]
    index: dict[str, int]
    transition: Transition
    dangling: np.ndarray
    built_at: float
    expires_at: float
    """When a relation that holds now stops holding, or a future one starts (the operator
    must be rebuilt)."""


def _holds(valid_from: datetime | None, valid_to: datetime | None, invalidated: bool,
           as_of: datetime | None, now: datetime) -> bool:  # fmt: skip
    if as_of is not None:
        start_ok = valid_from is None or valid_from <= as_of
        return start_ok and (valid_to is None or valid_to > as_of)
    started = valid_from is None or valid_from <= now
    return not invalidated and started and (valid_to is None or valid_to > now)


def ppr_graph(
    state: GraphState, as_of: datetime | None = None, *, concepts: bool = True
) -> PPRGraph:
    """The PageRank operator of a partition (cached per version when ``as_of`` is None):
    entities, facts, episodes, and with ``concepts`` the facts' content words."""
    now = utcnow()
    cache_key = f"ppr:{concepts}"
    cached = state.derived.get(cache_key) if as_of is None else None
    if isinstance(cached, PPRGraph) and cached.expires_at > now.timestamp():
        return cached
    labels: dict[str, int] = {}

    def node(label: str) -> int:
        at = labels.get(label)
        if at is None:
            at = labels[label] = len(labels)
        return at

    rows: list[int] = []
    cols: list[int] = []
    weights: list[float] = []

    def edge(a: str, b: str) -> None:
        i, j = node(a), node(b)
        if i != j:
            rows.extend((i, j))
            cols.extend((j, i))
            weights.extend((1.0, 1.0))

    for entity_id in sorted(state.entities):
        node(f"{ENTITY}:{entity_id}")
    expires = float("inf")
    for relation in state.relations.values():
        if _holds(relation.valid_from, relation.valid_to, relation.invalidated_at is not None,
                  as_of, now):  # fmt: skip
            edge(f"{ENTITY}:{relation.source}", f"{ENTITY}:{relation.target}")
            if as_of is None and relation.valid_to is not None:
                expires = min(expires, relation.valid_to.timestamp())
        elif as_of is None and relation.valid_from is not None and relation.valid_from > now:
            # A relation that starts holding later must be added then.
            expires = min(expires, relation.valid_from.timestamp())
    owners = state.names()
    for entry in state.facts.values():
        fact = f"{FACT}:{entry.id}"
        node(fact)
        for name in entry.names:
            owner = owners.get(name)
            if owner is not None:
                edge(fact, f"{ENTITY}:{owner}")
        for episode in entry.episode_ids:
            edge(fact, f"{EPISODE}:{episode}")
        if concepts:
            for concept in entry.concepts:
                edge(fact, f"{CONCEPT}:{concept}")
    size = len(labels)
    sources = np.asarray(rows, dtype=np.int64)
    targets = np.asarray(cols, dtype=np.int64)
    values = np.asarray(weights, dtype=np.float64)
    degree = np.bincount(sources, weights=values, minlength=size)
    inverse = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)
    # column-stochastic: x_next = T @ x spreads each node's mass evenly over its edges
    transition = Transition(sources, targets, values * inverse[sources], size)
    built = PPRGraph(
        nodes=list(labels),
        index=labels,
        transition=transition,
        dangling=degree == 0,
        built_at=now.timestamp(),
        expires_at=expires,
    )
    if as_of is None:
        state.derived[cache_key] = built
    return built


def personalized_pagerank(graph: PPRGraph, seeds: dict[str, float], damping: float) -> np.ndarray:
    """Scores of every node of ``graph`` for a restart distribution over ``seeds`` (node
    labels -> weight); mass reaching a node without edges returns to the seeds."""
    restart = np.zeros(len(graph.nodes))
    for label, weight in seeds.items():
        at = graph.index.get(label)
        if at is not None:
            restart[at] += weight
    total = restart.sum()
    if total <= 0:
        return np.zeros(len(graph.nodes))
    restart /= total
    scores = restart.copy()
    for _ in range(ITERATIONS):
        lost = scores[graph.dangling].sum()
        nxt = damping * (graph.transition @ scores) + (1 - damping + damping * lost) * restart
        if np.abs(nxt - scores).sum() < TOLERANCE:
            return nxt
        scores = nxt
    return scores


def _name_index(state: GraphState) -> tuple[dict[str, str], int, list[str]]:
    cached = state.derived.get("names")
    if cached is None:
        names = state.names()
        longest = max((len(n.split()) for n in names), default=1)
        cached = (names, min(longest, MAX_NGRAM), [n for n in names if len(n) >= 5])
        state.derived["names"] = cached
    return cached


def query_entities(state: GraphState, text: str, settings: GraphSettings) -> dict[str, float]:
    """Entities of one partition the query names -> seed weight (specificity), strongest
    first, at most ``settings.max_seeds``."""
    from rapidfuzz import fuzz, process

    names, longest, fuzzy_names = _name_index(state)
    if not names:
        return {}
    tokens = normalise(text).split()
    used = [False] * len(tokens)
    found: dict[str, float] = {}
    for n in range(min(longest, len(tokens)), 0, -1):
        for start in range(len(tokens) - n + 1):
            if any(used[start : start + n]):
                continue
            gram = " ".join(tokens[start : start + n])
            owner = names.get(gram)
            if owner is None or (n == 1 and gram in STOPWORDS):
                continue
            found[owner] = 1.0
            used[start : start + n] = [True] * n
    for i, token in enumerate(tokens):
        if used[i] or len(token) < settings.fuzzy_min_length or token in STOPWORDS:
            continue
        hit = process.extractOne(
            token, fuzzy_names, scorer=fuzz.ratio, score_cutoff=settings.fuzzy_threshold
        )
        if hit is not None:
            found.setdefault(names[hit[0]], 1.0)
    weights = {
        entity_id: 1.0 / max(1, len(state.entities[entity_id].fact_ids))
        for entity_id in found
        if entity_id in state.entities
    }
    ranked = sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))[: settings.max_seeds]
    return dict(ranked)


def _concept_df(state: GraphState) -> dict[str, int]:
    cached = state.derived.get("concept_df")
    if cached is None:
        cached = {}
        for entry in state.facts.values():
            for concept in entry.concepts:
                cached[concept] = cached.get(concept, 0) + 1
        state.derived["concept_df"] = cached
    return cached


def query_concepts(state: GraphState, text: str, settings: GraphSettings) -> dict[str, float]:
    """Content words of the query that are concepts of the partition -> seed weight
    (``concept_weight`` / facts using the concept), most specific first."""
    if not settings.concepts or settings.concept_weight <= 0:
        return {}
    df = _concept_df(state)
    names = set(state.names())
    found = {
        c: settings.concept_weight / df[c]
        for c in concept_words(text, names)
        if c in df and c not in names
    }
    ranked = sorted(found.items(), key=lambda kv: (-kv[1], kv[0]))[: settings.max_seeds]
    return dict(ranked)


def _share(weights: dict[str, float], total: float) -> dict[str, float]:
    """``weights`` rescaled to add up to ``total``."""
    mass = sum(weights.values())
    if mass <= 0 or total <= 0:
        return {}
    return {k: total * w / mass for k, w in weights.items()}


def query_seeds(
    state: GraphState,
    text: str,
    settings: GraphSettings,
    dense: Sequence[tuple[str, float]] = (),
) -> dict[str, float]:
    """PageRank seeds of a query (node labels -> weight), in groups of fixed total mass: the
    entities it names (1), with ``settings.concepts`` its content words that are concepts of
    the partition (``concept_weight``), and the facts and episodes a dense search found first
    (``dense``, ranked; ``dense_seed_weight``). Within a group, weight follows specificity
    (entities, concepts) or rank (dense hits). Empty when the query names no entity: the
    channel is the graph's view of the entities a question is about."""
    entities = query_entities(state, text, settings)
    if not entities:
        return {}
    seeds = _share({f"{ENTITY}:{e}": w for e, w in entities.items()}, 1.0)
    concepts = query_concepts(state, text, settings)
    seeds.update(_share({f"{CONCEPT}:{c}": w for c, w in concepts.items()},
                        settings.concept_weight))  # fmt: skip
    hits: dict[str, float] = {}
    for rank, (record_id, _) in enumerate(dense, start=1):
        if record_id in state.facts:
            hits[f"{FACT}:{record_id}"] = 1.0 / rank
        elif record_id in state.links:
            hits[f"{EPISODE}:{record_id}"] = 1.0 / rank
    seeds.update(_share(hits, settings.dense_seed_weight))
    return seeds


def admits(record: MemoryRecord, query: VectorQuery, now: float | None = None) -> bool:
    """Whether a record passes a search's filters, as the index applies them: scope, kinds,
    metadata conditions, validity (``as_of``, else current) and event-time bounds."""
    if not query.scope.contains(record.scope):
        return False
    if query.kinds and record.kind not in query.kinds:
        return False
    if query.conditions and not matches(record.metadata, query.conditions):
        return False
    if query.as_of is not None:
        if not record.is_valid_at(query.as_of):
            return False
    elif not query.include_invalidated:
        moment = now if now is not None else (query.now or time.time())
        if record.invalidated_at is not None:
            return False
        if record.valid_to is not None and record.valid_to.timestamp() <= moment:
            return False
    event = record.event_time.timestamp() if record.event_time else None
    if query.event_after is not None and (event is None or event < query.event_after):
        return False
    return not (query.event_before is not None and (event is None or event >= query.event_before))


def rank_states(
    states: Sequence[GraphState],
    text: str,
    settings: GraphSettings,
    *,
    as_of: datetime | None = None,
    kinds: Sequence[MemoryKind] = (),
    limit: int = 100,
    dense: Sequence[tuple[str, float]] = (),
) -> list[tuple[str, float]]:
    """Facts and episodes of these partitions ranked by PageRank from the query's seeds
    (:func:`query_seeds`): (record id, score), best first, unfiltered beyond ``kinds``."""
    want_facts = not kinds or MemoryKind.SEMANTIC in kinds
    want_episodes = not kinds or MemoryKind.EPISODIC in kinds
    scored: dict[str, float] = {}
    for state in states:
        seeds = query_seeds(state, text, settings, dense)
        if not seeds:
            continue
        operator = ppr_graph(state, as_of, concepts=settings.concepts)
        scores = personalized_pagerank(operator, seeds, settings.ppr_damping)
        for at in np.flatnonzero(scores > 0):
            label = operator.nodes[int(at)]
            kind, _, record_id = label.partition(":")
            if (kind == FACT and want_facts) or (kind == EPISODE and want_episodes):
                scored[record_id] = max(scored.get(record_id, 0.0), float(scores[at]))
    ranked = sorted(scored.items(), key=lambda kv: (-kv[1], kv[0]))
    return ranked[:limit]


def query_names(text: str) -> list[str]:
    """Every normalised word n-gram of a query (up to :data:`MAX_NGRAM` words; single
    stopwords left out): the names a server is asked for when seeds are looked up there."""
    tokens = normalise(text).split()
    grams = {
        " ".join(tokens[start : start + n])
        for n in range(1, MAX_NGRAM + 1)
        for start in range(len(tokens) - n + 1)
    }
    return sorted(g for g in grams if " " in g or g not in STOPWORDS)


def bounded_states(
    store: GraphStore,
    partitions: Sequence[GraphPartition],
    text: str,
    *,
    hops: int = 2,
    max_entities: int = 2000,
) -> list[GraphState]:
    """For each partition, the k-hop neighbourhood of the entities the query names exactly
    (:meth:`~agentmem.graph.base.GraphStore.subgraph`), found with indexed reads instead of
    loading the partition: what PageRank needs when a partition is too big to hold in memory.
    Fuzzy name matches are found only inside that neighbourhood."""
    names = query_names(text)
    out: list[GraphState] = []
    for partition in partitions:
        seeds = store.entities_named(partition, names)
        if seeds:
            out.append(store.subgraph(partition, seeds, hops=hops, max_entities=max_entities))
    return out


def channel_states(
    store: GraphStore, scope: Scope | ScopeSet, text: str, settings: GraphSettings
) -> list[GraphState]:
    """The graphs the channel ranks for a query: each partition the scope reads, held whole
    in memory (cached per version), except, on a server that answers bounded reads, one with
    more than ``whole_partition_max_entities`` entities: its k-hop neighbourhood of the
    query's entities is fetched instead (:func:`bounded_states`). Whole is faster on small
    partitions, k-hop on large ones (measured: benchmarks/RESULTS.md, graph-server)."""
    whole: list[GraphState] = []
    large: list[GraphPartition] = []
    for partition in store.partitions(scope):
        limit = settings.whole_partition_max_entities
        if store.bounded_reads and store.entity_count(partition) > limit:
            large.append(partition)
        else:
            whole.append(store.state(partition))
    states = [s for s in whole if s.entities]
    states += bounded_states(store, large, text, hops=settings.subgraph_hops,
                             max_entities=settings.subgraph_max_entities)  # fmt: skip
    return states


def graph_channel(backends: Backends, request: SearchRequest) -> list[tuple[str, float]]:
    """The ``graph`` retrieval channel (see the module docstring)."""
    graph = backends.graph
    if graph is None or not backends.settings.graph.enabled:
        return []
    query = request.query
    settings = backends.settings.graph
    # Not under the lock: listing the partitions is a store read, and ``state`` locks itself
    # while it reads the cache. Under the lock, every search queued on that read.
    states = channel_states(graph, query.scope, request.text, settings)
    if not states:
        return []
    dense: list[tuple[str, float]] = []
    if settings.dense_seeds > 0:
        dense = backends.index.search(
            request.vector, replace(query, limit=settings.dense_seeds), using=DENSE
        )
    with graph.lock:  # a write in another thread must not change a partition mid-ranking
        ranked = rank_states(
            states,
            request.text,
            settings,
            as_of=query.as_of,
            kinds=query.kinds,
            limit=query.limit * 3,
            dense=dense,
        )
    if not ranked:
        return []
    records = {r.id: r for r in backends.store.get_many([i for i, _ in ranked], query.scope)}
    out = [
        (record_id, score)
        for record_id, score in ranked
        if (record := records.get(record_id)) is not None and admits(record, query)
    ]
    return out[: query.limit]


__all__ = [
    "PPRGraph",
    "admits",
    "bounded_states",
    "channel_states",
    "graph_channel",
    "personalized_pagerank",
    "ppr_graph",
    "query_concepts",
    "query_entities",
    "query_names",
    "query_seeds",
    "rank_states",
]
