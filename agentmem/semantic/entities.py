"""Entities in text, LLM-free: capitalised spans, acronyms and "the <Name> <noun>" phrases,
and the entity a third-person clause is about."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import regex

from agentmem.redaction import mask_placeholders
from agentmem.semantic.text import (
    FILLER,
    INTRO_WORDS,
    IRREGULAR_PAST,
    MODALS,
    MONTHS_DAYS,
    NUMBER_TAIL,
    SENTENCE_STARTERS,
    STOPWORDS,
    UPPER,
    split_sentences,
    word_set,
)

_CAPITALISED = regex.compile(
    rf"\b{UPPER}[\w'\u2019&.-]*(?:\s+(?:of|for|the|de|da|van|von|del|&)?\s*{UPPER}[\w'\u2019&.-]*)*"
    + NUMBER_TAIL
)


_ACRONYM = regex.compile(r"\b\p{Lu}{2,}[\p{Lu}0-9+]*\b")


def entities_in(text: str, *, known: Iterable[str] = ()) -> list[str]:
    """Capitalised spans that name people, places, organisations or things, and acronyms.

    The first word of a sentence is a name when it is a known name, or reads as the
    sentence's subject: a verb, a possessive or an apposition follows it ("Caroline went",
    "Caroline's sister", "Ines, Maya's sister,"). A name after "the" takes the one or two
    nouns it qualifies ("the LGBTQ support group", "the Kafka project"): that is the thing
    meant, not the name alone."""
    names = {k.lower() for k in known}
    found: list[str] = []
    for sentence in split_sentences(mask_placeholders(text)):  # "[REDACTED_EMAIL]" names none
        spans: list[str] = []
        for m in _CAPITALISED.finditer(sentence):
            possessive = bool(re.search(r"['\u2019]s$", m.group(0)))
            span = re.sub(r"['\u2019]s$", "", m.group(0)).strip(" .&-")
            words = span.split()
            if not words:
                continue
            at_start = sentence[: m.start()].strip(" \"'([-") == ""
            if at_start and words[0].lower() in SENTENCE_STARTERS:
                words = words[1:]
                span = " ".join(words)
            if not words or words[0][0].isdigit():
                continue  # "In 2023": a starter and a number, no name
            first = words[0].lower()
            if first in SENTENCE_STARTERS or first in MONTHS_DAYS or first == "i":
                continue
            if (
                at_start
                and len([w for w in words if not w[0].isdigit()]) == 1  # "Since 2020, ..."
                and span.lower() not in names
                and not possessive
                and not _looks_like_subject(sentence, m.end())
            ):
                continue
            if not possessive:
                span += _qualified_nouns(sentence, m.start(), m.end())
            spans.append(span)
        found.extend(spans)
        for m in _ACRONYM.finditer(sentence):
            acronym = m.group(0)
            if acronym in ("I", "OK", "LOL", "OMG", "TV", "BTW", "AM", "PM"):
                continue
            if any(acronym != s and re.search(rf"\b{acronym}\b", s) for s in spans):
                continue  # part of a longer name ("the LGBTQ support group")
            found.append(acronym)
    return list(dict.fromkeys(e for e in found if len(e) > 1))


_NOUN_AFTER_NAME = re.compile(r"\s+([a-z][a-z-]{2,})(?:\s+([a-z][a-z-]{2,}))?")


_NOT_NOUNS = word_set(
    """to in at on with for from about into onto by of near under over after before during
    through across around toward towards against among between and or but nor so yet than
    as while where when who whom whose which that because since until unless though"""
)


def _qualified_nouns(sentence: str, start: int, end: int) -> str:
    """The nouns a name after "the" qualifies, with a leading space (" support group" in "the
    LGBTQ support group"), else "". Verbs, adverbs and function words end the phrase."""
    if not re.search(r"\bthe\s+$", sentence[:start], re.IGNORECASE):
        return ""
    m = _NOUN_AFTER_NAME.match(sentence, end)
    if m is None:
        return ""
    nouns: list[str] = []
    for word in (m.group(1), m.group(2)):
        if word is None or not _is_noun_like(word):
            break
        nouns.append(word)
    return "".join(f" {w}" for w in nouns)


def _is_noun_like(word: str) -> bool:
    w = word.lower()
    return not (
        w in STOPWORDS
        or w in _NOT_NOUNS
        or w in FILLER
        or w in INTRO_WORDS
        or w in MODALS
        or w in IRREGULAR_PAST
        or w.endswith(("ed", "ly", "n't"))
    )


_SUBJECT_FOLLOWERS = word_set(
    """is was has had and will can are were does did would could should may might must
    lives works wants cannot"""
)


_SUBJECT_ADVERBS = word_set(
    """never also just still often always already now recently finally once even only
    sometimes usually rarely seldom soon then not"""
)


def _looks_like_subject(sentence: str, end: int) -> bool:
    """Whether a sentence-initial capitalised word reads as the sentence's subject: the word
    after it (past adverbs and "no longer") reads as its verb ("Caroline went", "Maya lives",
    "Maya doesn't", "Maya no longer lives"), or an apposition follows ("Ines, Maya's sister,
    ..."; "Tomas, who ...")."""
    rest = sentence[end:]
    if regex.match(rf",\s+(?:who|whose|a|an|the|{UPPER}[\w.]*['\u2019]s)\b", rest):
        return True
    words = rest.split()
    while len(words) > 1:
        if words[0].lower() == "no" and words[1].lower() == "longer":
            words = words[2:]  # "Maya no longer lives"
        elif words[0].lower() in _SUBJECT_ADVERBS or re.fullmatch(r"[a-z]{3,}ly", words[0]):
            words = words[1:]  # "Maya never visited", "Maya finally moved"
        else:
            break
    if not words:
        return False
    nxt = words[0].lower().strip(",.!?").replace("\u2019", "'")
    if nxt.endswith("n't"):  # "Maya doesn't live", "Maya isn't", "Maya can't"
        return True
    if nxt == "and" and len(words) > 1:  # "Melanie and Caroline ...", "Leo and his son ..."
        return words[1][:1].isupper() or words[1].lower() in ("her", "his", "their", "my")
    return (
        nxt in _SUBJECT_FOLLOWERS
        or nxt in IRREGULAR_PAST
        or (nxt.endswith(("ed", "s")) and nxt not in STOPWORDS)
    )


_INTRO = re.compile(
    r"^(?:(?:on|in|at|by|during|since|from|around|about|until|over) [^,]{1,40}, |"
    r"(?:after|before|when|while|once|as) [^,]{1,60}, |"
    r"(?:(?:"
    + "|".join(sorted(INTRO_WORDS | {"this", "that", "the", "a", "then", "now", "so"}))
    + r"|\d+(?:st|nd|rd|th)?|[A-Z][a-z]+ \d{1,2}|"
    + "|".join(sorted(MONTHS_DAYS))
    + r"),? )+)",
    re.IGNORECASE,
)


_NOBODY = word_set("everyone everybody someone somebody anyone anybody nobody")


def leading_subject(clause: str, entities: Sequence[str]) -> str | None:
    """The entity a third-person clause is about: the one it opens with, after an
    introductory time or place phrase ("On 7 May 2023, Caroline went ..." -> "Caroline").
    "X's <noun> Y ..." is about Y ("Maya's sister Ines is visiting" -> "Ines")."""
    rest = clause
    while (m := _INTRO.match(rest)) is not None and m.end() > 0:
        rest = rest[m.end() :]
    for entity in sorted(entities, key=len, reverse=True):
        if not rest.startswith(entity) or rest[len(entity) : len(entity) + 1].isalnum():
            continue
        if entity.lower() in _NOBODY or (" " not in entity and entity.endswith("ing")):
            return None  # "Everyone enjoyed ...", "Swimming helps ..."
        after = rest[len(entity) :]
        m = regex.match(
            rf"['\u2019]s (?:[a-z]+ ){{1,2}}?(?P<head>{UPPER}[\w.'-]*(?: {UPPER}[\w.'-]*)*)", after
        )
        if m is not None:
            head = next((e for e in entities if m["head"].startswith(e)), None)
            return head
        if after[:1] in ("'", "\u2019"):
            return None
        return entity
    return None


__all__ = ["entities_in", "leading_subject"]
