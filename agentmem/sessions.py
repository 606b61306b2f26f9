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

What a search reads for it is narrow: each candidate's session with its rank fields
(:meth:`~agentmem.stores.RecordStore.rank_fields`), then the text and event time of the turns
of those sessions (:class:`~agentmem.stores.SessionTexts`; a store without it is read whole).
Counting a session's terms is the costly part, so the counts are kept between searches
(:class:`SessionDocs`). A store with :class:`~agentmem.stores.SessionTexts` is first asked for
a stamp of each session (:class:`~agentmem.stores.base.SessionStamp`: one aggregate statement,
no texts), and the texts are read only for the sessions whose stamp changed since they were
counted, so a search in a long conversation whose turns did not change reads none of them. A
store without it, or sessions holding more than ``_MAX_TURNS`` turns together (only the
oldest ``_MAX_TURNS`` are read then), are checked against the texts read in the same search.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agentmem.filters import Condition, FilterOp
from agentmem.fusion import Candidate
from agentmem.lexical import Bm25Encoder
from agentmem.models import MemoryKind, Scope, ScopeSet
from agentmem.representation import dated_text
from agentmem.settings import RetrievalSettings
from agentmem.stores import RecordQuery, RecordStore, SessionTexts
from agentmem.stores.base import (
    RankFields,
    SessionKey,
    SessionStamp,
    SessionTurn,
    record_session,
)

if TYPE_CHECKING:
    from agentmem.backends import Backends


_MAX_TURNS = 10_000
"""Most turns read for the candidates' sessions in one search."""


@dataclass(frozen=True, slots=True)
class SessionDoc:
    """A session's whole text as BM25 sees it: how often each term occurs (in the order of
    qdrant's vectors: ascending term id) and the text's length in terms."""

    digest: bytes
    """What the counts were made from (:func:`_digest` of the session's turns, or
    :func:`_stamp_digest` of its stamp when they were read after it)."""
    counts: dict[int, int]
    length: int


class SessionDocs:
    """The term counts of whole sessions, kept between searches (one cache per Memory).

    An entry serves a search only while it was counted from the very turns (texts and event
    times, in order) read from the store in that search, or, with a stamp, while the session's
    stamp read in that search is the one read before its turns were, so any write, update,
    invalidation, expiry or forget of a turn, by this process or another, is counted again,
    never served stale; a session read with other turns replaces its entry. A forget in this
    process also empties the cache (:func:`agentmem.erasure.forget`), so no term of a
    forgotten turn stays in it. At most ``limit`` sessions are kept, least recently used
    first out.
    """

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._docs: OrderedDict[SessionKey, SessionDoc] = OrderedDict()
        self._lock = threading.Lock()

    def doc(
        self,
        key: SessionKey,
        turns: Sequence[SessionTurn],
        settings: RetrievalSettings,
        counter: Bm25Encoder,
    ) -> SessionDoc:
        """The counts of the session ``key`` made of ``turns`` (cached, or counted now)."""
        digest = _digest(turns, settings)
        return self.cached(key, digest) or self.count(key, digest, turns, settings, counter)

    def cached(self, key: SessionKey, digest: bytes) -> SessionDoc | None:
        """The counts of the session ``key`` if they were made from what ``digest`` names."""
        with self._lock:
            doc = self._docs.get(key)
            if doc is not None and doc.digest == digest:
                self._docs.move_to_end(key)
                return doc
        return None

    def count(
        self,
        key: SessionKey,
        digest: bytes,
        turns: Sequence[SessionTurn],
        settings: RetrievalSettings,
        counter: Bm25Encoder,
    ) -> SessionDoc:
        """Count the session ``key`` made of ``turns`` now, kept under ``digest``."""
        text = "\n".join(dated_text(t.text, t.event_time, settings) for t in turns)
        counts = counter.term_counts(text)
        doc = SessionDoc(digest, counts, sum(counts.values()))
        with self._lock:
            self._docs[key] = doc
            self._docs.move_to_end(key)
            while len(self._docs) > self.limit:
                self._docs.popitem(last=False)
        return doc

    def clear(self) -> None:
        """Drop every session's counts (they are counted again when next searched)."""
        with self._lock:
            self._docs.clear()

    def __len__(self) -> int:
        return len(self._docs)


def _digest(turns: Sequence[SessionTurn], settings: RetrievalSettings) -> bytes:
    """A digest of everything a session's text is made of: each turn's event time and text
    (length-prefixed), in order, and whether dates are put in front."""
    parts = [
        f"{t.event_time.timestamp() if t.event_time else None!r}:{len(t.text)}:{t.text}"
        for t in turns
    ]
    parts.append("dated" if settings.date_prefix else "plain")
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=16).digest()


def _stamp_digest(stamp: SessionStamp, settings: RetrievalSettings) -> bytes:
    """A digest of a session's stamp and whether dates are put in front (never equal to a
    :func:`_digest`: the prefix differs)."""
    text = f"stamp:{stamp.turns}:{stamp.aggregates!r}:{settings.date_prefix}"
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def session_scores(
    terms: Iterable[int], docs: Mapping[SessionKey, SessionDoc], encoder: Bm25Encoder
) -> dict[SessionKey, float]:
    """BM25 of the query's ``terms`` against each session's whole text, IDF over these
    sessions, the term weights :meth:`Bm25Encoder.document` would give each whole text."""
    n = len(docs)
    wanted = sorted(set(terms))  # summed in the order of the documents' vectors
    df = {i: sum(1 for doc in docs.values() if i in doc.counts) for i in wanted}
    scores: dict[SessionKey, float] = {}
    for key, doc in docs.items():
        scores[key] = sum(
            encoder.term_weight(doc.counts[i], doc.length)
            * math.log(1 + (n - df[i] + 0.5) / (df[i] + 0.5))
            for i in wanted
            if i in doc.counts
        )
    return scores


def apply_session_prior(
    backends: Backends,
    scope: Scope | ScopeSet,
    terms: Iterable[int],
    candidates: Sequence[Candidate],
    fields: Mapping[str, RankFields],
) -> list[Candidate]:
    """``candidates`` re-scored by their session's BM25 against the query's ``terms`` (see
    the module), best first; ``fields`` are the candidates' rank fields with their sessions.
    Candidates without a session keep their score; with ``session_prior`` 0 nothing runs
    (4 was chosen held out: benchmarks/session_channel.py)."""
    settings = backends.settings.retrieval
    weight = settings.session_prior
    wanted = {f.session for f in fields.values() if f.session is not None}
    if weight <= 0 or not wanted:
        return list(candidates)
    docs, sizes = _session_docs(backends, scope, wanted)
    if not docs:
        return list(candidates)
    mean_turns = sum(sizes.values()) / len(sizes)
    encoder = Bm25Encoder(avg_len=settings.bm25_avg_len * mean_turns)
    scores = session_scores(terms, docs, encoder)
    best = max(scores.values())
    if best <= 0:
        return list(candidates)
    out: list[Candidate] = []
    for memory_id, score, explain in candidates:
        found = fields.get(memory_id)
        if found is not None and found.session is not None:
            score *= 1 + weight * scores.get(found.session, 0.0) / best
        out.append((memory_id, score, explain))
    out.sort(key=lambda c: -c[1])  # stable: equal scores keep fusion's order
    return out


def _session_docs(
    backends: Backends, scope: Scope | ScopeSet, wanted: set[SessionKey]
) -> tuple[dict[SessionKey, SessionDoc], dict[SessionKey, int]]:
    """The term counts of the ``wanted`` sessions that have turns in ``scope``, and how many
    turns each has; texts are read only for sessions whose stamp changed (see the module)."""
    settings = backends.settings.retrieval
    store, cache, counter = backends.store, backends.sessions, backends.bm25
    query = _turns_query(scope, {session[-1] for session in wanted}, settings)
    if isinstance(store, SessionTexts):
        stamps = store.session_stamps(query, settings.window_group_key)
        if sum(s.turns for s in stamps.values()) <= _MAX_TURNS:  # all turns would be read
            found = {k: _stamp_digest(s, settings) for k, s in stamps.items() if k in wanted}
            docs = {k: d for k, digest in found.items() if (d := cache.cached(k, digest))}
            sizes = {k: stamps[k].turns for k in docs}
            stale = {k for k in found if k not in docs}
            if stale:
                query = _turns_query(scope, {session[-1] for session in stale}, settings)
                for k, turns in _session_turns(store, query, stale, settings).items():
                    docs[k] = cache.count(k, found[k], turns, settings, counter)
                    sizes[k] = len(turns)
            return docs, sizes
    by_session = _session_turns(store, query, wanted, settings)
    docs = {k: cache.doc(k, t, settings, counter) for k, t in by_session.items()}
    return docs, {k: len(t) for k, t in by_session.items()}


def _turns_query(
    scope: Scope | ScopeSet, values: set[str | int], settings: RetrievalSettings
) -> RecordQuery:
    """The episodes in ``scope`` naming one of ``values`` as their session, oldest first."""
    return RecordQuery(
        scope=scope,
        kinds=(MemoryKind.EPISODIC,),
        conditions=(
            Condition(settings.window_group_key, FilterOp.IN, tuple(sorted(values, key=str))),
        ),
        limit=_MAX_TURNS,
    )


def _session_turns(
    store: RecordStore, query: RecordQuery, wanted: set[SessionKey], settings: RetrievalSettings
) -> dict[SessionKey, list[SessionTurn]]:
    """The turns ``query`` reads of the ``wanted`` sessions, oldest first, by session."""
    key = settings.window_group_key
    if isinstance(store, SessionTexts):
        turns = store.session_turns(query, key)
    else:
        turns = [
            SessionTurn(record_session(r, key), r.text, r.event_time) for r in store.query(query)
        ]
    by_session: dict[SessionKey, list[SessionTurn]] = {}
    for turn in turns:
        if turn.session in wanted:
            by_session.setdefault(turn.session, []).append(turn)
    return by_session


__all__ = ["SessionDoc", "SessionDocs", "apply_session_prior", "session_scores"]
