"""The knowledge graph's tables in the relational stores (SQLite and PostgreSQL).

The embedded graph backend (:mod:`agentmem.graph.networkx_store`) keeps each scope's graph in
memory as networkx and persists it here, one row per item (entity, relation, episode link,
community, merge, fact contribution), so an update writes only what changed. A partition is
the graph of one exact scope; ``graph_partitions`` carries its scope fields (so isolation is a
``WHERE`` on them, as for records), a version that every write bumps and a generation (a
random id given when the partition is created, so a partition dropped and written again is
told apart from the old one at the same version number). A write is a compare-and-set on both:
a process whose cached graph is older or of an earlier generation reloads it, a concurrent
writer gets ``Conflict``.

The SQL is written once here against the DB-API cursor both engines provide; each store
supplies the placeholder, its column types and its transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agentmem.errors import Conflict
from agentmem.models import SCOPE_FIELDS, Scope, ScopeSet, scope_members
from agentmem.stores._sql import Cursor


@dataclass(frozen=True, slots=True)
class GraphPartition:
    """One scope's graph as stored: its key, its exact scope, its version (0: empty) and its
    generation (the id of this incarnation: a partition dropped and created again gets a new
    one, so a copy cached from before the drop is never taken for the new partition, whatever
    their version numbers; ``""`` for partitions written before generations existed).
    ``broken``: a change to it was only partly written (a graph server without rollback,
    :mod:`agentmem.graph.cypher.statements`); it must be rebuilt. Never set here: a SQL
    transaction is whole or nothing."""

    key: str
    scope: Scope
    version: int
    generation: str = ""
    broken: bool = False


@dataclass(frozen=True, slots=True)
class GraphRow:
    """One stored graph item: its kind, its id and its JSON (parsed by :mod:`agentmem.graph`)."""

    kind: str
    item_id: str
    data: str


_PARTITION_COLS = ("key", *SCOPE_FIELDS, "version", "generation")


def _sql(statement: str, placeholder: str) -> str:
    return statement.replace("?", placeholder)


def _scope_where(scope: Scope | ScopeSet | None) -> tuple[str, list[Any]]:
    """``WHERE`` text (without the keyword) for partitions a query scope may read: every
    field the scope sets must match, as for records; a set of scopes is an OR."""
    if scope is None:
        return "TRUE", []
    groups: list[str] = []
    params: list[Any] = []
    for member in scope_members(scope):
        fields = member.fields()
        groups.append("(" + " AND ".join(f"{name} = ?" for name in fields) + ")")
        params.extend(fields.values())
    return "(" + " OR ".join(groups) + ")", params


def _partition(row: Sequence[Any]) -> GraphPartition:
    values = dict(zip(_PARTITION_COLS, row, strict=True))
    fields = {f: values[f] for f in SCOPE_FIELDS if values[f] is not None}
    return GraphPartition(
        key=values["key"],
        scope=Scope.model_construct(**fields),
        version=int(values["version"]),
        generation=values["generation"],
    )


def partitions(
    cur: Cursor, placeholder: str, scope: Scope | ScopeSet | None
) -> list[GraphPartition]:
    """The partitions a scope may read (every partition for ``None``), by key."""
    where, params = _scope_where(scope)
    cur.execute(
        _sql(
            f"SELECT {', '.join(_PARTITION_COLS)} FROM graph_partitions WHERE {where} ORDER BY key",
            placeholder,
        ),
        params,
    )
    return [_partition(r) for r in cur.fetchall()]


def partitions_holding(
    cur: Cursor, placeholder: str, kind: str, item_ids: Sequence[str]
) -> list[GraphPartition]:
    """The partitions holding an item of ``kind`` with one of these ids."""
    found: dict[str, GraphPartition] = {}
    unique = list(dict.fromkeys(item_ids))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        cols = ", ".join(f"p.{c}" for c in _PARTITION_COLS)
        cur.execute(
            _sql(
                f"SELECT DISTINCT {cols} FROM graph_items i JOIN graph_partitions p "
                f"ON p.key = i.partition WHERE i.kind = ? AND i.item_id IN ({marks})",
                placeholder,
            ),
            [kind, *chunk],
        )
        for row in cur.fetchall():
            p = _partition(row)
            found[p.key] = p
    return [found[k] for k in sorted(found)]


def rows(cur: Cursor, placeholder: str, key: str) -> list[GraphRow]:
    """Every item of one partition."""
    cur.execute(
        _sql(
            "SELECT kind, item_id, data FROM graph_items WHERE partition = ? "
            "ORDER BY kind, item_id",
            placeholder,
        ),
        [key],
    )
    return [GraphRow(kind, item_id, data) for kind, item_id, data in cur.fetchall()]


def write(
    cur: Cursor,
    placeholder: str,
    *,
    key: str,
    scope: Scope,
    expected_version: int,
    generation: str,
    upserts: Sequence[GraphRow],
    deletes: Sequence[tuple[str, str]],
    replace: bool,
    now: float,
) -> int:
    """Apply one change to a partition, inside the caller's transaction; returns the new
    version. The partition must still be ``generation`` at ``expected_version``; with
    ``expected_version`` 0 it must not exist, and is created as ``generation``. Raises
    :class:`Conflict` otherwise."""
    cur.execute(
        _sql(
            "UPDATE graph_partitions SET version = version + 1, updated_at = ? "
            "WHERE key = ? AND version = ? AND generation = ?",
            placeholder,
        ),
        [now, key, expected_version, generation],
    )
    if cur.rowcount != 1:
        cur.execute(
            _sql("SELECT version, generation FROM graph_partitions WHERE key = ?", placeholder),
            [key],
        )
        current = cur.fetchone()
        if current is not None or expected_version != 0:
            found = current[0] if current is not None else 0
            rebuilt = current is not None and expected_version != 0 and current[1] != generation
            raise Conflict(
                f"the knowledge graph of scope {scope} changed (version {found}"
                f"{' of a rebuilt graph' if rebuilt else ''}, expected {expected_version}); "
                "it is reloaded and the update retried"
            )
        fields = scope.fields()
        cur.execute(
            _sql(
                f"INSERT INTO graph_partitions (key, {', '.join(SCOPE_FIELDS)}, version, "
                "generation, updated_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?)",
                placeholder,
            ),
            [key, *(fields.get(f) for f in SCOPE_FIELDS), generation, now],
        )
    if replace:
        cur.execute(_sql("DELETE FROM graph_items WHERE partition = ?", placeholder), [key])
    if deletes:
        cur.executemany(
            _sql("DELETE FROM graph_items WHERE partition = ? AND kind = ? AND item_id = ?",
                 placeholder),
            [(key, kind, item_id) for kind, item_id in deletes],
        )  # fmt: skip
    if upserts:
        cur.executemany(
            _sql(
                "INSERT INTO graph_items (partition, kind, item_id, data) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (partition, kind, item_id) DO UPDATE SET data = excluded.data",
                placeholder,
            ),
            [(key, r.kind, r.item_id, r.data) for r in upserts],
        )
    return expected_version + 1


def drop(cur: Cursor, placeholder: str, scope: Scope | ScopeSet | None) -> int:
    """Delete the partitions a scope may read (all for ``None``); returns how many."""
    keys = [p.key for p in partitions(cur, placeholder, scope)]
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        cur.execute(
            _sql(f"DELETE FROM graph_items WHERE partition IN ({marks})", placeholder), chunk
        )
        cur.execute(
            _sql(f"DELETE FROM graph_partitions WHERE key IN ({marks})", placeholder), chunk
        )
    return len(keys)


__all__ = [
    "GraphPartition",
    "GraphRow",
    "drop",
    "partitions",
    "partitions_holding",
    "rows",
    "write",
]
