"""Consolidation on real Celery workers (subprocesses) over the real Redis broker: a beat
process triggers a run end to end, with the same store contents as the inline path; a worker
killed with SIGKILL mid-stage and restarted finishes the job with nothing duplicated or lost."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import consolidation
from agentmem import Memory, Scope, Settings
from agentmem.embedders import Embedder
from consolidation import run_inline
from consolidation.app import create_app
from consolidation.tasks import consolidate

ALICE = Scope.of(user_id="alice")
ROOT = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).with_name("celery"))


def _fill(home: Path, embedder: Embedder, n: int) -> None:
    with Memory(settings=Settings.load(home=home), embedder=embedder) as mem:
        for i in range(n):
            mem.add(
                f"Alice: I adopted a cat named Tom{i}. My sister Jane{i} lives in Rome.",
                user_id="alice",
                thread_id=f"t{i % 2}",
                infer="deferred",
            )


def _env(home: Path, redis_url: str, prefix: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "AGENTMEM_HOME": str(home),
        "AGENTMEM_CONSOLIDATION__BROKER_URL": redis_url,
        "AGENTMEM_CONSOLIDATION__LOCK_PREFIX": prefix,
        "AGENTMEM_CONSOLIDATION__BROKER_TRANSPORT_OPTIONS": json.dumps(
            {"global_keyprefix": prefix}
        ),
        "AGENTMEM_CONSOLIDATION__VISIBILITY_TIMEOUT_S": "2",
        "AGENTMEM_CONSOLIDATION__RETRY_BACKOFF_S": "0.2",
        "AGENTMEM_CONSOLIDATION__ADAPTER_MIN_NEW_EPISODES": "none",
        "AGENTMEM_EMBED_PRECISION": "fp32",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        **extra,
    }
    return env


@contextmanager
def _process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _worker(app: str, env: dict[str, str], log: Path, *extra: str) -> list[str]:
    return [
        CELERY, "-A", app, "worker", "--pool=solo", "-Q", "consolidation",
        "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info", *extra,
    ]  # fmt: skip


def _jobs(home: Path) -> list[tuple[str, str, str, int]]:
    db = home / "agentmem.db"
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(
            "SELECT run_id, stage, status, count_in FROM consolidation_jobs"
        ).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def _wait(cond: object, timeout: float, log: Path, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}; worker log:\n{log.read_text()[-4000:]}")


def _contents(home: Path, embedder: Embedder) -> Counter[tuple[str, str, str]]:
    """What the store holds, independent of ids: (kind, text, extraction status)."""
    with Memory(settings=Settings.load(home=home), embedder=embedder) as mem:
        records = mem.list(user_id="alice", kinds=["episodic", "semantic"], limit=10_000)
        return Counter((r.kind.value, r.text, str(r.metadata.get("extraction"))) for r in records)


def test_beat_triggers_worker_pipeline_same_as_inline(
    tmp_path: Path, embedder: Embedder, redis_url: str, redis_prefix: str
) -> None:
    celery_home, inline_home = tmp_path / "celery", tmp_path / "inline"
    for home in (celery_home, inline_home):
        _fill(home, embedder, 8)
    env = _env(celery_home, redis_url, redis_prefix, AGENTMEM_CONSOLIDATION__SCHEDULE_SECONDS="1")
    log = tmp_path / "worker.log"
    beat = [CELERY, "-A", "consolidation", "beat", "-s", str(tmp_path / "beat-schedule")]
    with (
        _process(_worker("consolidation", env, log), env, log),
        _process([*beat, "-l", "info"], env, tmp_path / "beat.log"),
    ):
        _wait(
            lambda: any(s == "run" and st == "done" for _, s, st, _ in _jobs(celery_home)),
            60,
            log,
            "a beat-triggered run to finish",
        )
    rows = _jobs(celery_home)
    done = {r for r, s, st, _ in rows if s == "run" and st == "done"}
    assert len(done) == 1
    stages = {s for r, s, st, _ in rows if r in done and st == "done"}
    assert stages == {"run", *consolidation.STAGES}
    with Memory(settings=Settings.load(home=inline_home), embedder=embedder) as mem:
        run_inline(mem, ALICE)
    celery_contents = _contents(celery_home, embedder)
    assert celery_contents == _contents(inline_home, embedder)
    assert any(kind == "semantic" for kind, _, _ in celery_contents)


def test_worker_killed_mid_stage_resumes_without_duplicates(
    tmp_path: Path, embedder: Embedder, redis_url: str, redis_prefix: str
) -> None:
    home, reference = tmp_path / "celery", tmp_path / "inline"
    for h in (home, reference):
        _fill(h, embedder, 12)
    env = _env(home, redis_url, redis_prefix)
    log = tmp_path / "worker.log"
    client = create_app(Settings.load(home=home, consolidation=_client_settings(env)))
    run_id, _ = consolidate(ALICE, celery_app=client)

    def extracting() -> bool:
        rows = _jobs(home)
        running = any(r == run_id and s == "extract" and st == "running" for r, s, st, _ in rows)
        if not running:
            return False
        conn = sqlite3.connect(f"file:{home / 'agentmem.db'}?mode=ro", uri=True, timeout=5)
        try:
            (done,) = conn.execute(
                "SELECT COUNT(*) FROM memories WHERE kind = 'episodic' "
                "AND json_extract(metadata, '$.extraction') = 'done'"
            ).fetchone()
        finally:
            conn.close()
        return bool(done >= 2)

    with _process(_worker("tests.consolidation.slow_app", env, log), env, log) as worker:
        _wait(extracting, 60, log, "the extract stage to be under way")
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    with _process(_worker("consolidation", env, log), env, log):
        _wait(
            lambda: any(r == run_id and s == "run" and st == "done" for r, s, st, _ in _jobs(home)),
            60,
            log,
            "the run to finish after the restart",
        )
    with Memory(settings=Settings.load(home=reference), embedder=embedder) as mem:
        run_inline(mem, ALICE)
    after_crash = _contents(home, embedder)
    assert after_crash == _contents(reference, embedder)
    facts = [text for kind, text, _ in after_crash.elements() if kind == "semantic"]
    assert facts and len(facts) == len(set(facts))
    assert all(status == "done" for kind, _, status in after_crash if kind == "episodic")


def _client_settings(env: dict[str, str]) -> dict[str, object]:
    return {
        "broker_url": env["AGENTMEM_CONSOLIDATION__BROKER_URL"],
        "broker_transport_options": json.loads(
            env["AGENTMEM_CONSOLIDATION__BROKER_TRANSPORT_OPTIONS"]
        ),
        "lock_prefix": env["AGENTMEM_CONSOLIDATION__LOCK_PREFIX"],
    }
