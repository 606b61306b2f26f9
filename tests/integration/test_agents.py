"""Multi-agent scopes: an agent reads its private scope plus its team's, and nothing else.

Isolation is checked through every read (search, list, context, get, history) on the default
stack (SQLite + Qdrant Edge), where it is enforced inside the SQL and the index filter; the
property test draws teams, agents and who writes what, and compares every agent's view with the
rule. Handoffs copy with provenance and never leave the user.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentmem import (
    AgentMemory,
    HistoryEvent,
    InvalidScope,
    Memory,
    NotFound,
    PermissionDenied,
    Scope,
    Settings,
    ValidationError,
    handoff,
    writing,
)
from agentmem.embedders import Embedder
from tests.integration._scripts.support import CountingEmbedder

NOTES = (
    "The survey data for the report comes from the 2023 census",
    "Draft the introduction in a friendly tone",
    "Source X was unreliable, do not cite it",
    "The report is due on Friday at noon",
)
QUERY = "what do we know about the report?"


@pytest.fixture(scope="module")
def mem(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Memory]:
    """One Memory for the module (each test works for its own user); vectors remembered."""
    memo = CountingEmbedder(embedder, remember_documents=True)
    memo.prime([QUERY, *NOTES])
    home = tmp_path_factory.mktemp("agents") / "home"
    with Memory(settings=Settings.load(home=home), embedder=memo) as m:
        yield m


@pytest.fixture
def alice() -> str:
    """A user id of this test's own."""
    return f"alice-{uuid.uuid4().hex[:8]}"


def team_of(mem: Memory, user: str) -> tuple[AgentMemory, AgentMemory, AgentMemory]:
    """A researcher and a writer in team 'report', and an analyst in another team."""
    researcher = mem.for_agent("researcher", user_id=user, team="report")
    writer = mem.for_agent("writer", user_id=user, team="report")
    analyst = mem.for_agent("analyst", user_id=user, team="finance")
    return researcher, writer, analyst


# -- the rule, property-based ------------------------------------------------------------------


@st.composite
def worlds(draw: st.DrawFn) -> list[tuple[int, int | None, bool, int]]:
    """Writes as (agent, team of the agent, shared?, note): 3 agents, teams drawn per agent."""
    teams = [draw(st.sampled_from([None, 0, 1])) for _ in range(3)]
    writes = draw(
        st.lists(
            st.tuples(st.integers(0, 2), st.booleans(), st.integers(0, len(NOTES) - 1)),
            min_size=1,
            max_size=6,
        )
    )
    return [(a, teams[a], shared and teams[a] is not None, n) for a, shared, n in writes]


def test_each_agent_reads_exactly_its_private_and_team_scope(mem: Memory) -> None:
    @settings(
        max_examples=12,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(world=worlds())
    def check(world: list[tuple[int, int | None, bool, int]]) -> None:
        run = uuid.uuid4().hex[:8]
        teams = {a: t for a, t, _, _ in world}
        agents = {
            a: mem.for_agent(
                f"agent-{a}",
                user_id=f"user-{run}",
                team=None if teams.get(a) is None else f"team-{teams[a]}",
            )
            for a in range(3)
        }
        written = []  # (record id, author, shared)
        for a, _, shared, n in world:
            record = agents[a].add(NOTES[n], shared=shared)
            written.append((record.id, a, shared))
        user_level = mem.add("a memory of the user with no agent", user_id=f"user-{run}")

        for a, agent in agents.items():
            team = teams.get(a)
            expected = {
                i
                for i, author, shared in written
                if author == a or (shared and team is not None and teams.get(author) == team)
            }
            assert {r.id for r in agent.list(limit=1000)} == expected
            assert {h.record.id for h in agent.search(QUERY, k=50)} == expected
            assert {r.id for r in agent.context(QUERY, max_tokens=4000).records} <= expected
            for i, author, _ in written:
                if i in expected:
                    assert agent.get(i).id == i
                    assert agent.history(i)[0].actor == f"agent:agent-{author}"
                else:
                    with pytest.raises(PermissionDenied):
                        agent.get(i)
                    with pytest.raises(PermissionDenied):
                        agent.history(i)
            with pytest.raises(PermissionDenied):
                agent.get(user_level.id)

    check()


# -- reads and writes ---------------------------------------------------------------------------


def test_private_notes_stay_private_and_team_notes_are_shared(mem: Memory, alice: str) -> None:
    researcher, writer, analyst = team_of(mem, alice)
    secret = researcher.add(NOTES[2])
    shared = researcher.add(NOTES[3], shared=True)
    draft = writer.add(NOTES[1])
    assert secret.scope == Scope(user_id=alice, agent_id="researcher")
    assert shared.scope == Scope(user_id=alice, agent_id="team:report")

    assert {h.record.id for h in writer.search(QUERY, k=10)} == {shared.id, draft.id}
    assert {h.record.id for h in researcher.search(QUERY, k=10)} == {secret.id, shared.id}
    assert analyst.search(QUERY, k=10) == []
    assert [r.id for r in writer.list(shared=True)] == [shared.id]
    assert [r.id for r in writer.list(shared=False)] == [draft.id]
    assert {r.id for r in writer.context(QUERY).records} == {shared.id, draft.id}
    # The plain Memory API still sees everything of the user.
    assert {r.id for r in mem.list(user_id=alice)} == {secret.id, shared.id, draft.id}
    # A team's name is normalised like scope ids: " report" is the same team.
    spaced = mem.for_agent("editor", user_id=alice, team="\u00a0report ")
    assert [r.id for r in spaced.list(shared=True)] == [shared.id]


def test_reading_or_changing_another_agents_memory_is_denied(mem: Memory, alice: str) -> None:
    researcher, writer, _ = team_of(mem, alice)
    secret = researcher.add(NOTES[2])
    before = (mem.get(secret.id).model_dump(), mem.history(secret.id))
    for action in (
        lambda: writer.get(secret.id),
        lambda: writer.history(secret.id),
        lambda: writer.update(secret.id, text="overwritten"),
        lambda: writer.invalidate(secret.id),
        lambda: writer.delete(secret.id),
    ):
        with pytest.raises(PermissionDenied, match="another agent") as err:
            action()
        assert isinstance(err.value, PermissionError)
        assert "handoff" in str(err.value)
    assert (mem.get(secret.id).model_dump(), mem.history(secret.id)) == before
    # Another user's memory is not revealed at all; an unknown id is simply not found.
    bobs = mem.for_agent("researcher", user_id="bob", team="report").add("Bob's note")
    with pytest.raises(NotFound):
        researcher.get(bobs.id)
    with pytest.raises(NotFound):
        researcher.get(str(uuid.uuid4()))


def test_agents_change_their_own_and_team_memories_as_themselves(mem: Memory, alice: str) -> None:
    researcher, writer, _ = team_of(mem, alice)
    shared = researcher.add(NOTES[3], shared=True)
    updated = writer.update(shared.id, text="The report is due on Monday at noon")
    assert updated.version == 2 and updated.scope == shared.scope
    history = writer.history(shared.id)
    assert [(e.event, e.actor) for e in history] == [
        (HistoryEvent.ADD, "agent:researcher"),
        (HistoryEvent.UPDATE, "agent:writer"),
    ]
    writer.delete(shared.id)
    with pytest.raises(NotFound):
        researcher.get(shared.id)


def test_agent_buffers_flush_into_the_private_scope(mem: Memory, alice: str) -> None:
    researcher, writer, _ = team_of(mem, alice)
    buf = researcher.buffer("t-1")
    assert buf.scope == Scope(user_id=alice, agent_id="researcher", thread_id="t-1")
    buf.append("user", "Find sources on the 2023 census")
    buf.append("assistant", "The census microdata is the best source")
    flush = buf.flush()
    assert flush is not None and flush.episode is not None
    assert flush.episode.scope.agent_id == "researcher"
    assert writer.list() == [] and len(researcher.list()) == 3
    live = researcher.buffer("t-2")
    live.append("user", "What about the survey?")
    ctx = researcher.context("survey", thread_id="t-2", max_tokens=300)
    assert [t.content for t in ctx.turns] == ["What about the survey?"]
    assert writer.context("survey", thread_id="t-2", max_tokens=300).turns == []
    live.clear()
    team_buf = writer.buffer("t-3", shared=True)
    assert team_buf.scope.agent_id == "team:report"


def test_context_refuses_a_buffer_the_agent_may_not_read(mem: Memory, alice: str) -> None:
    researcher, writer, analyst = team_of(mem, alice)
    private = researcher.buffer("t-1")
    private.append("user", "RESEARCHER-PRIVATE the hotel password is 1234")
    bobs = mem.buffer(thread_id="t-1", user_id=f"bob-{alice}", agent_id="writer")
    bobs.append("user", "BOB-PRIVATE my passport number")
    for reader, buffer in ((writer, private), (analyst, private), (writer, bobs)):
        with pytest.raises(PermissionDenied, match="another agent, user or thread") as err:
            reader.context("hotel", buffer=buffer, max_tokens=300)
        assert "handoff" in str(err.value) and "PRIVATE" not in str(err.value)
        with pytest.raises(PermissionDenied, match="another agent, user or thread"):
            asyncio.run(reader.acontext("hotel", buffer=buffer, max_tokens=300))
    # The agent's own thread is readable only in that thread; a team buffer by the whole team.
    with pytest.raises(PermissionDenied):
        researcher.context("hotel", thread_id="t-2", buffer=private, max_tokens=300)
    ctx = researcher.context("hotel", thread_id="t-1", buffer=private, max_tokens=300)
    assert [t.content for t in ctx.turns] == [private.messages()[0].content]
    team = writer.buffer("t-3", shared=True)
    team.append("user", "The team meets on Monday")
    assert len(researcher.context("meeting", buffer=team, max_tokens=300).turns) == 1
    assert analyst.context("meeting", thread_id="t-3", max_tokens=300).turns == []
    with pytest.raises(ValidationError, match="buffer must be"):
        writer.context("hotel", buffer="t-1", max_tokens=300)  # type: ignore[arg-type]
    for buffer in (private, bobs, team):
        buffer.clear()


def test_bad_agent_handles_are_rejected(mem: Memory, alice: str) -> None:
    with pytest.raises(InvalidScope, match="user_id= or org_id="):
        mem.for_agent("researcher")
    with pytest.raises(InvalidScope, match="team:"):
        mem.for_agent("team:report", user_id=alice)
    with pytest.raises(InvalidScope):
        mem.for_agent("a/b", user_id=alice)
    with pytest.raises(InvalidScope):
        mem.for_agent("researcher", user_id=alice, team="")
    loner = mem.for_agent("loner", user_id=alice)
    with pytest.raises(ValidationError, match="no team"):
        loner.add("shared?", shared=True)
    assert loner.readable().members == (Scope(user_id=alice, agent_id="loner"),)
    org_agent = mem.for_agent("bot", org_id=alice, team="ops")
    assert org_agent.add("org-wide runbook", shared=True).scope == Scope(
        org_id=alice, agent_id="team:ops"
    )
    assert mem.list(user_id=alice) == []


# -- handoff ------------------------------------------------------------------------------------


def test_handoff_by_ids_copies_with_provenance(mem: Memory, alice: str) -> None:
    researcher, writer, _ = team_of(mem, alice)
    secret = researcher.add(NOTES[2], metadata={"topic": "sources"}, importance=0.8)
    copies = handoff(researcher, writer, ids=[secret.id], note="for the draft")
    assert len(copies) == 1
    copy = copies[0]
    assert copy.id != secret.id and copy.text == secret.text
    assert copy.scope == Scope(user_id=alice, agent_id="writer")
    assert copy.importance == 0.8
    assert copy.metadata == {
        "topic": "sources",
        "handoff_from": "researcher",
        "handoff_source_id": secret.id,
    }
    assert copy.provenance["source_ids"] == [secret.id]
    assert copy.provenance["from_agent"] == "researcher"
    assert copy.provenance["to_agent"] == "writer"
    assert copy.provenance["from_scope"] == {"user_id": alice, "agent_id": "researcher"}
    assert copy.provenance["note"] == "for the draft"
    assert mem.history(copy.id)[0].actor == "handoff:researcher->writer"
    assert writer.get(copy.id).id == copy.id
    with pytest.raises(PermissionDenied):
        writer.get(secret.id)  # the original stays private
    # Handing the same memory again returns the earlier copy.
    assert [c.id for c in researcher.handoff(writer, ids=[secret.id])] == [copy.id]
    assert len(writer.list()) == 1


def test_handoff_by_query_skips_what_the_recipient_already_sees(mem: Memory, alice: str) -> None:
    researcher, writer, _ = team_of(mem, alice)
    private = researcher.add(NOTES[0])
    shared = researcher.add(NOTES[3], shared=True)
    copies = handoff(researcher, writer, query="report data source", k=5)
    assert [c.metadata["handoff_source_id"] for c in copies] == [private.id]
    assert shared.id not in {c.metadata["handoff_source_id"] for c in copies}


def test_concurrent_handoffs_of_one_memory_store_one_copy(
    mem: Memory, alice: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    researcher, writer, _ = team_of(mem, alice)
    secret = researcher.add(NOTES[2])
    callers = 4
    barrier = threading.Barrier(callers, timeout=60)
    waited = threading.local()
    build = writing.records_from_items

    def after_every_check(*args: Any, **kwargs: Any) -> Any:
        # Every caller has looked for an earlier copy before any stores one: the race, always.
        if not getattr(waited, "done", False):
            waited.done = True
            barrier.wait()
        return build(*args, **kwargs)

    monkeypatch.setattr(writing, "records_from_items", after_every_check)
    results: list[Any] = [None] * callers

    def hand(i: int) -> None:
        try:
            results[i] = [c.id for c in researcher.handoff(writer, ids=[secret.id])]
        except Exception as exc:  # shown by the assertion below
            results[i] = exc

    threads = [threading.Thread(target=hand, args=(i,)) for i in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = [r.id for r in writer.list()]
    assert len(stored) == 1
    assert results == [stored] * callers


def test_a_copy_made_before_copies_had_their_own_id_is_still_the_earlier_copy(
    mem: Memory, alice: str
) -> None:
    researcher, writer, _ = team_of(mem, alice)
    secret = researcher.add(NOTES[1])
    old = writer.add(
        NOTES[1], metadata={"handoff_from": "researcher", "handoff_source_id": secret.id}
    )
    assert [c.id for c in researcher.handoff(writer, ids=[secret.id])] == [old.id]
    assert [r.id for r in writer.list()] == [old.id]


def test_bad_handoffs_change_nothing(mem: Memory, alice: str) -> None:
    researcher, writer, analyst = team_of(mem, alice)
    secret = researcher.add(NOTES[2])
    other_user = mem.for_agent("writer", user_id="bob", team="report")
    before = mem.stats().records  # every other test of the module has finished
    with pytest.raises(PermissionDenied, match="one user"):
        handoff(researcher, other_user, ids=[secret.id])
    with pytest.raises(PermissionDenied):
        handoff(writer, analyst, ids=[secret.id])  # the writer cannot read it
    with pytest.raises(ValidationError, match="one of them"):
        handoff(researcher, writer)
    with pytest.raises(ValidationError, match="one of them"):
        handoff(researcher, writer, ids=[secret.id], query="x")
    with pytest.raises(ValidationError, match="itself"):
        handoff(researcher, mem.for_agent("researcher", user_id=alice), ids=[secret.id])
    with pytest.raises(NotFound):
        handoff(researcher, writer, ids=[secret.id, str(uuid.uuid4())])
    assert mem.stats().records == before
