"""The session prior: a whole-session BM25 that ranks up the records of the best sessions.

A question about a conversation is often answered in one session, by turns that do not repeat
its words ("Yes, last Tuesday!"). Scoring the *sessions* first (all turns of a session as one
BM25 document) and multiplying each candidate's fused score by ``1 + w * s / s_max`` (its
session's score ``s`` against the best session's) lifts the turns of the sessions that match
the question as a whole.

Sessions are those of :mod:`agentmem.representation`: episodes that name their session in the
``retrieval.window_group_key`` metadata key. A record without one (a fact, a note, a memory
added on its own) has no session prior: its score is left as it is. The sessions scored are
those of the fused candidates (IDF over them), read from the store under the search's scope.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from agentmem.filters import Condition, FilterOp
from agentmem.lexical import Bm25Encoder
from agentmem.models import ChannelScore, MemoryKind, MemoryRecord, Scope, ScopeSet
from agentmem.representation import group_condition, indexed_text
from agentmem.settings import RetrievalSettings
from agentmem.stores import RecordStore
from agentmem.stores.base import RecordQuery

Candidate = tuple[str, float, dict[str, ChannelScore]]
SessionKey = tuple[Scope, Any]

_MAX_TURNS = 10_000
"""Most turns read for the candidates' sessions in one search."""


def _session_of(record: MemoryRecord, settings: RetrievalSettings) -> SessionKey | None:
    if record.kind is not MemoryKind.EPISODIC:
        return None
    condition = group_condition(record, settings)
    return None if condition is None else (record.scope, condition.value)


def session_scores(
    query: str, sessions: dict[SessionKey, str], encoder: Bm25Encoder
) -> dict[SessionKey, float]:
    """BM25 of ``query`` against each session's whole text, IDF over these sessions."""
    docs = {key: encoder.document(text) for key, text in sessions.items()}
    df: Counter[int] = Counter()
    for vector in docs.values():
        df.update(set(vector.indices))
    n = len(docs)
    terms = set(encoder.query(query).indices)
    scores: dict[SessionKey, float] = {}
    for key, vector in docs.items():
        scores[key] = sum(
            weight * math.log(1 + (n - df[i] + 0.5) / (df[i] + 0.5))
            for i, weight in zip(vector.indices, vector.values, strict=True)
            if i in terms
        )
    return scores


def apply_session_prior(
    store: RecordStore,
    scope: Scope | ScopeSet,
    query: str,
    candidates: Sequence[Candidate],
    records: dict[str, MemoryRecord],
    settings: RetrievalSettings,
) -> list[Candidate]:
    """``candidates`` re-scored by their session's BM25 (see the module), best first.
    Candidates without a session keep their score; with ``session_prior`` 0 nothing runs
    (the default, 4, was chosen held out: benchmarks/session_channel.py)."""
    weight = settings.session_prior
    keys = {i: _session_of(r, settings) for i, r in records.items()}
    wanted = {k for k in keys.values() if k is not None}
    if weight <= 0 or not wanted:
        return list(candidates)
    values = tuple(sorted({value for _, value in wanted}, key=str))
    turns = store.query(
        RecordQuery(
            scope=scope,
            kinds=(MemoryKind.EPISODIC,),
            conditions=(Condition(settings.window_group_key, FilterOp.IN, values),),
            limit=_MAX_TURNS,
        )
    )
    turns.sort(key=lambda r: (r.created_at, r.id))
    texts: dict[SessionKey, list[str]] = {}
    for turn in turns:
        key = _session_of(turn, settings)
        if key in wanted:
            texts.setdefault(key, []).append(indexed_text(turn, settings))
    if not texts:
        return list(candidates)
    mean_turns = sum(len(t) for t in texts.values()) / len(texts)
    encoder = Bm25Encoder(avg_len=settings.bm25_avg_len * mean_turns)
    scores = session_scores(query, {k: "\n".join(t) for k, t in texts.items()}, encoder)
    best = max(scores.values())
    if best <= 0:
        return list(candidates)
    out: list[Candidate] = []
    for memory_id, score, explain in candidates:
        key = keys.get(memory_id)
        if key is not None:
            score *= 1 + weight * scores.get(key, 0.0) / best
        out.append((memory_id, score, explain))
    out.sort(key=lambda c: -c[1])  # stable: equal scores keep fusion's order
    return out


__all__ = ["apply_session_prior", "session_scores"]
