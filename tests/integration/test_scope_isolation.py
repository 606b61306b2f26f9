"""Scope isolation, property-based: a query in scope Q sees exactly the records whose scope Q
contains (every field Q sets is equal), through every read, and can change nothing else.

Each example stores a few records under scopes drawn from small pools of org/user/agent/thread
ids (prefixed with a fresh run id, so examples never see each other's records) and checks one
query scope against all of them. One Memory serves every example of a test function.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentmem import HistoryEvent, Memory, NotFound, Scope
from agentmem.embedders import Embedder
from agentmem.models import SCOPE_FIELDS
from tests.conftest import MEMORY_BACKENDS, memory_settings
from tests.integration._scripts.support import CountingEmbedder

TEXTS = (
    "The launch is planned for the second week of March",
    "My favourite colour is teal",
    "Remember to rotate the API keys every quarter",
    "The client prefers meetings after lunch",
)
QUERY = "what should I remember?"

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Scope ids as users write them: letters, digits, punctuation, any script, spaces; never a
# path separator, a control character, an invisible format character or a lone surrogate
# (those are rejected, see unit tests), and in the canonical form Scope.of normalises to (NFC,
# no surrounding whitespace), so two drawn ids are two scopes.
TOKENS = (
    st.text(
        alphabet=st.characters(exclude_categories=("Cc", "Cs", "Cf"), exclude_characters="/\\"),
        min_size=1,
        max_size=6,
    )
    .map(lambda t: unicodedata.normalize("NFC", t).strip())
    .filter(bool)
)
ScopeDict = dict[str, str]


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[ScopeDict], ScopeDict]:
    """Record scopes and one query scope, all drawn from two candidate ids per field."""
    pools = {f: draw(st.lists(TOKENS, min_size=2, max_size=2, unique=True)) for f in SCOPE_FIELDS}

    def scope() -> st.SearchStrategy[ScopeDict]:
        return st.fixed_dictionaries(
            {}, optional={f: st.sampled_from(pools[f]) for f in SCOPE_FIELDS}
        ).filter(bool)

    records = draw(st.lists(scope(), min_size=2, max_size=4))
    # Often query exactly a record's scope, or a part of it; sometimes anything at all.
    base = draw(st.sampled_from(records))
    subset = draw(
        st.lists(st.sampled_from(sorted(base)), min_size=1, unique=True).map(
            lambda keys: {k: base[k] for k in keys}
        )
    )
    query = draw(st.one_of(st.just(base), st.just(subset), scope()))
    return records, query


def _prefixed(scope: ScopeDict, run: str) -> dict[str, Any]:
    return {f: f"{run}:{v}" for f, v in scope.items()}


def _store(mem: Memory, records: list[ScopeDict], run: str) -> list[tuple[str, Scope]]:
    stored = []
    for n, scope in enumerate(records):
        kwargs = _prefixed(scope, run)
        record = mem.add(TEXTS[n % len(TEXTS)], metadata={"n": n}, **kwargs)
        stored.append((record.id, Scope.of(**kwargs)))
    return stored


@pytest.fixture(params=MEMORY_BACKENDS)
def mem(request: pytest.FixtureRequest, home: Path, embedder: Embedder) -> Iterator[Memory]:
    """One Memory for all examples of a test, on each backend of MEMORY_BACKENDS; vectors are
    remembered across examples."""
    memo = CountingEmbedder(embedder, remember_documents=True)
    memo.prime([QUERY, *TEXTS])
    with Memory(settings=memory_settings(request, home), embedder=memo) as m:
        yield m


def test_reads_see_exactly_the_contained_scopes(mem: Memory) -> None:
    @SETTINGS
    @given(world=worlds())
    def check(world: tuple[list[ScopeDict], ScopeDict]) -> None:
        records, query = world
        run = uuid.uuid4().hex[:8]
        stored = _store(mem, records, run)
        q = _prefixed(query, run)
        q_scope = Scope.of(**q)
        visible = {i for i, s in stored if q_scope.contains(s)}

        assert {h.record.id for h in mem.search(QUERY, k=50, **q)} == visible
        for filters in ({"n": {"$gte": 0}}, {"n": 0}):
            hits = mem.search(QUERY, k=50, filters=filters, **q)
            assert {h.record.id for h in hits} <= visible
        assert {r.id for r in mem.list(limit=1000, **q)} == visible
        assert {r.id for r in mem.list(limit=1000, kinds=["episodic"], **q)} == visible
        for memory_id, _ in stored:
            if memory_id in visible:
                assert mem.get(memory_id, **q).id == memory_id
                assert mem.history(memory_id, **q)[0].event is HistoryEvent.ADD
            else:
                with pytest.raises(NotFound):
                    mem.get(memory_id, **q)
                with pytest.raises(NotFound):
                    mem.history(memory_id, **q)

    check()


def test_writes_cannot_touch_other_scopes(mem: Memory) -> None:
    @SETTINGS
    @given(world=worlds())
    def check(world: tuple[list[ScopeDict], ScopeDict]) -> None:
        records, query = world
        run = uuid.uuid4().hex[:8]
        stored = _store(mem, records, run)
        q = _prefixed(query, run)
        q_scope = Scope.of(**q)
        visible = {i for i, s in stored if q_scope.contains(s)}
        hidden = [i for i, _ in stored if i not in visible]
        before = {i: (mem.get(i).model_dump(), mem.history(i)) for i in hidden}

        for memory_id in hidden:
            with pytest.raises(NotFound):
                mem.update(memory_id, text="overwritten by another scope", **q)
            with pytest.raises(NotFound):
                mem.update(memory_id, metadata={"stolen": True}, **q)
            with pytest.raises(NotFound):
                mem.invalidate(memory_id, **q)
            with pytest.raises(NotFound):
                mem.delete(memory_id, **q)
        for memory_id in visible:
            assert mem.update(memory_id, importance=0.9, **q).version == 2

        assert mem.delete_all(**q) == len(visible)
        for memory_id in visible:
            with pytest.raises(NotFound):
                mem.get(memory_id)
        after = {i: (mem.get(i).model_dump(), mem.history(i)) for i in hidden}
        assert after == before, "a record outside the scope changed"
        # What is left is still found by its own scope's search.
        for memory_id, scope in stored:
            if memory_id in before:
                hits = mem.search(QUERY, k=50, **scope.fields())
                assert memory_id in {h.record.id for h in hits}

    check()


def test_two_users_sharing_agent_and_thread_ids(mem: Memory) -> None:
    shared = {"org_id": "acme", "agent_id": "assistant", "thread_id": "t-1"}
    a = mem.add("Alice's bank PIN is 4921", user_id="alice", **shared)
    b = mem.add("Bob's bank PIN is 1234", user_id="bob", **shared)
    team = mem.add("The team standup is at 9:30", **shared)

    assert [h.record.id for h in mem.search("bank PIN", user_id="alice")] == [a.id]
    assert [h.record.id for h in mem.search("bank PIN", user_id="bob", **shared)] == [b.id]
    assert {h.record.id for h in mem.search("bank PIN", **shared)} == {a.id, b.id, team.id}
    assert mem.search("bank PIN", user_id="carol", **shared) == []
    assert mem.list(user_id="alice", agent_id="other") == []
    with pytest.raises(NotFound):
        mem.get(b.id, user_id="alice", **shared)
    with pytest.raises(NotFound):
        mem.update(team.id, text="x", user_id="alice", **shared)
    assert mem.delete_all(user_id="alice") == 1
    assert mem.get(b.id).text == b.text and mem.get(team.id).text == team.text
