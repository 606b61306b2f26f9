"""Run the consolidation stages for a scope, in order, under the scope's lock.

The same stage runner serves both paths:

- inline (:func:`run_inline`; ``agentmem consolidate --now``): one process, no broker;
- Celery (:mod:`agentmem_consolidation.tasks`): one task per stage, chained, each renewing the run's
  lock and writing its ledger row.

A stage that already completed in this run (a redelivered task after a crash) is skipped; a
stage that hits :class:`~agentmem.errors.BackendUnavailable` is retried with exponential
backoff; every outcome lands in the job ledger.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from agentmem.erasure import RETRAIN_PENDING
from agentmem.errors import AgentMemError, BackendUnavailable, ValidationError
from agentmem.models import Scope
from agentmem.semantic import is_pending
from agentmem.settings import ConsolidationSettings
from agentmem.stores import ForgetJournal, RecordStore
from agentmem_consolidation import ledger
from agentmem_consolidation.locks import scope_lock, wait_acquire
from agentmem_consolidation.stages import STAGES, RunContext, StageResult, gpu_available

if TYPE_CHECKING:
    from agentmem import Memory


class ScopeBusy(AgentMemError):
    """Another run holds the scope's lock (the second run is skipped)."""


@dataclass
class RunReport:
    """What one run did: its id, scope, and each stage's result (absent: skipped)."""

    run_id: str
    scope: Scope
    skipped: bool = False
    results: dict[str, StageResult] = field(default_factory=dict)
    duration_s: float = 0.0


def backoff(attempt: int, config: ConsolidationSettings) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): doubling, capped."""
    return float(min(config.retry_backoff_max_s, config.retry_backoff_s * 2 ** (attempt - 1)))


def execute_stage(
    mem: Memory,
    scope: Scope,
    run: RunContext,
    name: str,
    *,
    attempt: int = 1,
    last_attempt: bool = False,
) -> StageResult | None:
    """Run one stage with its ledger rows; None when this run already completed it.

    A stage that hits :class:`~agentmem.errors.BackendUnavailable` is recorded ``retrying``
    unless this is its ``last_attempt`` (no retry follows): then, as any other error,
    ``failed``."""
    if ledger.stage_done(mem, run.run_id, name):
        return None
    started = time.time()
    ledger.record(mem, run.run_id, name, scope, ledger.RUNNING, started_at=started, attempt=attempt)
    try:
        result = STAGES[name](mem, scope, run)
    except Exception as exc:
        retried = isinstance(exc, BackendUnavailable) and not last_attempt
        status = ledger.RETRYING if retried else ledger.FAILED
        # The store itself may be down: then the retry (or the next run) records it.
        with contextlib.suppress(AgentMemError):
            ledger.record(
                mem,
                run.run_id,
                name,
                scope,
                status,
                started_at=started,
                duration_s=time.time() - started,
                error=f"{type(exc).__name__}: {exc}",
                attempt=attempt,
            )
        raise
    ledger.record(
        mem,
        run.run_id,
        name,
        scope,
        ledger.DONE,
        count_in=result.count_in,
        count_out=result.count_out,
        started_at=started,
        duration_s=time.time() - started,
        attempt=attempt,
        note=result.note,
    )
    return result


def _stage_attempt(
    mem: Memory, scope: Scope, run: RunContext, name: str, attempt: int
) -> StageResult | None:
    last = attempt > run.config.max_retries  # what _with_retries gives up after
    return execute_stage(mem, scope, run, name, attempt=attempt, last_attempt=last)


def _with_retries(
    fn: Callable[[int], StageResult | None], config: ConsolidationSettings
) -> StageResult | None:
    attempt = 1
    while True:
        try:
            return fn(attempt)
        except BackendUnavailable:
            if attempt > config.max_retries:
                raise
            time.sleep(backoff(attempt, config))
            attempt += 1


def finish(mem: Memory, scope: Scope, run_id: str, started: float) -> None:
    """Close a run: its summary ledger row (the totals of every stage of the run done, those
    of an earlier attempt of a resumed run too), and the scope's last-run watermark (what the
    scheduler compares new activity with)."""
    listed = [
        r
        for r in ledger.jobs(mem, run_id=run_id, limit=1000)
        if r.stage != ledger.RUN_STAGE and r.status == ledger.DONE
    ]
    ledger.record(
        mem,
        run_id,
        ledger.RUN_STAGE,
        scope,
        ledger.DONE,
        count_in=sum(r.count_in for r in listed),
        count_out=sum(r.count_out for r in listed),
        started_at=started,
        duration_s=time.time() - started,
    )
    ledger.set_watermark(mem, scope, ledger.RUN_STAGE, f'{{"run_id": "{run_id}"}}')


def fail(mem: Memory, scope: Scope, run_id: str, started: float, error: str) -> None:
    """Close a run that did not complete: its summary row ``failed`` with ``error`` (no
    last-run watermark, so the scope stays due)."""
    ledger.record(
        mem,
        run_id,
        ledger.RUN_STAGE,
        scope,
        ledger.FAILED,
        started_at=started,
        duration_s=time.time() - started,
        error=error,
    )


def inline_trainer(mem: Memory) -> Callable[[Scope], None] | None:
    """Adapter training in this process (the inline path), when the ``gpu`` package exists."""
    if not gpu_available():
        return None

    def train(scope: Scope) -> None:
        from agentmem_gpu.recall_adapter_pipeline import train_scope_adapters

        train_scope_adapters(mem, scope)

    return train


def _check_run(scope: Any, stages: Any) -> list[str]:
    """The stages a run asks for (every stage by default), or ValidationError naming the
    unknown ones; the scope must be a Scope."""
    if not isinstance(scope, Scope):
        raise ValidationError(
            f"scope must be a Scope, got {type(scope).__name__}; e.g. Scope.of(user_id='alice')"
        )
    if stages is None:
        return list(STAGES)
    if isinstance(stages, str) or not isinstance(stages, Sequence) or not stages:
        raise ValidationError(f"stages is a non-empty list of stage names, got {stages!r}")
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValidationError(f"unknown stages {unknown}; the stages are: {', '.join(STAGES)}")
    return list(stages)


def run_inline(
    mem: Memory,
    scope: Scope,
    *,
    run_id: str | None = None,
    stages: Sequence[str] | None = None,
    on_stage: Callable[[str, StageResult | None], None] | None = None,
    train_adapter: Callable[[Scope], None] | None = None,
) -> RunReport:
    """Run the pipeline for ``scope`` in this process, no broker needed.

    Waits up to ``consolidation.lock_wait_s`` for another run of the same scope, then is
    skipped (``report.skipped``; a ``skipped`` ledger row). ``on_stage`` is called after each
    stage (a progress bar). Adapter training runs in-process when ``gpu`` is installed (pass
    ``train_adapter`` to send it elsewhere)."""
    config = mem.settings.consolidation
    run_id = run_id or ledger.new_run_id()
    names = _check_run(scope, stages)  # before the lock: a typo writes no failed ledger rows
    report = RunReport(run_id, scope)
    started = time.time()
    lock = scope_lock(mem, mem.settings, ledger.scope_key(scope))
    if not wait_acquire(lock, run_id, config.lock_wait_s):
        ledger.record(
            mem,
            run_id,
            ledger.RUN_STAGE,
            scope,
            ledger.SKIPPED,
            error=f"scope busy (run {lock.owner()})",
        )
        report.skipped = True
        return report
    # The run starts once it holds the lock; a resumed run keeps its first attempt's start.
    rows = ledger.jobs(mem, run_id=run_id, limit=1000)
    earlier = [r.started_at for r in rows if r.status != ledger.SKIPPED]
    started = min([time.time(), *earlier])
    ledger.record(mem, run_id, ledger.RUN_STAGE, scope, ledger.RUNNING, started_at=started)
    run = RunContext(run_id, config, train_adapter=train_adapter or inline_trainer(mem))
    try:
        for name in names:
            if not lock.acquire(run_id):  # renew; lost only if it expired and was taken
                raise ScopeBusy(f"run {run_id} lost the lock of {scope} to run {lock.owner()}")
            result = _with_retries(partial(_stage_attempt, mem, scope, run, name), config)
            if result is not None:
                report.results[name] = result
            if on_stage is not None:
                on_stage(name, result)
        finish(mem, scope, run_id, started)
    except Exception as exc:
        fail(mem, scope, run_id, started, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        lock.release(run_id)
    report.duration_s = time.time() - started
    return report


def consolidation_scope(scope: Scope) -> Scope:
    """The scope a record is consolidated in: its own without the thread (a user's or agent's
    threads are consolidated together), or the thread's when that is all it has."""
    fields = {k: v for k, v in scope.fields().items() if k != "thread_id"}
    return Scope.of(**fields) if fields else scope


def active_scopes(mem: Memory) -> list[Scope]:
    """Scopes with new activity since their last completed run: a record written or changed
    since then, or a live buffer thread. (A scan of the store: fine for an embedded home and
    moderate servers; at scale, keep the list of scopes elsewhere and pass them.)"""
    store = mem.backends.store
    last = {w.scope: w.updated_at for w in ledger.store_of(mem).watermarks(ledger.RUN_STAGE)}
    found: dict[str, Scope] = {}
    after: str | None = None
    while True:
        ids = store.all_ids(after=after, limit=1000)
        if not ids:
            break
        for r in store.get_many(ids):
            s = consolidation_scope(r.scope)
            key = ledger.scope_key(s)
            # An episode still waiting for extraction is activity whenever it was written:
            # one added while a run was under way, after its extract stage, predates the
            # run's watermark (the run's end) but was never read by it.
            newer = r.updated_at.timestamp() > last.get(key, 0.0)
            if key not in found and (is_pending(r) or newer):
                found[key] = s
        after = ids[-1]
    for thread in mem.buffers.ready().threads():
        s = consolidation_scope(ledger.scope_of(thread))
        found.setdefault(ledger.scope_key(s), s)
    for s in _awaiting_retrain(store):
        found.setdefault(ledger.scope_key(s), s)
    return [found[k] for k in sorted(found)]


def _awaiting_retrain(store: RecordStore) -> list[Scope]:
    """Scopes whose forgets tainted an adapter not yet retrained: their run's
    ``retrain_forgotten`` stage closes the forget and erases the probe texts it keeps, so
    they are due even when nothing new was written (a forgotten user writes nothing)."""
    if not isinstance(store, ForgetJournal):
        return []
    scopes: list[Scope] = []
    for job in store.forget_jobs(statuses=[RETRAIN_PENDING], limit=10_000):
        scopes += [consolidation_scope(s) for s in store.tombstoned(list(job.targets)).values()]
    return scopes


__all__ = [
    "RunReport",
    "ScopeBusy",
    "active_scopes",
    "backoff",
    "consolidation_scope",
    "execute_stage",
    "fail",
    "finish",
    "inline_trainer",
    "run_inline",
]
