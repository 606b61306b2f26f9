"""A note whose text was rewritten by hand (``Memory.update(id, text=...)``): its description
and links follow the new text, as they were made for the old one on add.

- :func:`redescribed`: the keywords, tags and one-line context :func:`describe` generated from
  the old text are generated again from the new one (LLM-free, as on add); what evolution
  added to them (credited in ``provenance["evolved_from"]``: keywords and tags, the context
  parts after the first) stays, and so does a description the caller or an LLM chose (one
  that is not what the rules make of the old text).
- :func:`relink`: the links the rules made from or to the note on its old text are chosen
  again: a link another note made to it stays if that note's add would still make it (typed and
  scored anew), and the note links to the notes its new text relates to as an add links
  (one index query, at most ``notes.max_links``). Links made by hand or by an LLM stay. The
  rewritten note evolves no neighbour: an update is not an add.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from agentmem.backends import Backends
from agentmem.errors import AgentMemError
from agentmem.indexing import vectors_for
from agentmem.lineage import EVOLVED_FROM
from agentmem.models import MemoryKind, MemoryRecord, content_hash
from agentmem.notes.describe import CONTEXT, KEYWORDS, TAGS, context_of, keywords_of, tags_of
from agentmem.notes.linker import (
    SEPARATOR,
    Candidate,
    LinkChoice,
    candidates_for,
    choose_links,
    merged,
    shared_terms,
)
from agentmem.representation import indexed_text
from agentmem.stores import NoteStore
from agentmem.stores._notes_sql import LinkRow

log = logging.getLogger(__name__)

RULES = "rules"
"""``made_by`` of the links the rules chose."""


def _added(provenance: dict[str, Any], key: str) -> set[str]:
    """The keywords or tags evolution added to a note (credited to the notes that added them)."""
    credits = provenance.get(EVOLVED_FROM)
    if not isinstance(credits, dict):
        return set()
    return {
        str(item)
        for credit in credits.values()
        if isinstance(credit, dict) and isinstance(credit.get(key), list)
        for item in credit[key]
    }


def redescribed(before: MemoryRecord, after: MemoryRecord, max_keywords: int) -> dict[str, Any]:
    """``after``'s metadata with the description generated from ``before``'s text and fields
    generated again from ``after``'s (see the module docstring)."""
    meta = dict(after.metadata)
    generated = (
        (KEYWORDS, keywords_of(before.text, max_keywords), keywords_of(after.text, max_keywords)),
        (TAGS, tags_of(before.metadata), tags_of(after.metadata)),
    )
    for key, old, new in generated:
        value = meta.get(key)
        if not isinstance(value, list):
            continue
        added = _added(before.provenance, key)
        own = [str(x) for x in value if str(x) not in added]
        if own == old:  # what describe() made of the old text: made again
            meta[key] = merged(new, [str(x) for x in value if str(x) in added], max_keywords)
    context = meta.get(CONTEXT)
    if isinstance(context, str) and context:
        first, *additions = context.split(SEPARATOR)
        if first == context_of(before):
            meta[CONTEXT] = SEPARATOR.join([context_of(after), *additions])
    return meta


def relink(backends: Backends, note: MemoryRecord) -> None:
    """Choose again the rules' links of a stored ``note`` whose text changed (see the module
    docstring); best-effort: a failure is logged, and the update stands."""
    settings = backends.settings.notes
    store = backends.store
    if note.kind is not MemoryKind.SEMANTIC or not settings.enabled:
        return
    if not isinstance(store, NoteStore):
        return
    try:
        _relink(backends, store, note)
    except AgentMemError as exc:
        log.warning("links of note %s not chosen again: %s", note.id, exc)


def _relink(backends: Backends, store: NoteStore, note: MemoryRecord) -> None:
    settings = backends.settings.notes
    rows = store.link_rows([note.id], note.scope)
    stale = [r for r in rows if r.made_by == RULES]
    linked = {  # notes it keeps a link with (by hand, by an LLM): the rules add none
        r.source_id if r.target_id == note.id else r.target_id for r in rows if r.made_by != RULES
    }
    vector = _vector(backends, note)
    now = time.time()
    sources = [r.source_id for r in stale]
    others = {r.id: r for r in backends.store.get_many(sources, note.scope)}
    kept: list[LinkRow] = []
    for row in stale:
        other = others.get(row.source_id)
        if row.target_id != note.id or other is None or other.id in linked:
            continue
        similarity = float(_vector(backends, other) @ vector)
        candidate = Candidate(note, similarity, shared_terms(other, note))
        for link in choose_links(other, [candidate], settings):  # other's add, made now
            kept.append(_row(other, link.target_id, link, row.created_at))
            linked.add(other.id)
    candidates = [
        c for c in candidates_for(backends, note, vector, [], settings) if c.record.id not in linked
    ]
    made = [
        _row(note, link.target_id, link, now) for link in choose_links(note, candidates, settings)
    ]
    store.link_write([*kept, *made], deletes=[(r.source_id, r.target_id) for r in stale])


def _row(source: MemoryRecord, target_id: str, link: LinkChoice, at: float) -> LinkRow:
    return LinkRow(
        source_id=source.id,
        target_id=target_id,
        scope=source.scope,
        link_type=link.type.value,
        made_by=RULES,
        reason=link.reason,
        score=link.score,
        created_at=at,
    )


def _vector(backends: Backends, record: MemoryRecord) -> Any:
    vectors, _ = vectors_for(backends, [record])
    return vectors[content_hash(indexed_text(record, backends.settings.retrieval))]


__all__ = ["redescribed", "relink"]
