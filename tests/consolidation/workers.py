"""Real Celery worker and beat subprocesses for the consolidation tests, and read-only views of
the home they work on (the ledger straight from SQLite, so the test never holds the home while
a worker needs it)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from agentmem import Memory, Settings
from agentmem.embedders import Embedder
from agentmem.errors import HomeLocked

ROOT = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).with_name("celery"))


def fill(home: Path, embedder: Embedder, user: str, n: int) -> None:
    """``n`` episodes for ``user`` over two threads, waiting for deferred extraction."""
    with open_home(home, embedder) as mem:
        for i in range(n):
            mem.add(
                f"{user.title()}: I adopted a cat named Tom{i}. My sister Jane{i} lives in Rome.",
                user_id=user,
                thread_id=f"t{i % 2}",
                infer="deferred",
            )


@contextmanager
def open_home(home: Path, embedder: Embedder, wait_s: float = 60) -> Iterator[Memory]:
    """The home's Memory, waiting while a worker holds it for a task."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            mem = Memory(settings=Settings.load(home=home), embedder=embedder)
            break
        except HomeLocked:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with mem:
        yield mem


def env_for(home: Path, broker: str, **extra: str) -> dict[str, str]:
    """A worker's environment: this home, this broker, quick redelivery and retries."""
    return {
        **os.environ,
        "AGENTMEM_HOME": str(home),
        "AGENTMEM_CONSOLIDATION__BROKER_URL": broker,
        "AGENTMEM_CONSOLIDATION__VISIBILITY_TIMEOUT_S": "2",
        # a worker killed while it held kombu's restore mutex holds up redelivery this long
        "AGENTMEM_CONSOLIDATION__UNACKED_MUTEX_EXPIRE_S": "5",
        "AGENTMEM_CONSOLIDATION__RETRY_BACKOFF_S": "0.2",
        "AGENTMEM_CONSOLIDATION__ADAPTER_MIN_NEW_EPISODES": "none",
        "AGENTMEM_EMBED_PRECISION": "fp32",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        **extra,
    }


def client_settings(env: dict[str, str]) -> dict[str, object]:
    """The consolidation settings of a client that sends to the workers of ``env``."""
    out: dict[str, object] = {"broker_url": env["AGENTMEM_CONSOLIDATION__BROKER_URL"]}
    if "AGENTMEM_CONSOLIDATION__RESULT_BACKEND" in env:
        out["result_backend"] = env["AGENTMEM_CONSOLIDATION__RESULT_BACKEND"]
    if "AGENTMEM_CONSOLIDATION__LOCK_PREFIX" in env:
        out["lock_prefix"] = env["AGENTMEM_CONSOLIDATION__LOCK_PREFIX"]
    if "AGENTMEM_CONSOLIDATION__BROKER_TRANSPORT_OPTIONS" in env:
        out["broker_transport_options"] = json.loads(
            env["AGENTMEM_CONSOLIDATION__BROKER_TRANSPORT_OPTIONS"]
        )
    return out


def worker_args(app: str = "agentmem_consolidation") -> list[str]:
    """``celery -A APP worker`` as a deployment runs it, one process (the embedded home)."""
    return [
        CELERY, "-A", app, "worker", "--pool=solo", "-Q", "consolidation",
        "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info",
    ]  # fmt: skip


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A subprocess of this repository with its output appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    """Stop a subprocess started by :func:`start` (warm shutdown, then kill)."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def running(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """:func:`start` for the block, :func:`stop` after it."""
    proc = start(args, env, log)
    try:
        yield proc
    finally:
        stop(proc)


def query(home: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    """Rows of a read-only query on the home's SQLite store (empty before it exists)."""
    db = home / "agentmem.db"
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def jobs(home: Path, scope: str) -> list[tuple[str, str, str, float, float]]:
    """Ledger rows of a scope key: (run id, stage, status, started_at, duration_s)."""
    return query(  # type: ignore[return-value]
        home,
        "SELECT run_id, stage, status, started_at, duration_s FROM consolidation_jobs "
        "WHERE scope = ?",
        scope,
    )


def wait(cond: Callable[[], bool], timeout: float, log: Path, what: str) -> None:
    """Poll ``cond`` until it holds; fail with the worker log's tail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}; worker log:\n{log.read_text()[-4000:]}")


def contents(home: Path, embedder: Embedder, user: str) -> Counter[tuple[str, str, str, bool]]:
    """What the store holds for ``user``, independent of ids: (kind, text, extraction status,
    still valid)."""
    with open_home(home, embedder) as mem:
        records = mem.list(user_id=user, kinds=["episodic", "semantic"], limit=10_000)
        return Counter(
            (r.kind.value, r.text, str(r.metadata.get("extraction")), r.valid_to is None)
            for r in records
        )
