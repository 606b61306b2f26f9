"""Search reads whole records only for its hits: the ranking is the one whole-record reads of
every candidate give (ids, scores, channels and records), with and without the re-ranking
channels that read candidate fields (recency, importance), time windows and filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from agentmem import Memory, retrieval
from agentmem.embedders import Embedder
from agentmem.models import Scope, SearchHit
from agentmem.stores import RecordStore
from tests.conftest import MEMORY_BACKENDS, memory_settings

T0 = datetime(2023, 5, 8, 12, tzinfo=UTC)
QUERIES = [
    "what did Alice say about the trip to Lisbon?",
    "coffee on 8 May 2023",
    "what happened last week",
    "dog named Rex #17 ?",
    "2023-05-01 deadline",
    "painting",
]
WEIGHTS = [
    {},
    {"recency": 0.5, "importance": 0.5},
]


@pytest.fixture(params=MEMORY_BACKENDS)
def backend(request: pytest.FixtureRequest) -> pytest.FixtureRequest:
    return request


def _memory(
    backend: pytest.FixtureRequest, home: Path, embedder: Embedder, **weights: float
) -> Memory:
    settings = memory_settings(backend, home)
    merged = {**settings.retrieval.weights, **weights}
    settings = settings.model_copy(
        update={"retrieval": settings.retrieval.model_copy(update={"weights": merged})}
    )
    return Memory(settings=settings, embedder=embedder)


def _fill(mem: Memory) -> None:
    topics = ["trip to Lisbon", "coffee", "dog named Rex", "deadline", "painting", "chess"]
    items: list[dict[str, Any]] = [
        {
            "text": f"{who} talked about the {topics[n % len(topics)]} ({n})",
            "event_time": T0 - timedelta(days=n),
            "metadata": {"session": f"s{n // 8}", "n": n},
            "importance": (n % 7) / 7,
        }
        for n, who in enumerate(["Alice", "Bob", "Carol"] * 40)
    ]
    mem.add_many(items, user_id="u")
    mem.add_many(items[:20], user_id="other")


def _search(mem: Memory, query: str, **kwargs: Any) -> list[SearchHit]:
    return retrieval.search(
        mem.backends,
        query,
        Scope(user_id="u"),
        k=10,
        reference_time=T0,
        remember=False,
        count_recall=False,
        **kwargs,
    )


def _key(hits: list[SearchHit]) -> list[tuple[Any, ...]]:
    # Recency's score decays with the clock between the two searches: its rank is compared.
    def channels(hit: SearchHit) -> dict[str, Any]:
        return {n: c.rank if n == "recency" else c for n, c in hit.channels.items()}

    return [(h.record.id, h.score, channels(h), h.record.model_dump()) for h in hits]


@pytest.mark.parametrize("weights", WEIGHTS, ids=["defaults", "recency+importance"])
def test_ranking_is_that_of_whole_candidate_records(
    backend: pytest.FixtureRequest, home: Path, embedder: Embedder, weights: dict[str, float]
) -> None:
    with _memory(backend, home, embedder, **weights) as mem:
        _fill(mem)
        store = mem.backends.store
        for query in QUERIES:
            for kwargs in ({}, {"filters": {"n": {"$lt": 60}}}):
                fast = _search(mem, query, **kwargs)
                # The reference: every candidate read whole, as search read them before (the
                # default read_candidates reads through the rank_fields replaced here).
                store.rank_fields = lambda ids, scope=None, key=None: RecordStore.rank_fields(  # type: ignore[method-assign]
                    store, ids, scope, key
                )
                store.read_candidates = partial(RecordStore.read_candidates, store)  # type: ignore[method-assign]
                try:
                    reference = _search(mem, query, **kwargs)
                finally:
                    del store.rank_fields, store.read_candidates
                assert fast, query
                assert _key(fast) == _key(reference), query
                assert all(h.record.scope == Scope(user_id="u") for h in fast)
