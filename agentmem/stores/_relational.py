"""The optional store interfaces, implemented once for every SQL store.

Each mixin implements one interface of :mod:`agentmem.stores.capabilities` with the SQL of
its ``_*_sql`` module. A store supplies only what differs between engines
(:class:`SQLEngine`): its placeholder, the JSON cast, a cursor for single statements and a
cursor inside one transaction. So SQLite and PostgreSQL run the same code, and a new SQL
store gains every capability by inheriting :class:`SQLCapabilities`.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from agentmem.models import MemoryRecord, Scope, ScopeSet
from agentmem.stores import _forget_sql, _graph_sql, _jobs_sql, _keys_sql, _notes_sql, _utility_sql
from agentmem.stores._forget_sql import ForgetJob, QuarantineRow
from agentmem.stores._graph_sql import GraphPartition, GraphRow
from agentmem.stores._jobs_sql import JobRow, Watermark
from agentmem.stores._keys_sql import KeyRow
from agentmem.stores._notes_sql import LinkRow, ProfileRow
from agentmem.stores._sql import (
    RECORD_COLUMNS,
    Cursor,
    Dialect,
    rank_field_columns,
    row_to_rank_fields,
    row_to_record,
    rows_to_session_stamps,
    rows_to_session_turns,
    session_stamps_sql,
    session_turns_sql,
)
from agentmem.stores._utility_sql import FeedbackWrite, RetrievalRow, UtilityChange, UtilityRow
from agentmem.stores.base import RankFields, RecordQuery, SessionKey, SessionStamp, SessionTurn
from agentmem.stores.capabilities import (
    ForgetJournal,
    GraphRows,
    JobLedger,
    KeyStore,
    MaintenanceLog,
    NoteStore,
    QuarantineStore,
    SessionTexts,
    UtilityLedger,
)


class SQLEngine(ABC):
    """What a SQL store supplies to the mixins: the only engine-specific part."""

    placeholder: str
    """The parameter marker (``?`` for SQLite, ``%s`` for PostgreSQL)."""
    json_cast: str = ""
    """Appended to a placeholder whose value goes into a JSON column (``::jsonb``)."""
    _dialect: Dialect
    """The store's metadata conditions and JSON access (:mod:`agentmem.stores._sql`)."""

    @abstractmethod
    def _cursor(self) -> AbstractContextManager[Cursor]:
        """A cursor for statements that need no transaction of their own."""

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Cursor]:
        """A cursor inside one transaction: committed on exit, rolled back on an error."""

    def _bookkeeping(self) -> AbstractContextManager[Cursor]:
        """A cursor for bookkeeping writes (recall counts, the retrieval log, outbox acks),
        whose commit need not wait for the disk: an application crash loses none of them, a
        power cut may lose the last few (a lost ack re-applies idempotent index entries), and
        nothing a user stored is among them. Engines that can commit without flushing override
        this; by default it is :meth:`_cursor`."""
        return self._cursor()

    @abstractmethod
    def _rows_by_id(
        self,
        ids: Sequence[str],
        scope: Scope | ScopeSet | None,
        columns: str,
        column_params: Sequence[Any] = (),
    ) -> list[Any]:
        """``columns`` (with their ``column_params``) of the ``memories`` rows with these ids
        in ``scope``."""


class SQLGraphRows(SQLEngine, GraphRows):
    """:class:`~agentmem.stores.capabilities.GraphRows` in the ``graph_*`` tables."""

    def graph_partitions(self, scope: Scope | ScopeSet | None) -> list[GraphPartition]:
        with self._cursor() as cur:
            return _graph_sql.partitions(cur, self.placeholder, scope)

    def graph_partitions_holding(self, kind: str, item_ids: Sequence[str]) -> list[GraphPartition]:
        with self._cursor() as cur:
            return _graph_sql.partitions_holding(cur, self.placeholder, kind, item_ids)

    def graph_rows(self, key: str) -> list[GraphRow]:
        with self._cursor() as cur:
            return _graph_sql.rows(cur, self.placeholder, key)

    def graph_write(
        self,
        *,
        key: str,
        scope: Scope,
        expected_version: int,
        generation: str,
        upserts: Sequence[GraphRow],
        deletes: Sequence[tuple[str, str]],
        replace: bool = False,
    ) -> int:
        with self._transaction() as cur:
            return _graph_sql.write(
                cur,
                self.placeholder,
                key=key,
                scope=scope,
                expected_version=expected_version,
                generation=generation,
                upserts=upserts,
                deletes=deletes,
                replace=replace,
                now=time.time(),
            )

    def graph_drop(self, scope: Scope | ScopeSet | None) -> int:
        with self._transaction() as cur:
            return _graph_sql.drop(cur, self.placeholder, scope)


class SQLJobLedger(SQLEngine, JobLedger):
    """:class:`~agentmem.stores.capabilities.JobLedger` in the ``consolidation_*`` tables."""

    def job_write(self, row: JobRow) -> None:
        with self._cursor() as cur:
            _jobs_sql.write_job(cur, self.placeholder, row)

    def job_rows(
        self, *, scope: str | None = None, run_id: str | None = None, limit: int = 100
    ) -> list[JobRow]:
        with self._cursor() as cur:
            return _jobs_sql.read_jobs(
                cur, self.placeholder, scope=scope, run_id=run_id, limit=limit
            )

    def watermark(self, scope: str, stage: str) -> Watermark | None:
        with self._cursor() as cur:
            return _jobs_sql.read_watermark(cur, self.placeholder, scope, stage)

    def watermarks(self, stage: str) -> list[Watermark]:
        with self._cursor() as cur:
            return _jobs_sql.read_watermarks(cur, self.placeholder, stage)

    def set_watermark(self, scope: str, stage: str, value: str) -> None:
        with self._cursor() as cur:
            _jobs_sql.write_watermark(cur, self.placeholder, scope, stage, value, time.time())

    def lease(self, name: str, owner: str, ttl_s: float) -> bool:
        with self._cursor() as cur:
            return _jobs_sql.acquire_lock(cur, self.placeholder, name, owner, time.time(), ttl_s)

    def lease_owner(self, name: str) -> str | None:
        with self._cursor() as cur:
            return _jobs_sql.lock_owner(cur, self.placeholder, name, time.time())

    def release(self, name: str, owner: str) -> bool:
        with self._cursor() as cur:
            return _jobs_sql.release_lock(cur, self.placeholder, name, owner)


class SQLUtilityLedger(SQLEngine, UtilityLedger):
    """:class:`~agentmem.stores.capabilities.UtilityLedger` in the utility tables."""

    def record_retrieval(self, rid: str, scope: str, ids: Sequence[str], at: float) -> None:
        with self._bookkeeping() as cur:
            _utility_sql.record_retrieval(cur, self.placeholder, rid, scope, ids, at)

    def record_retrievals(self, rows: Sequence[RetrievalRow]) -> None:
        with self._bookkeeping() as cur:
            _utility_sql.record_retrievals(cur, self.placeholder, rows)

    def retrieval(self, rid: str) -> RetrievalRow | None:
        with self._cursor() as cur:
            return _utility_sql.read_retrieval(cur, self.placeholder, rid)

    def utilities(self, ids: Sequence[str]) -> dict[str, UtilityRow]:
        if not ids:
            return {}
        with self._cursor() as cur:
            return _utility_sql.read_utilities(cur, self.placeholder, ids)

    def rated_utilities(self, min_count: int) -> list[UtilityRow]:
        with self._cursor() as cur:
            return _utility_sql.rated(cur, self.placeholder, min_count)

    def apply_feedback(self, feedback: FeedbackWrite) -> list[UtilityChange] | None:
        with self._transaction() as cur:
            return _utility_sql.apply_feedback(
                cur, self.placeholder, feedback, json_cast=self.json_cast
            )

    def utility_forget(self, ids: Sequence[str]) -> int:
        with self._transaction() as cur:
            return _utility_sql.forget_ids(cur, self.placeholder, ids, self.json_cast)


class SQLKeyStore(SQLEngine, KeyStore):
    """:class:`~agentmem.stores.capabilities.KeyStore` in ``api_keys``."""

    def key_write(self, row: KeyRow) -> None:
        with self._cursor() as cur:
            _keys_sql.write_key(cur, self.placeholder, row)

    def key_get(self, key_id: str) -> KeyRow | None:
        with self._cursor() as cur:
            return _keys_sql.read_key(cur, self.placeholder, key_id)

    def key_rows(self, org_id: str | None = None) -> list[KeyRow]:
        with self._cursor() as cur:
            return _keys_sql.read_keys(cur, self.placeholder, org_id)

    def key_revoke(self, key_id: str, at: float) -> bool:
        with self._cursor() as cur:
            return _keys_sql.revoke_key(cur, self.placeholder, key_id, at)


class SQLNoteStore(SQLEngine, NoteStore):
    """:class:`~agentmem.stores.capabilities.NoteStore` in ``note_links`` and
    ``profile_fields``."""

    def link_write(self, links: Sequence[LinkRow], deletes: Sequence[tuple[str, str]] = ()) -> None:
        with self._transaction() as cur:
            _notes_sql.write_links(cur, self.placeholder, links, deletes)

    def link_rows(self, ids: Sequence[str], scope: Scope | ScopeSet | None = None) -> list[LinkRow]:
        with self._cursor() as cur:
            return _notes_sql.read_links(cur, self.placeholder, ids, scope)

    def profile_write(
        self, rows: Sequence[ProfileRow], supersede: Sequence[tuple[str, float, float | None]] = ()
    ) -> None:
        with self._transaction() as cur:
            _notes_sql.write_profile(cur, self.placeholder, rows, supersede)

    def profile_rows(
        self, profile_key: str, *, current_only: bool = True, field: str | None = None
    ) -> list[ProfileRow]:
        with self._cursor() as cur:
            return _notes_sql.read_profile(
                cur, self.placeholder, profile_key, current_only=current_only, field_name=field
            )

    def profile_erase(
        self,
        *,
        ids: Sequence[str] = (),
        scope: Scope | None = None,
        keep: Callable[[ProfileRow], ProfileRow | None] | None = None,
    ) -> int:
        with self._transaction() as cur:
            return _notes_sql.erase_profile(cur, self.placeholder, ids=ids, scope=scope, keep=keep)


class SQLQuarantineStore(SQLEngine, QuarantineStore):
    """:class:`~agentmem.stores.capabilities.QuarantineStore` in ``quarantine``."""

    def quarantine_hold(self, records: Sequence[MemoryRecord], at: float) -> None:
        if not records:
            return
        with self._transaction() as cur:
            for r in records:
                _forget_sql.put_quarantine(
                    cur,
                    self.placeholder,
                    memory_id=r.id,
                    scope=r.scope,
                    record=r.model_dump(mode="json"),
                    source=str(r.provenance.get("source", "")),
                    flags=list(r.provenance.get("flags", [])),
                    at=at,
                )

    def quarantine_rows(
        self,
        *,
        scope: Scope | None = None,
        ids: Sequence[str] = (),
        limit: int = 1000,
        after: tuple[float, str] | None = None,
    ) -> list[QuarantineRow]:
        with self._transaction() as cur:
            return _forget_sql.read_quarantine(
                cur, self.placeholder, scope=scope, ids=ids, limit=limit, after=after
            )

    def quarantine_drop(self, ids: Sequence[str]) -> int:
        with self._transaction() as cur:
            return _forget_sql.drop_quarantine(cur, self.placeholder, ids)


class SQLForgetJournal(SQLEngine, ForgetJournal):
    """:class:`~agentmem.stores.capabilities.ForgetJournal` in ``forget_jobs`` and
    ``forget_tombstones``, scrubbing ``history`` and ``embedding_cache``."""

    def forget_begin(self, job: ForgetJob, tombstones: Sequence[tuple[str, Scope]]) -> None:
        with self._transaction() as cur:
            _forget_sql.write_job(cur, self.placeholder, job)
            _forget_sql.add_tombstones(
                cur, self.placeholder, job.forget_id, tombstones, job.created_at
            )

    def forget_job_write(self, job: ForgetJob) -> None:
        with self._transaction() as cur:
            _forget_sql.write_job(cur, self.placeholder, job)

    def forget_jobs(
        self, *, forget_id: str | None = None, statuses: Sequence[str] = (), limit: int = 100
    ) -> list[ForgetJob]:
        with self._transaction() as cur:
            return _forget_sql.read_jobs(
                cur, self.placeholder, forget_id=forget_id, statuses=statuses, limit=limit
            )

    def tombstone(self, forget_id: str, rows: Sequence[tuple[str, Scope]], at: float) -> None:
        with self._transaction() as cur:
            _forget_sql.add_tombstones(cur, self.placeholder, forget_id, rows, at)

    def tombstoned(self, ids: Sequence[str]) -> dict[str, Scope]:
        with self._transaction() as cur:
            return _forget_sql.tombstoned(cur, self.placeholder, ids)

    def history_only(
        self, *, scope: Scope | None = None, ids: Sequence[str] = ()
    ) -> dict[str, tuple[Scope, list[str]]]:
        with self._transaction() as cur:
            return _forget_sql.history_only(cur, self.placeholder, scope=scope, ids=ids)

    def scrub(
        self, ids: Sequence[str], content_hashes: Sequence[str], *, purge: bool
    ) -> tuple[int, int]:
        with self._transaction() as cur:
            touched = _forget_sql.scrub_history(cur, self.placeholder, ids, purge=purge)
            return touched, _forget_sql.drop_cached_vectors(cur, self.placeholder, content_hashes)

    def history_metadata(
        self, ids: Sequence[str]
    ) -> list[tuple[int, str, dict[str, Any] | None, dict[str, Any] | None]]:
        with self._transaction() as cur:
            return _forget_sql.history_metadata(cur, self.placeholder, ids)

    def history_metadata_write(
        self, rows: Sequence[tuple[int, dict[str, Any] | None, dict[str, Any] | None]]
    ) -> int:
        if not rows:
            return 0
        with self._transaction() as cur:
            return _forget_sql.write_history_metadata(cur, self.placeholder, rows, self.json_cast)


class SQLSessionTexts(SQLEngine, SessionTexts):
    """:class:`~agentmem.stores.capabilities.SessionTexts` from ``memories``: kind, scope,
    text and event time of each turn, its session value extracted from the metadata in SQL."""

    def session_turns(self, query: RecordQuery, key: str) -> list[SessionTurn]:
        sql, params = session_turns_sql(query, key, self._dialect)
        with self._cursor() as cur:
            cur.execute(sql, params)
            return rows_to_session_turns(cur.fetchall())

    def session_stamps(self, query: RecordQuery, key: str) -> dict[SessionKey, SessionStamp]:
        sql, params = session_stamps_sql(query, key, self._dialect)
        with self._cursor() as cur:
            cur.execute(sql, params)
            return rows_to_session_stamps(cur.fetchall())


class SQLMaintenanceLog(SQLEngine, MaintenanceLog):
    """:class:`~agentmem.stores.capabilities.MaintenanceLog` in the ``maintenance`` table."""

    def maintenance_begin(self, task: str, at: float) -> None:
        p = self.placeholder
        with self._transaction() as cur:
            cur.execute(
                f"INSERT INTO maintenance (task, started_at) VALUES ({p}, {p}) "
                "ON CONFLICT (task) DO UPDATE SET started_at = excluded.started_at",
                (task, at),
            )

    def maintenance_end(self, task: str, started_by: float) -> None:
        p = self.placeholder
        with self._transaction() as cur:
            cur.execute(
                f"DELETE FROM maintenance WHERE task = {p} AND started_at <= {p}",
                (task, started_by),
            )

    def maintenance_unfinished(self) -> dict[str, float]:
        with self._cursor() as cur:
            cur.execute("SELECT task, started_at FROM maintenance ORDER BY task")
            return {task: float(at) for task, at in cur.fetchall()}


class SQLCapabilities(
    SQLGraphRows,
    SQLJobLedger,
    SQLUtilityLedger,
    SQLKeyStore,
    SQLNoteStore,
    SQLQuarantineStore,
    SQLForgetJournal,
    SQLSessionTexts,
    SQLMaintenanceLog,
):
    """Every optional interface, for a SQL store with the shared schema; also reads records
    by id (:meth:`get_many`, :meth:`rank_fields`) and counts recalls (:meth:`touch`) in the
    ``memories`` table."""

    def get_many(
        self, ids: Sequence[str], scope: Scope | ScopeSet | None = None
    ) -> list[MemoryRecord]:
        """The records with these ids, limited to ``scope`` if given."""
        rows = self._rows_by_id(ids, scope, ", ".join(RECORD_COLUMNS))
        return [row_to_record(r) for r in rows]

    def rank_fields(
        self,
        ids: Sequence[str],
        scope: Scope | ScopeSet | None = None,
        session_key: str | None = None,
    ) -> list[RankFields]:
        """Only the rank columns (and the session value under ``session_key``) of those rows."""
        columns, params = rank_field_columns(self._dialect, session_key)
        return [row_to_rank_fields(r) for r in self._rows_by_id(ids, scope, columns, params)]

    def touch(self, ids: Sequence[str], at: datetime) -> None:
        """Count one recall of each record without a new version."""
        self.count_recalls(dict.fromkeys(ids, (1, at)))

    def count_recalls(self, counts: Mapping[str, tuple[int, datetime]]) -> None:
        """Every count in one transaction."""
        with self._bookkeeping() as cur:
            _jobs_sql.count_recalls(
                cur, self.placeholder, {i: (n, at.timestamp()) for i, (n, at) in counts.items()}
            )


__all__ = [
    "SQLCapabilities",
    "SQLEngine",
    "SQLForgetJournal",
    "SQLGraphRows",
    "SQLJobLedger",
    "SQLKeyStore",
    "SQLNoteStore",
    "SQLQuarantineStore",
    "SQLSessionTexts",
    "SQLUtilityLedger",
]
