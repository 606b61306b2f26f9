"""The LLM path of linking: one structured call per new note chooses its description, its
links and how the linked notes' context and tags change (A-MEM's note construction and
evolution in one call). An answer that does not validate (a wrong shape, an unknown candidate,
text a store refuses) raises, and the caller falls back to the rules
(:mod:`agentmem.notes.linker`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator, model_validator

from agentmem.errors import ExtractionFailed
from agentmem.models import MemoryRecord
from agentmem.notes.describe import CONTEXT, KEYWORDS, TAGS
from agentmem.notes.linker import (
    NEAR_DUPLICATE,
    Candidate,
    Evolution,
    LinkChoice,
    NotePlan,
    current_view,
    merged,
)
from agentmem.notes.model import LinkType
from agentmem.semantic.llm import LLMClient
from agentmem.semantic.prompts import Messages, Prompt
from agentmem.semantic.schema import MAX_FACT_CHARS, storable_text
from agentmem.settings import NotesSettings

_Text = Annotated[str, Field(max_length=MAX_FACT_CHARS)]


def _storable(value: Any, what: str) -> Any:
    """``value`` (a text, a list of texts or None) held to the checks of an extracted fact's
    text (:func:`~agentmem.semantic.schema.storable_text`): a NUL or a lone surrogate would be
    refused by a store or the vector index after the note was committed."""
    for text in value if isinstance(value, list) else [value]:
        if isinstance(text, str):
            storable_text(text, what)
    return value


class LinkAnswer(BaseModel):
    """One link the LLM chose: ``target`` is a candidate's number."""

    target: str
    type: LinkType = LinkType.RELATED
    reason: _Text = ""

    @field_validator("reason")
    @classmethod
    def _storable_reason(cls, value: str) -> str:
        return _storable(value, "link reason")


class UpdateAnswer(BaseModel):
    """A new context and/or tags for a linked candidate."""

    target: str
    context: _Text | None = None
    tags: list[_Text] | None = None

    @field_validator("context", "tags")
    @classmethod
    def _storable_fields(cls, value: Any, info: Any) -> Any:
        return _storable(value, f"update {info.field_name}")


class NoteAnswer(BaseModel):
    """The answer of the ``notes`` prompt."""

    keywords: list[_Text] = Field(default_factory=list)
    tags: list[_Text] = Field(default_factory=list)
    context: _Text = ""
    links: list[LinkAnswer] = Field(default_factory=list)
    updates: list[UpdateAnswer] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _known_shape(cls, data: Any) -> Any:
        """An object with none of the answer's keys (``{"related_notes": [1]}``) is malformed,
        not an answer that links nothing: it gets the repair request, then the rules."""
        if isinstance(data, dict) and not set(data) & set(cls.model_fields):
            keys = ", ".join(cls.model_fields)
            raise ValueError(f"the answer has none of the keys {keys}")
        return data

    @field_validator("keywords", "tags", "context")
    @classmethod
    def _storable_fields(cls, value: Any, info: Any) -> Any:
        return _storable(value, f"note {info.field_name}")


_SYSTEM_V1 = """You organise a memory of notes. Given a new note and existing notes that may
relate to it, answer with one JSON object:

{"keywords": [...], "tags": [...], "context": "one line on what the new note is about",
 "links": [{"target": "<number>", "type": "related|elaborates|contradicts|follows",
            "reason": "..."}],
 "updates": [{"target": "<number>", "context": "the existing note's new context line",
              "tags": [...]}]}

Link only to notes that are really related: elaborates = the new note says the same and more;
contradicts = it changes a value the old note states; follows = a later event of the same
subject. Update an existing note's context or tags only when the new note changes what it is
about; leave updates empty otherwise."""


def _notes_v1(*, note: MemoryRecord, candidates: Sequence[Candidate]) -> Messages:
    listed = [
        {
            "number": str(i + 1),
            "text": c.record.text,
            "context": c.record.metadata.get(CONTEXT, ""),
            "tags": c.record.metadata.get(TAGS, []),
            "similarity": round(c.similarity, 2),
        }
        for i, c in enumerate(candidates)
    ]
    body = {"new_note": note.text, "existing_notes": listed}
    return [
        {"role": "system", "content": _SYSTEM_V1},
        {"role": "user", "content": json.dumps(body, ensure_ascii=False, default=str)},
    ]


NOTES_V1 = Prompt("notes", 1, _notes_v1, NoteAnswer)
"""The linking and evolution prompt."""
NOTES = NOTES_V1


class LLMNoteDecider:
    """Decides a new note's description, links and neighbour updates with :data:`NOTES`."""

    def __init__(self, client: LLMClient) -> None:
        self.client = client
        self.name = client.name

    def decide(
        self,
        note: MemoryRecord,
        candidates: Sequence[Candidate],
        settings: NotesSettings,
        plan: NotePlan,
        evolved: dict[str, Evolution],
    ) -> None:
        """Fill ``plan`` from the model's answer (raises on an unusable answer)."""
        shown = list(candidates[: settings.candidates])
        answer = self.client.ask(NOTES, note=note, candidates=shown)
        assert isinstance(answer, NoteAnswer)
        by_number = {str(i + 1): c for i, c in enumerate(shown)}
        named = [a.target for a in answer.links] + [u.target for u in answer.updates]
        unknown = [t for t in named if t not in by_number]
        if unknown:
            raise ExtractionFailed(f"the notes answer names unknown candidates {unknown}")
        plan.made_by = self.name
        # The model describes the note where its caller did not (as the rules do).
        if answer.keywords and KEYWORDS not in plan.given:
            note.metadata[KEYWORDS] = merged([], answer.keywords, settings.max_keywords)
        if answer.tags and TAGS not in plan.given:
            note.metadata[TAGS] = merged([], answer.tags, settings.max_keywords)
        if answer.context.strip() and CONTEXT not in plan.given:
            note.metadata[CONTEXT] = " ".join(answer.context.split())[: settings.max_context_chars]
        for link in answer.links[: settings.max_links]:
            c = by_number[link.target]
            if c.record.id == note.id:
                continue
            reason = link.reason or link.type.value
            plan.links.append(LinkChoice(c.record.id, link.type, reason, c.similarity))
        linked = {link.target_id for link in plan.links}
        # As with the rules: never evolve a note this one contradicts or nearly duplicates.
        contradicted = {
            link.target_id for link in plan.links if link.type is LinkType.CONTRADICTS
        } | {note.metadata.get("supersedes")}
        if not settings.evolve:
            return
        for update in answer.updates:
            if len(plan.evolutions) >= settings.max_evolve_per_add:
                break
            c = by_number[update.target]
            if c.record.id not in linked or not c.stored or c.record.id in contradicted:
                continue
            if c.similarity >= NEAR_DUPLICATE:
                continue
            view = current_view(c.record, evolved)
            meta: dict[str, Any] = dict(view.metadata)
            if update.context:
                meta[CONTEXT] = " ".join(update.context.split())[: settings.max_context_chars]
            if update.tags is not None:
                meta[TAGS] = merged([], update.tags, settings.max_keywords)
            meta.setdefault(KEYWORDS, [])
            meta.setdefault(TAGS, [])
            meta.setdefault(CONTEXT, "")
            if all(meta.get(k) == view.metadata.get(k) for k in (KEYWORDS, TAGS, CONTEXT)):
                continue
            evolution = Evolution(c.record, meta, f"llm update from note {note.id}")
            evolved[c.record.id] = evolution
            plan.evolutions.append(evolution)


__all__ = ["NOTES", "NOTES_V1", "LLMNoteDecider", "LinkAnswer", "NoteAnswer", "UpdateAnswer"]
