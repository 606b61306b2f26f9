"""Plain-text helpers of the LLM-free extractor: word lists, sentences and clauses, first
person rewritten as third, content words.

The word lists are shared by the rules that read facts (:mod:`agentmem.semantic.rules`),
entities (:mod:`agentmem.semantic.entities`) and attributes (:mod:`agentmem.semantic.slots`),
and by the knowledge graph and notes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

import regex


def word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


UPPER = r"[\p{Lu}\p{Lt}]\p{M}*"
"""A capital letter of any script (Å, É, Ł, Д), with any combining accents: a pattern for
:mod:`regex`, which the rules compile their name patterns with (:mod:`re` has no ``\\p``)."""

NAME_WORD = rf"(?:{UPPER}['\u2019])?{UPPER}[\p{{Ll}}\p{{M}}]+(?:-{UPPER}[\p{{Ll}}\p{{M}}]+)*"
"""A capitalised word that can be a name: "Maya", "Åsa", "José", "O'Brien", "Mary-Jane"."""

_COUNTED = (
    r"(?:times?|years?|months?|weeks?|days?|hours?|minutes?|seconds?|km|kilomet(?:er|re)s?|"
    r"miles?|met(?:er|re)s?|kg|kilos?|pounds?|lbs?|people|persons?|kids|children|euros?|"
    r"dollars?|percent|points?|am|pm|o'clock)"
)

NUMBER_TAIL = rf"(?:\s\d[\w-]*\b(?![.,:/]\d)(?!\s*%|\s+{_COUNTED}\b))?"
"""The number a name ends with ("Apollo 11", "Room 101", "Windows 10"): a number that counts
or measures ("Paris 3 times", "Acme 5 years ago"), a decimal or a time is not part of it."""


STOPWORDS = word_set(
    """a about above after again against all also am an and any are aren't as at be because
    been before being below between both but by can can't cannot could couldn't did didn't do
    does doesn't doing don't down during each even ever every few for from further get gets
    got had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers
    herself him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its
    itself just let's like lot lots me more most much must mustn't my myself no nor not now of
    off on once one only or other ought our ours ourselves out over own really same she she'd
    she'll she's should shouldn't so some still such than that that's the their theirs them
    themselves then there there's these they they'd they'll they're they've thing things this
    those through to too under until up upon us very was wasn't way we we'd we'll we're we've
    well were weren't what what's when when's where where's which while who who's whom why
    why's will with won't would wouldn't yet you you'd you'll you're you've your yours yourself
    yourselves gonna wanna gotta kinda sorta yeah yes yep yup oh ah aw wow hey hi hello haha lol
    omg ok okay um uh hmm ugh"""
)


FILLER = word_set(
    """thanks thank congrats congratulations glad happy great good nice cool awesome amazing
    fine sure sorry totally absolutely definitely sounds sound looks look seems seem think
    know guess mean agree feel hope doing going excited super pretty quite cute fun funny
    lovely wonderful fantastic incredible true right exactly love loved yes agreed same tell
    told talk talking chat chatting catch soon later bye see seeing time"""
)


INTRO_WORDS = word_set(
    """yesterday today tonight tomorrow meanwhile afterwards afterward later lately recently
    finally eventually sadly luckily fortunately unfortunately hopefully apparently suddenly
    ago earlier morning afternoon evening night week weekend month year day days weeks months
    years last next once twice two three four five six seven eight nine ten several"""
)
"""Words that open a sentence before its subject ("Yesterday Maya ran ...") without naming
anything: never an entity, and no obstacle to the name after them being the subject."""


SENTENCE_STARTERS = (
    STOPWORDS
    | FILLER
    | word_set(
        """please maybe perhaps anyway anyways btw actually honestly basically besides plus
    what how why when where who which let lets take check keep enjoy wish remember imagine"""
    )
    | INTRO_WORDS
)


MONTHS_DAYS = word_set(
    """january february march april may june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday"""
)


_ABBREVIATION = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|St|Prof|Jr|Sr|vs|etc|e\.g|i\.e|a\.m|p\.m)\.$", re.I)


_CLAUSE_BREAK = re.compile(
    r"(?:[,;:]|\s[-\u2013])\s+(?=(?:and |but |so |because |plus |since )?(?:I|I'm|I've|I'd|I'll|"
    r"[Mm]y|[Ww]e|[Ww]e're|[Ww]e've)\b)|\s+(?:and|but|so|plus)\s+(?=(?:I|I'm|I've|I'd|I'll)\b)"
)


_OWNERS = word_set("my our his her their")
_NOT_NAMES = "|".join(regex.escape(w) for w in sorted(SENTENCE_STARTERS - INTRO_WORDS - _OWNERS))
_NAME = rf"(?!(?i:{_NOT_NAMES})\b){NAME_WORD}"
"""A capitalised word that is no chat word opening a sentence ("Thanks", "Sorry", "Honestly")."""
_NOUN_PHRASE = (
    rf"(?:(?i:{'|'.join(sorted(_OWNERS))})\s+\p{{Ll}}+(?:\s+{_NAME})?|{_NAME}(?:\s+{_NAME})*)"
)
_CO_SUBJECTS = (
    rf"(?:(?i:{'|'.join(sorted(INTRO_WORDS | MONTHS_DAYS | {'on', 'in', 'at'}))}),?\s+)*"
    rf"{_NOUN_PHRASE}(?:\s*,\s*{_NOUN_PHRASE})*,?"
)
"""Names or "my <noun>" phrases, after introductory time words: what can stand before "and I"
as the speaker's co-subjects ("Tom and I", "Yesterday my sister and I", "Tom, Zoe and I")."""

_JOINED_I = regex.compile(rf"(?P<with>{_CO_SUBJECTS})\s+and\s+(?P<i>I)\b")


def _joins_subjects(before: str, separator: str, after: str) -> bool:
    """Whether a clause break would cut "<co-subjects> and I <verb>" apart: the clause so far
    (``before``) is only co-subjects, and "and" joins them to "I"."""
    joined = separator.strip() == "and" or after.startswith("and ")
    return joined and regex.fullmatch(_CO_SUBJECTS, before.strip()) is not None


_WORD = regex.compile(r"\p{L}[\p{L}\p{M}'\u2019-]*")
"""A word of any script ("Jürgen", "café", "O'Brien"), never cut at a non-ASCII letter."""


# First person -> third person. Verbs after "I" take the third-person form.
MODALS = word_set(
    "can could will would shall should may might must did didn't can't couldn't won't "
    "wouldn't shouldn't was wasn't had hadn't used ought"
)


IRREGULAR_PAST = word_set(
    """went was had did made got saw took came gave found thought told felt left bought
    brought ran began wrote read met kept sat stood spent lost won paid sent built taught
    caught fell drove ate drank swam sang put set cut hit let hurt quit knew grew threw flew
    drew wore chose spoke broke forgot woke rode hid held heard meant led fed slept became
    understood said sold shot shut spread stuck struck swore tore won wound"""
)


_THIRD_PERSON = {
    "have": "has",
    "do": "does",
    "don't": "doesn't",
    "haven't": "hasn't",
    "go": "goes",
    "am": "is",
    "be": "is",
    "wanna": "wants to",
    "gotta": "has to",
    "gonna": "is going to",
}


_I_VERB = re.compile(
    r"\bI (?P<adv>(?:(?:just|also|still|now|currently|finally|recently|really|actually|"
    r"already|absolutely|totally|truly|even|only|mostly|usually|always|never|often|sometimes|"
    r"definitely|honestly|personally|seriously|kinda|kind of|sort of|probably|generally|"
    r"especially|mainly|simply|barely|hardly|rarely|seldom|occasionally|obviously|"
    r"literally|completely|genuinely|sincerely|no longer|no more) )*)(?P<verb>[a-z][a-z']*)"
)


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` (split after . ! ? and ellipses, and at line breaks; common
    abbreviations are kept whole)."""
    pieces = [p for p in re.split(r"(?<=[.!?\u2026])\s+|\n+", text) if p.strip()]
    sentences: list[str] = []
    for piece in pieces:
        if sentences and _ABBREVIATION.search(sentences[-1]):
            sentences[-1] = f"{sentences[-1]} {piece.strip()}"
        else:
            sentences.append(piece.strip())
    return sentences


def split_clauses(sentence: str) -> list[str]:
    """A sentence cut where a new first-person clause starts ("I moved and I started ..."),
    not inside a subject the speaker shares ("Tom and I went ...")."""
    pieces: list[str] = []
    start = 0
    for m in _CLAUSE_BREAK.finditer(sentence):
        if _joins_subjects(sentence[start : m.start()], m.group(0), sentence[m.end() :]):
            continue
        pieces.append(sentence[start : m.start()])
        start = m.end()
    pieces.append(sentence[start:])
    return [c.strip(" ,;-\u2013") for c in pieces if c.strip(" ,;-\u2013")]


def _third_person(verb: str) -> str:
    lower = verb.lower()
    if lower in _THIRD_PERSON:
        return _THIRD_PERSON[lower]
    if (
        (lower in STOPWORDS and lower not in ("like", "get"))
        or lower in MODALS
        or lower in IRREGULAR_PAST
        or lower.endswith(("ed", "n't", "'d"))
        or "'" in lower
    ):
        return verb
    if lower.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    if len(lower) > 2 and lower.endswith("y") and lower[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def to_third_person(text: str, speaker: str) -> str:
    """Rewrite first-person words as the speaker: "I love my dog" -> "Maya loves Maya's dog".
    Typographic apostrophes (U+2019, as phones type "I'm" and "don't") are written as "'"
    first, so the contractions read the same either way."""
    s = text.replace("\u2019", "'")
    s = re.sub(r"(?<![\w'])i(?=(?:'m|'ve|'d|'ll)?\b)", "I", s)
    if (joined := _JOINED_I.match(s)) is not None:  # "Tom and I go": the verb stays plural
        s = s[: joined.start("i")] + speaker + s[joined.end("i") :]
    s = re.sub(r"\bgonna\b", "going to", s)
    s = re.sub(r"\bI(?:'m| am)\b", f"{speaker} is", s)
    s = re.sub(r"\bI've\b", f"{speaker} has", s)
    s = re.sub(r"\bI'd\b", f"{speaker} would", s)
    s = re.sub(r"\bI'll\b", f"{speaker} will", s)
    s = _I_VERB.sub(lambda m: f"{speaker} {m['adv']}{_third_person(m['verb'])}", s)
    s = re.sub(r"\bI\b", speaker, s)
    s = re.sub(r"\b(?:[Mm]yself|[Mm]e)\b", speaker, s)  # "Me and Tom went ..."
    s = re.sub(r"\b(?:[Mm]y|[Mm]ine)\b", f"{speaker}'s", s)
    s = re.sub(r"\b[Ww]e're\b", f"{speaker} and others are", s)
    s = re.sub(r"\b[Ww]e've\b", f"{speaker} and others have", s)
    s = re.sub(r"\b[Ww]e'll\b", f"{speaker} and others will", s)
    s = re.sub(r"\b[Ww]e'd\b", f"{speaker} and others would", s)
    s = re.sub(r"\b(?:[Ww]e|us|ourselves)\b", f"{speaker} and others", s)
    s = re.sub(r"\b(?:[Oo]ur|[Oo]urs)\b", f"{speaker}'s", s)
    return s


# A character of these scripts is a syllable or a morpheme, not a letter: most Chinese and
# Korean words and names ("华为", "李雷", "삼성") are two characters long.
_SYLLABIC = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]")


def _long_enough(word: str) -> bool:
    """Longer than two letters, or two characters of a syllabic (CJK) script."""
    return len(word) > 2 or (len(word) == 2 and _SYLLABIC.search(word) is not None)


def fold(text: str) -> str:
    """``text`` as words and names are compared, whatever their case and however they were
    typed: NFKC, case-folded, in NFC. Case folding decomposes a few letters ("İ" -> "i" +
    U+0307, "ǰ" -> "j" + U+030C): NFC puts back those that compose; the Turkish dot, which
    does not, goes, so "İstanbul", "istanbul" and "ISTANBUL" fold alike."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return unicodedata.normalize("NFC", folded).replace("i\u0307", "i")


def content_words(text: str, *, ignore: Iterable[str] = ()) -> set[str]:
    """Lower-cased words of ``text`` that carry content (no stopwords or chat filler)."""
    skip = {w.lower() for w in ignore}
    words = {w.lower().strip("'\u2019-") for w in _WORD.findall(text)}
    return {
        w
        for w in words
        if _long_enough(w)
        and w not in STOPWORDS
        and w not in FILLER
        and w not in skip
        and not w.endswith("'s")
    } | {w[:-2] for w in words if w.endswith("'s") and w[:-2] not in skip and _long_enough(w[:-2])}


__all__ = [
    "FILLER",
    "INTRO_WORDS",
    "IRREGULAR_PAST",
    "MODALS",
    "MONTHS_DAYS",
    "NAME_WORD",
    "NUMBER_TAIL",
    "SENTENCE_STARTERS",
    "STOPWORDS",
    "UPPER",
    "content_words",
    "fold",
    "split_clauses",
    "split_sentences",
    "to_third_person",
    "word_set",
]
