"""Two Celery workers on one PostgreSQL + pgvector memory (the shared deployment).

Both workers (``celery -A agentmem_consolidation worker``, separate processes) open the same
store and
vector index; runs for two scopes are consolidated, and two runs sent for one scope never
interleave even when the two workers take them (the per-scope lock holds across processes).
Each scope ends with its facts extracted once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentmem import Memory, Scope, Settings
from agentmem.embedders import Embedder
from agentmem_consolidation.app import create_app
from agentmem_consolidation.tasks import consolidate
from tests.consolidation import workers

pytestmark = pytest.mark.slow


def _ledger(url: str, scope: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT run_id, stage, status, started_at, duration_s FROM consolidation_jobs "
            "WHERE scope = %s",
            (scope,),
        ).fetchall()


def _status(url: str, user: str, run_id: str) -> str | None:
    rows = _ledger(url, f"user_id={user}")
    return next((st for r, s, st, _, _ in rows if r == run_id and s == "run"), None)


def test_two_workers_consolidate_one_shared_store(
    tmp_path: Path,
    pgvector_url: str,
    module_redis: tuple[str, str],
    embedder: Embedder,
) -> None:
    redis_url, prefix = module_redis
    env = workers.env_for(
        tmp_path / "home",
        redis_url,
        AGENTMEM_STORE_URL=pgvector_url,
        AGENTMEM_VECTORS_URL=pgvector_url,
        AGENTMEM_CONSOLIDATION__LOCK_PREFIX=prefix,
        AGENTMEM_CONSOLIDATION__BROKER_TRANSPORT_OPTIONS=json.dumps({"global_keyprefix": prefix}),
        AGENTMEM_CONSOLIDATION__LOCK_WAIT_S="120",
    )
    settings = Settings.load(
        home=tmp_path / "home",
        store_url=pgvector_url,
        vectors_url=pgvector_url,
        consolidation=workers.client_settings(env),
    )
    users = ("ann", "ben")
    with Memory(settings=settings, embedder=embedder) as mem:
        for user in users:
            for i in range(3):
                mem.add(
                    f"{user.title()}: I adopted a cat named Tom{i}. "
                    f"My sister Jane{i} lives in Rome.",
                    user_id=user,
                    thread_id=f"t{i % 2}",
                    infer="deferred",
                )
    client = create_app(settings)
    log = tmp_path / "workers.log"
    args = workers.worker_args()
    with (
        workers.running([*args, "-n", "w1@%h"], env, log),
        workers.running([*args, "-n", "w2@%h"], env, log),
    ):
        runs = [
            (user, consolidate(Scope.of(user_id=user), celery_app=client)[0])
            for user in (*users, users[0])
        ]
        workers.wait(
            lambda: all(_status(pgvector_url, u, r) in ("done", "skipped") for u, r in runs),
            240,
            log,
            "every run to end",
        )
    assert {_status(pgvector_url, u, r) for u, r in runs} == {"done"}
    rows = _ledger(pgvector_url, f"user_id={users[0]}")
    spans = sorted(
        (
            min(start for r, _, _, start, _ in rows if r == run),
            max(start + d for r, _, _, start, d in rows if r == run),
        )
        for u, run in runs
        if u == users[0]
    )
    assert spans[0][1] <= spans[1][0], "two runs of one scope interleaved"
    assert "w1@" in log.read_text() and "w2@" in log.read_text()
    with Memory(settings=settings, embedder=embedder) as mem:
        for user in users:
            facts = [r.text for r in mem.list(user_id=user, kinds=["semantic"], limit=1000)]
            assert facts and len(facts) == len(set(facts)), user
            pending = mem.list(user_id=user, filters={"extraction": "pending"}, limit=10)
            assert not pending
