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
