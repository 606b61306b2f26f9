"""The English of the retriever adapter's generated questions: turns parsed into speaker,
body and content terms, and the templates that turn a first-person statement into a
third-person question ("I went to a support group yesterday" (Caroline) -> "When did Caroline
go to a support group?").

Rule-based and deterministic; :mod:`agentmem_gpu.trainsets` builds the train sets from it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from agentmem.models import MemoryRecord, as_utc

# --- parsing turns -------------------------------------------------------------------------

_SPEAKER_PREFIX = re.compile(r"^\s*([A-Z][\w .'-]{0,40}?):\s+")
WORD = re.compile(r"[A-Za-z][A-Za-z'-]*[A-Za-z]|[A-Za-z]|\d+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass
class Turn:
    index: int
    record_id: str
    text: str
    body: str
    speaker: str | None
    session: str
    when: datetime | None
    terms: list[str]
    surface: dict[str, str]
    boosted: set[str]
    keywords: list[str] = field(default_factory=list)


def parse_turns(records: Sequence[MemoryRecord]) -> list[Turn]:
    def order(r: MemoryRecord) -> tuple[str, datetime, datetime, str]:
        when = as_utc(r.event_time or r.created_at)
        return (str(r.metadata.get("session", "")), when, as_utc(r.created_at), r.id)

    # Sessions are ordered by their first turn's time, turns by time inside a session.
    ordered = sorted(records, key=order)
    first_time: dict[str, datetime] = {}
    for r in ordered:
        first_time.setdefault(order(r)[0], order(r)[1])
    ordered.sort(key=lambda r: (first_time[order(r)[0]], *order(r)))

    turns = []
    for index, r in enumerate(ordered):
        text = r.text.replace("\u2019", "'")
        speaker = r.metadata.get("speaker")
        body = text
        match = _SPEAKER_PREFIX.match(text)
        if match:
            body = text[match.end() :]
            speaker = speaker or match.group(1)
        terms, surface, boosted = _terms(body)
        turns.append(
            Turn(
                index=index,
                record_id=r.id,
                text=r.text,
                body=body,
                speaker=str(speaker).strip() if speaker else None,
                session=str(r.metadata.get("session", "")),
                when=as_utc(r.event_time) if r.event_time else None,
                terms=terms,
                surface=surface,
                boosted=boosted,
            )
        )
    return turns


def _terms(body: str) -> tuple[list[str], dict[str, str], set[str]]:
    """Content terms of a text, their first surface form, and the terms that look salient:
    capitalised inside a sentence (names, places, titles) or a noun after a determiner."""
    terms: list[str] = []
    surface: dict[str, str] = {}
    boosted: set[str] = set()
    for sentence in _SENTENCE_END.split(body):
        words = WORD.findall(sentence)
        for i, word in enumerate(words):
            term = norm_term(word)
            if term is None:
                continue
            terms.append(term)
            capitalised = word[0].isupper() and i > 0 and word.lower() != "i"
            surface.setdefault(term, word if capitalised or word.isupper() else word.lower())
            after_determiner = i > 0 and words[i - 1].lower() in _DETERMINERS
            if capitalised or after_determiner:
                boosted.add(term)
    return terms, surface, boosted


def norm_term(word: str) -> str | None:
    term = word.lower()
    if term.endswith("'s"):
        term = term[:-2]
    if term in _STOPWORDS or "'" in term:
        return None
    if term.isdigit():
        return term if len(term) == 4 else None  # years only
    return term if len(term) >= 3 else None


def keyword_questions(turn: Turn, phrase: str) -> list[str]:
    questions = [f"Who talked about {phrase}?", f"Who mentioned {phrase}?"]
    s = turn.speaker
    if s:
        questions += [
            f"What did {s} say about {phrase}?",
            f"What does {s} think about {phrase}?",
            f"How does {s} feel about {phrase}?",
            f"When did {s} talk about {phrase}?",
            f"What did {s} share about {phrase}?",
        ]
        if turn.when is not None:
            month = turn.when.strftime("%B %Y")
            questions.append(f"What did {s} mention about {phrase} in {month}?")
        if turn_places(turn):
            questions.append(f"Where did {s} talk about {phrase}?")
    return questions


def turn_places(turn: Turn) -> list[str]:
    return [m.group(2) for m in _PLACE.finditer(turn.body) if m.group(2) != turn.speaker]


_PLACE = re.compile(r"\b(in|at|to|from|near|visit(?:ed|ing)?)\s+((?:[A-Z][a-z]+\s?){1,3})")
_FIRST_PERSON = re.compile(r"\b(I|we)\s+([a-z][a-z']*)\s+(.*)", re.IGNORECASE)


def statement_questions(turn: Turn) -> list[str]:
    """Questions from the turn's first-person statements, about its speaker.

    "I went to a LGBTQ support group yesterday" (Caroline) gives "When did Caroline go to a
    LGBTQ support group?", "Did Caroline go to ...?", "What did Caroline go to?" ...; the time
    expression is dropped, as a real question asks for it.
    """
    s = turn.speaker
    if not s:
        return []
    questions: list[str] = []
    for sentence in _SENTENCE_END.split(_expand(turn.body))[:6]:
        match = _FIRST_PERSON.search(sentence)
        if not match:
            continue
        verb, rest = match.group(2).lower(), match.group(3)
        while verb in _ADVERBS and rest:
            verb, _, rest = rest.partition(" ")
            verb = verb.lower()
        rest, had_time = _drop_time(_third_person(rest))
        rest = _clip(rest)
        aux, predicate = _aux_and_predicate(verb, rest)
        if aux is None or not predicate:
            continue
        questions.append(f"{'When' if had_time or aux == 'did' else 'Why'} {aux} {s} {predicate}?")
        questions.append(f"{aux.capitalize()} {s} {predicate}?")
        if aux == "did" and rest.split(" ", 1)[0].lower() in _DETERMINERS:
            questions.append(f"What did {s} {_base(verb)}?")
        if aux in ("did", "does", "is", "was"):
            questions.append(f"How {aux} {s} {predicate}?")
        places = [p.strip() for p in turn_places(turn) if p.strip() in predicate]
        if places:
            where = predicate.replace(places[0], "").replace("  ", " ").strip()
            questions.append(f"Where {aux} {s} {_strip_preposition(where)}?")
    return questions


def _aux_and_predicate(verb: str, rest: str) -> tuple[str | None, str]:
    """The auxiliary of a third-person question and the predicate after the subject."""
    if verb in ("am", "are"):
        return "is", rest
    if verb in ("was", "were"):
        return "was", rest
    if verb in _MODALS:
        return verb, rest
    if verb in ("have", "had"):
        first = rest.split(" ", 1)[0].lower()
        if first in _PARTICIPLES or first.endswith("ed"):
            return ("has" if verb == "have" else "had"), rest
        return ("does" if verb == "have" else "did"), f"have {rest}".strip()
    if verb in ("don't", "do"):
        return "does", rest
    if verb in ("didn't", "did"):
        return "did", rest
    if verb in _NOT_VERBS or not verb.replace("'", "").isalpha():
        return None, ""
    if verb in _IRREGULAR or (verb.endswith("ed") and len(verb) > 4):
        return "did", f"{_base(verb)} {rest}".strip()
    if verb.endswith("ing") or "'" in verb:
        return None, ""
    return "does", f"{verb} {rest}".strip()


def _base(verb: str) -> str:
    """The base form of a past-tense verb, by a table of irregular verbs and simple rules."""
    if verb in _IRREGULAR:
        return _IRREGULAR[verb]
    if verb.endswith("ied"):
        return verb[:-3] + "y"
    if not verb.endswith("ed"):
        return verb
    stem = verb[:-2]
    if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in "lsz":
        return stem[:-1]  # stopped -> stop
    if stem.endswith(("v", "c", "z", "at", "ag", "ur", "iz", "ok", "ar", "ik", "ir", "os", "as")):
        return stem + "e"  # moved, danced, created, hiked
    return stem


def _expand(text: str) -> str:
    for short, long in _CONTRACTIONS.items():
        text = re.sub(rf"\b{short}\b", long, text, flags=re.IGNORECASE)
    return text


def _third_person(text: str) -> str:
    return re.sub(
        r"\b(my|me|myself|our|us|we|mine|I)\b(?!-)",
        lambda m: _PRONOUNS[m.group(1).lower() if m.group(1) != "I" else "I"],
        text,
    )


def _drop_time(text: str) -> tuple[str, bool]:
    cleaned, count = _TIME.subn("", text)
    return re.sub(r"\s{2,}", " ", cleaned).strip(" ,"), count > 0


def _clip(text: str, max_words: int = 12) -> str:
    """The first clause of ``text``, at most ``max_words`` words, without a dangling word."""
    text = _CLAUSE_END.split(text, maxsplit=1)[0]
    words = text.split()[:max_words]
    while words and words[-1].lower() in _DANGLING:
        words.pop()
    return " ".join(words)


_CLAUSE_END = re.compile(
    r"[,;:!?.()\[\]\"&]| [-\u2013\u2014] | (?:but|because|so|which|when|while|if|since|as) "
    r"| and (?:it|i|we|they|he|she|that|this|then|now)\b",
    re.IGNORECASE,
)


def _strip_preposition(text: str) -> str:
    return re.sub(r"\s+(in|at|to|from|near)$", "", text).strip()


# --- word lists ------------------------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STOPWORDS = _words(
    """a about above after again against all also am an and any are aren't as at be because
    been before being below between both but by can cannot could did do does doing don't down
    during each few for from further had has have having he her here hers herself him himself
    his how i if in into is it its itself just let's me more most my myself no nor not now of
    off on once only or other ought our ours ourselves out over own same she should so some
    such than that that's the their theirs them themselves then there these they this those
    through to too under until up very was we were what when where which while who whom why
    will with would you your yours yourself yourselves yes yeah hey hi hello oh wow ok okay
    thanks thank really lot lots much many way thing things something anything everything
    get got getting go going gonna know like just sure well even still yet one also sounds
    sound glad great good awesome amazing cool nice totally super pretty definitely hear
    see seen say said tell told make made feel felt think thought want wanted need time
    times day days today yesterday tomorrow week weeks month months year years ago lately
    recently always never every ever keep kept take took come came back new big little
    love loved happy stuff kind right around though dear man guys"""
)

_DETERMINERS = _words("a an the my our your his her their this that these those some any another")

_ADVERBS = _words(
    """just really also finally actually recently always never still already even totally
    definitely usually often sometimes once only truly absolutely"""
)

_NOT_VERBS = _words(
    "and or but too so also last all both mean guess bet agree hope wish wonder know"
)

_DANGLING = _words("and or but the a an to of for with in on at from by their them they it is was")

_MODALS = _words("will would can could should might must may")

_CONTRACTIONS = {
    "i'm": "I am",
    "i've": "I have",
    "i'll": "I will",
    "i'd": "I would",
    "we're": "we are",
    "we've": "we have",
    "we'll": "we will",
    "we'd": "we would",
}

_PRONOUNS = {
    "my": "their",
    "me": "them",
    "myself": "themselves",
    "our": "their",
    "us": "them",
    "we": "they",
    "mine": "theirs",
    "I": "they",
}

_TIME = re.compile(
    r"\b(yesterday|today|tonight|tomorrow|recently|lately|earlier|the other day|"
    r"(last|this|next|past) (week|weekend|month|year|night|summer|winter|spring|fall|"
    r"monday|tuesday|wednesday|thursday|friday|saturday|sunday)|"
    r"(a|an|one|two|three|four|five|six|few|couple of|\d+) (days?|weeks?|months?|years?) ago|"
    r"(in|on|since|during) (january|february|march|april|may|june|july|august|september|"
    r"october|november|december|\d{4}|monday|tuesday|wednesday|thursday|friday|saturday|"
    r"sunday))\b",
    re.IGNORECASE,
)

_IRREGULAR = {
    "went": "go",
    "made": "make",
    "took": "take",
    "got": "get",
    "saw": "see",
    "came": "come",
    "gave": "give",
    "found": "find",
    "felt": "feel",
    "thought": "think",
    "told": "tell",
    "said": "say",
    "bought": "buy",
    "brought": "bring",
    "began": "begin",
    "built": "build",
    "caught": "catch",
    "chose": "choose",
    "drew": "draw",
    "drove": "drive",
    "ate": "eat",
    "fell": "fall",
    "flew": "fly",
    "forgot": "forget",
    "grew": "grow",
    "heard": "hear",
    "held": "hold",
    "kept": "keep",
    "knew": "know",
    "left": "leave",
    "lost": "lose",
    "met": "meet",
    "paid": "pay",
    "ran": "run",
    "read": "read",
    "rode": "ride",
    "sang": "sing",
    "sent": "send",
    "sold": "sell",
    "spent": "spend",
    "swam": "swim",
    "taught": "teach",
    "won": "win",
    "wrote": "write",
    "wore": "wear",
    "became": "become",
    "did": "do",
    "had": "have",
    "joined": "join",
    "learnt": "learn",
    "slept": "sleep",
    "spoke": "speak",
    "stood": "stand",
    "understood": "understand",
    "woke": "wake",
    "put": "put",
    "set": "set",
    "hit": "hit",
    "cut": "cut",
    "let": "let",
    "quit": "quit",
    "threw": "throw",
    "broke": "break",
    "led": "lead",
    "fed": "feed",
    "hung": "hang",
    "lent": "lend",
    "shot": "shoot",
    "shook": "shake",
    "showed": "show",
    "tried": "try",
}

_PARTICIPLES = _words(
    """been gone done seen taken made given found thought told said bought brought begun built
    caught chosen drawn driven eaten fallen flown forgotten grown heard held kept known left
    lost met paid run read ridden sung sent sold spent swum taught won written worn become
    had joined learned learnt slept spoken stood understood put set started got gotten tried
    always never just really also finally"""
)


__all__ = [
    "WORD",
    "Turn",
    "keyword_questions",
    "norm_term",
    "parse_turns",
    "statement_questions",
    "turn_places",
]
