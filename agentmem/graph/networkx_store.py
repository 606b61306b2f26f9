"""The embedded graph backend: networkx in memory, persisted in the system-of-record store.

Each partition lives in memory as a :class:`~agentmem.graph.state.GraphState` (a networkx
``MultiDiGraph`` of entities and relations plus the other items) and in two tables of the
record store (SQLite or PostgreSQL, see :mod:`agentmem.stores._graph_sql`), one row per item,
so an update writes only what it changed, in one transaction with a version check. A partition
is read back on first use after open (checked: a corrupt row is
:class:`~agentmem.errors.GraphCorrupt`, repaired by ``agentmem reindex --graph``), and read
again whenever another process moved its version or dropped and wrote it again (a new
generation; PostgreSQL shared by several processes).
"""

from __future__ import annotations

from collections.abc import Sequence

from agentmem.errors import MissingCapability
from agentmem.graph.base import GraphStore
from agentmem.graph.model import GraphChange, ItemKind, dump_item
from agentmem.models import Scope, ScopeSet
from agentmem.stores import GraphRows, RecordStore
from agentmem.stores._graph_sql import GraphPartition, GraphRow
from agentmem.urls import redact


class NetworkXGraphStore(GraphStore):
    """Knowledge graphs in memory (networkx), persisted in ``store``'s graph tables."""

    persistent = True

    def __init__(self, store: RecordStore) -> None:
        super().__init__()
        self._store = store
        self.url = f"networkx+store:{redact(store.url)}"
        self.shared = store.supports_concurrent_processes

    def setup(self) -> None:
        self._rows()

    def _rows(self) -> GraphRows:
        if not isinstance(self._store, GraphRows):
            raise MissingCapability(
                f"the store {redact(self._store.url)} keeps no knowledge graph; use SQLite or "
                "PostgreSQL, or a graph server (AGENTMEM_GRAPH_URL=neo4j://...)"
            )
        return self._store

    def close(self) -> None:
        self.forget_cache()

    def partitions(self, scope: Scope | ScopeSet | None) -> list[GraphPartition]:
        return self._rows().graph_partitions(scope)

    def partitions_holding(self, kind: ItemKind, item_ids: Sequence[str]) -> list[GraphPartition]:
        if not item_ids:
            return []
        return self._rows().graph_partitions_holding(kind.value, item_ids)

    def read_rows(self, partition: GraphPartition) -> list[tuple[str, str, str]]:
        return [(r.kind, r.item_id, r.data) for r in self._rows().graph_rows(partition.key)]

    def write_change(
        self,
        scope: Scope,
        key: str,
        expected_version: int,
        change: GraphChange,
        *,
        generation: str,
    ) -> int:
        return self._rows().graph_write(
            key=key,
            scope=scope,
            expected_version=expected_version,
            generation=generation,
            upserts=[GraphRow(i.kind.value, i.id, dump_item(i)) for i in change.upserts],
            deletes=[(kind.value, item_id) for kind, item_id in change.deletes],
            replace=change.replace,
        )

    def drop_partitions(self, scope: Scope | ScopeSet | None) -> int:
        return self._rows().graph_drop(scope)


__all__ = ["NetworkXGraphStore"]
