"""Hybrid search: several retrieval channels, fused by weighted reciprocal rank fusion.

Channels (weights in ``Settings.retrieval.weights``; 0 switches one off):

- ``dense``: the query embedding against each memory's own (dated) text.
- ``window``: the query embedding against each episode together with its neighbours.
- ``bm25`` / ``window_bm25``: BM25 over the same two texts, scored inside the index.
- ``time``: when the query names a time ("last week", "in May 2023"), dense search restricted
  to memories whose event time falls in that window.
- ``graph``: Personalized PageRank over the scope's knowledge graph from the entities the
  query names, spreading to facts and episodes (:mod:`agentmem.graph.pagerank`); nothing when
  the scope has no graph or the query names none of its entities.
- ``recency`` / ``importance``: re-rank the fused candidates by event time (exponential decay
  with a half-life) and by importance.

Every channel runs inside the scoped index query, so scope isolation, kinds, metadata filters
and ``as_of`` hold in each. A channel is a function from a :class:`SearchRequest` to a ranked
list of (id, score): adding one (the knowledge graph's, say) is one function and one weight.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np

from agentmem import usefulness
from agentmem.backends import Backends
from agentmem.errors import ValidationError
from agentmem.feedback import apply_feedback
from agentmem.filters import Condition, FilterOp, matches, parse_filters
from agentmem.fusion import Candidate, Ranked, add_rankings, mmr, reciprocal_rank_fusion
from agentmem.indexing import vectors_for
from agentmem.lexical import SparseVector
from agentmem.models import (
    ChannelScore,
    MemoryKind,
    MemoryRecord,
    Scope,
    ScopeSet,
    SearchHit,
    content_hash,
    scope_members,
    utcnow,
)
from agentmem.representation import indexed_text
from agentmem.sessions import apply_session_prior
from agentmem.settings_sections import RetrievalSettings
from agentmem.speaker_prior import apply_speaker_prior
from agentmem.stores._utility_sql import UtilityRow
from agentmem.stores.base import RankFields
from agentmem.supersession import record_slots, supersede
from agentmem.thread_pool import ProcessLocalPool
from agentmem.timeparse import (
    TimeWindow,
    asks_about_past,
    asks_about_present,
    parse_time_window,
)
from agentmem.usefulness import ARCHIVED_KEY
from agentmem.validation import check_k, check_kinds, check_local_time, check_text, check_time
from agentmem.vectors import VectorQuery
from agentmem.vectors.base import BM25, DENSE, WINDOW, WINDOW_BM25


@dataclass(frozen=True)
class SearchRequest:
    """Everything a channel needs: the query in each form and the index filter. The dense
    vector may still be computing when the request is made (:attr:`vector` waits for it)."""

    text: str
    embedding: np.ndarray | Future[np.ndarray]
    sparse: SparseVector
    query: VectorQuery
    time_window: TimeWindow | None

    @property
    def vector(self) -> np.ndarray:
        """The query's dense vector (waiting for the model call if it is still running)."""
        if isinstance(self.embedding, Future):
            return self.embedding.result()
        return self.embedding


Channel = Callable[[Backends, SearchRequest], Ranked]

UtilityRead = tuple[frozenset[str], dict[str, UtilityRow]]
"""Ids whose learned-utility rows were read, and those rows (:func:`usefulness.rerank`)."""


def _dense(space: str) -> Channel:
    def run(b: Backends, r: SearchRequest) -> Ranked:
        return b.index.search(r.vector, r.query, using=space)

    return run


def _sparse(space: str) -> Channel:
    def run(b: Backends, r: SearchRequest) -> Ranked:
        return b.index.search_sparse(r.sparse, r.query, using=space)

    return run


def _time(b: Backends, r: SearchRequest) -> Ranked:
    if r.time_window is None:
        return []
    q = replace(
        r.query,
        event_after=_tighter(r.query.event_after, r.time_window.start.timestamp(), max),
        event_before=_tighter(r.query.event_before, r.time_window.end.timestamp(), min),
    )
    return b.index.search(r.vector, q, using=DENSE)


def _tighter(
    current: float | None, proposed: float, pick: Callable[[float, float], float]
) -> float:
    return proposed if current is None else pick(current, proposed)


def _graph(b: Backends, r: SearchRequest) -> Ranked:
    # Imported here: agentmem.graph reads facts with agentmem.semantic, which searches through
    # this module, so a module-level import would be circular.
    from agentmem.graph.pagerank import graph_channel

    return graph_channel(b, r)


CHANNELS: dict[str, Channel] = {
    "dense": _dense(DENSE),
    "window": _dense(WINDOW),
    "bm25": _sparse(BM25),
    "window_bm25": _sparse(WINDOW_BM25),
    "time": _time,
    "graph": _graph,
}
"""Channels that retrieve candidates from the index. ``recency`` and ``importance`` re-rank."""

NEWEST = "newest"
"""The ranking newest first that a question about the present state adds
(``retrieval.present_recency``): not a setting's channel, chosen per query."""

SUPERSEDES = "supersedes"
"""The entry in a hit's ``channels`` when it took the place of an older memory of a changed
attribute (:mod:`agentmem.supersession`): the rank and score of the memory it replaced."""


_SPARSE = frozenset({"bm25", "window_bm25"})
"""Channels that use no dense vector of the query."""


STORE_INDEXED_KEY = "lg_indexed"
"""Metadata key of a LangGraph store item: ``False`` where it had nothing to index
(``index=False``), so its text is a placeholder (its path) that search leaves out unless the
filters name the key."""


def default_conditions(filters: dict[str, Any] | None) -> tuple[Condition, ...]:
    """What every search and context leaves out unless ``filters`` name its key: memories
    archived (:data:`ARCHIVED_KEY`, set by consolidation and ``usefulness.prune``) and
    LangGraph store items with nothing indexed (:data:`STORE_INDEXED_KEY`: their text only
    names the item, it says nothing to recall)."""
    named = filters or {}
    archived = () if ARCHIVED_KEY in named else (Condition(ARCHIVED_KEY, FilterOp.NE, True),)
    unindexed = (
        () if STORE_INDEXED_KEY in named else (Condition(STORE_INDEXED_KEY, FilterOp.NE, False),)
    )
    return archived + unindexed


def build_request(
    backends: Backends,
    query: Any,
    scope: Scope | ScopeSet,
    *,
    limit: int,
    kinds: tuple[MemoryKind, ...] = (),
    filters: dict[str, Any] | None = None,
    as_of: datetime | None = None,
    event_after: datetime | None = None,
    event_before: datetime | None = None,
    reference_time: datetime | None = None,
    vector: np.ndarray | None = None,
) -> SearchRequest:
    """Validate a query and prepare it in every form the channels use. ``vector`` is a
    precomputed dense vector of the query (a memory compared with memories, by its document
    embedding); by default the query is embedded here."""
    text = check_text(query, max_chars=backends.settings.max_text_chars, what="query")
    wants_time = backends.settings.retrieval.weights.get("time", 0) > 0
    embedding: np.ndarray | Future[np.ndarray]
    if vector is None:
        # The model call runs outside the GIL, so it overlaps what needs no vector: dateparser,
        # the BM25 encoding and the sparse channels (see _fuse_channels). A set of scopes (an
        # agent's private + team scope) embeds through its first member's retriever adapter:
        # the reading agent's own.
        embedding = _query_embeddings.get().submit(
            backends.query_vector, text, scope_members(scope)[0]
        )
    else:
        embedding = vector
    time_window = (
        parse_time_window(text, now=reference_time or as_of or utcnow()) if wants_time else None
    )
    return SearchRequest(
        text=text,
        embedding=embedding,
        sparse=backends.bm25.query(text),
        query=VectorQuery(
            scope=scope,
            limit=limit,
            kinds=kinds,
            conditions=parse_filters(filters) + default_conditions(filters),
            as_of=as_of,
            now=time.time(),
            event_after=event_after.timestamp() if event_after else None,
            event_before=event_before.timestamp() if event_before else None,
        ),
        time_window=time_window,
    )


_query_embeddings = ProcessLocalPool(32, "agentmem-query")
"""Where a search's query embedding runs while the rest of the search prepares and runs what
needs no vector (build_request). Its threads only wait on the embedder, which coalesces
concurrent queries into one model call on its own pool: as many as a server's concurrent
searches (its threadpool), so queries reach the coalescer together instead of two by two."""


def search_with_validation(
    backends: Backends,
    query: Any,
    scope: Scope | ScopeSet,
    *,
    k: int,
    kinds: Sequence[str | MemoryKind] | str | None,
    filters: dict[str, Any] | None,
    as_of: datetime | str | None,
    event_after: datetime | str | None,
    event_before: datetime | str | None,
    reference_time: datetime | str | None,
    expand_links: int = 0,
    include_quarantined: bool = False,
) -> list[SearchHit]:
    """:func:`search` with the arguments as a caller of the public API gives them (kind names,
    ISO times): validated here, once, for every public search (Memory and agent handles).
    ``include_quarantined`` appends the held memories that meet the same constraints
    (:meth:`agentmem.trust.Quarantine.search`), at most ``k``, after the hits."""
    hits = search(
        backends,
        query,
        scope,
        k=k,
        kinds=check_kinds(kinds),
        filters=filters,
        as_of=check_time(as_of, what="as_of"),
        event_after=check_time(event_after, what="event_after"),
        event_before=check_time(event_before, what="event_before"),
        reference_time=check_local_time(reference_time, what="reference_time"),
        expand_links=check_expand(expand_links),
    )
    if not include_quarantined:
        return hits
    from agentmem.trust import Quarantine  # held memories are in no index: matched apart

    held = Quarantine(backends).search(
        query,
        scope,
        k,
        kinds=kinds,
        filters=filters,
        as_of=as_of,
        event_after=event_after,
        event_before=event_before,
    )
    return [*hits, *held]


def check_expand(value: Any) -> int:
    """``expand_links`` as given by a caller: 0 (off) up to a few hops."""
    from agentmem.notes.api import MAX_EXPAND_DEPTH

    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_EXPAND_DEPTH:
        raise ValidationError(
            f"expand_links must be an integer from 0 to {MAX_EXPAND_DEPTH} (hops along note "
            f"links), got {value!r}"
        )
    return value


def search(
    backends: Backends,
    query: Any,
    scope: Scope | ScopeSet,
    *,
    k: int = 10,
    kinds: tuple[MemoryKind, ...] = (),
    filters: dict[str, Any] | None = None,
    as_of: datetime | None = None,
    event_after: datetime | None = None,
    event_before: datetime | None = None,
    reference_time: datetime | None = None,
    vector: np.ndarray | None = None,
    remember: bool = True,
    expand_links: int = 0,
    count_recall: bool = True,
) -> list[SearchHit]:
    """The ``k`` memories in ``scope`` most relevant to ``query``, best first.

    Where candidates have learned utility (feedback), they are re-ranked by relevance and
    utility (:func:`agentmem.usefulness.rerank`). With ``remember`` the hits share a new
    ``retrieval_id`` recording what was shown, for :meth:`Memory.feedback`. ``expand_links``
    (hops) adds the ``links`` channel: the notes linked to the fused top ``k``, fused again
    by the same RRF (:func:`agentmem.notes.expand`). With ``count_recall`` each hit counts as
    a recall (``access_count``), which strengthens it against decay; internal searches (update
    decisions, context candidates) pass False."""
    config = backends.settings.retrieval
    request = build_request(
        backends,
        query,
        scope,
        limit=max(config.candidates, check_k(k)),
        kinds=kinds,
        filters=filters,
        as_of=as_of,
        event_after=event_after,
        event_before=event_before,
        reference_time=reference_time,
        vector=vector,
    )
    weights = _query_weights(config, request.text)
    aware = score_aware(config, weights)
    candidates = _fuse_channels(backends, request, k, aware)
    expanding = bool(expand_links and weights.get("links", 0) > 0)
    whole = expanding or config.mmr_lambda is not None
    records, fields, utilities = _read_candidates(backends, candidates, scope, whole, k)
    candidates = apply_session_prior(backends, scope, request.sparse.indices, candidates, fields)
    candidates = apply_speaker_prior(config.speaker_prior, request.text, candidates, fields)
    if config.feedback_weight > 0:
        candidates = _second_round(backends, request, candidates, records, fields, whole)
    if expanding:
        candidates = _expand(backends, request, candidates, records, fields, k, expand_links)
    rerankers = [name for name in ("recency", "importance", NEWEST) if weights.get(name, 0) > 0]
    if rerankers:  # added to the scores as they stand: the priors and expansion stay
        signals = _rerank_signals(fields, config.recency_half_life_days, rerankers)
        topical = on_topic(config, candidates) if NEWEST in rerankers else None
        only = None if topical is None else {NEWEST: topical}
        candidates = add_rankings(candidates, signals, weights, k=config.rrf_k, only=only)
    # Learned utility re-ranks the relevance candidates (a no-op where none has feedback).
    candidates = usefulness.rerank(backends, [c for c in candidates if c[0] in fields], utilities)
    order = [i for i, _, _ in candidates if i in fields]
    candidates, order = _supersede(backends, request, candidates, order, records, scope, k)
    if config.mmr_lambda is not None:
        order = _diversify(backends, order, {i: s for i, s, _ in candidates}, records, k)
    if not whole:
        records = _read_top(backends, order, k, scope, records)
        order = [i for i in order if i in records]
    order = order[:k]
    by_id = {i: (s, ex) for i, s, ex in candidates}
    hits = [SearchHit(record=records[i], score=by_id[i][0], channels=by_id[i][1]) for i in order]
    if count_recall:  # a recall strengthens a memory (consolidation's decay reads these)
        backends.recalls.count_recalls([h.record.id for h in hits], utcnow())
    if remember and hits:
        rid = usefulness.remember(backends, scope, [h.record.id for h in hits])
        for hit in hits:
            hit.retrieval_id = rid
    return hits


def _query_weights(config: RetrievalSettings, text: str) -> dict[str, float]:
    """The fusion weights for this query: the settings', plus the ``newest`` ranking for a
    question about the present state (the newer memory of a changed fact first)."""
    if config.present_recency > 0 and asks_about_present(text):
        return {**config.weights, NEWEST: config.present_recency}
    return config.weights


def _fuse_channels(
    backends: Backends, request: SearchRequest, k: int, aware: Mapping[str, float]
) -> list[Candidate]:
    """The RRF fusion of each weighted channel's ranking of the request (the channels in
    ``aware`` score-aware: :func:`score_aware`)."""
    config = backends.settings.retrieval
    names = [name for name in CHANNELS if config.weights.get(name, 0) > 0]
    # The channels that need no dense vector run first, while the query embedding computes.
    done = {
        n: CHANNELS[n](backends, request) for n in sorted(names, key=lambda n: n not in _SPARSE)
    }
    ranked = {name: done[name] for name in names}  # in CHANNELS order, as fusion expects
    aware, gap_from = _time_gap(ranked, aware)
    return reciprocal_rank_fusion(
        ranked,
        config.weights,
        k=config.rrf_k,
        limit=max(config.candidates, k),
        score_aware=aware,
        gap_from=gap_from,
    )


def _time_gap(
    ranked: Mapping[str, Ranked], aware: Mapping[str, float]
) -> tuple[dict[str, float], dict[str, float]]:
    """``aware`` with the ``time`` channel fused score-aware like the dense one, its gaps
    measured from the dense channel's best cosine over the whole scope (not the window's
    best), and those reference scores. The time channel is dense search inside the window:
    ranked plainly, the one memory dated in the window was its first place whatever its
    cosine, and a full vote put "Went to the cinema with Ana" above the memory that answers
    "What did the repairman tell me yesterday about the heating?" (undated, so never in the
    window); now a time hit far off the question's topic counts as far down as in dense."""
    out = dict(aware)
    dense, timed = ranked.get("dense"), ranked.get("time")
    if "dense" not in aware or not dense or not timed:
        return out, {}
    out["time"] = aware["dense"]
    return out, {"time": max(score for _, score in dense)}


def score_aware(config: RetrievalSettings, weights: Mapping[str, float]) -> dict[str, float]:
    """The channels fused score-aware for a query (:func:`agentmem.fusion.gap_ranks`) and
    their ranks per unit of score: the dense channel, whose cosine means the same across
    queries (``retrieval.dense_gap_ranks``). Not for a question about the present state (the
    ``newest`` ranking in ``weights``): the memories of a changed fact are all on its topic,
    and how far the newer trails the older in cosine is wording ("sold the Fiesta and now
    drives a Kia"), not evidence of which one holds now."""
    if config.dense_gap_ranks <= 0 or weights.get(NEWEST, 0) > 0:
        return {}
    return {"dense": config.dense_gap_ranks}


def on_topic(config: RetrievalSettings, candidates: Sequence[Candidate]) -> set[str] | None:
    """The candidates on a question's topic, to which alone the ``newest`` ranking adds (at
    their ranks among every candidate, as before, so the memories of a changed fact stand
    apart as much): those whose
    dense cosine trails the best candidate's by less than ``rrf_k / dense_gap_ranks`` (0.25 at
    the defaults), the gap at which the score-aware dense channel counts a hit at most half as
    much as its first place (:func:`agentmem.fusion.gap_ranks`); None (every candidate) with
    ``dense_gap_ranks`` 0. The memories of a changed fact are all on its topic; a newer note
    about something else ("I'd like to visit Japan") is not, and ranked newest among every
    candidate it outvoted the one memory on the topic ("My gym is PureGym", cosine 0.65 against
    0.22) for "Which gym do I go to these days?"."""
    if config.dense_gap_ranks <= 0:
        return None
    cosine = {i: ex["dense"].score for i, _, ex in candidates if "dense" in ex}
    if not cosine:
        return set()
    floor = max(cosine.values()) - config.rrf_k / config.dense_gap_ranks
    return {i for i, c in cosine.items() if c > floor}


def _second_round(
    backends: Backends,
    request: SearchRequest,
    candidates: list[Candidate],
    records: dict[str, MemoryRecord],
    fields: dict[str, RankFields],
    whole: bool,
) -> list[Candidate]:
    """Iterative retrieval (:mod:`agentmem.feedback`); the memories it adds join ``fields``
    and, where link expansion or MMR read them (``whole``), ``records``."""
    out = apply_feedback(backends, request, candidates, fields, _session_key(backends))
    if whole:
        fresh = [i for i in fields if i not in records]
        records.update({r.id: r for r in backends.store.get_many(fresh, request.query.scope)})
    return out


def _expand(
    backends: Backends,
    request: SearchRequest,
    candidates: list[Candidate],
    records: dict[str, MemoryRecord],
    fields: dict[str, RankFields],
    k: int,
    depth: int,
) -> list[Candidate]:
    """The ``links`` channel: notes linked to the top ``k`` candidates that the query's own
    constraints admit (scope, kinds, filters, validity), added to the fused scores; the notes
    it reaches that were no candidate join ``records`` and ``fields``."""
    from agentmem.notes.api import expand

    config = backends.settings.retrieval
    seeds = [i for i, _, _ in candidates if i in records][:k]
    reached = expand(backends, seeds, request.query.scope, depth)
    fresh = [i for i, _ in reached if i not in records]
    records.update({r.id: r for r in backends.store.get_many(fresh, request.query.scope)})
    admitted = [(i, s) for i, s in reached if i in records and _admits(request.query, records[i])]
    if not admitted:
        return candidates
    key = _session_key(backends)
    fields.update({i: RankFields.of(records[i], key) for i, _ in admitted if i not in fields})
    return add_rankings(candidates, {"links": admitted}, config.weights, k=config.rrf_k)


def _admits(query: VectorQuery, record: MemoryRecord) -> bool:
    if query.kinds and record.kind not in query.kinds:
        return False
    if not matches(record.metadata, query.conditions):
        return False
    if query.as_of is not None:
        valid = record.is_valid_at(query.as_of)
    else:
        ended = record.valid_to is not None and record.valid_to.timestamp() <= query.now
        valid = record.invalidated_at is None and not ended
    if not valid:  # and, valid, the event-time bounds apply as well
        return False
    when = record.event_time.timestamp() if record.event_time else None
    if query.event_after is not None and (when is None or when < query.event_after):
        return False
    return not (query.event_before is not None and (when is None or when >= query.event_before))


def _read_candidates(
    backends: Backends,
    candidates: list[Candidate],
    scope: Scope | ScopeSet,
    whole: bool,
    k: int,
) -> tuple[dict[str, MemoryRecord], dict[str, RankFields], UtilityRead | None]:
    """The candidates in scope: whole records where ``whole`` (link expansion and MMR read
    them), else those of the fused first ``k`` (the likely hits); the fields the re-ranking
    needs (with each candidate's session when the session prior is on); and, where learned
    utility re-ranks, the ids whose utility rows were read with them and those rows. Read
    together (one round trip on a server store); a hit that was not among the fused first
    ``k`` is read later (:func:`_supersede`, :func:`_read_top`)."""
    ids = [i for i, _, _ in candidates]
    key = _session_key(backends)
    if whole:
        records = {r.id: r for r in backends.store.get_many(ids, scope)}
        return records, {i: RankFields.of(r, key) for i, r in records.items()}, None
    wanted = usefulness.wants_utilities(backends)
    read = backends.store.read_candidates(ids, scope, key, whole=ids[:k], utilities=wanted)
    fields = {f.id: f for f in read.fields}
    utilities = None if read.utilities is None else (frozenset(fields), read.utilities)
    return {r.id: r for r in read.records}, fields, utilities


def _session_key(backends: Backends) -> str | None:
    """The metadata key naming a record's session, where the session prior reads sessions or
    the speaker prior reads which candidates are turns of a conversation (a "Name:" prefix
    names a speaker only on a turn: :func:`agentmem.stores.base.speaker_of`)."""
    config = backends.settings.retrieval
    wanted = config.session_prior > 0 or config.speaker_prior > 0
    return config.window_group_key if wanted else None


def _read_top(
    backends: Backends,
    order: list[str],
    k: int,
    scope: Scope | ScopeSet,
    records: dict[str, MemoryRecord],
) -> dict[str, MemoryRecord]:
    """``records`` with the whole records of the first ``k`` ids of ``order`` still in the
    store added (one read of those not read yet, more only where one was deleted since the
    candidates were read)."""
    start = found = 0
    while found < k and start < len(order):
        chunk = order[start : start + k - found]
        start += len(chunk)
        _read_into(backends, chunk, records, scope)
        found += sum(i in records for i in chunk)
    return records


def _supersede(
    backends: Backends,
    request: SearchRequest,
    candidates: list[Candidate],
    order: list[str],
    records: dict[str, MemoryRecord],
    scope: Scope | ScopeSet,
    k: int,
) -> tuple[list[Candidate], list[str]]:
    """The candidates of a question about how things are (not about the past, naming no time)
    with each newer value of a changed attribute in the place of the older memory it replaces
    (:mod:`agentmem.supersession`). A moved-up memory takes the score of the one whose place
    it took, so scores still fall down the list. The first ``k`` records are read here (the
    hits need them: :func:`_read_top` finds them read), the rest of the first
    ``retrieval.supersede_depth`` only where one of those sets an attribute."""
    depth = backends.settings.retrieval.supersede_depth
    dated = request.time_window is not None and not asks_about_present(request.text)
    if depth <= 0 or dated or asks_about_past(request.text):
        return candidates, order
    _read_into(backends, order[:k], records, scope)
    if not any(record_slots(records[i]) for i in order[: min(k, depth)] if i in records):
        # A memory moves up only to the place of one it replaces: with none of those among
        # the hits, the hits stay as fused, and the deeper candidates need not be read.
        return candidates, order
    _read_into(backends, order[:depth], records, scope)
    new_order, moved = supersede(order, records, depth)
    if not moved:
        return candidates, order
    by_id = {i: (s, ex) for i, s, ex in candidates}
    out: list[Candidate] = []
    for i in new_order:
        score, explain = by_id[i]
        if i in moved:  # its channels say whose place it took: that memory's rank and score
            replaced = by_id[moved[i]][0]
            score = max(score, replaced)
            supersedes = ChannelScore(rank=order.index(moved[i]) + 1, score=replaced)
            explain = {**explain, SUPERSEDES: supersedes}
        if out:
            score = min(score, out[-1][1])
        out.append((i, score, explain))
    return out, new_order


def _read_into(
    backends: Backends,
    ids: Sequence[str],
    records: dict[str, MemoryRecord],
    scope: Scope | ScopeSet,
) -> None:
    """Add to ``records`` those of ``ids`` it lacks, read in one statement (in ``scope``)."""
    missing = [i for i in ids if i not in records]
    if missing:
        records.update({r.id: r for r in backends.store.get_many(missing, scope)})


def _rerank_signals(
    records: Mapping[str, RankFields], half_life_days: float, names: Sequence[str]
) -> dict[str, Ranked]:
    """The re-ranking lists ``names`` asks for (``recency``, ``importance``, ``newest``) over
    the candidates."""
    now = time.time()
    decay = math.log(2) / (half_life_days * 86400)

    def age_s(r: RankFields) -> float:
        return now - (r.event_time or r.created_at).timestamp()

    def recency(r: RankFields) -> float:
        return math.exp(-decay * max(age_s(r), 0.0))

    out: dict[str, Ranked] = {}
    if "recency" in names:
        by_recency = sorted(records.values(), key=lambda r: (-recency(r), r.id))
        out["recency"] = [(r.id, recency(r)) for r in by_recency]
    if "importance" in names:
        by_importance = sorted(records.values(), key=lambda r: (-r.importance, r.id))
        out["importance"] = [(r.id, r.importance) for r in by_importance]
    if NEWEST in names:
        # Scored by minus the age in seconds: memories written a moment apart still rank apart
        # (the decayed recency above ties them), and only equal times tie.
        by_age = sorted(records.values(), key=lambda r: (age_s(r), r.id))
        out[NEWEST] = [(r.id, -age_s(r)) for r in by_age]
    return out


def _diversify(
    backends: Backends,
    order: list[str],
    relevance: dict[str, float],
    records: dict[str, MemoryRecord],
    k: int,
) -> list[str]:
    config = backends.settings.retrieval
    pool = [records[i] for i in order]
    vectors_by_hash, _ = vectors_for(backends, pool)

    vectors = {r.id: vectors_by_hash[content_hash(indexed_text(r, config))] for r in pool}
    assert config.mmr_lambda is not None
    return mmr(order, relevance, vectors, k, lambda_=config.mmr_lambda)


__all__ = [
    "ARCHIVED_KEY",
    "CHANNELS",
    "STORE_INDEXED_KEY",
    "Channel",
    "SearchRequest",
    "build_request",
    "default_conditions",
    "search",
    "search_with_validation",
]
