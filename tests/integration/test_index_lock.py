"""Concurrent writers share one index lock (agentmem.indexing.sync_outbox). Whoever holds it
applies everything pending, so a writer whose entries were applied meanwhile returns without
reading the outbox again: under load the outbox is applied in batches, not one store read
per writer in turn (benchmarks/RESULTS.md, load)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from agentmem import Memory, Settings
from agentmem.embedders import Embedder
from agentmem.indexing import sync_outbox


@pytest.fixture
def counted(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Memory, Counter[str]]]:
    """A Memory whose outbox reads are counted per thread name."""
    with Memory(settings=Settings.load(home=tmp_path / "home"), embedder=embedder) as mem:
        reads: Counter[str] = Counter()
        store = mem.backends.store
        read = store.pending_index

        def counting(limit: int = 1000) -> Any:
            reads[threading.current_thread().name] += 1
            return read(limit)

        monkeypatch.setattr(store, "pending_index", counting)
        yield mem, reads


class GatedLock:
    """The index lock, except that the thread named ``gated`` waits at the door until the
    test opens it (``arrived`` says it is there)."""

    def __init__(self, gated: str) -> None:
        self._lock = threading.Lock()
        self.gated = gated
        self.arrived = threading.Event()
        self.open = threading.Event()

    def __enter__(self) -> GatedLock:
        if threading.current_thread().name == self.gated:
            self.arrived.set()
            assert self.open.wait(30), "the test never opened the gate"
        self._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def test_one_write_reads_the_outbox_once(counted: tuple[Memory, Counter[str]]) -> None:
    mem, reads = counted
    reads.clear()
    mem.add("I adopted a beagle named Rex.", user_id="u")
    assert sum(reads.values()) == 1  # its own entries, fewer than a batch: no second read
    assert mem.backends.store.pending_index() == []


def test_a_writer_whose_entries_were_applied_meanwhile_does_not_read_again(
    counted: tuple[Memory, Counter[str]],
) -> None:
    mem, reads = counted
    gate = GatedLock("writer")
    mem.backends.index_lock = gate  # type: ignore[assignment]
    reads.clear()
    writer = threading.Thread(
        target=lambda: mem.add("Rex loves the beach.", user_id="u"), name="writer"
    )
    writer.start()
    assert gate.arrived.wait(30)  # committed, ticket taken, waiting for the lock
    assert len(mem.backends.store.pending_index()) >= 1  # its entries are not applied yet

    sync_outbox(mem.backends)  # a later caller applies everything pending, the writer's too
    gate.open.set()
    writer.join(30)

    assert not writer.is_alive()
    assert reads["writer"] == 0
    assert mem.backends.store.pending_index() == []
    assert [h.record.text for h in mem.search("beach", user_id="u", k=1)] == [
        "Rex loves the beach."
    ]


def test_concurrent_adds_are_all_indexed_with_fewer_reads_than_writes(
    counted: tuple[Memory, Counter[str]],
) -> None:
    mem, reads = counted
    texts = [f"Turn {i}: the weather on day {i} was mild." for i in range(40)]
    reads.clear()
    with ThreadPoolExecutor(max_workers=8) as pool:
        added = list(pool.map(lambda t: mem.add(t, user_id="u", thread_id="t"), texts))
    assert len({r.id for r in added}) == len(texts)
    assert mem.backends.store.pending_index() == []
    assert mem.backends.index.count() == len(texts)
    assert sum(reads.values()) <= len(texts)
