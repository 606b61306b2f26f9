"""Superseded memories (agentmem.supersession): which attributes a memory sets, and the order
a present-state question's candidates take when a newer memory changes one of them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agentmem.models import MemoryRecord, Scope
from agentmem.supersession import record_slots, supersede

SCOPE = Scope(user_id="maya")


def record(text: str, month: int, **metadata: object) -> MemoryRecord:
    return MemoryRecord(
        text=text,
        scope=SCOPE,
        event_time=datetime(2024, month, 1, tzinfo=UTC),
        metadata=dict(metadata),
    )


@pytest.mark.parametrize(
    ("text", "slots"),
    [
        ("Maya: I live in Harbourside and the office is far.", {("maya|lives_in", "harbourside")}),
        (
            "Maya: Big news: I moved from Harbourside to Eastgate, now I can walk to work.",
            {("maya|lives_in", "eastgate")},
        ),
        ("Dev moved to Glasgow.", {("dev|lives_in", "glasgow")}),
        ("Assistant: I live in the cloud.", set()),  # not a person's words
        ("Maya: I no longer live in Harbourside.", set()),  # a negation sets no value
        ("Maya: Pepper loves the new flat.", {("pepper|likes:new flat", "positive")}),
        ("The weather was grey all week.", set()),
        ("Maya: When we were students I lived in Dundee.", set()),  # the past, not now
        ("Maya: Back in 2016 I worked at Initech.", set()),
    ],
)
def test_record_slots_reads_each_persons_clauses(text: str, slots: set[tuple[str, str]]) -> None:
    assert record_slots(record(text, 3)) == slots


def test_a_facts_metadata_slot_is_used_as_stored() -> None:
    fact = record("Maya lives by the sea.", 3, slot="maya|lives_in", value="The Seafront")
    assert record_slots(fact) == {("maya|lives_in", "seafront")}


def test_a_speaker_in_metadata_is_who_i_is() -> None:
    assert record_slots(record("I live in Leeds.", 3, speaker="Alice")) == {
        ("alice|lives_in", "leeds")
    }


OLD = record("Maya: I live in Harbourside.", 3)
DOG = record("Maya: Pepper is shy but loves long walks.", 4)
NEW = record("Maya: I moved from Harbourside to Eastgate.", 6)
OLDEST = record("Maya: I lived in Riverside as a student, I live in Riverside still.", 1)
BY_ID = {r.id: r for r in (OLD, DOG, NEW, OLDEST)}


def test_the_newer_value_takes_the_place_of_the_older_and_the_older_follows() -> None:
    order, moved = supersede([OLD.id, DOG.id, NEW.id], BY_ID, depth=20)
    assert order == [NEW.id, OLD.id, DOG.id]
    assert moved == {NEW.id: OLD.id}


def test_every_older_value_follows_the_newest_in_its_own_order() -> None:
    order, _ = supersede([OLD.id, DOG.id, OLDEST.id, NEW.id], BY_ID, depth=20)
    assert order == [NEW.id, OLD.id, OLDEST.id, DOG.id]


def test_nothing_moves_when_the_newest_value_already_leads() -> None:
    assert supersede([NEW.id, DOG.id, OLD.id], BY_ID, depth=20) == ([NEW.id, DOG.id, OLD.id], {})


def test_a_new_job_supersedes_the_old_occupation() -> None:
    teacher = record("Maya: I work as a teacher at the primary school.", 2)
    nurse = record("Maya: I started a new job as a nurse last month!", 7)
    by_id = {teacher.id: teacher, nurse.id: nurse, DOG.id: DOG}
    assert supersede([teacher.id, DOG.id, nurse.id], by_id, depth=20) == (
        [nurse.id, teacher.id, DOG.id],
        {nurse.id: teacher.id},
    )


def test_nothing_moves_beyond_the_depth() -> None:
    assert supersede([OLD.id, DOG.id, NEW.id], BY_ID, depth=2) == ([OLD.id, DOG.id, NEW.id], {})


def test_the_same_value_said_twice_is_no_change() -> None:
    again = record("Maya: I still live in Harbourside.", 6)
    by_id = {**BY_ID, again.id: again}
    assert supersede([OLD.id, DOG.id, again.id], by_id, depth=20)[1] == {}


def test_another_subjects_value_is_no_change() -> None:
    sister = record("Ines: I live in Porto.", 6)
    by_id = {**BY_ID, sister.id: sister}
    assert supersede([OLD.id, DOG.id, sister.id], by_id, depth=20)[1] == {}


def test_only_the_start_of_a_long_memory_and_its_short_clauses_are_read() -> None:
    # Search-time work stays bounded on any stored text: a document past READ_CHARS and a
    # run-on clause past LONGEST_CLAUSE are not read for attributes.
    from agentmem.supersession import LONGEST_CLAUSE, READ_CHARS

    late = "Notes. " * (READ_CHARS // 7 + 1) + "Maya lives in Porto."
    assert record_slots(record(late, 3)) == set()
    run_on = "Maya lives in Porto and " + "then more words " * (LONGEST_CLAUSE // 16)
    assert record_slots(record(run_on, 3)) == set()
    assert record_slots(record("Maya lives in Porto. " + "Notes. " * 10, 3)) == {
        ("maya|lives_in", "porto")
    }


def test_in_one_session_the_later_written_turn_is_newer() -> None:
    said = datetime(2024, 6, 1, tzinfo=UTC)
    first = MemoryRecord(text="Maya: I live in Harbourside.", scope=SCOPE, event_time=said)
    later = MemoryRecord(
        text="Maya: Actually I moved to Eastgate.",
        scope=SCOPE,
        event_time=said,
        created_at=first.created_at + timedelta(seconds=1),
    )
    by_id = {first.id: first, later.id: later, DOG.id: DOG}
    assert supersede([first.id, DOG.id, later.id], by_id, depth=20)[0] == [
        later.id,
        first.id,
        DOG.id,
    ]
