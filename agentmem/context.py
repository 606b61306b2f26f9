"""Context assembly: a prompt-ready block of memories that never exceeds a token budget.

Relevant memories are gathered by hybrid search, near-duplicates are dropped (same content
hash, or cosine similarity of their vectors at or above a threshold with the same numbers in
their texts), and the most relevant
are kept while the rendered block, counted with a real tokenizer, fits ``max_tokens``. The
block is grouped by kind (facts, procedures, experiences, then a dated timeline of episodes).

With a live thread buffer, the block starts with the conversation's most recent turns (at most
``Settings.buffer.context_share`` of the budget); long-term memories fill what is left.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, Field

from agentmem import context_strategy, indexing, retrieval, usefulness
from agentmem.backends import Backends
from agentmem.buffers.base import Turn, render_turns
from agentmem.errors import PermissionDenied, ValidationError
from agentmem.experience.api import with_procedures
from agentmem.experience.models import outcome_note
from agentmem.models import (
    MemoryKind,
    MemoryRecord,
    Scope,
    ScopeSet,
    SearchHit,
    content_hash,
    utcnow,
)
from agentmem.representation import indexed_text
from agentmem.stores import NoteStore
from agentmem.tokens import TokenCounter
from agentmem.validation import check_k, check_kinds, check_text, check_time


class LiveBuffer(Protocol):
    """What context assembly reads of a live thread buffer
    (:class:`~agentmem.buffers.ThreadBuffer` is one)."""

    scope: Scope
    """The thread whose turns it holds (its turns are flushed into this scope)."""

    def window(self, max_tokens: int | None = None) -> list[Turn]:
        """The most recent turns that fit ``max_tokens``, oldest first."""
        ...


SECTION_TITLES: dict[MemoryKind, str] = {
    MemoryKind.SEMANTIC: "Facts",
    MemoryKind.PROCEDURAL: "Procedures",
    MemoryKind.EXPERIENCE: "Past experiences",
    MemoryKind.EPISODIC: "Timeline",
}
CONVERSATION_TITLE = "Conversation"
"""Section of the live buffer's turns, first in the block."""


class Context(BaseModel):
    """What :meth:`Memory.context` returns: the text block, the records in it, its size."""

    query: str
    text: str
    records: list[MemoryRecord] = Field(default_factory=list)
    tokens: int
    max_tokens: int
    dropped_duplicates: int = 0
    dropped_for_budget: int = 0
    turns: list[Turn] = Field(default_factory=list)
    """The live buffer's turns at the top of ``text`` (empty without a buffer)."""
    retrieval_id: str | None = None
    """The retrieval recording exactly the memories in ``text``: pass it to
    ``Memory.feedback`` to credit them with a task's outcome."""
    strategy: str = "retrieval"
    """``"full_history"`` (the whole recent history fitted the budget) or ``"retrieval"``
    (see :mod:`agentmem.context_strategy`)."""
    strategy_reason: str = ""
    """Why that strategy was chosen (sizes, or the setting that forced it)."""
    profile: str = ""
    """The profile section at the top of ``text`` (empty when the scope has none)."""


def _line(record: MemoryRecord) -> str:
    when = record.event_time or record.valid_from
    if when is None and record.kind is MemoryKind.EPISODIC:
        when = record.created_at  # every timeline line has its date: when it was recorded
    # "0090-06-01": strftime's %Y pads a year before 1000 only on some C libraries
    date = f"[{when.date().isoformat()}] " if when is not None else ""
    note = outcome_note(record) if record.kind is MemoryKind.EXPERIENCE else ""
    return f"- {date}{' '.join(record.text.split())}{note}"


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
    """Keep the first (most relevant) of each group of near-identical memories: the same
    content, or a cosine at or above ``threshold`` with the same numbers in the text. (A
    flushed buffer turn and its segment episode are weighed against the budget, in
    :func:`assemble`.)"""
    kept: list[SearchHit] = []
    kept_vectors: list[tuple[np.ndarray, list[str]]] = []
    seen_hashes: set[str] = set()
    dropped = 0
    for hit in hits:
        h = hit.record.content_hash
        v = vectors.get(h)
        numbers = _numbers(hit.record.text)
        if h in seen_hashes or (
            v is not None
            and any(n == numbers and float(np.dot(v, u)) >= threshold for u, n in kept_vectors)
        ):
            dropped += 1
            continue
        seen_hashes.add(h)
        if v is not None:
            kept_vectors.append((v, numbers))
        kept.append(hit)
    return kept, dropped


_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")


def _numbers(text: str) -> list[str]:
    """The numbers a text states, in order: near-identical texts whose numbers differ
    (invoice 1043 and 1044, the 14th and the 15th) are distinct memories, not duplicates."""
    return _NUMBER.findall(text)


class _Block:
    """The memories of a block, added in rank order while it fits ``max_tokens``.

    A flushed buffer turn is shown through its segment episode, in the turn's place, when the
    segment is among the candidates and fits what is left whole; a turn whose segment is in
    the block is then a duplicate. A segment that does not fit is left out and its turns
    stand for it (each at its own rank), so the best-ranked turn is never lost to a segment
    cut back to its first turns. Only the first memory, when nothing fits whole, is truncated
    (a segment is not while any of its turns are candidates).
    """

    def __init__(
        self, prefix: str, max_tokens: int, counter: TokenCounter, records: list[MemoryRecord]
    ) -> None:
        self.prefix, self.max_tokens, self.counter = prefix, max_tokens, counter
        self.text = prefix
        self.chosen: list[MemoryRecord] = []
        self.duplicates = 0
        self.skipped = 0
        self.segments = {r.id: r for r in records if context_strategy.is_segment(r)}
        self.with_turns = {
            context_strategy.segment_of(r)
            for r in records
            if context_strategy.shown_by_segment(r, self.segments)
        }
        self.shown: dict[str, MemoryRecord] = {}  # segments in the block, whole
        self.tried: set[str] = set()  # segments weighed already

    def offer(self, record: MemoryRecord) -> None:
        """Add ``record`` (or its segment) if it fits; count it dropped otherwise."""
        if context_strategy.shown_by_segment(record, self.shown):
            self.duplicates += 1
            return
        segment = self.segments.get(context_strategy.segment_of(record) or "")
        if segment is not None and context_strategy.shown_by_segment(record, self.segments):
            if segment.id not in self.tried:
                self.tried.add(segment.id)
                if self._add(segment):
                    self.shown[segment.id] = segment
                    self.duplicates += 1
                    return
                self.skipped += 1  # the segment: this turn and its others stand for it
        elif context_strategy.is_segment(record):
            if record.id in self.tried:
                return  # in the block already, or counted out for its turns
            self.tried.add(record.id)
            if self._add(record):
                self.shown[record.id] = record
                return
            if record.id in self.with_turns:
                self.skipped += 1
                return
        if self._add(record):
            return
        # The memory alone may be too long for what is left: keep a truncated copy if any of
        # it fits, so one long memory does not starve the block.
        truncated = None
        if not self.chosen:
            truncated = _truncate_to_fit(record, self.max_tokens, self.counter, self.prefix)
        if truncated is None:
            self.skipped += 1
        else:
            self.chosen.append(truncated)
            self.text = _join(self.prefix, render(self.chosen))

    def _add(self, record: MemoryRecord) -> bool:
        candidate = _join(self.prefix, render([*self.chosen, record]))
        if not self.counter.fits(candidate, self.max_tokens):
            return False
        self.chosen.append(record)
        self.text = candidate
        return True


def assemble(
    query: str,
    hits: Sequence[SearchHit],
    *,
    max_tokens: int,
    counter: TokenCounter,
    vectors: dict[str, np.ndarray],
    duplicate_threshold: float = 0.95,
    turns: Sequence[Turn] = (),
    header: str = "",
) -> Context:
    """Fit the most relevant, non-duplicate memories into ``max_tokens``, after ``header`` (the
    profile section) and ``turns`` (a live buffer's window); those must fit the budget."""
    unique, dropped_dupes = drop_near_duplicates(hits, vectors, duplicate_threshold)
    prefix = _join(header, render_conversation(turns))
    if not counter.fits(prefix, max_tokens):
        raise ValidationError(
            f"the conversation window alone is over max_tokens={max_tokens}; pass fewer turns"
        )
    block = _Block(prefix, max_tokens, counter, [h.record for h in unique])
    for hit in unique:
        block.offer(hit.record)
    text = block.text
    tokens = counter.count(text) if text else 0
    assert tokens <= max_tokens, "context assembly must never exceed its budget"
    return Context(
        query=query,
        text=text,
        records=block.chosen,
        tokens=tokens,
        max_tokens=max_tokens,
        dropped_duplicates=dropped_dupes + block.duplicates,
        dropped_for_budget=block.skipped,
        turns=list(turns),
    )


def render_conversation(turns: Sequence[Turn]) -> str:
    """The live buffer's section: a heading and one ``role/name: content`` line per turn."""
    return f"## {CONVERSATION_TITLE}\n{render_turns(turns)}" if turns else ""


def _join(prefix: str, body: str) -> str:
    return "\n\n".join(part for part in (prefix, body) if part)


def _truncate_to_fit(
    record: MemoryRecord, max_tokens: int, counter: TokenCounter, prefix: str = ""
) -> MemoryRecord | None:
    overhead = counter.count(_join(prefix, render([record.model_copy(update={"text": "x"})])))
    room = max_tokens - overhead
    if room <= 0:
        return None
    text = counter.truncate(record.text, room)
    while text:
        candidate = record.model_copy(update={"text": text + "…"})
        if counter.fits(_join(prefix, render([candidate])), max_tokens):
            return candidate
        text = text[: max(len(text) - 8, 0)]
    return None


def check_buffer(buffer: LiveBuffer | None, scope: Scope | ScopeSet) -> None:
    """Refuse a buffer outside ``scope``: its live turns are memories of the buffer's scope
    (flushed there), so a read of ``scope`` may show them only where it could show that
    scope's records (:class:`PermissionDenied`, nothing of the buffer read)."""
    if buffer is not None and not scope.contains(buffer.scope):
        raise PermissionDenied(
            f"buffer {buffer.scope} is outside the scope this context reads ({scope}): it "
            "belongs to another user, agent or thread, and none of its turns were read. Pass "
            "a buffer of this scope: mem.buffer(thread_id=...) with this call's ids"
        )


def window_for(
    buffer: LiveBuffer | None, max_tokens: int, counter: TokenCounter, share: float
) -> list[Turn]:
    """The buffer's most recent turns whose section fits in ``share`` of ``max_tokens``."""
    if buffer is None:
        return []
    budget = int(max_tokens * share)
    room = budget - counter.count(f"## {CONVERSATION_TITLE}") - 1  # heading and its newline
    if room < 1:
        return []
    turns = buffer.window(room)
    while turns and not counter.fits(render_conversation(turns), budget):
        turns.pop(0)
    return turns


def build(
    backends: Backends,
    query: Any,
    scope: Scope | ScopeSet,
    *,
    max_tokens: Any = 2000,
    kinds: Any = None,
    filters: dict[str, Any] | None = None,
    as_of: Any = None,
    candidates: Any = 50,
    buffer: LiveBuffer | None = None,
) -> Context:
    """The context block for ``query`` in ``scope`` (a scope, or an agent's set of scopes):
    the profile first, ``buffer``'s live window, then the whole recent history when it fits,
    else the most relevant long-term memories (:mod:`agentmem.context_strategy`), all within
    ``max_tokens``. Validates every argument before searching."""
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValidationError(f"max_tokens must be a positive integer, got {max_tokens!r}")
    counter = TokenCounter(backends.settings.token_encoding)
    check_k(candidates, what="candidates")
    kind_list = check_kinds(kinds)
    as_of_time = check_time(as_of, what="as_of")
    check_text(query, max_chars=backends.settings.max_text_chars, what="query")
    check_buffer(buffer, scope)
    header = profile_section(backends, scope, max_tokens, counter, as_of=as_of_time)
    turns = window_for(
        buffer,
        max_tokens - (counter.count(header) + 2 if header else 0),
        counter,
        backends.settings.buffer.context_share,
    )
    used = counter.count(_join(header, render_conversation(turns)))
    choice = context_strategy.choose(
        backends,
        scope,
        budget=max(max_tokens - used - 2, 0),
        counter=counter,
        render=render,
        kinds=kind_list,
        filters=filters,
        as_of=as_of_time,
    )
    hits = _candidates(backends, query, scope, choice, candidates, kind_list, filters, as_of_time)
    if filters is None and as_of is None and _includes(kinds, MemoryKind.PROCEDURAL):
        # Procedures learned from experience that apply to the query, taken as a task, first.
        hits = with_procedures(backends, query, scope, hits)
    vectors_by_hash, _ = indexing.vectors_for(backends, [h.record for h in hits])
    config = backends.settings.retrieval
    vectors = {
        h.record.content_hash: vectors_by_hash[content_hash(indexed_text(h.record, config))]
        for h in hits
    }
    context = assemble(
        query,
        hits,
        max_tokens=max_tokens,
        counter=counter,
        vectors=vectors,
        duplicate_threshold=config.duplicate_threshold,
        turns=turns,
        header=header,
    )
    context.strategy = choice.strategy.value
    context.strategy_reason = choice.reason
    context.profile = header
    if context.records:
        kept = [r.id for r in context.records]
        backends.recalls.count_recalls(kept, utcnow())
        context.retrieval_id = usefulness.remember(backends, scope, kept)
    return context


def _candidates(
    backends: Backends,
    query: str,
    scope: Scope | ScopeSet,
    choice: context_strategy.Choice,
    candidates: Any,
    kinds: tuple[MemoryKind, ...],
    filters: dict[str, Any] | None,
    as_of: datetime | None,
) -> list[SearchHit]:
    """The memories the block is filled from: the whole recent history when the strategy
    chose it, else the ``candidates`` best search hits."""
    if choice.strategy is context_strategy.Strategy.FULL_HISTORY:
        return [SearchHit(record=r, score=0.0) for r in choice.records]
    return retrieval.search(
        backends,
        query,
        scope,
        k=check_k(candidates, what="candidates"),
        kinds=kinds,
        filters=filters,
        as_of=as_of,
        remember=False,  # the context remembers what it kept, below,
        count_recall=False,  # and counts a recall of those only
    )


PROFILE_TITLE = "Profile"
"""Section of the scope owner's profile, first in the block."""


def profile_section(
    backends: Backends,
    scope: Scope | ScopeSet,
    max_tokens: int,
    counter: TokenCounter,
    *,
    as_of: datetime | None = None,
) -> str:
    """The profile of the scope's user (else agent) as the block's first section, within
    ``context.profile_share`` of the budget (whole lines; empty when there is no profile).
    With ``as_of``, the profile as it stood then, so it never contradicts the memories."""
    share = backends.settings.context.profile_share
    if not isinstance(scope, Scope) or share <= 0 or not isinstance(backends.store, NoteStore):
        return ""
    if not (scope.user_id or scope.agent_id):
        return ""
    from agentmem.profiles import profile_scope
    from agentmem.profiles.stored import stored_lines

    # As stored, not through a model: context() is not told which model the profile was kept
    # with (UserProfile or the user's own), and must neither hide it nor migrate it.
    key = profile_scope(scope)[1]
    lines = stored_lines(backends.store, key, as_of=as_of).splitlines()
    budget = int(max_tokens * share)
    while lines and not counter.fits(f"## {PROFILE_TITLE}\n" + "\n".join(lines), budget):
        lines.pop()
    return f"## {PROFILE_TITLE}\n" + "\n".join(lines) if lines else ""


def _includes(kinds: Any, kind: MemoryKind) -> bool:
    return not kinds or kind in check_kinds(kinds)


__all__ = [
    "CONVERSATION_TITLE",
    "PROFILE_TITLE",
    "Context",
    "LiveBuffer",
    "assemble",
    "build",
    "drop_near_duplicates",
    "profile_section",
    "render",
    "render_conversation",
    "window_for",
]
