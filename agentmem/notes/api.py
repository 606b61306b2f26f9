"""Linked notes as the controller uses them: store new notes with their links, list and make
links, undo an evolution, and expand search hits along links."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Unpack

from agentmem import writing
from agentmem.backends import Backends
from agentmem.errors import Conflict, InvalidLink, NotFound, ValidationError
from agentmem.fusion import Ranked
from agentmem.models import HistoryEntry, MemoryRecord, Scope, ScopeSet
from agentmem.notes.describe import CONTEXT, KEYWORDS, TAGS
from agentmem.notes.linker import commit, held_credits, prepare
from agentmem.notes.model import Link, LinkReport, LinkType
from agentmem.scoping import ScopeKwargs, optional_scope_of
from agentmem.stores import NoteStore, require
from agentmem.stores._notes_sql import LinkRow
from agentmem.twins import async_twin
from agentmem.validation import check_text

MAX_EXPAND_DEPTH = 3
"""Deepest link expansion a search may ask for (each hop multiplies the candidates)."""


def decider_for(backends: Backends) -> Any:
    """The LLM note decider when an LLM is configured, else None (the rules)."""
    settings = backends.settings
    if not settings.llm_model:
        return None
    from agentmem.notes.llm import LLMNoteDecider
    from agentmem.semantic.llm import LLMClient

    return LLMNoteDecider(LLMClient.from_settings(settings))


def insert(
    backends: Backends, records: list[MemoryRecord], actor: str = "api", decider: Any = None
) -> LinkReport:
    """:func:`agentmem.writing.insert`, and the semantic notes among ``records`` linked to the
    notes they relate to (which may evolve). Returns the counted work."""
    if decider is None and any(r.kind.value == "semantic" for r in records):
        decider = decider_for(backends)
    plan = prepare(backends, records, decider)
    writing.insert(backends, records, actor=actor)
    return commit(backends, plan)


def links_of(backends: Backends, memory_id: str, scope: Scope | None) -> list[Link]:
    """Every link of a note (out and in), oldest first; both ends visible to ``scope``."""
    writing.get_one(backends, memory_id, scope)
    if not isinstance(backends.store, NoteStore):
        return []
    rows = _links(backends).link_rows([memory_id], scope)
    others = {r.target_id if r.source_id == memory_id else r.source_id for r in rows}
    alive = {r.id for r in backends.store.get_many(list(others), scope)}
    return [
        Link.from_row(r, about=memory_id)
        for r in rows
        if (r.target_id if r.source_id == memory_id else r.source_id) in alive
    ]


def make_link(
    backends: Backends,
    source_id: str,
    target_id: str,
    scope: Scope | None,
    *,
    type: str | LinkType = LinkType.RELATED,
    reason: str | None = None,
) -> Link:
    """Link two notes by hand (``made_by="api"``). Refused with :class:`InvalidLink`: a note
    linked to itself, an unknown type, notes of different scopes."""
    kind = LinkType.parse(type)
    if source_id == target_id:
        raise InvalidLink(f"a note cannot link to itself ({source_id!r}); pick another target")
    if reason:  # checked as any stored text (a string, no NUL, valid Unicode)
        reason = check_text(reason, max_chars=backends.settings.max_text_chars, what="reason")
    elif reason is not None and reason != "":
        raise ValidationError(f"reason must be a string, got {reason!r}")
    source = writing.get_one(backends, source_id, scope)
    target = writing.get_one(backends, target_id, scope)
    if source.scope != target.scope:
        raise InvalidLink(
            f"notes {source_id!r} ({source.scope}) and {target_id!r} ({target.scope}) are in "
            "different scopes; links stay within one scope"
        )
    row = LinkRow(
        source_id=source.id,
        target_id=target.id,
        scope=source.scope,
        link_type=kind.value,
        made_by="api",
        reason=(reason or "linked by hand")[:500],
        score=1.0,
        created_at=writing.utcnow().timestamp(),
    )
    _links(backends).link_write([row])
    return Link.from_row(row, about=source.id)


def remove_link(backends: Backends, source_id: str, target_id: str, scope: Scope | None) -> bool:
    """Remove the link ``source_id -> target_id``; False when there was none."""
    writing.get_one(backends, source_id, scope)
    rows = _links(backends).link_rows([source_id], scope)
    if not any(r.source_id == source_id and r.target_id == target_id for r in rows):
        return False
    _links(backends).link_write([], deletes=[(source_id, target_id)])
    return True


def undo_evolution(backends: Backends, memory_id: str, scope: Scope | None) -> MemoryRecord:
    """Undo the latest evolution of a note that still changes something (one whose additions
    a forget took out is passed over): its keywords, tags and context go back to what they
    were before it, as a new version (actor ``notes:undo``); other changes made since are
    kept. :class:`NotFound` when the note was never evolved (or every evolution is undone);
    :class:`Conflict` when a field the evolution set has changed since (nothing is undone)."""
    record = writing.get_one(backends, memory_id, scope)
    # Replay the history: each undo took back the latest evolution not undone at its time.
    # An evolution whose additions a forget took out (from the note and its history) changes
    # nothing any more, and neither does an undo of one: both are passed over.
    left: list[HistoryEntry] = []
    for e in backends.store.history(memory_id, scope):
        if not e.actor.startswith("notes:") or not _evolves(e):
            continue
        if e.actor == "notes:undo":
            if left:
                left.pop()
        else:
            left.append(e)
    if not left:
        raise NotFound(f"note {memory_id!r} has no evolution left to undo (see history(id))")
    entry = left[-1]
    old, new = entry.old_metadata or {}, entry.new_metadata or {}
    metadata = dict(record.metadata)
    evolved = [key for key in (KEYWORDS, TAGS, CONTEXT) if old.get(key) != new.get(key)]
    edited = [key for key in evolved if metadata.get(key) != new.get(key)]
    if edited:
        # Changed again since the evolution (by hand, or by a later write): putting back the
        # value from before it would silently throw that change away.
        raise Conflict(
            f"note {memory_id!r}: {', '.join(edited)} changed after the evolution being undone "
            f"(version {entry.version}); nothing was undone. Set them with update(metadata=...) "
            "instead (history(id) shows every version)"
        )
    for key in evolved:
        if key in old:
            metadata[key] = old[key]
        else:
            metadata.pop(key, None)
    provenance = held_credits(record.provenance, metadata)  # the undone additions' credits go
    return writing.update(
        backends,
        memory_id,
        scope,
        metadata=metadata,
        provenance=provenance if provenance != record.provenance else None,
        actor="notes:undo",
    )


def _evolves(entry: HistoryEntry) -> bool:
    """Whether a history entry changed a note's keywords, tags or context."""
    old, new = entry.old_metadata or {}, entry.new_metadata or {}
    return any(old.get(key) != new.get(key) for key in (KEYWORDS, TAGS, CONTEXT))


def expand(backends: Backends, seeds: Sequence[str], scope: Scope | ScopeSet, depth: int) -> Ranked:
    """Notes reached from ``seeds`` (best first) along links, up to ``depth`` hops, ranked by
    the rank of the seed they came from, then hop count, then link score. A seed linked from
    another seed is reached too (the link is evidence for it); a note is never reached from
    itself, nor through a deleted note, and cycles are walked once: each note is expanded at
    most once."""
    if depth < 1 or not seeds or not isinstance(backends.store, NoteStore):
        return []
    frontier = {s: rank for rank, s in enumerate(dict.fromkeys(seeds))}
    origin = {s: s for s in frontier}
    expanded: set[str] = set()
    found: dict[str, tuple[int, int, float]] = {}
    for hop in range(1, depth + 1):
        rows = _links(backends).link_rows(list(frontier), scope)
        expanded.update(frontier)
        nxt: dict[str, int] = {}
        for row in rows:
            for here, there in ((row.source_id, row.target_id), (row.target_id, row.source_id)):
                if here not in frontier or there == origin[here]:
                    continue
                key = (frontier[here], hop, -row.score)
                if there not in found or key < found[there]:
                    found[there] = key
                    origin.setdefault(there, origin[here])
                    if there not in expanded:
                        nxt[there] = frontier[here]
        # A deleted note leads nowhere: its link rows stay until a forget, but neither it
        # nor what lies beyond it is reached through them (as links_of lists them).
        alive = {f.id for f in backends.store.rank_fields(list(nxt), scope)} if nxt else set()
        for dead in [i for i in nxt if i not in alive]:
            del found[dead]
        frontier = {i: rank for i, rank in nxt.items() if i in alive}
        if not frontier:
            break
    ordered = sorted(found.items(), key=lambda item: item[1])
    return [(memory_id, 1.0 / (1 + seed_rank + hop)) for memory_id, (seed_rank, hop, _) in ordered]


class NotesAPI:
    """``mem.notes``: a note's links, links made by hand, undoing an evolution."""

    def __init__(self, backends: Backends) -> None:
        self._backends = backends
        self._call_gate = backends.calls

    def links(
        self, memory_id: str, *, scope: Scope | None = None, **where: Unpack[ScopeKwargs]
    ) -> list[Link]:
        """Every link of a note, out and in (``Link.direction``), oldest first."""
        return links_of(self._backends.opened(), memory_id, optional_scope_of(scope, where))

    def link(
        self,
        source_id: str,
        target_id: str,
        *,
        type: str | LinkType = LinkType.RELATED,
        reason: str | None = None,
        scope: Scope | None = None,
        **where: Unpack[ScopeKwargs],
    ) -> Link:
        """Link two notes of one scope by hand (see :func:`make_link`)."""
        return make_link(
            self._backends.opened(),
            source_id,
            target_id,
            optional_scope_of(scope, where),
            type=type,
            reason=reason,
        )

    def unlink(
        self,
        source_id: str,
        target_id: str,
        *,
        scope: Scope | None = None,
        **where: Unpack[ScopeKwargs],
    ) -> bool:
        """Remove a link; False when there was none."""
        backends = self._backends.opened()
        return remove_link(backends, source_id, target_id, optional_scope_of(scope, where))

    def undo(
        self, memory_id: str, *, scope: Scope | None = None, **where: Unpack[ScopeKwargs]
    ) -> MemoryRecord:
        """Undo the latest evolution of a note (see :func:`undo_evolution`)."""
        return undo_evolution(self._backends.opened(), memory_id, optional_scope_of(scope, where))

    # async twins: the same signatures, run in a worker thread (see agentmem.twins) ---------

    alinks = async_twin(links)
    alink = async_twin(link)
    aunlink = async_twin(unlink)
    aundo = async_twin(undo)


def _links(backends: Backends) -> NoteStore:
    return require(backends.store, NoteStore, "links between notes")


__all__ = [
    "MAX_EXPAND_DEPTH",
    "NotesAPI",
    "decider_for",
    "expand",
    "insert",
    "links_of",
    "make_link",
    "remove_link",
    "undo_evolution",
]
