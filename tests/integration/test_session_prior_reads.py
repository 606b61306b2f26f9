"""The session prior reads narrow rows and keeps sessions' term counts between searches: the
ranking is the one of its first, whole-record computation (every candidate and every turn of
their sessions read whole, each session's text BM25-encoded anew), ids, scores and channels,
on both backends; and a write, update, invalidation, delete or forget of a turn, here or in
another process, changes the next search's session scores (nothing stale is served)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agentmem import Memory, Settings, retrieval
from agentmem.backends import Backends
from agentmem.embedders import Embedder
from agentmem.filters import Condition, FilterOp
from agentmem.fusion import Candidate
from agentmem.lexical import Bm25Encoder
from agentmem.models import MemoryKind, MemoryRecord, Scope, ScopeSet, SearchHit
from agentmem.representation import group_condition, indexed_text
from agentmem.settings import RetrievalSettings
from agentmem.stores import RecordQuery, RecordStore
from agentmem.stores.base import RankFields
from tests.conftest import MEMORY_BACKENDS, memory_settings

T0 = datetime(2023, 5, 8, 12, tzinfo=UTC)
U = Scope(user_id="u")
QUERIES = [
    "when did they climb the mountain trail to the summit",
    "what did Alice bake this weekend",
    "Lisbon trip with the dog",
    "chess tournament last Tuesday",
    "sourdough",
    "what happened on 8 May 2023",
]
TOPICS = [
    "climbed the mountain trail to the summit",
    "baked sourdough bread with a long proof",
    "planned the trip to Lisbon with the dog",
    "played in the chess tournament",
    "painted the valley at sunset",
]


# The reference: the session prior as first shipped (whole records, sessions re-encoded). ----


def _old_session_of(record: MemoryRecord, settings: RetrievalSettings) -> Any:
    if record.kind is not MemoryKind.EPISODIC:
        return None
    condition = group_condition(record, settings)
    return None if condition is None else (record.scope, condition.value)


def _old_session_scores(query: str, sessions: dict[Any, str], encoder: Bm25Encoder) -> Any:
    docs = {key: encoder.document(text) for key, text in sessions.items()}
    df: Counter[int] = Counter()
    for vector in docs.values():
        df.update(set(vector.indices))
    n = len(docs)
    terms = set(encoder.query(query).indices)
    return {
        key: sum(
            weight * math.log(1 + (n - df[i] + 0.5) / (df[i] + 0.5))
            for i, weight in zip(vector.indices, vector.values, strict=True)
            if i in terms
        )
        for key, vector in docs.items()
    }


def _old_prior(
    store: RecordStore,
    scope: Scope | ScopeSet,
    query: str,
    candidates: Sequence[Candidate],
    records: dict[str, MemoryRecord],
    settings: RetrievalSettings,
) -> list[Candidate]:
    weight = settings.session_prior
    keys = {i: _old_session_of(r, settings) for i, r in records.items()}
    wanted = {k for k in keys.values() if k is not None}
    if weight <= 0 or not wanted:
        return list(candidates)
    values = tuple(sorted({value for _, value in wanted}, key=str))
    turns = store.query(
        RecordQuery(
            scope=scope,
            kinds=(MemoryKind.EPISODIC,),
            conditions=(Condition(settings.window_group_key, FilterOp.IN, values),),
            limit=10_000,
        )
    )
    turns.sort(key=lambda r: (r.created_at, r.id))
    texts: dict[Any, list[str]] = {}
    for turn in turns:
        key = _old_session_of(turn, settings)
        if key in wanted:
            texts.setdefault(key, []).append(indexed_text(turn, settings))
    if not texts:
        return list(candidates)
    mean_turns = sum(len(t) for t in texts.values()) / len(texts)
    encoder = Bm25Encoder(avg_len=settings.bm25_avg_len * mean_turns)
    scores = _old_session_scores(query, {k: "\n".join(t) for k, t in texts.items()}, encoder)
    best = max(scores.values())
    if best <= 0:
        return list(candidates)
    out: list[Candidate] = []
    for memory_id, score, explain in candidates:
        key = keys.get(memory_id)
        if key is not None:
            score *= 1 + weight * scores.get(key, 0.0) / best
        out.append((memory_id, score, explain))
    out.sort(key=lambda c: -c[1])
    return out


def _whole_record_prior(query: str) -> Any:
    """In place of the new prior, for ``query``: every candidate read whole, the old
    computation."""

    def prior(
        backends: Backends,
        scope: Scope | ScopeSet,
        terms: Any,
        candidates: Sequence[Candidate],
        fields: dict[str, RankFields],
    ) -> list[Candidate]:
        ids = [i for i, _, _ in candidates]
        records = {r.id: r for r in backends.store.get_many(ids, scope)}
        settings = backends.settings.retrieval
        return _old_prior(backends.store, scope, query, candidates, records, settings)

    return prior


# -------------------------------------------------------------------------------------------


@pytest.fixture(params=MEMORY_BACKENDS)
def mem(request: pytest.FixtureRequest, home: Path, embedder: Embedder) -> Iterator[Memory]:
    settings = memory_settings(request, home)
    settings = settings.model_copy(
        update={"retrieval": settings.retrieval.model_copy(update={"session_prior": 4.0})}
    )
    with Memory(settings=settings, embedder=embedder) as m:
        yield m


def _fill(mem: Memory) -> list[MemoryRecord]:
    items: list[dict[str, Any]] = []
    for n in range(60):
        session: Any = [f"s{n // 7}", n // 9][n % 2]  # string and integer sessions
        items.append(
            {
                "text": f"{['Alice', 'Bob', 'Carol'][n % 3]} {TOPICS[(n * 7) % 5]} ({n})",
                "event_time": T0 - timedelta(days=n // 6),
                "metadata": {"session": session, "n": n},
            }
        )
    items.append({"text": "Alice climbed a mountain once, years ago.", "metadata": {}})
    items.append({"text": "Bob baked sourdough (flag).", "metadata": {"session": True}})
    items.append({"text": "Carol went to Lisbon (float).", "metadata": {"session": 1.5}})
    added = mem.add_many(items, user_id="u")
    # the same session values in a thread of the same user are other sessions
    added += mem.add_many(items[:14], user_id="u", thread_id="t1")
    mem.add_many(items[:20], user_id="other")  # another scope: never read
    return added


def _search(mem: Memory, query: str, **kwargs: Any) -> list[SearchHit]:
    return retrieval.search(
        mem.backends,
        query,
        U,
        k=10,
        reference_time=T0,
        remember=False,
        count_recall=False,
        **kwargs,
    )


def _key(hits: list[SearchHit]) -> list[tuple[Any, ...]]:
    return [(h.record.id, h.score, h.channels) for h in hits]


def _check_same(mem: Memory, monkeypatch: pytest.MonkeyPatch, query: str) -> list[SearchHit]:
    fast = _search(mem, query)
    with monkeypatch.context() as patch:
        patch.setattr(retrieval, "apply_session_prior", _whole_record_prior(query))
        reference = _search(mem, query)
    assert fast, query
    assert _key(fast) == _key(reference), query
    return fast


def test_ranking_is_that_of_the_whole_record_computation(
    mem: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(mem)
    for query in QUERIES:
        fast = _check_same(mem, monkeypatch, query)
        _check_same(mem, monkeypatch, query)  # again, from the cached sessions
        assert all(h.record.scope.user_id == "u" for h in fast)
    assert len(mem.backends.sessions) > 0
    # the prior changed something, or comparing would prove little
    mem.backends.settings.retrieval.session_prior = 0.0
    off = {q: _key(_search(mem, q)) for q in QUERIES}
    mem.backends.settings.retrieval.session_prior = 4.0
    assert any(off[q] != _key(_search(mem, q)) for q in QUERIES)


def test_a_change_to_a_turn_changes_the_next_search(
    mem: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    added = _fill(mem)
    query = QUERIES[0]
    turn = next(r for r in added if r.metadata.get("session") == "s0" and r.scope == U)
    states = [_key(_check_same(mem, monkeypatch, query))]
    changes = [
        lambda: mem.add(
            "the summit of the mountain trail, climbed at last",
            user_id="u",
            metadata={"session": "s0"},
        ),
        lambda: mem.update(turn.id, text="we climbed the summit trail of the mountain again"),
        lambda: mem.invalidate(turn.id),
        lambda: mem.delete(next(r for r in added if r.metadata.get("session") == 0).id),
        lambda: mem.forget(
            [r.id for r in added if r.metadata.get("session") == "s1" and r.scope == U],
            reason="test",
            user_id="u",
        ),
    ]
    for change in changes:
        change()
        states.append(_key(_check_same(mem, monkeypatch, query)))
        assert states[-1] != states[-2]


def test_a_forget_clears_the_cache_and_the_next_search_recounts(mem: Memory) -> None:
    added = _fill(mem)
    _search(mem, QUERIES[1])
    assert len(mem.backends.sessions) > 0
    mem.forget([added[0].id], reason="test", user_id="u")
    assert len(mem.backends.sessions) == 0


def test_another_process_s_forget_is_never_served_from_the_cache(
    pgvector_url: str, home: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two Memory objects on one PostgreSQL store stand for two processes.
    settings = Settings.load(
        home=home,
        store_url=pgvector_url,
        vectors_url=pgvector_url,
        retrieval={"session_prior": 4.0},
    )
    with (
        Memory(settings=settings, embedder=embedder) as here,
        Memory(settings=settings, embedder=embedder) as there,
    ):
        _fill(here)
        secret = here.add("the zeppelin over the summit", user_id="u", metadata={"session": "s0"})
        query = "zeppelin over the mountain summit"
        before = _check_same(here, monkeypatch, query)
        there.forget([secret.id], reason="test", user_id="u")
        after = _check_same(here, monkeypatch, query)
        assert _key(after) != _key(before)
        zeppelin = set(here.backends.bm25.query("zeppelin").indices)
        for key in here.backends.sessions._docs:
            assert not zeppelin & set(here.backends.sessions._docs[key].counts), key


def test_a_search_reads_the_texts_only_of_sessions_that_changed(mem: Memory) -> None:
    """Cached sessions are checked against a stamp of their turns, not their texts: a search
    in unchanged sessions reads no turn text (it read every turn of every candidate's session
    on every search, so its cost grew with the conversation), and a write makes the next
    search read that session's turns alone."""
    added = _fill(mem)
    store = mem.backends.store
    read: list[Any] = []
    real = store.session_turns  # type: ignore[attr-defined]

    def counting(query: RecordQuery, key: str) -> Any:
        out = real(query, key)
        read.extend(t.session for t in out)
        return out

    store.session_turns = counting  # type: ignore[attr-defined]
    first = _key(_search(mem, QUERIES[0]))
    assert read, "the first search counts its sessions from their texts"
    read.clear()
    assert _key(_search(mem, QUERIES[0])) == first
    assert read == []
    turn = next(r for r in added if r.metadata.get("session") == "s0" and r.scope == U)
    mem.update(turn.id, text="we climbed the summit trail of the mountain again")
    _search(mem, QUERIES[0])
    session = (None, "u", None, None, "s0")
    assert set(read) <= {session, (None, "u", None, "t1", "s0")} and session in read
