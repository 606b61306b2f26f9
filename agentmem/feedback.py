"""Iterative retrieval: a second round seeded by the first round's top hits (LLM-free).

Pseudo-relevance feedback. After the first fused ranking, the terms of the top ``hits``
memories that the query does not already contain become a second BM25 query (each term
weighted by the share of those hits that contain it, a capitalised name counting
``name_boost`` times; the index multiplies in each term's IDF over the scope, so rare terms
dominate), and the query vector blended with the mean of those hits' vectors becomes a second
dense query. Both run through the same scoped index query as the first round (scope, kinds,
filters, ``as_of`` hold in each) and their ranked lists are added to the fused scores by
reciprocal rank: ``score += weight / (rrf_k + rank)``.

Stop rule: no second round when the expansion adds no term, or when the first round is
confident (its best fused score ahead of the second by more than ``stop_margin`` of it).

Measured held out on LoCoMo turns, LoCoMo observations and the small-scope set
(benchmarks/iterative_retrieval.py, section ``iterative`` of benchmarks/RESULTS.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from agentmem.fusion import Candidate, Ranked, tie_ranks
from agentmem.indexing import vectors_for
from agentmem.lexical import SparseVector
from agentmem.models import ChannelScore, MemoryRecord, content_hash
from agentmem.representation import indexed_text
from agentmem.stores.base import RankFields
from agentmem.vectors.base import BM25, DENSE

if TYPE_CHECKING:
    from agentmem.backends import Backends
    from agentmem.retrieval import SearchRequest


_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]{2,}\b")
"""A capitalised word that does not start a sentence: a likely name."""


@dataclass(frozen=True, slots=True)
class Feedback:
    """How the second round is formed (``Settings.retrieval.feedback_*``)."""

    hits: int = 3
    """Top hits of the first round the expansion is drawn from."""
    terms: int = 10
    """Most expansion terms in the second BM25 query (0: no lexical second round)."""
    blend: float = 0.5
    """Weight of the top hits' mean vector against 1 for the query's in the second dense
    query (0: no dense second round)."""
    name_boost: float = 1.0
    """Weight factor of a term that occurs capitalised mid-sentence in a hit (a name)."""


def expansion_terms(
    backends: Backends, query_terms: Sequence[int], texts: Sequence[str], feedback: Feedback
) -> SparseVector:
    """The second BM25 query: terms of ``texts`` not in ``query_terms``, weighted by the share
    of texts holding each (names boosted), the ``feedback.terms`` heaviest; ties by first
    appearance (earlier hits first)."""
    if feedback.terms <= 0 or not texts:
        return SparseVector((), ())
    seen = set(query_terms)
    weight: dict[int, float] = {}
    first: dict[int, int] = {}
    for text in texts:
        names = set(backends.bm25.query(" ".join(_NAME.findall(text))).indices)
        for term in backends.bm25.query(text).indices:
            if term in seen:
                continue
            first.setdefault(term, len(first))
            weight[term] = weight.get(term, 0.0) + (feedback.name_boost if term in names else 1.0)
    best = sorted(weight, key=lambda t: (-weight[t], first[t]))[: feedback.terms]
    best.sort()
    return SparseVector(tuple(best), tuple(weight[t] / len(texts) for t in best))


def blended_vector(
    backends: Backends, query: np.ndarray, records: Sequence[MemoryRecord], blend: float
) -> np.ndarray | None:
    """The query vector plus ``blend`` times the mean of ``records``' vectors, normalised."""
    if blend <= 0 or not records:
        return None
    vectors, _ = vectors_for(backends, records)  # indexed memories' vectors are cached
    config = backends.settings.retrieval
    mean = np.mean([vectors[content_hash(indexed_text(r, config))] for r in records], axis=0)
    total = query / np.linalg.norm(query) + blend * mean / np.linalg.norm(mean)
    return np.asarray(total / np.linalg.norm(total), dtype=np.float32)


def second_round(
    backends: Backends,
    request: SearchRequest,
    records: Sequence[MemoryRecord],
    feedback: Feedback,
) -> dict[str, Ranked]:
    """The second round's ranked lists (``feedback_bm25``, ``feedback_dense``) from the top
    hits ``records`` of the first, under the request's own scope and filters; empty lists
    where the expansion adds nothing."""
    sparse = expansion_terms(backends, request.sparse.indices, [r.text for r in records], feedback)
    out: dict[str, Ranked] = {}
    if sparse:
        out["feedback_bm25"] = backends.index.search_sparse(sparse, request.query, using=BM25)
    vector = blended_vector(backends, request.vector, records, feedback.blend)
    if vector is not None:
        out["feedback_dense"] = backends.index.search(vector, request.query, using=DENSE)
    return out


def confident(candidates: Sequence[Candidate], stop_margin: float | None) -> bool:
    """The stop rule: the best fused score leads the second by more than ``stop_margin`` of
    itself (``None``: never confident)."""
    if stop_margin is None or len(candidates) < 2 or candidates[0][1] <= 0:
        return False
    return (candidates[0][1] - candidates[1][1]) / candidates[0][1] > stop_margin


def fuse_second_round(
    candidates: Sequence[Candidate], lists: dict[str, Ranked], weight: float, rrf_k: int
) -> list[Candidate]:
    """``candidates`` with each second-round list added by weighted reciprocal rank (ids new
    to the candidates enter with that alone), best first; equal scores keep their order."""
    scores = {i: s for i, s, _ in candidates}
    explain = {i: dict(ex) for i, _, ex in candidates}
    for name, ranked in lists.items():
        for rank, (memory_id, score) in zip(tie_ranks(ranked), ranked, strict=True):
            scores[memory_id] = scores.get(memory_id, 0.0) + weight / (rrf_k + rank)
            explain.setdefault(memory_id, {})[name] = ChannelScore(rank=rank, score=score)
    order = sorted(scores, key=lambda i: -scores[i])  # stable: first-round order on ties
    return [(i, scores[i], explain[i]) for i in order]


def apply_feedback(
    backends: Backends,
    request: SearchRequest,
    candidates: Sequence[Candidate],
    fields: dict[str, RankFields],
    session_key: str | None,
) -> list[Candidate]:
    """The second round on a search's fused ``candidates`` (``retrieval.feedback_weight`` > 0),
    unless the stop rule holds; ``fields`` gains the rank fields of the memories it adds."""
    config = backends.settings.retrieval
    ranked = [c for c in candidates if c[0] in fields]
    if confident(ranked, config.feedback_stop_margin):
        return list(candidates)
    feedback = Feedback(config.feedback_hits, config.feedback_terms, config.feedback_blend)
    top = [i for i, _, _ in ranked[: feedback.hits]]
    by_id = {r.id: r for r in backends.store.get_many(top, request.query.scope)}
    records = [by_id[i] for i in top if i in by_id]
    lists = second_round(backends, request, records, feedback)
    if not any(lists.values()):
        return list(candidates)
    fused = fuse_second_round(candidates, lists, config.feedback_weight, config.rrf_k)
    fresh = [i for i, _, _ in fused if i not in fields]
    if fresh:
        for f in backends.store.rank_fields(fresh, request.query.scope, session_key):
            fields[f.id] = f
    return fused[: max(config.candidates, len(candidates))]


__all__ = [
    "Feedback",
    "apply_feedback",
    "blended_vector",
    "confident",
    "expansion_terms",
    "fuse_second_round",
    "second_round",
]
