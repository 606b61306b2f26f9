"""Embeddings through litellm: any provider's embedding model (``litellm:<model>``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from agentmem.embedders.base import Embedder, normalise
from agentmem.errors import BackendUnavailable


class LiteLLMEmbedder(Embedder):
    """Calls ``litellm.embedding`` in batches; the dimension is learned from the first call
    unless given."""

    def __init__(
        self,
        model: str,
        *,
        dim: int | None = None,
        batch_size: int = 64,
        num_retries: int = 3,
        **kwargs: Any,
    ) -> None:
        self.model = model
        self.name = f"litellm:{model}"
        self.batch_size = batch_size
        self.num_retries = num_retries
        self.kwargs = kwargs
        self._dim = dim

    @property
    def known_dim(self) -> int | None:
        return self._dim  # None until the first call answers

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.embed_documents(["dimension probe"]).shape[1])
        return self._dim

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        try:
            import litellm
        except ImportError as exc:
            raise BackendUnavailable(
                "litellm embeddings need the llm extra: pip install 'agentmem[llm]'"
            ) from exc
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = list(texts[start : start + self.batch_size])
            try:
                response = litellm.embedding(
                    model=self.model, input=chunk, num_retries=self.num_retries, **self.kwargs
                )
            except Exception as exc:
                raise BackendUnavailable(
                    f"embedding model {self.model!r} failed: {exc}; check the provider key "
                    "and network, or use the offline default AGENTMEM_EMBEDDER=minilm"
                ) from exc
            rows.extend(item["embedding"] for item in response.data)
        vectors = normalise(np.asarray(rows, dtype=np.float32))
        if self._dim is None and len(vectors):
            self._dim = int(vectors.shape[1])
        return vectors


__all__ = ["LiteLLMEmbedder"]
