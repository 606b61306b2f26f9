"""What the indexes see of a record: its text (dated), and its conversational window.

An episode is indexed with its event date in front ("[8 May 2023] Caroline: ...") so that
questions about when something happened can match the date, and, in a second pair of spaces,
together with the episodes just before and after it in the same conversation, so that a turn
that only makes sense in context ("Yes, last Tuesday!") is found by the question its neighbours
answer.

Windows belong to conversations: an episode has neighbours only when it is part of an explicit
conversation: it names its session (the ``session`` metadata key,
:attr:`RetrievalSettings.window_group_key`; turns flushed from a buffer carry their thread
there), or it was written to a thread scope (``thread_id``). A memory added on its own (a
fact, a note, a preference) has no window: two unrelated ``add`` calls are never neighbours,
so they never share a window and never tie in the window channels; it is left out of them,
and its own text and vector decide. Other kinds of memory are indexed as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from agentmem.filters import Condition, FilterOp
from agentmem.models import MemoryKind, MemoryRecord
from agentmem.settings import RetrievalSettings
from agentmem.stores import RecordStore


def indexed_text(record: MemoryRecord, settings: RetrievalSettings) -> str:
    """The text embedded and BM25-indexed for the record itself."""
    if record.kind is MemoryKind.EPISODIC:
        return dated_text(record.text, record.event_time, settings)
    return record.text


def dated_text(text: str, event_time: datetime | None, settings: RetrievalSettings) -> str:
    """An episode's text as indexed: its event date in front (``date_prefix``), if it has one."""
    if settings.date_prefix and event_time:
        return f"[{event_time:%-d %B %Y}] {text}"
    return text


def note_text(record: MemoryRecord, settings: RetrievalSettings) -> str:
    """A note's window text: its own text, then the one-line context and keywords linked notes
    gave it (:mod:`agentmem.notes`) once evolution changed them (``metadata["evolved"]``), so
    evolution changes what the window channels match; other notes cost no second embedding."""
    base = indexed_text(record, settings)
    if not record.metadata.get("evolved"):
        return base
    context = record.metadata.get("context")
    keywords = record.metadata.get("keywords")
    extra = [context] if isinstance(context, str) and context else []
    if isinstance(keywords, list) and keywords:
        extra.append(" ".join(str(k) for k in keywords))
    return "\n".join([base, *extra])


def group_condition(record: MemoryRecord, settings: RetrievalSettings) -> Condition | None:
    """The metadata condition that puts a record in its session, if it names one."""
    value = record.metadata.get(settings.window_group_key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return Condition(settings.window_group_key, FilterOp.EQ, value)


def in_conversation(record: MemoryRecord, settings: RetrievalSettings) -> bool:
    """Whether an episode belongs to an explicit conversation, so that its neighbours in it
    are context: it names its session (``window_group_key``), or it was written to a thread
    scope (its neighbours are then the thread's other episodes)."""
    if record.kind is not MemoryKind.EPISODIC:
        return False
    return group_condition(record, settings) is not None or record.scope.thread_id is not None


def window_text(
    record: MemoryRecord,
    prev: MemoryRecord | None,
    nxt: MemoryRecord | None,
    settings: RetrievalSettings,
) -> str:
    """The record with its neighbours: previous turn, the record (dated), next turn."""
    parts = [prev.text] if prev is not None else []
    parts.append(indexed_text(record, settings))
    if nxt is not None:
        parts.append(nxt.text)
    return "\n".join(parts)


@dataclass(frozen=True)
class Window:
    """A record's window: its text for BM25, and what its vector is made of. An episode's
    window vector is the mean of its own vector and its neighbours' (no model call: they are
    in the embedding cache); a note's is the embedding of ``text`` (``parts`` is empty)."""

    text: str
    parts: tuple[str, ...] = ()
    """Indexed texts whose vectors are averaged, the record's own first."""


def window_vector(
    own: np.ndarray, neighbours: Sequence[np.ndarray], self_weight: float
) -> np.ndarray:
    """The unit-length mean of a record's vector (weighted ``self_weight``) and its
    neighbours' vectors: the window's meaning, built from vectors already computed."""
    total = own * self_weight
    for vector in neighbours:
        total = total + vector
    norm = float(np.linalg.norm(total))
    return (total / norm).astype(np.float32) if norm > 0 else own


def window_parts(
    store: RecordStore, records: Sequence[MemoryRecord], settings: RetrievalSettings
) -> dict[str, Window]:
    """The window of each record that has one (see :func:`windows_for`)."""
    out: dict[str, Window] = {}
    episodes = []
    for r in records:
        if r.kind is not MemoryKind.EPISODIC:
            out[r.id] = Window(note_text(r, settings))
        elif in_conversation(r, settings):
            episodes.append(r)
    found = store.adjacent_many([(r, group_condition(r, settings)) for r in episodes])
    for r, (prev, nxt) in zip(episodes, found, strict=True):
        own = indexed_text(r, settings)
        neighbours = tuple(indexed_text(n, settings) for n in (prev, nxt) if n is not None)
        out[r.id] = Window(window_text(r, prev, nxt, settings), (own, *neighbours))
    return {r.id: out[r.id] for r in records if r.id in out}  # in the records' order


def windows_for(
    store: RecordStore, records: Sequence[MemoryRecord], settings: RetrievalSettings
) -> dict[str, str]:
    """The window text of each record that has one: an episode of a conversation with its
    neighbours in it; other kinds as :func:`note_text`. An episode outside any conversation
    has none: the window channels step aside for it (a window of one adds no context, and
    indexing its own text twice would only double the weight of its own channels)."""
    return {i: w.text for i, w in window_parts(store, records, settings).items()}


def neighbours_to_refresh(
    store: RecordStore,
    records: Sequence[MemoryRecord],
    settings: RetrievalSettings,
    *,
    exclude: set[str],
) -> list[str]:
    """Ids of stored episodes whose window changes when ``records`` are added, changed or
    removed: their previous and next neighbours, minus ``exclude``."""
    if not settings.windows:
        return []
    episodes = [r for r in records if in_conversation(r, settings)]
    found = store.adjacent_many([(r, group_condition(r, settings)) for r in episodes])
    ids = [n.id for pair in found for n in pair if n is not None and n.id not in exclude]
    return list(dict.fromkeys(ids))


__all__ = [
    "Window",
    "group_condition",
    "in_conversation",
    "indexed_text",
    "neighbours_to_refresh",
    "note_text",
    "window_parts",
    "window_text",
    "window_vector",
    "windows_for",
]
