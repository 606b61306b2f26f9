"""Flushed segments feed fact extraction as the ``infer`` setting says, once per segment."""

from __future__ import annotations

from pathlib import Path

from agentmem import Memory, Settings
from agentmem.embedders import Embedder
from agentmem.semantic.extractor import DONE, EXTRACTION_KEY, PENDING


def _flush(tmp_path: Path, embedder: Embedder, infer: bool | str, manual: bool) -> Memory:
    settings = Settings.load(
        home=tmp_path / str(infer), vectors_url="qdrant-local://:memory:", infer=infer
    )
    mem = Memory(settings=settings, embedder=embedder)
    buf = mem.buffer(thread_id="t-1", user_id="maya", max_tokens=40)
    buf.append("user", "I am vegetarian and I live in Lisbon.", name="Maya")
    buf.append("assistant", "Noted, I will suggest vegetarian places in Lisbon!")
    if manual:
        buf.flush()
    else:
        buf.append("user", "Also, my sister Ines visits in August and she loves the sea.")
    return mem


def test_deferred_marks_the_segment_pending_and_not_its_turns(
    tmp_path: Path, embedder: Embedder
) -> None:
    with _flush(tmp_path, embedder, "deferred", manual=False) as mem:
        segments = mem.list(user_id="maya", filters={"buffer_record": "segment"})
        turns = mem.list(user_id="maya", filters={"buffer_record": "turn"})
        assert segments and turns
        assert all(s.metadata[EXTRACTION_KEY] == PENDING for s in segments)
        assert all(EXTRACTION_KEY not in t.metadata for t in turns)


def test_infer_extracts_on_an_explicit_flush(tmp_path: Path, embedder: Embedder) -> None:
    with _flush(tmp_path, embedder, True, manual=True) as mem:
        (segment,) = mem.list(user_id="maya", filters={"buffer_record": "segment"})
        assert segment.metadata[EXTRACTION_KEY] == DONE
        facts = mem.list(user_id="maya", kinds=["semantic"])
        assert any("Lisbon" in f.text for f in facts)


def test_infer_never_runs_inside_an_append(tmp_path: Path, embedder: Embedder) -> None:
    with _flush(tmp_path, embedder, True, manual=False) as mem:
        segments = mem.list(user_id="maya", filters={"buffer_record": "segment"})
        assert segments and all(s.metadata[EXTRACTION_KEY] == PENDING for s in segments)
        assert mem.list(user_id="maya", kinds=["semantic"]) == []
        mem.buffers.backend.delete(mem.buffer(thread_id="t-1", user_id="maya").key)


def test_facts_of_a_flushed_segment_name_each_speaker(tmp_path: Path, embedder: Embedder) -> None:
    """A buffer turn reads ``role/name: words``: its facts are about the named person, one
    turn per speaker (not "User", and not one turn running into the next)."""
    settings = Settings.load(home=tmp_path / "home", vectors_url="qdrant-local://:memory:")
    with Memory(settings=settings.model_copy(update={"infer": True}), embedder=embedder) as mem:
        buf = mem.buffer(thread_id="t-1", user_id="maya")
        buf.append("user", "I live in Porto and my sister is called Quillaby", name="Maya")
        buf.append("user", "I work at Zephyrcorp", name="Tom")
        buf.append("assistant", "I am glad to help", name="Jarvis")
        flush = buf.flush()
        facts = sorted(f.text for f in mem.list(user_id="maya", kinds=["semantic"]))
        assert facts == [
            "Maya lives in Porto and Maya's sister is called Quillaby.",
            "Tom works at Zephyrcorp.",
        ]
        speakers = [t.metadata.get("speaker") for t in flush.turns]
        assert speakers == ["Maya", "Tom", "Jarvis"]  # for the speaker prior of search
