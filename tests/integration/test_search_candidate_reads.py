"""What one search reads of the record store (issue 24): the candidates' rank fields, their
utility rows and the likely hits' whole records come in one read
(:meth:`~agentmem.stores.RecordStore.read_candidates`, one statement on PostgreSQL), and the
hits are exactly those of the separate reads search made before (rank fields, then utility
rows, then the hits). test_search_reads.py checks the rank fields against whole records."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentmem import Memory, Settings
from agentmem.embedders import Embedder
from agentmem.models import ChannelScore, Scope, ScopeSet
from agentmem.retrieval import NEWEST
from agentmem.stores import RecordStore
from agentmem.stores.base import CandidateRows

DEMO = Path(__file__).resolve().parents[2] / "examples" / "data" / "conversation.json"
QUESTIONS = [
    "Where does Maya live now?",
    "Where does Maya live?",
    "Where did Maya live?",
    "Where was Maya living in March 2024?",
    "What does Maya do at work?",
    "who has a dog",
    "what happened last week?",
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def demo(request: pytest.FixtureRequest, tmp_path: Path, embedder: Embedder) -> Iterator[Memory]:
    """The demo conversation on each record store, some of it rewarded by feedback."""
    url = None if request.param == "sqlite" else request.getfixturevalue("pg_url")
    settings = Settings.load(home=tmp_path / "home", store_url=url, adapters="off")
    with Memory(settings=settings, embedder=embedder) as mem:
        for session in json.loads(DEMO.read_text())["sessions"]:
            turns = [
                {
                    "text": f"{turn['speaker']}: {turn['text']}",
                    "event_time": session["date"],
                    "metadata": {"session": session["session"], "speaker": turn["speaker"]},
                }
                for turn in session["turns"]
            ]
            mem.add_many(turns, user_id="maya")
        hits = mem.search("Where does Maya live?", k=4, user_id="maya")
        mem.feedback([hits[2].record.id], 1.0, user_id="maya")
        mem.feedback([hits[0].record.id], -1.0, user_id="maya")
        yield mem


RECALLS = {"access_count", "last_accessed_at"}
"""What a search itself changes on the records it finds (counted in the background)."""


def _hits(mem: Memory) -> list[list[tuple[Any, ...]]]:
    return [
        [
            (h.record.model_dump(exclude=RECALLS), h.score, _channels(h.channels))
            for h in mem.search(q, k=5, user_id="maya")
        ]
        for q in QUESTIONS
    ]


def _channels(channels: dict[str, ChannelScore]) -> dict[str, tuple[int, float | None]]:
    # The newest ranking scores by age at the time of the search: its rank alone compares.
    return {n: (c.rank, None if n == NEWEST else c.score) for n, c in channels.items()}


def test_hits_are_those_of_the_separate_reads(
    demo: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    together = _hits(demo)
    store = demo.backends.store

    def fields_only(
        ids: list[str], scope: Scope | ScopeSet, session_key: str | None = None, **_: Any
    ) -> CandidateRows:
        # What search read before: the rank fields alone; utility rows and hits apart.
        return CandidateRows(RecordStore.rank_fields(store, ids, scope, session_key), [], None)

    monkeypatch.setattr(store, "read_candidates", fields_only)
    assert _hits(demo) == together
    assert any("utility" in channels for hits in together for _, _, channels in hits)
    assert any("supersedes" in channels for hits in together for _, _, channels in hits)


@pytest.mark.postgres
def test_search_reads_the_store_once_on_postgresql(
    pg_url: str, tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    settings = Settings.load(home=tmp_path / "home", store_url=pg_url, adapters="off")
    settings.graph.enabled = False  # its partitions are another table
    with Memory(settings=settings, embedder=embedder) as mem:
        mem.add_many(
            [f"Maya note {n}: she likes tea number {n}" for n in range(30)], user_id="maya"
        )
        hits = mem.search("what tea does Maya like", k=5, user_id="maya")
        # Rewarded, the first hit stays first: the hits are the fused first five, the ones
        # read with the candidates (a hit from further down would cost one more read).
        mem.feedback([hits[0].record.id], 1.0, user_id="maya")
        statements: list[str] = []
        searching = threading.get_ident()
        execute = psycopg.Cursor.execute

        def counted(cur: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() == searching:  # not the recall log's flushes
                statements.append(str(query))
            return execute(cur, query, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, "execute", counted)
        for question in ("what tea does Maya like", "which tea is Maya's favourite"):
            statements.clear()
            found = mem.search(question, k=5, user_id="maya")
            assert len(found) == 5
            assert "utility" in found[0].channels or question != "what tea does Maya like"
            reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
            assert len(reads) == 1, reads
