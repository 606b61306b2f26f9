"""Embedders turn text into unit-length vectors."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from agentmem.errors import EmbedderMismatch


class Embedder(ABC):
    """Text to L2-normalised float32 vectors.

    ``name`` identifies the model (and its version) for the embedding cache: two embedders
    with the same name must return the same vectors.
    """

    name: str

    @property
    @abstractmethod
    def dim(self) -> int:
        """Vector size."""

    @property
    def known_dim(self) -> int | None:
        """The vector size if known without loading a model or calling a provider, else None
        (only :attr:`dim` can tell). Opening a home compares a known size with its index at
        once; an unknown one is compared on the first use that needs vectors, so commands that
        embed nothing never pay for it. By default :attr:`dim` itself."""
        return self.dim

    @abstractmethod
    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for texts to be stored, shape (len(texts), dim)."""

    def embed_query(self, text: str) -> np.ndarray:
        """The vector of a search query, shape (dim,)."""
        return self.embed_documents([text])[0]

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release model resources."""


def checked_vectors(embedder: Embedder, vectors: np.ndarray, count: int) -> np.ndarray:
    """``vectors`` if they are ``count`` rows of the embedder's declared ``dim`` (the size the
    vector index was opened for), else :class:`EmbedderMismatch`, before anything is written."""
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2 or array.shape != (count, embedder.dim):
        raise EmbedderMismatch(
            f"embedder {embedder.name!r} returned vectors of shape {tuple(array.shape)} for "
            f"{count} texts, but declares {embedder.dim} dimensions (the size the vector index "
            "holds); nothing was written. Use the embedder the index was built with, or point "
            "AGENTMEM_VECTORS_URL at a new index and run `agentmem reindex`"
        )
    return array


def content_name(folder: Path, files: Iterable[Path]) -> str:
    """The name of a model kept in ``folder``: the folder's name and a digest of the contents
    of ``files`` (``e5#1f0c3a9b2d4e``). Two models in folders of one name get two names, so
    they never share cached vectors; one model copied elsewhere keeps its name (and its cache
    and adapters), wherever it lies."""
    digest = hashlib.sha256()
    for path in sorted(files):
        label = path.relative_to(folder).as_posix() if path.is_relative_to(folder) else path.name
        digest.update(f"{label}\0{path.stat().st_size}\0".encode())
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return f"{folder.name}#{digest.hexdigest()[:12]}"


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Scale rows to unit length (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


__all__ = ["Embedder", "checked_vectors", "content_name", "normalise"]
