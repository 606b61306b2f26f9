"""What one ``add`` costs the PostgreSQL store: under load the server's Python interpreter is
the bottleneck, and every pool checkout, statement and pipeline is paid while holding the GIL
(issue 24). An add checks out one connection for its cache read, one for its write (the
neighbour read and the insert, one statement) and one for its outbox pass; the outbox pass
reads neighbours in one statement and acknowledges in one simple query, whose asynchronous
commit leaves the connection's own setting alone."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from agentmem import Memory, Settings
from agentmem.embedders import Embedder
from agentmem.errors import Conflict
from agentmem.models import MemoryRecord, Scope
from agentmem.stores import IndexOp, WriteBatch
from agentmem.stores.postgres import PostgresStore

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_mem(pg_url: str, tmp_path: Path, embedder: Embedder) -> Iterator[Memory]:
    """A Memory on PostgreSQL (records) and the embedded index."""
    settings = Settings.load(store_url=pg_url, home=tmp_path / "home")
    with Memory(settings=settings, embedder=embedder) as mem:
        yield mem


def counting(monkeypatch: pytest.MonkeyPatch, store: PostgresStore) -> Counter[str]:
    """Count this thread's pool checkouts and statements sent from now on."""
    counts: Counter[str] = Counter()
    me = threading.get_ident()
    pool = store._pool
    assert pool is not None
    getconn = pool.getconn

    def counted_getconn(*args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() == me:
            counts["checkouts"] += 1
        return getconn(*args, **kwargs)

    monkeypatch.setattr(pool, "getconn", counted_getconn)
    for name in ("execute", "executemany"):
        method = getattr(psycopg.Cursor, name)

        def counted(self: Any, *args: Any, _method: Any = method, **kwargs: Any) -> Any:
            if threading.get_ident() == me:
                counts["statements"] += 1
            return _method(self, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, name, counted)
    return counts


def test_an_add_checks_out_three_connections_and_sends_eight_statements(
    pg_mem: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    scope = Scope(user_id="alice", thread_id="main")
    for n in range(3):  # a neighbour before the next add, whose window it refreshes
        pg_mem.add(f"turn number {n} about the cello", scope=scope)
    store = pg_mem.backends.store
    assert isinstance(store, PostgresStore)
    counts = counting(monkeypatch, store)
    added = pg_mem.add("and one more turn about the river", scope=scope)
    # cache read; neighbour read + insert; outbox read, records, neighbours, cache read, ack
    assert dict(counts) == {"checkouts": 3, "statements": 8}
    assert pg_mem.stats().pending_index == 0
    assert pg_mem.search("the river", k=1, scope=scope)[0].record.id == added.id


def test_pinned_serves_a_thread_from_one_connection_and_hands_it_back(pg_url: str) -> None:
    store = PostgresStore(pg_url, pool_min=2, pool_max=2)
    store.setup()
    try:

        def pid() -> int:
            with store._cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                row = cur.fetchone()
                assert row is not None
                return int(row[0])

        seen: list[int] = []
        with store.pinned():
            first = pid()
            with store.pinned():  # nested: the same connection
                assert pid() == first
            other = threading.Thread(target=lambda: seen.append(pid()))
            other.start()
            other.join()
            assert seen[0] != first  # another thread checks out its own
            assert pid() == first
        assert store._pool is not None
        held = [store._pool.getconn(timeout=2) for _ in range(2)]  # both back in the pool
        for conn in held:
            store._pool.putconn(conn)
        # A failure inside the block rolls back and hands the connection back usable.
        with pytest.raises(Conflict), store.pinned():
            r = MemoryRecord(scope=Scope(user_id="a"), text="x", content_hash="h")
            store.apply(WriteBatch(inserts=[r, r]))
        assert store.get_many([r.id]) == []
        with store.pinned():
            assert store.pending_index() == []
    finally:
        store.close()


def test_an_ack_commits_without_waiting_for_the_disk_and_only_that_ack(pg_url: str) -> None:
    store = PostgresStore(pg_url, pool_min=1, pool_max=1)
    store.setup()
    try:
        r = MemoryRecord(scope=Scope(user_id="a"), text="x", content_hash="h")
        store.apply(WriteBatch(inserts=[r], index=[(r.id, IndexOp.UPSERT)]))
        with store.pinned():
            store.ack_index([item.seq for item in store.pending_index()])
            with store._cursor() as cur:
                # SET LOCAL ended with the ack's transaction: later writes wait for the disk.
                cur.execute("SHOW synchronous_commit")
                assert cur.fetchone() == ("on",)
                assert cur.connection.info.transaction_status == 0  # idle, nothing left open
        assert store.pending_index() == []
    finally:
        store.close()
