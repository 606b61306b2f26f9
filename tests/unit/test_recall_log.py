"""The recall log: a search's recall counts and retrieval record, written behind in batches."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agentmem import Memory, Settings
from agentmem.embedders import Embedder
from agentmem.models import MemoryRecord, Scope
from agentmem.recall_log import RecallLog
from agentmem.stores import SQLiteStore, WriteBatch

ALICE = Scope(user_id="alice")
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "m.db") as s:
        s.apply(WriteBatch(inserts=[_record(i) for i in range(3)]))
        yield s


IDS = [str(uuid.UUID(int=i + 1)) for i in range(3)]


def _record(i: int) -> MemoryRecord:
    return MemoryRecord(id=IDS[i], scope=ALICE, text=f"memory {i}", created_at=T0)


def _counts(store: SQLiteStore) -> list[int]:
    by_id = {r.id: r.access_count for r in store.get_many(IDS)}
    return [by_id[i] for i in IDS]


def test_without_an_interval_each_count_is_written_at_once(store: SQLiteStore) -> None:
    log = RecallLog(store, flush_s=0)
    log.count_recalls(IDS[:2], T0)
    assert _counts(store) == [1, 1, 0] and log.pending == 0


def test_counts_wait_add_up_and_are_written_in_one_batch(store: SQLiteStore) -> None:
    log = RecallLog(store, flush_s=60)
    for minutes in (1, 2, 3):
        log.count_recalls([IDS[1], IDS[1], IDS[2]], T0 + timedelta(minutes=minutes))
    log.record_retrieval("r1", str(ALICE), IDS[1:], 5.0)
    assert _counts(store) == [0, 0, 0] and log.pending == 3  # two counts and one retrieval
    assert store.retrieval("r1") is None
    log.flush()
    assert _counts(store) == [0, 3, 3] and log.pending == 0  # a repeated id counts once
    assert store.get_many([IDS[1]])[0].last_accessed_at == T0 + timedelta(minutes=3)
    shown = store.retrieval("r1")
    assert shown is not None and shown.memory_ids == tuple(IDS[1:])
    log.close()


def test_the_writer_thread_writes_within_the_interval(store: SQLiteStore) -> None:
    log = RecallLog(store, flush_s=0.05)
    log.count_recalls([IDS[0]], T0)
    deadline = time.monotonic() + 10
    while log.pending and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _counts(store) == [1, 0, 0]
    log.close()


def test_close_writes_what_is_pending_and_later_counts_go_straight_through(
    store: SQLiteStore,
) -> None:
    log = RecallLog(store, flush_s=60)
    log.count_recalls([IDS[2]], T0)
    log.close()
    assert _counts(store) == [0, 0, 1]
    log.count_recalls([IDS[2]], T0)  # after close: written on the caller's thread
    assert _counts(store) == [0, 0, 2]


class _FailsOnce(SQLiteStore):
    failed = False

    def count_recalls(self, counts: Mapping[str, tuple[int, datetime]]) -> None:
        if not self.failed:
            self.failed = True
            raise OSError("disk full")
        super().count_recalls(counts)


def test_a_failed_batch_is_kept_for_the_next(tmp_path: Path) -> None:
    with _FailsOnce(tmp_path / "m.db") as store:
        store.apply(WriteBatch(inserts=[_record(0)]))
        log = RecallLog(store, flush_s=60)
        log.count_recalls([IDS[0]], T0)
        with pytest.raises(OSError):
            log.flush()
        log.count_recalls([IDS[0]], T0)
        log.flush()
        assert store.get_many([IDS[0]])[0].access_count == 2


def test_feedback_right_after_a_search_finds_its_retrieval(
    tmp_path: Path, embedder: Embedder
) -> None:
    """The retrieval record is still pending (a minute's interval) when feedback names it."""
    settings = Settings.load(home=tmp_path / "home", retrieval={"recall_flush_s": 60})
    with Memory(settings=settings, embedder=embedder) as mem:
        record = mem.add("Alice likes green tea.", user_id="alice")
        (hit,) = mem.search("green tea", user_id="alice", k=1)
        assert mem.backends.recalls.pending == 2
        assert hit.retrieval_id is not None
        assert mem.feedback(hit.retrieval_id, 1.0, user_id="alice").applied
        assert mem.get(record.id).access_count == 1  # the feedback wrote the batch
    with Memory(settings=settings, embedder=embedder) as mem:
        mem.search("green tea", user_id="alice", k=1)
    with Memory(settings=settings, embedder=embedder) as mem:  # closing wrote the count
        assert mem.get(record.id).access_count == 2
