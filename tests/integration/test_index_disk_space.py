"""A nearly full disk stops the embedded index with an error before the engine would crash.

Qdrant Edge grows memory-mapped files; on a full disk the process dies of SIGBUS (no error).
So the index checks the free space of its disk before it opens and before each upsert. The
free space is simulated (``_free_bytes``), so no small filesystem or root is needed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentmem import IndexUnreadable, Memory, Settings
from agentmem.embedders import Embedder
from agentmem.vectors import edge

FULL = 5 * 2**20


def _free(monkeypatch: pytest.MonkeyPatch, free: int | None) -> None:
    monkeypatch.setattr(edge, "_free_bytes", lambda path: free)


def _assert_disk_message(message: str, vectors: Path) -> None:
    assert f"the disk that holds the Qdrant Edge vector index at {vectors}" in message
    assert "5 MiB free" in message and f"{edge.MIN_FREE_BYTES // 2**20} MiB" in message
    assert "Free space" in message and "store is intact" in message
    assert "probably damaged" not in message and "reindex --rebuild" not in message


def test_a_write_on_a_nearly_full_disk_is_stored_and_indexed_once_space_is_freed(
    home: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Memory(settings=Settings.load(home=home), embedder=embedder) as mem:
        mem.add("written while there was room", user_id="u")
        _free(monkeypatch, FULL)
        with pytest.raises(IndexUnreadable) as info:
            mem.add("written on a full disk", user_id="u")
        message = str(info.value)
        assert message.startswith("stored ") and "nothing is lost" in message
        _assert_disk_message(message, home / "vectors")
        with pytest.raises(IndexUnreadable, match="almost full"):
            mem.reindex(rebuild=True)
        assert not list(home.glob("vectors.damaged-*")), "a good index is not set aside"

        _free(monkeypatch, None)  # space freed (or unknown): the next write catches up
        mem.add("written after space was freed", user_id="u")
        stats = mem.stats()
        assert stats.records == 3 == stats.indexed_vectors and stats.pending_index == 0


def test_opening_on_a_nearly_full_disk_keeps_the_store_readable_and_recovers(
    home: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings.load(home=home)
    with Memory(settings=settings, embedder=embedder) as mem:
        record = mem.add("Alice moved to Lisbon", user_id="u")
    _free(monkeypatch, FULL)
    with Memory(settings=settings, embedder=embedder) as mem:
        stats = mem.stats()
        assert stats.records == 1 and stats.index_error is not None
        _assert_disk_message(stats.index_error, home / "vectors")
        assert mem.get(record.id).text == "Alice moved to Lisbon"
        with pytest.raises(IndexUnreadable, match="almost full"):
            mem.search("where does Alice live", user_id="u")

        _free(monkeypatch, 2 * edge.MIN_FREE_BYTES)  # freed: the index opens on its next use
        assert mem.search("where does Alice live", user_id="u")[0].record.id == record.id
