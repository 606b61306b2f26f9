"""Linking new notes to the notes they relate to, and letting them evolve those notes.

For each new semantic memory (a *note*), before it is stored:

1. :func:`~agentmem.notes.describe.describe` gives it keywords, tags and a one-line context.
2. Its candidates are the ``notes.candidates`` nearest valid notes of exactly its scope (one
   dense index query with its cached vector), the notes written in the same batch, and the
   note it supersedes, if any.
3. A link is made to a candidate at cosine >= ``notes.link_threshold``, or at up to 0.15
   below it when the two share an entity or at least two keywords; the best ``max_links`` by
   score (cosine + 0.05 per shared term, at most three) are kept, each typed: ``contradicts``
   (it supersedes the candidate, or sets the same attribute to another value),
   ``elaborates`` (says what the candidate says, and more), ``follows`` (a later event or
   plan of the same subject), else ``related``.
4. Evolution: up to ``notes.max_evolve_per_add`` linked notes (best first; never one the new
   note contradicts or nearly duplicates) get the new note's keywords and tags merged into
   theirs (capped at ``max_keywords``) and its text appended to their context (capped at
   ``max_context_chars``, oldest additions dropped first). With an LLM, one structured call
   per new note chooses its description (where the caller set none), the links and the
   context/tags updates instead (under the same limits: never a note it contradicts or nearly
   duplicates); an unusable answer falls back to the rules, so a note is never lost to the
   LLM.

After the new notes are stored, :func:`commit` writes the links and applies every evolution
as a new version of the neighbour in one batch (history actor ``notes:<who>``, so each change
is listed by ``history(id)`` and undone by :func:`agentmem.notes.api.undo`). Evolution never
cascades: updating a neighbour is not an add, so it links and evolves nothing further.

The neighbour's provenance credits each new note with what its evolution added
(``provenance["evolved_from"]``, :data:`agentmem.lineage.EVOLVED_FROM`): the keywords and tags,
and the context parts by content hash. A forget of that note takes exactly those additions
back out of the neighbour, its history included (:func:`withdrawal`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agentmem.backends import Backends
from agentmem.errors import AgentMemError
from agentmem.indexing import sync_outbox, vectors_for
from agentmem.lineage import EVOLVED_FROM
from agentmem.models import (
    HistoryEntry,
    HistoryEvent,
    MemoryKind,
    MemoryRecord,
    content_hash,
    utcnow,
)
from agentmem.notes.describe import (
    CONTEXT,
    KEYWORDS,
    TAGS,
    context_of,
    describe,
    given_fields,
)
from agentmem.notes.model import LinkReport, LinkType
from agentmem.representation import indexed_text
from agentmem.semantic.text import fold
from agentmem.settings import NotesSettings
from agentmem.stores import IndexOp, NoteStore, WriteBatch, require
from agentmem.stores._notes_sql import LinkRow
from agentmem.vectors import VectorQuery
from agentmem.vectors.base import DENSE

log = logging.getLogger(__name__)

EVOLVED = "evolved"
"""Metadata flag of a note whose context linked notes changed (its window text includes it)."""
NEAR_DUPLICATE = 0.95
"""Cosine at or above which a new note says nothing new to a neighbour: no evolution."""
SHARED_BONUS = 0.05
RELAXED_BY = 0.15
SEPARATOR = " | "
"""Between a note's own context and each addition evolution appended to it."""
_EVOLVING = (KEYWORDS, TAGS, CONTEXT)


@dataclass
class Candidate:
    """A note a new note may link to."""

    record: MemoryRecord
    similarity: float
    shared: list[str] = field(default_factory=list)
    """Entities and keywords both notes carry."""
    stored: bool = True
    """False for a note written in the same batch (linked, never evolved)."""


@dataclass
class LinkChoice:
    """A link a new note makes."""

    target_id: str
    type: LinkType
    reason: str
    score: float


@dataclass
class Evolution:
    """New keywords, tags and context for a stored neighbour."""

    target: MemoryRecord
    metadata: dict[str, Any]
    reason: str


Step = tuple[str, Evolution]
"""One evolution of a neighbour and the id of the new note that made it."""


@dataclass
class NotePlan:
    """What one new note links to and changes."""

    record: MemoryRecord
    made_by: str
    links: list[LinkChoice] = field(default_factory=list)
    evolutions: list[Evolution] = field(default_factory=list)
    given: frozenset[str] = frozenset()
    """The fields of the note's description (keywords, tags, context) its caller set: an LLM
    describing the note keeps them."""


@dataclass
class Plan:
    """Everything :func:`prepare` decided for one write; :func:`commit` carries it out."""

    notes: list[NotePlan] = field(default_factory=list)
    report: LinkReport = field(default_factory=LinkReport)


def shared_terms(a: MemoryRecord, b: MemoryRecord) -> list[str]:
    """Entities and keywords both notes carry, folded (:func:`~agentmem.semantic.text.fold`:
    whatever their case or Unicode form), sorted."""

    def terms(r: MemoryRecord) -> set[str]:
        return {fold(str(k)) for k in r.metadata.get(KEYWORDS, []) or []} | _entities(r)

    return sorted(terms(a) & terms(b))


def _entities(r: MemoryRecord) -> set[str]:
    return {fold(str(e)) for e in r.metadata.get("entities", []) or []}


def _shares_entity(a: MemoryRecord, b: MemoryRecord) -> bool:
    return bool(_entities(a) & _entities(b))


def link_type(note: MemoryRecord, other: MemoryRecord) -> tuple[LinkType, str]:
    """The rules' type of a link from ``note`` to ``other``, and why."""
    from agentmem.semantic.decide import adds_detail, record_slot

    if note.metadata.get("supersedes") == other.id:
        return LinkType.CONTRADICTS, "supersedes it"
    slot, _, value = record_slot(note)
    other_slot, _, other_value = record_slot(other)
    if slot and slot == other_slot and value and other_value and value != other_value:
        return LinkType.CONTRADICTS, f"another value of {slot.split('|')[-1]}"
    if adds_detail(note.text, other.text):
        return LinkType.ELABORATES, "says it with more detail"
    subject = fold(str(note.metadata.get("subject") or ""))
    timed = {"event", "plan"}
    if (
        subject
        and subject == fold(str(other.metadata.get("subject") or ""))
        and note.metadata.get("fact_type") in timed
        and other.metadata.get("fact_type") in timed
        and note.event_time is not None
        and other.event_time is not None
        and other.event_time < note.event_time
    ):
        return LinkType.FOLLOWS, f"a later {note.metadata.get('fact_type')} of {subject}"
    return LinkType.RELATED, "related"


def choose_links(
    note: MemoryRecord, candidates: Sequence[Candidate], settings: NotesSettings
) -> list[LinkChoice]:
    """The rules' links of one note (see the module docstring), best first."""
    chosen: list[LinkChoice] = []
    for c in candidates:
        if c.record.id == note.id:
            continue
        supersedes = note.metadata.get("supersedes") == c.record.id
        relaxed = settings.link_threshold - RELAXED_BY
        close = c.similarity >= settings.link_threshold
        supported = c.similarity >= relaxed and (
            len(c.shared) >= 2 or _shares_entity(note, c.record)
        )
        if not (supersedes or close or supported):
            continue
        kind, why = link_type(note, c.record)
        score = c.similarity + SHARED_BONUS * min(len(c.shared), 3)
        terms = f"; shares {', '.join(c.shared[:5])}" if c.shared else ""
        chosen.append(
            LinkChoice(c.record.id, kind, f"{why} (cosine {c.similarity:.2f}{terms})", score)
        )
    chosen.sort(key=lambda link: (link.type is not LinkType.CONTRADICTS, -link.score))
    return chosen[: settings.max_links]


def merged(existing: Any, new: Sequence[str], limit: int) -> list[str]:
    """``existing`` then the new items not in it (folded alike, so a keyword stored as
    "i̇stanbul" is not added again as "istanbul"), at most ``limit`` (existing ones first)."""
    out = [str(x) for x in existing] if isinstance(existing, list) else []
    seen = {fold(x) for x in out}
    for item in new:
        key = fold(item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out[:limit]


def grown_context(context: Any, addition: str, limit: int) -> str:
    """``context`` with ``addition`` appended (`` | ``-separated), within ``limit`` characters:
    the first part (the note's own context) is kept, the oldest additions go first."""
    parts = _parts(context)
    addition = " ".join(addition.split())
    if addition in parts:
        return SEPARATOR.join(parts)
    parts.append(addition)
    while len(parts) > 2 and len(SEPARATOR.join(parts)) > limit:
        parts.pop(1)
    text = SEPARATOR.join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _parts(context: Any) -> list[str]:
    return [p for p in str(context or "").split(SEPARATOR) if p]


def _items(metadata: dict[str, Any], key: str) -> list[str]:
    """A note's keywords or tags, or its context parts by content hash."""
    value = metadata.get(key)
    if key == CONTEXT:
        return [content_hash(p) for p in _parts(value)] if isinstance(value, str) else []
    return [str(x) for x in value] if isinstance(value, list) else []


def _credits(provenance: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    found = provenance.get(EVOLVED_FROM)
    if not isinstance(found, dict):
        return {}
    return {
        source: {k: [str(i) for i in v] for k, v in credit.items() if isinstance(v, list)}
        for source, credit in found.items()
        if isinstance(credit, dict)
    }


def _with_credits(
    provenance: dict[str, Any], credits: dict[str, dict[str, list[str]]]
) -> dict[str, Any]:
    out = {k: v for k, v in provenance.items() if k != EVOLVED_FROM}
    return {**out, EVOLVED_FROM: credits} if credits else out


def held_credits(provenance: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
    """``provenance`` with its evolution credits cut to what ``metadata`` still holds (a
    note whose additions are all gone, e.g. undone or dropped from a full context, is no
    longer credited)."""
    held = {k: set(_items(metadata, k)) for k in _EVOLVING}
    credits = {}
    for source, credit in _credits(provenance).items():
        kept = {k: [i for i in credit.get(k, []) if i in held[k]] for k in _EVOLVING}
        if any(kept.values()):
            credits[source] = {k: v for k, v in kept.items() if v}
    return _with_credits(provenance, credits)


def credited(
    provenance: dict[str, Any], source_id: str, before: dict[str, Any], after: dict[str, Any]
) -> dict[str, Any]:
    """``provenance`` of a note whose metadata one evolution by ``source_id`` took from
    ``before`` to ``after``: what it added is credited to that note."""
    credits = _credits(provenance)
    credit = credits.setdefault(source_id, {})
    for key in _EVOLVING:
        old = set(_items(before, key))
        added = [i for i in _items(after, key) if i not in old]
        credit[key] = list(dict.fromkeys([*credit.get(key, []), *added]))
    return held_credits(_with_credits(provenance, credits), after)


@dataclass(frozen=True)
class Withdrawal:
    """What a forget takes out of one evolved note: the items forgotten notes' evolution
    added and no remaining note's did (context parts by content hash)."""

    items: dict[str, set[str]]
    own_context: str
    """The note's own context line, in place of a context a forgotten note set (LLM)."""
    provenance: dict[str, Any]
    """The note's provenance without the forgotten notes' credits."""

    def apply(self, metadata: dict[str, Any] | None) -> dict[str, Any] | None:
        """``metadata`` (the note's, or a version of it in its history) without the items."""
        if metadata is None:
            return None
        out = dict(metadata)
        for key in (KEYWORDS, TAGS):
            if self.items[key] and isinstance(out.get(key), list):
                out[key] = [x for x in out[key] if str(x) not in self.items[key]]
        parts = _parts(out.get(CONTEXT)) if isinstance(out.get(CONTEXT), str) else []
        left = [p for p in parts if content_hash(p) not in self.items[CONTEXT]]
        if len(left) < len(parts):
            if content_hash(parts[0]) in self.items[CONTEXT]:
                left.insert(0, self.own_context)
            out[CONTEXT] = SEPARATOR.join(left)
        return out


def withdrawal(record: MemoryRecord, gone: set[str]) -> Withdrawal | None:
    """What to take out of ``record`` because the notes ``gone`` are forgotten, or None when
    none of them evolved it."""
    credits = _credits(record.provenance)
    taken = [s for s in credits if s in gone]
    if not taken:
        return None
    kept = {s: c for s, c in credits.items() if s not in gone}
    items = {
        k: {i for s in taken for i in credits[s].get(k, [])}
        - {i for c in kept.values() for i in c.get(k, [])}
        for k in _EVOLVING
    }
    return Withdrawal(items, context_of(record), _with_credits(record.provenance, kept))


def evolve_rules(
    note: MemoryRecord, target: MemoryRecord, settings: NotesSettings
) -> dict[str, Any] | None:
    """The LLM-free update of a linked neighbour (merged keywords and tags, the new note
    appended to its context), or None when it would change nothing."""
    meta = dict(target.metadata)
    meta[KEYWORDS] = merged(
        meta.get(KEYWORDS), note.metadata.get(KEYWORDS, []), settings.max_keywords
    )
    meta[TAGS] = merged(meta.get(TAGS), note.metadata.get(TAGS, []), settings.max_keywords)
    meta[CONTEXT] = grown_context(meta.get(CONTEXT), note.text, settings.max_context_chars)
    if all(meta.get(k) == target.metadata.get(k) for k in (KEYWORDS, TAGS, CONTEXT)):
        return None
    return meta


def candidates_for(
    backends: Backends,
    note: MemoryRecord,
    vector: np.ndarray,
    batch: Sequence[tuple[MemoryRecord, np.ndarray]],
    settings: NotesSettings,
) -> list[Candidate]:
    """Stored notes of exactly the note's scope nearest to it, earlier notes of the same batch,
    and the note it supersedes; most similar first."""
    found: dict[str, float] = {}
    hits = backends.index.search(
        vector,
        VectorQuery(
            scope=note.scope,
            limit=settings.candidates + 1,
            kinds=(MemoryKind.SEMANTIC,),
            now=time.time(),
        ),
        using=DENSE,
    )
    for memory_id, score in hits:
        if memory_id != note.id:
            found[memory_id] = float(score)
    superseded = note.metadata.get("supersedes")
    wanted = list(found)
    if isinstance(superseded, str) and superseded not in found:
        wanted.append(superseded)
    records = {
        r.id: r
        for r in backends.store.get_many(wanted, note.scope)
        if r.scope == note.scope and r.kind is MemoryKind.SEMANTIC
    }
    out = [
        Candidate(
            r,
            found[r.id] if r.id in found else _cosine(vector, _vector_of(backends, r)),
            shared_terms(note, r),
        )
        for r in records.values()
        if r.invalidated_at is None or r.id == superseded
    ]
    same = [(r, v) for r, v in batch if r.scope == note.scope]
    if same:
        sims = np.stack([v for _, v in same]) @ vector
        for i in np.argsort(-sims)[: settings.candidates]:
            r = same[int(i)][0]
            out.append(Candidate(r, float(sims[i]), shared_terms(note, r), stored=False))
    out.sort(key=lambda c: -c.similarity)
    return out


def _vector_of(backends: Backends, record: MemoryRecord) -> np.ndarray:
    vectors, _ = vectors_for(backends, [record])
    return vectors[content_hash(indexed_text(record, backends.settings.retrieval))]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b))


def prepare(backends: Backends, records: Sequence[MemoryRecord], decider: Any = None) -> Plan:
    """Describe the new notes among ``records`` (in place, before they are stored) and decide
    their links and evolutions. ``decider`` is an LLM note decider
    (:class:`agentmem.notes.llm.LLMNoteDecider`); None: the rules."""
    settings = backends.settings.notes
    plan = Plan()
    notes = [r for r in records if r.kind is MemoryKind.SEMANTIC]
    if not notes or not settings.enabled or not isinstance(backends.store, NoteStore):
        return plan
    given = {note.id: given_fields(note.metadata) for note in notes}
    for note in notes:
        describe(note, settings.max_keywords)
    vectors, fresh = vectors_for(backends, notes)
    if fresh:  # cached now, so the insert that follows does not embed them again
        backends.store.apply(
            WriteBatch(embeddings=[(backends.embedder.name, h, v) for h, v in fresh])
        )
    config = backends.settings.retrieval
    earlier: list[tuple[MemoryRecord, np.ndarray]] = []
    evolved: dict[str, Evolution] = {}
    for note in notes:
        vector = vectors[content_hash(indexed_text(note, config))]
        candidates = candidates_for(backends, note, vector, earlier, settings)
        earlier.append((note, vector))
        plan.report.notes += 1
        plan.report.candidates += len(candidates)
        note_plan = NotePlan(note, made_by="rules", given=given[note.id])
        if decider is not None and candidates:
            try:
                decider.decide(note, candidates, settings, note_plan, evolved)
                plan.report.llm_calls += 1
                plan.notes.append(note_plan)
                continue
            except AgentMemError as exc:
                log.warning("LLM note decision for %s unusable (%s); rules used", note.id, exc)
                plan.report.llm_calls += 1
                plan.report.fallbacks += 1
                note_plan = NotePlan(note, made_by="rules")
        note_plan.links = choose_links(note, candidates, settings)
        _rules_evolutions(note, note_plan, candidates, settings, evolved)
        plan.notes.append(note_plan)
    plan.report.links = sum(len(p.links) for p in plan.notes)
    plan.report.evolved = sum(len(p.evolutions) for p in plan.notes)
    return plan


def _rules_evolutions(
    note: MemoryRecord,
    note_plan: NotePlan,
    candidates: Sequence[Candidate],
    settings: NotesSettings,
    evolved: dict[str, Evolution],
) -> None:
    if not settings.evolve or settings.max_evolve_per_add == 0:
        return
    by_id = {c.record.id: c for c in candidates}
    for link in note_plan.links:
        if len(note_plan.evolutions) >= settings.max_evolve_per_add:
            break
        c = by_id.get(link.target_id)
        if c is None or not c.stored or link.type is LinkType.CONTRADICTS:
            continue
        if c.similarity >= NEAR_DUPLICATE:
            continue
        meta = evolve_rules(note, current_view(c.record, evolved), settings)
        if meta is None:
            continue
        evolution = Evolution(c.record, meta, f"{link.type.value} note {note.id} added")
        evolved[c.record.id] = evolution
        note_plan.evolutions.append(evolution)


def current_view(record: MemoryRecord, evolved: dict[str, Evolution]) -> MemoryRecord:
    """A neighbour as this write has evolved it so far."""
    if record.id in evolved:
        return record.model_copy(update={"metadata": evolved[record.id].metadata})
    return record


def commit(backends: Backends, plan: Plan, stored_ids: set[str] | None = None) -> LinkReport:
    """Write the planned links and apply the evolutions, after the new notes are stored.

    Evolutions of one write are applied as one batch: each neighbour gets one new version
    (with every change this write made to it) and one history entry."""
    if not plan.notes:
        return plan.report
    now = time.time()
    rows = [
        LinkRow(
            source_id=p.record.id,
            target_id=link.target_id,
            scope=p.record.scope,
            link_type=link.type.value,
            made_by=p.made_by,
            reason=link.reason,
            score=link.score,
            created_at=now,
        )
        for p in plan.notes
        for link in p.links
    ]
    require(backends.store, NoteStore, "links between notes").link_write(rows)
    steps: dict[str, list[Step]] = {}
    made: dict[str, str] = {}
    for p in plan.notes:
        for evolution in p.evolutions:
            steps.setdefault(evolution.target.id, []).append((p.record.id, evolution))
            made[evolution.target.id] = p.made_by
    if steps:
        _apply_evolutions(backends, [(s, made[target]) for target, s in steps.items()])
    plan.report.evolved = len(steps)
    return plan.report


def _evolved(record: MemoryRecord, steps: Sequence[Step]) -> MemoryRecord:
    """``record`` after the evolutions of one write (in order; each builds on the ones
    before), each new note credited with what it added."""
    metadata, provenance = record.metadata, record.provenance
    for source_id, evolution in steps:
        after = {**metadata, **{k: evolution.metadata[k] for k in _EVOLVING}, EVOLVED: True}
        provenance = credited(provenance, source_id, metadata, after)
        metadata = after
    return record.model_copy(update={"metadata": metadata, "provenance": provenance})


def _apply_evolutions(backends: Backends, evolutions: Sequence[tuple[list[Step], str]]) -> None:
    targets = [steps[0][1].target.id for steps, _ in evolutions]
    current = {r.id: r for r in backends.store.get_many(targets)}
    now = utcnow()
    updates: list[MemoryRecord] = []
    history: list[HistoryEntry] = []
    for steps, made_by in evolutions:
        record = current.get(steps[0][1].target.id)
        if record is None or record.invalidated_at is not None:
            continue
        evolved = _evolved(record, steps)
        metadata = evolved.metadata
        if metadata == record.metadata:
            continue
        updated = evolved.model_copy(update={"version": record.version + 1, "updated_at": now})
        updates.append(updated)
        history.append(
            HistoryEntry(
                memory_id=record.id,
                scope=record.scope,
                event=HistoryEvent.UPDATE,
                version=updated.version,
                old_text=record.text,
                new_text=record.text,
                old_metadata=record.metadata,
                new_metadata=metadata,
                actor=f"notes:{made_by}",
                at=now,
            )
        )
    if not updates:
        return
    try:
        backends.store.apply(
            WriteBatch(
                updates=updates,
                history=history,
                index=[(u.id, IndexOp.UPSERT) for u in updates],
            )
        )
    except AgentMemError as exc:  # a concurrent change won: evolution is best-effort
        log.warning("note evolution skipped: %s", exc)
        return
    sync_outbox(backends)


__all__ = [
    "SEPARATOR",
    "Candidate",
    "Evolution",
    "LinkChoice",
    "NotePlan",
    "Plan",
    "Withdrawal",
    "candidates_for",
    "choose_links",
    "commit",
    "credited",
    "evolve_rules",
    "grown_context",
    "held_credits",
    "link_type",
    "merged",
    "prepare",
    "shared_terms",
    "withdrawal",
]
