"""Hybrid search: channels, windows, time, filters, weights, isolation (tests taking ``mem`` on
the embedded defaults and on PostgreSQL + pgvector)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agentmem import Memory, Settings
from agentmem.embedders import Embedder
from tests.conftest import MEMORY_BACKENDS, memory_settings

APRIL = "2024-04-12T18:40:00+00:00"
JUNE = "2024-06-20T07:05:00+00:00"


@pytest.fixture(params=MEMORY_BACKENDS)
def mem(request: pytest.FixtureRequest, home: Path, embedder: Embedder) -> Iterator[Memory]:
    """A Memory on each backend of MEMORY_BACKENDS."""
    with Memory(settings=memory_settings(request, home), embedder=embedder) as m:
        yield m


def turns(mem: Memory, user: str = "maya") -> list[str]:
    records = mem.add_many(
        [
            {
                "text": "Tomas: What is the name of your new greyhound?",
                "event_time": APRIL,
                "metadata": {"session": 1},
            },
            {
                "text": "Maya: Pepper! She is two and very shy.",
                "event_time": APRIL,
                "metadata": {"session": 1},
            },
            {
                "text": "Maya: The zorblax migration finished on Friday.",
                "event_time": JUNE,
                "metadata": {"session": 2},
            },
            {
                "text": "Maya: I moved to Eastgate and walk to the office now.",
                "event_time": JUNE,
                "metadata": {"session": 2},
            },
        ],
        user_id=user,
    )
    return [r.id for r in records]


@pytest.fixture
def windowed(home: Path, embedder: Embedder) -> Iterator[Memory]:
    """A Memory with the dense window channel switched on (its default weight is 0)."""
    settings = Settings.load(home=home, retrieval={"weights": {"window": 1.0}})
    with Memory(settings=settings, embedder=embedder) as m:
        yield m


def test_hits_explain_every_channel(windowed: Memory) -> None:
    turns(windowed)
    hit = windowed.search("zorblax migration", user_id="maya", k=1)[0]
    assert "zorblax" in hit.record.text
    assert {"dense", "window", "bm25", "window_bm25"} <= set(hit.channels)
    assert hit.channels["bm25"].rank == 1 and hit.channels["bm25"].score > 0


def test_window_finds_an_answer_that_needs_its_question(windowed: Memory) -> None:
    ids = turns(windowed)
    hits = windowed.search("What is the greyhound called?", user_id="maya", k=2)
    answer = next(h for h in hits if h.record.id == ids[1])
    assert answer.channels["window"].rank <= 2
    assert answer.channels["window"].rank < answer.channels["dense"].rank


def test_windows_follow_later_adds_and_deletes(home: Path, embedder: Embedder) -> None:
    only_window = {k: 0.0 for k in ("dense", "bm25", "window_bm25", "time")} | {"window": 1.0}
    settings = Settings.load(home=home, retrieval={"weights": only_window})
    with Memory(settings=settings, embedder=embedder) as mem:
        first = mem.add(
            "Maya: Quick question about the office.", user_id="u", metadata={"session": 1}
        )
        other = mem.add(
            "Unrelated note about quarterly taxes and invoices.",
            user_id="u",
            metadata={"session": 9},
        )
        second = mem.add(
            "Tomas: The kettle in the kitchen is broken again.",
            user_id="u",
            metadata={"session": 1},
        )
        ranks = [h.record.id for h in mem.search("kettle broken", user_id="u", k=3)]
        assert ranks.index(first.id) < ranks.index(other.id)  # first's window now has next
        mem.delete(second.id)
        hits = mem.search("kettle broken", user_id="u", k=3)
        first_hit = next(h for h in hits if h.record.id == first.id)
        assert first_hit.channels["window"].score < 0.5  # the kettle left its window


def test_time_channel_ranks_memories_from_the_named_period(mem: Memory) -> None:
    turns(mem)
    hits = mem.search("What happened in April 2024?", user_id="maya", k=4)
    timed = [h for h in hits if "time" in h.channels]
    assert timed, "the time channel should contribute for a dated question"
    assert all(h.record.event_time and h.record.event_time.month == 4 for h in timed)
    plain = mem.search("What happened with the greyhound?", user_id="maya", k=4)
    assert all("time" not in h.channels for h in plain)


def test_a_window_open_on_one_side_reaches_the_end_of_the_index(mem: Memory) -> None:
    """A bound was read as the month it names: "before May 2024" searched May itself (nothing
    there), "since May 2024" May alone; the window now runs from the first day any index
    holds, or on to the end of the reference day."""
    turns(mem)
    for query, month in (
        ("What happened before May 2024?", 4),
        ("What happened since May 2024?", 6),
    ):
        hits = mem.search(query, user_id="maya", k=4, reference_time="2024-07-01T12:00:00Z")
        timed = [h for h in hits if "time" in h.channels]
        assert timed, f"the time channel should contribute for {query!r}"
        assert all(h.record.event_time and h.record.event_time.month == month for h in timed)


def test_relative_times_are_read_in_the_reference_times_own_date(mem: Memory) -> None:
    """Last month asked at 08:00 on 1 April in Tokyo (31 March in UTC) is March."""
    march = mem.add("Trip: hiked Mount Takao with Ken", user_id="ken",
                    event_time="2024-03-20T10:00:00+09:00")  # fmt: skip
    mem.add("Trip: visited the temples in Kyoto with Ken", user_id="ken",
            event_time="2024-02-15T10:00:00+09:00")  # fmt: skip
    hits = mem.search("what trips did I take last month?", user_id="ken",
                      reference_time="2024-04-01T08:00:00+09:00")  # fmt: skip
    assert [h.record.id for h in hits if "time" in h.channels] == [march.id]


def test_event_time_bounds_filter_every_channel(mem: Memory) -> None:
    turns(mem)
    hits = mem.search("Maya", user_id="maya", k=10, event_after="2024-05-01")
    assert hits and all(h.record.event_time and h.record.event_time.month == 6 for h in hits)
    hits = mem.search("Maya", user_id="maya", k=10, event_before="2024-05-01")
    assert hits and all(h.record.event_time and h.record.event_time.month == 4 for h in hits)


def test_metadata_filters_and_kinds_apply_to_every_channel(mem: Memory) -> None:
    turns(mem)
    mem.add("zorblax is also a semantic fact", user_id="maya", kind="semantic")
    hits = mem.search("zorblax", user_id="maya", k=10, filters={"session": 1})
    assert hits and all(h.record.metadata.get("session") == 1 for h in hits)
    hits = mem.search("zorblax", user_id="maya", k=10, kinds=["semantic"])
    assert [h.record.kind.value for h in hits] == ["semantic"]


def test_lexical_channel_respects_scope(mem: Memory) -> None:
    turns(mem, user="maya")
    mem.add("zorblax zorblax zorblax", user_id="eve")
    for hit in mem.search("zorblax", user_id="maya", k=10):
        assert hit.record.scope.user_id == "maya"


def test_as_of_with_hybrid_channels(mem: Memory) -> None:
    fact = mem.add(
        "Maya lives in Harbourside",
        user_id="maya",
        kind="semantic",
        event_time="2024-03-01T00:00:00+00:00",
    )
    mem.invalidate(fact.id, valid_to="2024-06-20T00:00:00+00:00")
    assert mem.search("where does Maya live", user_id="maya", kinds=["semantic"]) == []
    then = mem.search("where does Maya live", user_id="maya", as_of="2024-05-01")
    assert [h.record.id for h in then] == [fact.id]


@pytest.fixture
def no_bm25(home: Path, embedder: Embedder) -> Iterator[Memory]:
    settings = Settings.load(home=home, retrieval={"weights": {"bm25": 0, "window_bm25": 0}})
    with Memory(settings=settings, embedder=embedder) as m:
        yield m


def test_zero_weight_switches_a_channel_off(no_bm25: Memory) -> None:
    turns(no_bm25)
    for hit in no_bm25.search("zorblax migration", user_id="maya", k=3):
        assert "bm25" not in hit.channels and "window_bm25" not in hit.channels
        assert "dense" in hit.channels


def test_unknown_channel_weight_is_a_settings_error() -> None:
    from agentmem import InvalidSettings

    with pytest.raises(InvalidSettings, match="unknown retrieval channels"):
        Settings.load(retrieval={"weights": {"telepathy": 1.0}})


def test_mmr_diversifies(home: Path, embedder: Embedder) -> None:
    settings = Settings.load(home=home, retrieval={"mmr_lambda": 0.3})
    with Memory(settings=settings, embedder=embedder) as mem:
        mem.add_many(
            [
                "Pepper the greyhound loves long walks by the river.",
                "Pepper the greyhound loves long walks along the river.",
                "Maya's greyhound Pepper is shy with strangers.",
            ],
            user_id="u",
        )
        texts = [h.record.text for h in mem.search("Pepper walks river", user_id="u", k=2)]
        assert any("shy" in t for t in texts)


def test_a_memory_outside_any_conversation_never_shares_a_window(mem: Memory) -> None:
    from agentmem.representation import windows_for

    config = mem.settings.retrieval
    store = mem.backends.store
    alone = [
        mem.add("Alice adopted a golden retriever named Max in March.", user_id="alice"),
        mem.add("Alice works as a nurse in Leeds.", user_id="alice"),
    ]
    many = mem.add_many(["Alice likes tea.", "Alice hates rain."], user_id="alice")
    talk = mem.add_many(
        [{"text": "Bo: Any plans?", "metadata": {"session": 1}}, "Alice: Hiking on Sunday."],
        user_id="alice",
    )
    thread = mem.add_many(["Bo: How was it?", "Alice: Muddy!"], user_id="alice", thread_id="t1")
    # No window at all for a memory outside a conversation: the window channels step aside.
    assert windows_for(store, [*alone, *many, talk[1]], config) == {}
    window = windows_for(store, [talk[0], *thread], config)
    assert window[talk[0].id] == talk[0].text  # its session holds nobody else
    assert window[thread[0].id] == "Bo: How was it?\nAlice: Muddy!"
    for text in ("golden retriever", "nurse Leeds", "tea", "Hiking Sunday"):
        for hit in mem.search(text, user_id="alice", k=10):
            assert hit.record.id in {talk[0].id, *(r.id for r in thread)} or not (
                {"window", "window_bm25"} & set(hit.channels)
            )


@pytest.fixture(params=MEMORY_BACKENDS)
def wide(request: pytest.FixtureRequest, home: Path, embedder: Embedder) -> Iterator[Memory]:
    """Windows of two turns on each side, only the lexical window channel on."""
    only = {k: 0.0 for k in ("dense", "bm25", "time", "graph")} | {"window_bm25": 1.0}
    settings = memory_settings(
        request, home, retrieval={"window_turns": 2, "weights": only, "session_prior": 0.0}
    )
    with Memory(settings=settings, embedder=embedder) as m:
        yield m


def test_window_turns_widen_windows_and_their_refresh(wide: Memory) -> None:
    from agentmem.representation import neighbours_to_refresh, windows_for

    config, store = wide.settings.retrieval, wide.backends.store
    texts = [f"Turn {n}: {word}" for n, word in enumerate(("ask", "well", "zorblax", "ok", "bye"))]
    talk = wide.add_many([{"text": t, "metadata": {"session": 1}} for t in texts], user_id="u")
    wide.add("Turn x: elsewhere", user_id="u", metadata={"session": 2})
    windows = windows_for(store, talk, config)
    assert windows[talk[2].id] == "\n".join(texts)  # two turns each side
    assert windows[talk[0].id] == "\n".join(texts[:3])
    assert windows[talk[4].id] == "\n".join(texts[2:])
    around = neighbours_to_refresh(store, [talk[2]], config, exclude=set())
    assert sorted(around) == sorted(r.id for r in (talk[0], talk[1], talk[3], talk[4]))
    found = {h.record.id for h in wide.search("zorblax", user_id="u", k=10)}
    assert found == {r.id for r in talk}  # every window holds turn 2
    wide.forget([talk[2].id], reason="test", user_id="u")
    # Forgetting turn 2 rewrites the windows two turns away too: none still matches it.
    assert wide.search("zorblax", user_id="u", k=10) == []
