"""Consolidation runs started through the API: on the Celery workers when a broker is
configured (``consolidation.broker_url``), else one at a time in a background thread.

The pipeline may take minutes (adapter training), so a request only queues it and returns the
run id; the ledger tells how it goes. Sent to a broker, a run is durable there (workers ack it
late); run in the thread, the queue is drained on shutdown before the memory is closed, so an
accepted run is never cut off half-way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from agentmem.memory import Memory
from agentmem.models import Scope

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger("agentmem_server.jobs")


class ConsolidationJobs:
    """A one-thread queue of inline consolidation runs, remembering which key asked for each."""

    def __init__(self, memory: Memory, on_done: Callable[[str], None] | None = None) -> None:
        self._memory = memory
        self._on_done = on_done
        self._executor: ThreadPoolExecutor | None = None
        self._owners: dict[str, str] = {}
        self._lock = threading.Lock()
        self._celery_app: Celery | None = None

    def submit(
        self, run_id: str, key_id: str, scope: Scope, stages: Sequence[str] | None
    ) -> Future[None] | None:
        """Queue a run of the pipeline for ``scope`` under ``run_id``: sent to the broker's
        workers when one is configured (returns None), else to this process's thread."""
        with self._lock:
            self._owners[run_id] = key_id
        if self._memory.settings.consolidation.broker_url:
            from agentmem_consolidation import ledger
            from agentmem_consolidation.tasks import consolidate

            # The run names this server's store, so a worker on another store refuses it; it is
            # listed as queued until a worker starts it (failed if the broker refused it).
            ledger.record(self._memory, run_id, ledger.RUN_STAGE, scope, ledger.QUEUED)
            try:
                consolidate(
                    scope,
                    run_id=run_id,
                    stages=stages,
                    celery_app=self._celery(),
                    store=ledger.store_identity(self._memory.settings),
                )
            except Exception as exc:
                ledger.record(
                    self._memory,
                    run_id,
                    ledger.RUN_STAGE,
                    scope,
                    ledger.FAILED,
                    error=f"not queued: {exc}",
                )
                raise
            return None
        with self._lock:
            # Made on first use and again after a shutdown: an app's lifespan may be entered
            # more than once (test clients, schema fuzzers), and each start takes runs again.
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="consolidation"
                )
            return self._executor.submit(self._run, run_id, scope, stages)

    def _celery(self) -> Celery:
        """The Celery app of the server's settings (built once)."""
        with self._lock:
            if self._celery_app is None:
                from agentmem_consolidation.app import create_app

                self._celery_app = create_app(self._memory.settings)
            return self._celery_app

    def owns(self, run_id: str, key_id: str) -> bool:
        """Whether ``key_id`` started ``run_id`` (a queued run has no ledger rows yet)."""
        with self._lock:
            return self._owners.get(run_id) == key_id

    def _run(self, run_id: str, scope: Scope, stages: Sequence[str] | None) -> None:
        from agentmem_consolidation.pipeline import run_inline

        result = "failed"
        try:
            report = run_inline(self._memory, scope, run_id=run_id, stages=stages)
            result = "skipped" if report.skipped else "done"
        except Exception:  # recorded in the ledger by run_inline; logged here
            log.exception("consolidation run failed", extra={"run_id": run_id})
        finally:
            if self._on_done is not None:
                self._on_done(result)

    def shutdown(self) -> None:
        """Finish every queued run, then stop the worker thread (a later run starts a new one)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)


__all__ = ["ConsolidationJobs"]
