"""The speaker prior (agentmem.speaker_prior): which speakers a query names, and how the
candidates of a named speaker move up."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agentmem.models import MemoryRecord, Scope
from agentmem.speaker_prior import apply_speaker_prior, named_speakers
from agentmem.stores.base import RankFields, speaker_of

T = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("What did Caroline research?", {"Caroline"}),
        ("What does Melanie Ruiz paint?", {"Melanie Ruiz"}),
        ("What did Melanie paint?", {"Melanie Ruiz"}),  # the first name names her too
        ("What did Caroline tell Melanie?", {"Caroline", "Melanie Ruiz"}),
        ("What did Carol say?", set()),  # a word of its own, not a part of one
        ("what did caroline research?", set()),  # a name keeps its capital
        ("Where is Caroline-Anne?", set()),
    ],
)
def test_named_speakers(query: str, named: set[str]) -> None:
    assert named_speakers(query, {"Caroline", "Melanie Ruiz", "Assistant"}) == named


@pytest.mark.parametrize(
    ("text", "metadata", "speaker"),
    [
        ("Caroline: I went to the support group.", None, "Caroline"),
        ("Jon Snow: winter is coming", None, "Jon Snow"),
        ("Åsa: I live in Oslo.", None, "Åsa"),  # a non-ASCII capital: was no speaker
        ("Émile Zola: I live in Paris.", None, "Émile Zola"),
        ("I went to the support group.", "Caroline", "Caroline"),
        ("Caroline: hi", "Mel", "Mel"),  # metadata first
        ("Note: buy milk at 5:30", None, "Note"),
        ("the meeting: 5 pm", None, None),
        ("no prefix at all", 42, None),
    ],
)
def test_speaker_of(text: str, metadata: object, speaker: str | None) -> None:
    assert speaker_of(text, metadata) == speaker


@pytest.mark.parametrize(
    ("metadata", "scope", "speaker"),
    [
        ({}, Scope(user_id="u"), None),  # a note added on its own: a label, not a speaker
        ({"session": 3}, Scope(user_id="u"), "Mom"),  # a turn of a session
        ({}, Scope(user_id="u", thread_id="t"), "Mom"),  # an episode of a thread
        ({"speaker": "Dad"}, Scope(user_id="u"), "Dad"),  # metadata names one anywhere
    ],
)
def test_a_name_prefix_is_a_speaker_only_on_a_turn(
    metadata: dict[str, object], scope: Scope, speaker: str | None
) -> None:
    record = MemoryRecord(scope=scope, text="Mom: call me when you land", metadata=metadata)
    assert RankFields.of(record, "session").speaker == speaker


def fields(**speakers: str | None) -> dict[str, RankFields]:
    return {i: RankFields(i, T, T, 0.5, None, s) for i, s in speakers.items()}


CANDIDATES = [("a", 0.9, {}), ("b", 0.8, {}), ("c", 0.5, {}), ("d", 0.4, {})]


def test_the_named_speakers_candidates_move_up_in_their_order() -> None:
    got = apply_speaker_prior(
        1.0, "What did Mel do?", CANDIDATES, fields(a="Caro", b="Mel", c=None, d="Mel")
    )
    assert [(i, s) for i, s, _ in got] == [("b", 1.6), ("a", 0.9), ("d", 0.8), ("c", 0.5)]


@pytest.mark.parametrize(
    ("weight", "query", "speakers"),
    [
        (0.0, "What did Mel do?", {"a": "Caro", "b": "Mel"}),  # off
        (1.0, "What happened?", {"a": "Caro", "b": "Mel"}),  # names nobody
        (1.0, "What did Mel tell Caro?", {"a": "Caro", "b": "Mel"}),  # names everybody
        (1.0, "What did Mel do?", {"a": "Mel", "b": "Mel"}),  # one speaker only
        (1.0, "What did Mel do?", {"a": None, "b": None}),  # no speakers at all
    ],
)
def test_nothing_moves_where_the_prior_cannot_tell_speakers_apart(
    weight: float, query: str, speakers: dict[str, str | None]
) -> None:
    assert apply_speaker_prior(weight, query, CANDIDATES, fields(**speakers)) == CANDIDATES
