"""What the indexes see of a record: its text (dated), and its conversational window.

An episode is indexed with its event date in front ("[8 May 2023] Caroline: ...") so that
questions about when something happened can match the date, and, in a second pair of spaces,
together with the episodes around it in the same conversation (``window_turns`` on each side),
so that a turn that only makes sense in context ("Yes, last Tuesday!") is found by the question
its neighbours answer.

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
        return f"[{event_time.day} {event_time:%B} {event_time.year:04d}] {text}"
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
    before: Sequence[MemoryRecord],
    after: Sequence[MemoryRecord],
    settings: RetrievalSettings,
) -> str:
    """The record with its neighbours: the turns before it (oldest first), the record (dated),
    the turns after it."""
    parts = [r.text for r in before]
    parts.append(indexed_text(record, settings))
    parts.extend(r.text for r in after)
    return "\n".join(parts)


def neighbours_of(
    store: RecordStore, episodes: Sequence[MemoryRecord], settings: RetrievalSettings
) -> list[tuple[list[MemoryRecord], list[MemoryRecord]]]:
    """Up to ``settings.window_turns`` episodes before (oldest first) and after each episode
    in its conversation: one batched store call per step outwards."""
    groups = [group_condition(r, settings) for r in episodes]
    out: list[tuple[list[MemoryRecord], list[MemoryRecord]]] = [([], []) for _ in episodes]
    # The outermost neighbour found so far on each side (the episode itself at first, when one
    # store query answers both sides); None once a side has reached its conversation's end.
    edges: list[tuple[MemoryRecord | None, MemoryRecord | None]] = [(r, r) for r in episodes]
    for _ in range(settings.window_turns):
        queries = [
            (edge, groups[i])
            for i, (first, last) in enumerate(edges)
            for edge in ((first,) if first is last else (first, last))
            if edge is not None
        ]
        if not queries:
            break
        found = iter(store.adjacent_many(queries))
        stepped: list[tuple[MemoryRecord | None, MemoryRecord | None]] = []
        for (before, after), (first, last) in zip(out, edges, strict=True):
            if first is not None and first is last:
                prev, nxt = next(found)
            else:
                prev = next(found)[0] if first is not None else None
                nxt = next(found)[1] if last is not None else None
            if prev is not None:
                before.insert(0, prev)
            if nxt is not None:
                after.append(nxt)
            stepped.append((prev, nxt))
        edges = stepped
    return out


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
    for r, (before, after) in zip(episodes, neighbours_of(store, episodes, settings), strict=True):
        own = indexed_text(r, settings)
        neighbours = tuple(indexed_text(n, settings) for n in (*before, *after))
        out[r.id] = Window(window_text(r, before, after, settings), (own, *neighbours))
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
    removed: the ``window_turns`` neighbours on each side, minus ``exclude``."""
    if not settings.windows:
        return []
    episodes = [r for r in records if in_conversation(r, settings)]
    found = neighbours_of(store, episodes, settings)
    ids = [n.id for before, after in found for n in (*before, *after) if n.id not in exclude]
    return list(dict.fromkeys(ids))


__all__ = [
    "Window",
    "group_condition",
    "in_conversation",
    "indexed_text",
    "neighbours_of",
    "neighbours_to_refresh",
    "note_text",
    "window_parts",
    "window_text",
    "window_vector",
    "windows_for",
]
