"""Embedder precision: bf16 autocast gives nearly the fp32 vectors under its own cache name."""

from __future__ import annotations

import numpy as np
import pytest

from agentmem import Settings
from agentmem.embedders import (
    MINILM_NAME,
    Embedder,
    SentenceTransformerEmbedder,
    embedder_from_spec,
)
from agentmem.embedders.sentence_transformers import _resolve_precision
from agentmem.errors import InvalidSettings

TEXTS = ["Caroline: I went to a LGBTQ support group yesterday.", "Melanie: I painted a sunrise."]


def test_bf16_vectors_are_close_to_fp32_and_cached_apart(embedder: Embedder) -> None:
    bf16 = SentenceTransformerEmbedder.minilm(precision="bf16")
    assert embedder.name == MINILM_NAME and bf16.name == f"{MINILM_NAME}@bf16"
    fp32_vectors = embedder.embed_documents(TEXTS)
    bf16_vectors = bf16.embed_documents(TEXTS)
    assert bf16_vectors.dtype == np.float32 and bf16_vectors.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(bf16_vectors, axis=1), 1.0, atol=1e-5)
    cosines = (fp32_vectors * bf16_vectors).sum(axis=1)
    assert cosines.min() > 0.99, cosines


def test_auto_is_bf16_only_where_the_cpu_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert _resolve_precision("auto") == "fp32"
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert _resolve_precision("auto") == "bf16"
    assert _resolve_precision("fp32") == "fp32"


def test_precision_comes_from_settings_and_bad_values_are_refused() -> None:
    assert Settings.load().embed_precision == "auto"
    spec = embedder_from_spec("minilm-torch", precision="bf16")
    assert isinstance(spec, SentenceTransformerEmbedder) and spec.precision == "bf16"
    with pytest.raises(InvalidSettings, match="use fp32, bf16 or auto"):
        SentenceTransformerEmbedder.minilm(precision="fp16")
    with pytest.raises(InvalidSettings, match="embed_precision"):
        Settings.load(embed_precision="fp16")
    for bad in (0, -3, 2.5, True):
        with pytest.raises(InvalidSettings, match="embed batch size"):
            SentenceTransformerEmbedder.minilm(batch_size=bad)  # type: ignore[arg-type]
