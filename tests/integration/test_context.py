"""context(): a prompt-ready block that never exceeds its token budget."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentmem import Memory, Settings, ValidationError
from agentmem.context import assemble
from agentmem.embedders import Embedder
from agentmem.models import MemoryKind, MemoryRecord, Scope, SearchHit
from agentmem.tokens import TokenCounter

COUNTER = TokenCounter()


def seed(mem: Memory, user: str = "maya") -> None:
    mem.add_many(
        [
            {
                "text": "Maya adopted a rescue greyhound called Pepper.",
                "event_time": "2024-04-12T18:40:00+00:00",
                "metadata": {"session": 1},
            },
            {
                "text": "Maya ran the half marathon in 1 hour 54 minutes.",
                "event_time": "2024-06-20T07:05:00+00:00",
                "metadata": {"session": 2},
            },
            {
                "text": "Maya moved to Eastgate.",
                "event_time": "2024-06-20T07:06:00+00:00",
                "metadata": {"session": 2},
            },
        ],
        user_id=user,
    )
    mem.add("Maya prefers short answers.", user_id=user, kind="semantic")


def test_context_groups_by_kind_with_dates(mem: Memory) -> None:
    seed(mem)
    ctx = mem.context("Tell me about Maya", user_id="maya", max_tokens=500)
    assert ctx.text.startswith("## Facts\n- Maya prefers short answers.")
    assert "## Timeline" in ctx.text
    assert "- [2024-04-12] Maya adopted a rescue greyhound called Pepper." in ctx.text
    timeline = ctx.text.split("## Timeline\n", 1)[1].splitlines()
    dates = [line[3:13] for line in timeline]
    assert dates == sorted(dates)  # dated lines in event-time order
    assert timeline[1:] == [  # same date: the order they happened in
        "- [2024-06-20] Maya ran the half marathon in 1 hour 54 minutes.",
        "- [2024-06-20] Maya moved to Eastgate.",
    ]
    assert ctx.tokens == COUNTER.count(ctx.text) <= 500
    assert len(ctx.records) == 4


def test_an_episode_without_event_time_is_dated_by_when_it_was_added(mem: Memory) -> None:
    """Every timeline line has its date: an episode added without event_time shows the day
    it was recorded (the time the timeline sorts it by)."""
    tea = mem.add("Maya likes green tea", user_id="maya")
    mem.add("Maya bought a kettle", user_id="maya", event_time="2024-05-01")
    ctx = mem.context("tea", user_id="maya", max_tokens=200)
    assert f"- [{tea.created_at:%Y-%m-%d}] Maya likes green tea" in ctx.text.splitlines()
    assert "- [2024-05-01] Maya bought a kettle" in ctx.text.splitlines()


def test_context_drops_near_duplicates(mem: Memory) -> None:
    mem.add_many(
        [
            "Maya adopted a rescue greyhound called Pepper.",
            "Maya adopted a rescue greyhound called Pepper!",
            "Maya moved to Eastgate.",
        ],
        user_id="maya",
    )
    ctx = mem.context("Pepper the greyhound", user_id="maya", max_tokens=500)
    assert ctx.dropped_duplicates == 1
    assert ctx.text.count("greyhound") == 1


def test_memories_that_differ_in_a_number_are_not_near_duplicates(mem: Memory) -> None:
    """Near-identical texts whose numbers differ are distinct memories: both are shown."""
    pairs = [
        ("Invoice 1043 was paid on 3 May 2023.", "Invoice 1044 was paid on 3 May 2023."),
        ("Maya's flight to Porto lands at 14:05 on the 14th.",
         "Maya's flight to Porto lands at 14:05 on the 15th."),
    ]  # fmt: skip
    for i, (a, b) in enumerate(pairs):
        mem.add_many([a, b], user_id=f"u{i}")
        ctx = mem.context("which ones?", user_id=f"u{i}", max_tokens=500)
        assert ctx.dropped_duplicates == 0 and a in ctx.text and b in ctx.text


@pytest.mark.parametrize("strategy", ["retrieval", "full_history"])
def test_a_flushed_conversation_is_shown_once(
    tmp_path: Path, embedder: Embedder, strategy: str
) -> None:
    """A flush stores the segment and each turn; the context shows the words once, through
    the segment, whichever of them ranks first."""
    settings = Settings.load(home=tmp_path / "home", context={"strategy": strategy})
    with Memory(settings=settings, embedder=embedder) as mem:
        _flush_and_ask(mem)


def _flush_and_ask(mem: Memory) -> None:
    buf = mem.buffer(thread_id="chat-7", user_id="maya")
    buf.append("user", "I booked the flights to Porto, arriving on the 14th", name="Maya")
    buf.append("assistant", "When do you arrive?")
    buf.append("user", "At 14:05 at gate 12", name="Maya")
    buf.flush()
    ctx = mem.context("when do the flights to Porto arrive?", user_id="maya")
    assert sum("arriving on the 14th" in line for line in ctx.text.splitlines()) == 1
    assert [r.metadata.get("buffer_record") for r in ctx.records] == ["segment"]


def test_auto_strategy_counts_a_flushed_conversation_once(mem: Memory) -> None:
    """The history is counted as the block shows it: the segment, not the segment and its
    turns again, so a flushed conversation that fits the budget is shown whole."""
    buf = mem.buffer(thread_id="chat-7", user_id="maya")
    buf.append("user", "I booked the flights to Porto for the 14th")
    buf.append("assistant", "When do you arrive?")
    buf.append("user", "At 14:05, then a hotel near the river")
    buf.append("assistant", "I will look for hotels")
    buf.flush()
    whole = mem.context("hotel", user_id="maya", max_tokens=4000)
    assert whole.strategy == "full_history"
    assert [r.metadata.get("buffer_record") for r in whole.records] == ["segment"]
    assert f"(1 memories, {whole.tokens} tokens)" in whole.strategy_reason
    ctx = mem.context("hotel", user_id="maya", max_tokens=whole.tokens + 5)
    assert ctx.strategy == "full_history", ctx.strategy_reason
    assert ctx.text == whole.text


FILLER = ["We talked about the weather in spring", "The garden needs more water",
          "I read a novel about sailors", "The bakery opens at seven",
          "My sister likes jazz music", "The train was crowded today"]  # fmt: skip


@pytest.mark.parametrize("strategy", ["auto", "full_history"])
def test_a_flushed_turn_stays_when_its_segment_is_over_the_budget(
    tmp_path: Path, embedder: Embedder, strategy: str
) -> None:
    """The best-ranked turn of a conversation too long for the budget is shown by itself:
    not swapped for its segment, cut back to the conversation's unrelated start."""
    settings = Settings.load(
        home=tmp_path / "home",
        buffer={"topic_shift_threshold": None},
        context={"strategy": strategy},
    )
    with Memory(settings=settings, embedder=embedder) as mem:
        buf = mem.buffer(thread_id="chat-7", user_id="maya", max_tokens=5000)
        for i in range(30):
            buf.append("user" if i % 2 == 0 else "assistant", f"{FILLER[i % 6]} (note {i})")
        buf.append("user", "My passport is in the blue folder")
        buf.append("assistant", "Okay")
        buf.flush()
        query = "where is my passport?"
        assert "blue folder" in mem.search(query, user_id="maya", k=1)[0].record.text
        ctx = mem.context(query, user_id="maya", max_tokens=150)
    assert ctx.tokens <= 150 and "user: My passport is in the blue folder" in ctx.text
    assert {r.metadata.get("buffer_record") for r in ctx.records} == {"turn"}
    assert ctx.dropped_for_budget >= 1  # the segment


def test_a_segment_ranked_above_its_turns_is_left_out_when_it_does_not_fit() -> None:
    """A segment too long for the budget is not cut back to its first turns: its turns
    among the candidates stand for it; when it fits, they are duplicates of it."""
    scope = Scope(user_id="maya")
    lines = [f"user: {FILLER[i % 6]} (note {i})" for i in range(30)]
    lines.append("user: My passport is in the blue folder")
    segment = MemoryRecord(
        scope=scope, text="\n".join(lines), metadata={"buffer_record": "segment"}
    )
    turn = MemoryRecord(
        scope=scope, text=lines[-1], metadata={"buffer_record": "turn", "segment_id": segment.id}
    )
    fact = MemoryRecord(scope=scope, kind=MemoryKind.SEMANTIC, text="Maya travels a lot.")
    hits = [SearchHit(record=r, score=1.0) for r in (segment, fact, turn)]
    small = assemble("passport", hits, max_tokens=60, counter=COUNTER, vectors={})
    assert [r.id for r in small.records] == [fact.id, turn.id]
    assert small.dropped_for_budget == 1 and small.dropped_duplicates == 0
    big = assemble("passport", hits, max_tokens=1000, counter=COUNTER, vectors={})
    assert [r.id for r in big.records] == [segment.id, fact.id]
    assert big.dropped_duplicates == 1 and big.text.count("blue folder") == 1


def test_full_history_context_shows_procedural_memories_a_user_wrote(mem: Memory) -> None:
    checklist = "Release checklist: freeze the branch, write the changelog, tag, push"
    mem.add(checklist, kind="procedural", user_id="u1")
    mem.add("I had coffee with Bob on Monday", user_id="u1")
    mem.record_experience(
        "ship it", [{"action": "ship", "observation": "sent"}], "success", user_id="u1"
    )
    ctx = mem.context("what is the release checklist?", user_id="u1")
    assert ctx.strategy == "full_history" and checklist in ctx.text


def test_context_is_scoped(mem: Memory) -> None:
    seed(mem, user="maya")
    mem.add("Eve's secret plan", user_id="eve")
    ctx = mem.context("secret plan", user_id="maya", max_tokens=500)
    assert "Eve" not in ctx.text


def test_long_single_memory_is_truncated_not_dropped(mem: Memory) -> None:
    mem.add("greyhound " * 400, user_id="maya")
    ctx = mem.context("greyhound", user_id="maya", max_tokens=30)
    assert ctx.records and ctx.text.endswith("…")
    assert ctx.tokens <= 30


@pytest.mark.parametrize("text", ["東京の天気は晴れです。" * 40, " ".join(["😀🎉👍"] * 60)])
def test_truncation_keeps_whole_characters(mem: Memory, text: str) -> None:
    """A cut inside a character that spans several tokens (CJK, emoji) leaves it out: no
    U+FFFD replacement character, and the kept text is a prefix of the memory."""
    for budget in range(1, 60):
        cut = COUNTER.truncate(text, budget)
        assert "\ufffd" not in cut and text.startswith(cut) and COUNTER.count(cut) <= budget
    mem.add(text, user_id="kim")
    for budget in range(25, 45):
        ctx = mem.context("天気 emoji", user_id="kim", max_tokens=budget)
        assert "\ufffd" not in ctx.text and ctx.tokens <= budget


@pytest.mark.parametrize("bad", [0, -5, 1.5, "100", True])
def test_bad_budget_is_rejected(mem: Memory, bad: object) -> None:
    with pytest.raises(ValidationError, match="max_tokens"):
        mem.context("x", user_id="maya", max_tokens=bad)  # type: ignore[arg-type]


@given(
    texts=st.lists(
        st.text(
            st.characters(codec="utf-8", exclude_categories=["Cs", "Cc", "Cf"]),
            min_size=1,
            max_size=300,
        ).filter(str.strip),
        min_size=1,
        max_size=12,
    ),
    max_tokens=st.integers(min_value=1, max_value=400),
)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_context_never_exceeds_max_tokens(mem: Memory, texts: list[str], max_tokens: int) -> None:
    user = f"u{abs(hash((tuple(texts), max_tokens))) % 10**9}"
    mem.add_many(texts, user_id=user)
    ctx = mem.context(texts[0], user_id=user, max_tokens=max_tokens)
    assert ctx.tokens == (COUNTER.count(ctx.text) if ctx.text else 0)
    assert ctx.tokens <= max_tokens


def test_a_year_before_1000_keeps_four_digits() -> None:
    """glibc's strftime writes %Y of the year 90 as "90": the timeline showed "[90-06-01]" and
    the dense text "[1 June 90]"."""
    from datetime import UTC, datetime

    from agentmem.context import render
    from agentmem.models import MemoryRecord, Scope
    from agentmem.representation import dated_text
    from agentmem.settings import RetrievalSettings

    coin = datetime(90, 6, 1, tzinfo=UTC)
    record = MemoryRecord(scope=Scope.of(user_id="u"), text="The coin was minted", event_time=coin)
    assert "- [0090-06-01] The coin was minted" in render([record])
    assert dated_text("The coin", coin, RetrievalSettings()) == "[1 June 0090] The coin"
    assert dated_text("Met", datetime(2023, 5, 8, tzinfo=UTC), RetrievalSettings()) == (
        "[8 May 2023] Met"
    )
