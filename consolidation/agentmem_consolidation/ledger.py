"""The job ledger: one row per stage of each consolidation run, kept in the system of record.

Rows live in the store's ``consolidation_jobs`` table (SQLite or PostgreSQL), so the ledger is
as durable as the memories it describes and is read the same way whichever process wrote it::

    from agentmem_consolidation import ledger
    for row in ledger.jobs(mem, scope=Scope.of(user_id="alice")):
        print(row.run_id, row.stage, row.status, row.count_in, row.count_out, row.duration_s)

``agentmem jobs`` prints the same rows as a table.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from agentmem.buffers import scope_from_thread_key, thread_key
from agentmem.models import Scope
from agentmem.stores import JobLedger, require
from agentmem.stores._jobs_sql import JobRow, Watermark

if TYPE_CHECKING:
    from agentmem import Memory
    from agentmem.settings import Settings

RUNNING, DONE, FAILED, RETRYING, SKIPPED = "running", "done", "failed", "retrying", "skipped"
"""Statuses a ledger row takes."""
QUEUED = "queued"
"""The run row of a run sent to the workers that none has started yet."""
RUN_STAGE = "run"
"""The stage name of the row that sums up a whole run (its status and total duration)."""


def new_run_id() -> str:
    """A fresh run id."""
    return str(uuid.uuid4())


def scope_key(scope: Scope) -> str:
    """The stable, reversible key of a scope used in the ledger and locks (``user_id=alice``)."""
    return thread_key(scope)


def scope_of(key: str) -> Scope:
    """The scope a :func:`scope_key` names."""
    return scope_from_thread_key(key)


def record(
    mem: Memory,
    run_id: str,
    stage: str,
    scope: Scope,
    status: str,
    *,
    count_in: int = 0,
    count_out: int = 0,
    started_at: float | None = None,
    duration_s: float = 0.0,
    error: str | None = None,
    attempt: int = 1,
    note: str = "",
) -> JobRow:
    """Write (insert or replace) the ledger row of ``(run_id, stage)`` and return it."""
    row = JobRow(
        run_id=run_id,
        stage=stage,
        scope=scope_key(scope),
        status=status,
        count_in=count_in,
        count_out=count_out,
        started_at=time.time() if started_at is None else started_at,
        duration_s=duration_s,
        error=None if error is None else error[:2000],
        attempt=attempt,
        note=note[:4000],
    )
    store_of(mem).job_write(row)
    return row


def jobs(
    mem: Memory, *, scope: Scope | None = None, run_id: str | None = None, limit: int = 100
) -> list[JobRow]:
    """Ledger rows, newest first: every scope's, or one scope's, or one run's."""
    return store_of(mem).job_rows(
        scope=None if scope is None else scope_key(scope), run_id=run_id, limit=limit
    )


def stage_done(mem: Memory, run_id: str, stage: str) -> bool:
    """Whether ``stage`` of run ``run_id`` already completed (a redelivered task skips it)."""
    return any(
        r.stage == stage and r.status in (DONE, SKIPPED)
        for r in store_of(mem).job_rows(run_id=run_id, limit=1000)
    )


def watermark(mem: Memory, scope: Scope, stage: str) -> Watermark | None:
    """How far ``stage`` got for ``scope`` (None before its first completed run)."""
    return store_of(mem).watermark(scope_key(scope), stage)


def set_watermark(mem: Memory, scope: Scope, stage: str, value: str) -> None:
    """Record how far ``stage`` got for ``scope`` (a JSON value the stage defines)."""
    store_of(mem).set_watermark(scope_key(scope), stage, value)


def store_identity(settings: Settings) -> str:
    """Which system of record ``settings`` name, as a URL without credentials or options:
    ``sqlite:////abs/path/agentmem.db`` for an embedded home, ``postgresql://host:5432/db``
    for a server. A queued run carries its producer's, and a worker runs it only on the same
    store (:func:`agentmem_consolidation.tasks.start_run`)."""
    return normal_store_url(settings.resolved_store_url())


def normal_store_url(url: str) -> str:
    """``url`` reduced to what names the store: the absolute path of a SQLite file; the
    scheme, host, port and database of a server (no user, password or query)."""
    if url.startswith("sqlite:///"):
        return f"sqlite:///{Path(url[len('sqlite:///') :]).resolve()}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = "postgresql" if parts.scheme in ("postgres", "postgresql") else parts.scheme
    if scheme == "postgresql" and port is None:
        port = 5432
    host = (parts.hostname or "").lower()
    return f"{scheme}://{host}{'' if port is None else f':{port}'}{parts.path}"


def store_of(mem: Memory) -> JobLedger:
    """The store's job ledger (watermarks and leases too); a store without one is refused."""
    return require(mem.backends.store, JobLedger, "consolidation")


__all__ = [
    "DONE",
    "FAILED",
    "QUEUED",
    "RETRYING",
    "RUNNING",
    "RUN_STAGE",
    "SKIPPED",
    "JobRow",
    "Watermark",
    "jobs",
    "new_run_id",
    "normal_store_url",
    "record",
    "scope_key",
    "scope_of",
    "set_watermark",
    "stage_done",
    "store_identity",
    "store_of",
    "watermark",
]
