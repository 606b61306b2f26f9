"""Fixtures of the gpu tests (skipped as a whole when the gpu extra is not installed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("peft", reason="the gpu extra is not installed: pip install 'agentmem[gpu]'")

import torch

from tests.gpu._tiny import TINY_NAME, TinyEmbedder, build_tiny_model


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer, 32-d BERT with the MiniLM tokenizer, saved to disk."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / TINY_NAME)


@pytest.fixture(scope="module")
def tiny_embedder(tiny_dir: Path) -> TinyEmbedder:
    return TinyEmbedder(tiny_dir)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """The tiny model trains fastest on one thread (and does not fight other processes)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
