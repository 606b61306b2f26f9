"""Vector indexes: Qdrant Edge embedded, Qdrant server (or qdrant-client local mode) at scale."""

from __future__ import annotations

from agentmem.errors import InvalidSettings
from agentmem.vectors.base import VectorIndex, VectorPoint, VectorQuery, payload_for
from agentmem.vectors.edge import EdgeVectorIndex


def vectors_from_url(
    url: str, *, collection: str = "agentmem", timeout: float = 5.0
) -> VectorIndex:
    """Build (without connecting) the vector index a URL names."""
    if url.startswith("edge://"):
        return EdgeVectorIndex.from_url(url)
    if url.startswith(("http://", "https://", "qdrant-local://")):
        from agentmem.vectors.qdrant_server import QdrantServerIndex

        return QdrantServerIndex.from_url(url, collection=collection, timeout=timeout)
    raise InvalidSettings(
        f"unknown vectors URL {url!r}; use edge:///path, http://host:6333 or qdrant-local://..."
    )


__all__ = [
    "EdgeVectorIndex",
    "VectorIndex",
    "VectorPoint",
    "VectorQuery",
    "payload_for",
    "vectors_from_url",
]
