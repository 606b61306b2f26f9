"""Embedders turn text into unit-length vectors."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np


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

    @abstractmethod
    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for texts to be stored, shape (len(texts), dim)."""

    def embed_query(self, text: str) -> np.ndarray:
        """The vector of a search query, shape (dim,)."""
        return self.embed_documents([text])[0]

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release model resources."""


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Scale rows to unit length (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


__all__ = ["Embedder", "normalise"]
