"""PostgreSQL + pgvector killed mid-batch: no acknowledged write is lost, the outbox replays.

A private pgvector server (its own data directory, so the session's server is not disturbed)
is killed with SIGKILL (postmaster and every backend) while a thread keeps adding batches, then
started again on the same data. Two layouts:

- ``same-server``: store and index in the one killed server (the usual deployment): every
  batch acknowledged before the kill is still there after the restart (WAL), and the index
  holds exactly the store's records once the memory writes again;
- ``store-elsewhere``: the store on the machine's PostgreSQL, the index on the killed server:
  batches keep committing to the store while the index is down (their calls raise
  BackendUnavailable after the commit), and after the restart the outbox applies all of them.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from agentmem import BackendUnavailable, Memory, Settings
from agentmem.embedders import Embedder
from tests.integration._scripts.support import CountingEmbedder
from tests.pgvector_server import PgVectorServer

pytestmark = pytest.mark.slow
T = TypeVar("T")


@pytest.fixture
def killable() -> Iterator[PgVectorServer]:
    """A pgvector server of this test's own."""
    parent = Path(tempfile.mkdtemp(prefix="agentmem-pgkill-"))
    try:
        with PgVectorServer(parent / "data") as server:
            yield server
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def _retry(call: Callable[[], T], seconds: float = 60) -> T:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except BackendUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.mark.parametrize("layout", ["same-server", "store-elsewhere"])
def test_killing_postgres_mid_batch_loses_no_acknowledged_write(
    layout: str,
    killable: PgVectorServer,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    embedder: Embedder,
) -> None:
    vectors_url = killable.fresh_url()
    store_url = vectors_url if layout == "same-server" else request.getfixturevalue("pg_url")
    memo = CountingEmbedder(embedder, remember_documents=True)
    texts = [f"note {n}: the shipment for order {n} left the warehouse" for n in range(400)]
    memo.prime(texts[:60])
    settings = Settings.load(
        home=tmp_path / "h", store_url=store_url, vectors_url=vectors_url, connect_timeout_s=2
    )
    acked: list[str] = []
    failures: list[str] = []
    stop = threading.Event()
    with Memory(settings=settings, embedder=memo) as mem:

        def write() -> None:
            n = 0
            while not stop.is_set() and n < 60:
                try:
                    records = mem.add_many(texts[n : n + 4], user_id="writer")
                    acked.extend(r.id for r in records)
                except BackendUnavailable as exc:
                    failures.append(str(exc))
                    return
                n += 4

        writer = threading.Thread(target=write)
        writer.start()
        deadline = time.monotonic() + 60
        while len(acked) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        killable.kill()  # mid-run: the writer is somewhere inside its next batch
        while not failures and writer.is_alive() and time.monotonic() < deadline + 30:
            time.sleep(0.01)
        stop.set()
        writer.join(60)
        assert failures, "the kill must have interrupted some writes"
        killable.start()
        # The next write (or the next open) applies the outbox, once the pools have
        # reconnected (they retry with a backoff of a few seconds).
        acked.extend(r.id for r in _retry(lambda: mem.add_many(["after"], user_id="writer")))
        stats = mem.stats()
        stored = {r.id for r in mem.list(user_id="writer", limit=10_000)}
        assert stats.pending_index == 0
        assert stats.indexed_vectors == stats.records == len(stored)
        lost = [i for i in acked if i not in stored]
        assert not lost, f"{len(lost)} acknowledged writes lost"
        if layout == "store-elsewhere":
            # Batches committed while the index was down were not acknowledged, yet they are
            # stored and, through the outbox, indexed.
            assert len(stored) > len(acked)
        hits = mem.search(texts[2], user_id="writer", k=3)
        assert hits and hits[0].record.text == texts[2]
