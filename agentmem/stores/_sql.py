"""SQL shared by the relational stores: columns, row mapping and WHERE clauses.

Each store supplies a :class:`Dialect` for what differs (placeholders, JSON access); the
query logic is written once here so SQLite and PostgreSQL cannot drift apart.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from agentmem.filters import RANGE_OPS, Condition, FilterOp
from agentmem.models import (
    SCOPE_FIELDS,
    HistoryEntry,
    HistoryEvent,
    MemoryKind,
    MemoryRecord,
    Scope,
    ScopeSet,
    ScopeSummary,
    readable_metadata,
    scope_members,
    utcnow,
)
from agentmem.stores.base import (
    SPEAKER_PREFIX_CHARS,
    RankFields,
    RecordQuery,
    SessionKey,
    SessionStamp,
    SessionTurn,
    is_turn,
    session_key,
    speaker_of,
)

RECORD_COLUMNS: tuple[str, ...] = (
    "id",
    *SCOPE_FIELDS,
    "kind",
    "text",
    "metadata",
    "provenance",
    "content_hash",
    "event_time",
    "valid_from",
    "valid_to",
    "created_at",
    "updated_at",
    "invalidated_at",
    "importance",
    "access_count",
    "last_accessed_at",
    "version",
)
HISTORY_COLUMNS: tuple[str, ...] = (
    "memory_id",
    *SCOPE_FIELDS,
    "event",
    "version",
    "old_text",
    "new_text",
    "old_metadata",
    "new_metadata",
    "actor",
    "at",
)


def to_epoch(value: datetime | None) -> float | None:
    """Store times as epoch seconds (UTC): comparable in SQL on every backend."""
    return None if value is None else value.timestamp()


def from_epoch(value: float | None) -> datetime | None:
    """Read epoch seconds back as an aware UTC datetime."""
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


UPDATED_COLUMNS: tuple[str, ...] = tuple(
    c for c in RECORD_COLUMNS[1:] if c not in ("access_count", "last_accessed_at")
)
"""The columns an update writes: all but the id and the recall counts. Only
``count_recalls`` changes those: an updated record carries the counts it was read with, and
writing them back would undo a recall counted in between."""

_UPDATED_AT = [RECORD_COLUMNS.index(c) for c in UPDATED_COLUMNS]


def update_row(r: MemoryRecord) -> tuple[Any, ...]:
    """A record's values in :data:`UPDATED_COLUMNS` order."""
    row = record_to_row(r)
    return tuple(row[i] for i in _UPDATED_AT)


def record_to_row(r: MemoryRecord) -> tuple[Any, ...]:
    """A record as a tuple in :data:`RECORD_COLUMNS` order."""
    return (
        r.id,
        r.scope.org_id,
        r.scope.user_id,
        r.scope.agent_id,
        r.scope.thread_id,
        r.kind.value,
        r.text,
        json.dumps(r.metadata, sort_keys=True),
        json.dumps(r.provenance, sort_keys=True),
        r.content_hash,
        to_epoch(r.event_time),
        to_epoch(r.valid_from),
        to_epoch(r.valid_to),
        to_epoch(r.created_at),
        to_epoch(r.updated_at),
        to_epoch(r.invalidated_at),
        r.importance,
        r.access_count,
        to_epoch(r.last_accessed_at),
        r.version,
    )


def _loads(value: Any) -> Any:
    if value is None or isinstance(value, dict | list):
        return value
    return json.loads(value)


RANK_COLUMNS = f"id, event_time, created_at, importance, substr(text, 1, {SPEAKER_PREFIX_CHARS})"
"""The columns :func:`row_to_rank_fields` reads, in its order, before the speaker's
(:func:`rank_columns`)."""


def rank_columns(dialect: Dialect) -> tuple[str, list[Any]]:
    """The columns (and their parameters) :func:`row_to_rank_fields` reads: :data:`RANK_COLUMNS`
    and the JSON text of ``metadata["speaker"]``."""
    speaker, params = dialect.json_text("speaker")
    return f"{RANK_COLUMNS}, {speaker}", params


def row_to_rank_fields(row: Sequence[Any]) -> RankFields:
    """A row of :func:`rank_columns`, optionally followed by :func:`session_columns`, as the
    fields search ranks candidates by (the times read back exactly as :func:`row_to_record`
    reads them, the speaker as :func:`~agentmem.stores.base.speaker_of` finds it: a "Name:"
    prefix only on a turn, which needs the session columns)."""
    created = from_epoch(row[2])
    assert created is not None  # created_at is NOT NULL
    session = row_to_session(row[6:]) if len(row) > 6 else None
    turn = len(row) > 6 and is_turn(row[6], row[10], session)  # kind, org, user, agent, thread
    speaker = speaker_of(row[4] or "", json.loads(row[5]) if row[5] is not None else None, turn)
    return RankFields(row[0], from_epoch(row[1]), created, row[3], session, speaker)


def rank_field_columns(dialect: Dialect, session_key: str | None) -> tuple[str, list[Any]]:
    """The columns (and their parameters) a row of :func:`row_to_rank_fields` has: those of
    :func:`rank_columns`, and with ``session_key`` those of :func:`session_columns`."""
    columns, params = rank_columns(dialect)
    if session_key is None:
        return columns, params
    session, session_params = session_columns(dialect, session_key)
    return f"{columns}, {session}", [*params, *session_params]


def session_columns(dialect: Dialect, key: str) -> tuple[str, list[Any]]:
    """The columns (and their parameters) :func:`row_to_session` reads: kind, scope and the
    JSON text of the metadata value under ``key``."""
    value, params = dialect.json_text(key)
    return f"kind, {', '.join(SCOPE_FIELDS)}, {value}", params


def row_to_session(row: Sequence[Any], values: dict[str, Any] | None = None) -> SessionKey | None:
    """The session of a row of :func:`session_columns` (as :func:`~agentmem.stores.base.
    session_key` gives it for the whole record); ``values`` memoises the JSON values read
    (a session's value repeats on each of its turns)."""
    text = row[5]
    if text is None:
        return None
    if values is None:
        return session_key(row[0], row[1:5], json.loads(text))
    if text not in values:
        values[text] = json.loads(text)
    return session_key(row[0], row[1:5], values[text])


def session_turns_sql(query: RecordQuery, key: str, dialect: Dialect) -> tuple[str, list[Any]]:
    """The statement reading the records of ``query`` (in its order and page) as
    :func:`rows_to_session_turns` rows."""
    columns, params = session_columns(dialect, key)
    w = where_for_query(query, dialect)
    mark = dialect.placeholder
    return (
        f"SELECT {columns}, text, event_time FROM memories WHERE {w.sql()} "
        f"ORDER BY created_at, id LIMIT {mark} OFFSET {mark}",
        [*params, *w.params, query.limit, query.offset],
    )


def rows_to_session_turns(rows: Sequence[Sequence[Any]]) -> list[SessionTurn]:
    """Rows of :func:`session_turns_sql` as turns."""
    values: dict[str, Any] = {}
    return [SessionTurn(row_to_session(r, values), r[6], from_epoch(r[7])) for r in rows]


def session_stamps_sql(query: RecordQuery, key: str, dialect: Dialect) -> tuple[str, list[Any]]:
    """The statement aggregating the records of ``query`` (all of them: no limit or page) by
    session, as :func:`rows_to_session_stamps` rows."""
    columns, params = session_columns(dialect, key)
    w = where_for_query(query, dialect)
    return (
        f"SELECT {columns}, COUNT(*), MAX(updated_at), SUM(version), SUM(created_at), "
        "SUM(COALESCE(event_time, 0)) "
        f"FROM memories WHERE {w.sql()} GROUP BY 1, 2, 3, 4, 5, 6",
        [*params, *w.params],
    )


def rows_to_session_stamps(rows: Sequence[Sequence[Any]]) -> dict[SessionKey, SessionStamp]:
    """Rows of :func:`session_stamps_sql` by session (rows of one session merged: its value
    may be stored in more than one JSON form)."""
    found: dict[SessionKey, SessionStamp] = {}
    for row in rows:
        session = row_to_session(row[:6])
        if session is None:
            continue
        stamp = SessionStamp(
            int(row[6]),
            (float(row[7]), int(row[8]), float(row[9]), float(row[10])),
        )
        found[session] = found[session].plus(stamp) if session in found else stamp
    return found


def row_to_record(row: Sequence[Any]) -> MemoryRecord:
    """A row in :data:`RECORD_COLUMNS` order back to a record."""
    d = dict(zip(RECORD_COLUMNS, row, strict=True))
    return MemoryRecord.model_construct(
        id=d["id"],
        scope=Scope.model_construct(**{f: d[f] for f in SCOPE_FIELDS}),
        kind=MemoryKind(d["kind"]),
        text=d["text"],
        # Stored before the depth limit, metadata may nest too deep to serialise: flattened.
        metadata=readable_metadata(_loads(d["metadata"]) or {}),
        provenance=readable_metadata(_loads(d["provenance"]) or {}),
        content_hash=d["content_hash"],
        event_time=from_epoch(d["event_time"]),
        valid_from=from_epoch(d["valid_from"]),
        valid_to=from_epoch(d["valid_to"]),
        created_at=from_epoch(d["created_at"]),
        updated_at=from_epoch(d["updated_at"]),
        invalidated_at=from_epoch(d["invalidated_at"]),
        importance=d["importance"],
        access_count=d["access_count"],
        last_accessed_at=from_epoch(d["last_accessed_at"]),
        version=d["version"],
    )


def history_to_row(h: HistoryEntry) -> tuple[Any, ...]:
    """A history entry as a tuple in :data:`HISTORY_COLUMNS` order."""
    fields = h.scope.fields() if h.scope else {}
    return (
        h.memory_id,
        *(fields.get(f) for f in SCOPE_FIELDS),
        h.event.value,
        h.version,
        h.old_text,
        h.new_text,
        _json_or_none(h.old_metadata),
        _json_or_none(h.new_metadata),
        h.actor,
        to_epoch(h.at),
    )


def row_to_history(row: Sequence[Any]) -> HistoryEntry:
    """A history row in :data:`HISTORY_COLUMNS` order back to an entry."""
    d = dict(zip(HISTORY_COLUMNS, row, strict=True))
    memory_id, event, version = d["memory_id"], d["event"], d["version"]
    old_text, new_text, actor, at = d["old_text"], d["new_text"], d["actor"], d["at"]
    old_meta, new_meta = d["old_metadata"], d["new_metadata"]
    scope_fields = {f: d[f] for f in SCOPE_FIELDS if d[f] is not None}
    return HistoryEntry(
        memory_id=memory_id,
        scope=Scope(**scope_fields) if scope_fields else None,
        event=HistoryEvent(event),
        version=version,
        old_text=old_text,
        new_text=new_text,
        old_metadata=_loads(old_meta),
        new_metadata=_loads(new_meta),
        actor=actor,
        at=from_epoch(at) or utcnow(),
    )


class Cursor(Protocol):
    """The DB-API cursor both engines provide (sqlite3 and psycopg): what the ``_*_sql``
    modules use."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: Any, params: Any = ..., /) -> Any: ...

    def executemany(self, sql: Any, params: Any, /) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def fetchone(self) -> Any: ...


class Dialect(ABC):
    """What differs between SQL engines, for the shared query builder."""

    placeholder: str

    @abstractmethod
    def json_condition(self, c: Condition) -> tuple[str, list[Any]]:
        """SQL (and parameters) testing one metadata condition."""

    @abstractmethod
    def json_text(self, key: str) -> tuple[str, list[Any]]:
        """SQL (and parameters) of the JSON text of the metadata value under ``key`` (NULL
        where there is none)."""


class Where:
    """Accumulates AND-ed SQL conditions and their parameters."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.parts: list[str] = []
        self.params: list[Any] = []

    def add(self, sql: str, *params: Any) -> None:
        self.parts.append(sql.replace("?", self.dialect.placeholder))
        self.params.extend(params)

    def add_scope(self, scope: Scope | ScopeSet) -> None:
        """Restrict to records a scope contains; a :class:`ScopeSet` becomes an OR of its
        members' conditions, so several scopes are read in one query."""
        members = scope_members(scope)
        if len(members) == 1:
            for name, value in members[0].fields().items():
                self.add(f"{name} = ?", value)
            return
        groups: list[str] = []
        params: list[Any] = []
        for member in members:
            fields = member.fields()
            groups.append("(" + " AND ".join(f"{name} = ?" for name in fields) + ")")
            params.extend(fields.values())
        self.add("(" + " OR ".join(groups) + ")", *params)

    def add_in(self, column: str, values: Sequence[Any]) -> None:
        marks = ", ".join("?" for _ in values)
        self.add(f"{column} IN ({marks})", *values)

    def sql(self) -> str:
        return " AND ".join(self.parts) if self.parts else "TRUE"


def scope_summary_sql(scope: Scope | ScopeSet, dialect: Dialect) -> tuple[str, list[Any]]:
    """The query counting the records of each exact scope (and kind) ``scope`` contains."""
    w = Where(dialect)
    w.add_scope(scope)
    cols = ", ".join(SCOPE_FIELDS)
    return (
        f"SELECT {cols}, kind, COUNT(*), MAX(updated_at) FROM memories WHERE {w.sql()} "
        f"GROUP BY {cols}, kind",
        w.params,
    )


def scope_summaries(rows: Sequence[Sequence[Any]]) -> list[ScopeSummary]:
    """Rows of :func:`scope_summary_sql` as one summary per scope, in scope order."""
    found: dict[tuple[Any, ...], ScopeSummary] = {}
    for row in rows:
        key, kind, count, last = tuple(row[:4]), row[4], int(row[5]), from_epoch(row[6])
        summary = found.get(key)
        if summary is None:
            scope = Scope.model_construct(**dict(zip(SCOPE_FIELDS, key, strict=True)))
            summary = found[key] = ScopeSummary(scope=scope, records=0, by_kind={})
        summary.records += count
        summary.by_kind[kind] = count
        if last is not None and (summary.last_updated is None or last > summary.last_updated):
            summary.last_updated = last
    return [found[k] for k in sorted(found, key=lambda k: tuple(v or "" for v in k))]


def where_for_query(query: RecordQuery, dialect: Dialect, now: datetime | None = None) -> Where:
    """The WHERE clause for a :class:`RecordQuery`: scope, kinds, validity and metadata."""
    w = Where(dialect)
    w.add_scope(query.scope)
    if query.kinds:
        w.add_in("kind", [k.value for k in query.kinds])
    if query.as_of is not None:
        t = query.as_of.timestamp()
        w.add("COALESCE(valid_from, event_time, created_at) <= ?", t)
        w.add("(valid_to IS NULL OR valid_to > ?)", t)
    elif not query.include_invalidated:
        w.add("invalidated_at IS NULL")
        w.add("(valid_to IS NULL OR valid_to > ?)", (now or utcnow()).timestamp())
    if query.event_after is not None:
        w.add("event_time >= ?", query.event_after.timestamp())
    if query.event_before is not None:
        w.add("event_time < ?", query.event_before.timestamp())
    for c in query.conditions:
        sql, params = dialect.json_condition(c)
        w.add(sql, *params)
    return w


def adjacent_sql(
    record: MemoryRecord, group: Condition | None, dialect: Dialect
) -> list[tuple[str, list[Any]]]:
    """Two queries: the record just before and just after ``record`` in its group (same scope
    fields, same kind, and ``group`` if given), in (created_at, id) order."""
    t = record.created_at.timestamp()
    out = []
    for cmp, order in (("<", "DESC"), (">", "ASC")):
        w = Where(dialect)
        w.add_scope(record.scope)
        w.add("kind = ?", record.kind.value)
        if group is not None:
            sql, params = dialect.json_condition(group)
            w.add(sql, *params)
        # A row value, not `created_at > ? OR (created_at = ? AND id > ?)`: SQLite and
        # PostgreSQL both turn it into a range on the index's created_at column, where the OR
        # form walked the scope's whole (user_id, kind) range for every lookup.
        w.add(f"(created_at, id) {cmp} (?, ?)", t, record.id)
        out.append(
            (
                f"SELECT {', '.join(RECORD_COLUMNS)} FROM memories WHERE {w.sql()} "
                f"ORDER BY created_at {order}, id {order} LIMIT 1",
                w.params,
            )
        )
    return out


def is_range(c: Condition) -> bool:
    """Whether a condition compares numbers."""
    return c.op in RANGE_OPS


RANGE_SQL = {FilterOp.GT: ">", FilterOp.GTE: ">=", FilterOp.LT: "<", FilterOp.LTE: "<="}

__all__ = [
    "HISTORY_COLUMNS",
    "RANGE_SQL",
    "RECORD_COLUMNS",
    "UPDATED_COLUMNS",
    "Cursor",
    "Dialect",
    "Where",
    "adjacent_sql",
    "from_epoch",
    "history_to_row",
    "is_range",
    "rank_columns",
    "rank_field_columns",
    "record_to_row",
    "row_to_history",
    "row_to_rank_fields",
    "row_to_record",
    "row_to_session",
    "rows_to_session_stamps",
    "rows_to_session_turns",
    "scope_summaries",
    "scope_summary_sql",
    "session_columns",
    "session_stamps_sql",
    "session_turns_sql",
    "to_epoch",
    "update_row",
    "where_for_query",
]
