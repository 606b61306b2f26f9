"""Context assembly: a prompt-ready block of memories that never exceeds a token budget.

Relevant memories are gathered by hybrid search, near-duplicates are dropped (same content
hash, or cosine similarity of their vectors at or above a threshold), and the most relevant
are kept while the rendered block, counted with a real tokenizer, fits ``max_tokens``. The
block is grouped by kind (facts, procedures, experiences, then a dated timeline of episodes).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field

from agentmem.models import MemoryKind, MemoryRecord, SearchHit
from agentmem.tokens import TokenCounter

SECTION_TITLES: dict[MemoryKind, str] = {
    MemoryKind.SEMANTIC: "Facts",
    MemoryKind.PROCEDURAL: "Procedures",
    MemoryKind.EXPERIENCE: "Past experiences",
    MemoryKind.EPISODIC: "Timeline",
}


class Context(BaseModel):
    """What :meth:`Memory.context` returns: the text block, the records in it, its size."""

    query: str
    text: str
    records: list[MemoryRecord] = Field(default_factory=list)
    tokens: int
    max_tokens: int
    dropped_duplicates: int = 0
    dropped_for_budget: int = 0


def _line(record: MemoryRecord) -> str:
    when = record.event_time or record.valid_from
    date = f"[{when:%Y-%m-%d}] " if when is not None else ""
    return f"- {date}{' '.join(record.text.split())}"


def render(records: Sequence[MemoryRecord]) -> str:
    """The block for these records: sections by kind; the timeline in event-time order."""
    parts: list[str] = []
    for kind, title in SECTION_TITLES.items():
        members = [r for r in records if r.kind is kind]
        if not members:
            continue
        if kind is MemoryKind.EPISODIC:
            members.sort(key=lambda r: ((r.event_time or r.created_at).timestamp(), r.created_at))
        parts.append(f"## {title}\n" + "\n".join(_line(r) for r in members))
    return "\n\n".join(parts)


def drop_near_duplicates(
    hits: Sequence[SearchHit], vectors: dict[str, np.ndarray], threshold: float
) -> tuple[list[SearchHit], int]:
    """Keep the first (most relevant) of each group of near-identical memories."""
    kept: list[SearchHit] = []
    kept_vectors: list[np.ndarray] = []
    seen_hashes: set[str] = set()
    dropped = 0
    for hit in hits:
        h = hit.record.content_hash
        v = vectors.get(h)
        if h in seen_hashes or (
            v is not None and any(float(np.dot(v, u)) >= threshold for u in kept_vectors)
        ):
            dropped += 1
            continue
        seen_hashes.add(h)
        if v is not None:
            kept_vectors.append(v)
        kept.append(hit)
    return kept, dropped


def assemble(
    query: str,
    hits: Sequence[SearchHit],
    *,
    max_tokens: int,
    counter: TokenCounter,
    vectors: dict[str, np.ndarray],
    duplicate_threshold: float = 0.95,
) -> Context:
    """Fit the most relevant, non-duplicate memories into ``max_tokens``."""
    unique, dropped_dupes = drop_near_duplicates(hits, vectors, duplicate_threshold)
    chosen: list[MemoryRecord] = []
    text = ""
    skipped = 0
    for hit in unique:
        candidate = render([*chosen, hit.record])
        if counter.count(candidate) <= max_tokens:
            chosen.append(hit.record)
            text = candidate
            continue
        # The memory alone may be too long for what is left: keep a truncated copy if any of
        # it fits, so one long memory does not starve the block.
        if not chosen:
            truncated = _truncate_to_fit(hit.record, max_tokens, counter)
            if truncated is not None:
                chosen.append(truncated)
                text = render(chosen)
                continue
        skipped += 1
    tokens = counter.count(text) if text else 0
    assert tokens <= max_tokens, "context assembly must never exceed its budget"
    return Context(
        query=query,
        text=text,
        records=chosen,
        tokens=tokens,
        max_tokens=max_tokens,
        dropped_duplicates=dropped_dupes,
        dropped_for_budget=skipped,
    )


def _truncate_to_fit(
    record: MemoryRecord, max_tokens: int, counter: TokenCounter
) -> MemoryRecord | None:
    overhead = counter.count(render([record.model_copy(update={"text": "x"})]))
    room = max_tokens - overhead
    if room <= 0:
        return None
    text = counter.truncate(record.text, room)
    while text:
        candidate = record.model_copy(update={"text": text + "…"})
        if counter.count(render([candidate])) <= max_tokens:
            return candidate
        text = text[: max(len(text) - 8, 0)]
    return None


__all__ = ["Context", "assemble", "drop_near_duplicates", "render"]
