"""PostgreSQL + pgvector vector index: one memory shared by many processes and machines.

``AGENTMEM_VECTORS_URL=postgresql://user:password@host:5432/db`` (the libpq URL, handed to libpq
as is, like the record store's; ``postgres://`` works too). The index may live in the same
database as the store or in another one; the database needs the ``vector`` extension
(pgvector >= 0.8), which :meth:`PgVectorIndex.setup` enables when the user may, and otherwise
says who must.

One table ``<collection>_points`` holds a row per record: the scope fields, kind, status, the
validity and event times, the metadata (JSONB), the ``dense`` and ``window`` vectors in
``vector(dim)`` columns with HNSW indexes (cosine), and the BM25 channels as ``sparsevec``
columns beside ``int4[]`` term lists under GIN indexes. Scope isolation, kinds, validity,
``as_of``, event-time ranges and metadata filters are all conditions of the one SQL query.

**BM25 with the same ranking as Qdrant's ``Idf`` modifier.** Documents are stored as BM25
term-frequency weights (:class:`agentmem.lexical.Bm25Encoder`, Qdrant's tokeniser); a second
table ``<collection>_df`` keeps, per sparse space, each term's document frequency and the number
of documents, updated in the transaction that writes the points. A query multiplies each term's
weight by ``ln(1 + (N - df + 0.5) / (df + 0.5))`` (Qdrant's formula) and ranks by the sparse
inner product among documents sharing a term (the GIN index finds them), so the scores equal
Qdrant's. Term hashes are folded below pgvector's 10^9 sparse dimensions (a prime modulus:
~1 collision in a 50k-term vocabulary). A ``sparsevec`` holds at most 16,000 non-zero elements,
so a longer document (a long turn's window, a text past 16,000 distinct terms) keeps its 16,000
highest-weight terms (a query likewise), and only the scores it would get through the dropped
terms differ from Qdrant's. PostgreSQL's full-text search was not chosen: its
``ts_rank``/``ts_rank_cd`` weigh term frequency and proximity but have no IDF and no BM25 length
normalisation, so it could not give the other indexes' scores (not measured on LoCoMo here).

**Many writers.** Writers serialise per record id (transaction advisory locks, taken in hash
order, then document-frequency rows in key order, so two writers never deadlock), and an upsert
never replaces a point with an older record version: two processes applying the shared outbox
at once leave the newest version indexed. Tables and the extension are created under an
advisory lock, so N processes may start at once.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import math
import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from agentmem.errors import (
    AgentMemError,
    BackendUnavailable,
    EmbedderMismatch,
    IndexRefused,
    InvalidSettings,
)
from agentmem.lexical import SparseVector
from agentmem.vectors.base import (
    BM25,
    BOOL_TAG,
    DENSE,
    INT_TAG,
    SPARSE_SPACES,
    STR_TAG,
    WINDOW,
    WINDOW_BM25,
    VectorIndex,
    VectorPoint,
    VectorQuery,
)

try:
    import psycopg
    from pgvector import SparseVector as PgSparse
    from pgvector.psycopg import register_vector
    from psycopg import errors as pg_errors
    from psycopg import sql
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise BackendUnavailable(
        "the pgvector index needs psycopg 3, psycopg-pool and pgvector; install them with "
        "`pip install 'agentmem[pgvector]'`"
    ) from exc

from agentmem.stores._pg_pool import IdleConnectionCheck, setup_error
from agentmem.stores._sql import Where
from agentmem.stores.postgres import PostgresDialect
from agentmem.urls import redact

SPARSE_DIMS = 999_999_937
"""Term hashes are folded modulo this prime, below pgvector's 10^9 sparse dimensions."""
SPARSE_MAX_TERMS = 16_000
"""pgvector's ``sparsevec`` holds at most this many non-zero elements."""
HNSW_MAX_DIM = 2000
"""pgvector's HNSW indexes ``vector`` columns of at most 2,000 dimensions; wider vectors are
searched exactly (a sequential scan per scope)."""
_DENSE_COLUMNS = {DENSE: "v_dense", WINDOW: "v_window"}
_SPARSE_COLUMNS = {BM25: ("s_bm25", "t_bm25"), WINDOW_BM25: ("s_window_bm25", "t_window_bm25")}
_SPACE_IDS = {BM25: 0, WINDOW_BM25: 1}
_DOCS = -1
"""The ``term`` under which ``<collection>_df`` counts a space's documents."""
_SETUP_LOCK = 0x61676E  # "agn": the tables of one collection, keyed by schema + collection
_ID_LOCK = 0x61676F  # "ago": one record id, while a writer replaces or deletes its point
_COLLECTION = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")
_EF_SEARCH = 100


def fold(indices: Sequence[int]) -> list[int]:
    """Term hashes as pgvector sparse dimensions (0-based, below :data:`SPARSE_DIMS`)."""
    return [int(i) % SPARSE_DIMS for i in indices]


def sparse_weights(vector: SparseVector) -> dict[int, float]:
    """A document's ``vector`` as pgvector sparse weights: term hashes folded, at most
    :data:`SPARSE_MAX_TERMS` of them (see :func:`_capped`)."""
    return _capped(_folded(vector))


def _folded(vector: SparseVector) -> dict[int, float]:
    """Weights by folded term hash (the weights of terms folded together are summed)."""
    weights: dict[int, float] = {}
    for i, v in zip(fold(vector.indices), vector.values, strict=True):
        weights[i] = weights.get(i, 0.0) + float(v)
    return weights


def _capped(weights: dict[int, float]) -> dict[int, float]:
    """The :data:`SPARSE_MAX_TERMS` highest ``weights`` (ties: the lower dimension), all of them
    when they are no more: pgvector refuses a longer ``sparsevec``."""
    if len(weights) <= SPARSE_MAX_TERMS:
        return weights
    return dict(heapq.nsmallest(SPARSE_MAX_TERMS, weights.items(), key=lambda t: (-t[1], t[0])))


def idf(docs: int, df: int) -> float:
    """Qdrant's IDF of a term found in ``df`` of ``docs`` documents."""
    return math.log(1.0 + (docs - df + 0.5) / (df + 0.5))


class PgVectorIndex(VectorIndex):
    """The vector index in PostgreSQL tables with pgvector columns, shared by many processes.

    The constructor does no I/O; :meth:`setup` enables the extension (if it must and may),
    creates the tables of ``collection`` for ``dim``-dimensional vectors, checks an existing
    table's dimension, and opens a pool of ``pool_min`` to ``pool_max`` connections. ``timeout``
    bounds connecting and waiting for a pooled connection, in seconds.
    """

    supports_concurrent_processes = True

    def __init__(
        self,
        url: str,
        *,
        collection: str = "agentmem",
        timeout: float = 5.0,
        pool_min: int = 1,
        pool_max: int = 8,
    ) -> None:
        if not url.startswith(("postgresql://", "postgres://")):
            raise InvalidSettings(
                f"{redact(url)!r} is not a PostgreSQL URL like postgresql://user@host:5432/db"
            )
        if not _COLLECTION.match(collection):
            raise InvalidSettings(
                f"vectors collection {collection!r} cannot name PostgreSQL tables; use lowercase "
                "letters, digits and '_' (starting with a letter or '_', at most 41 characters)"
            )
        if timeout <= 0:
            raise InvalidSettings(f"timeout must be a positive number of seconds, got {timeout}")
        if pool_min < 0 or pool_max < 1 or pool_min > pool_max:
            raise InvalidSettings(
                f"pool sizes must satisfy 0 <= pool_min <= pool_max and pool_max >= 1, "
                f"got pool_min={pool_min}, pool_max={pool_max}"
            )
        self.url = redact(url)
        self._dsn = url
        self.collection = collection
        self.timeout = timeout
        self.pool_min = pool_min
        self.pool_max = pool_max
        self._points = sql.Identifier(f"{collection}_points")
        self._df = sql.Identifier(f"{collection}_df")
        self._pool: ConnectionPool | None = None
        self._dim: int | None = None
        self._dialect = PostgresDialect()
        self._connect: dict[str, Any] = {"autocommit": True}
        self._connect["connect_timeout"] = max(2, math.ceil(timeout))

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        collection: str = "agentmem",
        timeout: float = 5.0,
        pool_min: int = 1,
        pool_max: int = 8,
    ) -> PgVectorIndex:
        """An index for ``postgresql://user:password@host:port/database?...`` (no I/O)."""
        return cls(
            url, collection=collection, timeout=timeout, pool_min=pool_min, pool_max=pool_max
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def stored_dim(self) -> int | None:
        """The vector size of ``collection``'s table (None: none yet, or setup must say why)."""
        try:
            with psycopg.connect(self._dsn, **self._connect) as conn:
                return self._existing_dim(conn)
        except psycopg.Error:
            return None

    def setup(self, dim: int) -> None:
        if self._pool is not None:
            if dim != self._dim:
                raise InvalidSettings(
                    f"{self._where()} is open for {self._dim}-d vectors, not {dim}-d"
                )
            return
        if dim < 1 or dim > 16_000:
            raise InvalidSettings(f"pgvector holds 1 to 16,000 dimensions, not {dim}")
        try:
            with psycopg.connect(self._dsn, **self._connect) as conn:
                self._enable_extension(conn)
                self._migrate(conn, dim)
        except psycopg.OperationalError as exc:
            raise self._unavailable(exc) from exc
        except AgentMemError:
            raise
        except psycopg.Error as exc:
            raise setup_error(f"the pgvector index {self._where()}", exc) from exc
        idle = IdleConnectionCheck()
        pool: ConnectionPool = ConnectionPool(
            self._dsn,
            min_size=self.pool_min,
            max_size=self.pool_max,
            kwargs=self._connect,
            timeout=self.timeout,
            configure=_configure,
            check=idle.check,
            reset=idle.reset,
            name="agentmem-pgvector",
            open=False,
        )
        try:
            pool.open(wait=True, timeout=self.timeout)
        except PoolTimeout as exc:
            pool.close()
            raise self._unavailable(exc) from exc
        self._pool = pool
        self._dim = dim

    def _enable_extension(self, conn: psycopg.Connection[Any]) -> None:
        if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone():
            return
        available = conn.execute(
            "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
        ).fetchone()
        if available is None:
            version = conn.execute("SHOW server_version").fetchone()
            raise BackendUnavailable(
                f"the PostgreSQL server at {self.url} (version {version[0] if version else '?'}) "
                "has no pgvector extension; install it on the server (e.g. `apt install "
                "postgresql-<major>-pgvector`, or the pgvector/pgvector Docker image) or point "
                "AGENTMEM_VECTORS_URL at a server that has it"
            )
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (_SETUP_LOCK,))
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except pg_errors.InsufficientPrivilege as exc:
            db = conn.info.dbname
            raise BackendUnavailable(
                f"pgvector is installed on the server at {self.url} but not enabled in database "
                f"{db!r}, and this user may not enable it; ask a superuser to run "
                f"`CREATE EXTENSION vector;` in {db!r}"
            ) from exc

    def _migrate(self, conn: psycopg.Connection[Any], dim: int) -> None:
        q = self._sql
        with conn.transaction():
            conn.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(current_schema() || '.' || %s))",
                (_SETUP_LOCK, self.collection),
            )
            have = self._existing_dim(conn)
            if have is not None:
                if have != dim:
                    raise EmbedderMismatch(
                        f"{self._where()} holds {have}-d vectors but the embedder makes {dim}-d "
                        "vectors (another embedding model?); nothing was written. Use the embedder "
                        "it was built with, or reindex into a new collection: set "
                        "AGENTMEM_VECTORS_COLLECTION to a new name and run `agentmem reindex`"
                    )
                return
            conn.execute(
                q(
                    """
                    CREATE TABLE {points} (
                        id TEXT COLLATE "C" PRIMARY KEY,
                        org_id TEXT COLLATE "C", user_id TEXT COLLATE "C",
                        agent_id TEXT COLLATE "C", thread_id TEXT COLLATE "C",
                        kind TEXT NOT NULL, status TEXT NOT NULL,
                        valid_from DOUBLE PRECISION NOT NULL, valid_to DOUBLE PRECISION NOT NULL,
                        created_at DOUBLE PRECISION, event_time DOUBLE PRECISION,
                        version INTEGER NOT NULL, metadata JSONB NOT NULL,
                        v_dense vector({dim}) NOT NULL, v_window vector({dim}),
                        s_bm25 sparsevec, t_bm25 INTEGER[],
                        s_window_bm25 sparsevec, t_window_bm25 INTEGER[]
                    )
                    """,
                    dim=sql.SQL(str(int(dim))),
                )
            )
            for name, columns in (
                ("user", "user_id, agent_id"),
                ("agent", "agent_id"),
                ("org", "org_id"),
                ("thread", "thread_id"),
            ):
                conn.execute(
                    q(
                        "CREATE INDEX {name} ON {points} ({columns})",
                        name=sql.Identifier(f"{self.collection}_points_{name}"),
                        columns=sql.SQL(columns),
                    )
                )
            conn.execute(
                q(
                    "CREATE INDEX {name} ON {points} USING GIN (metadata jsonb_path_ops)",
                    name=sql.Identifier(f"{self.collection}_points_metadata"),
                )
            )
            if dim <= HNSW_MAX_DIM:
                for column in _DENSE_COLUMNS.values():
                    conn.execute(
                        q(
                            "CREATE INDEX {name} ON {points} "
                            "USING hnsw ({column} vector_cosine_ops)",
                            name=sql.Identifier(f"{self.collection}_points_{column}"),
                            column=sql.Identifier(column),
                        )
                    )
            for _, terms in _SPARSE_COLUMNS.values():
                conn.execute(
                    q(
                        "CREATE INDEX {name} ON {points} USING GIN ({column})",
                        name=sql.Identifier(f"{self.collection}_points_{terms}"),
                        column=sql.Identifier(terms),
                    )
                )
            conn.execute(
                q(
                    "CREATE TABLE {df} (space SMALLINT NOT NULL, term INTEGER NOT NULL, "
                    "df BIGINT NOT NULL, PRIMARY KEY (space, term))"
                )
            )

    def _existing_dim(self, conn: psycopg.Connection[Any]) -> int | None:
        table = f'"{self.collection}_points"'
        row = conn.execute("SELECT to_regclass(%s)::oid", (table,)).fetchone()
        if row is None or row[0] is None:
            return None
        typmod = conn.execute(
            "SELECT atttypmod FROM pg_attribute WHERE attrelid = %s AND attname = 'v_dense'",
            (row[0],),
        ).fetchone()
        if typmod is None:
            raise InvalidSettings(
                f"table {self.collection}_points exists but is not an agentmem vector table; "
                "set AGENTMEM_VECTORS_COLLECTION to another name"
            )
        return int(typmod[0])

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    # -- writes ------------------------------------------------------------------------------

    def upsert(self, points: Sequence[VectorPoint]) -> None:
        if not points:
            return
        latest: dict[str, VectorPoint] = {}
        for p in points:  # the last point of an id wins, as in Qdrant
            latest[p.id] = p
        rows = [self._row(p) for p in latest.values()]
        q = self._sql
        with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            old = self._lock_ids(cur, list(latest))
            delta: Counter[tuple[int, int]] = Counter()
            for terms in old.values():
                _count(delta, terms, -1)
            written: set[str] = set()
            cur.executemany(
                q(
                    """
                    INSERT INTO {points} (
                        id, org_id, user_id, agent_id, thread_id, kind, status, valid_from,
                        valid_to, created_at, event_time, version, metadata, v_dense, v_window,
                        s_bm25, t_bm25, s_window_bm25, t_window_bm25)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s,
                            %s, %s, %s, %s)
                    ON CONFLICT (id) DO UPDATE SET
                        org_id = excluded.org_id, user_id = excluded.user_id,
                        agent_id = excluded.agent_id, thread_id = excluded.thread_id,
                        kind = excluded.kind, status = excluded.status,
                        valid_from = excluded.valid_from, valid_to = excluded.valid_to,
                        created_at = excluded.created_at, event_time = excluded.event_time,
                        version = excluded.version, metadata = excluded.metadata,
                        v_dense = excluded.v_dense, v_window = excluded.v_window,
                        s_bm25 = excluded.s_bm25, t_bm25 = excluded.t_bm25,
                        s_window_bm25 = excluded.s_window_bm25,
                        t_window_bm25 = excluded.t_window_bm25
                    WHERE {points}.version <= excluded.version
                    RETURNING id
                    """
                ),
                rows,
                returning=True,
            )
            while True:
                written.update(r[0] for r in cur.fetchall())
                if not cur.nextset():
                    break
            for p in latest.values():
                if p.id in written:
                    _count(delta, _terms_of(p), +1)
                elif p.id in old:  # an older version lost to a newer one: nothing changes
                    _count(delta, old[p.id], +1)
            self._apply_df(cur, delta)

    def delete(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        q = self._sql
        with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            old = self._lock_ids(cur, list(dict.fromkeys(ids)))
            if not old:
                return
            cur.execute(q("DELETE FROM {points} WHERE id = ANY(%s)"), (list(old),))
            delta: Counter[tuple[int, int]] = Counter()
            for terms in old.values():
                _count(delta, terms, -1)
            self._apply_df(cur, delta)

    def _lock_ids(
        self, cur: psycopg.Cursor[Any], ids: list[str]
    ) -> dict[str, dict[int, list[int]]]:
        """Lock the ids for this transaction (in hash order: no deadlock between writers) and
        return the BM25 terms of those that already have a point."""
        cur.execute(
            "SELECT pg_advisory_xact_lock(%s, h) FROM "
            "(SELECT DISTINCT hashtext(i) AS h FROM unnest(%s::text[]) AS i ORDER BY h) AS s",
            (_ID_LOCK, ids),
        )
        cur.execute(
            self._sql("SELECT id, t_bm25, t_window_bm25 FROM {points} WHERE id = ANY(%s)"),
            (ids,),
        )
        return {
            rid: {
                _SPACE_IDS[space]: terms
                for space, terms in ((BM25, bm25), (WINDOW_BM25, window))
                if terms
            }
            for rid, bm25, window in cur.fetchall()
        }

    def _apply_df(self, cur: psycopg.Cursor[Any], delta: Counter[tuple[int, int]]) -> None:
        changes = sorted((key, n) for key, n in delta.items() if n)
        if not changes:
            return
        cur.executemany(
            self._sql(
                "INSERT INTO {df} (space, term, df) VALUES (%s, %s, %s) "
                "ON CONFLICT (space, term) DO UPDATE SET df = {df}.df + excluded.df"
            ),
            [(space, term, n) for (space, term), n in changes],
        )

    def _row(self, p: VectorPoint) -> tuple[Any, ...]:
        pl = p.payload
        sparse: list[Any] = []
        for space in SPARSE_SPACES:
            sv = p.sparse.get(space)
            if sv:
                weights = sparse_weights(sv)
                sparse += [PgSparse(weights, SPARSE_DIMS), sorted(weights)]
            else:
                sparse += [None, None]
        window = p.dense.get(WINDOW)
        return (
            p.id,
            pl.get("org_id"),
            pl.get("user_id"),
            pl.get("agent_id"),
            pl.get("thread_id"),
            pl["kind"],
            pl.get("status", "active"),
            pl["valid_from"],
            pl["valid_to"],
            pl.get("created_at"),
            pl.get("event_time"),
            int(pl.get("version", 0)),
            json.dumps(_json_metadata(pl.get("metadata", {}))),
            _vector(p.vector, self._dim),
            None if window is None else _vector(window, self._dim),
            *sparse,
        )

    # -- reads -------------------------------------------------------------------------------

    def search(
        self, vector: np.ndarray, query: VectorQuery, using: str = DENSE
    ) -> list[tuple[str, float]]:
        column = _DENSE_COLUMNS.get(using)
        if column is None:
            raise InvalidSettings(
                f"unknown dense space {using!r}; use one of {list(_DENSE_COLUMNS)}"
            )
        w = self._where_for(query)
        w.add(f"{column} IS NOT NULL")
        v = _vector(vector, self._dim)
        # Filtered HNSW scans go on past ef_search until LIMIT rows pass the filter
        # (pgvector's iterative scan, relaxed order), then the outer query orders exactly.
        statement = self._sql(
            "WITH hits AS MATERIALIZED ("
            "SELECT id, {column} <=> %s AS d FROM {points} WHERE " + w.sql() + " "
            "ORDER BY d LIMIT %s) SELECT id, 1 - d FROM hits ORDER BY d, id",
            column=sql.Identifier(column),
        )
        with self._connection() as conn:
            rows = conn.execute(statement, (v, *w.params, query.limit)).fetchall()
        return [(rid, float(score)) for rid, score in rows]

    def search_sparse(
        self, vector: SparseVector, query: VectorQuery, using: str = BM25
    ) -> list[tuple[str, float]]:
        if using not in _SPARSE_COLUMNS:
            raise InvalidSettings(f"unknown sparse space {using!r}; use one of {SPARSE_SPACES}")
        if not vector:
            return []
        column, terms_column = _SPARSE_COLUMNS[using]
        weights = _folded(vector)
        terms = sorted(weights)
        w = self._where_for(query)
        w.add(f"{terms_column} && ?::integer[]", terms)
        with self._connection() as conn:
            stats = dict(
                conn.execute(
                    self._sql("SELECT term, df FROM {df} WHERE space = %s AND term = ANY(%s)"),
                    (_SPACE_IDS[using], [_DOCS, *terms]),
                ).fetchall()
            )
            docs = int(stats.get(_DOCS, 0))
            scaled = {t: wt * idf(docs, int(stats[t])) for t, wt in weights.items() if stats.get(t)}
            if not scaled:
                return []
            q = PgSparse(_capped(scaled), SPARSE_DIMS)
            statement = self._sql(
                "SELECT id, -({column} <#> %s) AS s FROM {points} WHERE " + w.sql() + " "
                "ORDER BY s DESC, id LIMIT %s",
                column=sql.Identifier(column),
            )
            rows = conn.execute(statement, (q, *w.params, query.limit)).fetchall()
        return [(rid, float(score)) for rid, score in rows if score > 0]

    def _where_for(self, query: VectorQuery) -> Where:
        q = query if query.now else replace(query, now=time.time())
        w = Where(self._dialect)
        w.add_scope(q.scope)
        if q.kinds:
            w.add("kind = ANY(?)", [k.value for k in q.kinds])
        if q.as_of is not None:
            t = q.as_of.timestamp()
            w.add("valid_from <= ?", t)
            w.add("valid_to > ?", t)
        elif not q.include_invalidated:
            w.add("status = 'active'")
            w.add("valid_to > ?", q.now)
        if q.event_after is not None:
            w.add("event_time >= ?", q.event_after)
        if q.event_before is not None:
            w.add("event_time < ?", q.event_before)
        for c in q.conditions:
            condition, params = self._dialect.json_condition(c)
            w.add(condition, *params)
        return w

    def count(self) -> int:
        with self._connection() as conn:
            row = conn.execute(self._sql("SELECT count(*) FROM {points}")).fetchone()
        return int(row[0]) if row else 0

    def ids(self, limit: int = 10_000, offset: str | None = None) -> list[str]:
        with self._connection() as conn:
            rows = conn.execute(
                self._sql("SELECT id FROM {points} WHERE id >= %s ORDER BY id LIMIT %s"),
                (offset or "", limit),
            ).fetchall()
        return [r[0] for r in rows]

    # -- helpers -----------------------------------------------------------------------------

    def _sql(self, template: str, **parts: Any) -> sql.Composed:
        return sql.SQL(template).format(points=self._points, df=self._df, **parts)

    def _where(self) -> str:
        return f"pgvector collection {self.collection!r} at {self.url}"

    def _unavailable(self, exc: BaseException) -> BackendUnavailable:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return BackendUnavailable(
            f"cannot reach the pgvector index at {self.url}: {reason}; start PostgreSQL with "
            "pgvector there (e.g. `docker run -p 5432:5432 pgvector/pgvector:pg17`) or point "
            "AGENTMEM_VECTORS_URL at a running one"
        )

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection; driver errors are translated to agentmem errors here."""
        if self._pool is None:
            raise BackendUnavailable(f"{self._where()} is not open; call setup(dim) first")
        try:
            with self._pool.connection() as conn:
                yield conn
        except AgentMemError:
            raise
        except (psycopg.DataError, pg_errors.ProgramLimitExceeded) as exc:
            # The server answered: it refuses a value (a limit or a malformed number), which
            # no restart cures. (A limit error is an OperationalError to psycopg.)
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise IndexRefused(
                f"{self._where()} refused a value: {reason}; nothing was written to the index"
            ) from exc
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise self._unavailable(exc) from exc
        except psycopg.Error as exc:
            raise BackendUnavailable(f"{self._where()} failed: {exc}") from exc


def _configure(conn: psycopg.Connection[Any]) -> None:
    register_vector(conn)
    conn.execute("SET hnsw.iterative_scan = relaxed_order")
    conn.execute(f"SET hnsw.ef_search = {_EF_SEARCH}")


def _vector(v: np.ndarray, dim: int | None) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32).reshape(-1)
    if dim is not None and a.shape[0] != dim:
        raise InvalidSettings(f"a {a.shape[0]}-d vector for an index of {dim}-d vectors")
    return a


def _terms_of(p: VectorPoint) -> dict[int, list[int]]:
    return {
        _SPACE_IDS[space]: sorted(sparse_weights(sv))
        for space in SPARSE_SPACES
        if (sv := p.sparse.get(space))
    }


def _count(delta: Counter[tuple[int, int]], terms: dict[int, list[int]], sign: int) -> None:
    for space, ts in terms.items():
        delta[(space, _DOCS)] += sign
        for t in ts:
            delta[(space, t)] += sign


def _json_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """The payload's metadata back in JSON types, so the store's JSONB filter SQL applies:
    booleans, integers beyond 64 bits and strings that read like tags were kept as tagged
    strings for Qdrant (:func:`agentmem.vectors.base.index_value`)."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if isinstance(value, str) and value.startswith(BOOL_TAG):
            out[key] = value == f"{BOOL_TAG}true"
        elif isinstance(value, str) and value.startswith(INT_TAG):
            out[key] = int(value[len(INT_TAG) :])
        elif isinstance(value, str) and value.startswith(STR_TAG):
            out[key] = value[len(STR_TAG) :]
        else:
            out[key] = value
    return out


__all__ = [
    "HNSW_MAX_DIM",
    "SPARSE_DIMS",
    "SPARSE_MAX_TERMS",
    "PgVectorIndex",
    "fold",
    "idf",
    "sparse_weights",
]
