"""Note links and profile fields in the relational stores (SQLite and PostgreSQL).

Two tables, written by :mod:`agentmem.notes` and :mod:`agentmem.profiles`:

- ``note_links``: typed, directed edges between two memories of the same scope (the scope
  columns are copied from the notes, so reads are scoped in the query like every other
  table), with who made the link, why, and the similarity that suggested it. One edge per
  ordered pair; writing it again replaces its type and reason.
- ``profile_fields``: every value a profile field ever had, one row per version. The current
  value is the row with ``superseded_at`` NULL; a revision closes the old row (``valid_to``:
  when it stopped holding, ``superseded_at``: when the system learned it) and inserts a new
  one, so a field's history is its rows in ``recorded_at`` order.

The SQL is written once here against the DB-API cursor both engines provide; each store
supplies the placeholder, its column types and its transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agentmem.models import SCOPE_FIELDS, Scope, ScopeSet, scope_members
from agentmem.stores._sql import Cursor

_SCOPE = ", ".join(SCOPE_FIELDS)


@dataclass(frozen=True, slots=True)
class LinkRow:
    """One stored link: ``source_id`` -> ``target_id`` of ``link_type``, in ``scope``."""

    source_id: str
    target_id: str
    scope: Scope
    link_type: str
    made_by: str
    reason: str
    score: float
    created_at: float


@dataclass(frozen=True, slots=True)
class ProfileRow:
    """One version of one profile field (``value`` as JSON-ready data)."""

    id: str
    profile_key: str
    scope: Scope
    field: str
    value: Any
    value_type: str
    sources: tuple[str, ...]
    actor: str
    reason: str
    valid_from: float | None
    valid_to: float | None
    recorded_at: float
    superseded_at: float | None = None


def _sql(statement: str, placeholder: str) -> str:
    return statement.replace("?", placeholder)


def _scope_values(scope: Scope) -> list[str | None]:
    return [getattr(scope, f) for f in SCOPE_FIELDS]


def _scope_where(scope: Scope | ScopeSet, prefix: str = "") -> tuple[str, list[Any]]:
    groups: list[str] = []
    params: list[Any] = []
    for member in scope_members(scope):
        fields = member.fields()
        groups.append("(" + " AND ".join(f"{prefix}{n} = ?" for n in fields) + ")")
        params.extend(fields.values())
    return "(" + " OR ".join(groups) + ")", params


def _row_scope(values: Sequence[Any]) -> Scope:
    return Scope(**{f: v for f, v in zip(SCOPE_FIELDS, values, strict=True) if v is not None})


def write_links(
    cur: Cursor, placeholder: str, links: Sequence[LinkRow], deletes: Sequence[tuple[str, str]]
) -> None:
    """Insert or replace links and delete ``(source_id, target_id)`` pairs."""
    if deletes:
        cur.executemany(
            _sql("DELETE FROM note_links WHERE source_id = ? AND target_id = ?", placeholder),
            [tuple(d) for d in deletes],
        )
    if links:
        marks = ", ".join("?" for _ in range(7 + len(SCOPE_FIELDS)))
        cur.executemany(
            _sql(
                f"INSERT INTO note_links (source_id, target_id, {_SCOPE}, link_type, made_by, "
                f"reason, score, created_at) VALUES ({marks}) "
                "ON CONFLICT (source_id, target_id) DO UPDATE SET link_type = excluded.link_type, "
                "made_by = excluded.made_by, reason = excluded.reason, score = excluded.score",
                placeholder,
            ),
            [
                (
                    link.source_id,
                    link.target_id,
                    *_scope_values(link.scope),
                    link.link_type,
                    link.made_by,
                    link.reason,
                    link.score,
                    link.created_at,
                )
                for link in links
            ],
        )


def read_links(
    cur: Cursor, placeholder: str, ids: Sequence[str], scope: Scope | ScopeSet | None
) -> list[LinkRow]:
    """Links touching any of ``ids`` (as source or target), limited to ``scope`` if given."""
    out: list[LinkRow] = []
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), 400):
        chunk = unique[start : start + 400]
        marks = ", ".join("?" for _ in chunk)
        where = f"(source_id IN ({marks}) OR target_id IN ({marks}))"
        params: list[Any] = [*chunk, *chunk]
        if scope is not None:
            scope_sql, scope_params = _scope_where(scope)
            where += f" AND {scope_sql}"
            params.extend(scope_params)
        cur.execute(
            _sql(
                f"SELECT source_id, target_id, {_SCOPE}, link_type, made_by, reason, score, "
                f"created_at FROM note_links WHERE {where} ORDER BY created_at, source_id, "
                "target_id",
                placeholder,
            ),
            params,
        )
        n = len(SCOPE_FIELDS)
        for row in cur.fetchall():
            out.append(
                LinkRow(
                    source_id=row[0],
                    target_id=row[1],
                    scope=_row_scope(row[2 : 2 + n]),
                    link_type=row[2 + n],
                    made_by=row[3 + n],
                    reason=row[4 + n],
                    score=float(row[5 + n]),
                    created_at=float(row[6 + n]),
                )
            )
    seen: set[tuple[str, str]] = set()
    unique_rows = []
    for link in out:
        if (link.source_id, link.target_id) not in seen:
            seen.add((link.source_id, link.target_id))
            unique_rows.append(link)
    return unique_rows


_PROFILE_COLUMNS = (
    f"id, profile_key, {_SCOPE}, field, value, value_type, sources, actor, reason, "
    "valid_from, valid_to, recorded_at, superseded_at"
)


def write_profile(
    cur: Cursor,
    placeholder: str,
    rows: Sequence[ProfileRow],
    supersede: Sequence[tuple[str, float, float | None]],
) -> None:
    """Close rows ``(id, superseded_at, valid_to)`` and insert new versions."""
    for row_id, at, valid_to in supersede:
        cur.execute(
            _sql(
                "UPDATE profile_fields SET superseded_at = ?, valid_to = COALESCE(?, valid_to) "
                "WHERE id = ? AND superseded_at IS NULL",
                placeholder,
            ),
            (at, valid_to, row_id),
        )
    if rows:
        marks = ", ".join("?" for _ in range(12 + len(SCOPE_FIELDS)))
        cur.executemany(
            _sql(f"INSERT INTO profile_fields ({_PROFILE_COLUMNS}) VALUES ({marks})", placeholder),
            [
                (
                    r.id,
                    r.profile_key,
                    *_scope_values(r.scope),
                    r.field,
                    json.dumps(r.value),
                    r.value_type,
                    json.dumps(list(r.sources)),
                    r.actor,
                    r.reason,
                    r.valid_from,
                    r.valid_to,
                    r.recorded_at,
                    r.superseded_at,
                )
                for r in rows
            ],
        )


def read_profile(
    cur: Cursor,
    placeholder: str,
    profile_key: str,
    *,
    current_only: bool = True,
    field_name: str | None = None,
) -> list[ProfileRow]:
    """The rows of one profile (its current values, or every version), oldest first."""
    where = "profile_key = ?"
    params: list[Any] = [profile_key]
    if current_only:
        where += " AND superseded_at IS NULL"
    if field_name is not None:
        where += " AND field = ?"
        params.append(field_name)
    cur.execute(
        _sql(
            f"SELECT {_PROFILE_COLUMNS} FROM profile_fields WHERE {where} ORDER BY recorded_at, id",
            placeholder,
        ),
        params,
    )
    return [_profile_row(row) for row in cur.fetchall()]


def _profile_row(row: Sequence[Any]) -> ProfileRow:
    n = len(SCOPE_FIELDS)
    return ProfileRow(
        id=row[0],
        profile_key=row[1],
        scope=_row_scope(row[2 : 2 + n]),
        field=row[2 + n],
        value=json.loads(row[3 + n]),
        value_type=row[4 + n],
        sources=tuple(json.loads(row[5 + n])),
        actor=row[6 + n],
        reason=row[7 + n],
        valid_from=row[8 + n],
        valid_to=row[9 + n],
        recorded_at=float(row[10 + n]),
        superseded_at=row[11 + n],
    )


def erase_profile(
    cur: Cursor,
    placeholder: str,
    *,
    ids: Sequence[str] = (),
    scope: Scope | None = None,
    keep: Callable[[ProfileRow], ProfileRow | None] | None = None,
) -> int:
    """Delete profile field versions of ``scope`` (and the scopes under it), or those whose
    sources name one of ``ids`` (values derived from forgotten facts); a current version
    deleted for ``ids`` outside ``scope`` is replaced by ``keep(row)`` where that gives one
    (what the field holds without them). Returns the rows deleted."""
    replacements: dict[str, ProfileRow] = {}
    if keep is not None:
        for memory_id in dict.fromkeys(ids):
            cur.execute(
                _sql(
                    f"SELECT {_PROFILE_COLUMNS} FROM profile_fields WHERE sources LIKE ? "
                    "AND superseded_at IS NULL ORDER BY recorded_at, id",
                    placeholder,
                ),
                [f'%"{memory_id}"%'],
            )
            for row in map(_profile_row, cur.fetchall()):
                if row.id not in replacements and not (scope and scope.contains(row.scope)):
                    replacements[row.id] = row
    dropped = 0
    if scope is not None:
        clause, values = _scope_where(scope)
        cur.execute(_sql(f"DELETE FROM profile_fields WHERE {clause}", placeholder), values)
        dropped += max(cur.rowcount, 0)
    for memory_id in dict.fromkeys(ids):
        cur.execute(
            _sql("DELETE FROM profile_fields WHERE sources LIKE ?", placeholder),
            [f'%"{memory_id}"%'],
        )
        dropped += max(cur.rowcount, 0)
    if keep is not None:
        kept = [new for row in replacements.values() if (new := keep(row)) is not None]
        write_profile(cur, placeholder, kept, ())
    return dropped


__all__ = [
    "LinkRow",
    "ProfileRow",
    "erase_profile",
    "read_links",
    "read_profile",
    "write_links",
    "write_profile",
]
