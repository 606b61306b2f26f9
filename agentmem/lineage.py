"""Lineage: which records were derived from or copy which others, and what a forget takes
with it (:func:`derived_closure`, used by :mod:`agentmem.erasure`), or takes out of them
(:func:`evolved_by`: notes that evolution gave a forgotten note's words)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agentmem.experience.models import PROCEDURE_KEY
from agentmem.models import MemoryRecord

_SUMMARY_OF = (
    "summary_of"  # agentmem_consolidation.decay.SUMMARY_OF_KEY (the core never imports it)
)
EVOLVED_FROM = "evolved_from"
"""Provenance key of a note that evolution changed (:mod:`agentmem.notes.linker`): for each
note whose evolution added to its keywords, tags or context, what it added that the note still
holds (keywords and tags as they are, context parts by content hash)."""


def sources_of(record: MemoryRecord) -> list[str]:
    """The ids a record was derived from, oldest first (empty: a primary record)."""
    prov = record.provenance
    found: list[str] = [*(prov.get("sources") or []), *(prov.get("source_ids") or [])]
    body = record.metadata.get(PROCEDURE_KEY)
    if isinstance(body, dict):
        found.extend(body.get("evidence") or [])
    found.extend(record.metadata.get(_SUMMARY_OF) or [])
    return [s for s in dict.fromkeys(found) if isinstance(s, str)]


TEXT_SOURCES = "text_sources"
"""Provenance key of a fact whose current text more sources state than its last one: an episode
that repeated the fact word for word (a NOOP decision) joined its sources and states the
text as well as the one it came from (:mod:`agentmem.semantic.decide`). Absent: the last
source alone."""


def text_sources(record: MemoryRecord) -> list[str]:
    """The sources that state a derived record's current text: for a distilled procedure, the
    experience whose task its text quotes (the one it was first learned from); for a fact
    restated word for word, those in its ``text_sources``; otherwise the latest source (an
    UPDATE appends the source that restated it)."""
    sources = sources_of(record)
    body = record.metadata.get(PROCEDURE_KEY)
    if isinstance(body, dict):
        first = record.provenance.get("source_ids") or body.get("evidence") or []
        return [first[0]] if first and isinstance(first[0], str) else []
    stated = record.provenance.get(TEXT_SOURCES)
    if isinstance(stated, list):
        kept = [s for s in stated if s in sources]
        if kept:
            return kept
    return sources[-1:]


def without_sources(record: MemoryRecord, gone: set[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The provenance and metadata of a kept derived record with the ids in ``gone`` pruned:
    from its provenance's sources, and from a procedure's evidence (its ``support`` drops by
    the forgotten experiences it counted there)."""
    provenance = dict(record.provenance)
    for key in ("sources", "source_ids", TEXT_SOURCES):
        if isinstance(provenance.get(key), list):
            provenance[key] = [s for s in provenance[key] if s not in gone]
    metadata = dict(record.metadata)
    body = metadata.get(PROCEDURE_KEY)
    if isinstance(body, dict) and isinstance(body.get("evidence"), list):
        evidence = [s for s in body["evidence"] if s not in gone]
        dropped = len(body["evidence"]) - len(evidence)
        if dropped:
            metadata[PROCEDURE_KEY] = {**body, "evidence": evidence}
            support = metadata.get("support")
            if isinstance(support, int) and not isinstance(support, bool):
                metadata["support"] = max(1, support - dropped)
    return provenance, metadata


def copies_among(records: Sequence[MemoryRecord]) -> list[tuple[MemoryRecord, list[str]]]:
    """Buffer segments among ``records`` and the ids of their turn records: a flush stores a
    segment (its turns' text) and one record per turn (provenance ``turn_id`` and
    ``segment_id``, the segment's record id), so a segment holds the very words of each of
    its turns."""
    by_segment: dict[str, list[str]] = {}
    for r in records:
        if isinstance(r.provenance.get("turn_id"), str) and (segment := segment_of(r)):
            by_segment.setdefault(segment, []).append(r.id)
    return [(r, by_segment[r.id]) for r in records if r.id in by_segment]


def segment_of(record: MemoryRecord) -> str | None:
    """The buffer segment a turn record was flushed with, if it is one."""
    segment = record.provenance.get("segment_id")
    return segment if isinstance(segment, str) else None


def evolved_from(record: MemoryRecord) -> list[str]:
    """The notes whose evolution put words into this note's keywords, tags or context (they
    are not its sources: it stays when they go, and only their additions go with them)."""
    credits = record.provenance.get(EVOLVED_FROM)
    return [k for k in credits if isinstance(k, str)] if isinstance(credits, dict) else []


def evolved_by(candidates: Sequence[MemoryRecord], forgotten: set[str]) -> list[MemoryRecord]:
    """The records among ``candidates`` (not forgotten themselves) that evolution gave words
    of a forgotten note: a forget takes those additions back out of them."""
    return [
        r for r in candidates if r.id not in forgotten and forgotten.intersection(evolved_from(r))
    ]


def derived_closure(
    candidates: Sequence[MemoryRecord], forgotten: set[str], *, asked: set[str] | None = None
) -> tuple[list[MemoryRecord], list[MemoryRecord]]:
    """Records among ``candidates`` to forget because of ``forgotten`` (to a fixpoint), and the
    derived records to keep with their forgotten sources pruned.

    A derived record goes when all its sources go, or all those that state its text
    (:func:`text_sources`); a buffer segment goes with
    any of its turns (it holds their words); a turn record goes when its segment is itself
    asked to be forgotten, in ``asked`` (default ``forgotten``; not when the segment goes for
    another turn's sake: the other turns' words were not asked for)."""
    derived = [(r, sources_of(r)) for r in candidates]
    derived = [(r, s) for r, s in derived if s]
    copies = copies_among(candidates)
    gone = set(forgotten)
    segments_asked = forgotten if asked is None else asked
    out: dict[str, MemoryRecord] = {}

    def take(record: MemoryRecord) -> None:
        gone.add(record.id)
        out[record.id] = record

    for record in candidates:
        if record.id not in gone and segment_of(record) in segments_asked:
            take(record)
    changed = True
    while changed:
        changed = False
        for record, sources in derived:
            if record.id in gone:
                continue
            stated = text_sources(record)
            if set(sources) <= gone or (stated and set(stated) <= gone):
                take(record)
                changed = True
        for record, turns in copies:
            if record.id not in gone and gone.intersection(turns):
                take(record)
                changed = True
    pruned = [r for r, s in derived if r.id not in gone and gone.intersection(s)]
    return list(out.values()), pruned


__all__ = [
    "EVOLVED_FROM",
    "TEXT_SOURCES",
    "copies_among",
    "derived_closure",
    "evolved_by",
    "evolved_from",
    "segment_of",
    "sources_of",
    "text_sources",
    "without_sources",
]
