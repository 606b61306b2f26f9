"""API keys of the memory service (the ``agentmem_server`` package) in the relational stores.

One table, ``api_keys``: a key's id, name, the org it is bound to, the users and agents it is
limited to (JSON lists; empty: any), the SHA-256 of its secret (the secret itself is never
stored), and when it was created and revoked. The SQL is written once here against the
DB-API cursor both engines provide; each store supplies the placeholder and its transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from agentmem.stores._sql import Cursor


@dataclass(frozen=True, slots=True)
class KeyRow:
    """One API key as stored: never its secret, only the secret's hash."""

    id: str
    name: str
    org_id: str
    user_ids: tuple[str, ...]
    agent_ids: tuple[str, ...]
    secret_hash: str
    created_at: float
    revoked_at: float | None = None


KEY_COLUMNS: tuple[str, ...] = (
    "id",
    "name",
    "org_id",
    "user_ids",
    "agent_ids",
    "secret_hash",
    "created_at",
    "revoked_at",
)


def _sql(statement: str, placeholder: str) -> str:
    return statement.replace("?", placeholder)


def _row(values: Any) -> KeyRow:
    return KeyRow(
        id=values[0],
        name=values[1],
        org_id=values[2],
        user_ids=tuple(json.loads(values[3])),
        agent_ids=tuple(json.loads(values[4])),
        secret_hash=values[5],
        created_at=float(values[6]),
        revoked_at=None if values[7] is None else float(values[7]),
    )


def write_key(cur: Cursor, placeholder: str, row: KeyRow) -> None:
    """Insert a new key (its id must be new)."""
    marks = ", ".join("?" for _ in KEY_COLUMNS)
    cur.execute(
        _sql(f"INSERT INTO api_keys ({', '.join(KEY_COLUMNS)}) VALUES ({marks})", placeholder),
        [
            row.id,
            row.name,
            row.org_id,
            json.dumps(list(row.user_ids)),
            json.dumps(list(row.agent_ids)),
            row.secret_hash,
            row.created_at,
            row.revoked_at,
        ],
    )


def read_key(cur: Cursor, placeholder: str, key_id: str) -> KeyRow | None:
    """The key ``key_id``, revoked or not, or None."""
    cur.execute(
        _sql(f"SELECT {', '.join(KEY_COLUMNS)} FROM api_keys WHERE id = ?", placeholder),
        [key_id],
    )
    found = cur.fetchone()
    return None if found is None else _row(found)


def read_keys(cur: Cursor, placeholder: str, org_id: str | None) -> list[KeyRow]:
    """Every key (of one org, if given), oldest first."""
    where, params = ("WHERE org_id = ?", [org_id]) if org_id is not None else ("", [])
    cur.execute(
        _sql(
            f"SELECT {', '.join(KEY_COLUMNS)} FROM api_keys {where} ORDER BY created_at, id",
            placeholder,
        ),
        params,
    )
    return [_row(r) for r in cur.fetchall()]


def revoke_key(cur: Cursor, placeholder: str, key_id: str, at: float) -> bool:
    """Mark the key revoked at ``at``; False when no unrevoked key has that id."""
    cur.execute(
        _sql("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", placeholder),
        [at, key_id],
    )
    return cur.rowcount > 0


__all__ = ["KEY_COLUMNS", "KeyRow", "read_key", "read_keys", "revoke_key"]
