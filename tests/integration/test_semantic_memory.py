"""Semantic memory end to end: facts from episodes, decisions, validity, history, the LLM path.

The LLM is litellm with ``mock_response`` (set through ``AGENTMEM_LLM_KWARGS`` or scripted per
call): good answers, malformed ones, and errors. Nothing leaves the machine.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agentmem import (
    InvalidText,
    Memory,
    MemoryKind,
    Scope,
    Settings,
    ValidationError,
    consolidate_episode,
    extract_pending,
)
from agentmem.embedders import Embedder
from agentmem.semantic import DecisionOp, LLMClient, LLMDecider, LLMExtractor, extract_episode
from agentmem.semantic.llm import load_litellm

USER = "alice"
SCOPE = Scope(user_id=USER)


def facts_of(mem: Memory, *, invalidated: bool = False) -> list[Any]:
    return mem.list(user_id=USER, kinds="semantic", include_invalidated=invalidated)


def episodes_of(mem: Memory) -> list[Any]:
    return mem.list(user_id=USER, kinds="episodic")


# LLM-free ----------------------------------------------------------------------------------


def test_a_fact_rewritten_by_hand_carries_what_its_new_text_says(mem: Memory) -> None:
    """update(text=...) on a fact re-reads its subject, attribute and value from the new text,
    so the profile, the graph and the next contradiction follow the text, not the old value."""
    mem.add("Alice: I live in Paris.", user_id=USER, event_time="2023-01-01", infer=True)
    (fact,) = facts_of(mem)
    assert fact.metadata["value"] == "Paris"
    mem.update(fact.id, text="Alice lives in Rome.", metadata=None)
    rewritten = mem.get(fact.id)
    assert (rewritten.metadata["attribute"], rewritten.metadata["value"]) == ("lives_in", "Rome")
    assert rewritten.metadata["entities"] == ["Alice", "Rome"]
    assert mem.profile(user_id=USER).get().model.location == "Rome"
    assert [n.entity.name for n in mem.graph.neighbors("Alice", user_id=USER)] == ["Rome"]
    # Text the rules read no single fact from keeps no stale fields; the caller's own keys stay.
    mem.update(fact.id, metadata={**rewritten.metadata, "source": "crm"})
    mem.update(fact.id, text="Rome, probably.")
    vague = mem.get(fact.id)
    assert "value" not in vague.metadata and "slot" not in vague.metadata
    assert vague.metadata["source"] == "crm"
    assert mem.profile(user_id=USER).get().model.location is None
    # Metadata given with the text is taken as it is.
    mem.update(fact.id, text="Alice lives in Oslo.", metadata={"value": "Oslo (by hand)"})
    assert mem.get(fact.id).metadata == {"value": "Oslo (by hand)"}


def test_a_statement_about_the_past_invalidates_no_current_fact(mem: Memory) -> None:
    mem.add("Alice: I live in Lisbon.", user_id=USER, event_time="2023-01-01T09:00:00Z",
            infer=True)  # fmt: skip
    mem.add("Alice: As a teenager I lived in Dundee.", user_id=USER,
            event_time="2023-06-01T09:00:00Z", infer=True)  # fmt: skip

    assert not [r for r in facts_of(mem, invalidated=True) if r.invalidated_at is not None]
    lisbon = next(r for r in facts_of(mem) if "Lisbon" in r.text)
    assert lisbon.metadata.get("slot") == "alice|lives_in"
    assert mem.search("Where does Alice live?", user_id=USER, k=1)[0].record.id == lisbon.id


def test_contradiction_invalidates_and_as_of_answers_with_what_held(mem: Memory) -> None:
    first = mem.add("Alice lives in Paris.", user_id=USER, event_time="2022-03-01T09:00:00Z",
                    infer=True)  # fmt: skip
    second = mem.add("Alice: I moved to Berlin.", user_id=USER,
                     event_time="2023-02-01T09:00:00Z", infer=True)  # fmt: skip

    paris = next(r for r in facts_of(mem, invalidated=True) if "Paris" in r.text)
    berlin = next(r for r in facts_of(mem) if "Berlin" in r.text)
    assert berlin.text == "Alice moved to Berlin."
    # The old fact is kept: valid until the move, invalidated now, linked both ways.
    assert paris.valid_to is not None and paris.valid_to.year == 2023
    assert paris.invalidated_at is not None
    assert paris.metadata["superseded_by"] == berlin.id
    assert berlin.metadata["supersedes"] == paris.id
    assert paris.provenance["sources"] == [first.id]
    assert berlin.provenance["sources"] == [second.id]
    assert berlin.provenance["extractor"] == "rules"
    assert berlin.provenance["decision"] == "INVALIDATE"
    assert second.metadata["extraction"] == "done"
    assert set(second.metadata["facts"]) == {berlin.id, paris.id}

    query = "Where does Alice live?"
    then = mem.search(query, user_id=USER, kinds=["semantic"], as_of="2022-06-01T00:00:00Z")
    now = mem.search(query, user_id=USER, kinds=["semantic"])
    assert [h.record.text for h in then] == ["Alice lives in Paris."]
    assert [h.record.text for h in now] == ["Alice moved to Berlin."]

    history = mem.history(paris.id)
    assert [e.event.value for e in history] == ["ADD", "INVALIDATE"]
    assert history[-1].new_metadata is not None
    assert history[-1].new_metadata["superseded_by"] == berlin.id
    assert {e.actor for e in history} == {"semantic:rules"}


@pytest.mark.parametrize(
    ("stated", "ended"),
    [
        ("I live in Paris.", "I don't live in Paris anymore."),
        ("I am married to Kim.", "I am no longer married to Kim."),
        ("I am a teacher.", "I am no longer a teacher."),
    ],
)
def test_no_longer_invalidates_the_old_fact_and_as_of_still_answers_it(
    mem: Memory, stated: str, ended: str
) -> None:
    mem.add("Sam: " + stated, user_id=USER, event_time="2022-01-01", infer=True)
    mem.add("Sam: " + ended, user_id=USER, event_time="2023-01-01", infer=True)
    old = next(r for r in facts_of(mem, invalidated=True) if r.invalidated_at is not None)
    (current,) = facts_of(mem)
    assert old.version == 2 and old.text == mem.history(old.id)[0].new_text  # not rewritten
    assert old.valid_to is not None and old.valid_to.year == 2023
    assert current.metadata["negated"] is True and current.metadata["supersedes"] == old.id
    then = mem.search("Sam", user_id=USER, kinds="semantic", as_of="2022-06-01")
    assert [h.record.id for h in then] == [old.id]


def test_a_value_reported_late_for_an_earlier_period_never_overlaps_another(mem: Memory) -> None:
    mem.add("Alice: I live in Paris.", user_id=USER, event_time="2020-01-01", infer=True)
    mem.add("Alice: I moved to Berlin.", user_id=USER, event_time="2023-01-01", infer=True)
    mem.add("Alice: I moved to Rome.", user_id=USER, event_time="2021-06-01", infer=True)
    by_text = {r.text: r for r in facts_of(mem, invalidated=True)}
    paris, rome = by_text["Alice lives in Paris."], by_text["Alice moved to Rome."]
    assert paris.valid_to.isoformat().startswith("2021-06-01")
    assert rome.valid_to.isoformat().startswith("2023-01-01")
    assert paris.metadata["superseded_by"] == rome.id and rome.metadata["supersedes"] == paris.id
    for when, where in [("2020-06-01", paris), ("2022-01-01", rome)]:
        hits = mem.search("where does Alice live?", user_id=USER, kinds="semantic", as_of=when)
        assert [h.record.id for h in hits] == [where.id]


def test_a_change_told_later_with_a_coarse_date_ends_the_value_it_follows(mem: Memory) -> None:
    """A move "today" told at 18:00, after "I live in Paris" at 15:00 the same day:
    the move's date (midnight) is before Paris's start, but it was told later, so Berlin is
    current and Paris ends when the move was told; no time has both."""
    mem.add("Alice: I live in Paris.", user_id=USER, event_time="2023-04-20T15:00:00Z", infer=True)
    mem.add("Alice: I moved to Berlin today.", user_id=USER, event_time="2023-04-20T18:00:00Z",
            infer=True)  # fmt: skip
    (berlin,) = facts_of(mem)
    paris = next(r for r in facts_of(mem, invalidated=True) if r.id != berlin.id)
    assert berlin.text == "Alice moved to Berlin on 20 April 2023."
    assert paris.valid_to == berlin.valid_from == datetime(2023, 4, 20, 18, tzinfo=UTC)
    assert berlin.metadata["supersedes"] == paris.id
    assert mem.profile(user_id=USER).get().model.location == "Berlin"
    for when, where in [("2023-04-20T16:00:00Z", paris), ("2023-04-21", berlin)]:
        hits = mem.search("where does Alice live?", user_id=USER, kinds="semantic", as_of=when)
        assert [h.record.id for h in hits] == [where.id]


def test_two_values_said_at_one_time_are_never_both_valid(mem: Memory) -> None:
    """Two turns of one dated session give one slot two values at the same start: the first
    ends right there (not when the facts were extracted), so as_of answers one value."""
    mem.add("Bob: I work at Acme.", user_id=USER, event_time="2023-05-08", infer=True)
    mem.add("Bob: I work at Globex.", user_id=USER, event_time="2023-05-08", infer=True)
    (globex,) = facts_of(mem)
    acme = next(r for r in facts_of(mem, invalidated=True) if r.id != globex.id)
    assert acme.valid_to == globex.valid_from < datetime(2023, 5, 9, tzinfo=UTC)
    for when in ("2023-05-09", "2024-01-01"):
        hits = mem.search("where does Bob work?", user_id=USER, kinds="semantic", as_of=when)
        assert [h.record.id for h in hits] == [globex.id]


@pytest.mark.parametrize("infer", [True, "deferred"])
def test_relative_dates_follow_the_offset_the_episode_was_given_with(
    mem: Memory, infer: bool | str
) -> None:
    """Yesterday said at 20:00 -07:00 on 7 May (8 May in UTC) is 6 May, inline or later."""
    episode = mem.add("Cara: I moved to Oslo yesterday.", user_id=USER,
                      event_time="2023-05-07T20:00:00-07:00", infer=infer)  # fmt: skip
    assert episode.event_time == datetime(2023, 5, 8, 3, tzinfo=UTC)
    assert episode.metadata["utc_offset"] == "-07:00"
    extract_pending(mem, scope=SCOPE)
    (fact,) = facts_of(mem)
    assert fact.text == "Cara moved to Oslo on 6 May 2023."
    assert fact.valid_from == fact.event_time == datetime(2023, 5, 6, 7, tzinfo=UTC)


def test_a_relative_date_past_the_supported_range_leaves_the_fact_undated(mem: Memory) -> None:
    episode = mem.add("Alice: I will move to Paris the day after tomorrow.", user_id=USER,
                      event_time="9999-12-29", infer=True)  # fmt: skip
    assert mem.get(episode.id).metadata["extraction"] == "done"
    (fact,) = facts_of(mem)
    assert fact.text == "Alice will move to Paris the day after tomorrow."
    assert fact.event_time == datetime(9999, 12, 29, tzinfo=UTC)


def test_more_detail_updates_with_a_new_version(mem: Memory) -> None:
    mem.add("Maya: I play tennis.", user_id=USER, infer=True)
    second = mem.add("Maya: I play tennis every Sunday with my brother Leo.", user_id=USER,
                     infer=True)  # fmt: skip
    (fact,) = facts_of(mem)
    assert fact.version == 2
    assert fact.text == "Maya plays tennis every Sunday with Maya's brother Leo."
    assert second.id in fact.provenance["sources"] and len(fact.provenance["sources"]) == 2
    updates = [e for e in mem.history(fact.id) if e.event.value == "UPDATE"]
    assert updates and updates[0].old_text == "Maya plays tennis."


def test_duplicates_are_noops_and_new_facts_are_added(mem: Memory) -> None:
    first = mem.add("Maya: I adopted a greyhound called Pepper.", user_id=USER, infer=True)
    record = episodes_of(mem)[0]
    applied = consolidate_episode(mem, record)  # the same episode again: nothing new
    assert [a.op for a in applied] == [DecisionOp.NOOP]
    assert applied[0].target_id == first.metadata["facts"][0]
    applied = consolidate_episode(mem, "Maya: I started learning the cello.", scope=SCOPE)
    assert [a.op for a in applied] == [DecisionOp.ADD]
    assert len(facts_of(mem)) == 2


def test_an_episode_without_facts_is_done_with_none(mem: Memory) -> None:
    episode = mem.add("Tom: Haha, that's so funny! See you soon!", user_id=USER, infer=True)
    assert episode.metadata == {"extraction": "done", "facts": []}
    assert facts_of(mem) == []


def test_messages_are_one_episode_and_i_is_the_speaker(mem: Memory) -> None:
    messages = [
        {"role": "user", "content": "I work at Siemens in Munich."},
        {"role": "assistant", "content": "Noted! I will remember that."},
    ]
    episode = mem.add(messages, user_id=USER, metadata={"speaker": "Maya"}, infer=True)
    assert episode.text == (
        "user: I work at Siemens in Munich.\nassistant: Noted! I will remember that."
    )
    (fact,) = facts_of(mem)
    assert fact.text == "Maya works at Siemens in Munich."
    assert fact.metadata["slot"] == "maya|works_at"
    assert {"Maya", "Siemens", "Munich"} <= set(fact.metadata["entities"])


def test_deferred_episodes_wait_for_extract_pending(home: Path, embedder: Embedder) -> None:
    settings = Settings.load(home=home, infer="deferred")
    with Memory(settings=settings, embedder=embedder) as mem:
        mem.add("Maya: I live in Lisbon.", user_id=USER)  # the setting: deferred
        mem.add("Ben: I live in Oslo.", user_id="ben", infer="deferred")
        mem.add("Maya: hello", user_id=USER, infer=False)
        pending = mem.list(user_id=USER, filters={"extraction": "pending"})
        assert len(pending) == 1 and facts_of(mem) == []

        outcomes = extract_pending(mem, {"user_id": USER})
        assert [o.status for o in outcomes] == ["done"]
        assert [f.text for f in facts_of(mem)] == ["Maya lives in Lisbon."]
        assert mem.list(user_id="ben", kinds="semantic") == []

        outcomes = extract_pending(mem)  # every scope
        assert [o.episode_id for o in outcomes] == [
            r.id for r in mem.list(user_id="ben", kinds="episodic")
        ]
        assert extract_pending(mem) == []
        with pytest.raises(ValidationError, match="limit"):
            extract_pending(mem, limit=0)


def test_bad_input_is_rejected_and_changes_nothing(mem: Memory) -> None:
    mem.add("Maya: I live in Lisbon.", user_id=USER, infer=True)
    before = mem.stats().records
    for call, error in (
        (lambda: mem.add([], user_id=USER, infer=True), InvalidText),
        (lambda: mem.add([{"role": "user"}], user_id=USER), InvalidText),
        (lambda: mem.add([{"role": "user", "content": ""}], user_id=USER), InvalidText),
        (lambda: mem.add([42], user_id=USER), ValidationError),
        (lambda: mem.add(b"\xffbytes", user_id=USER, infer=True), InvalidText),  # type: ignore[arg-type]
        (lambda: mem.add("not \udcff unicode", user_id=USER, infer=True), InvalidText),
        (lambda: mem.add("fine", user_id=USER, infer="sometimes"), ValidationError),
        (lambda: mem.add("a fact", user_id=USER, kind=MemoryKind.SEMANTIC, infer=True),
         ValidationError),
        (lambda: mem.add("x", user_id=USER, metadata={"extraction": "done"}, infer=True),
         ValidationError),
    ):  # fmt: skip
        with pytest.raises(error):
            call()
    assert mem.stats().records == before


# the LLM path ---------------------------------------------------------------------------------

MODEL = "ollama/llama3"
PARIS_JSON = json.dumps(
    {
        "facts": [
            {
                "text": "Alice lives in Paris.",
                "subject": "Alice",
                "entities": ["Alice", "Paris"],
                "event_time": "2022-03-01",
                "attribute": "lives_in",
                "value": "Paris",
                "fact_type": "attribute",
            }
        ],
        "decisions": [{"fact": 0, "op": "ADD", "target": None, "reason": "new"}],
    }
)
BERLIN_JSON = json.dumps(
    {
        "facts": [
            {
                "text": "Alice moved to Berlin in January 2023.",
                "subject": "Alice",
                "entities": ["Alice", "Berlin"],
                "event_time": "2023-01-01",
                "attribute": "lives_in",
                "value": "Berlin",
            }
        ]
    }
)


@pytest.fixture
def llm_memory(home: Path, embedder: Embedder) -> Iterator[Any]:
    opened: list[Memory] = []

    def open_memory(**settings: Any) -> Memory:
        settings = {"llm_model": MODEL, "llm_backoff_s": 0.001, "llm_retries": 2, **settings}
        mem = Memory(settings=Settings.load(home=home, **settings), embedder=embedder)
        opened.append(mem)
        return mem

    yield open_memory
    for mem in opened:
        mem.close()


class Script:
    """A litellm.completion that answers from a script (through litellm's mock_response) and
    records which prompt each call was."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.prompts: list[str] = []
        self.litellm = load_litellm()

    def __call__(self, **kwargs: Any) -> Any:
        self.prompts.append(kwargs["metadata"]["agentmem_prompt"])
        return self.litellm.completion(**kwargs, mock_response=self.answers.pop(0))

    def pipeline(self) -> dict[str, Any]:
        client = LLMClient(MODEL, backoff_s=0.001, retries=2, completion=self)
        return {"extractor": LLMExtractor(client), "decider": LLMDecider(client)}


def test_llm_answer_from_settings_mock_response(llm_memory: Any) -> None:
    mem = llm_memory(llm_kwargs={"mock_response": PARIS_JSON})
    episode = mem.add("Alice: I live in Paris.", user_id=USER, infer=True)
    (fact,) = facts_of(mem)
    assert fact.text == "Alice lives in Paris."
    assert fact.event_time.isoformat().startswith("2022-03-01")
    assert fact.provenance["extractor"] == f"llm:{MODEL}"
    assert fact.provenance["prompt_version"] == "extract-v1"
    assert fact.provenance["sources"] == [episode.id]
    assert fact.metadata["slot"] == "alice|lives_in"
    assert episode.metadata["extraction"] == "done"


def test_llm_year_or_month_event_time_is_a_date_not_unix_seconds(llm_memory: Any) -> None:
    answer = {
        "facts": [
            {"text": "Alice moved to Berlin in 2022.", "subject": "Alice", "event_time": "2022"},
            {"text": "Alice adopted a cat.", "subject": "Alice", "event_time": "March 2022"},
            {"text": "Alice plays chess.", "subject": "Alice", "event_time": "whenever"},
        ]
    }
    mem = llm_memory(llm_kwargs={"mock_response": json.dumps(answer)})
    episode = mem.add("Alice: I moved to Berlin in 2022 and adopted a cat.", user_id=USER,
                      infer=True, event_time="2024-01-01")  # fmt: skip
    by_text = {f.text: f for f in facts_of(mem)}
    assert episode.metadata["extraction"] == "done" and len(by_text) == 3
    berlin = by_text["Alice moved to Berlin in 2022."]
    assert berlin.event_time.isoformat().startswith("2022-01-01")
    assert berlin.metadata["time_granularity"] == "year"
    assert by_text["Alice adopted a cat."].event_time.isoformat().startswith("2022-03-01")
    assert by_text["Alice plays chess."].event_time.isoformat().startswith("2024-01-01")
    assert mem.search("Berlin", user_id=USER, kinds="semantic", as_of="1971-01-01") == []


def test_llm_batched_decision_invalidates_by_short_id(llm_memory: Any) -> None:
    mem = llm_memory(llm_kwargs={"mock_response": PARIS_JSON})
    mem.add("Alice: I live in Paris.", user_id=USER, infer=True)
    decide = {"decisions": [{"fact": 0, "op": "INVALIDATE", "target": "1", "reason": "moved"}]}
    script = Script(BERLIN_JSON, json.dumps(decide))
    record = mem.add("Alice: I moved to Berlin in January.", user_id=USER)
    _, outcome = extract_episode(mem, record, **script.pipeline())
    assert script.prompts == ["extract-v1", "decide-v1"]
    assert [d.op for d in outcome.decisions] == [DecisionOp.INVALIDATE]
    then = mem.search("where does Alice live", user_id=USER, kinds="semantic", as_of="2022-06-01")
    now = mem.search("where does Alice live", user_id=USER, kinds="semantic")
    assert [h.record.text for h in then] == ["Alice lives in Paris."]
    assert [h.record.text for h in now] == ["Alice moved to Berlin in January 2023."]


def test_llm_update_that_changes_a_value_ends_the_old_one_instead(llm_memory: Any) -> None:
    """Mem0 answers UPDATE for a changed value; a single-valued attribute keeps its history."""
    mem = llm_memory(llm_kwargs={"mock_response": PARIS_JSON})
    mem.add("Alice: I live in Paris.", user_id=USER, infer=True)
    decide = {"decisions": [{"fact": 0, "op": "UPDATE", "target": "1",
                             "text": "Alice lives in Berlin.", "reason": "moved"}]}  # fmt: skip
    script = Script(BERLIN_JSON, json.dumps(decide))
    record = mem.add("Alice: I moved to Berlin in January.", user_id=USER)
    _, outcome = extract_episode(mem, record, **script.pipeline())
    assert [d.op for d in outcome.decisions] == [DecisionOp.INVALIDATE]
    paris = next(r for r in facts_of(mem, invalidated=True) if r.invalidated_at is not None)
    assert paris.text == "Alice lives in Paris." and paris.valid_to.year == 2023
    then = mem.search("where does Alice live", user_id=USER, kinds="semantic", as_of="2022-06-01")
    now = mem.search("where does Alice live", user_id=USER, kinds="semantic")
    assert [h.record.text for h in then] == ["Alice lives in Paris."]
    assert [h.record.text for h in now] == ["Alice moved to Berlin in January 2023."]


def test_llm_decision_about_an_unknown_id_adds(llm_memory: Any) -> None:
    mem = llm_memory()
    decide = {"decisions": [{"fact": 0, "op": "UPDATE", "target": "99", "reason": "?"}]}
    script = Script(PARIS_JSON, json.dumps(decide))
    record = mem.add("Alice: I live in Paris.", user_id=USER)
    _, outcome = extract_episode(mem, record, **script.pipeline())
    assert [d.op for d in outcome.decisions] == [DecisionOp.ADD]
    assert "unknown fact '99'" in outcome.decisions[0].reason


def test_malformed_answer_is_repaired_once(llm_memory: Any) -> None:
    mem = llm_memory()
    script = Script("Here are the facts: Alice lives in Paris", PARIS_JSON, PARIS_JSON)
    record = mem.add("Alice: I live in Paris.", user_id=USER)
    episode, outcome = extract_episode(mem, record, **script.pipeline())
    assert script.prompts == ["extract-v1", "extract-v1+repair-v1", "decide-v1"]
    assert outcome.status == "done" and episode.metadata["extraction"] == "done"
    assert [f.text for f in facts_of(mem)] == ["Alice lives in Paris."]


@pytest.mark.parametrize(
    "garbage",
    [
        '{"facts": [{"text": "trailing comma",}]}',
        '{"facts": [{"text": "Alice \\udcff"}]}',
        "",
        # An object without "facts" is not "no facts" (it was: done with the facts lost).
        '{"memories": [{"text": "Alice lives in Paris."}]}',
        "{}",
    ],
)
def test_malformed_twice_keeps_the_episode_pending(llm_memory: Any, garbage: str) -> None:
    mem = llm_memory()
    script = Script(garbage, garbage)
    record = mem.add("Alice: I live in Paris.", user_id=USER)
    episode, outcome = extract_episode(mem, record, **script.pipeline())
    assert (
        outcome.status == "pending" and "ExtractionFailed" in episode.metadata["extraction_error"]
    )
    assert episode.metadata["extraction_attempts"] == 1
    assert mem.get(record.id).text == "Alice: I live in Paris."  # kept
    assert facts_of(mem) == []
    # A later try (consolidation) with a working model finishes it.
    outcomes = extract_pending(mem, SCOPE, **Script(PARIS_JSON, PARIS_JSON).pipeline())
    assert [o.status for o in outcomes] == ["done"]
    assert "extraction_error" not in mem.get(record.id).metadata


def test_an_explicit_empty_facts_list_is_done_without_a_repair(llm_memory: Any) -> None:
    mem = llm_memory()
    script = Script('{"facts": []}')
    record = mem.add("Alice: Hello there.", user_id=USER)
    episode, outcome = extract_episode(mem, record, **script.pipeline())
    assert script.prompts == ["extract-v1"]
    assert outcome.status == "done" and episode.metadata["extraction"] == "done"


@pytest.mark.parametrize("text", ["y" * 40_000, "Alice lives in Paris\x00."])
def test_an_update_text_the_store_refuses_gets_the_repair_request(
    llm_memory: Any, text: str
) -> None:
    """Such a reply was applied, the store refused it, and the episode was failed at once."""
    mem = llm_memory()
    bad = json.dumps({"decisions": [{"fact": 0, "op": "UPDATE", "target": "1", "text": text}]})
    script = Script(PARIS_JSON, bad, bad)
    record = mem.add("Alice: I live in Paris.", user_id=USER)
    episode, outcome = extract_episode(mem, record, **script.pipeline())
    assert script.prompts == ["extract-v1", "decide-v1", "decide-v1+repair-v1"]
    assert outcome.status == "pending" and episode.metadata["extraction_attempts"] == 1
    assert "decide-v1 answer" in episode.metadata["extraction_error"]
    # A repaired reply is applied.
    script = Script(PARIS_JSON, bad, json.dumps({"decisions": []}))
    (outcome,) = extract_pending(mem, SCOPE, **script.pipeline())
    assert outcome.status == "done" and [f.text for f in facts_of(mem)] == ["Alice lives in Paris."]


@pytest.mark.parametrize("when", ["9999-12-31", "0001-01-01", "9999-12-30T23:00:00-05:00"])
def test_an_event_time_the_store_cannot_keep_leaves_the_fact_undated(
    llm_memory: Any, when: str
) -> None:
    mem = llm_memory()
    answer = {"facts": [{"text": "Alice will keep her flat.", "event_time": when}]}
    script = Script(json.dumps(answer), '{"decisions": []}')
    record = mem.add("Alice: I keep my flat forever.", user_id=USER, event_time="2024-01-01")
    episode, outcome = extract_episode(mem, record, **script.pipeline())
    assert outcome.status == "done" and episode.metadata["extraction"] == "done"
    (fact,) = facts_of(mem)
    assert fact.event_time.isoformat().startswith("2024-01-01")  # the episode's time


def test_a_fact_the_store_refuses_keeps_the_llm_episode_pending(llm_memory: Any) -> None:
    """A value the reply's schema allows but these settings do not is the reply's fault, not
    the episode's: pending for another try (it was failed at once, with advice for callers)."""
    mem = llm_memory(max_text_chars=60)
    answer = {"facts": [{"text": "Alice lives in Paris, " + "in a flat by the river " * 4}]}
    script = Script(json.dumps(answer), '{"decisions": []}')
    record = mem.add("Alice: I live in Paris.", user_id=USER)
    episode, outcome = extract_episode(mem, record, **script.pipeline())
    error = episode.metadata["extraction_error"]
    assert outcome.status == "pending" and episode.metadata["extraction_attempts"] == 1
    assert error.startswith("ExtractionFailed: the answer of llm:") and "split it" not in error
    assert "AGENTMEM_MAX_TEXT_CHARS" in error and facts_of(mem) == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mock_response": "litellm.RateLimitError"},
        {"mock_response": "litellm.InternalServerError"},
        {"mock_response": "{}", "mock_timeout": True},
    ],
)
def test_llm_errors_are_retried_then_the_episode_is_kept(
    llm_memory: Any, kwargs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    mem = llm_memory(llm_kwargs=kwargs, llm_timeout_s=0.01)
    with caplog.at_level(logging.WARNING, logger="agentmem.semantic"):
        episode = mem.add("Alice: I live in Paris.", user_id=USER, infer=True)
    # The extraction caller says what becomes of the episode (the LLM client does not).
    assert f"extraction of episode {episode.id} failed" in caplog.text
    assert "the episode is kept, marked pending for another try" in caplog.text
    assert episode.metadata["extraction"] == "pending"
    assert "LLMUnavailable" in episode.metadata["extraction_error"]
    assert "after 3 attempts" in episode.metadata["extraction_error"]
    assert mem.get(episode.id).text == "Alice: I live in Paris."
    assert facts_of(mem) == []


def test_an_exception_from_the_model_keeps_the_episode(llm_memory: Any) -> None:
    mem = llm_memory()
    script = Script(*(ValueError("provider exploded") for _ in range(3)))
    record = mem.add("Alice: I live in Paris.", user_id=USER)
    episode, outcome = extract_episode(mem, record, **script.pipeline())
    assert len(script.prompts) == 3  # one call and two retries
    assert outcome.status == "pending" and "provider exploded" in (outcome.error or "")
    assert episode.metadata["extraction"] == "pending"


def test_a_key_a_provider_error_echoes_is_neither_stored_nor_logged(
    llm_memory: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    key = "sk-SECRET-abc123456789"  # too short for the well-known formats: masked as the setting
    litellm = load_litellm()
    errors = [
        litellm.RateLimitError(message=f"slow down, {key}", llm_provider="openai", model=MODEL),
        litellm.AuthenticationError(
            message=f"Incorrect API key provided: {key}", llm_provider="openai", model=MODEL
        ),
    ]

    def completion(**kwargs: Any) -> Any:
        raise errors.pop(0)

    monkeypatch.setattr(litellm, "completion", completion)
    mem = llm_memory(llm_kwargs={"api_key": key})
    with caplog.at_level(logging.WARNING):
        episode = mem.add("Alice: I live in Paris.", user_id=USER, infer=True)
    assert errors == [] and episode.metadata["extraction"] == "pending"
    assert "Incorrect API key provided: ***" in episode.metadata["extraction_error"]
    assert key not in json.dumps(mem.get(episode.id).metadata)
    assert "slow down" in caplog.text and key not in caplog.text


def test_repeated_failures_end_as_failed(llm_memory: Any) -> None:
    mem = llm_memory(llm_kwargs={"mock_response": "nope"}, semantic={"max_attempts": 2})
    episode = mem.add("Alice: I live in Paris.", user_id=USER, infer=True)
    assert episode.metadata["extraction"] == "pending"
    (outcome,) = extract_pending(mem)
    assert outcome.status == "failed"
    assert mem.get(episode.id).metadata["extraction_attempts"] == 2
    assert extract_pending(mem) == []  # no longer retried
    assert mem.list(user_id=USER, filters={"extraction": "failed"})[0].id == episode.id


def test_add_many_infers_for_its_episodes_only(mem: Memory) -> None:
    records = mem.add_many(
        [
            {"text": "Maya: I live in Lisbon.", "event_time": "2023-01-01T00:00:00Z"},
            {"text": "Maya prefers tea.", "kind": "semantic"},
            "Maya: I moved to Porto last week.",
        ],
        user_id=USER,
        infer=True,
    )
    assert [r.metadata.get("extraction") for r in records] == ["done", None, "done"]
    current = [f.text for f in facts_of(mem)]
    assert "Maya prefers tea." in current and any("Porto" in t for t in current)
    assert not any("Lisbon" in t for t in current)  # invalidated by the move
