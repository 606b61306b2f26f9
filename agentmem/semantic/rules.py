"""The LLM-free extractor: atomic facts from an episode by rules, with no model and no network.

For each person's turn the text is split into sentences and clauses, and a clause becomes a
fact when it is a statement worth keeping:

- first-person statements ("I adopted a puppy") are rewritten in the third person with the
  speaker's name ("Maya adopted a puppy"), so a fact stands on its own;
- third-person statements about a named subject ("Alice moved to Berlin") are kept when the
  episode names no speakers (plain notes), and in a dialogue when they set an attribute;
- questions, greetings, reactions and clauses about the listener ("you") are not facts.

Dates are resolved against the time the episode was said (:func:`agentmem.timeparse.resolve_dates`)
and written into the fact ("yesterday" -> "on 7 May 2023"); the first one is the fact's event
time. Entities are capitalised spans (names, places, organisations), "the <Name> <noun>"
phrases ("the LGBTQ support group") and the speaker; a name opening a sentence counts when it
reads as the subject ("Caroline went ..."), and a third-person fact's subject is the entity it
opens with (:func:`~agentmem.semantic.entities.leading_subject`). Preferences, plans and
single-valued attributes (lives in, works at, occupation, married to, relationship status,
age, favourite X, likes X) are recognised by patterns; an attribute gives the fact a
``slot`` (subject + attribute) under which a later, different value is a contradiction.

The pieces: :mod:`agentmem.semantic.text` (sentences, clauses, third person, content words),
:mod:`agentmem.semantic.entities` (entities, the subject of a clause) and
:mod:`agentmem.semantic.slots` (attributes); this module puts them together.
"""

from __future__ import annotations

import re

import regex

from agentmem.semantic.entities import entities_in, leading_subject
from agentmem.semantic.episodes import Episode, Turn
from agentmem.semantic.schema import MAX_FACT_CHARS, ExtractedFact, FactType
from agentmem.semantic.slots import NEGATIVE, POSITIVE, find_slot, normalise_value
from agentmem.semantic.text import (
    NAME_WORD,
    content_words,
    split_clauses,
    split_sentences,
    to_third_person,
)
from agentmem.timeparse import resolve_dates

RULES_VERSION = "rules-v5"
"""v5: names in any script ("Åsa", "Émile"), with apostrophes, hyphens and a closing number
("O'Brien", "Mary-Jane", "Apollo 11"); v4: taking up a job ("started a new job as a nurse",
"took a position as an analyst at Initech"); v3: "moved from X to Y", and run-on clauses
skipped (v2: entities and subjects of third-person statements; v1: first-person turns only)."""

LONGEST_CLAUSE = 1_000
"""Clauses longer than this (characters) state no fact the rules extract: a run-on text."""


_PLAN = re.compile(
    r"\b(?:going to|gonna|planning|plan to|plans to|will|'ll|intend|intends|about to|"
    r"thinking (?:of|about)|hoping to|hope to|want to|wants to|wanna|would like to|'d like to|"
    r"would love to|'d love to|can't wait to|looking forward to|aiming to|signed up for)\b",
    re.IGNORECASE,
)


_PREFERENCE = re.compile(POSITIVE + "|" + NEGATIVE + r"|\bfavou?rite\b", re.IGNORECASE)


_PAST = re.compile(
    r"\b(?:was|were|went|did|had|got|made|took|saw|came|gave|found|met|ran|began|bought|"
    r"brought|wrote|felt|left|won|lost|spent|tried|visited|started|finished|adopted|moved|"
    r"joined|painted|used|\w{3,}ed)\b"
)


_FIRST_PERSON = re.compile(
    r"\b(?:I|I'm|I've|I'd|I'll)\b|\b(?:[Mm]e|[Mm]y|[Mm]ine|[Mm]yself|[Ww]e|[Oo]ur|us)\b"
)


_NO_SUBJECT_PLAN = re.compile(r"^(?:gonna|going to|planning to|hoping to)\b", re.IGNORECASE)


_SECOND_PERSON = re.compile(r"\b(?:you|your|you're|yours|yourself|u|ya)\b", re.IGNORECASE)


_INTERJECTION = re.compile(
    r"^(?:(?:yeah|yes|yep|yup|nope|no|oh|ah|aw+|wow|well|hey|hi|hello|ha(?:ha)+|lol|omg|ok|"
    r"okay|so|um|uh|hmm+|ugh|thanks|thank you|totally|absolutely|definitely|sure|cool|great|"
    r"nice|awesome|right|actually|honestly|anyway|anyways|by the way|btw|and|but|also|plus|"
    r"guess what|you know what|of course|oh my god|omg)\b[\s,!.\u2026-]*)+",
    re.IGNORECASE,
)


_IMAGE_CAPTION = re.compile(r"\s*\[image: [^\]]*\]")


def _fact_type(clause: str, attribute: str | None, past_date: bool) -> FactType:
    if attribute is not None and not attribute.startswith("likes:"):
        return FactType.ATTRIBUTE
    if attribute is not None or (_PREFERENCE.search(clause) and not _PLAN.search(clause)):
        return FactType.PREFERENCE
    if _PLAN.search(clause):
        return FactType.PLAN
    if past_date or _PAST.search(clause):
        return FactType.EVENT
    return FactType.STATEMENT


def _strip_vocatives(clause: str, names: set[str]) -> str:
    def is_name(word: str) -> bool:
        w = word.lower()
        return any(n == w or (len(w) >= 3 and n.startswith(w)) for n in names)

    m = regex.match(rf"^({NAME_WORD})[,!]\s+", clause)
    if m and is_name(m.group(1)):
        clause = clause[m.end() :]
    m = regex.search(rf",\s*({NAME_WORD})\s*([.!?\u2026]*)$", clause)
    if m and is_name(m.group(1)):
        clause = clause[: m.start()] + m.group(2)
    return clause


class RulesExtractor:
    """Extracts facts from an episode with rules (see the module docstring). No model, no
    network, deterministic. ``name`` goes into each fact's provenance."""

    name = "rules"
    version = RULES_VERSION

    def __init__(self, *, max_facts: int = 20, min_content_words: int = 2) -> None:
        self.max_facts = max_facts
        self.min_content_words = min_content_words

    def extract(self, episode: Episode) -> list[ExtractedFact]:
        """The facts an episode states, in order, without duplicates."""
        dialogue = len(episode.speakers) > 1 or any(
            t.speaker != episode.default_speaker for t in episode.turns
        )
        names = {s.lower() for s in episode.speakers} | {episode.default_speaker.lower()}
        facts: dict[str, ExtractedFact] = {}
        for turn in episode.turns:
            if not turn.is_person:
                continue
            for fact in self._turn_facts(turn, episode, names, dialogue=dialogue):
                key = normalise_value(fact.text)
                facts.setdefault(key, fact)
                if len(facts) >= self.max_facts:
                    return list(facts.values())
        return list(facts.values())

    def _turn_facts(
        self, turn: Turn, episode: Episode, names: set[str], *, dialogue: bool
    ) -> list[ExtractedFact]:
        speaker = turn.speaker or episode.default_speaker
        text = _IMAGE_CAPTION.sub("", turn.text)
        out: list[ExtractedFact] = []
        for sentence in split_sentences(text):
            if sentence.rstrip(" )\"'").endswith("?"):
                continue
            for clause in split_clauses(sentence):
                fact = self._clause_fact(clause, speaker, episode, names, dialogue=dialogue)
                if fact is not None:
                    out.append(fact)
        return out

    def _clause_fact(
        self, clause: str, speaker: str, episode: Episode, names: set[str], *, dialogue: bool
    ) -> ExtractedFact | None:
        if len(clause) > LONGEST_CLAUSE:
            return None  # a run-on text, not a statement (and the rules would scan all of it)
        clause = _INTERJECTION.sub("", clause).strip()
        clause = _strip_vocatives(clause, names).strip(" ,;-\u2013")
        if _NO_SUBJECT_PLAN.match(clause):
            clause = _NO_SUBJECT_PLAN.sub("I'm going to", clause, count=1)
        if clause.endswith("?") or _SECOND_PERSON.search(clause):
            return None
        slot = find_slot(clause, speaker)
        if len(clause.split()) < 3 and slot is None:
            return None
        first_person = bool(_FIRST_PERSON.search(clause))
        if not first_person:
            if dialogue and slot is None:
                return None
            if not entities_in(clause, known=names) and slot is None:
                return None
        if len(content_words(clause, ignore=names)) < self.min_content_words and slot is None:
            return None
        rewritten = to_third_person(clause, speaker) if first_person else clause
        dates = resolve_dates(rewritten, now=episode.said_at)
        for found in reversed(dates):
            rewritten = rewritten[: found.start] + found.text + rewritten[found.end :]
        rewritten = _finish(rewritten)
        if len(rewritten) > MAX_FACT_CHARS:  # rewriting lengthens it ("I" -> the speaker)
            return None
        first = dates[0] if dates else None
        past = first is not None and first.when <= episode.said_at
        subject, attribute, value, negated = slot if slot else (None, None, None, False)
        if subject is None and first_person:
            subject = speaker
        entities = entities_in(rewritten, known=names)
        if subject is None:
            subject = leading_subject(rewritten, entities)
        if first_person and speaker not in entities:
            entities.insert(0, speaker)
        owner = regex.sub(r"['\u2019]s\b.*", "", subject) if subject else None
        if owner and subject not in entities and owner not in entities:
            entities.insert(0, owner)  # "Maya's sister Ines": Maya; "O'Brien" stays whole
        return ExtractedFact(
            text=rewritten,
            subject=subject,
            entities=entities,
            event_time=first.when if first else None,
            time_phrase=first.phrase if first else None,
            time_granularity=first.granularity if first else None,
            attribute=attribute,
            value=value,
            negated=negated,
            fact_type=_fact_type(clause, attribute, past),
        )


def _finish(text: str) -> str:
    text = " ".join(text.split()).strip(" ,;-\u2013")
    text = re.sub(r"[!\u2026]+$", ".", text)
    if text and text[-1] not in ".!?\"')":
        text += "."
    return text[:1].upper() + text[1:]


__all__ = ["RULES_VERSION", "RulesExtractor"]
