"""The end-to-end forget test on PostgreSQL (store, history, graph, ledger) + Redis (live
buffers, Celery broker, locks) + a real Celery worker running consolidation: after a user is
forgotten, no search, graph query, context, export or history returns the forgotten text, and a
consolidation run afterwards brings nothing back. (Forgetting racing a run is tested on the
embedded default, tests/security/test_forget.py: a worker holds the embedded vector index's home
while it runs a task, so this stack serialises the two.)"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from agentmem import Scope, Settings
from agentmem.embedders import Embedder
from agentmem_consolidation import run_inline
from agentmem_consolidation.app import create_app
from agentmem_consolidation.tasks import consolidate
from tests.consolidation import workers
from tests.security._checks import FORGOTTEN, KEPT, assert_forgotten, leaks

ALICE = Scope(user_id="alice")


@pytest.fixture
def stack(
    tmp_path: Path,
    pg_url: str,
    redis_url: str,
    redis_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, str]]:
    """The environment of this test and of its worker: PostgreSQL store, Redis buffers and
    broker under a fresh key prefix."""
    env = workers.env_for(
        tmp_path / "home",
        redis_url,
        AGENTMEM_STORE_URL=pg_url,
        AGENTMEM_BUFFER_URL=redis_url,
        AGENTMEM_BUFFER__KEY_PREFIX=f"{redis_prefix}buf:",
        AGENTMEM_CONSOLIDATION__LOCK_PREFIX=redis_prefix,
        AGENTMEM_CONSOLIDATION__BROKER_TRANSPORT_OPTIONS=json.dumps(
            {"global_keyprefix": redis_prefix}
        ),
    )
    for name, value in env.items():
        if name.startswith("AGENTMEM_"):
            monkeypatch.setenv(name, value)
    yield env


def _run_status(pg_url: str, run_id: str) -> str | None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        try:
            row = conn.execute(
                "SELECT status FROM consolidation_jobs WHERE run_id = %s AND stage = 'run'",
                (run_id,),
            ).fetchone()
        except psycopg.errors.UndefinedTable:
            return None
    return None if row is None else str(row[0])


def _consolidate_on_worker(env: dict[str, str], pg_url: str, log: Path) -> None:
    client = create_app(
        Settings.load(home=Path(env["AGENTMEM_HOME"]), consolidation=workers.client_settings(env))
    )
    run_id, _ = consolidate(ALICE, celery_app=client)
    workers.wait(
        lambda: _run_status(pg_url, run_id) in ("done", "failed"),
        120,
        log,
        "the consolidation run on the worker",
    )
    assert _run_status(pg_url, run_id) == "done", log.read_text()[-4000:]


def test_forget_a_user_on_postgres_redis_and_celery(
    stack: dict[str, str], pg_url: str, embedder: Embedder, tmp_path: Path
) -> None:
    home = Path(stack["AGENTMEM_HOME"])
    log = tmp_path / "worker.log"
    with workers.open_home(home, embedder) as mem:
        assert mem.backends.store.url.startswith("postgresql")
        mem.add(FORGOTTEN, user_id="alice", infer="deferred")
        mem.add_many(KEPT, user_id="alice", infer="deferred")
        mem.add("Bob keeps bees on his roof.", user_id="bob")
        mem.buffer(user_id="alice", thread_id="t1").append("user", "Rex the beagle barked.")
    with workers.running(workers.worker_args(), stack, log):
        _consolidate_on_worker(stack, pg_url, log)  # facts, graph, flushed buffer
        with workers.open_home(home, embedder) as mem:
            facts = mem.list(user_id="alice", kinds=["semantic"])
            assert any(leaks(f.text) for f in facts), "the worker extracted the facts"
            assert any(leaks(r.text) for r in mem.list(user_id="alice", limit=1000))
            live = mem.buffer(user_id="alice", thread_id="t2")
            live.append("user", "The Denver shelter called about Rex.")  # live in Redis
            started = time.perf_counter()
            report = mem.forget(reason="account closed", user_id="alice")
            took = time.perf_counter() - started
            assert report.status == "done" and took < 60
            assert report.removed["buffer_turns"] >= 1
            assert report.removed["records"] == len(report.forgotten_ids)
            assert_forgotten(mem, ALICE, report.forgotten_ids)
            assert mem.buffer(user_id="alice", thread_id="t2").messages() == []
            run_inline(mem, ALICE)  # a later run (same stages, in process) resurrects nothing
    with workers.open_home(home, embedder) as mem:
        assert mem.list(user_id="alice", limit=1000) == []
        assert_forgotten(mem, ALICE, report.forgotten_ids)
        assert [r.text for r in mem.list(user_id="bob")] == ["Bob keeps bees on his roof."]
        rows = mem.backends.store.job_rows(run_id=report.forget_id)
        assert rows[0].stage == "forget" and not leaks(rows[0].note)
