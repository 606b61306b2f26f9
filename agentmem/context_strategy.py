"""Context strategy: the whole recent history when it fits the budget, else retrieval.

Small histories answer better from full context than from retrieval: nothing relevant can be
missed by a search that ranked it 11th. So ``context()`` first reads the scope's history
(every valid memory of the requested kinds, facts extracted from an included episode left out
as repeats unless their text was corrected since, flushed buffer turns whose segment episode is
included left out as the segment shows them), renders it as the block would, and counts its
tokens with the same tokenizer:

- ``auto`` (default): the whole history when it fits ``context.full_history_share`` of the
  budget left after the profile and the live turns; otherwise retrieval. The threshold is the
  budget itself (share 1.0): the history is used exactly when all of it fits, so the choice
  never drops a memory retrieval would have shown; ``benchmarks/notes.py`` measures evidence
  coverage of both strategies on LoCoMo's first five sessions per conversation.
- ``full_history``: forced; when it does not fit, the newest memories that fit are kept.
- ``retrieval``: forced; hybrid search as before.

Reading stops at ``context.max_history_records`` (+1), newest first: a history longer than
that is never "small", and is not read whole (forced ``full_history`` shows its newest).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from agentmem.backends import Backends
from agentmem.experience.models import Procedure
from agentmem.filters import parse_filters
from agentmem.models import (
    HistoryEntry,
    HistoryEvent,
    MemoryKind,
    MemoryRecord,
    Scope,
    ScopeSet,
)
from agentmem.retrieval import default_conditions
from agentmem.stores import RecordQuery
from agentmem.tokens import TokenCounter


class Strategy(StrEnum):
    """How a context block was assembled."""

    FULL_HISTORY = "full_history"
    RETRIEVAL = "retrieval"


class Choice(BaseModel):
    """The strategy chosen for one ``context()`` call, why, and (full history) the records."""

    strategy: Strategy
    reason: str
    records: list[MemoryRecord] = []
    history_tokens: int | None = None


_EXTRACTION_ACTOR = "semantic:"
"""How the history actor of extraction's writes begins (``agentmem.semantic.decide.Source``)."""


def history(
    records: list[MemoryRecord], corrected: Collection[str] = (), *, keep_turns: bool = False
) -> list[MemoryRecord]:
    """The records a full-history block shows: facts whose source episodes are all shown are
    repeats of them and left out, unless their text was corrected after extraction
    (``corrected``, see :func:`corrected`); flushed buffer turns whose segment episode is shown
    are left out too (the segment holds their words; ``keep_turns`` keeps them, for a block
    that may not fit the segment and shows its turns instead); distilled procedures are left
    to ``context()``, which picks the ones that apply to the task (active, best supported) as
    it does with retrieval, while procedural memories a user wrote are shown like any other
    memory."""
    shown = _episodes(records)
    segments = {r.id: r for r in records if is_segment(r)}
    out = []
    for r in records:
        if r.kind is MemoryKind.PROCEDURAL and Procedure.is_procedure(r):
            continue
        if _repeats(r, shown) and r.id not in corrected:
            continue
        if not keep_turns and shown_by_segment(r, segments):
            continue
        out.append(r)
    return out


def is_segment(record: MemoryRecord) -> bool:
    """Whether ``record`` is the episode of a flushed buffer segment (its whole transcript)."""
    return record.metadata.get("buffer_record") == "segment"


def segment_of(record: MemoryRecord) -> str | None:
    """The id of the segment episode a flushed buffer turn belongs to (``None`` for a record
    that is not such a turn)."""
    if record.metadata.get("buffer_record") != "turn":
        return None
    segment = record.metadata.get("segment_id")
    return segment if isinstance(segment, str) else None


def shown_by_segment(record: MemoryRecord, segments: Mapping[str, MemoryRecord]) -> bool:
    """Whether ``record`` is a flushed turn whose segment is in ``segments`` (by id) and still
    holds its words (not when the turn was edited since, or the segment's transcript was cut
    at ``max_text_chars`` before it)."""
    segment = segments.get(segment_of(record) or "")
    return segment is not None and record.text in segment.text


def corrected(backends: Backends, records: list[MemoryRecord]) -> set[str]:
    """The facts among ``records`` that repeat episodes shown with them but whose text was
    changed since by another writer than extraction (a correction through ``update``): the
    episodes do not say what they say. Reads the history of such facts with more than one
    version only."""
    shown = _episodes(records)
    return {
        r.id
        for r in records
        if r.version > 1 and _repeats(r, shown) and _text_edited(backends.store.history(r.id))
    }


def _episodes(records: list[MemoryRecord]) -> set[str]:
    return {r.id for r in records if r.kind is MemoryKind.EPISODIC}


def _repeats(record: MemoryRecord, shown: set[str]) -> bool:
    sources = record.provenance.get("sources") or []
    return record.kind is MemoryKind.SEMANTIC and bool(sources) and all(s in shown for s in sources)


def _text_edited(entries: list[HistoryEntry]) -> bool:
    return any(
        e.event is HistoryEvent.UPDATE
        and e.new_text is not None
        and e.new_text != e.old_text
        and not e.actor.startswith(_EXTRACTION_ACTOR)
        for e in entries
    )


def choose(
    backends: Backends,
    scope: Scope | ScopeSet,
    *,
    budget: int,
    counter: TokenCounter,
    render: Any,
    kinds: tuple[MemoryKind, ...],
    filters: dict[str, Any] | None,
    as_of: Any,
) -> Choice:
    """Pick the strategy for a block whose memories get ``budget`` tokens (see the module
    docstring). ``render`` is the block renderer (:func:`agentmem.context.render`)."""
    config = backends.settings.context
    if config.strategy == "retrieval":
        return Choice(strategy=Strategy.RETRIEVAL, reason="forced by context.strategy=retrieval")
    cap = config.max_history_records
    records = backends.store.query(
        RecordQuery(
            scope=scope,
            kinds=kinds,
            conditions=parse_filters(filters) + default_conditions(filters),
            as_of=as_of,
            limit=cap + 1,
            newest_first=True,
        )
    )
    if config.strategy == "full_history":
        records = records[:cap]
        fixed = corrected(backends, records)
        # Turns kept: where a segment does not fit what is left, its newest turns stand for it.
        newest = sorted(history(records, fixed, keep_turns=True), key=_when, reverse=True)
        return Choice(
            strategy=Strategy.FULL_HISTORY,
            reason="forced by context.strategy=full_history (newest memories that fit)",
            records=newest,
        )
    if len(records) > cap:
        return Choice(
            strategy=Strategy.RETRIEVAL,
            reason=f"history has over {cap:,} memories (context.max_history_records): retrieval",
        )
    shown = sorted(history(records, corrected(backends, records)), key=_when, reverse=True)
    if not shown:
        return Choice(strategy=Strategy.RETRIEVAL, reason="no history in scope", history_tokens=0)
    tokens = counter.count(render(shown))
    room = int(budget * config.full_history_share)
    if tokens <= room:
        return Choice(
            strategy=Strategy.FULL_HISTORY,
            reason=f"whole history ({len(shown)} memories, {tokens} tokens) fits the "
            f"{room}-token budget",
            records=shown,
            history_tokens=tokens,
        )
    return Choice(
        strategy=Strategy.RETRIEVAL,
        reason=f"whole history ({len(shown)} memories, {tokens} tokens) is over the "
        f"{room}-token budget: retrieval",
        history_tokens=tokens,
    )


def _when(record: MemoryRecord) -> tuple[float, float]:
    return ((record.event_time or record.created_at).timestamp(), record.created_at.timestamp())


__all__ = [
    "Choice",
    "Strategy",
    "choose",
    "corrected",
    "history",
    "is_segment",
    "segment_of",
    "shown_by_segment",
]
