"""The Neo4j graph backend, through the official ``neo4j`` driver (``pip install
'agentmem[neo4j]'``).

Every statement comes from the shared :mod:`agentmem.graph.cypher` layer (dialect
:data:`~agentmem.graph.cypher.NEO4J`) and is parameterised. ``setup()``
connects, checks the server answers, and creates the constraints and indexes (idempotent).
A change runs in one write transaction: claim the partition node (compare-and-set on its
version), apply the statements, move the version; a concurrent writer gets
:class:`~agentmem.errors.Conflict` and the update is retried on the reloaded graph. Reads
load a partition into memory (the algorithms run in-process on networkx), cached while its
version does not move, so several processes can share one server; bounded reads (the k-hop
neighbourhood of a query's entities) are indexed queries on the server.

URL: ``neo4j://user:password@host:7687`` (also ``neo4j+s://``, ``bolt://``, ``bolt+s://``);
``?database=name`` picks a database other than the server's default. Without credentials in
the URL, ``NEO4J_USERNAME`` / ``NEO4J_PASSWORD`` are read when the store is built.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from agentmem.errors import BackendUnavailable, Conflict, InvalidSettings
from agentmem.graph import cypher
from agentmem.graph.cypher import CypherDialect, Statement
from agentmem.graph.cypher_store import CypherGraphStore
from agentmem.graph.model import GraphChange
from agentmem.models import Scope, ScopeSet
from agentmem.urls import redact

SCHEMES = ("neo4j://", "neo4j+s://", "neo4j+ssc://", "bolt://", "bolt+s://", "bolt+ssc://")
_START_HINT = (
    "start one with `docker run -d -p 7687:7687 -e NEO4J_AUTH=neo4j/agentmem-test neo4j:5` "
    "(docs/operations.md), or unset AGENTMEM_GRAPH_URL to keep the graph in the store"
)


def _driver_module() -> Any:
    try:
        import neo4j
    except ImportError as exc:
        raise BackendUnavailable(
            "the Neo4j graph backend needs the neo4j driver; install it with "
            "`pip install 'agentmem[neo4j]'`"
        ) from exc
    return neo4j


class Neo4jGraphStore(CypherGraphStore):
    """Knowledge graphs in Neo4j 5 (partitions as ``:GraphPartition`` nodes, entities as
    ``:Entity`` nodes, relations as ``:RELATES`` relationships)."""

    def __init__(
        self,
        uri: str,
        *,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        timeout: float = 5.0,
        dialect: CypherDialect = cypher.NEO4J,
    ) -> None:
        super().__init__()
        if not uri.startswith(SCHEMES):
            raise InvalidSettings(f"{redact(uri)!r} is not a Neo4j URL like neo4j://host:7687")
        self.uri = uri
        self.url = redact(uri if user is None else uri.replace("://", f"://{user}:***@", 1))
        self._auth = (user, password or "") if user is not None else None
        self.database = database
        self.timeout = timeout
        self.dialect = dialect
        self._driver: Any = None

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 5.0) -> Neo4jGraphStore:
        """``neo4j://user:password@host:7687?database=name`` (no I/O)."""
        if not url.startswith(SCHEMES):
            raise InvalidSettings(
                f"{redact(url)!r} is not a Neo4j URL; use one of: {', '.join(SCHEMES)}"
            )
        parts = urlsplit(url)
        user = unquote(parts.username) if parts.username else os.environ.get("NEO4J_USERNAME")
        password = unquote(parts.password) if parts.password else os.environ.get("NEO4J_PASSWORD")
        host = parts.hostname or "localhost"
        netloc = f"{host}:{parts.port}" if parts.port else host
        query = dict(parse_qsl(parts.query))
        bare = urlunsplit((parts.scheme, netloc, "", "", ""))
        return cls(bare, user=user, password=password, database=query.get("database"),
                   timeout=timeout)  # fmt: skip

    # lifecycle ---------------------------------------------------------------------------

    def setup(self) -> None:
        if self._driver is not None:
            return
        neo4j = _driver_module()
        try:
            driver = neo4j.GraphDatabase.driver(
                self.uri, auth=self._auth, connection_timeout=self.timeout
            )
            driver.verify_connectivity()
        except neo4j.exceptions.Neo4jError as exc:
            raise BackendUnavailable(f"Neo4j at {self.url} refused agentmem: {exc}") from exc
        except Exception as exc:  # driver errors: ServiceUnavailable, AuthError, OSError ...
            raise BackendUnavailable(
                f"cannot reach Neo4j at {self.url}: {exc}; {_START_HINT}"
            ) from exc
        self._driver = driver
        with self._errors():
            for statement in self.dialect.schema:
                driver.execute_query(statement, database_=self.database)

    def close(self) -> None:
        driver, self._driver = self._driver, None
        self.forget_cache()
        if driver is not None:
            driver.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Driver errors become agentmem errors here (the one translation boundary)."""
        neo4j = _driver_module()
        exceptions = neo4j.exceptions
        try:
            yield
        except exceptions.ConstraintError as exc:
            raise Conflict(f"a concurrent write to Neo4j at {self.url} won ({exc}); retry") from exc
        except (exceptions.ServiceUnavailable, exceptions.SessionExpired) as exc:
            raise BackendUnavailable(f"lost Neo4j at {self.url}: {exc}; {_START_HINT}") from exc
        except exceptions.AuthError as exc:
            raise BackendUnavailable(
                f"Neo4j at {self.url} rejected the credentials ({exc}); check the URL's "
                "user:password or NEO4J_USERNAME / NEO4J_PASSWORD"
            ) from exc

    def _require(self) -> Any:
        if self._driver is None:
            raise BackendUnavailable(f"Neo4j graph store {self.url} is not open; call setup()")
        return self._driver

    def _read(self, statements: Sequence[Statement]) -> list[dict[str, Any]]:
        driver = self._require()
        rows: list[dict[str, Any]] = []
        with self._errors(), driver.session(database=self.database) as session:
            for text, params in statements:
                result = session.execute_read(
                    lambda tx, t=text, p=params: [r.data() for r in tx.run(t, p)]
                )
                rows.extend(result)
        return rows

    def _write(self, work: Callable[[Any], Any]) -> Any:
        driver = self._require()
        with self._errors(), driver.session(database=self.database) as session:
            return session.execute_write(work)

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
        statements = cypher.write_change(key, change)
        writer = uuid.uuid4().hex
        claim_text, claim_params = cypher.claim_partition(
            key, scope, expected_version, writer, generation
        )

        def work(tx: Any) -> int:
            claim = tx.run(claim_text, claim_params).single()
            self._check_claim(scope, expected_version, generation, claim.data())
            for text, params in statements:
                tx.run(text, params).consume()
            version_text, version_params = cypher.set_version(
                key, expected_version + 1, writer, generation
            )
            tx.run(version_text, version_params).consume()
            return expected_version + 1

        return int(self._write(work))

    def drop_partitions(self, scope: Scope | ScopeSet | None) -> int:
        keys = [p.key for p in self.partitions(scope)]

        def work(tx: Any) -> None:
            for key in keys:
                for text, params in cypher.drop_partition(key):
                    tx.run(text, params).consume()

        if keys:
            self._write(work)
        return len(keys)


__all__ = ["SCHEMES", "Neo4jGraphStore"]
