"""Qdrant server vector index (through ``qdrant-client``), for memory shared at scale.

The same class also drives qdrant-client's *local mode* (``qdrant-local:///path`` or
``qdrant-local://:memory:``), which speaks the client API without a server; it is a pure-Python
testing aid (slow on large collections) and serves one process at a time.

Filters are built by the code Qdrant Edge uses (:mod:`agentmem.vectors._qdrant_filter`) and
payloads by :func:`~agentmem.vectors.base.payload_for`, so both backends return the same points.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit, urlunsplit

import numpy as np

from agentmem.errors import AgentMemError, BackendUnavailable, EmbedderMismatch, InvalidSettings
from agentmem.lexical import SparseVector
from agentmem.vectors._qdrant_filter import (
    FLOAT_PAYLOAD_FIELDS,
    KEYWORD_PAYLOAD_FIELDS,
    FilterModels,
    build_filter,
)
from agentmem.vectors.base import (
    BM25,
    DENSE,
    DENSE_SPACES,
    SPARSE_SPACES,
    VectorIndex,
    VectorPoint,
    VectorQuery,
)

_LOCAL_PREFIX = "qdrant-local://"
_MEMORY = ":memory:"
_UPSERT_CHUNK = 512
"""Points per upsert request: keeps each request body well under the server's 32 MiB limit."""
_SCROLL_PAGE = 1_000
_START_HINT = "start one with `docker run -p 6333:6333 qdrant/qdrant`"

T = TypeVar("T")


class QdrantServerIndex(VectorIndex):
    """One collection on a Qdrant server, or in qdrant-client's local mode.

    Give either ``url`` (``http(s)://host:6333``, a server several processes share) or ``path``
    (a local-mode directory, or ``":memory:"``). The constructor does no I/O; :meth:`setup`
    connects and creates the collection (cosine distance) with its payload indexes.
    """

    supports_concurrent_processes = True

    def __init__(
        self,
        *,
        url: str | None = None,
        path: str | None = None,
        collection: str = "agentmem",
        timeout: float = 5.0,
        api_key: str | None = None,
    ) -> None:
        if (url is None) == (path is None):
            raise InvalidSettings(
                "QdrantServerIndex needs exactly one of url='http://host:6333' or "
                "path='/dir' (qdrant-client local mode, or ':memory:')"
            )
        if not collection:
            raise InvalidSettings("the Qdrant collection name is empty; pass e.g. 'agentmem'")
        self.server_url = url
        self.path = path
        self.collection = collection
        self.timeout = timeout
        self._api_key = api_key
        self.url = url if url is not None else f"{_LOCAL_PREFIX}{path}"
        self.supports_concurrent_processes = url is not None
        self._client: Any = None
        self._models: Any = None
        self._filters: FilterModels | None = None
        self._dim: int | None = None
        # Local mode is plain Python over shared dicts; the HTTP client is thread-safe.
        self._lock: contextlib.AbstractContextManager[Any] = (
            contextlib.nullcontext() if url is not None else threading.RLock()
        )

    @classmethod
    def from_url(
        cls, url: str, *, collection: str = "agentmem", timeout: float = 5.0
    ) -> QdrantServerIndex:
        """``http(s)://host:6333[?api_key=...]``, ``qdrant-local:///path`` or ``qdrant-local://:memory:``.

        A server's API key comes from the URL's ``api_key`` option, else ``QDRANT_API_KEY``.
        """
        if url.startswith(_LOCAL_PREFIX):
            path = url[len(_LOCAL_PREFIX) :]
            if not path:
                raise InvalidSettings(
                    f"{url!r} names no directory; use qdrant-local:///path/to/dir or "
                    "qdrant-local://:memory:"
                )
            return cls(path=path, collection=collection, timeout=timeout)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidSettings(f"{url!r} is not a Qdrant server URL like http://localhost:6333")
        options = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(options) - {"api_key"})
        if unknown:
            raise InvalidSettings(
                f"unknown option(s) {', '.join(unknown)} in the Qdrant URL; the only one is "
                "api_key (or set QDRANT_API_KEY)"
            )
        api_key = options["api_key"][-1] if "api_key" in options else None
        api_key = api_key or os.environ.get("QDRANT_API_KEY") or None
        bare = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        return cls(url=bare, collection=collection, timeout=timeout, api_key=api_key)

    # -- lifecycle ---------------------------------------------------------------------------

    def setup(self, dim: int) -> None:
        if self._client is not None:
            if dim != self._dim:
                raise InvalidSettings(
                    f"{self._where()} is open for {self._dim}-d vectors, not {dim}-d"
                )
            return
        try:
            from qdrant_client import QdrantClient, models
        except ImportError as exc:  # pragma: no cover - a core dependency
            raise BackendUnavailable(
                "qdrant-client is not installed; `pip install qdrant-client`"
            ) from exc
        self._models = models
        self._filters = FilterModels(
            models.Filter, models.FieldCondition, models.MatchValue, models.Range
        )
        if self.server_url is not None:
            client = QdrantClient(
                url=self.server_url,
                api_key=self._api_key,
                timeout=max(1, math.ceil(self.timeout)),
                check_compatibility=False,
            )
        else:
            try:
                if self.path == _MEMORY:
                    client = QdrantClient(location=_MEMORY)
                else:
                    client = QdrantClient(path=self.path)
            except Exception as exc:
                raise BackendUnavailable(
                    f"cannot open the qdrant-client local index at {self.path}: {exc}; "
                    "local mode allows one process at a time: close the other one, or use "
                    "a Qdrant server (AGENTMEM_VECTORS_URL=http://localhost:6333)"
                ) from exc
        try:
            self._call(self._ensure_collection, client, dim)
        except BaseException:
            client.close()
            raise
        self._client = client
        self._dim = dim

    def _ensure_collection(self, client: Any, dim: int) -> None:
        models = self._models
        if not client.collection_exists(self.collection):
            try:
                client.create_collection(
                    self.collection,
                    vectors_config={
                        name: models.VectorParams(size=dim, distance=models.Distance.COSINE)
                        for name in DENSE_SPACES
                    },
                    sparse_vectors_config={
                        name: models.SparseVectorParams(modifier=models.Modifier.IDF)
                        for name in SPARSE_SPACES
                    },
                )
            except Exception:
                # Another process may have created it since we looked; check what it made.
                if not client.collection_exists(self.collection):
                    raise
        info = client.get_collection(self.collection)
        self._check_vectors(info.config.params.vectors, dim)
        if self.server_url is None:
            return  # local mode ignores payload indexes (and warns about them)
        have = set((info.payload_schema or {}).keys())
        wanted = [(n, models.PayloadSchemaType.KEYWORD) for n in KEYWORD_PAYLOAD_FIELDS]
        wanted += [(n, models.PayloadSchemaType.FLOAT) for n in FLOAT_PAYLOAD_FIELDS]
        for name, schema in wanted:
            if name not in have:
                client.create_payload_index(
                    self.collection, field_name=name, field_schema=schema, wait=True
                )

    def _check_vectors(self, params: Any, dim: int) -> None:
        models = self._models
        reindex = (
            "reindex into a new collection: set AGENTMEM_VECTORS_COLLECTION to a new name and "
            "run `agentmem reindex`"
        )
        if not isinstance(params, dict) or set(params) != set(DENSE_SPACES):
            raise InvalidSettings(
                f"{self._where()} does not hold agentmem's named vectors "
                f"({', '.join(DENSE_SPACES)}); {reindex}"
            )
        params = params[DENSE]
        if params.size != dim:
            raise EmbedderMismatch(
                f"{self._where()} holds {params.size}-d vectors but the embedder makes "
                f"{dim}-d vectors (another embedding model?); nothing was written. Use the "
                f"embedder it was built with, or {reindex}"
            )
        if params.distance != models.Distance.COSINE:
            raise InvalidSettings(
                f"{self._where()} uses {params.distance} distance, agentmem needs Cosine; {reindex}"
            )

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
            if client is not None:
                client.close()

    # -- operations --------------------------------------------------------------------------

    def upsert(self, points: Sequence[VectorPoint]) -> None:
        if not points:
            return
        client = self._require()
        models = self._models
        for start in range(0, len(points), _UPSERT_CHUNK):
            chunk = points[start : start + _UPSERT_CHUNK]
            structs = [
                models.PointStruct(id=p.id, vector=self._named_vectors(p), payload=p.payload)
                for p in chunk
            ]
            self._call(client.upsert, self.collection, points=structs, wait=True)

    def _named_vectors(self, p: VectorPoint) -> dict[str, Any]:
        models = self._models
        named: dict[str, Any] = {DENSE: np.asarray(p.vector, dtype=np.float32).tolist()}
        for name, v in p.dense.items():
            named[name] = np.asarray(v, dtype=np.float32).tolist()
        for name, sv in p.sparse.items():
            if sv:
                named[name] = models.SparseVector(indices=list(sv.indices), values=list(sv.values))
        return named

    def delete(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        client = self._require()
        selector = self._models.PointIdsList(points=list(ids))
        self._call(client.delete, self.collection, points_selector=selector, wait=True)

    def search(
        self, vector: np.ndarray, query: VectorQuery, using: str = DENSE
    ) -> list[tuple[str, float]]:
        return self._query(np.asarray(vector, dtype=np.float32).tolist(), query, using)

    def search_sparse(
        self, vector: SparseVector, query: VectorQuery, using: str = BM25
    ) -> list[tuple[str, float]]:
        if not vector:
            return []
        sparse = self._models.SparseVector(indices=list(vector.indices), values=list(vector.values))
        return self._query(sparse, query, using)

    def _query(self, scoring: Any, query: VectorQuery, using: str) -> list[tuple[str, float]]:
        client = self._require()
        assert self._filters is not None
        q = query if query.now else replace(query, now=time.time())
        flt = build_filter(q, self._filters)
        response = self._call(
            client.query_points,
            self.collection,
            query=scoring,
            using=using,
            query_filter=flt,
            limit=q.limit,
            with_payload=False,
            with_vectors=False,
        )
        return [(str(p.id), float(p.score)) for p in response.points]

    def count(self) -> int:
        client = self._require()
        return int(self._call(client.count, self.collection, exact=True).count)

    def ids(self, limit: int = 10_000, offset: str | None = None) -> list[str]:
        client = self._require()
        out: list[str] = []
        cursor: Any = offset
        while len(out) < limit:
            page = min(_SCROLL_PAGE, limit - len(out))
            records, cursor = self._call(
                client.scroll,
                self.collection,
                limit=page,
                offset=cursor,
                with_payload=False,
                with_vectors=False,
            )
            out.extend(str(r.id) for r in records)
            if cursor is None or not records:
                break
        return out

    # -- helpers -----------------------------------------------------------------------------

    def _require(self) -> Any:
        if self._client is None:
            raise BackendUnavailable(f"{self._where()} is not open; call setup(dim) first")
        return self._client

    def _where(self) -> str:
        return f"Qdrant collection {self.collection!r} at {self.url}"

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one client call, translating its failures at this one boundary."""
        with self._lock, self._translate():
            return fn(*args, **kwargs)

    @contextlib.contextmanager
    def _translate(self) -> Iterator[None]:
        from qdrant_client.http.exceptions import UnexpectedResponse

        try:
            yield
        except AgentMemError:
            raise
        except UnexpectedResponse as exc:
            status = exc.status_code
            if status in (401, 403):
                raise BackendUnavailable(
                    f"the Qdrant server at {self.url} refused the request (HTTP {status}); "
                    "pass its API key as ?api_key=... in the URL or in QDRANT_API_KEY"
                ) from exc
            body = exc.content[:300].decode("utf-8", "replace")
            raise BackendUnavailable(
                f"the Qdrant server at {self.url} answered HTTP {status} for collection "
                f"{self.collection!r}: {body}"
            ) from exc
        except Exception as exc:
            if self.server_url is not None and _is_transport_error(exc):
                source = getattr(exc, "source", exc)
                raise BackendUnavailable(
                    f"cannot reach the Qdrant server at {self.url} ({type(source).__name__}: "
                    f"{source}); {_START_HINT}, or point AGENTMEM_VECTORS_URL at a running one"
                ) from exc
            raise BackendUnavailable(f"{self._where()} failed: {exc}") from exc


def _is_transport_error(exc: Exception) -> bool:
    import httpx
    from qdrant_client.http.exceptions import ResponseHandlingException

    return isinstance(exc, ResponseHandlingException | httpx.TransportError | OSError)


__all__ = ["QdrantServerIndex"]
