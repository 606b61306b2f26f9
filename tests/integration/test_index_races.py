"""Processes sharing one index (PostgreSQL + pgvector, a Qdrant server) race on its points: a
point written from a record read a moment earlier must not outlive the record, and a reindex
must not drop the point of a record added while it ran. Here the other process is played
inside this one, at the exact moment the race needs (agentmem.indexing)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentmem import Memory, Settings
from agentmem.embedders import Embedder
from agentmem.stores.base import WriteBatch


@pytest.fixture
def mem(tmp_path: Path, embedder: Embedder) -> Iterator[Memory]:
    with Memory(settings=Settings.load(home=tmp_path / "home"), embedder=embedder) as m:
        yield m


@pytest.fixture
def shared(pgvector_url: str, tmp_path: Path, embedder: Embedder) -> Iterator[Memory]:
    """A Memory on PostgreSQL + pgvector: an index that several processes share."""
    settings = Settings.load(
        home=tmp_path / "home", store_url=pgvector_url, vectors_url=pgvector_url
    )
    with Memory(settings=settings, embedder=embedder) as m:
        yield m


def test_a_record_deleted_while_its_point_is_written_leaves_no_point(
    shared: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    mem = shared
    assert mem.backends.index.supports_concurrent_processes
    store, index = mem.backends.store, mem.backends.index
    read = store.get_many
    deleted: list[str] = []

    def get_many(ids: Any, *args: Any, **kwargs: Any) -> Any:
        records = read(ids, *args, **kwargs)
        for r in records:
            if "greyhound" in r.text and not deleted:
                # Another process deletes the record and its point (already applied there)
                # after this one read it and before this one writes its point.
                store.apply(WriteBatch(deletes=[r.id]))
                index.delete([r.id])
                deleted.append(r.id)
        return records

    monkeypatch.setattr(store, "get_many", get_many)
    mem.add("Maya adopted a greyhound called Pepper", user_id="maya")
    monkeypatch.undo()

    assert deleted, "the race was not played"
    assert deleted[0] not in index.ids()
    assert mem.search("greyhound Pepper", user_id="maya") == []


def test_reindex_keeps_a_record_added_while_it_ran(
    mem: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    mem.add("Maya works as a nurse in Leeds", user_id="maya")
    late = mem.add("Maya adopted a greyhound called Pepper", user_id="maya")
    store = mem.backends.store
    all_ids = store.all_ids

    def pages_read_before_it_existed(after: str | None = None, limit: int = 1000) -> list[str]:
        return [i for i in all_ids(after, limit) if i != late.id]

    # The reindex reads its pages before ``late`` is committed by another process, which
    # indexes it; the reindex then sees its point as a stray.
    monkeypatch.setattr(store, "all_ids", pages_read_before_it_existed)
    mem.reindex()
    monkeypatch.undo()

    assert late.id in mem.backends.index.ids()
    assert [h.record.id for h in mem.search("greyhound Pepper", user_id="maya", k=1)] == [late.id]
