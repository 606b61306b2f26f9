"""A SQLite store on a full disk or a read-only file says so, and stays usable; a call racing
close() says the store is not open.

SQLite rolls a transaction back by itself on a full disk; a second ROLLBACK then raised
"cannot rollback - no transaction is active" over the real error. The disk is filled with
``PRAGMA max_page_count`` and the file made read-only by a read-only connection, so no root,
mount or real full disk is needed.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agentmem.errors import BackendUnavailable
from agentmem.models import MemoryRecord, Scope
from agentmem.stores import IndexOp, WriteBatch
from agentmem.stores.sqlite import SQLiteStore

T0 = datetime(2024, 5, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "agentmem.db")
    s.setup()
    yield s
    s.close()


def _batch(start: int, n: int, words: int = 1) -> WriteBatch:
    records = [
        MemoryRecord(
            id=f"00000000-0000-4000-8000-{i:012d}",
            scope=Scope(user_id="u"),
            text=f"memory {i} " + "filler " * words,
            created_at=T0,
            updated_at=T0,
        )
        for i in range(start, start + n)
    ]
    return WriteBatch(inserts=records, index=[(r.id, IndexOp.UPSERT) for r in records])


def test_a_full_disk_names_the_file_and_the_fix_and_writes_nothing(store: SQLiteStore) -> None:
    conn = store._require()
    store.apply(_batch(0, 1))
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count={pages}")  # no room for another page

    with pytest.raises(BackendUnavailable) as info:
        store.apply(_batch(1, 20, words=400))
    message = str(info.value)
    assert str(store.path) in message and "database or disk is full" in message
    assert "nothing was written" in message and "Free space" in message
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    # The path every other write takes:
    with pytest.raises(BackendUnavailable, match="disk is full"), store._transaction() as cur:
        cur.executemany(
            "INSERT INTO outbox (memory_id, op) VALUES (?, ?)", [("x" * 2000, "upsert")] * 50
        )

    assert store.counts().records == 1 and not conn.in_transaction
    conn.execute("PRAGMA max_page_count=1073741823")  # space freed: writes work again
    store.apply(_batch(1, 20, words=400))
    assert store.counts().records == 21


def test_a_read_only_file_names_the_file_and_the_fix(store: SQLiteStore) -> None:
    store.apply(_batch(0, 1))
    store.close()
    store._conn = sqlite3.connect(
        f"file:{store.path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
    )
    with pytest.raises(BackendUnavailable) as info:
        store.apply(_batch(1, 1))
    message = str(info.value)
    assert str(store.path) in message and "readonly database" in message
    assert "writable" in message and "nothing was written" in message
    with pytest.raises(BackendUnavailable, match="readonly"):
        store.ack_index([1])
    assert store.counts().records == 1  # reads still work


def test_a_faulty_statement_is_not_blamed_on_the_disk(store: SQLiteStore) -> None:
    with (
        pytest.raises(sqlite3.OperationalError, match="no such table"),
        store._transaction() as cur,
    ):
        cur.execute("INSERT INTO no_such_table VALUES (1)")
    assert not store._require().in_transaction


class _CloseFirstLock:
    """The store's lock, but the next acquire (armed) first lets another thread close the
    store: the scheduler running a concurrent ``Memory.close()`` right before a writer takes
    the lock."""

    def __init__(self, store: SQLiteStore) -> None:
        self.real, self.store, self.armed = threading.RLock(), store, False

    def __enter__(self) -> bool:
        if self.armed:
            self.armed = False
            closer = threading.Thread(target=self.store.close)
            closer.start()
            closer.join()
        return self.real.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.real.__exit__(*exc)


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.apply(_batch(10, 1)),
        lambda s: s.get_many(["00000000-0000-4000-8000-000000000000"]),
        lambda s: s.graph_drop(None),
    ],
    ids=["apply", "get_many", "transaction"],
)
def test_a_close_racing_a_call_gives_backend_unavailable(
    store: SQLiteStore, call: Callable[[SQLiteStore], object]
) -> None:
    """apply(), the id-batched reads and _transaction() took the connection before the lock:
    a close() in between left them on a closed connection, a raw sqlite3.ProgrammingError
    ("Cannot operate on a closed database"). Now they check under the lock."""
    store.apply(_batch(0, 1))
    lock = _CloseFirstLock(store)
    store._lock = lock  # type: ignore[assignment]
    lock.armed = True
    with pytest.raises(BackendUnavailable, match="is not open"):
        call(store)
