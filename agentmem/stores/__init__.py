"""Record stores (the system of record): SQLite embedded, PostgreSQL at scale.

:class:`RecordStore` is the records core; what else a store keeps is one optional interface
each (:mod:`agentmem.stores.capabilities`), checked with ``isinstance`` or :func:`require`.
"""

from __future__ import annotations

from agentmem.errors import InvalidSettings
from agentmem.stores.base import (
    IndexOp,
    OutboxItem,
    RecordQuery,
    RecordStore,
    StoreCounts,
    WriteBatch,
)
from agentmem.stores.capabilities import (
    CAPABILITIES,
    ForgetJob,
    ForgetJournal,
    GraphRows,
    JobLedger,
    KeyStore,
    MaintenanceLog,
    NoteStore,
    QuarantineRow,
    QuarantineStore,
    SessionTexts,
    UtilityLedger,
    require,
)
from agentmem.stores.sqlite import SQLiteStore


def store_from_url(
    url: str, *, pool_min: int = 1, pool_max: int = 8, timeout: float = 5.0
) -> RecordStore:
    """Build (without connecting) the record store a URL names."""
    if url.startswith("sqlite://"):
        return SQLiteStore.from_url(url)
    if url.startswith(("postgresql://", "postgres://")):
        from agentmem.stores.postgres import PostgresStore

        return PostgresStore(url, pool_min=pool_min, pool_max=pool_max, timeout=timeout)
    raise InvalidSettings(f"unknown store URL {url!r}; use sqlite:///path or postgresql://...")


__all__ = [
    "CAPABILITIES",
    "ForgetJob",
    "ForgetJournal",
    "GraphRows",
    "IndexOp",
    "JobLedger",
    "KeyStore",
    "MaintenanceLog",
    "NoteStore",
    "OutboxItem",
    "QuarantineRow",
    "QuarantineStore",
    "RecordQuery",
    "RecordStore",
    "SQLiteStore",
    "SessionTexts",
    "StoreCounts",
    "UtilityLedger",
    "WriteBatch",
    "require",
    "store_from_url",
]
