"""Consolidation's bookkeeping tables in the relational stores (SQLite and PostgreSQL).

Three small tables, written by the ``agentmem_consolidation`` package and read by ``agentmem jobs``:

- ``consolidation_jobs``: the job ledger, one row per (run, stage): scope, status, counts in
  and out, start, duration and error. A stage rerun after a crash rewrites its own row.
- ``consolidation_watermarks``: per scope and stage, how far the stage got (a JSON value the
  stage defines) and when; a rerun starts from there, so it neither repeats nor skips work.
- ``consolidation_locks``: named leases with an owner and an expiry (compare-and-set), the
  per-scope lock when no Redis is configured.

The SQL is written once here against the DB-API cursor both engines provide (the same
``ON CONFLICT`` upserts run on SQLite 3.24+ and PostgreSQL); each store supplies the
placeholder, its column types and its transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agentmem.stores._sql import Cursor


@dataclass(frozen=True, slots=True)
class JobRow:
    """One stage of one consolidation run, as the ledger keeps it."""

    run_id: str
    stage: str
    scope: str
    """The scope key (``user_id=alice``), see :func:`agentmem.buffers.thread_key`."""
    status: str
    """``running``, ``done``, ``failed``, ``retrying`` or ``skipped``."""
    count_in: int = 0
    count_out: int = 0
    started_at: float = 0.0
    """Epoch seconds."""
    duration_s: float = 0.0
    error: str | None = None
    attempt: int = 1
    note: str = ""
    """What the stage reports beyond its counts (e.g. each utility change and its evidence)."""


@dataclass(frozen=True, slots=True)
class Watermark:
    """How far one stage got for one scope: a JSON value the stage defines, and when."""

    scope: str
    stage: str
    value: str
    updated_at: float


JOB_COLUMNS: tuple[str, ...] = (
    "run_id",
    "stage",
    "scope",
    "status",
    "count_in",
    "count_out",
    "started_at",
    "duration_s",
    "error",
    "attempt",
    "note",
)


def _sql(statement: str, placeholder: str) -> str:
    return statement.replace("?", placeholder)


def write_job(cur: Cursor, placeholder: str, row: JobRow) -> None:
    """Insert or replace the ledger row of ``(row.run_id, row.stage)``."""
    cols = ", ".join(JOB_COLUMNS)
    marks = ", ".join("?" for _ in JOB_COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in JOB_COLUMNS[2:])
    cur.execute(
        _sql(
            f"INSERT INTO consolidation_jobs ({cols}) VALUES ({marks}) "
            f"ON CONFLICT (run_id, stage) DO UPDATE SET {updates}",
            placeholder,
        ),
        [getattr(row, c) for c in JOB_COLUMNS],
    )


def read_jobs(
    cur: Cursor,
    placeholder: str,
    *,
    scope: str | None = None,
    run_id: str | None = None,
    limit: int = 100,
) -> list[JobRow]:
    """Ledger rows, newest first (by start), optionally for one scope or one run."""
    where: list[str] = []
    params: list[Any] = []
    if scope is not None:
        where.append("scope = ?")
        params.append(scope)
    if run_id is not None:
        where.append("run_id = ?")
        params.append(run_id)
    clause = f"WHERE {' AND '.join(where)} " if where else ""
    cur.execute(
        _sql(
            f"SELECT {', '.join(JOB_COLUMNS)} FROM consolidation_jobs {clause}"
            "ORDER BY started_at DESC, run_id, stage LIMIT ?",
            placeholder,
        ),
        [*params, limit],
    )
    return [JobRow(*row) for row in cur.fetchall()]


def read_watermark(cur: Cursor, placeholder: str, scope: str, stage: str) -> Watermark | None:
    """The watermark of one stage of one scope, or None before its first completed run."""
    cur.execute(
        _sql(
            "SELECT scope, stage, value, updated_at FROM consolidation_watermarks "
            "WHERE scope = ? AND stage = ?",
            placeholder,
        ),
        [scope, stage],
    )
    row = cur.fetchone()
    return None if row is None else Watermark(*row)


def read_watermarks(cur: Cursor, placeholder: str, stage: str) -> list[Watermark]:
    """The watermarks of one stage, for every scope."""
    cur.execute(
        _sql(
            "SELECT scope, stage, value, updated_at FROM consolidation_watermarks "
            "WHERE stage = ? ORDER BY scope",
            placeholder,
        ),
        [stage],
    )
    return [Watermark(*row) for row in cur.fetchall()]


def write_watermark(
    cur: Cursor, placeholder: str, scope: str, stage: str, value: str, at: float
) -> None:
    """Set the watermark of one stage of one scope."""
    cur.execute(
        _sql(
            "INSERT INTO consolidation_watermarks (scope, stage, value, updated_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (scope, stage) DO UPDATE SET "
            "value = excluded.value, updated_at = excluded.updated_at",
            placeholder,
        ),
        [scope, stage, value, at],
    )


def acquire_lock(
    cur: Cursor, placeholder: str, name: str, owner: str, now: float, ttl_s: float
) -> bool:
    """Take (or renew, for the same owner) the lease ``name`` until ``now + ttl_s``; False
    when another owner holds an unexpired lease. One statement: atomic on both engines."""
    cur.execute(
        _sql(
            "INSERT INTO consolidation_locks (name, owner, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
            "expires_at = excluded.expires_at "
            "WHERE consolidation_locks.owner = excluded.owner "
            "OR consolidation_locks.expires_at < ?",
            placeholder,
        ),
        [name, owner, now + ttl_s, now],
    )
    return bool(cur.rowcount == 1)


def release_lock(cur: Cursor, placeholder: str, name: str, owner: str) -> bool:
    """Drop the lease ``name`` if ``owner`` holds it; True when it did."""
    cur.execute(
        _sql("DELETE FROM consolidation_locks WHERE name = ? AND owner = ?", placeholder),
        [name, owner],
    )
    return bool(cur.rowcount == 1)


def lock_owner(cur: Cursor, placeholder: str, name: str, now: float) -> str | None:
    """Who holds the unexpired lease ``name`` (None: nobody)."""
    cur.execute(
        _sql(
            "SELECT owner FROM consolidation_locks WHERE name = ? AND expires_at >= ?",
            placeholder,
        ),
        [name, now],
    )
    row = cur.fetchone()
    return None if row is None else str(row[0])


def count_recalls(cur: Cursor, placeholder: str, counts: Mapping[str, tuple[int, float]]) -> None:
    """Count ``n`` recalls of each record, the last at ``at`` (``{id: (n, at)}``):
    ``access_count + n`` and ``last_accessed_at``.

    Deliberately not a new version (no history entry, no re-index): a recall does not change
    what a memory says, and a search must stay cheap. In id order, so that two processes
    writing overlapping batches take the rows' locks in the same order and cannot deadlock."""
    if not counts:
        return
    cur.executemany(
        _sql(
            "UPDATE memories SET access_count = access_count + ?, last_accessed_at = ? "
            "WHERE id = ?",
            placeholder,
        ),
        [(counts[i][0], counts[i][1], i) for i in sorted(counts)],
    )


__all__ = [
    "JOB_COLUMNS",
    "JobRow",
    "Watermark",
    "acquire_lock",
    "count_recalls",
    "lock_owner",
    "read_jobs",
    "read_watermark",
    "read_watermarks",
    "release_lock",
    "write_job",
    "write_watermark",
]
