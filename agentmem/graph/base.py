"""The graph store: the interface every knowledge-graph backend implements.

A backend keeps **partitions** (one per exact scope, see :mod:`agentmem.graph.model`), each a
set of items with a version. Its abstract core is five methods over whole items: list the
partitions a scope may read (isolation lives in that query), find the partitions holding some
items, read a partition's items, write one :class:`~agentmem.graph.model.GraphChange`
atomically with compare-and-set on the version, and drop partitions. Everything else is
concrete here: a partition is loaded into a :class:`~agentmem.graph.state.GraphState` (checked
on load: :class:`~agentmem.errors.GraphCorrupt` if it cannot be read), cached while its stored
version does not move, and every change is checked before it is written.

Lifecycle as for the other backends: a constructor that does no I/O, ``setup()`` (idempotent:
tables, indexes and constraints), ``close()``, context-manager use.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from types import TracebackType
from typing import Self

from agentmem.graph.model import GraphChange, ItemKind, partition_key
from agentmem.graph.state import GraphState
from agentmem.models import Scope, ScopeSet
from agentmem.stores._graph_sql import GraphPartition


class GraphStore(ABC):
    """Knowledge graphs, one partition per scope, loaded into memory for the algorithms."""

    url: str
    persistent: bool = True
    """Whether graphs survive a restart of the process."""
    shared: bool = False
    """Whether several processes may write the same graphs (each reloads a partition whose
    version moved)."""

    def __init__(self) -> None:
        self._cache: dict[str, GraphState] = {}
        self._lock: threading.RLock = threading.RLock()

    # the abstract core --------------------------------------------------------------------

    @abstractmethod
    def setup(self) -> None:
        """Connect and create what the backend needs (tables, indexes, constraints). Safe to
        call again."""

    @abstractmethod
    def close(self) -> None:
        """Release connections. Safe to call again."""

    @abstractmethod
    def partitions(self, scope: Scope | ScopeSet | None) -> list[GraphPartition]:
        """The stored partitions a query scope may read (every one for ``None``), by key.
        A partition is readable when the query scope contains the partition's scope."""

    @abstractmethod
    def partitions_holding(self, kind: ItemKind, item_ids: Sequence[str]) -> list[GraphPartition]:
        """The partitions holding an item of ``kind`` with one of these ids."""

    @abstractmethod
    def read_rows(self, partition: GraphPartition) -> list[tuple[str, str, str]]:
        """Every stored item of a partition as ``(kind, id, json)``."""

    @abstractmethod
    def write_change(
        self, scope: Scope, key: str, expected_version: int, change: GraphChange
    ) -> int:
        """Apply a (checked, compacted) change in one transaction if the partition is still at
        ``expected_version`` (0: not stored yet); returns the new version. Raises
        :class:`~agentmem.errors.Conflict` otherwise."""

    @abstractmethod
    def drop_partitions(self, scope: Scope | ScopeSet | None) -> int:
        """Delete the partitions a scope may read (all for ``None``); returns how many."""

    # concrete conveniences ------------------------------------------------------------------

    @property
    def lock(self) -> threading.RLock:
        """Held while a cached partition changes; hold it to read partitions consistently
        while other threads write (reentrant)."""
        return self._lock

    def state(self, partition: GraphPartition) -> GraphState:
        """A stored partition in memory (cached while its version does not move).
        :class:`~agentmem.errors.GraphCorrupt` when its items cannot be read."""
        with self._lock:
            cached = self._cache.get(partition.key)
            if cached is not None and cached.version == partition.version:
                return cached
            loaded = GraphState.from_rows(
                partition.scope, partition.key, partition.version, self.read_rows(partition)
            )
            self._cache[partition.key] = loaded
            return loaded

    def states(self, scope: Scope | ScopeSet) -> list[GraphState]:
        """Every partition a query scope may read, in memory."""
        return [self.state(p) for p in self.partitions(scope)]

    def state_of(self, scope: Scope) -> GraphState:
        """The partition of exactly this scope (empty, version 0, when none is stored yet)."""
        key = partition_key(scope)
        for partition in self.partitions(scope):
            if partition.key == key:
                return self.state(partition)
        with self._lock:
            self._cache.pop(key, None)
        return GraphState(scope, key, 0)

    def write(self, state: GraphState, change: GraphChange) -> None:
        """Check ``change`` against ``state``, store it, then apply it to ``state`` (which
        becomes the cached copy). Bad changes raise :class:`~agentmem.errors.ValidationError`
        and store nothing; a concurrent writer makes it :class:`~agentmem.errors.Conflict`."""
        change = change.compact()
        if change.is_empty():
            return
        with self._lock:
            state.check(change)
            try:
                version = self.write_change(state.scope, state.key, state.version, change)
                state.apply(change)
            except BaseException:
                self._cache.pop(state.key, None)
                raise
            state.version = version
            self._cache[state.key] = state

    def drop(self, scope: Scope | ScopeSet | None = None) -> int:
        """Delete the graphs a scope may read (all for ``None``); returns how many partitions."""
        with self._lock:
            dropped = self.drop_partitions(scope)
            self._cache.clear()
        return dropped

    def forget_cache(self) -> None:
        """Drop every partition held in memory (they are read again on next use)."""
        with self._lock:
            self._cache.clear()

    def __enter__(self) -> Self:
        self.setup()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


__all__ = ["GraphPartition", "GraphStore"]
