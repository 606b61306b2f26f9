"""The buffer contract: every buffer backend passes this same suite, through ``ThreadBuffer``.

Backends: in-process (``memory://``) and Redis (the real server on 127.0.0.1:6379, each test
under its own key prefix; without Redis these skip on a laptop and fail in CI). Each test opens
a Memory in a fresh home (SQLite, and qdrant-client's in-memory index, which opens in
milliseconds: the index has its own contract suite); flushes go through the normal write path.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentmem import (
    InvalidScope,
    InvalidSettings,
    InvalidText,
    Memory,
    PermissionDenied,
    Scope,
    Settings,
    ValidationError,
)
from agentmem.buffers import FlushKind, ThreadBuffer, Turn, render_turns
from agentmem.embedders import Embedder
from agentmem.tokens import TokenCounter
from tests.integration._scripts.support import CountingEmbedder

COUNTER = TokenCounter()
MakeMemory = Callable[..., Memory]

LISBON = [
    "Which hotel should we book in Lisbon for the May trip?",
    "The hotel near Alfama in Lisbon has good reviews for May.",
    "Book the Lisbon hotel for three nights in May, near Alfama.",
    "Also check flights from Berlin to Lisbon for the May trip and the hotel.",
    "The Lisbon flights in May are cheapest on Tuesdays.",
]
PYTEST = [
    "My pytest suite fails with a fixture scope mismatch error.",
    "How do I configure the fixture scope in conftest.py for pytest?",
]


@pytest.fixture(scope="module")
def embedder(embedder: Embedder) -> Embedder:
    """The session's MiniLM, remembering vectors across this module (both backends flush the
    same texts, so the second pays nothing)."""
    return CountingEmbedder(embedder, remember_documents=True)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backend_name(request: pytest.FixtureRequest) -> str:
    """Which buffer backend the test runs against."""
    return str(request.param)


@pytest.fixture
def make_mem(
    backend_name: str, request: pytest.FixtureRequest, tmp_path: Path, embedder: Embedder
) -> Iterator[MakeMemory]:
    """Open Memories on this backend (buffer settings as keywords); all closed afterwards."""
    opened: list[Memory] = []
    url, prefix = "memory://", "agentmem:buffer:"
    if backend_name == "redis":
        url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")

    def make(home: str = "home", *, top: dict[str, Any] | None = None, **buffer: Any) -> Memory:
        """``top``: settings outside the buffer section."""
        config = {"key_prefix": prefix, "topic_shift_threshold": None, **buffer}
        s = Settings.load(
            home=tmp_path / home,
            vectors_url="qdrant-local://:memory:",
            buffer_url=url,
            buffer=config,
            **(top or {}),
        )
        mem = Memory(settings=s, embedder=embedder)
        opened.append(mem)
        return mem

    yield make
    for mem in opened:
        backend = mem.buffers.backend
        if not backend.durable:  # skip the flush-on-close (and its embedding) in teardown
            for thread in backend.threads():
                backend.delete(thread)
        mem.close()


def ids(turns: list[Turn]) -> list[str]:
    """The ids of turns, in order."""
    return [t.id for t in turns]


def stored_turns(mem: Memory, **scope: str) -> list[Any]:
    """Turn records flushed into the store in a scope, in turn order."""
    records = mem.list(filters={"buffer_record": "turn"}, limit=10_000, **scope)
    return sorted(records, key=lambda r: (r.event_time, r.created_at))


# -- append, read, clear ---------------------------------------------------------------------


def test_append_keeps_order_and_counts_tokens(make_mem: MakeMemory) -> None:
    mem = make_mem()
    buf = mem.buffer(thread_id="t-1", user_id="alice")
    appended = [
        buf.append("user", "Hi, I need a hotel in Lisbon", name="alice"),
        buf.append("assistant", "Sure, for which dates?"),
        buf.append("tool", '{"hotels": 3}', name="search"),
    ]
    got = buf.messages()
    assert ids(got) == ids(appended)
    assert got == appended  # everything round-trips through the backend
    assert [t.line() for t in got] == [
        "user/alice: Hi, I need a hotel in Lisbon",
        "assistant: Sure, for which dates?",
        'tool/search: {"hotels": 3}',
    ]
    assert got[0].as_message() == {
        "role": "user",
        "content": "Hi, I need a hotel in Lisbon",
        "name": "alice",
    }
    assert got[1].as_message() == {"role": "assistant", "content": "Sure, for which dates?"}
    assert all(t.tokens == COUNTER.count(t.line()) for t in got)
    assert buf.tokens() == sum(t.tokens for t in got)
    assert len(buf) == 3
    assert got[0].at <= got[1].at <= got[2].at
    # A second handle on the same thread sees the same turns; other threads and users see none.
    assert ids(mem.buffer(thread_id="t-1", user_id="alice").messages()) == ids(appended)
    assert mem.buffer(thread_id="t-2", user_id="alice").messages() == []
    assert mem.buffer(thread_id="t-1", user_id="bob").messages() == []
    assert mem.buffer(thread_id="t-1", user_id="alice", agent_id="bot").messages() == []


def test_clear_drops_turns_without_storing_them(make_mem: MakeMemory) -> None:
    mem = make_mem()
    buf = mem.buffer(thread_id="t-1", user_id="alice")
    for n in range(3):
        buf.append("user", f"message {n}")
    assert buf.clear() == 3
    assert buf.messages() == [] and len(buf) == 0 and buf.window() == []
    assert buf.clear() == 0
    assert mem.list(user_id="alice") == []
    buf.append("user", "a fresh start")  # the thread is usable again
    assert [t.content for t in buf.messages()] == ["a fresh start"]


def test_unknown_thread_is_an_empty_buffer_and_reads_create_nothing(make_mem: MakeMemory) -> None:
    mem = make_mem()
    buf = mem.buffer(thread_id="never-used", user_id="alice")
    assert buf.messages() == [] and buf.window() == [] and buf.window(5) == []
    assert len(buf) == 0 and buf.tokens() == 0
    assert buf.flush() is None and buf.last_flush is None
    assert buf.clear() == 0
    assert mem.buffers.backend.threads() == []
    ctx = mem.context("anything", user_id="alice", thread_id="never-used", max_tokens=100)
    assert ctx.turns == [] and "Conversation" not in ctx.text
    assert mem.stats().records == 0


def test_threads_lists_the_live_threads(make_mem: MakeMemory) -> None:
    mem = make_mem()
    a = mem.buffer(thread_id="t:a?b%", user_id="alice,x=1")  # needs quoting in the key
    b = mem.buffer(thread_id="t-b", user_id="bob", org_id="acme")
    a.append("user", "one")
    b.append("user", "two")
    assert sorted(mem.buffers.backend.threads()) == sorted([a.key, b.key])
    from agentmem.buffers import scope_from_thread_key

    assert {scope_from_thread_key(k) for k in mem.buffers.backend.threads()} == {a.scope, b.scope}
    b.flush()
    assert mem.buffers.backend.threads() == [a.key]


# -- window ---------------------------------------------------------------------------------

CONTENT = st.text(
    alphabet=st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=80
).filter(str.strip)


def test_window_never_exceeds_its_budget(make_mem: MakeMemory) -> None:
    mem = make_mem()

    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(contents=st.lists(CONTENT, max_size=10), budget=st.integers(1, 150))
    def check(contents: list[str], budget: int) -> None:
        buf = mem.buffer(thread_id=uuid.uuid4().hex, user_id="alice")
        for n, content in enumerate(contents):
            buf.append("user" if n % 2 else "assistant", content)
        everything = buf.messages()
        window = buf.window(budget)
        assert COUNTER.count(render_turns(window)) <= budget
        assert window == everything[len(everything) - len(window) :], "the most recent turns"
        if everything and COUNTER.count(everything[-1].line()) <= budget:
            assert window, "the newest turn fits, so the window is not empty"
        buf.clear()

    check()


def test_window_is_the_longest_recent_run_that_fits(make_mem: MakeMemory) -> None:
    mem = make_mem(max_tokens=100_000)
    buf = mem.buffer(thread_id="t-1", user_id="alice")
    for n in range(150):  # more than the first tail a window reads
        buf.append("user", f"short message number {n}")
    everything = buf.messages()
    backend = mem.buffers.ready()
    assert backend.tail(buf.key, 3) == everything[-3:] and backend.tail(buf.key, 0) == []
    assert backend.tail(buf.key, 1000) == everything
    for budget in (1, 5, 9, 10, 25, 50, 100, 700, 1500, 10_000):
        window = buf.window(budget)
        assert COUNTER.count(render_turns(window)) <= budget
        if len(window) < len(everything):
            longer = everything[len(everything) - len(window) - 1 :]
            assert COUNTER.count(render_turns(longer)) > budget, f"budget {budget}: not maximal"
    assert buf.window() == everything  # default: the buffer's own budget


# -- flushing ---------------------------------------------------------------------------------


def test_flush_writes_one_episode_and_its_turns(make_mem: MakeMemory) -> None:
    mem = make_mem()
    buf = mem.buffer(thread_id="t-1", user_id="alice")
    turns = [
        buf.append("user", "I am moving to Lisbon in May", name="alice"),
        buf.append("assistant", "Exciting! Do you need help finding a flat?"),
        buf.append("user", "Yes, something near Alfama", name="alice"),
    ]
    flush = buf.flush()
    assert flush is not None and flush.kind is FlushKind.MANUAL and flush.removed == 3
    assert buf.messages() == [] and buf.last_flush is flush

    episode = flush.episode
    assert episode is not None
    assert episode.scope == Scope(user_id="alice", thread_id="t-1")
    assert episode.kind.value == "episodic"
    assert episode.text == render_turns(turns)
    assert episode.event_time == turns[0].at
    meta = episode.metadata
    assert meta["thread_id"] == "t-1" and meta["buffer_record"] == "segment"
    assert (meta["start"], meta["end"]) == (turns[0].at.isoformat(), turns[-1].at.isoformat())
    assert meta["turns"] == 3 and meta["flush"] == "manual" and meta["segment_key"]
    assert episode.provenance == {
        "source": "buffer",
        "thread_id": "t-1",
        "flush": "manual",
        "trust": "trusted",
    }

    assert [r.text for r in flush.turns] == [t.line() for t in turns]
    for record, turn in zip(flush.turns, turns, strict=True):
        assert record.scope == episode.scope and record.event_time == turn.at
        assert record.metadata["segment_id"] == episode.id
        assert record.metadata["turn_id"] == turn.id and record.metadata["role"] == turn.role
        assert record.provenance == {
            "source": "buffer",
            "thread_id": "t-1",
            "turn_id": turn.id,
            "segment_id": episode.id,
            # every write path goes through the trust pipeline (issue 22), buffers included
            "trust": "trusted",
        }
    assert flush.turns[0].metadata["name"] == "alice" and "name" not in flush.turns[1].metadata

    # Stored through the normal write path: durable, searchable, with history.
    stored = mem.list(user_id="alice", thread_id="t-1")
    assert {r.id for r in stored} == {episode.id, *(r.id for r in flush.turns)}
    assert mem.history(episode.id)[0].actor == "buffer"
    hits = mem.search("Where is Alice moving?", user_id="alice", k=4)
    assert hits and hits[0].record.id in {r.id for r in stored}
    assert buf.flush() is None


def test_a_segment_spans_its_turns_times_whatever_their_order(
    make_mem: MakeMemory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concurrent writers stamp a turn before it reaches the list, so list order need not be
    time order: the segment's time span is that of its turns' times."""
    mem = make_mem()
    buf = mem.buffer(thread_id="t-1", user_id="alice")
    base = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    stamps = iter([base + timedelta(seconds=2), base, base + timedelta(seconds=1)])
    monkeypatch.setattr("agentmem.buffers.buffer.utcnow", lambda: next(stamps))
    turns = [buf.append("user", f"turn {n}") for n in range(3)]
    monkeypatch.undo()
    assert [t.at for t in buf.messages()] == [t.at for t in turns]  # list order kept
    flush = buf.flush()
    assert flush is not None and flush.episode is not None
    meta = flush.episode.metadata
    assert (meta["start"], meta["end"]) == (
        base.isoformat(),
        (base + timedelta(seconds=2)).isoformat(),
    )
    assert flush.episode.event_time == base


def test_overflow_flushes_oldest_turns_and_loses_none(make_mem: MakeMemory) -> None:
    mem = make_mem()
    buf = mem.buffer(thread_id="t-1", user_id="alice", max_tokens=60)
    appended, kinds = [], []
    for n in range(14):
        appended.append(buf.append("user", f"turn {n} about the kitchen renovation budget"))
        assert buf.tokens() <= 60, "the buffer stays within its budget"
        if buf.last_flush is not None:
            kinds.append(buf.last_flush.kind)
            buf.last_flush = None
    assert kinds and set(kinds) == {FlushKind.OVERFLOW}
    flushed = stored_turns(mem, user_id="alice")
    # Every turn is either stored or still live, exactly once, in order.
    assert [r.metadata["turn_id"] for r in flushed] + ids(buf.messages()) == ids(appended)
    segments = mem.list(user_id="alice", filters={"buffer_record": "segment"})
    assert len(segments) == len(kinds)
    assert {r.metadata["segment_id"] for r in flushed} == {s.id for s in segments}
    assert sum(s.metadata["turns"] for s in segments) == len(flushed)
    assert all(s.metadata["flush"] == "overflow" for s in segments)


def test_concurrent_appends_leave_the_thread_within_its_budget(make_mem: MakeMemory) -> None:
    """An append that meets another caller's flush skips its own; the flusher checks the budget
    again once it lets go of the lock, so none is left over budget when all have returned."""
    mem = make_mem()
    buf = mem.buffer(thread_id="t-1", user_id="alice", max_tokens=60)

    async def append_all() -> list[Turn]:
        turns = [buf.aappend("user", f"message number {n} about topic {n}") for n in range(40)]
        return await asyncio.gather(*turns)

    appended = asyncio.run(append_all())
    assert buf.tokens() <= 60
    flushed = [r.metadata["turn_id"] for r in stored_turns(mem, user_id="alice")]
    assert sorted([*flushed, *ids(buf.messages())]) == sorted(ids(appended)), "none lost"


def test_a_turn_over_the_whole_budget_is_flushed_too(make_mem: MakeMemory) -> None:
    mem = make_mem()
    buf = mem.buffer(thread_id="t-1", user_id="alice", max_tokens=20)
    buf.append("user", "short")
    big = buf.append("user", "a very long turn " * 20)
    assert buf.messages() == [] and buf.tokens() == 0
    assert stored_turns(mem, user_id="alice")[-1].metadata["turn_id"] == big.id


def test_a_segment_of_many_turns_fits_the_metadata_limit(make_mem: MakeMemory) -> None:
    """The segment's size does not grow with its turns (which name it by ``segment_id``), so a
    long buffer flushes: its appends, flush() and close never fail on the metadata limit."""
    mem = make_mem(max_tokens=200, top={"max_metadata_bytes": 512})
    buf = mem.buffer(thread_id="t-1", user_id="alice")
    appended = [buf.append("user", "ok") for _ in range(120)]  # ids: 36 bytes each
    assert buf.last_flush is not None and buf.last_flush.kind is FlushKind.OVERFLOW
    flush = buf.flush()
    assert flush is not None and flush.episode is not None and buf.messages() == []
    assert [r.metadata["turn_id"] for r in stored_turns(mem, user_id="alice")] == ids(appended)
    segments = mem.list(user_id="alice", filters={"buffer_record": "segment"})
    assert sum(s.metadata["turns"] for s in segments) == len(appended)


def test_topic_shift_flushes_the_previous_segment(make_mem: MakeMemory) -> None:
    mem = make_mem(topic_shift_threshold=0.1, topic_shift_window=3, min_segment_turns=4)
    buf = mem.buffer(thread_id="t-1", user_id="alice")
    lisbon = [buf.append("user", text) for text in LISBON]
    assert buf.last_flush is None, "one topic: nothing flushed"
    shift = buf.append("user", PYTEST[0])
    flush = buf.last_flush
    assert flush is not None and flush.kind is FlushKind.TOPIC_SHIFT
    assert flush.episode is not None and flush.episode.text == render_turns(lisbon)
    assert flush.episode.metadata["flush"] == "topic_shift"
    assert ids(buf.messages()) == [shift.id]
    buf.last_flush = None
    buf.append("user", PYTEST[1])
    assert buf.last_flush is None, "same topic again: no flush"


def test_topic_shift_needs_a_long_enough_segment(make_mem: MakeMemory) -> None:
    mem = make_mem(topic_shift_threshold=0.1, min_segment_turns=4)
    buf = mem.buffer(thread_id="t-1", user_id="alice")
    for text in [*LISBON[:2], PYTEST[0]]:
        buf.append("user", text)
    assert buf.last_flush is None and len(buf) == 3


def test_a_repeated_flush_after_a_crash_duplicates_nothing(
    make_mem: MakeMemory, monkeypatch: pytest.MonkeyPatch
) -> None:
    mem = make_mem()
    buf = mem.buffer(thread_id="t-1", user_id="alice")
    first = [buf.append("user", f"remember item {n}") for n in range(3)]

    def crash(*args: Any) -> int:
        raise RuntimeError("the process died after the store commit")

    monkeypatch.setattr(mem.buffers.backend, "remove", crash)
    with pytest.raises(RuntimeError):
        buf.flush()
    monkeypatch.undo()
    assert ids(buf.messages()) == ids(first), "the turns are still in the buffer"
    assert len(stored_turns(mem, user_id="alice")) == 3, "and already in the store"

    later = buf.append("user", "one more item")
    flush = buf.flush()
    assert flush is not None and flush.removed == 4
    assert [r.metadata["turn_id"] for r in flush.turns] == [later.id], "only the new turn"
    assert [r.metadata["turn_id"] for r in stored_turns(mem, user_id="alice")] == [
        *ids(first),
        later.id,
    ]
    assert len(mem.list(user_id="alice", filters={"buffer_record": "segment"})) == 2
    assert buf.messages() == []


def test_a_flush_racing_one_whose_lock_expired_loses_no_turn(
    make_mem: MakeMemory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flusher whose lock expired commits the turns it read while a second flusher, which
    read those turns and a newer one, is about to write: the second stores the newer turn
    instead of taking the whole batch for already stored."""
    mem = make_mem()
    buf = mem.buffer(thread_id="t-1", user_id="alice")
    early = [buf.append("user", f"early turn {n}") for n in range(3)]
    late = buf.append("user", "my flight is BA 123")
    store = mem.backends.store
    read = store.get_many
    raced: list[bool] = []

    def racing(ids: list[str]) -> list[Any]:
        found = read(ids)
        if not raced:  # the first flusher commits what it read (before the late turn)
            raced.append(True)
            mem.buffer(thread_id="t-1", user_id="alice")._flush(early, FlushKind.MANUAL)
        return found

    monkeypatch.setattr(store, "get_many", racing)
    flush = buf.flush()
    monkeypatch.undo()
    assert flush is not None and [r.metadata["turn_id"] for r in flush.turns] == [late.id]
    assert [r.metadata["turn_id"] for r in stored_turns(mem, user_id="alice")] == ids(
        [*early, late]
    )
    assert buf.messages() == []
    assert len(mem.list(user_id="alice", filters={"buffer_record": "segment"})) == 2


# -- context ----------------------------------------------------------------------------------


def test_context_puts_the_window_first_within_the_budget(make_mem: MakeMemory) -> None:
    mem = make_mem()
    mem.add_many(
        [
            "Alice is allergic to peanuts.",
            "Alice prefers window seats on flights.",
            "Alice's favourite city is Porto.",
        ],
        user_id="alice",
    )
    buf = mem.buffer(thread_id="t-1", user_id="alice")
    for n in range(8):
        buf.append("user" if n % 2 == 0 else "assistant", f"planning step {n} for the Porto trip")
    for max_tokens in (8, 30, 60, 120, 400):
        ctx = buf.context("What should I know about Alice's trip?", max_tokens=max_tokens)
        assert ctx.tokens == COUNTER.count(ctx.text) <= max_tokens
        everything = buf.messages()
        assert ctx.turns == everything[len(everything) - len(ctx.turns) :]
        if ctx.turns:
            assert ctx.text.startswith("## Conversation\n" + render_turns(ctx.turns))
            window_tokens = COUNTER.count("## Conversation\n" + render_turns(ctx.turns))
            assert window_tokens <= max_tokens * mem.settings.buffer.context_share
    ctx = buf.context("What should I know about Alice's trip?", max_tokens=400)
    assert len(ctx.turns) == 8 and len(ctx.records) == 3
    assert ctx.text.index("## Conversation") < ctx.text.index("Alice is allergic")

    # The thread in the query scope brings its live buffer (long-term: that thread only).
    in_thread = mem.context("trip", user_id="alice", thread_id="t-1", max_tokens=400)
    assert ids(in_thread.turns) == ids(buf.messages()) and in_thread.records == []
    # No thread, no buffer.
    assert mem.context("trip", user_id="alice", max_tokens=400).turns == []
    # An explicit buffer works with any scope that contains it.
    explicit = mem.context("trip", user_id="alice", max_tokens=400, buffer=buf)
    assert len(explicit.turns) == 8 and len(explicit.records) == 3


def test_context_refuses_a_buffer_outside_its_scope(make_mem: MakeMemory) -> None:
    mem = make_mem()
    maya = mem.buffer(thread_id="chat-7", user_id="maya")
    maya.append("user", "MAYA-SECRET my passport is X1234567")
    private = mem.buffer(thread_id="r-1", user_id="maya", agent_id="researcher")
    private.append("user", "RESEARCHER-PRIVATE the hotel password is 1234")
    writer = mem.for_agent("writer", user_id="maya", team="trip")
    refused: list[Callable[[], Any]] = [
        lambda: mem.context("passport", user_id="bob", buffer=maya),
        lambda: asyncio.run(mem.acontext("passport", user_id="bob", buffer=maya)),
        lambda: mem.context("passport", user_id="maya", thread_id="chat-8", buffer=maya),
        lambda: mem.context("hotel", user_id="maya", agent_id="writer", buffer=private),
        lambda: writer.context("hotel", buffer=private),
        lambda: asyncio.run(writer.acontext("hotel", buffer=private)),
        lambda: writer.context("hotel", buffer=maya),
    ]
    for call in refused:
        with pytest.raises(PermissionDenied, match="belongs to another") as err:
            call()
        assert "SECRET" not in str(err.value) and "PRIVATE" not in str(err.value)
    # Scopes that contain the buffer see its turns; the buffers are untouched by the refusals.
    assert len(mem.context("passport", user_id="maya", buffer=maya).turns) == 1
    assert len(mem.context("hotel", user_id="maya", buffer=private).turns) == 1
    assert len(mem.context("passport", user_id="maya", thread_id="chat-7", buffer=maya).turns) == 1
    assert (
        len(mem.for_agent("researcher", user_id="maya").context("hotel", buffer=private).turns) == 1
    )
    assert len(maya.messages()) == len(private.messages()) == 1


# -- bad input ------------------------------------------------------------------------------


def test_zero_negative_or_non_integer_budgets_are_rejected(make_mem: MakeMemory) -> None:
    mem = make_mem()
    buf = mem.buffer(thread_id="t-1", user_id="alice")
    buf.append("user", "hello")
    for bad in (0, -1, -500, True, 2.5, "100"):
        with pytest.raises(ValidationError, match="max_tokens must be a positive integer"):
            mem.buffer(thread_id="t-1", user_id="alice", max_tokens=bad)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="max_tokens must be a positive integer"):
            buf.window(bad)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="max_tokens"):
            buf.context("hello", max_tokens=bad)  # type: ignore[arg-type]
    for bad in (0, -1, -500):
        with pytest.raises(InvalidSettings, match="max_tokens"):
            Settings.load(home=Path("unused"), buffer={"max_tokens": bad})
    assert [t.content for t in buf.messages()] == ["hello"], "nothing changed"


def test_bad_turns_are_rejected_and_change_nothing(make_mem: MakeMemory) -> None:
    mem = make_mem()
    buf = mem.buffer(thread_id="t-1", user_id="alice")
    with pytest.raises(InvalidScope, match="thread_id"):
        mem.buffer(user_id="alice")  # type: ignore[call-arg]
    with pytest.raises(InvalidScope, match="thread_id"):
        mem.buffers.thread(Scope(user_id="alice"))
    with pytest.raises(InvalidScope):
        mem.buffer(thread_id="../etc", user_id="alice")
    for role in ("", "two words", "a/b", None, 3):
        with pytest.raises(ValidationError, match="role"):
            buf.append(role, "hello")  # type: ignore[arg-type]
    for content in ("", "   ", None, 42, "nul\x00byte"):
        with pytest.raises(InvalidText):
            buf.append("user", content)  # type: ignore[arg-type]
    for name in ("", "a\nb", "x" * 129, 7):
        with pytest.raises(ValidationError, match="name"):
            buf.append("user", "hello", name=name)  # type: ignore[arg-type]
    with pytest.raises(InvalidText, match="AGENTMEM_MAX_TEXT_CHARS"):
        buf.append("user", "x" * (mem.settings.max_text_chars + 1))
    assert buf.messages() == [] and mem.buffers.backend.threads() == []


# -- lifetimes ------------------------------------------------------------------------------


def test_ttl_is_set_and_refreshed(make_mem: MakeMemory) -> None:
    mem = make_mem(ttl_seconds=120)
    backend = mem.buffers.ready()
    if not backend.supports_ttl:
        pytest.skip(f"{type(backend).__name__} declares supports_ttl = False")
    buf = mem.buffer(thread_id="t-1", user_id="alice")
    assert backend.ttl(buf.key) is None, "an unknown thread has no expiry"
    buf.append("user", "hello")
    ttl = backend.ttl(buf.key)
    assert ttl is not None and 100 < ttl <= 120
    no_expiry = make_mem(home="other", ttl_seconds=None)
    forever = no_expiry.buffer(thread_id="t-2", user_id="alice")
    forever.append("user", "hello")
    assert no_expiry.buffers.backend.ttl(forever.key) is None


def test_closing_flushes_volatile_buffers_and_keeps_durable_ones(make_mem: MakeMemory) -> None:
    mem = make_mem()
    buf = mem.buffer(thread_id="t-1", user_id="alice")
    turns = [buf.append("user", f"note {n}") for n in range(3)]
    mem.close()
    with pytest.raises(InvalidSettings, match="closed"):
        buf.append("user", "after close")
    again = make_mem()
    kept = again.buffer(thread_id="t-1", user_id="alice").messages()
    stored = [r.metadata["turn_id"] for r in stored_turns(again, user_id="alice")]
    if again.buffers.backend.durable:
        assert ids(kept) == ids(turns) and stored == [], "still live in the shared buffer"
    else:
        assert kept == [] and stored == ids(turns), "flushed into episodic memory on close"
        segment = again.list(user_id="alice", filters={"buffer_record": "segment"})[0]
        assert segment.metadata["flush"] == "close"


def test_threads_of_one_process_append_safely(make_mem: MakeMemory) -> None:
    mem = make_mem(max_tokens=1_000_000)
    writers, per_writer = 4, 100
    errors: list[BaseException] = []

    def write(w: int) -> None:
        try:
            buf = mem.buffer(thread_id="shared", user_id="alice")
            for i in range(per_writer):
                buf.append("user", f"writer {w} turn {i}")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    turns = mem.buffer(thread_id="shared", user_id="alice").messages()
    assert len(turns) == writers * per_writer == len(set(ids(turns)))
    for w in range(writers):
        mine = [int(t.content.split()[-1]) for t in turns if t.content.startswith(f"writer {w} ")]
        assert mine == list(range(per_writer))
    assert isinstance(mem.buffer(thread_id="shared", user_id="alice"), ThreadBuffer)
