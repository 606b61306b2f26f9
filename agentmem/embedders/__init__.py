"""Embedders: the offline default (all-MiniLM-L6-v2 on ONNX Runtime), local
sentence-transformers models (torch, the ``gpu`` extra), ONNX exports, litellm."""

from __future__ import annotations

from agentmem.embedders.base import Embedder, normalise
from agentmem.embedders.litellm import LiteLLMEmbedder
from agentmem.embedders.onnx import OnnxEmbedder, OnnxModel
from agentmem.embedders.sentence_transformers import (
    MINILM_NAME,
    SentenceTransformerEmbedder,
    minilm_path,
)
from agentmem.errors import InvalidSettings

_MINILM_ALIASES = ("minilm", MINILM_NAME, f"sentence-transformers/{MINILM_NAME}")

#: The embedder specs ``AGENTMEM_EMBEDDER`` accepts, for error messages and docs.
EMBEDDER_SPECS = (
    "'minilm' (default, ONNX Runtime, computed in int8), 'minilm-int8-weights' (ONNX Runtime, "
    "int8 weights computed in fp32: the default before), 'minilm-fp32' (ONNX Runtime, fp32), "
    "'minilm-torch' (sentence-transformers, the gpu extra), 'onnx:<dir with model.onnx and "
    "tokenizer.json>', 'sentence-transformers:<local path>' or 'litellm:<model>'"
)


def embedder_from_spec(
    spec: str, *, batch_size: int = 64, precision: str = "auto", threads: int = 0
) -> Embedder:
    """Build an embedder from a settings spec (see :data:`EMBEDDER_SPECS`).

    ``precision`` applies to torch models (sentence-transformers), ``threads`` to ONNX Runtime
    models (0: one per core). Nothing is loaded here: models load on first use.
    """
    if spec in _MINILM_ALIASES:
        return OnnxEmbedder.minilm(batch_size=batch_size, threads=threads)
    if spec == "minilm-int8-weights":
        return OnnxEmbedder.minilm_int8_weights(batch_size=batch_size, threads=threads)
    if spec == "minilm-fp32":
        return OnnxEmbedder.minilm_fp32(batch_size=batch_size, threads=threads)
    if spec == "minilm-torch":
        return SentenceTransformerEmbedder.minilm(batch_size=batch_size, precision=precision)
    if spec.startswith("onnx:"):
        return OnnxEmbedder(spec.split(":", 1)[1], batch_size=batch_size, threads=threads)
    if spec.startswith("sentence-transformers:"):
        return SentenceTransformerEmbedder(
            spec.split(":", 1)[1], batch_size=batch_size, precision=precision
        )
    if spec.startswith("litellm:"):
        return LiteLLMEmbedder(spec.split(":", 1)[1], batch_size=batch_size)
    raise InvalidSettings(f"unknown embedder {spec!r}; use {EMBEDDER_SPECS}")


__all__ = [
    "EMBEDDER_SPECS",
    "MINILM_NAME",
    "Embedder",
    "LiteLLMEmbedder",
    "OnnxEmbedder",
    "OnnxModel",
    "SentenceTransformerEmbedder",
    "embedder_from_spec",
    "minilm_path",
    "normalise",
]
