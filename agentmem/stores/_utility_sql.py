"""Learned utility in the relational stores (SQLite and PostgreSQL): retrievals, feedback and
each memory's utility estimate.

Three small tables, written by :mod:`agentmem.usefulness`:

- ``retrievals``: which memory ids one ``search`` / ``context`` call showed, under its
  retrieval id, with the reading scope, so feedback for the retrieval credits exactly those.
- ``feedback``: one row per feedback id (by default the retrieval id): the reward, the task,
  the ids credited. Its primary key makes feedback idempotent: a duplicate inserts nothing and
  so changes nothing.
- ``memory_utility``: per memory, the utility estimate ``Q`` and the number of rewards ``n``.
  Each reward is one atomic ``UPDATE ... SET utility = utility + a * (r - utility),
  utility_n = utility_n + 1`` (the row lock serialises concurrent writers, none is lost), and
  each is appended to the memory's history (event ``FEEDBACK``) in the same transaction.

The SQL is written once here against the DB-API cursor both engines provide (``ON CONFLICT``
and ``RETURNING`` run on SQLite 3.35+ and PostgreSQL); each store supplies the placeholder,
the JSON cast, its column types and its transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agentmem.models import HistoryEntry, HistoryEvent, MemoryRecord
from agentmem.stores._sql import HISTORY_COLUMNS, Cursor, history_to_row


@dataclass(frozen=True, slots=True)
class UtilityRow:
    """One memory's learned utility: the estimate, how many rewards made it, the last one."""

    memory_id: str
    utility: float
    count: int
    updated_at: float
    """Epoch seconds of the last reward."""


@dataclass(frozen=True, slots=True)
class RetrievalRow:
    """What one retrieval showed: the reading scope (as text) and the memory ids, in order."""

    retrieval_id: str
    scope: str
    memory_ids: tuple[str, ...]
    created_at: float


@dataclass(frozen=True, slots=True)
class FeedbackWrite:
    """One feedback to apply atomically: a reward for ``records`` under ``feedback_id``."""

    feedback_id: str
    retrieval_id: str | None
    scope: str
    records: tuple[MemoryRecord, ...]
    reward: float
    task: str | None
    learning_rate: float
    prior: float
    at: float
    actor: str = "feedback"
    ledger_key: str | None = None
    """The key a repeat is recognised by in the ledger (default ``feedback_id``): a caller's
    own feedback id is keyed within its scope, so two scopes may use the same one."""


@dataclass(frozen=True, slots=True)
class UtilityChange:
    """How one reward moved one memory's utility (what its history entry records)."""

    memory_id: str
    old_utility: float
    new_utility: float
    count: int


_KEY_SEPARATOR = "\x1f"


def ledger_key(scope_text: str, feedback_id: str) -> str:
    """The ledger key of a caller's own feedback id: the id within the caller's scope text,
    so two scopes may use the same id. A scope text holds no control character, so the id is
    what follows the first ``\\x1f``."""
    return f"{scope_text}{_KEY_SEPARATOR}{feedback_id}"


def _sql(statement: str, placeholder: str) -> str:
    return statement.replace("?", placeholder)


def record_retrieval(
    cur: Cursor, placeholder: str, rid: str, scope: str, ids: Sequence[str], at: float
) -> None:
    """Remember which memories retrieval ``rid`` showed."""
    cur.execute(
        _sql(
            "INSERT INTO retrievals (retrieval_id, scope, memory_ids, created_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (retrieval_id) DO NOTHING",
            placeholder,
        ),
        [rid, scope, json.dumps(list(ids)), at],
    )


def record_retrievals(cur: Cursor, placeholder: str, rows: Sequence[RetrievalRow]) -> None:
    """Remember several retrievals with one statement."""
    if not rows:
        return
    cur.executemany(
        _sql(
            "INSERT INTO retrievals (retrieval_id, scope, memory_ids, created_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (retrieval_id) DO NOTHING",
            placeholder,
        ),
        [(r.retrieval_id, r.scope, json.dumps(list(r.memory_ids)), r.created_at) for r in rows],
    )


def read_retrieval(cur: Cursor, placeholder: str, rid: str) -> RetrievalRow | None:
    """The retrieval ``rid``, or None when unknown."""
    cur.execute(
        _sql(
            "SELECT retrieval_id, scope, memory_ids, created_at FROM retrievals "
            "WHERE retrieval_id = ?",
            placeholder,
        ),
        [rid],
    )
    row = cur.fetchone()
    if row is None:
        return None
    return RetrievalRow(row[0], row[1], tuple(json.loads(row[2])), row[3])


UTILITY_COLUMNS = "memory_id, utility, utility_n, updated_at"
"""The columns of ``memory_utility`` that :func:`utility_rows` reads, in its order."""


def utility_rows(rows: Sequence[Sequence[Any]]) -> dict[str, UtilityRow]:
    """Rows of :data:`UTILITY_COLUMNS` as utility rows by memory id."""
    return {mid: UtilityRow(mid, float(q), int(n), float(at)) for mid, q, n, at in rows}


def read_utilities(cur: Cursor, placeholder: str, ids: Sequence[str]) -> dict[str, UtilityRow]:
    """The utility rows of these memories (memories never rewarded are absent)."""
    out: dict[str, UtilityRow] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        cur.execute(
            _sql(
                f"SELECT {UTILITY_COLUMNS} FROM memory_utility WHERE memory_id IN ({marks})",
                placeholder,
            ),
            chunk,
        )
        out.update(utility_rows(cur.fetchall()))
    return out


def rated(cur: Cursor, placeholder: str, min_count: int) -> list[UtilityRow]:
    """Every utility row made by at least ``min_count`` rewards, by memory id."""
    cur.execute(
        _sql(
            "SELECT memory_id, utility, utility_n, updated_at FROM memory_utility "
            "WHERE utility_n >= ? ORDER BY memory_id",
            placeholder,
        ),
        [min_count],
    )
    return [UtilityRow(m, float(q), int(n), float(at)) for m, q, n, at in cur.fetchall()]


def apply_feedback(
    cur: Cursor, placeholder: str, fb: FeedbackWrite, json_cast: str = ""
) -> list[UtilityChange] | None:
    """Apply one feedback inside the caller's transaction; None when ``fb.feedback_id`` was
    already applied (nothing changes). Rows are updated in id order, so concurrent feedbacks
    on overlapping memories lock in one order and cannot deadlock."""
    ids = sorted(r.id for r in fb.records)
    cur.execute(
        _sql(
            "INSERT INTO feedback (feedback_id, retrieval_id, scope, reward, task, memory_ids, "
            "at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (feedback_id) DO NOTHING",
            placeholder,
        ),
        [
            fb.ledger_key or fb.feedback_id,
            fb.retrieval_id,
            fb.scope,
            fb.reward,
            fb.task,
            json.dumps(ids),
            fb.at,
        ],
    )
    if cur.rowcount == 0:
        return None
    by_id = {r.id: r for r in fb.records}
    a = fb.learning_rate
    changes: list[UtilityChange] = []
    for mid in ids:
        cur.execute(
            _sql(
                "INSERT INTO memory_utility (memory_id, utility, prev_utility, utility_n, "
                "updated_at) VALUES (?, ?, ?, 0, ?) ON CONFLICT (memory_id) DO NOTHING",
                placeholder,
            ),
            [mid, fb.prior, fb.prior, fb.at],
        )
        # Right-hand sides read the row as it was, so prev_utility is the value replaced.
        cur.execute(
            _sql(
                "UPDATE memory_utility SET prev_utility = utility, "
                "utility = utility + ? * (? - utility), utility_n = utility_n + 1, "
                "updated_at = ? WHERE memory_id = ? RETURNING prev_utility, utility, utility_n",
                placeholder,
            ),
            [a, fb.reward, fb.at, mid],
        )
        old, new, n = cur.fetchone()
        changes.append(UtilityChange(mid, float(old), float(new), int(n)))
    entries = [_history(by_id[c.memory_id], c, fb) for c in changes]
    cols = ", ".join(HISTORY_COLUMNS)
    marks = ", ".join(f"?{json_cast}" if c.endswith("_metadata") else "?" for c in HISTORY_COLUMNS)
    cur.executemany(
        _sql(f"INSERT INTO history ({cols}) VALUES ({marks})", placeholder),
        [history_to_row(h) for h in entries],
    )
    return changes


def forget_ids(cur: Cursor, placeholder: str, ids: Sequence[str], json_cast: str = "") -> int:
    """Erase forgotten memories from the utility tables (inside the caller's transaction):
    their ``memory_utility`` rows go; every retrieval and feedback row that names one loses it
    (a row naming nothing else goes), and such a feedback row's task text is blanked, since
    it was written about what was forgotten, also in the ``FEEDBACK`` history entries it wrote
    for the other memories it credited. A blanked feedback row that still names live memories
    stays, so the same feedback sent again is still recognised as a repeat. Returns how many
    rows were changed or deleted."""
    gone = set(ids)
    if not gone:
        return 0
    changed = 0
    unique = list(dict.fromkeys(ids))
    chunks = [unique[start : start + 500] for start in range(0, len(unique), 500)]
    for chunk in chunks:
        marks = ", ".join("?" for _ in chunk)
        cur.execute(
            _sql(f"DELETE FROM memory_utility WHERE memory_id IN ({marks})", placeholder), chunk
        )
        changed += max(cur.rowcount, 0)
    tasks: list[tuple[str, list[str], str]] = []
    for table, key, task, blank in (
        ("retrievals", "retrieval_id", "NULL", ""),
        ("feedback", "feedback_id", "task", ", task = NULL"),
    ):
        # Only the rows whose JSON list may name a forgotten id come back (LIKE on the id as
        # json.dumps wrote it); every search logs a retrieval, so the table can be large.
        found: dict[str, tuple[list[str], str | None]] = {}
        for chunk in chunks:
            likes = " OR ".join("memory_ids LIKE ?" for _ in chunk)
            statement = f"SELECT {key}, memory_ids, {task} FROM {table} WHERE {likes}"
            cur.execute(_sql(statement, placeholder), [f"%{json.dumps(i)}%" for i in chunk])
            found.update((k, (json.loads(m), t)) for k, m, t in cur.fetchall())
        hits = [(k, m, t) for k, (m, t) in found.items() if gone & set(m)]
        for row_key, named, text in hits:
            kept = [i for i in named if i not in gone]
            if kept:
                statement = f"UPDATE {table} SET memory_ids = ?{blank} WHERE {key} = ?"
                cur.execute(_sql(statement, placeholder), [json.dumps(kept), row_key])
                if text is not None:
                    tasks.append((row_key, kept, text))
            else:
                cur.execute(_sql(f"DELETE FROM {table} WHERE {key} = ?", placeholder), [row_key])
        changed += len(hits)
    return changed + _blank_history_tasks(cur, placeholder, tasks, json_cast)


def _blank_history_tasks(
    cur: Cursor, placeholder: str, feedbacks: Sequence[tuple[str, list[str], str]], json_cast: str
) -> int:
    """Take the task text of these feedbacks (``(ledger key, live memory ids, task)``) out of
    the ``FEEDBACK`` history entries they wrote for those memories; returns entries changed.
    An entry is the feedback's by its feedback id (the ledger key without the caller's scope)
    and its task text."""
    wanted = {
        (mid, key.partition(_KEY_SEPARATOR)[2] or key, task)
        for key, kept, task in feedbacks
        for mid in kept
    }
    ids = sorted({mid for mid, _, _ in wanted})
    rows: list[tuple[str, int]] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        statement = (
            "SELECT seq, memory_id, new_metadata FROM history "
            f"WHERE event = ? AND memory_id IN ({marks})"
        )
        cur.execute(_sql(statement, placeholder), [HistoryEvent.FEEDBACK.value, *chunk])
        for seq, mid, raw in cur.fetchall():
            meta = json.loads(raw) if isinstance(raw, str | bytes) else raw
            if not isinstance(meta, dict):
                continue
            fid, task = meta.get("feedback_id"), meta.get("task")
            if isinstance(fid, str) and isinstance(task, str) and (mid, fid, task) in wanted:
                kept = {k: v for k, v in meta.items() if k != "task"}
                rows.append((json.dumps(kept, sort_keys=True), seq))
    if rows:
        statement = f"UPDATE history SET new_metadata = ?{json_cast} WHERE seq = ?"
        cur.executemany(_sql(statement, placeholder), rows)
    return len(rows)


def _history(record: MemoryRecord, change: UtilityChange, fb: FeedbackWrite) -> HistoryEntry:
    evidence: dict[str, Any] = {
        "utility": change.new_utility,
        "utility_n": change.count,
        "reward": fb.reward,
        "feedback_id": fb.feedback_id,
    }
    if fb.retrieval_id is not None:
        evidence["retrieval_id"] = fb.retrieval_id
    if fb.task is not None:
        evidence["task"] = fb.task
    return HistoryEntry(
        memory_id=record.id,
        scope=record.scope,
        event=HistoryEvent.FEEDBACK,
        version=record.version,
        old_metadata={"utility": change.old_utility, "utility_n": change.count - 1},
        new_metadata=evidence,
        actor=fb.actor,
        at=datetime.fromtimestamp(fb.at, UTC),
    )


__all__ = [
    "UTILITY_COLUMNS",
    "FeedbackWrite",
    "RetrievalRow",
    "UtilityChange",
    "UtilityRow",
    "apply_feedback",
    "forget_ids",
    "ledger_key",
    "rated",
    "read_retrieval",
    "read_utilities",
    "record_retrieval",
    "record_retrievals",
    "utility_rows",
]
