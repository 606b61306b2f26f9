"""PostgreSQL record store: the system of record at scale, shared by many processes.

Same tables and the same query logic as the SQLite store (both build their SQL from
:mod:`agentmem.stores._sql`, and implement every optional interface of
:mod:`agentmem.stores.capabilities` with :mod:`agentmem.stores._relational`); what differs
is here: ``%s`` placeholders, metadata as JSONB (floats read back as floats: :func:`_loads_jsonb`),
vectors in the embedding cache as BYTEA, a connection pool, and migrations serialised across
processes by an advisory lock.

The URL is handed to libpq as is, so any libpq parameter works, e.g.
``postgresql://agentmem:secret@db:5432/agentmem?options=-csearch_path%3Dteam_a`` keeps the
tables in the schema ``team_a`` (which must exist).
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from agentmem.errors import BackendUnavailable, Conflict, InvalidSettings, ValidationError
from agentmem.filters import Condition, FilterOp
from agentmem.models import (
    HistoryEntry,
    MemoryRecord,
    Scope,
    ScopeSet,
    ScopeSummary,
)
from agentmem.stores import _migrations
from agentmem.stores._pg_pool import IdleConnectionCheck, setup_error
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
    rank_field_columns,
    record_to_row,
    row_to_history,
    row_to_rank_fields,
    row_to_record,
    scope_summaries,
    scope_summary_sql,
    update_row,
    where_for_query,
)
from agentmem.stores._utility_sql import UTILITY_COLUMNS, utility_rows
from agentmem.stores.base import (
    CandidateRows,
    IndexOp,
    OutboxItem,
    RecordQuery,
    RecordStore,
    StoreCounts,
    WriteBatch,
)
from agentmem.urls import redact

try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg.types.json import set_json_loads
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise BackendUnavailable(
        "the PostgreSQL store needs psycopg 3 and psycopg-pool; install them with "
        "`pip install 'agentmem[postgres]'`"
    ) from exc

# Byte order ("C") for ids and scope values (in the migrations): paging by id and ordering
# match SQLite and Python's str ordering whatever the database's default collation is.
# Append-only, frozen as literal SQL: never edit a shipped migration, add a new one.
MIGRATIONS: tuple[str, ...] = _migrations.POSTGRES

# First key of the two-key advisory lock that serialises migrations; the second key is the
# schema, so deployments in different schemas of one database do not wait on each other.
_MIGRATION_LOCK = 0x61676D  # "agm"
_UTILITY_COLS = tuple(f"u.{c.strip()}" for c in UTILITY_COLUMNS.split(","))
_WHOLE_COLS = tuple(f"CASE WHEN r.whole THEN r.{c} END" for c in RECORD_COLUMNS)
_JSONB_COLUMNS = frozenset({"metadata", "provenance", "old_metadata", "new_metadata"})


_I64 = 2**63


def _loads_jsonb(data: str | bytes) -> Any:
    """JSONB text as the JSON that was stored. JSONB keeps numbers as ``numeric`` and prints
    the float ``1e20`` as ``100000000000000000000``; metadata holds no integer outside 64 bits
    (:mod:`agentmem.validation` refuses them), so such a number is read back as the float it
    was. Not restored: an integral float from 1e16 to 2**63 (printed without ``.0``) comes back
    as the integer of the same value, and ``-0.0`` as ``0.0`` (``numeric`` has no negative
    zero)."""
    return json.loads(data, parse_int=_json_int)


def _json_int(digits: str) -> int | float:
    value = int(digits)
    return value if -_I64 <= value < _I64 else float(digits)


def _configure(conn: psycopg.Connection[Any]) -> None:
    set_json_loads(_loads_jsonb, conn)


def _values(columns: Sequence[str]) -> str:
    """``%s`` placeholders for an INSERT, cast to JSONB where the column is JSONB."""
    return ", ".join("%s::jsonb" if c in _JSONB_COLUMNS else "%s" for c in columns)


# The most parameters one statement of :func:`_insert_statement` carries (PostgreSQL's limit is
# 65535); a bigger batch is written a statement per table, in one transaction.
_ONE_STATEMENT_PARAMS = 10_000


def _insert_statement(batch: WriteBatch) -> tuple[str, list[Any]] | None:
    """A batch of inserts only (an add: records, history, outbox, cached vectors) as one
    statement, its inserts chained as data-modifying CTEs: atomic as a transaction is, one
    round trip, and a fraction of the CPU of a pipelined transaction of ``executemany``
    calls (the driver's per-statement work, paid while holding the GIL). None when the batch
    is empty or too big for one statement."""
    tables: list[tuple[str, Sequence[str], list[tuple[Any, ...]]]] = [
        ("memories", RECORD_COLUMNS, [record_to_row(r) for r in batch.inserts]),
        ("history", HISTORY_COLUMNS, [history_to_row(h) for h in batch.history]),
        ("outbox", ("memory_id", "op"), [(i, op.value) for i, op in batch.index]),
        (
            "embedding_cache",
            ("embedder", "content_hash", "vector"),
            [(n, h, np.asarray(v, dtype=np.float32).tobytes()) for n, h, v in batch.embeddings],
        ),
    ]
    parts: list[str] = []
    params: list[Any] = []
    for table, columns, rows in tables:
        if not rows:
            continue
        values = ", ".join([f"({_values(columns)})"] * len(rows))
        conflict = " ON CONFLICT DO NOTHING" if table == "embedding_cache" else ""
        parts.append(f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values}{conflict}")
        params.extend(value for row in rows for value in row)
    if not parts or len(params) > _ONE_STATEMENT_PARAMS:
        return None
    *chained, last = parts
    ctes = ", ".join(f"w{i} AS ({sql})" for i, sql in enumerate(chained))
    return (f"WITH {ctes} {last}" if ctes else last), params


class PostgresDialect(Dialect):
    """Metadata conditions on a JSONB column, with the same semantics as the SQLite dialect.

    Equality is JSONB containment (served by the GIN index), which keeps JSON types apart:
    ``true`` never equals ``1`` and ``"1"`` never equals ``1``, while ``1`` equals ``1.0``.
    ``$ne`` is true when the key is missing; ranges hold only for JSON numbers.
    """

    placeholder = "%s"

    def json_condition(self, c: Condition) -> tuple[str, list[Any]]:
        if c.op is FilterOp.IN:
            assert isinstance(c.value, tuple)
            parts, params = [], []
            for v in c.value:
                sql, p = self._eq(c.key, v)
                parts.append(sql)
                params.extend(p)
            return "(" + " OR ".join(parts) + ")", params
        if c.op is FilterOp.EQ:
            return self._eq(c.key, c.value)
        if c.op is FilterOp.NE:
            sql, params = self._eq(c.key, c.value)
            return f"NOT {sql}", params
        return self._range(c)

    def json_text(self, key: str) -> tuple[str, list[Any]]:
        return "((metadata -> %s)::text)", [key]

    @staticmethod
    def _eq(key: str, value: Any) -> tuple[str, list[Any]]:
        return "(metadata @> %s::jsonb)", [json.dumps({key: value})]

    @staticmethod
    def _range(c: Condition) -> tuple[str, list[Any]]:
        is_number = "(jsonb_typeof(metadata -> %s) = 'number')"
        value = float(c.value)  # type: ignore[arg-type]
        if math.isnan(value):
            return "FALSE", []
        if math.isinf(value):
            # JSON holds no infinities: every number is below +inf and above -inf.
            below = c.op in (FilterOp.LT, FilterOp.LTE)
            return (is_number, [c.key]) if below == (value > 0) else ("FALSE", [])
        # jsonb compares numbers as numerics, and never fails on other types.
        return (
            f"({is_number} AND (metadata -> %s) {RANGE_SQL[c.op]} %s::jsonb)",
            [c.key, c.key, json.dumps(c.value)],
        )


def _start_hint(url: str) -> str:
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "check the URL (postgresql://user:password@host:5432/database)"
    host = info.get("host") or "localhost"
    port = info.get("port") or "5432"
    db = info.get("dbname") or info.get("user") or "postgres"
    return (
        f"start PostgreSQL on {host}:{port} (e.g. `pg_ctlcluster 15 main start` or "
        f"`docker run -p {port}:5432 postgres`), make sure the database {db!r} exists "
        f"(`createdb {db}`) and the user may connect, or point AGENTMEM_STORE_URL elsewhere"
    )


class PostgresStore(SQLCapabilities, RecordStore):
    """A record store in PostgreSQL, safe for many processes writing at once.

    The constructor does no I/O; :meth:`setup` checks the server, applies missing migrations
    (serialised by an advisory lock, so concurrent starts are safe) and opens a connection
    pool of ``pool_min`` to ``pool_max`` connections. ``timeout`` bounds connecting and
    waiting for a free pooled connection, in seconds.
    """

    supports_concurrent_processes = True
    placeholder = "%s"
    json_cast = "::jsonb"

    def __init__(
        self, url: str, *, pool_min: int = 1, pool_max: int = 8, timeout: float = 5.0
    ) -> None:
        if not url.startswith(("postgresql://", "postgres://")):
            raise InvalidSettings(
                f"{redact(url)!r} is not a PostgreSQL URL like postgresql://user@host:5432/db"
            )
        if pool_min < 0 or pool_max < 1 or pool_min > pool_max:
            raise InvalidSettings(
                f"PostgreSQL pool sizes must satisfy 0 <= pool_min <= pool_max and pool_max >= 1, "
                f"got pool_min={pool_min}, pool_max={pool_max}"
            )
        if timeout <= 0:
            raise InvalidSettings(f"timeout must be a positive number of seconds, got {timeout}")
        self.url = url
        self.pool_min = pool_min
        self.pool_max = pool_max
        self.timeout = timeout
        self._pool: ConnectionPool | None = None
        self._dialect = PostgresDialect()
        self._pinned = threading.local()  # .conn: the connection pinned() holds, per thread

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        """A store for ``postgresql://user:password@host:port/database?...`` (no I/O)."""
        return cls(url)

    # lifecycle -------------------------------------------------------------------------

    def _connect_kwargs(self) -> dict[str, Any]:
        # libpq counts connect_timeout in whole seconds (and ignores values below 2).
        return {"autocommit": True, "connect_timeout": max(2, math.ceil(self.timeout))}

    def _unavailable(self, exc: BaseException) -> BackendUnavailable:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return BackendUnavailable(
            f"cannot reach the PostgreSQL store at {redact(self.url)}: {reason}; "
            f"{_start_hint(self.url)}"
        )

    def setup(self) -> None:
        if self._pool is not None:
            return
        try:
            with psycopg.connect(self.url, **self._connect_kwargs()) as conn:
                self._migrate(conn)
        except psycopg.OperationalError as exc:
            raise self._unavailable(exc) from exc
        except psycopg.Error as exc:
            raise setup_error(f"the PostgreSQL store at {redact(self.url)}", exc) from exc
        idle = IdleConnectionCheck()
        pool: ConnectionPool = ConnectionPool(
            self.url,
            min_size=self.pool_min,
            max_size=self.pool_max,
            kwargs=self._connect_kwargs(),
            timeout=self.timeout,
            configure=_configure,
            check=idle.check,
            reset=idle.reset,
            name="agentmem",
            open=False,
        )
        try:
            pool.open(wait=True, timeout=self.timeout)
        except PoolTimeout as exc:
            pool.close()
            raise self._unavailable(exc) from exc
        self._pool = pool

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        schema = conn.execute("SELECT current_schema()").fetchone()
        if schema is None or schema[0] is None:
            path = conn.execute("SHOW search_path").fetchone()
            raise InvalidSettings(
                f"the search_path of {redact(self.url)} ({path[0] if path else '?'}) names no "
                "existing schema; create it (CREATE SCHEMA name) or fix the URL's "
                "options=-csearch_path%3Dname"
            )
        with conn.transaction():
            conn.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))",
                (_MIGRATION_LOCK,),
            )
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
            current = (row[0] if row else None) or 0
            if current > len(MIGRATIONS):
                raise InvalidSettings(
                    f"the PostgreSQL store at {redact(self.url)} is at schema version {current}, "
                    f"newer than this agentmem knows ({len(MIGRATIONS)}); upgrade agentmem"
                )
            for version, script in enumerate(MIGRATIONS, start=1):
                if version <= current:
                    continue
                conn.execute(script)
                conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    @contextmanager
    def pinned(self) -> Iterator[None]:
        """Serve every call this thread makes inside the block from one pooled connection,
        checked out once (a checkout and its return cost more CPU than a short statement).
        Hold it only for a run of store calls, never while waiting on a lock or a model."""
        if self._pool is None or getattr(self._pinned, "conn", None) is not None:
            yield  # not open (each call says so), or already pinned by an enclosing block
            return
        try:
            conn = self._pool.getconn()
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise self._unavailable(exc) from exc
        self._pinned.conn = conn
        try:
            yield
        finally:
            self._pinned.conn = None
            self._pool.putconn(conn)  # rolls back a transaction left open, drops a broken one

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection (this thread's pinned one inside :meth:`pinned`); driver
        errors are translated to agentmem errors here."""
        if self._pool is None:
            raise BackendUnavailable(
                f"PostgreSQL store {redact(self.url)} is not open; call setup() first"
            )
        try:
            pinned = getattr(self._pinned, "conn", None)
            if pinned is not None:
                yield pinned
            else:
                with self._pool.connection() as conn:
                    yield conn
        except pg_errors.UniqueViolation as exc:
            raise Conflict(
                f"a record with the same id already exists ({exc.diag.message_detail or exc}); "
                "use a new id, or update the existing record"
            ) from exc
        except pg_errors.TransactionRollback as exc:
            raise Conflict(
                f"a concurrent write to the PostgreSQL store won ({exc}); retry"
            ) from exc
        except psycopg.DataError as exc:
            raise ValidationError(
                f"PostgreSQL rejected a value: {exc}; text and metadata must be valid "
                "Unicode without NUL characters"
            ) from exc
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise self._unavailable(exc) from exc

    @contextmanager
    def _cursor(self) -> Iterator[psycopg.Cursor[Any]]:
        with self._connection() as conn, conn.cursor() as cur:
            yield cur

    @contextmanager
    def _bookkeeping(self) -> Iterator[psycopg.Cursor[Any]]:
        # One pipelined round trip: BEGIN, the setting, the statements and COMMIT together.
        with (
            self._connection() as conn,
            conn.pipeline(),
            conn.transaction(),
            conn.cursor() as cur,
        ):
            cur.execute("SET LOCAL synchronous_commit TO OFF")
            yield cur

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Cursor[Any]]:
        with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    # writes ----------------------------------------------------------------------------

    def apply(self, batch: WriteBatch) -> None:
        if not batch.updates and not batch.deletes:
            statement = _insert_statement(batch)
            if statement is not None:
                with self._connection() as conn:
                    conn.execute(*statement)
                return
        cols = ", ".join(RECORD_COLUMNS)
        hcols = ", ".join(HISTORY_COLUMNS)
        assignments = ", ".join(
            f"{c} = %s::jsonb" if c in _JSONB_COLUMNS else f"{c} = %s" for c in UPDATED_COLUMNS
        )
        with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            if batch.inserts:
                cur.executemany(
                    f"INSERT INTO memories ({cols}) VALUES ({_values(RECORD_COLUMNS)})",
                    [record_to_row(r) for r in batch.inserts],
                )
            if batch.updates:
                self._update(cur, batch.updates, assignments)
            if batch.deletes:
                self._delete(cur, batch.deletes, batch.delete_versions)
            if batch.history:
                cur.executemany(
                    f"INSERT INTO history ({hcols}) VALUES ({_values(HISTORY_COLUMNS)})",
                    [history_to_row(h) for h in batch.history],
                )
            if batch.index:
                cur.executemany(
                    "INSERT INTO outbox (memory_id, op) VALUES (%s, %s)",
                    [(i, op.value) for i, op in batch.index],
                )
            if batch.embeddings:
                cur.executemany(
                    "INSERT INTO embedding_cache (embedder, content_hash, vector) "
                    "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                    [
                        (name, h, np.asarray(v, dtype=np.float32).tobytes())
                        for name, h, v in batch.embeddings
                    ],
                )

    @staticmethod
    def _update(
        cur: psycopg.Cursor[Any], records: Sequence[MemoryRecord], assignments: str
    ) -> None:
        """Compare-and-set each record on the version it replaces; Conflict if one lost."""
        cur.executemany(
            f"UPDATE memories SET {assignments} WHERE id = %s AND version = %s RETURNING id",
            [(*update_row(r), r.id, r.version - 1) for r in records],
            returning=True,
        )
        updated: set[str] = set()
        while True:
            updated.update(row[0] for row in cur.fetchall())
            if not cur.nextset():
                break
        lost = [r for r in records if r.id not in updated]
        if lost:
            r = lost[0]
            raise Conflict(
                f"memory {r.id} changed since version {r.version - 1} was read; "
                "reload it with get() and retry"
            )

    @staticmethod
    def _delete(cur: psycopg.Cursor[Any], ids: Sequence[str], versions: dict[str, int]) -> None:
        """Delete ``ids``, compare-and-set on the version read where ``versions`` has one."""
        checked = [i for i in dict.fromkeys(ids) if i in versions]
        anyhow = [i for i in ids if i not in versions]
        if anyhow:
            cur.execute("DELETE FROM memories WHERE id = ANY(%s)", (anyhow,))
        if not checked:
            return
        cur.execute(
            "DELETE FROM memories AS m USING unnest(%s::text[], %s::integer[]) AS d(id, version) "
            "WHERE m.id = d.id AND m.version = d.version RETURNING m.id",
            (checked, [versions[i] for i in checked]),
        )
        deleted = {row[0] for row in cur.fetchall()}
        lost = [i for i in checked if i not in deleted]
        if lost:
            raise Conflict(
                f"memory {lost[0]} changed or was deleted since version {versions[lost[0]]} "
                "was read, so it was not deleted; reload it with get() and retry"
            )

    # reads -----------------------------------------------------------------------------

    def _rows_by_id(
        self,
        ids: Sequence[str],
        scope: Scope | ScopeSet | None,
        columns: str,
        column_params: Sequence[Any] = (),
    ) -> list[Any]:
        """``columns`` of the rows with these ids in ``scope``, in one statement."""
        if not ids:
            return []
        with self._connection() as conn:
            return conn.execute(*self._by_id(ids, scope, columns, column_params)).fetchall()

    def _by_id(
        self,
        ids: Sequence[str],
        scope: Scope | ScopeSet | None,
        columns: str,
        column_params: Sequence[Any] = (),
    ) -> tuple[str, list[Any]]:
        """The statement and parameters of :meth:`_rows_by_id`."""
        w = Where(self._dialect)
        w.add("id = ANY(?)", list(ids))
        if scope is not None:
            w.add_scope(scope)
        return f"SELECT {columns} FROM memories WHERE {w.sql()}", [*column_params, *w.params]

    def read_candidates(
        self,
        ids: Sequence[str],
        scope: Scope | ScopeSet,
        session_key: str | None = None,
        *,
        whole: Sequence[str] = (),
        utilities: bool = False,
    ) -> CandidateRows:
        """:meth:`RecordStore.read_candidates` in one statement: each candidate's rank fields,
        joined to its utility row and, for the ids in ``whole``, to its whole row. The utility
        rows are those of the candidates in scope, the only ones search re-ranks."""
        if not ids:
            return CandidateRows([], [], {} if utilities else None)
        columns, params = rank_field_columns(self._dialect, session_key)
        extra = [*(_UTILITY_COLS if utilities else ()), *(_WHOLE_COLS if whole else ())]
        inner, inner_params = self._by_id(ids, scope, "*, id = ANY(%s) AS whole", [list(whole)])
        sql = f"SELECT {', '.join([columns, *extra])} FROM ({inner}) AS r"
        if utilities:
            sql += " LEFT JOIN memory_utility AS u ON u.memory_id = r.id"
        with self._connection() as conn:
            rows = conn.execute(sql, [*params, *inner_params]).fetchall()
        width = len(rows[0]) - len(extra) if rows else 0
        util = [r[width : width + 4] for r in rows if utilities and r[width] is not None]
        at = width + (4 if utilities else 0)
        return CandidateRows(
            [row_to_rank_fields(r[:width]) for r in rows],
            [row_to_record(r[at:]) for r in rows if whole and r[at] is not None],
            utility_rows(util) if utilities else None,
        )

    def query(self, query: RecordQuery) -> list[MemoryRecord]:
        w = where_for_query(query, self._dialect)
        order = "DESC" if query.newest_first else "ASC"
        sql = (
            f"SELECT {', '.join(RECORD_COLUMNS)} FROM memories WHERE {w.sql()} "
            f"ORDER BY created_at {order}, id {order} LIMIT %s OFFSET %s"
        )
        with self._connection() as conn:
            rows = conn.execute(sql, [*w.params, query.limit, query.offset]).fetchall()
        return [row_to_record(r) for r in rows]

    def adjacent(
        self, record: MemoryRecord, group: Condition | None = None
    ) -> tuple[MemoryRecord | None, MemoryRecord | None]:
        return self.adjacent_many([(record, group)])[0]

    def adjacent_many(
        self, queries: Sequence[tuple[MemoryRecord, Condition | None]]
    ) -> list[tuple[MemoryRecord | None, MemoryRecord | None]]:
        # Every neighbour query of an outbox batch in one statement (one round trip, which
        # matters under load, when each round trip made under the index lock also waits for
        # the GIL): a UNION ALL of the queries, each row tagged with its query's position. One
        # statement costs a fraction of the CPU of a pipeline of as many.
        if not queries:
            return []
        parts: list[str] = []
        params: list[Any] = []
        for record, group in queries:
            for sql, query_params in adjacent_sql(record, group, self._dialect):
                parts.append(f"(SELECT {len(parts)} AS q, {sql.removeprefix('SELECT ')})")
                params.extend(query_params)
        with self._connection() as conn:
            rows = conn.execute(" UNION ALL ".join(parts), params).fetchall()
        found: list[MemoryRecord | None] = [None] * len(parts)
        for row in rows:
            found[row[0]] = row_to_record(row[1:])
        return [(found[i], found[i + 1]) for i in range(0, len(found), 2)]

    def ids_in_scope(self, scope: Scope | ScopeSet) -> list[str]:
        w = Where(self._dialect)
        w.add_scope(scope)
        with self._connection() as conn:
            rows = conn.execute(
                f"SELECT id FROM memories WHERE {w.sql()} ORDER BY id", w.params
            ).fetchall()
        return [r[0] for r in rows]

    def scope_summaries(self, scope: Scope | ScopeSet) -> list[ScopeSummary]:
        sql, params = scope_summary_sql(scope, self._dialect)
        with self._connection() as conn:
            rows = conn.execute(sql, params).fetchall()
        return scope_summaries(rows)

    def history(self, memory_id: str, scope: Scope | ScopeSet | None = None) -> list[HistoryEntry]:
        w = Where(self._dialect)
        w.add("memory_id = ?", memory_id)
        if scope is not None:
            w.add_scope(scope)
        with self._connection() as conn:
            rows = conn.execute(
                f"SELECT {', '.join(HISTORY_COLUMNS)} FROM history WHERE {w.sql()} ORDER BY seq",
                w.params,
            ).fetchall()
        return [row_to_history(r) for r in rows]

    def pending_index(self, limit: int = 1000) -> list[OutboxItem]:
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT seq, memory_id, op FROM outbox ORDER BY seq LIMIT %s", (limit,)
            ).fetchall()
        return [OutboxItem(seq, mid, IndexOp(op)) for seq, mid, op in rows]

    def ack_index(self, seqs: Sequence[int]) -> None:
        if not seqs:
            return
        # No wait for the disk: an ack a power cut loses only re-applies its (idempotent)
        # entries on the next open, and this commit is made under the index lock. One simple
        # query (its statements are one implicit transaction, where SET LOCAL holds): a
        # fraction of the CPU of a pipelined BEGIN ... COMMIT, and one round trip too. The
        # sequence numbers are integers, written into the text as such.
        listed = ",".join(str(int(seq)) for seq in seqs)
        with self._connection() as conn:
            conn.execute(
                "SET LOCAL synchronous_commit TO OFF; "
                f"DELETE FROM outbox WHERE seq = ANY('{{{listed}}}'::bigint[])"
            )

    def cached_embeddings(self, embedder: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        unique = list(dict.fromkeys(hashes))
        if not unique:
            return {}
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT content_hash, vector FROM embedding_cache "
                "WHERE embedder = %s AND content_hash = ANY(%s)",
                (embedder, unique),
            ).fetchall()
        return {h: np.frombuffer(blob, dtype=np.float32) for h, blob in rows}

    def all_ids(self, after: str | None = None, limit: int = 1000) -> list[str]:
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT id FROM memories WHERE id > %s ORDER BY id LIMIT %s", (after or "", limit)
            ).fetchall()
        return [r[0] for r in rows]

    def counts(self) -> StoreCounts:
        with self._connection() as conn:
            by_kind: dict[str, int] = dict(
                conn.execute("SELECT kind, COUNT(*) FROM memories GROUP BY kind").fetchall()
            )
            history = conn.execute("SELECT COUNT(*) FROM history").fetchone()
            pending = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()
        return StoreCounts(
            records=sum(by_kind.values()),
            by_kind=by_kind,
            history_entries=history[0] if history else 0,
            pending_index=pending[0] if pending else 0,
        )


__all__ = ["MIGRATIONS", "PostgresDialect", "PostgresStore"]
