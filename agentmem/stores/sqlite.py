"""SQLite record store: the embedded default (WAL, one file under ``AGENTMEM_HOME``)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from agentmem.errors import BackendUnavailable, Conflict, InvalidSettings
from agentmem.filters import Condition, FilterOp
from agentmem.models import (
    HistoryEntry,
    MemoryRecord,
    Scope,
    ScopeSet,
    ScopeSummary,
)
from agentmem.stores import _migrations
from agentmem.stores._relational import SQLCapabilities
from agentmem.stores._sql import (
    HISTORY_COLUMNS,
    RANGE_SQL,
    RECORD_COLUMNS,
    UPDATED_COLUMNS,
    Dialect,
    Where,
    adjacent_sql,
    history_to_row,
    record_to_row,
    row_to_history,
    row_to_record,
    scope_summaries,
    scope_summary_sql,
    update_row,
    where_for_query,
)
from agentmem.stores.base import (
    IndexOp,
    OutboxItem,
    RecordQuery,
    RecordStore,
    StoreCounts,
    WriteBatch,
)

# Append-only, frozen as literal SQL: never edit a shipped migration, add a new one.
MIGRATIONS: tuple[str, ...] = _migrations.SQLITE


class SQLiteDialect(Dialect):
    """JSON conditions with SQLite's json_extract / json_type."""

    placeholder = "?"

    def json_condition(self, c: Condition) -> tuple[str, list[Any]]:
        path = f"$.{c.key}"
        if c.op is FilterOp.IN:
            assert isinstance(c.value, tuple)
            return self._in(path, c.value)
        if c.op is FilterOp.EQ:
            return self._eq(path, c.value)
        if c.op is FilterOp.NE:
            sql, params = self._eq(path, c.value)
            return f"NOT {sql}", params
        return (
            f"(json_type(metadata, ?) IN ('integer', 'real') AND "
            f"json_extract(metadata, ?) {RANGE_SQL[c.op]} ?)",
            [path, path, c.value],
        )

    def json_text(self, key: str) -> tuple[str, list[Any]]:
        return "(metadata -> ?)", [f"$.{key}"]

    def _in(self, path: str, values: tuple[Any, ...]) -> tuple[str, list[Any]]:
        """Any of ``values``, as the OR of their :meth:`_eq` tests; strings and numbers are
        each one ``IN`` list, so a row's JSON is read twice per type, not per value."""
        strings = [v for v in values if isinstance(v, str)]
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        parts, params = [], []
        for kind, group in (("= 'text'", strings), ("IN ('integer', 'real')", numbers)):
            if group:
                marks = ", ".join("?" for _ in group)
                parts.append(
                    f"(COALESCE(json_type(metadata, ?), '') {kind} AND "
                    f"json_extract(metadata, ?) IN ({marks}))"
                )
                params += [path, path, *group]
        for v in values:
            if isinstance(v, bool) or not isinstance(v, str | int | float):
                sql, p = self._eq(path, v)
                parts.append(sql)
                params.extend(p)
        return "(" + " OR ".join(parts) + ")", params

    @staticmethod
    def _eq(path: str, value: Any) -> tuple[str, list[Any]]:
        if isinstance(value, bool):
            literal = "true" if value else "false"
            return "(COALESCE(json_type(metadata, ?), '') = ?)", [path, literal]
        if isinstance(value, int | float):
            return (
                "(COALESCE(json_type(metadata, ?), '') IN ('integer', 'real') AND "
                "json_extract(metadata, ?) = ?)",
                [path, path, value],
            )
        return (
            "(COALESCE(json_type(metadata, ?), '') = 'text' AND json_extract(metadata, ?) = ?)",
            [path, path, value],
        )


class SQLiteStore(SQLCapabilities, RecordStore):
    """A record store in one SQLite file in WAL mode.

    One process at a time writes an embedded store (the controller locks the file in use);
    within the process, one connection is shared behind a lock, so threads are safe.
    """

    supports_concurrent_processes = False
    placeholder = "?"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        self._dialect = SQLiteDialect()

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        """``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``."""
        prefix = "sqlite:///"
        if not url.startswith(prefix) or len(url) == len(prefix):
            raise InvalidSettings(f"{url!r} is not a SQLite URL like sqlite:///path/agentmem.db")
        return cls(url[len(prefix) :])

    # lifecycle -------------------------------------------------------------------------

    def erase_free_space(self) -> bool:
        """VACUUM (a fresh file with no free pages), then empty the write-ahead log, whose
        frames still hold page images from before a delete."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise BackendUnavailable(f"SQLite store {self.path} is not open; call setup()")
            try:
                conn.execute("VACUUM")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                self._raise_unavailable(exc)
                raise
        return True

    def setup(self) -> None:
        if self._conn is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=30
            )
            conn.execute("PRAGMA journal_mode=WAL")
            # Deleted content is overwritten with zeros, not left in free pages (forgetting).
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
        except (sqlite3.Error, OSError) as exc:
            raise BackendUnavailable(
                f"cannot open SQLite store at {self.path}: {exc}; check the directory exists "
                "and is writable, or set AGENTMEM_HOME / AGENTMEM_STORE_URL"
            ) from exc
        self._conn = conn
        self._migrate()

    def _migrate(self) -> None:
        with self._lock:
            conn = self._require()
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER)")
            row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
            current = row[0] or 0
            if current > len(MIGRATIONS):  # a newer agentmem's tables this one would not keep
                self._conn = None
                conn.close()
                raise InvalidSettings(
                    f"the SQLite store at {self.path} is at schema version {current}, newer "
                    f"than this agentmem knows ({len(MIGRATIONS)}); upgrade agentmem"
                )
            for version, script in enumerate(MIGRATIONS, start=1):
                if version <= current:
                    continue
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in script.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute("INSERT INTO schema_migrations VALUES (?)", (version,))
                    conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    _rollback(conn)
                    self._raise_unavailable(exc)
                    raise
                except BaseException:
                    _rollback(conn)
                    raise

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _require(self) -> sqlite3.Connection:
        """The open connection (call with ``self._lock`` held, so that no close() comes between
        this check and its use), or :class:`BackendUnavailable`."""
        if self._conn is None:
            raise BackendUnavailable(
                f"SQLite store {self.path} is not open (closed, or setup() not called yet): "
                "call setup(), or open a new Memory"
            )
        return self._conn

    @contextmanager
    def _cursor(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            try:
                yield self._require().cursor()
            except sqlite3.Error as exc:
                self._raise_unavailable(exc)
                raise

    @contextmanager
    def _bookkeeping(self) -> Iterator[sqlite3.Cursor]:
        # WAL with synchronous=NORMAL commits without an fsync (about 0.45 ms each, two per
        # search); the next FULL commit syncs the log these frames are in.
        with self._lock:
            conn = self._require()
            conn.execute("PRAGMA synchronous=NORMAL")
            try:
                with self._transaction() as cur:  # a batch of statements commits once
                    yield cur
            finally:
                conn.execute("PRAGMA synchronous=FULL")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:  # the lock first: a close() between the two would leave conn closed
            conn = self._require()
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn.cursor()
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(conn)
                self._raise_unavailable(exc)
                raise
            except BaseException:
                _rollback(conn)
                raise

    def _raise_unavailable(self, exc: sqlite3.Error) -> None:
        """Raise ``exc`` as a :class:`BackendUnavailable` naming the file and the fix when it is
        a condition of the file or the disk (full, read-only, I/O error, locked, damaged);
        return for any other error (a bug in a statement), which the caller re-raises."""
        fix = _FIXES.get(getattr(exc, "sqlite_errorcode", -1) & 0xFF)
        if fix is not None:
            raise BackendUnavailable(
                f"the SQLite store at {self.path} failed ({exc}); nothing was written. "
                f"{fix.format(folder=self.path.parent)}"
            ) from exc

    # writes ----------------------------------------------------------------------------

    def apply(self, batch: WriteBatch) -> None:
        cols = ", ".join(RECORD_COLUMNS)
        marks = ", ".join("?" for _ in RECORD_COLUMNS)
        hcols = ", ".join(HISTORY_COLUMNS)
        hmarks = ", ".join("?" for _ in HISTORY_COLUMNS)
        assignments = ", ".join(f"{c} = ?" for c in UPDATED_COLUMNS)
        with self._lock:  # the lock first: a close() between the two would leave conn closed
            conn = self._require()
            try:
                conn.execute("BEGIN IMMEDIATE")
                if batch.inserts:
                    conn.executemany(
                        f"INSERT INTO memories ({cols}) VALUES ({marks})",
                        [record_to_row(r) for r in batch.inserts],
                    )
                for r in batch.updates:
                    cur = conn.execute(
                        f"UPDATE memories SET {assignments} WHERE id = ? AND version = ?",
                        (*update_row(r), r.id, r.version - 1),
                    )
                    if cur.rowcount != 1:
                        raise Conflict(
                            f"memory {r.id} changed since version {r.version - 1} was read; "
                            "reload it with get() and retry"
                        )
                if batch.deletes:
                    self._delete(conn, batch.deletes, batch.delete_versions)
                if batch.history:
                    conn.executemany(
                        f"INSERT INTO history ({hcols}) VALUES ({hmarks})",
                        [history_to_row(h) for h in batch.history],
                    )
                if batch.index:
                    conn.executemany(
                        "INSERT INTO outbox (memory_id, op) VALUES (?, ?)",
                        [(i, op.value) for i, op in batch.index],
                    )
                if batch.embeddings:
                    conn.executemany(
                        "INSERT OR IGNORE INTO embedding_cache VALUES (?, ?, ?)",
                        [
                            (name, h, np.asarray(v, dtype=np.float32).tobytes())
                            for name, h, v in batch.embeddings
                        ],
                    )
                conn.execute("COMMIT")
            except sqlite3.IntegrityError as exc:
                _rollback(conn)
                raise Conflict(
                    f"the write conflicts with a stored record ({exc}); an id already exists, "
                    "so reload and retry with a new id"
                ) from exc
            except sqlite3.Error as exc:
                _rollback(conn)
                self._raise_unavailable(exc)
                raise
            except BaseException:
                _rollback(conn)
                raise

    @staticmethod
    def _delete(conn: sqlite3.Connection, ids: Sequence[str], versions: dict[str, int]) -> None:
        """Delete ``ids``, compare-and-set on the version read where ``versions`` has one."""
        conn.executemany(
            "DELETE FROM memories WHERE id = ?", [(i,) for i in ids if i not in versions]
        )
        for i in dict.fromkeys(i for i in ids if i in versions):
            cur = conn.execute(
                "DELETE FROM memories WHERE id = ? AND version = ?", (i, versions[i])
            )
            if cur.rowcount != 1:
                raise Conflict(
                    f"memory {i} changed or was deleted since version {versions[i]} was read, "
                    "so it was not deleted; reload it with get() and retry"
                )

    # reads -----------------------------------------------------------------------------

    def _rows_by_id(
        self,
        ids: Sequence[str],
        scope: Scope | ScopeSet | None,
        columns: str,
        column_params: Sequence[Any] = (),
    ) -> list[Any]:
        """``columns`` of the rows with these ids in ``scope``, 500 ids a statement."""
        if not ids:
            return []
        out: list[Any] = []
        with self._lock:
            conn = self._require()
            for start in range(0, len(ids), 500):
                w = Where(self._dialect)
                w.add_in("id", list(ids[start : start + 500]))
                if scope is not None:
                    w.add_scope(scope)
                out += conn.execute(
                    f"SELECT {columns} FROM memories WHERE {w.sql()}", [*column_params, *w.params]
                ).fetchall()
        return out

    def query(self, query: RecordQuery) -> list[MemoryRecord]:
        w = where_for_query(query, self._dialect)
        order = "DESC" if query.newest_first else "ASC"
        sql = (
            f"SELECT {', '.join(RECORD_COLUMNS)} FROM memories WHERE {w.sql()} "
            f"ORDER BY created_at {order}, id {order} LIMIT ? OFFSET ?"
        )
        with self._lock:
            rows = self._require().execute(sql, [*w.params, query.limit, query.offset]).fetchall()
        return [row_to_record(r) for r in rows]

    def adjacent(
        self, record: MemoryRecord, group: Condition | None = None
    ) -> tuple[MemoryRecord | None, MemoryRecord | None]:
        found: list[MemoryRecord | None] = []
        with self._lock:
            conn = self._require()
            for sql, params in adjacent_sql(record, group, self._dialect):
                row = conn.execute(sql, params).fetchone()
                found.append(row_to_record(row) if row else None)
        return found[0], found[1]

    def ids_in_scope(self, scope: Scope | ScopeSet) -> list[str]:
        w = Where(self._dialect)
        w.add_scope(scope)
        with self._lock:
            rows = (
                self._require()
                .execute(f"SELECT id FROM memories WHERE {w.sql()} ORDER BY id", w.params)
                .fetchall()
            )
        return [r[0] for r in rows]

    def scope_summaries(self, scope: Scope | ScopeSet) -> list[ScopeSummary]:
        sql, params = scope_summary_sql(scope, self._dialect)
        with self._lock:
            rows = self._require().execute(sql, params).fetchall()
        return scope_summaries(rows)

    def history(self, memory_id: str, scope: Scope | ScopeSet | None = None) -> list[HistoryEntry]:
        w = Where(self._dialect)
        w.add("memory_id = ?", memory_id)
        if scope is not None:
            w.add_scope(scope)
        with self._lock:
            rows = (
                self._require()
                .execute(
                    f"SELECT {', '.join(HISTORY_COLUMNS)} FROM history "
                    f"WHERE {w.sql()} ORDER BY seq",
                    w.params,
                )
                .fetchall()
            )
        return [row_to_history(r) for r in rows]

    def pending_index(self, limit: int = 1000) -> list[OutboxItem]:
        with self._lock:
            rows = (
                self._require()
                .execute("SELECT seq, memory_id, op FROM outbox ORDER BY seq LIMIT ?", (limit,))
                .fetchall()
            )
        return [OutboxItem(seq, mid, IndexOp(op)) for seq, mid, op in rows]

    def ack_index(self, seqs: Sequence[int]) -> None:
        if not seqs:
            return
        # One transaction, without an fsync: an ack a power cut loses only re-applies its
        # (idempotent) entries on the next open.
        with self._bookkeeping() as cur:
            cur.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])

    def cached_embeddings(self, embedder: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        with self._lock:
            conn = self._require()
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                marks = ", ".join("?" for _ in chunk)
                rows = conn.execute(
                    "SELECT content_hash, vector FROM embedding_cache "
                    f"WHERE embedder = ? AND content_hash IN ({marks})",
                    [embedder, *chunk],
                ).fetchall()
                for h, blob in rows:
                    out[h] = np.frombuffer(blob, dtype=np.float32)
        return out

    def all_ids(self, after: str | None = None, limit: int = 1000) -> list[str]:
        with self._lock:
            rows = (
                self._require()
                .execute(
                    "SELECT id FROM memories WHERE id > ? ORDER BY id LIMIT ?", (after or "", limit)
                )
                .fetchall()
            )
        return [r[0] for r in rows]

    def counts(self) -> StoreCounts:
        with self._lock:
            conn = self._require()
            by_kind = dict(conn.execute("SELECT kind, COUNT(*) FROM memories GROUP BY kind"))
            history = conn.execute("SELECT COUNT(*) FROM history").fetchone()[0]
            pending = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        return StoreCounts(
            records=sum(by_kind.values()),
            by_kind=by_kind,
            history_entries=history,
            pending_index=pending,
        )


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if any: SQLite ends it itself on some errors (a full
    disk), and a ROLLBACK then would raise "no transaction is active" over the real error."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


_WRITABLE = (
    "Make the file, its -wal and -shm files and {folder} writable by this user (owner, "
    "permissions, chattr +i, a read-only mount), or copy the home somewhere writable and open "
    "the copy"
)
_FIXES: dict[int, str] = {
    sqlite3.SQLITE_FULL: "Free space on the disk that holds {folder}, then retry",
    sqlite3.SQLITE_IOERR: "Check the disk that holds {folder} (free space, the kernel log), "
    "then retry",
    sqlite3.SQLITE_READONLY: _WRITABLE,
    sqlite3.SQLITE_PERM: _WRITABLE,
    sqlite3.SQLITE_CANTOPEN: _WRITABLE,
    sqlite3.SQLITE_BUSY: "Another program holds a lock on the file (a sqlite3 shell, a backup "
    "tool): close it, then retry",
    sqlite3.SQLITE_LOCKED: "Another connection holds a lock on the file: close it, then retry",
    sqlite3.SQLITE_CORRUPT: "The file is damaged: restore the home from a backup",
    sqlite3.SQLITE_NOTADB: "The file is damaged: restore the home from a backup",
}
"""What to do about each SQLite error (primary code) that is a condition of the file or disk."""

__all__ = ["SQLiteStore"]
