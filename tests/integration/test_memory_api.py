"""The controller's public API: every method and its async twin, on the embedded defaults and
(tests taking ``mem``) on PostgreSQL + pgvector."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agentmem import (
    AgentMemError,
    Conflict,
    HistoryEvent,
    HomeLocked,
    IndexRefused,
    InvalidFilter,
    InvalidScope,
    InvalidSettings,
    Memory,
    MemoryDeleted,
    MemoryKind,
    MemoryRecord,
    NotFound,
    Scope,
    Settings,
    ValidationError,
    transfer,
    writing,
)
from agentmem.embedders import Embedder
from agentmem.filters import MAX_IN_VALUES, matches, parse_filters
from agentmem.models import content_hash, utcnow
from agentmem.stores import IndexOp, WriteBatch
from tests.conftest import MEMORY_BACKENDS, memory_settings
from tests.integration._scripts.support import CountingEmbedder

CORPUS = [
    "Alice moved to Lisbon in May and loves the tiled streets",
    "Bob drinks green tea every morning before work",
    "The quarterly budget review is scheduled for Friday",
    "Carol adopted a grey cat named Pixel",
    "Our deployment pipeline runs on Kubernetes with Argo",
    "Dave is allergic to peanuts and shellfish",
]


@pytest.fixture(scope="module")
def embedder(embedder: Embedder) -> Embedder:
    """The session's MiniLM, remembering vectors across this module's tests (same vectors)."""
    return CountingEmbedder(embedder, remember_documents=True)


@pytest.fixture(params=MEMORY_BACKENDS)
def mem(request: pytest.FixtureRequest, home: Path, embedder: Embedder) -> Iterator[Memory]:
    """A Memory on each backend of MEMORY_BACKENDS."""
    with Memory(settings=memory_settings(request, home), embedder=embedder) as m:
        yield m


def _ids(records: list[MemoryRecord]) -> list[str]:
    return [r.id for r in records]


@pytest.fixture
def corpus(mem: Memory) -> list[MemoryRecord]:
    """The corpus stored for user alice, with metadata to filter on."""
    return mem.add_many(
        [
            {"text": text, "metadata": {"n": n, "topic": "people" if n % 2 == 0 else "work"}}
            for n, text in enumerate(CORPUS)
        ],
        user_id="alice",
    )


# add / add_many / get ------------------------------------------------------------------------


def test_add_stores_every_field(mem: Memory) -> None:
    record = mem.add(
        "Alice moved to Lisbon in May",
        user_id="alice",
        agent_id="planner",
        kind="semantic",
        metadata={"source": "chat", "turn": 4, "tags": ["move"]},
        event_time="2023-05-08T13:56:00+00:00",
        importance=0.9,
    )
    assert record.scope.fields() == {"user_id": "alice", "agent_id": "planner"}
    assert record.kind is MemoryKind.SEMANTIC
    # A semantic memory is a note: keywords and a context are added, given values kept.
    given = {k: record.metadata[k] for k in ("source", "turn", "tags")}
    assert given == {"source": "chat", "turn": 4, "tags": ["move"]}
    assert set(record.metadata) == {"source", "turn", "tags", "keywords", "context"}
    assert record.event_time == datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    assert record.valid_from == record.event_time, "an event's fact holds from its event time"
    assert record.importance == 0.9 and record.version == 1
    assert record.invalidated_at is None and record.valid_to is None

    stored = mem.get(record.id)
    assert stored.model_dump() == record.model_dump()
    assert mem.get(record.id, user_id="alice").id == record.id
    assert mem.get(record.id, agent_id="planner", user_id="alice").id == record.id


def test_float_metadata_comes_back_as_floats(mem: Memory) -> None:
    # PostgreSQL's JSONB prints 1e20 as 100000000000000000000: read as an int, past 64 bits,
    # the record's own metadata was then refused by update(). (Integral floats from 1e16 to
    # 2**63 and -0.0 cannot round-trip through JSONB; docs/architecture.md says so.)
    metadata = {"score": 1e20, "big": 1e308, "tiny": 5e-324, "ratio": 2.5, "one": 1.0, "n": 3}
    item = {"text": "sensor reading", "metadata": metadata, "provenance": metadata}
    record = mem.add_many([item], user_id="u")[0]

    def typed(values: dict[str, Any]) -> dict[str, tuple[type, Any]]:
        return {k: (type(v), v) for k, v in values.items()}

    assert typed(mem.get(record.id).metadata) == typed(metadata)
    provenance = mem.get(record.id).provenance  # with the trust marks every write adds
    assert typed({k: provenance[k] for k in metadata}) == typed(metadata)
    assert typed(mem.list(user_id="u")[0].metadata) == typed(metadata)
    assert typed(mem.history(record.id)[0].new_metadata or {}) == typed(metadata)
    updated = mem.update(record.id, metadata=mem.get(record.id).metadata)
    assert typed(mem.history(record.id)[1].old_metadata or {}) == typed(metadata)
    assert updated.version == 2


def test_add_defaults(mem: Memory) -> None:
    before = utcnow()
    record = mem.add("plain note", thread_id="t-1")
    assert record.kind is MemoryKind.EPISODIC
    assert record.metadata == {} and record.importance == 0.5
    assert before <= record.created_at <= utcnow()
    assert record.created_at.tzinfo is not None


def test_add_many_mixes_strings_and_dicts_in_order(mem: Memory) -> None:
    records = mem.add_many(
        [
            "first, a plain string",
            {"text": "second, a fact", "kind": "semantic", "importance": 0.2},
            {"text": "third, with metadata", "metadata": {"x": 1}, "event_time": "2024-01-01"},
        ],
        user_id="u",
        org_id="acme",
    )
    assert [r.text for r in records] == [
        "first, a plain string",
        "second, a fact",
        "third, with metadata",
    ]
    assert [r.kind for r in records] == [
        MemoryKind.EPISODIC,
        MemoryKind.SEMANTIC,
        MemoryKind.EPISODIC,
    ]
    assert records[2].metadata == {"x": 1}
    assert all(r.scope.fields() == {"org_id": "acme", "user_id": "u"} for r in records)
    assert [mem.get(i).text for i in _ids(records)] == [r.text for r in records]
    assert mem.add_many([], user_id="u") == []
    stats = mem.stats()
    assert stats.records == 3 and stats.by_kind == {"episodic": 2, "semantic": 1}


def test_long_turns_of_one_thread_are_stored_and_indexed(mem: Memory) -> None:
    # Each turn is under max_text_chars and 16,000 terms, but the second one's window (itself
    # and its neighbour) has 20,000: pgvector's sparsevec limit must not refuse it.
    ideographs = [chr(c) for c in range(0x4E00, 0x4E00 + 20_000)]
    first = mem.add(" ".join(ideographs[:15_000]), thread_id="long")
    second = mem.add(" ".join(ideographs[5_000:]), thread_id="long")
    tea = mem.add("Bob likes tea", user_id="bob")
    stats = mem.stats()
    assert stats.records == stats.indexed_vectors == 3 and stats.pending_index == 0
    assert [h.record.id for h in mem.search("tea", user_id="bob")] == [tea.id]
    found = {h.record.id for h in mem.search(ideographs[19_999], thread_id="long")}
    assert second.id in found and first.id in {r.id for r in mem.list(thread_id="long")}


def test_a_memory_the_index_refuses_blocks_no_other_write(
    mem: Memory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    index = mem._backends.index
    upsert = index.upsert

    def refusing(points: Any) -> None:
        if any(p.payload["metadata"].get("unindexable") for p in points):
            raise IndexRefused("the index refused a value")
        upsert(points)

    monkeypatch.setattr(index, "upsert", refusing)
    with caplog.at_level(logging.WARNING, logger="agentmem.indexing"):
        bad, good = mem.add_many(
            [
                {"text": "Erin keeps bees on the roof", "metadata": {"unindexable": True}},
                "Erin sells honey at the market",
            ],
            user_id="erin",
        )
    assert bad.id in caplog.text and "left out of the vector index" in caplog.text
    later = mem.add("Frank likes tea", user_id="frank")  # the outbox is not stuck
    stats = mem.stats()
    assert stats.pending_index == 0 and stats.records == stats.indexed_vectors + 1
    assert mem.get(bad.id).text == bad.text
    assert [h.record.id for h in mem.search("honey", user_id="erin", k=1)] == [good.id]
    assert [h.record.id for h in mem.search("tea", user_id="frank")] == [later.id]


def test_a_queued_record_the_edge_index_cannot_encode_blocks_no_write_nor_open(
    home: Path, embedder: Embedder, caplog: pytest.LogCaptureFixture
) -> None:
    """A record whose payload Qdrant Edge cannot encode (a lone surrogate in its metadata,
    as an unchecked LLM notes answer once wrote) stayed in the outbox and raised TypeError on
    every later write, for any user, and on every open of the home."""
    settings = Settings.load(home=home)
    with Memory(settings=settings, embedder=embedder) as mem:
        bad = MemoryRecord(
            scope=Scope(user_id="erin"), text="Erin plays golf", metadata={"context": "\ud800"}
        )
        mem._backends.store.apply(WriteBatch(inserts=[bad], index=[(bad.id, IndexOp.UPSERT)]))
    with (
        caplog.at_level(logging.WARNING, logger="agentmem.indexing"),
        Memory(settings=settings, embedder=embedder) as mem,
    ):
        assert bad.id in caplog.text and "left out of the vector index" in caplog.text
        later = mem.add("Frank likes tea", user_id="frank")
        assert mem.stats().pending_index == 0
        assert mem.get(bad.id).text == bad.text
        assert [h.record.id for h in mem.search("tea", user_id="frank")] == [later.id]


# search --------------------------------------------------------------------------------------


def test_search_ranks_the_relevant_memory_first(mem: Memory, corpus: list[MemoryRecord]) -> None:
    hits = mem.search("Where does Alice live now?", user_id="alice")
    assert hits[0].record.id == corpus[0].id
    assert len(hits) == len(CORPUS)
    # Every hit says what the dense channel made of it: its rank there and its cosine score.
    dense = sorted((h.channels["dense"] for h in hits), key=lambda c: c.rank)
    assert [c.rank for c in dense] == list(range(1, len(hits) + 1))
    assert [c.score for c in dense] == sorted((c.score for c in dense), reverse=True)
    assert all(-1.0 <= c.score <= 1.0 for c in dense)
    assert hits[0].channels["dense"].rank == 1
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)

    assert mem.search("what pet does Carol have?", user_id="alice", k=1)[0].record.id == (
        corpus[3].id
    )
    assert len(mem.search("anything", user_id="alice", k=2)) == 2


def test_search_kinds_and_filters(mem: Memory, corpus: list[MemoryRecord]) -> None:
    fact = mem.add("Alice lives in Lisbon", user_id="alice", kind="semantic")
    only_facts = mem.search("Where does Alice live?", user_id="alice", kinds=["semantic"])
    assert _ids([h.record for h in only_facts]) == [fact.id]
    episodes = mem.search("Where does Alice live?", user_id="alice", kinds="episodic")
    assert fact.id not in _ids([h.record for h in episodes])

    for filters in [{"topic": "work"}, {"n": {"$gte": 2, "$lt": 5}}, {"n": {"$in": [0, 5]}}]:
        hits = mem.search("Alice", user_id="alice", filters=filters)
        expected = {r.id for r in corpus if matches(r.metadata, parse_filters(filters))}
        assert {h.record.id for h in hits} == expected, filters


def test_search_sees_only_its_scope(mem: Memory, corpus: list[MemoryRecord]) -> None:
    assert mem.search("Alice", user_id="bob") == []
    assert mem.search("Alice", user_id="alice", agent_id="someone") == []


# update / history ----------------------------------------------------------------------------


def test_update_writes_a_new_version_and_keeps_history(
    mem: Memory, corpus: list[MemoryRecord]
) -> None:
    old = corpus[0]
    new = mem.update(old.id, text="Alice moved to Porto in June", user_id="alice")
    assert new.id == old.id and new.version == 2 and new.text == "Alice moved to Porto in June"
    assert new.updated_at > old.updated_at and new.created_at == old.created_at
    assert mem.get(old.id).text == new.text

    history = mem.history(old.id)
    assert [(h.event, h.version) for h in history] == [
        (HistoryEvent.ADD, 1),
        (HistoryEvent.UPDATE, 2),
    ]
    assert history[0].new_text == old.text and history[0].old_text is None
    assert (history[1].old_text, history[1].new_text) == (old.text, new.text)
    assert history[1].scope is not None and history[1].scope.user_id == "alice"

    # The index holds the new text only.
    hits = mem.search("Alice moved to Porto in June", user_id="alice")
    assert hits[0].record.id == old.id and hits[0].record.text == new.text
    assert [h.record.id for h in hits].count(old.id) == 1
    assert mem.stats().indexed_vectors == len(CORPUS)

    meta = mem.update(old.id, metadata={"city": "Porto"}, importance=0.8)
    assert meta.version == 3 and meta.text == new.text
    assert meta.metadata == {"city": "Porto"} and meta.importance == 0.8
    last = mem.history(old.id)[-1]
    assert last.old_metadata == old.metadata and last.new_metadata == {"city": "Porto"}
    assert mem.search("Porto", user_id="alice", filters={"city": "Porto"})[0].record.id == old.id


def test_update_needs_something_to_change(mem: Memory, corpus: list[MemoryRecord]) -> None:
    with pytest.raises(ValidationError, match=r"text=, metadata= or importance= .*invalidate"):
        mem.update(corpus[0].id)


# invalidate ----------------------------------------------------------------------------------


def test_invalidate_hides_from_search_but_not_from_the_past(
    mem: Memory, corpus: list[MemoryRecord]
) -> None:
    target = corpus[1]
    before = utcnow()
    record = mem.invalidate(target.id, user_id="alice")
    assert record.invalidated_at is not None and record.valid_to is not None
    assert record.version == 2

    query = "What does Bob drink in the morning?"
    assert target.id not in _ids([h.record for h in mem.search(query, user_id="alice")])
    assert target.id not in _ids(mem.list(user_id="alice"))
    assert target.id in _ids(mem.list(user_id="alice", include_invalidated=True))

    then = mem.search(query, user_id="alice", as_of=before)
    assert then[0].record.id == target.id
    as_of_iso = mem.search(query, user_id="alice", as_of=before.isoformat())
    assert as_of_iso[0].record.id == target.id
    later = mem.search(query, user_id="alice", as_of=utcnow() + timedelta(seconds=1))
    assert target.id not in _ids([h.record for h in later])

    assert mem.get(target.id).invalidated_at is not None, "kept, not deleted"
    assert mem.history(target.id)[-1].event is HistoryEvent.INVALIDATE


def test_invalidate_with_a_future_valid_to(mem: Memory, corpus: list[MemoryRecord]) -> None:
    """An end still ahead is scheduled: the memory was hidden from search() and list() at
    once while search(as_of=now) still found it; every view now keeps it until then."""
    until = utcnow() + timedelta(days=30)
    record = mem.invalidate(corpus[2].id, valid_to=until)
    assert record.valid_to == until and record.invalidated_at is None
    assert mem.history(record.id)[-1].event is HistoryEvent.INVALIDATE
    assert mem.search("budget review", user_id="alice", as_of=until - timedelta(days=1))[
        0
    ].record.id == (corpus[2].id)
    after = mem.search("budget review", user_id="alice", as_of=until + timedelta(days=1))
    assert corpus[2].id not in _ids([h.record for h in after])
    now = [h.record for h in mem.search("budget review", user_id="alice")]
    at_now = [h.record for h in mem.search("budget review", user_id="alice", as_of=utcnow())]
    assert corpus[2].id in _ids(now) and corpus[2].id in _ids(at_now)
    assert corpus[2].id in _ids(mem.list(user_id="alice", limit=100))
    # ended early after all: gone from every view of now
    ended = mem.invalidate(corpus[2].id)
    assert ended.invalidated_at is not None and ended.valid_to is not None
    assert ended.valid_to <= utcnow()
    assert corpus[2].id not in _ids(
        [h.record for h in mem.search("budget review", user_id="alice")]
    )
    assert corpus[2].id not in _ids(mem.list(user_id="alice", limit=100))


def test_invalidating_again_keeps_the_first_end(mem: Memory, corpus: list[MemoryRecord]) -> None:
    target = corpus[1]
    first = mem.invalidate(target.id, valid_to="2022-01-01T00:00:00Z", user_id="alice")
    again = mem.invalidate(target.id, user_id="alice")  # a retry: nothing changes
    assert again == first and again.valid_to == datetime(2022, 1, 1, tzinfo=UTC)
    assert [h.event for h in mem.history(target.id)].count(HistoryEvent.INVALIDATE) == 1
    query = "What does Bob drink in the morning?"
    then = mem.search(query, user_id="alice", as_of="2023-01-01")
    assert target.id not in _ids([h.record for h in then])
    corrected = mem.invalidate(target.id, valid_to="2022-06-01T00:00:00Z", user_id="alice")
    assert corrected.valid_to == datetime(2022, 6, 1, tzinfo=UTC)
    assert corrected.invalidated_at == first.invalidated_at


def test_filters_no_store_can_run_are_refused_alike_on_every_backend(mem: Memory) -> None:
    """A NUL character or an $in longer than PostgreSQL's parameter limit allows is an
    InvalidFilter on every backend (PostgreSQL raised a driver error or "cannot reach")."""
    mem.add("Dana likes tea.", user_id="dana", metadata={"n": 3})
    many = {"n": {"$in": list(range(MAX_IN_VALUES))}}
    assert [r.text for r in mem.list(user_id="dana", filters=many)] == ["Dana likes tea."]
    assert [h.record.text for h in mem.search("tea", user_id="dana", filters=many)] == [
        "Dana likes tea."
    ]
    too_many = {"n": {"$in": list(range(MAX_IN_VALUES + 1))}}
    for bad in (too_many, {"n": "a\x00b"}, {"n": {"$in": ["\x00"]}}):
        with pytest.raises(InvalidFilter):
            mem.list(user_id="dana", filters=bad)
        with pytest.raises(InvalidFilter):
            mem.search("tea", user_id="dana", filters=bad)


def test_invalidate_refuses_an_end_before_the_start(mem: Memory) -> None:
    record = mem.add_many(
        [
            {
                "text": "Dana led the Lisbon office.",
                "valid_from": "2024-01-01T00:00:00Z",
                "valid_to": "2024-03-01T00:00:00Z",
            }
        ],
        user_id="dana",
    )[0]
    with pytest.raises(ValidationError, match="after the memory's valid_from"):
        mem.invalidate(record.id, valid_to="2020-01-01")
    assert mem.get(record.id) == record  # nothing changed
    ended = mem.invalidate(record.id)  # it ended in March: invalidating does not extend it
    assert ended.valid_to == record.valid_to and ended.invalidated_at is not None


# delete / delete_all -------------------------------------------------------------------------


def test_delete_removes_the_record_and_keeps_its_history(
    mem: Memory, corpus: list[MemoryRecord]
) -> None:
    target = corpus[3]
    mem.delete(target.id, user_id="alice")
    with pytest.raises(NotFound):
        mem.get(target.id)
    with pytest.raises(NotFound):
        mem.delete(target.id)
    assert target.id not in _ids([h.record for h in mem.search("Carol's cat", user_id="alice")])

    history = mem.history(target.id)
    assert [h.event for h in history] == [HistoryEvent.ADD, HistoryEvent.DELETE]
    assert history[-1].old_text == target.text and history[-1].new_text is None
    stats = mem.stats()
    assert stats.records == stats.indexed_vectors == len(CORPUS) - 1
    assert stats.pending_index == 0


def test_delete_that_lost_a_race_to_an_update_deletes_nothing(mem: Memory) -> None:
    # Memory.delete reads the record, then deletes it: an update in between must not be
    # deleted unseen (nor leave two "version 2" entries, one with stale text, in its history).
    record = mem.add("meeting at 10am", user_id="u")
    read = writing.get_one(mem.backends, record.id, None)
    mem.update(record.id, text="meeting moved to 3pm")
    with pytest.raises(Conflict, match="changed or was deleted since version 1"):
        writing.delete(mem.backends, [read])
    assert mem.get(record.id).text == "meeting moved to 3pm"
    assert [(h.event, h.version) for h in mem.history(record.id)] == [
        (HistoryEvent.ADD, 1),
        (HistoryEvent.UPDATE, 2),
    ]
    mem.delete(record.id)  # read again: deleted, with the text it had
    last = mem.history(record.id)[-1]
    assert (last.event, last.version, last.old_text) == (
        HistoryEvent.DELETE,
        3,
        "meeting moved to 3pm",
    )
    with pytest.raises(Conflict):  # a second delete of what was read finds it gone
        writing.delete(mem.backends, [read])
    assert len(mem.history(record.id)) == 3


def test_a_retry_after_a_delete_does_not_bring_the_memory_back(mem: Memory) -> None:
    # A retry with the idempotency key arriving after the memory was deleted (or forgotten)
    # writes nothing, and refuses alike whether the whole write or part of it was deleted.
    one = mem.add("Alice's SSN is on file", user_id="u", idempotency_key="req-1")
    batch = mem.add_many(["one", "two"], user_id="u", idempotency_key="req-2")
    whole = mem.add_many(["three", "four"], user_id="u", idempotency_key="req-3")
    forgotten = mem.add("Alice's passport number", user_id="u", idempotency_key="req-4")
    mem.delete(one.id)
    mem.delete(batch[0].id)
    for record in whole:
        mem.delete(record.id)
    mem.forget(forgotten.id, reason="erasure request", purge=True, user_id="u")
    before = (mem.stats().records, mem.stats().history_entries)
    retries = [
        lambda: mem.add("Alice's SSN is on file", user_id="u", idempotency_key="req-1"),
        lambda: mem.add_many(["one", "two"], user_id="u", idempotency_key="req-2"),
        lambda: mem.add_many(["three", "four"], user_id="u", idempotency_key="req-3"),
        lambda: mem.add("Alice's passport number", user_id="u", idempotency_key="req-4"),
    ]
    for retry in retries:
        with pytest.raises(MemoryDeleted, match="deleted or forgotten; nothing was written"):
            retry()
    assert (mem.stats().records, mem.stats().history_entries) == before
    assert [r.text for r in mem.list(user_id="u")] == ["two"]
    assert [h.event for h in mem.history(one.id)] == [HistoryEvent.ADD, HistoryEvent.DELETE]
    again = mem.add("Alice's SSN is on file", user_id="u", idempotency_key="req-5")
    assert again.id != one.id  # a new key stores it anew


def test_a_retry_racing_its_own_first_write_gets_that_write_not_memory_deleted(
    mem: Memory,
) -> None:
    # Two workers retrying one key: this one reads the store (nothing yet), the other's write
    # commits, then this one finds that write's history. History alone does not mean deleted:
    # the retry returns what the other stored.
    store = mem.backends.store
    real_history = store.history
    raced: list[MemoryRecord] = []
    fired: list[bool] = []

    def history(memory_id: str, *args: Any, **kwargs: Any) -> Any:
        if not fired:  # once: not again inside the other worker's own add
            fired.append(True)
            raced.append(mem.add("Maya likes tea", user_id="maya", idempotency_key="req-1"))
        return real_history(memory_id, *args, **kwargs)

    store.history = history  # type: ignore[method-assign]
    try:
        again = mem.add("Maya likes tea", user_id="maya", idempotency_key="req-1")
    finally:
        store.history = real_history  # type: ignore[method-assign]
    assert again.id == raced[0].id
    assert [r.text for r in mem.list(user_id="maya")] == ["Maya likes tea"]


def test_delete_all_empties_one_scope_only(mem: Memory, corpus: list[MemoryRecord]) -> None:
    other = mem.add("Bob's own note about Lisbon", user_id="bob")
    thread = mem.add("a thread note of Alice", user_id="alice", thread_id="t-9")
    assert mem.delete_all(user_id="alice", thread_id="t-9") == 1
    assert mem.delete_all(user_id="alice") == len(CORPUS)
    assert mem.delete_all(user_id="alice") == 0
    assert mem.list(user_id="alice") == []
    assert mem.search("Lisbon", user_id="alice") == []
    assert mem.get(other.id).text == other.text
    assert mem.search("Lisbon", user_id="bob")[0].record.id == other.id
    assert mem.history(thread.id)[-1].event is HistoryEvent.DELETE
    stats = mem.stats()
    assert stats.records == stats.indexed_vectors == 1
    with pytest.raises(InvalidScope):
        mem.delete_all()


# list / stats --------------------------------------------------------------------------------


def test_list_pages_in_creation_order(mem: Memory, corpus: list[MemoryRecord]) -> None:
    everything = mem.list(user_id="alice")
    assert {r.id for r in everything} == set(_ids(corpus))
    assert everything == sorted(everything, key=lambda r: (r.created_at, r.id))
    pages = [mem.list(user_id="alice", limit=4, offset=o) for o in (0, 4, 8)]
    assert [len(p) for p in pages] == [4, 2, 0]
    assert _ids(pages[0] + pages[1]) == _ids(everything)
    with pytest.raises(ValidationError, match="offset"):
        mem.list(user_id="alice", offset=-1)
    with pytest.raises(ValidationError, match="limit"):
        mem.list(user_id="alice", limit=0)


def test_list_kinds_and_filters(mem: Memory, corpus: list[MemoryRecord]) -> None:
    fact = mem.add("Alice lives in Lisbon", user_id="alice", kind="semantic", metadata={"n": 9})
    assert _ids(mem.list(user_id="alice", kinds=["semantic"])) == [fact.id]
    assert len(mem.list(user_id="alice", kinds=["episodic", "semantic"])) == len(CORPUS) + 1
    assert mem.list(user_id="alice", kinds="procedural") == []
    everything = [*corpus, fact]
    for filters in [
        {"topic": "people"},
        {"n": {"$gt": 3}},
        {"n": {"$ne": 9}},
        {"topic": {"$in": ["work", "none"]}, "n": {"$lte": 3}},
        {"missing": {"$ne": 1}},
    ]:
        got = {r.id for r in mem.list(user_id="alice", filters=filters)}
        expected = {r.id for r in everything if matches(r.metadata, parse_filters(filters))}
        assert got == expected, filters


def test_list_by_event_time_and_the_scopes_that_hold_memories(mem: Memory) -> None:
    may, june = "2023-05-08T10:00:00+00:00", "2023-06-01T10:00:00+00:00"
    early = mem.add("Alice flew to Porto", user_id="alice", event_time=may, infer=False)
    late = mem.add("Alice flew home", user_id="alice", event_time=june, infer=False)
    mem.add("an undated note", user_id="alice", agent_id="bot", infer=False)
    mem.add("Bob's note", user_id="bob", kind="semantic", infer=False)
    assert _ids(mem.list(user_id="alice", event_after="2023-05-15T00:00:00+00:00")) == [late.id]
    assert _ids(mem.list(user_id="alice", event_before=june)) == [early.id]
    with pytest.raises(ValidationError):
        mem.list(user_id="alice", event_after="next tuesday")
    alice = mem.scopes(user_id="alice")
    assert [(str(s.scope), s.records, s.by_kind) for s in alice] == [
        ("user_id=alice", 2, {"episodic": 2}),
        ("user_id=alice,agent_id=bot", 1, {"episodic": 1}),
    ]
    assert [str(s.scope) for s in mem.scopes(user_id="bob")] == ["user_id=bob"]


def test_stats(mem: Memory, corpus: list[MemoryRecord]) -> None:
    mem.add("a procedure", user_id="alice", kind="procedural")
    mem.update(corpus[0].id, importance=0.1)
    stats = mem.stats()
    assert stats.records == len(CORPUS) + 1
    assert stats.by_kind == {"episodic": len(CORPUS), "procedural": 1}
    assert stats.history_entries == len(CORPUS) + 2
    assert stats.indexed_vectors == stats.records and stats.pending_index == 0
    schemes = (stats.store_url.split(":")[0], stats.vectors_url.split(":")[0])
    assert schemes in {("sqlite", "edge"), ("postgresql", "postgresql")}
    assert stats.embedder == "all-MiniLM-L6-v2"


# export / import -----------------------------------------------------------------------------


def test_export_and_import_round_trip(
    mem: Memory, corpus: list[MemoryRecord], tmp_path: Path, embedder: Embedder
) -> None:
    mem.update(corpus[0].id, text="Alice moved to Porto in June")
    mem.invalidate(corpus[1].id)
    exported = list(mem.export(page=4))
    assert sorted(_ids(exported)) == _ids(exported) and len(exported) == len(CORPUS)

    with Memory(settings=Settings.load(home=tmp_path / "copy"), embedder=embedder) as copy:
        assert copy.import_records(exported) == len(CORPUS)
        assert copy.import_records(exported) == 0, "importing twice is harmless"
        assert [r.model_dump() for r in copy.export()] == [r.model_dump() for r in exported]
        hits = copy.search("Where does Alice live?", user_id="alice")
        assert hits[0].record.text == "Alice moved to Porto in June"
        assert corpus[1].id not in _ids([h.record for h in hits]), "still invalidated"
        stats = copy.stats()
        assert stats.indexed_vectors == stats.records == len(CORPUS)

    with Memory(settings=Settings.load(home=tmp_path / "dicts"), embedder=embedder) as copy:
        dumps = [r.model_dump(mode="json") for r in exported]
        assert copy.import_records(dumps) == len(CORPUS)
        assert copy.get(corpus[0].id).version == 2


def test_import_rebuilds_the_profiles_of_the_imported_facts(
    mem: Memory, tmp_path: Path, embedder: Embedder
) -> None:
    """An export holds no profile values: import rebuilds them from the facts (values set
    by hand are not carried)."""
    mem.add("Maya: I live in Paris.", user_id="maya", infer=True, event_time="2022-01-01")
    mem.add("Maya: I moved to Berlin.", user_id="maya", infer=True, event_time="2023-01-01")
    mem.add("Maya: I work at Acme.", user_id="maya", infer=True, event_time="2023-01-01")
    mem.profile(user_id="maya").set(age=31)
    exported = list(mem.export())
    with Memory(settings=Settings.load(home=tmp_path / "copy"), embedder=embedder) as copy:
        copy.import_records(exported)
        model = copy.profile(user_id="maya").get().model
        assert (model.location, model.employer, model.age) == ("Berlin", "Acme", None)
        assert copy.context("where?", user_id="maya").profile.startswith("## Profile")


def test_imported_naive_times_are_utc_as_in_add_whatever_the_host_zone(
    mem: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        record = {"id": str(uuid.uuid4()), "scope": {"user_id": "u"}, "text": "Boiler serviced",
                  "event_time": "2024-04-12T18:40:00", "valid_from": "2024-01-01T00:00:00",
                  "valid_to": "2024-05-12T00:00:00+00:00"}  # fmt: skip
        assert mem.import_records([record]) == 1
        imported = mem.get(record["id"])
        added = mem.add("Boiler serviced", user_id="u", event_time="2024-04-12T18:40:00")
    finally:
        monkeypatch.undo()
        time.tzset()
    assert imported.event_time == added.event_time == datetime(2024, 4, 12, 18, 40, tzinfo=UTC)
    assert imported.valid_from == datetime(2024, 1, 1, tzinfo=UTC)


def test_an_import_racing_another_skips_the_ids_the_other_wrote(
    mem: Memory, corpus: list[MemoryRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    exported = list(mem.export())
    new = [r.model_copy(update={"id": str(uuid.uuid4())}) for r in exported[:3]]
    store = mem.backends.store
    real_get_many = store.get_many
    looks = []

    def before_the_other_commits(ids: Any, *args: Any, **kwargs: Any) -> list[MemoryRecord]:
        looks.append(ids)  # the first look misses what the other import is writing
        return [] if len(looks) == 1 else real_get_many(ids, *args, **kwargs)

    monkeypatch.setattr(store, "get_many", before_the_other_commits)
    assert mem.import_records([*exported, *new]) == len(new)
    monkeypatch.undo()
    assert len(list(mem.export())) == len(exported) + len(new)


def test_import_checks_every_record_before_writing_any(
    home: Path, embedder: Embedder, corpus: list[MemoryRecord], mem: Memory
) -> None:
    exported = [r.model_dump(mode="json") for r in mem.export()]
    exported[-1]["importance"] = 7  # the last batch is bad: no earlier batch may be written
    settings = Settings.load(home=home.parent / "copy", max_batch_items=2)
    with Memory(settings=settings, embedder=embedder) as copy:
        with pytest.raises(ValidationError, match=r"record 5 .*importance.*nothing was imported"):
            copy.import_records(exported)
        assert list(copy.export()) == []
        with pytest.raises(ValidationError, match="iterable of exported records"):
            copy.import_records(None)  # type: ignore[arg-type]
    for page in (0, -1, 2.5, "x"):
        with pytest.raises(ValidationError, match="page must be an integer"):
            mem.export(page=page)  # type: ignore[arg-type]


def test_an_import_parse_error_names_the_record(mem: Memory) -> None:
    good = {"scope": {"user_id": "u"}, "text": "fine"}
    bad_id = str(uuid.uuid4())
    with pytest.raises(
        ValidationError, match=rf"^record 2 \({bad_id}\): not a memory record: text"
    ):
        mem.import_records([good, good, {"id": bad_id, "scope": {"user_id": "u"}}])
    with pytest.raises(ValidationError, match=r"^record 1: not a memory record.*nothing was"):
        mem.import_records([good, {"scope": {"user_id": "u"}}])
    with pytest.raises(ValidationError, match=r"^record 1: not a memory record: updated_at: "):
        mem.import_records([good, {**good, "updated_at": "yesterday"}])
    assert list(mem.export()) == []


def test_an_import_refuses_an_id_twice_in_its_input_whatever_the_batches(
    home: Path, embedder: Embedder
) -> None:
    a, b = (MemoryRecord(scope=Scope(user_id="u"), text=t) for t in ("Maya likes tea", "Bo"))
    for batch in (500, 1):  # the copies in one batch, then in two
        settings = Settings.load(home=home / str(batch), max_batch_items=batch)
        with Memory(settings=settings, embedder=embedder) as m:
            with pytest.raises(
                ValidationError, match=rf"record 2 \({a.id}\): the same id as record 0"
            ):
                m.import_records([a, b, a.model_dump(mode="json")])
            assert list(m.export()) == []


def test_records_without_an_id_are_imported_once_however_often(mem: Memory) -> None:
    tea = {"scope": {"user_id": "maya"}, "text": "Maya likes green tea", "kind": "semantic"}
    assert mem.import_records([tea, dict(tea)]) == 1, "an identical copy is the same memory"
    assert mem.import_records([tea]) == 0, "importing twice is harmless"
    stored = mem.list(user_id="maya")
    assert [r.id for r in stored] == [transfer.as_record(tea).id]
    assert mem.import_records([{**tea, "text": "Maya likes black tea"}]) == 1
    given = MemoryRecord(scope=Scope(user_id="maya"), text="Maya likes green tea")
    assert mem.import_records([given]) == 1, "a record object keeps the id it has"
    assert given.id in {r.id for r in mem.list(user_id="maya")}


def test_import_hashes_the_text_whatever_hash_the_file_gives(mem: Memory) -> None:
    """A line copied in a backup and given a new text keeps the old content_hash: stored as
    given, context() took the two memories for duplicates and left one out."""
    stale = content_hash("Maya lives in Lisbon")
    texts = ["Maya lives in Lisbon", "Maya is allergic to peanuts"]
    mem.import_records(
        [{"scope": {"user_id": "maya"}, "text": t, "content_hash": stale} for t in texts]
    )
    assert {r.text: r.content_hash for r in mem.export()} == {t: content_hash(t) for t in texts}
    block = mem.context("Where does Maya live and what is she allergic to?", user_id="maya")
    assert all(t in block.text for t in texts), block.text


def test_import_skips_and_counts_records_derived_from_a_forgotten_memory(
    mem: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The forget guard removes such a record once written: the import said 1 stored while
    the home held none. Now it is not stored, and the counts say why."""
    secret = mem.add("Maya's SSN is 123-45-6789", user_id="maya")
    mem.forget(secret.id, reason="gdpr", user_id="maya")

    def derived() -> dict[str, Any]:
        text = "Maya's SSN ends in 6789"
        return {"id": str(uuid.uuid4()), "scope": {"user_id": "maya"}, "kind": "semantic",
                "text": text, "provenance": {"sources": [secret.id]}}  # fmt: skip

    counts = transfer.import_counted(mem.backends, [derived()])
    assert (counts.stored, counts.present, counts.forgotten, counts.derived) == (0, 0, 0, 1)
    assert mem.import_records([derived()]) == 0
    # A forget that erases the source after the import looked: the guard undoes the write.
    monkeypatch.setattr(transfer, "derived_from_forgotten", lambda store, records: [])
    counts = transfer.import_counted(mem.backends, [derived()])
    assert (counts.stored, counts.present, counts.derived) == (0, 0, 1)
    assert mem.stats().records == 0


@pytest.mark.parametrize(
    ("field", "bad"), [("version", -5), ("version", 0), ("access_count", -1), ("version", 2**31)]
)
def test_import_refuses_counters_no_write_makes(mem: Memory, field: str, bad: int) -> None:
    record = {"scope": {"user_id": "u"}, "text": "x", field: bad}
    with pytest.raises(ValidationError, match=rf"record 0: {field} must be .* got {bad};"):
        mem.import_records([record])
    assert list(mem.export()) == []


def test_an_import_leaves_an_id_held_here_held_and_not_also_stored(
    home: Path, embedder: Embedder
) -> None:
    """A backup where another home approved a memory this home holds: the id is present
    (held), so it is skipped and stays for this home's review, never stored beside it."""
    with (
        Memory(settings=Settings.load(home=home / "a"), embedder=embedder) as a,
        Memory(settings=Settings.load(home=home / "b"), embedder=embedder) as b,
    ):
        held = a.add("The build tool says all is green", user_id="u", source="tool")
        assert b.import_records(a.export(include_quarantined=True)) == 1
        a.quarantine.approve([held.id])
        counts = transfer.import_counted(b.backends, list(a.export(include_quarantined=True)))
        assert (counts.stored, counts.held, counts.present) == (0, 0, 1)
        assert b.list(user_id="u") == []
        assert [r.id for r in b.quarantine.list(user_id="u")] == [held.id]


def test_import_redacts_and_flags_like_every_write(
    home: Path, embedder: Embedder, mem: Memory
) -> None:
    record = mem.add("Mail me at dana@example.com", user_id="dana")
    plain = record.model_dump(mode="json")
    settings = Settings.load(home=home.parent / "strict", redaction={"enabled": True})
    with Memory(settings=settings, embedder=embedder) as copy:
        assert copy.import_records([plain]) == 1
        stored = copy.get(record.id)
    assert stored.text == "Mail me at [REDACTED_EMAIL]"
    assert stored.provenance["redacted"] == {"email": 1}
    assert stored.content_hash != record.content_hash


# async twins ---------------------------------------------------------------------------------


def test_async_twins(mem: Memory) -> None:
    async def scenario() -> dict[str, Any]:
        added = await asyncio.gather(
            *(mem.aadd(text, user_id="alice") for text in CORPUS[:3]),
        )
        many = await mem.aadd_many(CORPUS[3:], user_id="alice")
        hits = await mem.asearch("Where does Alice live?", user_id="alice", k=3)
        got = await mem.aget(added[0].id, user_id="alice")
        updated = await mem.aupdate(added[1].id, text="Bob switched to coffee")
        history = await mem.ahistory(added[1].id)
        listed = await mem.alist(user_id="alice", limit=100)
        await mem.adelete(added[2].id)
        stats = await mem.astats()
        deleted = await mem.adelete_all(user_id="alice")
        return {
            "added": added,
            "many": many,
            "hits": hits,
            "got": got,
            "updated": updated,
            "history": history,
            "listed": listed,
            "stats": stats,
            "deleted": deleted,
        }

    out = asyncio.run(scenario())
    assert len(out["added"]) == 3 and len(out["many"]) == 3
    assert out["hits"][0].record.id == out["added"][0].id
    assert out["got"].id == out["added"][0].id
    assert out["updated"].version == 2
    assert [h.event for h in out["history"]] == [HistoryEvent.ADD, HistoryEvent.UPDATE]
    assert len(out["listed"]) == 6
    assert out["stats"].records == 5
    assert out["deleted"] == 5
    assert mem.stats().records == 0


def test_async_errors_are_the_same_errors(mem: Memory) -> None:
    with pytest.raises(NotFound):
        asyncio.run(mem.aget("no-such-id"))
    with pytest.raises(InvalidScope):
        asyncio.run(mem.aadd("text without a scope"))


# the embedding cache -------------------------------------------------------------------------


def test_no_text_is_embedded_twice(home: Path, embedder: Embedder) -> None:
    # Vectors are cached by content hash: whatever is embedded (a memory's text, or a note's
    # window text) is embedded once, however often it recurs.
    counting = CountingEmbedder(embedder)
    with Memory(settings=Settings.load(home=home), embedder=counting) as mem:
        first = mem.add("the same sentence", user_id="a")
        mem.add("the same sentence", user_id="a")
        mem.add("the same sentence", user_id="b", kind="semantic", metadata={"x": 1})
        mem.add_many(["the same sentence", "another one", "another one"], user_id="a")
        mem.update(first.id, text="another one")
        mem.search("the same sentence", user_id="a")  # a query is not a document
        embedded = Counter(counting.documents_embedded)
        assert embedded["the same sentence"] == 1 and embedded["another one"] == 1
        assert max(embedded.values()) == 1, embedded
        assert mem.stats().indexed_vectors == 6


def test_one_model_call_per_memory_windows_included(home: Path, embedder: Embedder) -> None:
    # A conversation's window vectors are made from the turns' own vectors: the model embeds
    # each turn's text once, never a window, and a rebuild of the index embeds nothing.
    counting = CountingEmbedder(embedder)
    turns = [f"Maya: turn {i} about the trip to Porto" for i in range(5)]
    settings = Settings.load(home=home, retrieval={"weights": {"window": 1.0}})
    with Memory(settings=settings, embedder=counting) as mem:
        mem.add_many([{"text": t, "metadata": {"session": 1}} for t in turns[:3]], user_id="m")
        for t in turns[3:]:
            mem.add(t, user_id="m", metadata={"session": 1})
        assert counting.documents_embedded == turns
        counting.documents_embedded.clear()
        mem.reindex(rebuild=True)
        mem.add_many([{"text": t, "metadata": {"session": 2}} for t in turns], user_id="m")
        assert counting.documents_embedded == []
        hit = mem.search("turn 1 trip", user_id="m", k=1)[0]
        assert hit.channels["window"].rank == 1


def test_identical_text_makes_no_embedder_call(home: Path, embedder: Embedder) -> None:
    # Without neighbour windows a memory's only embedded text is its own.
    settings = Settings.load(home=home, retrieval={"windows": False})
    counting = CountingEmbedder(embedder)
    with Memory(settings=settings, embedder=counting) as mem:
        first = mem.add("the same sentence", user_id="a")
        assert counting.documents_embedded == ["the same sentence"]
        mem.add("the same sentence", user_id="a")
        mem.add("the same sentence", user_id="b", kind="semantic", metadata={"x": 1})
        mem.add_many(["the same sentence", "another one", "another one"], user_id="a")
        assert counting.documents_embedded == ["the same sentence", "another one"]
        mem.update(first.id, text="another one")
        assert counting.documents_embedded == ["the same sentence", "another one"]

    # The cache lives in the store: a new Memory on the same home embeds nothing it knows.
    counting = CountingEmbedder(embedder)
    with Memory(settings=settings, embedder=counting) as mem:
        mem.add("another one", user_id="c")
        mem.add_many(["the same sentence"] * 3, thread_id="t")
        mem.reindex(rebuild=True)
        assert counting.documents_embedded == []
        assert mem.stats().indexed_vectors == 10


# lifecycle -----------------------------------------------------------------------------------


def test_context_manager_closes_and_releases_the_home(home: Path, embedder: Embedder) -> None:
    settings = Settings.load(home=home)
    with Memory(settings=settings, embedder=embedder) as first:
        record = first.add("persisted across opens", user_id="u")
        with pytest.raises(HomeLocked, match="AGENTMEM_STORE_URL=postgresql"):
            Memory(settings=settings, embedder=embedder)
    with pytest.raises(AgentMemError, match="closed"):
        first.stats()
    first.close()  # a second close is harmless

    with Memory(settings=settings, embedder=embedder) as second:
        assert second.get(record.id).text == "persisted across opens"
        assert second.search("persisted", user_id="u")[0].record.id == record.id
    second.close()

    reopened = Memory(settings=settings, embedder=embedder)
    reopened.close()


def test_a_closed_memory_and_its_handles_raise_memory_closed_at_once(
    home: Path, embedder: Embedder
) -> None:
    """Use after close is MemoryClosed (it was InvalidSettings, as if a setting were wrong,
    and still is one, so `except InvalidSettings` keeps working); mem.buffer() raises at once
    instead of handing out a buffer whose every call then fails."""
    from agentmem import MemoryClosed

    with Memory(settings=Settings.load(home=home), embedder=embedder) as mem:
        buffer = mem.buffer(user_id="u", thread_id="t")
        agent = mem.for_agent("helper", user_id="u")
    for call in (
        mem.stats,
        lambda: mem.buffer(user_id="u", thread_id="t"),
        lambda: mem.for_agent("helper", user_id="u").buffer("t"),
        lambda: buffer.append("user", "hello"),
        lambda: agent.search("hello"),
        lambda: asyncio.run(mem.aadd("hello", user_id="u")),
    ):
        with pytest.raises(MemoryClosed, match="this Memory is closed; open a new one"):
            call()
    assert issubclass(MemoryClosed, InvalidSettings)


def test_home_and_settings_are_exclusive(home: Path) -> None:
    with pytest.raises(InvalidSettings, match="not both"):
        Memory(home=home, settings=Settings.load(home=home))


def test_home_argument(home: Path, embedder: Embedder) -> None:
    with Memory(home=str(home), embedder=embedder) as mem:
        assert mem.settings.home == home
        assert mem.stats().store_url == f"sqlite:///{(home / 'agentmem.db').resolve()}"
    assert (home / "agentmem.db").is_file()
