"""Embedders: the offline default (all-MiniLM-L6-v2), local sentence-transformers, litellm."""

from __future__ import annotations

from agentmem.embedders.base import Embedder, normalise
from agentmem.embedders.litellm import LiteLLMEmbedder
from agentmem.embedders.sentence_transformers import (
    MINILM_NAME,
    SentenceTransformerEmbedder,
    minilm_path,
)
from agentmem.errors import InvalidSettings


def embedder_from_spec(spec: str, *, batch_size: int = 64, precision: str = "auto") -> Embedder:
    """Build an embedder from a settings spec: ``minilm``, ``sentence-transformers:<path>``
    or ``litellm:<model>``."""
    if spec in ("minilm", MINILM_NAME, f"sentence-transformers/{MINILM_NAME}"):
        return SentenceTransformerEmbedder.minilm(batch_size=batch_size, precision=precision)
    if spec.startswith("sentence-transformers:"):
        return SentenceTransformerEmbedder(
            spec.split(":", 1)[1], batch_size=batch_size, precision=precision
        )
    if spec.startswith("litellm:"):
        return LiteLLMEmbedder(spec.split(":", 1)[1], batch_size=batch_size)
    raise InvalidSettings(
        f"unknown embedder {spec!r}; use 'minilm', 'sentence-transformers:<local path>' "
        "or 'litellm:<model>'"
    )


__all__ = [
    "MINILM_NAME",
    "Embedder",
    "LiteLLMEmbedder",
    "SentenceTransformerEmbedder",
    "embedder_from_spec",
    "minilm_path",
    "normalise",
]
