"""The tables of forgetting and quarantine in the relational stores (SQLite and PostgreSQL).

- ``forget_tombstones``: one row per forgotten memory id (its scope, the forget that removed it,
  when), never any content. Writes derived from a tombstoned id are refused, so a consolidation
  run racing a forget cannot bring the item back.
- ``forget_jobs``: the forget journal. A forget is written here (its target ids, reason and
  status) before anything is removed, so a crash in the middle is finished on the next open;
  when done it holds the report (what was removed from where, what was retrained, what the
  probe found), still without content. ``probe`` holds the texts the retrain probe asks about,
  only while a tainted adapter awaits its clean retrain, and is erased once probed.
- ``quarantine``: memories from untrusted sources, held out of the store, the indexes, the
  graph, consolidation and training until approved.

Written once against the DB-API cursor both engines provide; the SQL stores reach it
through :class:`agentmem.stores.capabilities.ForgetJournal` and
:class:`~agentmem.stores.capabilities.QuarantineStore` (:mod:`agentmem.stores._relational`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agentmem.models import SCOPE_FIELDS, Scope
from agentmem.stores._sql import Cursor

_CHUNK = 500


def _sql(statement: str, placeholder: str) -> str:
    return statement.replace("?", placeholder)


def _chunks(ids: Sequence[str]) -> list[list[str]]:
    unique = list(dict.fromkeys(ids))
    return [unique[i : i + _CHUNK] for i in range(0, len(unique), _CHUNK)]


def _scope_where(scope: Scope) -> tuple[str, list[Any]]:
    fields = scope.fields()
    return " AND ".join(f"{f} = ?" for f in fields), list(fields.values())


# tombstones ----------------------------------------------------------------------------------


def add_tombstones(
    cur: Cursor, ph: str, forget_id: str, rows: Sequence[tuple[str, Scope]], at: float
) -> None:
    """Tombstone these (memory id, scope) pairs; an id tombstoned before keeps its row."""
    cols = ", ".join(SCOPE_FIELDS)
    for memory_id, scope in dict((i, s) for i, s in rows).items():
        cur.execute(
            _sql(
                f"INSERT INTO forget_tombstones (memory_id, forget_id, {cols}, at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (memory_id) DO NOTHING",
                ph,
            ),
            [memory_id, forget_id, *(getattr(scope, f) for f in SCOPE_FIELDS), at],
        )


def tombstoned(cur: Cursor, ph: str, ids: Sequence[str]) -> dict[str, Scope]:
    """The ids among ``ids`` that were forgotten, with the scope each lived in."""
    out: dict[str, Scope] = {}
    cols = ", ".join(SCOPE_FIELDS)
    for chunk in _chunks(ids):
        marks = ", ".join("?" for _ in chunk)
        cur.execute(
            _sql(
                f"SELECT memory_id, {cols} FROM forget_tombstones WHERE memory_id IN ({marks})",
                ph,
            ),
            chunk,
        )
        for row in cur.fetchall():
            out[row[0]] = Scope(**dict(zip(SCOPE_FIELDS, row[1:], strict=True)))
    return out


def history_only(
    cur: Cursor, ph: str, *, scope: Scope | None = None, ids: Sequence[str] = ()
) -> dict[str, tuple[Scope, list[str]]]:
    """Memories with history rows but no stored record (deleted, or forgotten before), in
    ``scope`` or among ``ids``: each with the scope its history names and the texts it holds."""
    base = (
        f"SELECT memory_id, {', '.join(SCOPE_FIELDS)}, old_text, new_text FROM history WHERE "
        "NOT EXISTS (SELECT 1 FROM memories m WHERE m.id = history.memory_id) AND "
    )
    queries: list[tuple[str, list[Any]]] = []
    if scope is not None:
        where, params = _scope_where(scope)
        queries.append((base + where + " ORDER BY seq", params))
    for chunk in _chunks(ids):
        marks = ", ".join("?" for _ in chunk)
        queries.append((base + f"memory_id IN ({marks}) ORDER BY seq", list(chunk)))
    out: dict[str, tuple[Scope, list[str]]] = {}
    for statement, params in queries:
        cur.execute(_sql(statement, ph), params)
        for row in cur.fetchall():
            named = zip(SCOPE_FIELDS, row[1 : 1 + len(SCOPE_FIELDS)], strict=True)
            placed = {name: value for name, value in named if value is not None}
            if not placed:
                continue  # an entry written without its scope cannot be placed in one
            found = out.setdefault(row[0], (Scope(**placed), []))
            found[1].extend(t for t in row[1 + len(SCOPE_FIELDS) :] if t)
    return out


# content scrubbing ---------------------------------------------------------------------------


def scrub_history(cur: Cursor, ph: str, ids: Sequence[str], *, purge: bool) -> int:
    """Remove the content of these memories' history (texts and metadata), or with ``purge``
    the history rows themselves. Returns the rows touched."""
    touched = 0
    for chunk in _chunks(ids):
        marks = ", ".join("?" for _ in chunk)
        if purge:
            statement = f"DELETE FROM history WHERE memory_id IN ({marks})"
        else:
            statement = (
                "UPDATE history SET old_text = NULL, new_text = NULL, old_metadata = NULL, "
                f"new_metadata = NULL WHERE memory_id IN ({marks})"
            )
        cur.execute(_sql(statement, ph), chunk)
        touched += max(cur.rowcount, 0)
    return touched


def history_metadata(
    cur: Cursor, ph: str, ids: Sequence[str]
) -> list[tuple[int, str, dict[str, Any] | None, dict[str, Any] | None]]:
    """(seq, memory id, old metadata, new metadata) of these memories' history, by seq."""
    out: list[tuple[int, str, dict[str, Any] | None, dict[str, Any] | None]] = []
    for chunk in _chunks(ids):
        marks = ", ".join("?" for _ in chunk)
        cur.execute(
            _sql(
                "SELECT seq, memory_id, old_metadata, new_metadata FROM history "
                f"WHERE memory_id IN ({marks}) ORDER BY seq",
                ph,
            ),
            chunk,
        )
        out.extend((int(s), m, _json(old), _json(new)) for s, m, old, new in cur.fetchall())
    return sorted(out, key=lambda row: row[0])


def write_history_metadata(
    cur: Cursor,
    ph: str,
    rows: Sequence[tuple[int, dict[str, Any] | None, dict[str, Any] | None]],
    json_cast: str,
) -> int:
    """Replace the old and new metadata of these history rows (by seq); returns rows changed."""
    cur.executemany(
        _sql(
            f"UPDATE history SET old_metadata = ?{json_cast}, new_metadata = ?{json_cast} "
            "WHERE seq = ?",
            ph,
        ),
        [(_text(old), _text(new), seq) for seq, old, new in rows],
    )
    return len(rows)


def _json(value: Any) -> dict[str, Any] | None:
    loaded = json.loads(value) if isinstance(value, str | bytes) else value
    return loaded if isinstance(loaded, dict) else None


def _text(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def drop_cached_vectors(cur: Cursor, ph: str, hashes: Sequence[str]) -> int:
    """Delete cached embeddings of these content hashes (every embedder)."""
    dropped = 0
    for chunk in _chunks(hashes):
        marks = ", ".join("?" for _ in chunk)
        cur.execute(_sql(f"DELETE FROM embedding_cache WHERE content_hash IN ({marks})", ph), chunk)
        dropped += max(cur.rowcount, 0)
    return dropped


# the forget journal --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ForgetJob:
    """One forget as the journal keeps it (no memory content outside ``probe``)."""

    forget_id: str
    scope: str
    reason: str
    purge: bool
    status: str
    targets: list[str]
    report: dict[str, Any]
    probe: list[str] | None
    created_at: float
    updated_at: float


_JOB_COLS = (
    "forget_id, scope, reason, purge, status, targets, report, probe, created_at, updated_at"
)


def write_job(cur: Cursor, ph: str, job: ForgetJob) -> None:
    """Insert or replace a journal row."""
    cur.execute(
        _sql(
            f"INSERT INTO forget_jobs ({_JOB_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (forget_id) DO UPDATE SET status = excluded.status, "
            "targets = excluded.targets, report = excluded.report, probe = excluded.probe, "
            "updated_at = excluded.updated_at",
            ph,
        ),
        [
            job.forget_id,
            job.scope,
            job.reason,
            int(job.purge),
            job.status,
            json.dumps(job.targets),
            json.dumps(job.report, sort_keys=True),
            None if job.probe is None else json.dumps(job.probe),
            job.created_at,
            job.updated_at,
        ],
    )


def _job(row: Sequence[Any]) -> ForgetJob:
    return ForgetJob(
        forget_id=row[0],
        scope=row[1],
        reason=row[2],
        purge=bool(row[3]),
        status=row[4],
        targets=json.loads(row[5]),
        report=json.loads(row[6]),
        probe=None if row[7] is None else json.loads(row[7]),
        created_at=float(row[8]),
        updated_at=float(row[9]),
    )


def read_jobs(
    cur: Cursor,
    ph: str,
    *,
    forget_id: str | None = None,
    statuses: Sequence[str] = (),
    limit: int = 100,
) -> list[ForgetJob]:
    """Journal rows, newest first; of one forget, or in these statuses."""
    where: list[str] = []
    params: list[Any] = []
    if forget_id is not None:
        where.append("forget_id = ?")
        params.append(forget_id)
    if statuses:
        where.append(f"status IN ({', '.join('?' for _ in statuses)})")
        params.extend(statuses)
    clause = f"WHERE {' AND '.join(where)} " if where else ""
    cur.execute(
        _sql(
            f"SELECT {_JOB_COLS} FROM forget_jobs {clause}"
            "ORDER BY created_at DESC, forget_id LIMIT ?",
            ph,
        ),
        [*params, limit],
    )
    return [_job(row) for row in cur.fetchall()]


# quarantine ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    """A held memory: the record as it would be stored (JSON), its source and flags."""

    id: str
    record: dict[str, Any]
    source: str
    flags: list[str]
    status: str
    created_at: float


def put_quarantine(
    cur: Cursor,
    ph: str,
    *,
    memory_id: str,
    scope: Scope,
    record: dict[str, Any],
    source: str,
    flags: Sequence[str],
    at: float,
) -> None:
    """Hold one memory in quarantine (status ``pending``)."""
    cols = ", ".join(SCOPE_FIELDS)
    cur.execute(
        _sql(
            f"INSERT INTO quarantine (id, {cols}, record, source, flags, status, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
            ph,
        ),
        [
            memory_id,
            *(getattr(scope, f) for f in SCOPE_FIELDS),
            json.dumps(record),
            source,
            json.dumps(list(flags)),
            at,
        ],
    )


def read_quarantine(
    cur: Cursor,
    ph: str,
    *,
    scope: Scope | None = None,
    ids: Sequence[str] = (),
    limit: int = 1000,
    after: tuple[float, str] | None = None,
) -> list[QuarantineRow]:
    """Held memories, oldest first (``created_at``, then id): in a scope (and the scopes under
    it) or with these ids; with ``after``, those after that ``(created_at, id)`` (keyset
    paging: a page starts after the last row of the one before)."""
    where: list[str] = []
    params: list[Any] = []
    if after is not None:
        where.append("(created_at > ? OR (created_at = ? AND id > ?))")
        params.extend([after[0], after[0], after[1]])
    if scope is not None:
        clause, values = _scope_where(scope)
        where.append(clause)
        params.extend(values)
    if ids:
        where.append(f"id IN ({', '.join('?' for _ in ids)})")
        params.extend(ids)
    text = f"WHERE {' AND '.join(where)} " if where else ""
    cur.execute(
        _sql(
            f"SELECT id, record, source, flags, status, created_at FROM quarantine {text}"
            "ORDER BY created_at, id LIMIT ?",
            ph,
        ),
        [*params, limit],
    )
    return [
        QuarantineRow(r[0], json.loads(r[1]), r[2], json.loads(r[3]), r[4], float(r[5]))
        for r in cur.fetchall()
    ]


def drop_quarantine(cur: Cursor, ph: str, ids: Sequence[str]) -> int:
    """Remove held memories (approved into the store, rejected, or forgotten)."""
    dropped = 0
    for chunk in _chunks(ids):
        marks = ", ".join("?" for _ in chunk)
        cur.execute(_sql(f"DELETE FROM quarantine WHERE id IN ({marks})", ph), chunk)
        dropped += max(cur.rowcount, 0)
    return dropped


__all__ = [
    "ForgetJob",
    "QuarantineRow",
    "add_tombstones",
    "drop_cached_vectors",
    "drop_quarantine",
    "put_quarantine",
    "read_jobs",
    "read_quarantine",
    "scrub_history",
    "tombstoned",
    "write_job",
]
