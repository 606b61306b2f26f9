"""The extract stage's engine: the same decisions as :func:`agentmem.semantic.extract_pending`,
with the embedding work batched across episodes.

Deciding a fact needs its embedding (to find the known facts it could be about), and writing it
needs the embeddings of the entity names the knowledge graph resolves. Done one episode at a
time that is one small model call per episode (and per batch of new names): on a busy CPU the
call overhead, not the arithmetic, dominates. Here the pending episodes are taken in chunks:
each chunk's facts are extracted first, every fact text and entity name of the chunk is
embedded in one call into the store's embedding cache, and then the episodes are decided and
written one by one, oldest first, exactly as before (each reads the cache).

Crash safety and idempotence are :func:`agentmem.semantic.extract_episode`'s: an episode is
marked ``done`` after its facts are written; the cache holds only derived vectors.
"""

from __future__ import annotations

from collections.abc import Sequence

from agentmem.backends import Backends
from agentmem.indexing import vectors_for_texts
from agentmem.models import MemoryKind, MemoryRecord, Scope
from agentmem.semantic.decide import fact_metadata
from agentmem.semantic.episodes import Episode, episode_from
from agentmem.semantic.extractor import (
    Decider,
    Extractor,
    extract_episode,
    pending_episodes,
    pipeline_for,
)
from agentmem.semantic.schema import ExtractedFact, ExtractionOutcome
from agentmem.stores import WriteBatch

CHUNK = 64
"""Episodes whose facts are embedded together."""


class PreparedExtractor:
    """An extractor whose answers for some episodes were computed ahead (by :meth:`prepare`);
    each prepared answer is handed out once, in place of a second extraction. An episode that
    was not prepared is extracted by the wrapped extractor as usual."""

    def __init__(self, inner: Extractor) -> None:
        self.inner = inner
        self.name = inner.name
        self.version = inner.version
        self._ready: dict[str, list[ExtractedFact] | Exception] = {}

    def prepare(self, episodes: Sequence[Episode], max_facts: int) -> list[ExtractedFact]:
        """Extract the facts of ``episodes`` now; returns them all (at most ``max_facts`` per
        episode, as the pipeline keeps). An extraction error is kept and raised when the
        episode's turn comes, so its handling is unchanged."""
        facts: list[ExtractedFact] = []
        for episode in episodes:
            if episode.id is None:
                continue
            try:
                found = self.inner.extract(episode)
            except Exception as exc:  # re-raised by extract(), in order
                self._ready[episode.id] = exc
                continue
            self._ready[episode.id] = found
            facts.extend(found[:max_facts])
        return facts

    def extract(self, episode: Episode) -> list[ExtractedFact]:
        """The prepared facts of ``episode`` (once), else a fresh extraction."""
        found = self._ready.pop(episode.id, None) if episode.id is not None else None
        if found is None:
            return self.inner.extract(episode)
        if isinstance(found, Exception):
            raise found
        return found


def entity_names(backends: Backends, scope: Scope, facts: Sequence[ExtractedFact]) -> list[str]:
    """The entity names the knowledge graph will embed when these facts are written (empty
    without a graph or with name matching by embedding off)."""
    settings = backends.settings.graph
    if backends.graph is None or not settings.enabled or settings.embedding_threshold is None:
        return []
    # Imported here, as agentmem.indexing does: agentmem.graph imports agentmem.semantic.
    from agentmem.graph.fact_reading import read_fact

    names: list[str] = []
    for fact in facts:
        record = MemoryRecord(
            scope=scope, kind=MemoryKind.SEMANTIC, text=fact.text, metadata=fact_metadata(fact)
        )
        names.extend(m.name for m in read_fact(record).mentions)
    return names


def warm_cache(backends: Backends, texts: Sequence[str]) -> int:
    """Embed the ``texts`` missing from the store's embedding cache, in one call, and cache
    them (one write). Returns how many were embedded."""
    _, fresh = vectors_for_texts(backends, list(dict.fromkeys(t for t in texts if t)))
    if fresh:
        backends.store.apply(
            WriteBatch(embeddings=[(backends.embedder.name, h, v) for h, v in fresh])
        )
    return len(fresh)


def extract_scope(
    backends: Backends,
    scope: Scope,
    *,
    extractor: Extractor | None = None,
    decider: Decider | None = None,
    chunk: int = CHUNK,
) -> list[ExtractionOutcome]:
    """Extract facts from every episode of ``scope`` waiting for it, oldest first (see the
    module docstring). Same outcomes as :func:`agentmem.semantic.extract_pending`."""
    default_extractor, default_decider = pipeline_for(backends.settings)
    prepared = PreparedExtractor(extractor or default_extractor)
    decider = decider or default_decider
    max_facts = backends.settings.semantic.max_facts_per_episode
    outcomes: list[ExtractionOutcome] = []
    pending = pending_episodes(backends, scope)
    for start in range(0, len(pending), chunk):
        records = pending[start : start + chunk]
        facts = prepared.prepare([episode_from(r) for r in records], max_facts)
        warm_cache(backends, [*(f.text for f in facts), *entity_names(backends, scope, facts)])
        for record in records:
            _, outcome = extract_episode(backends, record, extractor=prepared, decider=decider)
            outcomes.append(outcome)
    return outcomes


__all__ = ["CHUNK", "PreparedExtractor", "entity_names", "extract_scope", "warm_cache"]
