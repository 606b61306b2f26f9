"""An embedder whose vectors do not fit the index is refused before anything is written."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from agentmem import EmbedderMismatch, Memory, Settings
from agentmem.embedders import Embedder, normalise


class _Random(Embedder):
    """Random unit vectors of ``returns`` dimensions, declaring ``declares``."""

    def __init__(self, declares: int, returns: int | None = None) -> None:
        self.name = f"random-{declares}"
        self._declares = declares
        self._returns = returns or declares
        self._rng = np.random.default_rng(0)

    @property
    def dim(self) -> int:
        return self._declares

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return normalise(self._rng.random((len(texts), self._returns)))


def test_vectors_of_another_size_than_declared_write_nothing(home: Path) -> None:
    with Memory(settings=Settings.load(home=home), embedder=_Random(384)) as mem:
        mem.add("kept", user_id="u")
    with Memory(settings=Settings.load(home=home), embedder=_Random(384, returns=768)) as mem:
        with pytest.raises(EmbedderMismatch, match=r"shape \(1, 768\).*declares 384.*nothing"):
            mem.add("refused", user_id="u")
        with pytest.raises(EmbedderMismatch):
            mem.add_many([{"text": "a"}, {"text": "b"}], user_id="u")
        with pytest.raises(EmbedderMismatch):
            mem.search("kept", user_id="u")
        stats = mem.stats()
        assert stats.records == 1 and stats.pending_index == 0 and stats.history_entries == 1


def test_an_index_built_by_another_embedder_is_refused_at_open(home: Path) -> None:
    with Memory(settings=Settings.load(home=home), embedder=_Random(384)) as mem:
        mem.add("kept", user_id="u")
    with pytest.raises(EmbedderMismatch, match="another size than this embedder's 768"):
        Memory(settings=Settings.load(home=home), embedder=_Random(768))
    with Memory(settings=Settings.load(home=home), embedder=_Random(384)) as mem:
        assert [h.record.text for h in mem.search("kept", user_id="u")] == ["kept"]
