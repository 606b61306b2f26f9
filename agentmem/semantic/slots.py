"""Single-valued attributes a clause sets, LLM-free: lives in, works at, occupation, married
to, relationship status, age, name, favourite X, likes X.

An attribute gives a fact a ``slot`` (subject + attribute) under which a later, different
value is a contradiction (:mod:`agentmem.semantic.decide`).
"""

from __future__ import annotations

import re

import regex

from agentmem.semantic.text import (
    MONTHS_DAYS,
    NAME_WORD,
    NUMBER_TAIL,
    SENTENCE_STARTERS,
    UPPER,
    content_words,
)

_RELATIONS = (
    r"(?:best |older |younger |little |big |new |old )?(?:sister|brother|mom|mum|mother|dad|"
    r"father|wife|husband|partner|spouse|son|daughter|friend|boyfriend|girlfriend|fiancée?|"
    r"cousin|aunt|uncle|grandma|grandmother|grandpa|grandfather|boss|roommate|flatmate|"
    r"neighbou?r|kid|child|colleague|coworker|co-worker)"
)


_PERSON = NAME_WORD + r"(?: " + NAME_WORD + r")?"
"""A person's name: one or two capitalised words."""


_ORG = UPPER + r"[\w&.'-]*(?: " + UPPER + r"[\w&.'-]*)*" + NUMBER_TAIL
"""A capitalised name of one or more words (a workplace: "Acme Corp", "AT&T", "Studio 54")."""


_SUBJ = (
    r"(?P<subj>\bI\b|\b[Ww]e\b|\b(?:[Mm]y|"
    + NAME_WORD
    + r"'s) "
    + _RELATIONS
    + r"(?: "
    + NAME_WORD
    + r")?|\b"
    + _PERSON
    + r")"
)


_ADVERBS = (
    r"(?:(?:just|also|still|now|currently|finally|recently|really|actually|already|"
    r"officially|happily|absolutely|totally|truly|even|only|mostly|usually|always) )*"
)


_BE = r"(?:'m|'s|'re| am| is| are| was| were)"


_VALUE_STOP = re.compile(
    r"\s*(?:[,.;!?()\[\]\"]| - | \u2013 |\bbecause\b|\bsince\b|\bbut\b|\band\b|\bwith\b|\bfor\b|"
    r"\bas\b|\bwhere\b|\bwhich\b|\bwho\b|\bthat\b|\bnow\b|\bthese days\b|\banymore\b|"
    r"\bat the moment\b|\bright now\b|\blast\b|\bnext\b|\bthis\b|\byesterday\b|\btoday\b|"
    r"\btomorrow\b|\bso much\b|\ba lot\b|\bsoon\b|\bagain\b|\btoo\b|\bas well\b|"
    r"\bin (?:19|20)\d\d\b|\bon \d|\bago\b|\bthough\b|\bhaha\b|\blol\b)"
)


_OCCUPATIONS = (
    r"(?:teacher|nurse|doctor|engineer|developer|designer|lawyer|artist|writer|student|chef|"
    r"cook|accountant|manager|counsell?or|therapist|scientist|programmer|musician|"
    r"photographer|consultant|architect|pilot|firefighter|police officer|journalist|"
    r"researcher|professor|dentist|pharmacist|veterinarian|vet|electrician|plumber|mechanic|"
    r"carpenter|farmer|barista|waiter|waitress|cashier|librarian|social worker|"
    r"data scientist|analyst|paramedic|surgeon|psychologist|painter|sculptor|actor|actress|"
    r"singer|dancer|coach|trainer|instructor|tutor|translator|editor|entrepreneur|"
    r"freelancer|intern|retiree|baker|florist|tailor|driver|soldier|officer)"
)


POSITIVE = (
    r"(?:love|loves|loved|like|likes|enjoy|enjoys|adore|adores|prefer|prefers|"
    r"(?:am|'m|is|'s) (?:a )?(?:big |huge |massive )?fan of|(?:am|'m|is|'s) into|"
    r"(?:am|'m|is|'s) obsessed with|(?:am|'m|is|'s) passionate about|"
    r"(?:am|'m|is|'s) keen on|(?:am|'m|is|'s) crazy about)"
)


NEGATIVE = (
    r"(?:hate|hates|dislike|dislikes|detest|detests|can't stand|cannot stand|can not stand|"
    r"don't like|doesn't like|do not like|does not like|don't enjoy|doesn't enjoy|"
    r"no longer (?:like|likes|enjoy|enjoys|love|loves)|(?:stopped|quit) (?:liking|enjoying)|"
    r"(?:am|'m|is|'s) not (?:a )?(?:big )?fan of|(?:am|'m|is|'s) not into|"
    r"(?:am|'m|is|'s) (?:over|sick of|tired of|done with))"
)


_NEW_JOB = (
    r"(?:got|landed|started|accepted|took|began|start|starting) (?:a |an |my |her |his |the )?"
    r"(?:new )?(?:job|position|role|internship)"
)
"""Taking up a job: "started a new job", "took a position", "landed a role"."""


_NOT_BE = r"(?:(?:'m|'s|'re| am| is| are)(?: no longer| not)| isn't| aren't)"
"""A "be" that ends or denies: "am no longer", "'m not", "isn't"."""


_NO_LONGER = r"(?:(?:'m|'s|'re| am| is| are)? no longer|(?: don't| doesn't| do not| does not))"
"""A verb's negation: "no longer (lives)", "doesn't (live)"."""


def _p(pattern: str) -> regex.Pattern[str]:
    return regex.compile(pattern)


# (attribute, negated, pattern) in priority order: the first match gives the fact its slot.
# Attribute names ending in ":" take the matched ``thing`` as a suffix (favourite_<thing>).
_SLOT_PATTERNS: tuple[tuple[str, bool, regex.Pattern[str]], ...] = (
    (
        "works_at",
        True,
        _p(
            _SUBJ + r" " + _ADVERBS + r"(?:quit|left|lost|leaving|quitting|am leaving|'m leaving)"
            r" (?:my |her |his |their |the )?(?:job|position|role|work)s? (?:at|with) "
            r"(?P<val>" + _ORG + r")"
        ),
    ),
    (
        "works_at",
        True,
        _p(
            _SUBJ + r" " + _ADVERBS + r"(?:(?:(?:is|am|are|'m|'s) )?no longer work(?:s|ing)?|"
            r"(?:don't|doesn't|do not|does not) work|(?:stopped|quit) working) (?:at|for) "
            r"(?P<val>" + _ORG + r")"
        ),
    ),
    (
        "lives_in",
        True,
        _p(
            _SUBJ
            + r"(?:"
            + _NO_LONGER
            + r" (?:live|lives|living|reside|resides|residing|based)|"
            + _NOT_BE
            + r" (?:living|residing|based)) in (?P<val>(?:the )?[\w' -]{2,40})"
        ),
    ),
    (
        "married_to",
        True,
        _p(_SUBJ + _NOT_BE + r" married to (?P<val>" + _PERSON + r")"),
    ),
    (
        "married_to",
        True,
        _p(
            _SUBJ + r"(?: got| have| has|'ve)? " + _ADVERBS + r"(?:divorced (?:from )?|"
            r"separated from |split from )(?P<val>" + _PERSON + r")"
        ),
    ),
    (
        "occupation",
        True,
        _p(_SUBJ + _NOT_BE + r" an? (?P<val>(?:[a-z]+ )?" + _OCCUPATIONS + r")\b"),
    ),
    (
        "occupation",
        True,
        _p(
            _SUBJ
            + r"(?:(?:"
            + _NO_LONGER
            + r" work|"
            + _NOT_BE
            + r" working| "
            + _ADVERBS
            + r"(?:stopped|quit) working) as| "
            + _ADVERBS
            + r"(?:stopped|quit) being) an? "
            r"(?P<val>(?:[a-z]+ )?" + _OCCUPATIONS + r")\b"
        ),
    ),
    (
        "works_at",
        False,
        _p(
            _SUBJ + _BE + r"? ?" + _ADVERBS + r"(?:work|works|working|worked) (?:at|for) "
            r"(?P<val>" + _ORG + r")"
        ),
    ),
    (
        "works_at",
        False,
        _p(
            _SUBJ + r"(?:'ve| have| has)? " + _ADVERBS + r"(?:got|landed|started|accepted|took|"
            r"began|have|has|start|starting|joined) (?:a |an |my |her |his |the )?(?:new )?"
            r"(?:job|position|role|internship|career) (?:at|with) "
            r"(?P<val>" + _ORG + r")"
        ),
    ),
    (
        "works_at",
        False,
        _p(
            _SUBJ + r"(?:'ve| have| has)? " + _ADVERBS + _NEW_JOB + r" as (?:an? )?[\w -]{2,40}? "
            r"(?:at|with) (?P<val>" + _ORG + r")"
        ),
    ),
    (
        "works_at",
        False,
        _p(
            _SUBJ + r"(?:'ve| have| has)? " + _ADVERBS + r"(?:started|began|start) working "
            r"(?:at|for) (?P<val>" + _ORG + r")"
        ),
    ),
    (
        "works_at",
        False,
        _p(
            _SUBJ + r"(?:'ve| have| has)? " + _ADVERBS + r"joined "
            r"(?P<val>" + _ORG + r") as an? "
        ),
    ),
    (
        "works_at",
        False,
        _p(
            _SUBJ + _BE + r" " + _ADVERBS + r"an? (?:\w+ )?" + _OCCUPATIONS + r" (?:at|for) "
            r"(?P<val>" + _ORG + r")"
        ),
    ),
    (
        "occupation",
        False,
        _p(
            _SUBJ + _BE + r"? ?" + _ADVERBS + r"(?:work|works|working) as an? "
            r"(?P<val>[\w -]{2,40})"
        ),
    ),
    (
        "occupation",
        False,
        _p(
            _SUBJ
            + r"(?:'ve| have| has)? "
            + _ADVERBS
            + _NEW_JOB
            + r" as (?:an? )?(?P<val>(?:[a-z]+ ){0,2}"
            + _OCCUPATIONS
            + r")\b"
        ),
    ),
    (
        "occupation",
        False,
        _p(
            _SUBJ + r"(?:" + _BE + r" " + _ADVERBS + r"| " + _ADVERBS + r"(?:became|become) )"
            r"an? (?P<val>(?:[a-z]+ )?" + _OCCUPATIONS + r")\b"
        ),
    ),
    (
        "married_to",
        False,
        _p(
            _SUBJ
            + r"(?:"
            + _BE
            + r"| got| get| am getting| 'm getting| is getting)? ?"
            + _ADVERBS
            + r"married to (?P<val>"
            + _PERSON
            + r")"
        ),
    ),
    (
        "married_to",
        False,
        _p(_SUBJ + r" " + _ADVERBS + r"married (?P<val>" + _PERSON + r")"),
    ),
    (
        "married_to",
        False,
        _p(
            r"(?P<subj>\b[Mm]y) (?:wife|husband|spouse)(?:'s name is|,| is| named| called) "
            r"(?P<val>" + NAME_WORD + r")"
        ),
    ),
    (
        "relationship_status",
        False,
        _p(
            _SUBJ + r"(?:" + _BE + r" " + _ADVERBS + r"| " + _ADVERBS + r"(?:got|just got) )"
            r"(?P<val>single|engaged|married(?! to)|divorced|separated|widowed|"
            r"in a relationship)\b"
        ),
    ),
    (
        "relationship_status",
        False,
        _p(_SUBJ + r" " + _ADVERBS + r"(?P<val>broke up)\b"),
    ),
    (
        "lives_in",
        False,
        _p(
            _SUBJ + _BE + r"? ?" + _ADVERBS + r"(?:live|lives|living|lived|reside|resides|"
            r"residing|based|settled) in (?P<val>(?:the )?[\w' -]{2,40})"
        ),
    ),
    (
        "lives_in",
        False,
        _p(
            _SUBJ + r"(?:'ve| have| has| had)? " + _ADVERBS + r"(?:moved|relocated|settled)"
            r" (?:back |over |out )?(?:from (?:the )?[\w' -]{2,40}? )?(?:to|in)"
            r" (?P<val>(?:the )?[\w' -]{2,40})"
        ),
    ),
    (
        "age",
        False,
        _p(
            _SUBJ + r"(?:'m| am| is|'s) " + _ADVERBS + r"(?P<val>\d{1,3})(?: years old| years"
            r" of age| yo)?(?:\s+(?:now|today|this year))?\s*(?:[.!,;]|$)"
        ),
    ),
    (
        "age",
        False,
        _p(_SUBJ + r"(?:'ve| have| has)? " + _ADVERBS + r"turned (?P<val>\d{1,3})\b"),
    ),
    (
        "favourite:",
        False,
        _p(
            r"(?P<subj>\b[Mm]y|\b" + NAME_WORD + r"'s) (?:new |all[- ]time |absolute )?"
            r"favou?rite (?P<thing>[a-z]+(?: [a-z]+)?) (?:is|was|has to be|would be|are) "
            r"(?P<val>[\w' -]{2,40})"
        ),
    ),
    (
        "favourite:",
        False,
        _p(
            r"^(?P<val>[\w' -]{2,40}?) (?:is|are) (?:now |still )?(?P<subj>\b[Mm]y|"
            r"\b" + NAME_WORD + r"'s) (?:new |all[- ]time |absolute )?favou?rite "
            r"(?P<thing>[a-z]+(?: [a-z]+)?)\b"
        ),
    ),
    (
        "name",
        False,
        _p(r"(?P<subj>\b[Mm]y) name is (?P<val>" + NAME_WORD + r")"),
    ),
    (
        "name",
        False,
        _p(
            r"(?P<subj>\b[Mm]y (?:\w+ )?\w+?)(?:'s name is| is called| is named| named| called) "
            r"(?P<val>" + NAME_WORD + r")"
        ),
    ),
    (
        "likes:",
        True,
        _p(_SUBJ + r" " + _ADVERBS + NEGATIVE + r" (?P<val>[\w' -]{2,60})"),
    ),
    (
        "likes:",
        False,
        _p(_SUBJ + r" " + _ADVERBS + POSITIVE + r" (?:to )?(?P<val>[\w' -]{2,60})"),
    ),
)


def _clean_value(raw: str, attribute: str) -> str | None:
    raw = re.sub(
        r"^(?:the|a|an|my|his|her|their|our|your|that|this|these|those)\s+",
        "",
        raw.strip(),
        flags=re.IGNORECASE,
    )
    value = _VALUE_STOP.split(raw, maxsplit=1)[0].strip(" '-")
    if attribute in ("lives_in",) and value[:1].isupper():
        # A place name: the capitalised span ("New York City", "Bay Area").
        m = regex.match(
            UPPER
            + r"[\w'.-]*(?:\s+(?:of|de|del|upon|on|am)?\s*"
            + UPPER
            + r"[\w'.-]*)*"
            + NUMBER_TAIL,
            value,
        )
        value = m.group(0) if m else value
    words = value.split()
    if not words or len(words) > 6:
        return None
    return value


_PAST_VERB = re.compile(r"\b(?:was|were|lived|worked|resided)\b", re.IGNORECASE)
"""The attribute's own verb in the past tense: "I lived in Paris", "I was a teacher"."""


_PAST_MARKER = re.compile(
    r"\b(?:used to|back (?:in|then|when)|when (?:I|we|you|he|she|they|\w+) (?:was|were)|"
    r"as an? (?:kid|child|teen|teenager|student|boy|girl)|growing up|ago|formerly|previously|"
    r"in (?:my|our|his|her|their) (?:teens|twenties|thirties|forties|fifties|sixties|youth|"
    r"childhood|student days))\b",
    re.IGNORECASE,
)
"""Words that put a clause in the past: "back in 2015", "when I was a kid", "years ago"."""


_CHANGE = re.compile(
    r"\b(?:now|moved|moving|relocated|settled|joined|started|starting|began|switched|"
    r"became|got|landed|accepted|took)\b",
    re.IGNORECASE,
)
"""A change that holds since: "moved to", "joined", "started", "now"."""


def _historical(clause: str, matched: str) -> bool:
    """Whether the clause states a past value ("Back in 2015 I worked at IBM", "When I was a
    kid I lived in Cork", "I lived in Paris for three years"): the attribute's verb in the
    past tense or a past marker, and no change that holds since ("moved", "joined", "now")."""
    if _CHANGE.search(clause):
        return False
    return bool(_PAST_VERB.search(matched) or _PAST_MARKER.search(clause))


def normalise_value(value: str) -> str:
    """How attribute values are compared: lower case, no articles or punctuation."""
    v = re.sub(r"[^\w\s'-]", " ", value.lower())
    v = re.sub(r"^(?:the|a|an)\s+", "", v.strip())
    return " ".join(v.split())


def find_slot(clause: str, speaker: str) -> tuple[str, str, str, bool] | None:
    """(subject, attribute, value, negated) when the clause sets a single-valued attribute
    as it is now: a clause about the past ("Back in 2015 I worked at IBM") sets none."""
    for attribute, negated, pattern in _SLOT_PATTERNS:
        m = pattern.search(clause)
        if m is None:
            continue
        if not negated and _historical(clause, m[0]):
            continue
        subject = _subject_name(m["subj"], speaker)
        if subject is None:
            continue
        name = attribute
        if attribute == "favourite:":
            name = "favourite_" + "_".join(m["thing"].lower().split())
        raw = m["val"]
        value: str | None
        if attribute == "likes:":
            obj = _clean_value(raw, attribute)
            if obj is None or not content_words(obj):
                continue
            name, value = f"likes:{normalise_value(obj)}", ("negative" if negated else "positive")
            return subject, name, value, False
        if attribute == "relationship_status" and raw == "broke up":
            value = "single"
        else:
            value = _clean_value(raw, attribute)
        if value is None:
            continue
        if attribute == "name":
            subject = _subject_name(m["subj"], speaker) or speaker
        return subject, name, value, negated
    return None


def _subject_name(raw: str, speaker: str) -> str | None:
    words = raw.split()
    head = words[0].lower()
    if head in ("i", "we"):
        return speaker
    if head == "my":
        rest = " ".join(words[1:])
        return f"{speaker}'s {rest}" if rest else speaker
    if raw.endswith("'s"):
        return raw[:-2]
    if head in SENTENCE_STARTERS or head in MONTHS_DAYS:
        return None
    return raw


__all__ = ["NEGATIVE", "POSITIVE", "find_slot", "normalise_value"]
