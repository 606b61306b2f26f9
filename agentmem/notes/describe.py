"""A note's own description, LLM-free: keywords, tags and a one-line context.

Kept in the note's metadata (``keywords``, ``tags``, ``context``); values a caller already put
there are kept. Evolution later merges keywords and tags from linked notes and appends to the
context (:mod:`agentmem.notes.linker`); a new text given by hand makes the generated ones again
(:mod:`agentmem.notes.restate`).
"""

from __future__ import annotations

from typing import Any

import regex

from agentmem.models import MemoryRecord
from agentmem.redaction import mask_placeholders
from agentmem.semantic.text import content_words, fold

_WORD = regex.compile(r"\p{L}[\p{L}\p{M}'\u2019-]+")  # any script: "jürgen", "café"

KEYWORDS, TAGS, CONTEXT = "keywords", "tags", "context"


def keywords_of(text: str, limit: int) -> list[str]:
    """The content words of ``text``, folded (:func:`~agentmem.semantic.text.fold`: "İstanbul"
    and "ISTANBUL" give "istanbul"), in order of first appearance."""
    text = mask_placeholders(text)  # "[REDACTED_EMAIL]" is no content word
    wanted = content_words(text)
    out: list[str] = []
    for word in _WORD.findall(text):
        lowered = word.lower().strip("'\u2019-")
        w = fold(lowered)
        if lowered in wanted and w not in out:
            out.append(w)
    return out[:limit]


def tags_of(metadata: dict[str, Any]) -> list[str]:
    """Category tags from what extraction recorded: fact type, attribute and subject."""
    tags = []
    for key in ("fact_type", "attribute"):
        value = metadata.get(key)
        if isinstance(value, str) and value:
            tags.append(fold(value))
    subject = metadata.get("subject")
    if isinstance(subject, str) and subject:
        tags.append(f"about:{fold(subject)}")
    return list(dict.fromkeys(tags))


def context_of(record: MemoryRecord) -> str:
    """One line saying what the note is about: its subject or entities and its kind of fact."""
    meta = record.metadata
    about = meta.get("subject") or ", ".join(str(e) for e in meta.get("entities", [])[:3])
    if not about:
        about = ", ".join(keywords_of(record.text, 3))
    kind = meta.get("fact_type") or "note"
    attribute = meta.get("attribute")
    line = f"{kind} about {about}" if about else str(kind)
    if isinstance(attribute, str) and attribute:
        line += f" ({attribute.replace('_', ' ')})"
    return line[0].upper() + line[1:] + "."


def given_fields(metadata: dict[str, Any]) -> frozenset[str]:
    """The description fields a caller already set in a note's metadata (kept as they are)."""
    given = {key for key in (KEYWORDS, TAGS) if isinstance(metadata.get(key), list)}
    if isinstance(metadata.get(CONTEXT), str) and metadata[CONTEXT]:
        given.add(CONTEXT)
    return frozenset(given)


def describe(record: MemoryRecord, max_keywords: int) -> None:
    """Give a not yet stored note its keywords, tags and context (in place; existing values
    are kept)."""
    meta = record.metadata
    given = given_fields(meta)
    if KEYWORDS not in given:
        meta[KEYWORDS] = keywords_of(record.text, max_keywords)
    if TAGS not in given:
        meta[TAGS] = tags_of(meta)
    if CONTEXT not in given:
        meta[CONTEXT] = context_of(record)


__all__ = [
    "CONTEXT",
    "KEYWORDS",
    "TAGS",
    "context_of",
    "describe",
    "given_fields",
    "keywords_of",
    "tags_of",
]
