"""What every openCypher graph backend shares: reads through :mod:`agentmem.graph.cypher`.

A Cypher backend (Neo4j, FalkorDB) subclasses :class:`CypherGraphStore` and supplies three
things: ``_read`` (run read statements, return rows as dicts), ``write_change`` and
``drop_partitions`` (how its engine applies a change atomically), and the lifecycle. The
partition listing, item reads and the bounded reads behind :meth:`GraphStore.subgraph` are
here, once, so each is one indexed query on every engine.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

from agentmem.errors import Conflict
from agentmem.graph import cypher
from agentmem.graph.base import GraphStore
from agentmem.graph.cypher import CypherDialect, Statement
from agentmem.graph.model import ItemKind
from agentmem.models import SCOPE_FIELDS, Scope, ScopeSet
from agentmem.stores._graph_sql import GraphPartition

Row = tuple[str, str, str]


class CypherGraphStore(GraphStore):
    """A :class:`GraphStore` on an openCypher server (see the module docstring)."""

    persistent = True
    shared = True
    bounded_reads = True
    dialect: CypherDialect
    claim_wait_s: float = 5.0
    """How long a read of a partition waits for a change being written to it (see
    :meth:`read_rows`)."""

    def __init__(self) -> None:
        super().__init__()
        self._counts: dict[str, tuple[str, int, int]] = {}
        """Entity count per partition key, at the generation and version it was counted."""

    @abstractmethod
    def _read(self, statements: Sequence[Statement]) -> list[dict[str, Any]]:
        """Run read statements; every row of every statement, as ``{column: value}``."""

    @staticmethod
    def _partition(row: dict[str, Any]) -> GraphPartition:
        fields = {f: row[f] for f in SCOPE_FIELDS if row.get(f) is not None}
        return GraphPartition(
            key=row["key"],
            scope=Scope.model_construct(**fields),
            version=int(row["version"]),
            generation=row.get("generation") or "",
            broken=bool(row.get("broken")),
        )

    @staticmethod
    def _rows(rows: list[dict[str, Any]]) -> list[Row]:
        return [(r["kind"], r["id"], r["data"]) for r in rows]

    def partitions(self, scope: Scope | ScopeSet | None) -> list[GraphPartition]:
        return [self._partition(r) for r in self._read([cypher.partitions(scope)])]

    def partitions_holding(self, kind: ItemKind, item_ids: Sequence[str]) -> list[GraphPartition]:
        if not item_ids:
            return []
        rows = self._read([cypher.partitions_holding(kind, list(dict.fromkeys(item_ids)))])
        return [self._partition(r) for r in rows]

    @staticmethod
    def _check_claim(
        scope: Scope, expected_version: int, generation: str, claim: dict[str, Any]
    ) -> None:
        """Raise :class:`~agentmem.errors.Conflict` unless the claim (the row of
        :func:`~agentmem.graph.cypher.statements.claim_partition`) was won."""
        if claim["claimed"]:
            return
        found = int(claim["version"])
        rebuilt = expected_version and found and claim["generation"] != generation
        raise Conflict(
            f"the knowledge graph of scope {scope} changed (version {found}"
            f"{' of a rebuilt graph' if rebuilt else ''}, expected {expected_version}); it is "
            "reloaded and the update retried"
        )

    def read_rows(self, partition: GraphPartition) -> list[Row]:
        """The partition's items, read when no change holds its claim: a change of several
        statements that reads can come between (FalkorDB) is waited for, up to
        ``claim_wait_s`` (then it is read as it is; each state between two statements of a
        change is ordered to read as a graph, though not always as a whole one)."""
        deadline = time.monotonic() + self.claim_wait_s
        pause = 0.005
        while True:
            rows = self._read([cypher.read_partition(partition.key)])
            held = any(r["kind"] == cypher.CLAIM_ROW and r["id"] is not None for r in rows)
            if not held or time.monotonic() >= deadline:
                return self._rows([r for r in rows if r["kind"] != cypher.CLAIM_ROW])
            time.sleep(pause)
            pause = min(2 * pause, 0.2)

    def forget_cache(self) -> None:
        with self.lock:
            super().forget_cache()
            self._counts.clear()

    # bounded reads, on the server -----------------------------------------------------------

    def entity_count(self, partition: GraphPartition) -> int:
        at = (partition.generation, partition.version)
        with self.lock:
            cached = self._counts.get(partition.key)
            if cached is not None and cached[:2] == at:
                return cached[2]
        count = int(self._read([cypher.entity_count(partition.key)])[0]["n"])
        with self.lock:
            self._counts[partition.key] = (*at, count)
        return count

    def entities_named(self, partition: GraphPartition, names: Sequence[str]) -> list[str]:
        if not names:
            return []
        rows = self._read([cypher.entities_named(partition.key, list(dict.fromkeys(names)))])
        return [r["id"] for r in rows]

    def neighbour_ids(
        self, partition: GraphPartition, ids: Sequence[str], exclude: Sequence[str], limit: int
    ) -> list[str]:
        if not ids or limit <= 0:
            return []
        statement = cypher.neighbour_ids(partition.key, list(ids), list(exclude), limit)
        return [r["id"] for r in self._read([statement])]

    def item_rows(self, partition: GraphPartition, kind: ItemKind, ids: Sequence[str]) -> list[Row]:
        if not ids:
            return []
        if kind is ItemKind.RELATION:
            raise ValueError("relations are read with relation_rows_between")
        return self._rows(
            self._read([cypher.item_rows(kind, partition.key, list(dict.fromkeys(ids)))])
        )

    def relation_rows_between(self, partition: GraphPartition, ids: Sequence[str]) -> list[Row]:
        if not ids:
            return []
        return self._rows(self._read([cypher.relation_rows_between(partition.key, list(ids))]))


__all__ = ["CypherGraphStore"]
