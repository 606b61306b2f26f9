"""A question that names one speaker of a conversation ranks up that speaker's turns
(retrieval.speaker_prior), whether the speaker is a "Name:" prefix or metadata."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agentmem import Memory, Settings
from agentmem.embedders import Embedder

TURNS = [
    ("Caroline", "I signed up for a pottery class at the community centre last week!"),
    ("Melanie", "Oh nice, pottery! I did a class like that years ago, I loved the wheel."),
    ("Caroline", "The teacher says I have a knack for glazing."),
    ("Melanie", "My kids keep asking me to take them camping this summer."),
    ("Caroline", "Camping sounds fun, where would you go?"),
    ("Melanie", "Probably the lake near my parents' place."),
]


@pytest.fixture(params=[1.0, 0.0], ids=["prior", "off"])
def chat(request: pytest.FixtureRequest, tmp_path: Path, embedder: Embedder) -> Iterator[Memory]:
    settings = Settings.load(home=tmp_path, retrieval={"speaker_prior": request.param})
    with Memory(settings=settings, embedder=embedder) as mem:
        items = [
            {"text": f"{speaker}: {text}", "event_time": "2023-05-08T10:00:00Z",
             "metadata": {"session": 1}}
            for speaker, text in TURNS
        ]  # fmt: skip
        mem.add_many(items, user_id="u")
        # The same conversation with the speaker in metadata instead of the text.
        mem.add_many(
            [{"text": text, "metadata": {"session": 1, "speaker": s}} for s, text in TURNS],
            user_id="meta",
        )
        yield mem


@pytest.mark.parametrize("user", ["u", "meta"])
def test_the_named_speakers_turns_come_first(chat: Memory, user: str) -> None:
    hits = chat.search("What class did Melanie take?", user_id=user, k=3)
    speakers = [h.record.metadata.get("speaker") or h.record.text.split(":")[0] for h in hits]
    if chat.settings.retrieval.speaker_prior == 0:
        assert "Caroline" in speakers  # what the prior guards: her pottery turn is close
        return
    assert speakers[:2] == ["Melanie", "Melanie"], [h.record.text for h in hits]
    assert "pottery" in hits[0].record.text


def test_a_question_naming_no_speaker_is_left_as_fused(chat: Memory) -> None:
    hits = chat.search("Who signed up for a pottery class?", user_id="u", k=2)
    assert hits[0].record.text.startswith("Caroline: I signed up")


def test_the_prior_holds_for_a_question_about_now(chat: Memory) -> None:
    # "now" adds the newest-first ranking (retrieval.present_recency), which is added to the
    # fused scores: it must not undo the prior by fusing the channels again without it.
    hits = chat.search("Where is Melanie going camping now?", user_id="u", k=3)
    speakers = [h.record.text.split(":")[0] for h in hits]
    assert "newest" in hits[0].channels
    if chat.settings.retrieval.speaker_prior == 0:
        assert speakers[0] == "Caroline"  # what the prior guards: "Camping sounds fun"
        return
    assert speakers[:2] == ["Melanie", "Melanie"], [h.record.text for h in hits]
