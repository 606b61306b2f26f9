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
opens with (:func:`leading_subject`). Preferences, plans and single-valued attributes (lives
in, works at, occupation, married to, relationship status, age, favourite X, likes X) are
recognised by patterns; an attribute gives the fact a ``slot`` (subject + attribute) under
which a later, different value is a contradiction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from agentmem.semantic.episodes import Episode, Turn
from agentmem.semantic.schema import ExtractedFact, FactType
from agentmem.timeparse import resolve_dates

RULES_VERSION = "rules-v2"
"""v2: entities and subjects of third-person statements (v1: first-person turns only)."""


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOPWORDS = _words(
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
FILLER = _words(
    """thanks thank congrats congratulations glad happy great good nice cool awesome amazing
    fine sure sorry totally absolutely definitely sounds sound looks look seems seem think
    know guess mean agree feel hope doing going excited super pretty quite cute fun funny
    lovely wonderful fantastic incredible true right exactly love loved yes agreed same tell
    told talk talking chat chatting catch soon later bye see seeing time"""
)
_INTRO_WORDS = _words(
    """yesterday today tonight tomorrow meanwhile afterwards afterward later lately recently
    finally eventually sadly luckily fortunately unfortunately hopefully apparently suddenly
    ago earlier morning afternoon evening night week weekend month year day days weeks months
    years last next once twice two three four five six seven eight nine ten several"""
)
"""Words that open a sentence before its subject ("Yesterday Maya ran ...") without naming
anything: never an entity, and no obstacle to the name after them being the subject."""
_SENTENCE_STARTERS = (
    STOPWORDS
    | FILLER
    | _words(
        """please maybe perhaps anyway anyways btw actually honestly basically besides plus
    what how why when where who which let lets take check keep enjoy wish remember imagine"""
    )
    | _INTRO_WORDS
)
_MONTHS_DAYS = _words(
    """january february march april may june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday"""
)
_RELATIONS = (
    r"(?:best |older |younger |little |big |new |old )?(?:sister|brother|mom|mum|mother|dad|"
    r"father|wife|husband|partner|spouse|son|daughter|friend|boyfriend|girlfriend|fiancée?|"
    r"cousin|aunt|uncle|grandma|grandmother|grandpa|grandfather|boss|roommate|flatmate|"
    r"neighbou?r|kid|child|colleague|coworker|co-worker)"
)
_SUBJ = (
    r"(?P<subj>\bI\b|\b[Ww]e\b|\b(?:[Mm]y|[A-Z][a-z]+'s) " + _RELATIONS + r"(?: [A-Z][a-z]+)?"
    r"|\b[A-Z][a-z]+(?: [A-Z][a-z]+)?)"
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
_POSITIVE = (
    r"(?:love|loves|loved|like|likes|enjoy|enjoys|adore|adores|prefer|prefers|"
    r"(?:am|'m|is|'s) (?:a )?(?:big |huge |massive )?fan of|(?:am|'m|is|'s) into|"
    r"(?:am|'m|is|'s) obsessed with|(?:am|'m|is|'s) passionate about|"
    r"(?:am|'m|is|'s) keen on|(?:am|'m|is|'s) crazy about)"
)
_NEGATIVE = (
    r"(?:hate|hates|dislike|dislikes|detest|detests|can't stand|cannot stand|can not stand|"
    r"don't like|doesn't like|do not like|does not like|don't enjoy|doesn't enjoy|"
    r"no longer (?:like|likes|enjoy|enjoys|love|loves)|(?:stopped|quit) (?:liking|enjoying)|"
    r"(?:am|'m|is|'s) not (?:a )?(?:big )?fan of|(?:am|'m|is|'s) not into|"
    r"(?:am|'m|is|'s) (?:over|sick of|tired of|done with))"
)


def _p(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


# (attribute, negated, pattern) in priority order: the first match gives the fact its slot.
# Attribute names ending in ":" take the matched ``thing`` as a suffix (favourite_<thing>).
_SLOT_PATTERNS: tuple[tuple[str, bool, re.Pattern[str]], ...] = (
    (
        "works_at",
        True,
        _p(
            _SUBJ + r" " + _ADVERBS + r"(?:quit|left|lost|leaving|quitting|am leaving|'m leaving)"
            r" (?:my |her |his |their |the )?(?:job|position|role|work)s? (?:at|with) "
            r"(?P<val>[A-Z][\w&.'-]*(?: [A-Z][\w&.'-]*)*)"
        ),
    ),
    (
        "works_at",
        True,
        _p(
            _SUBJ + r" " + _ADVERBS + r"(?:no longer|don't|doesn't|do not|does not) work"
            r" (?:at|for) (?P<val>[A-Z][\w&.'-]*(?: [A-Z][\w&.'-]*)*)"
        ),
    ),
    (
        "works_at",
        False,
        _p(
            _SUBJ + _BE + r"? ?" + _ADVERBS + r"(?:work|works|working|worked) (?:at|for) "
            r"(?P<val>[A-Z][\w&.'-]*(?: [A-Z][\w&.'-]*)*)"
        ),
    ),
    (
        "works_at",
        False,
        _p(
            _SUBJ + r"(?:'ve| have| has)? " + _ADVERBS + r"(?:got|landed|started|accepted|took|"
            r"began|have|has|start|starting|joined) (?:a |an |my |her |his |the )?(?:new )?"
            r"(?:job|position|role|internship|career) (?:at|with) "
            r"(?P<val>[A-Z][\w&.'-]*(?: [A-Z][\w&.'-]*)*)"
        ),
    ),
    (
        "works_at",
        False,
        _p(
            _SUBJ + r"(?:'ve| have| has)? " + _ADVERBS + r"(?:started|began|start) working "
            r"(?:at|for) (?P<val>[A-Z][\w&.'-]*(?: [A-Z][\w&.'-]*)*)"
        ),
    ),
    (
        "works_at",
        False,
        _p(
            _SUBJ + r"(?:'ve| have| has)? " + _ADVERBS + r"joined "
            r"(?P<val>[A-Z][\w&.'-]*(?: [A-Z][\w&.'-]*)*) as an? "
        ),
    ),
    (
        "works_at",
        False,
        _p(
            _SUBJ + _BE + r" " + _ADVERBS + r"an? (?:\w+ )?" + _OCCUPATIONS + r" (?:at|for) "
            r"(?P<val>[A-Z][\w&.'-]*(?: [A-Z][\w&.'-]*)*)"
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
            + r"married to (?P<val>[A-Z][a-z]+(?: [A-Z][a-z]+)?)"
        ),
    ),
    (
        "married_to",
        False,
        _p(_SUBJ + r" " + _ADVERBS + r"married (?P<val>[A-Z][a-z]+(?: [A-Z][a-z]+)?)"),
    ),
    (
        "married_to",
        False,
        _p(
            r"(?P<subj>\b[Mm]y) (?:wife|husband|spouse)(?:'s name is|,| is| named| called) "
            r"(?P<val>[A-Z][a-z]+)"
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
            r" (?:back |over |out )?(?:to|in) (?P<val>(?:the )?[\w' -]{2,40})"
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
            r"(?P<subj>\b[Mm]y|\b[A-Z][a-z]+'s) (?:new |all[- ]time |absolute )?"
            r"favou?rite (?P<thing>[a-z]+(?: [a-z]+)?) (?:is|was|has to be|would be|are) "
            r"(?P<val>[\w' -]{2,40})"
        ),
    ),
    (
        "favourite:",
        False,
        _p(
            r"^(?P<val>[\w' -]{2,40}?) (?:is|are) (?:now |still )?(?P<subj>\b[Mm]y|"
            r"\b[A-Z][a-z]+'s) (?:new |all[- ]time |absolute )?favou?rite "
            r"(?P<thing>[a-z]+(?: [a-z]+)?)\b"
        ),
    ),
    (
        "name",
        False,
        _p(r"(?P<subj>\b[Mm]y) name is (?P<val>[A-Z][a-z]+)"),
    ),
    (
        "name",
        False,
        _p(
            r"(?P<subj>\b[Mm]y (?:\w+ )?\w+?)(?:'s name is| is called| is named| named| called) "
            r"(?P<val>[A-Z][a-z]+)"
        ),
    ),
    (
        "likes:",
        True,
        _p(_SUBJ + r" " + _ADVERBS + _NEGATIVE + r" (?P<val>[\w' -]{2,60})"),
    ),
    (
        "likes:",
        False,
        _p(_SUBJ + r" " + _ADVERBS + _POSITIVE + r" (?:to )?(?P<val>[\w' -]{2,60})"),
    ),
)

_PLAN = re.compile(
    r"\b(?:going to|gonna|planning|plan to|plans to|will|'ll|intend|intends|about to|"
    r"thinking (?:of|about)|hoping to|hope to|want to|wants to|wanna|would like to|'d like to|"
    r"would love to|'d love to|can't wait to|looking forward to|aiming to|signed up for)\b",
    re.IGNORECASE,
)
_PREFERENCE = re.compile(_POSITIVE + "|" + _NEGATIVE + r"|\bfavou?rite\b", re.IGNORECASE)
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
_ABBREVIATION = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|St|Prof|Jr|Sr|vs|etc|e\.g|i\.e|a\.m|p\.m)\.$", re.I)
_CLAUSE_BREAK = re.compile(
    r"(?:[,;:]|\s[-\u2013])\s+(?=(?:and |but |so |because |plus |since )?(?:I|I'm|I've|I'd|I'll|"
    r"[Mm]y|[Ww]e|[Ww]e're|[Ww]e've)\b)|\s+(?:and|but|so|plus)\s+(?=(?:I|I'm|I've|I'd|I'll)\b)"
)
_WORD = re.compile(r"[A-Za-z][A-Za-z'\u2019-]*")
_CAPITALISED = re.compile(
    r"\b[A-Z][\w'\u2019&.-]*(?:\s+(?:of|for|the|de|da|van|von|del|&)?\s*[A-Z][\w'\u2019&.-]*)*"
)
_ACRONYM = re.compile(r"\b[A-Z]{2,}[A-Z0-9+]*\b")

# First person -> third person. Verbs after "I" take the third-person form.
_MODALS = _words(
    "can could will would shall should may might must did didn't can't couldn't won't "
    "wouldn't shouldn't was wasn't had hadn't used ought"
)
_IRREGULAR_PAST = _words(
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
    r"literally|completely|genuinely|sincerely) )*)(?P<verb>[a-z][a-z']*)"
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
    """A sentence cut where a new first-person clause starts ("I moved and I started ...")."""
    return [c.strip(" ,;-\u2013") for c in _CLAUSE_BREAK.split(sentence) if c.strip(" ,;-\u2013")]


def _third_person(verb: str) -> str:
    lower = verb.lower()
    if lower in _THIRD_PERSON:
        return _THIRD_PERSON[lower]
    if (
        (lower in STOPWORDS and lower not in ("like", "get"))
        or lower in _MODALS
        or lower in _IRREGULAR_PAST
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
    """Rewrite first-person words as the speaker: "I love my dog" -> "Maya loves Maya's dog"."""
    s = re.sub(r"(?<![\w'])i(?=(?:'m|'ve|'d|'ll)?\b)", "I", text)
    s = re.sub(r"\bgonna\b", "going to", s)
    s = re.sub(r"\bI(?:'m| am)\b", f"{speaker} is", s)
    s = re.sub(r"\bI've\b", f"{speaker} has", s)
    s = re.sub(r"\bI'd\b", f"{speaker} would", s)
    s = re.sub(r"\bI'll\b", f"{speaker} will", s)
    s = _I_VERB.sub(lambda m: f"{speaker} {m['adv']}{_third_person(m['verb'])}", s)
    s = re.sub(r"\bI\b", speaker, s)
    s = re.sub(r"\b(?:myself|me)\b", speaker, s)
    s = re.sub(r"\b(?:[Mm]y|[Mm]ine)\b", f"{speaker}'s", s)
    s = re.sub(r"\b[Ww]e're\b", f"{speaker} and others are", s)
    s = re.sub(r"\b[Ww]e've\b", f"{speaker} and others have", s)
    s = re.sub(r"\b[Ww]e'll\b", f"{speaker} and others will", s)
    s = re.sub(r"\b[Ww]e'd\b", f"{speaker} and others would", s)
    s = re.sub(r"\b(?:[Ww]e|us|ourselves)\b", f"{speaker} and others", s)
    s = re.sub(r"\b(?:[Oo]ur|[Oo]urs)\b", f"{speaker}'s", s)
    return s


def content_words(text: str, *, ignore: Iterable[str] = ()) -> set[str]:
    """Lower-cased words of ``text`` that carry content (no stopwords or chat filler)."""
    skip = {w.lower() for w in ignore}
    words = {w.lower().strip("'\u2019-") for w in _WORD.findall(text)}
    return {
        w
        for w in words
        if len(w) > 2
        and w not in STOPWORDS
        and w not in FILLER
        and w not in skip
        and not w.endswith("'s")
    } | {w[:-2] for w in words if w.endswith("'s") and w[:-2] not in skip and len(w) > 4}


def entities_in(text: str, *, known: Iterable[str] = ()) -> list[str]:
    """Capitalised spans that name people, places, organisations or things, and acronyms.

    The first word of a sentence is a name when it is a known name, or reads as the
    sentence's subject: a verb, a possessive or an apposition follows it ("Caroline went",
    "Caroline's sister", "Ines, Maya's sister,"). A name after "the" takes the one or two
    nouns it qualifies ("the LGBTQ support group", "the Kafka project"): that is the thing
    meant, not the name alone."""
    names = {k.lower() for k in known}
    found: list[str] = []
    for sentence in split_sentences(text):
        spans: list[str] = []
        for m in _CAPITALISED.finditer(sentence):
            possessive = bool(re.search(r"['\u2019]s$", m.group(0)))
            span = re.sub(r"['\u2019]s$", "", m.group(0)).strip(" .&-")
            words = span.split()
            if not words:
                continue
            at_start = sentence[: m.start()].strip(" \"'([-") == ""
            if at_start and words[0].lower() in _SENTENCE_STARTERS:
                words = words[1:]
                span = " ".join(words)
            if not words:
                continue
            first = words[0].lower()
            if first in _SENTENCE_STARTERS or first in _MONTHS_DAYS or first == "i":
                continue
            if (
                at_start
                and len(words) == 1
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
_NOT_NOUNS = _words(
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
        or w in _INTRO_WORDS
        or w in _MODALS
        or w in _IRREGULAR_PAST
        or w.endswith(("ed", "ly", "n't"))
    )


_SUBJECT_FOLLOWERS = _words(
    """is was has had and will can are were does did would could should may might must
    lives works wants"""
)


_SUBJECT_ADVERBS = _words(
    """never also just still often always already now recently finally once even only
    sometimes usually rarely seldom soon then not"""
)


def _looks_like_subject(sentence: str, end: int) -> bool:
    """Whether a sentence-initial capitalised word reads as the sentence's subject: the word
    after it reads as its verb ("Caroline went", "Maya lives"), or an apposition follows
    ("Ines, Maya's sister, ..."; "Tomas, who ...")."""
    rest = sentence[end:]
    if re.match(r",\s+(?:who|whose|a|an|the|[A-Z][\w.]*['\u2019]s)\b", rest):
        return True
    words = rest.split()
    while len(words) > 1 and (
        words[0].lower() in _SUBJECT_ADVERBS or re.fullmatch(r"[a-z]{3,}ly", words[0])
    ):
        words = words[1:]  # "Maya never visited", "Maya finally moved"
    if not words:
        return False
    nxt = words[0].lower().strip(",.!?")
    if nxt == "and" and len(words) > 1:  # "Melanie and Caroline ...", "Leo and his son ..."
        return words[1][:1].isupper() or words[1].lower() in ("her", "his", "their", "my")
    return (
        nxt in _SUBJECT_FOLLOWERS
        or nxt in _IRREGULAR_PAST
        or (nxt.endswith(("ed", "s")) and nxt not in STOPWORDS)
    )


_INTRO = re.compile(
    r"^(?:(?:on|in|at|by|during|since|from|around|about|until|over) [^,]{1,40}, |"
    r"(?:after|before|when|while|once|as) [^,]{1,60}, |"
    r"(?:(?:"
    + "|".join(sorted(_INTRO_WORDS | {"this", "that", "the", "a", "then", "now", "so"}))
    + r"|\d+(?:st|nd|rd|th)?|[A-Z][a-z]+ \d{1,2}|"
    + "|".join(sorted(_MONTHS_DAYS))
    + r"),? )+)",
    re.IGNORECASE,
)


_NOBODY = _words("everyone everybody someone somebody anyone anybody nobody")


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
        m = re.match(
            r"['\u2019]s (?:[a-z]+ ){1,2}?(?P<head>[A-Z][\w.'-]*(?: [A-Z][\w.'-]*)*)", after
        )
        if m is not None:
            head = next((e for e in entities if m["head"].startswith(e)), None)
            return head
        if after[:1] in ("'", "\u2019"):
            return None
        return entity
    return None


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
        m = re.match(r"[A-Z][\w'.-]*(?:\s+(?:of|de|del|upon|on|am)?\s*[A-Z][\w'.-]*)*", value)
        value = m.group(0) if m else value
    words = value.split()
    if not words or len(words) > 6:
        return None
    return value


def normalise_value(value: str) -> str:
    """How attribute values are compared: lower case, no articles or punctuation."""
    v = re.sub(r"[^\w\s'-]", " ", value.lower())
    v = re.sub(r"^(?:the|a|an)\s+", "", v.strip())
    return " ".join(v.split())


def find_slot(clause: str, speaker: str) -> tuple[str, str, str, bool] | None:
    """(subject, attribute, value, negated) when the clause sets a single-valued attribute."""
    for attribute, negated, pattern in _SLOT_PATTERNS:
        m = pattern.search(clause)
        if m is None:
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
    if head in _SENTENCE_STARTERS or head in _MONTHS_DAYS:
        return None
    return raw


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

    m = re.match(r"^([A-Z][a-z]+)[,!]\s+", clause)
    if m and is_name(m.group(1)):
        clause = clause[m.end() :]
    m = re.search(r",\s*([A-Z][a-z]+)\s*([.!?\u2026]*)$", clause)
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
        if subject and subject not in entities and subject.split("'")[0] not in entities:
            entities.insert(0, subject.split("'")[0])
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


__all__ = [
    "RULES_VERSION",
    "RulesExtractor",
    "content_words",
    "entities_in",
    "find_slot",
    "leading_subject",
    "normalise_value",
    "split_clauses",
    "split_sentences",
    "to_third_person",
]
