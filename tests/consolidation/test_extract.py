"""The extract stage's batched engine decides exactly as one episode at a time does, embeds in
few model calls, and keeps an extraction error on its own episode."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from agentmem import Memory, Scope, Settings
from agentmem.embedders import Embedder
from agentmem.errors import ExtractionFailed
from agentmem.semantic import extract_pending
from agentmem.semantic.episodes import Episode
from agentmem.semantic.rules import RulesExtractor
from agentmem.semantic.schema import ExtractedFact
from agentmem_consolidation.extract import extract_scope

ALICE = Scope.of(user_id="alice")
LINES = [
    "Alice: I moved to Lisbon last year and I adopted a cat named Tom.",
    "Alice: My sister Jane works as a teacher in Rome.",
    "Alice: I moved to Berlin in March. Tom hates the cold.",
    "Alice: Jane visited me in Berlin. She loves the museums.",
    "Alice: I started learning the cello.",
]


class CountingEmbedder(Embedder):
    """The session's embedder, counting model calls."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls = 0

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)


def _fill(home: Path, embedder: Embedder) -> None:
    with Memory(settings=Settings.load(home=home), embedder=embedder) as mem:
        for i, line in enumerate(LINES):
            mem.add(line, user_id="alice", thread_id=f"t{i % 2}", infer="deferred")


def _contents(mem: Memory) -> Counter[tuple[str, str, str, bool, int]]:
    records = mem.list(user_id="alice", kinds=["episodic", "semantic"], limit=1000)
    return Counter(
        (r.kind.value, r.text, str(r.metadata.get("extraction")), r.valid_to is None, r.version)
        for r in records
    )


def test_batched_extraction_decides_as_one_at_a_time(tmp_path: Path, embedder: Embedder) -> None:
    one, batched = tmp_path / "one", tmp_path / "batched"
    for home in (one, batched):
        _fill(home, embedder)
    counting = CountingEmbedder(embedder)
    with Memory(settings=Settings.load(home=one), embedder=counting) as mem:
        counting.calls = 0
        expected = [(o.status, [d.op for d in o.decisions]) for o in extract_pending(mem, ALICE)]
        one_at_a_time = counting.calls
        want = _contents(mem)
    with Memory(settings=Settings.load(home=batched), embedder=counting) as mem:
        counting.calls = 0
        outcomes = extract_scope(mem.backends, ALICE, chunk=3)  # two chunks
        assert [(o.status, [d.op for d in o.decisions]) for o in outcomes] == expected
        assert _contents(mem) == want
        batched_calls = counting.calls
        assert extract_scope(mem.backends, ALICE) == []  # nothing pending: nothing done
    assert any(kind == "semantic" for kind, *_ in want)
    # Fact texts and entity names: one model call per chunk instead of one per episode.
    assert batched_calls <= one_at_a_time - len(LINES) + 2


class FailsOnCello(RulesExtractor):
    """The rules extractor, failing on one episode as an LLM extractor can."""

    def extract(self, episode: Episode) -> list[ExtractedFact]:
        if "cello" in episode.text:
            raise ExtractionFailed("the model answered with something that is not JSON")
        return super().extract(episode)


def test_an_extraction_error_stays_with_its_episode(mem: Memory) -> None:
    for i, line in enumerate(LINES):
        mem.add(line, user_id="alice", thread_id=f"t{i % 2}", infer="deferred")
    outcomes = extract_scope(mem.backends, ALICE, extractor=FailsOnCello())
    assert [o.status for o in outcomes] == ["done"] * 4 + ["pending"]
    failed = mem.get(outcomes[-1].episode_id)
    assert failed.metadata["extraction"] == "pending"
    assert "not JSON" in failed.metadata["extraction_error"]
    assert failed.metadata["extraction_attempts"] == 1
