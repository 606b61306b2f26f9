"""Consolidation on real Celery workers (subprocesses) over the real Redis broker.

The module shares one home, one key prefix and one worker
(``celery -A agentmem_consolidation worker``);
each test works on its own user. A worker killed with SIGKILL in the middle of a stage and
restarted finishes the job with nothing duplicated or lost; two runs sent for one scope never
interleave; a beat process on a one-second schedule triggers a run; and the store ends as the
inline path leaves it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from celery import Celery

import agentmem_consolidation
from agentmem import Scope, Settings
from agentmem.embedders import Embedder
from agentmem_consolidation import run_inline
from agentmem_consolidation.app import create_app
from agentmem_consolidation.tasks import consolidate
from tests.consolidation import workers


@dataclass
class Cluster:
    """The module's home, its broker settings, and its (restartable) worker."""

    root: Path
    env: dict[str, str]
    client: Celery
    worker: subprocess.Popen[bytes] | None = field(default=None)

    @property
    def home(self) -> Path:
        return self.root / "celery"

    @property
    def log(self) -> Path:
        return self.root / "worker.log"

    def ensure_worker(self) -> None:
        """Start the worker unless it runs."""
        if self.worker is None or self.worker.poll() is not None:
            self.worker = workers.start(workers.worker_args(), self.env, self.log)

    def stop_worker(self) -> None:
        workers.stop(self.worker)
        self.worker = None

    def run_status(self, user: str, run_id: str) -> str | None:
        rows = workers.jobs(self.home, f"user_id={user}")
        return next((st for r, s, st, _, _ in rows if r == run_id and s == "run"), None)


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, module_redis: tuple[str, str]
) -> Iterator[Cluster]:
    redis_url, prefix = module_redis
    root = tmp_path_factory.mktemp("celery")
    env = workers.env_for(
        root / "celery",
        redis_url,
        AGENTMEM_CONSOLIDATION__LOCK_PREFIX=prefix,
        # kombu (5.7) scans for unacknowledged messages to restore on only every tenth 10 s
        # tick (unacked_restore_throttle): a scan that meets the killed worker's restore mutex
        # would put the redelivery ~100 s off; here every tick scans.
        AGENTMEM_CONSOLIDATION__BROKER_TRANSPORT_OPTIONS=json.dumps(
            {"global_keyprefix": prefix, "unacked_restore_throttle": 1}
        ),
        AGENTMEM_CONSOLIDATION__LOCK_WAIT_S="60",  # a second run waits for the first
    )
    settings = Settings.load(home=root / "celery", consolidation=workers.client_settings(env))
    found = Cluster(root, env, create_app(settings))
    try:
        yield found
    finally:
        found.stop_worker()


def _reference(tmp_path: Path, embedder: Embedder, user: str, n: int) -> Path:
    """The same input consolidated inline, in its own home."""
    home = tmp_path / "inline"
    workers.fill(home, embedder, user, n)
    with workers.open_home(home, embedder) as mem:
        run_inline(mem, Scope.of(user_id=user))
    return home


def test_worker_killed_mid_stage_resumes_without_duplicates(
    cluster: Cluster, embedder: Embedder, tmp_path: Path
) -> None:
    user, key = "crash", "user_id=crash"
    workers.fill(cluster.home, embedder, user, 4)
    cluster.stop_worker()  # the slow worker below must be the one that takes the run
    run_id, _ = consolidate(Scope.of(user_id=user), celery_app=cluster.client)

    def extracting() -> bool:
        rows = workers.jobs(cluster.home, key)
        if not any(r == run_id and s == "extract" and st == "running" for r, s, st, _, _ in rows):
            return False
        ((done,),) = workers.query(
            cluster.home,
            "SELECT COUNT(*) FROM memories WHERE user_id = ? AND kind = 'episodic' "
            "AND json_extract(metadata, '$.extraction') = 'done'",
            user,
        )
        return bool(done >= 2)  # type: ignore[operator]

    slow = workers.start(
        workers.worker_args("tests.consolidation.slow_app"), cluster.env, cluster.log
    )
    try:
        workers.wait(extracting, 90, cluster.log, "the extract stage to be under way")
        os.kill(slow.pid, signal.SIGKILL)
        slow.wait()
    finally:
        workers.stop(slow)
    cluster.ensure_worker()  # the restart: the redelivered stage resumes the run
    workers.wait(
        lambda: cluster.run_status(user, run_id) == "done",
        # kombu restores the killed worker's unacked message under a mutex that, if the kill
        # landed while it was held, expires after unacked_mutex_expire (5 s here, from
        # consolidation.unacked_mutex_expire_s; kombu's own default is 300 s)
        90,
        cluster.log,
        "the run to finish after the restart",
    )
    stages = [(s, st) for r, s, st, _, _ in workers.jobs(cluster.home, key) if r == run_id]
    assert sorted(stages) == sorted((s, "done") for s in ("run", *agentmem_consolidation.STAGES))
    ((resumed,),) = workers.query(
        cluster.home,
        "SELECT count_in FROM consolidation_jobs WHERE run_id = ? AND stage = 'extract'",
        run_id,
    )
    assert isinstance(resumed, int) and 1 <= resumed <= 2  # only the episodes left undone
    after_crash = workers.contents(cluster.home, embedder, user)
    assert after_crash == workers.contents(_reference(tmp_path, embedder, user, 4), embedder, user)
    facts = [text for kind, text, _, _ in after_crash.elements() if kind == "semantic"]
    assert facts and len(facts) == len(set(facts))  # nothing duplicated
    episodes = [st for kind, _, st, _ in after_crash.elements() if kind == "episodic"]
    assert episodes == ["done"] * 4  # nothing lost


def test_two_runs_for_one_scope_never_interleave(cluster: Cluster, embedder: Embedder) -> None:
    user, key = "pair", "user_id=pair"
    workers.fill(cluster.home, embedder, user, 4)
    cluster.ensure_worker()
    first, _ = consolidate(Scope.of(user_id=user), celery_app=cluster.client)
    second, _ = consolidate(Scope.of(user_id=user), celery_app=cluster.client)
    workers.wait(
        lambda: all(cluster.run_status(user, r) in ("done", "skipped") for r in (first, second)),
        90,
        cluster.log,
        "both runs to end",
    )
    rows = workers.jobs(cluster.home, key)
    spans = {
        run: (
            min(start for r, _, _, start, _ in rows if r == run),
            max(start + d for r, _, _, start, d in rows if r == run),
        )
        for run in (first, second)
    }
    # The second waited for the lock (lock_wait_s) and started after the first ended.
    assert {cluster.run_status(user, r) for r in (first, second)} == {"done"}
    (_, first_end), (second_start, _) = sorted(spans.values())
    assert first_end <= second_start
    facts = [
        t
        for kind, t, _, _ in workers.contents(cluster.home, embedder, user).elements()
        if kind == "semantic"
    ]
    assert facts and len(facts) == len(set(facts))


def test_beat_triggers_worker_pipeline_same_as_inline(
    cluster: Cluster, embedder: Embedder, tmp_path: Path
) -> None:
    user, key = "beat", "user_id=beat"
    workers.fill(cluster.home, embedder, user, 4)
    cluster.ensure_worker()
    env = {**cluster.env, "AGENTMEM_CONSOLIDATION__SCHEDULE_SECONDS": "1"}
    beat = [
        workers.CELERY, "-A", "agentmem_consolidation", "beat", "-s", str(tmp_path / "schedule")
    ]  # fmt: skip
    with workers.running([*beat, "-l", "info"], env, tmp_path / "beat.log"):
        workers.wait(
            lambda: any(
                s == "run" and st == "done" for _, s, st, _, _ in workers.jobs(cluster.home, key)
            ),
            90,
            cluster.log,
            "a beat-triggered run to finish",
        )
    rows = workers.jobs(cluster.home, key)
    done = [r for r, s, st, _, _ in sorted(rows, key=lambda x: x[3]) if s == "run" and st == "done"]
    assert {s for r, s, st, _, _ in rows if r == done[0] and st == "done"} == {
        "run",
        *agentmem_consolidation.STAGES,
    }
    celery_contents = workers.contents(cluster.home, embedder, user)
    assert celery_contents == workers.contents(
        _reference(tmp_path, embedder, user, 4), embedder, user
    )
    assert any(kind == "semantic" for kind, _, _, _ in celery_contents)
