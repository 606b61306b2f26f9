"""Read a semantic fact for the knowledge graph: its entity mentions, relations and concepts.

LLM-free, from what extraction stored in the fact's metadata:

- **mentions**: ``metadata["entities"]`` (people, places, things the extractor found), else the
  capitalised names of its text; the subject is typed ``person`` for attributes only people
  have, a ``lives_in`` value a ``place``, a ``works_at`` value an ``organization``;
- **relations**: ``subject --attribute--> value`` when the value is one of the entities
  (``Maya --lives_in--> Berlin``); ``Y --sister_of--> X`` for "X's sister Y"; otherwise a
  simple verb pattern between the subject and each entity after it (first verb + last
  preposition: "Caroline went to the LGBTQ group" gives ``went_to``); entities before the
  subject, or without a subject, are ``mentioned_with``;
- **validity**: each relation carries its fact's ``valid_from`` / ``valid_to`` (valid time)
  and ``created_at`` / ``invalidated_at`` (transaction time), so an invalidated fact leaves a
  relation that held until then (see :mod:`agentmem.graph.working`);
- **episodes**: the fact's ``provenance["sources"]`` link its episodes to its entities.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from agentmem.graph.model import clean_name
from agentmem.graph.relations import text_relations
from agentmem.graph.resolve import GENERIC_TYPE, normalise
from agentmem.models import MemoryRecord
from agentmem.semantic.entities import entities_in
from agentmem.semantic.text import FILLER, STOPWORDS, content_words

_PERSON_ATTRIBUTES = frozenset(
    {"lives_in", "works_at", "occupation", "married_to", "relationship_status", "age", "name"}
)
_VALUE_TYPES = {"lives_in": "place", "works_at": "organization", "married_to": "person"}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_NOT_NAMES = (
    STOPWORDS
    | FILLER
    | _words(
        """monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur
        thurs fri sat sun everyone everybody someone somebody anyone nobody stuff thing things
        something nothing everything"""
    )
)
_PREDICATE = re.compile(r"[^a-z0-9_]+")


@dataclass(frozen=True)
class Mention:
    """One entity a fact mentions: how it was written, its normalised name, a type hint."""

    surface: str
    name: str
    type: str = GENERIC_TYPE


@dataclass(frozen=True)
class FactReading:
    """What a fact says for the graph: its mentions and relations (by normalised name)."""

    mentions: tuple[Mention, ...]
    relations: tuple[tuple[str, str, str], ...]
    concepts: tuple[str, ...] = ()


def concept_words(text: str, names: Iterable[str] = ()) -> list[str]:
    """Content words of ``text`` as concept keys: lower-cased, stopwords and chat filler
    dropped, a plural ``s`` cut, words of entity ``names`` left out (they are entities)."""
    skip = {w for n in names for w in n.split()}
    out = []
    for word in sorted(content_words(text)):
        key = concept_key(word)
        if key and key not in skip and not key.isdigit():
            out.append(key)
    return list(dict.fromkeys(out))


def concept_key(word: str) -> str:
    """One word as a concept key ("walks" and "walk" are one concept)."""
    word = normalise(word)
    if len(word) <= 4 or not word.endswith("s") or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies") and len(word) > 5:
        return word[:-3] + "y"  # hobbies -> hobby
    if word.endswith(("sses", "xes", "zes", "ches", "shes")):
        return word[:-2]  # classes -> class, boxes -> box, churches -> church
    return word[:-1]  # walks -> walk


def read_fact(record: MemoryRecord) -> FactReading:
    """Mentions and relations of a fact record (see the module docstring)."""
    meta = record.metadata
    raw = meta.get("entities")
    surfaces = [e for e in raw if isinstance(e, str)] if isinstance(raw, list) else []
    if not surfaces:
        surfaces = entities_in(record.text)
    subject_raw = meta.get("subject")
    subject_name = normalise(subject_raw) if isinstance(subject_raw, str) else ""
    mentions: dict[str, Mention] = {}
    for surface in surfaces:
        cleaned = clean_name(surface)
        name = _mention_name(normalise(cleaned), subject_name)
        if name and name not in mentions:
            mentions[name] = Mention(cleaned if name == normalise(cleaned) else name, name)
    if subject_name in mentions:
        for surface in surfaces:  # the subject as it was written, not a collapsed variant
            if normalise(clean_name(surface)) == subject_name:
                mentions[subject_name] = Mention(clean_name(surface), subject_name)
                break
    attribute = meta.get("attribute") if isinstance(meta.get("attribute"), str) else None
    subject = _subject(meta.get("subject"), mentions)
    value = _value(meta.get("value"), mentions) if attribute else None
    if subject is not None:
        kind = "person" if attribute in _PERSON_ATTRIBUTES or attribute is None else GENERIC_TYPE
        if attribute and attribute.startswith(("likes:", "favourite_")):
            kind = "person"
        mentions[subject] = Mention(mentions[subject].surface, subject, kind)
    if value is not None and attribute in _VALUE_TYPES and value != subject:
        mentions[value] = Mention(mentions[value].surface, value, _VALUE_TYPES[attribute])
    attributes: list[tuple[str, str, str]] = []
    if subject is not None and value is not None and attribute is not None and value != subject:
        prefix = "ended_" if meta.get("negated") else ""
        attributes.append((subject, _predicate(prefix + attribute), value))
    relations = _relations(record.text, mentions, subject, attributes)
    concepts = concept_words(record.text, mentions)
    return FactReading(tuple(mentions.values()), tuple(relations), tuple(concepts))


def _relations(
    text: str,
    mentions: dict[str, Mention],
    subject: str | None,
    attributes: list[tuple[str, str, str]],
) -> list[tuple[str, str, str]]:
    """The attribute relation, then what the clause parser reads from the text (a pair the
    attribute already relates keeps the attribute alone), then ``mentioned_with`` for the
    entities the text names that no relation reached: from the subject when there is one,
    else between neighbours in reading order."""
    surfaces = {name: [m.surface, name] for name, m in mentions.items()}
    covered = {frozenset((s, t)) for s, _, t in attributes}
    out = list(attributes)
    for source, predicate, target in text_relations(text, surfaces):
        triple = (source, predicate, target)
        if source == target or frozenset((source, target)) in covered or triple in out:
            continue
        out.append(triple)
    related = {n for s, _, t in out for n in (s, t)}
    spots = [name for _, _, name in _positions(text, mentions)]
    loose = [n for n in spots if n not in related]
    if subject is not None and subject in spots:
        out.extend((subject, "mentioned_with", n) for n in loose if n != subject)
    elif not out:
        out.extend((a, "mentioned_with", b) for a, b in pairwise(spots))
    elif loose:
        anchor = out[0][0]
        out.extend((anchor, "mentioned_with", n) for n in loose if n != anchor)
    return out


def _mention_name(name: str, subject: str) -> str:
    """A mention's name after the clean-up rule-based extraction needs, or "" to drop it:
    a capitalised word before the subject's name is a sentence start, not part of a name
    ("Since Caroline", "Blue's Caroline" -> "caroline"); a lone stopword, chat word,
    weekday or gerund is no entity ("Everyone", "Fri", "Bringing")."""
    words = name.split()
    if not words:
        return ""
    if subject and len(words) > 1 and name.endswith(" " + subject):
        prefix = name[: -len(subject) - 1].split()
        if len(prefix) <= 2:
            return subject
    if len(words) == 1:
        word = words[0]
        if word in _NOT_NAMES or (word.endswith("ing") and len(word) > 5):
            return ""
    return name


def _subject(raw: Any, mentions: dict[str, Mention]) -> str | None:
    if not isinstance(raw, str) or not raw.strip():
        return None
    name = normalise(raw)
    if name in mentions:
        return name
    # "John's sister Anna": the last entity named in the subject phrase is the subject.
    inside = [m for m in mentions if re.search(rf"(?<!\w){re.escape(m)}(?!\w)", name)]
    if not inside:
        return None
    last = max(inside, key=lambda m: name.rfind(m))
    return last if name.endswith(last) else None


def _value(raw: Any, mentions: dict[str, Mention]) -> str | None:
    if not isinstance(raw, str):
        return None
    name = normalise(raw)
    if name in mentions:
        return name
    return next((m for m in mentions if name.startswith(m) or m.startswith(name)), None)


def _predicate(text: str) -> str:
    cleaned = _PREDICATE.sub("_", text.lower().replace(":", "_")).strip("_")
    return cleaned[:60] or "related_to"


def _positions(text: str, mentions: dict[str, Mention]) -> list[tuple[int, int, str]]:
    """(start, end, name) of the first occurrence of each mention in ``text``."""
    found: list[tuple[int, int, str]] = []
    lowered = text.casefold()
    for name, mention in mentions.items():
        for needle in (mention.surface.casefold(), name):
            at = lowered.find(needle) if needle else -1
            if at >= 0:
                found.append((at, at + len(needle), name))
                break
    return sorted(found)


__all__ = ["FactReading", "Mention", "concept_key", "concept_words", "read_fact"]
