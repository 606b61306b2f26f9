"""Vector indexes: Qdrant Edge embedded; PostgreSQL + pgvector or a Qdrant server (or
qdrant-client local mode) at scale."""

from __future__ import annotations

from agentmem.errors import InvalidSettings
from agentmem.vectors.base import VectorIndex, VectorPoint, VectorQuery, payload_for
from agentmem.vectors.edge import EdgeVectorIndex


def vectors_from_url(
    url: str,
    *,
    collection: str = "agentmem",
    timeout: float = 5.0,
    pool_min: int = 1,
    pool_max: int = 8,
) -> VectorIndex:
    """Build (without connecting) the vector index a URL names: ``edge:///path`` (Qdrant Edge),
    ``postgresql://...`` (PostgreSQL + pgvector), ``http(s)://host:6333`` (a Qdrant server) or
    ``qdrant-local://...`` (qdrant-client's local mode)."""
    if url.startswith("edge://"):
        return EdgeVectorIndex.from_url(url)
    if url.startswith(("postgresql://", "postgres://")):
        from agentmem.vectors.pgvector import PgVectorIndex

        return PgVectorIndex.from_url(
            url, collection=collection, timeout=timeout, pool_min=pool_min, pool_max=pool_max
        )
    if url.startswith(("http://", "https://", "qdrant-local://")):
        from agentmem.vectors.qdrant_server import QdrantServerIndex

        return QdrantServerIndex.from_url(url, collection=collection, timeout=timeout)
    raise InvalidSettings(
        f"unknown vectors URL {url!r}; use edge:///path, postgresql://user@host:5432/db "
        "(pgvector), http://host:6333 or qdrant-local://..."
    )


__all__ = [
    "EdgeVectorIndex",
    "VectorIndex",
    "VectorPoint",
    "VectorQuery",
    "payload_for",
    "vectors_from_url",
]
