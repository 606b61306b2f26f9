"""A question about how things are, over raw conversation turns: the turn that changed a fact
comes first (retrieval.supersede_depth), on the conversation ``make demo`` stores."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentmem import Memory, Settings
from agentmem.embedders import Embedder

DEMO = Path(__file__).resolve().parents[2] / "examples" / "data" / "conversation.json"
EASTGATE = "Maya: Big news: I moved from Harbourside to Eastgate, now I can walk to the office."
HARBOURSIDE = "Maya: The commute. I live in Harbourside"


def _remember(mem: Memory) -> None:
    for session in json.loads(DEMO.read_text())["sessions"]:
        mem.add_many(
            [
                {
                    "text": f"{turn['speaker']}: {turn['text']}",
                    "event_time": session["date"],
                    "metadata": {"session": session["session"], "speaker": turn["speaker"]},
                }
                for turn in session["turns"]
            ],
            user_id="maya",
        )


@pytest.fixture(params=[20, 0], ids=["supersede", "off"])
def demo(request: pytest.FixtureRequest, tmp_path: Path, embedder: Embedder) -> Iterator[Memory]:
    settings = Settings.load(home=tmp_path, retrieval={"supersede_depth": request.param})
    with Memory(settings=settings, embedder=embedder) as mem:
        _remember(mem)
        yield mem


@pytest.mark.parametrize("question", ["Where does Maya live now?", "Where does Maya live?"])
def test_the_turn_that_changed_where_maya_lives_answers(demo: Memory, question: str) -> None:
    hits = demo.search(question, user_id="maya", k=3)
    texts = [h.record.text for h in hits]
    if demo.settings.retrieval.supersede_depth == 0:
        # What the setting guards: without it the older turn matches the words better.
        assert texts[0].startswith(HARBOURSIDE), texts
        return
    assert texts[0] == EASTGATE, texts
    assert texts[1].startswith(HARBOURSIDE), texts  # the value it replaced follows it
    assert hits[0].channels["supersedes"].rank == 1  # it took the first place, Harbourside's
    assert "supersedes" not in hits[1].channels
    assert hits[0].score >= hits[1].score >= hits[2].score


@pytest.mark.parametrize(
    "question", ["Where was Maya living in March 2024?", "Where did Maya live?"]
)
def test_a_question_about_the_past_keeps_the_fused_order(demo: Memory, question: str) -> None:
    hits = demo.search(question, user_id="maya", k=3)
    assert hits[0].record.text.startswith(HARBOURSIDE), [h.record.text for h in hits]
    assert all("supersedes" not in h.channels for h in hits)
