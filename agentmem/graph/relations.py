"""Relations between the entities of one fact, read from its text by a shallow clause parser.

LLM-free and model-free: English word order does most of the work. A fact's text is cut
into clauses; in each clause the entity that opens it (after an introductory time or place
phrase) is the subject, the first word after the subject (past auxiliaries and adverbs) is
the verb, and every entity after the verb is an argument, joined by the verb and the
preposition right before it:

- "Caroline went to the LGBTQ support group with Melanie." ->
  ``caroline --went_to--> lgbtq support group``, ``caroline --went_with--> melanie``;
- "X's <noun> Y" and "X, Y's <noun>," -> ``y --<noun>_of--> x`` (Y then plays X's part), and
  "his/her/their <noun> Y" the same with the clause's subject as X;
- "Tomas asked Maya to lead the Kafka project": "to" + verb after an object makes the
  object the subject of the new verb (``tomas --asked--> maya``, ``maya --lead--> kafka
  project``);
- "Melanie and Caroline painted ...": co-subjects share the verb's relations and are joined
  by ``<verb>_with`` (not under a negation: "Maya and Tom no longer live in Oslo");
- a copula takes the noun before the preposition ("Berlin is the capital of Germany" ->
  ``capital_of``; "Tomas has been at Northwind" -> ``at``), a passive keeps its "by"
  ("was designed by" -> ``designed_by``), a negation prefixes ``not_``;
- "Sofia works at Nokia but lives in Tallinn": a conjunction before a verb starts a clause
  with the same subject; a comma or conjunction before a new subject and verb starts a new
  clause ("Maya moved to Eastgate, and Tomas moved to Westbrook"; "..., and her friend Zoe
  lives in Berlin"); so does a possessed subject with no name ("and Maya's brother works at
  Acme"), and that clause relates nothing: its subject is no entity.

What the parser cannot place (no subject, an entity in an introductory phrase) it leaves
out; :func:`agentmem.graph.fact_reading.read_fact` links such entities to the fact's subject (or to
each other) with ``mentioned_with`` so the graph stays connected.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from agentmem.semantic.text import STOPWORDS

Triple = tuple[str, str, str]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


PREPOSITIONS = _words(
    """to in at on with for from about into onto by of near under over after before during
    through across around toward towards against among between behind beside inside outside
    via without within"""
)
_AUXILIARIES = _words(
    """is was are were am be been being has have had do does did will would can could shall
    should may might must 's 're 've 'd 'll"""
)
_COPULAS = _words("is was are were am be been being 's 're")
_ADVERBS = _words(
    """also really just still even already always often finally recently actually
    definitely probably now then very so too soon once again sometimes usually currently
    mostly only happily officially together"""
)
_NEGATIONS = _words("not never no")
_DETERMINERS = _words(
    """a an the this that these those some any every each another his her their its my our
    your him them it us me you whose which what"""
)
_POSSESSIVE_PRONOUNS = _words("his her their")
_RELATIVES = _words("who whom whose which that where")
_COORDINATORS = _words("and but then or")
_NOT_NOUNS = PREPOSITIONS | _RELATIVES | _COORDINATORS | _DETERMINERS
_INTRO = _words(
    """yesterday today tonight tomorrow meanwhile afterwards afterward later lately recently
    finally eventually sadly luckily fortunately unfortunately hopefully apparently suddenly
    ago earlier morning afternoon evening night week weekend month year day days weeks months
    years last next this that the a an once twice one two three four five six seven eight
    nine ten several few couple of so and but then now also well january february march
    april may june july august september october november december monday tuesday
    wednesday thursday friday saturday sunday"""
)
_NOT_INFINITIVES = _words(
    """school work church bed class college university town dinner lunch breakfast practice
    therapy court home"""
)
_IRREGULAR_PAST = _words(
    """went was had did made got saw took came gave found thought told felt left bought
    brought ran began wrote read met kept sat stood spent lost won paid sent built taught
    caught fell drove ate drank swam sang put set cut hit let hurt quit knew grew threw flew
    drew wore chose spoke broke forgot woke rode hid held heard meant led fed slept became
    understood said sold shot shut spread stuck struck swore tore"""
)
_TOKEN = re.compile(r"[^\W_][\w'\u2019-]*|[.,;:!?()\u2013\u2014]")
_END = frozenset(".;!?:()")


@dataclass(frozen=True)
class Token:
    """A word (lower case), a punctuation mark, an entity occurrence or a possessive 's."""

    kind: str  # "word", "punct", "ent", "poss"
    text: str


def tokens(text: str, surfaces: Mapping[str, list[str]]) -> list[Token]:
    """``text`` as tokens, each occurrence of an entity (any of its surfaces, longest first,
    case-insensitive, whole words) one ``ent`` token carrying the entity's name."""
    spans: list[tuple[int, int, str]] = []
    lowered = text.casefold()
    for name, forms in surfaces.items():
        for form in {f.casefold() for f in forms if f}:
            for m in re.finditer(rf"(?<![\w'\u2019]){re.escape(form)}(?!\w)", lowered):
                spans.append((m.start(), m.end(), name))
    spans.sort(key=lambda s: (s[0], -(s[1] - s[0])))
    chosen: list[tuple[int, int, str]] = []
    for span in spans:
        if not chosen or span[0] >= chosen[-1][1]:
            chosen.append(span)
    out: list[Token] = []
    at = 0
    for start, end, name in [*chosen, (len(text), len(text), "")]:
        for m in _TOKEN.finditer(text, at, start):
            word = m.group(0).replace("\u2019", "'")
            out.append(Token("punct" if m.group(0) in ".,;:!?()\u2013\u2014" else "word", word))
        if not name:
            break
        out.append(Token("ent", name))
        at = end
        poss = re.match(r"['\u2019]s?(?!\w)", text[at:])
        if poss is not None:
            out.append(Token("poss", "'s"))
            at += poss.end()
    return [_lower(t) for t in out]


def _lower(token: Token) -> Token:
    return Token(token.kind, token.text.lower()) if token.kind == "word" else token


def _verb_like(word: str) -> bool:
    """Whether a word right after a subject or conjunction reads as a finite verb (a negated
    auxiliary too: "doesn't", "isn't", "cannot")."""
    return (
        word in _AUXILIARIES
        or word in _IRREGULAR_PAST
        or word.endswith("n't")
        or word == "cannot"
        or (len(word) > 3 and word.endswith(("ed", "s")) and word not in STOPWORDS)
    )


def _predicate(*parts: str | None) -> str:
    words = [p for p in parts if p]
    text = "_".join(words)
    return re.sub(r"[^a-z0-9_]+", "_", text).strip("_")[:60]


@dataclass
class _Clause:
    """The parse state of one clause."""

    subjects: list[str] = field(default_factory=list)
    verb: str | None = None
    copula: bool = False
    negated: bool = False
    noun: str | None = None  # the last content word after a copula ("capital" of)
    preposition: str | None = None
    sources: list[str] = field(default_factory=list)
    last_object: str | None = None
    intro_preposition: bool = False
    blocked: bool = False  # words before any subject: a verb with no named subject

    @property
    def has_verb(self) -> bool:
        return self.verb is not None or self.copula

    def predicate(self) -> str:
        head = self.verb if self.verb is not None else self.noun
        if self.verb is not None and self.copula and self.verb not in PREPOSITIONS:
            head = self.verb  # a passive or progressive: "was hired", "is visiting"
        return _predicate("not" if self.negated else None, head, self.preposition)


class _Parser:
    def __init__(self, toks: list[Token]) -> None:
        self.toks = toks
        self.out: list[Triple] = []
        self.previous_subjects: list[str] = []
        self.new_clause = False

    def relate(self, source: str, predicate: str, target: str) -> None:
        if source != target and predicate:
            self.out.append((source, predicate, target))

    def peek(self, i: int) -> Token | None:
        return self.toks[i] if i < len(self.toks) else None

    def negation(self, i: int) -> int:
        """How many words from ``i`` negate the verb: "not", "never", "doesn't", "cannot"
        (1), "no longer" (2), else 0."""
        t, nxt = self.peek(i), self.peek(i + 1)
        if t is None or t.kind != "word":
            return 0
        if t.text == "no" and nxt is not None and nxt.text == "longer":
            return 2
        return int(t.text in _NEGATIONS or t.text.endswith("n't") or t.text == "cannot")

    def starts_clause(self, i: int) -> bool:
        """Whether tokens from ``i`` read as a new subject and its verb (after intro words);
        the subject may be possessed: "Maya's friend Zoe lives", "her friend Zoe lives"."""
        while (t := self.peek(i)) is not None and t.kind == "word" and t.text in _INTRO:
            i += 1
        t, nxt = self.peek(i), self.peek(i + 1)
        if t is not None and t.kind == "word" and t.text in _POSSESSIVE_PRONOUNS:
            if self.unnamed_subject(i + 1):
                return True  # "her brother works": a subject with no name
            i += 2  # "her friend Zoe": Zoe is the subject
        elif t is not None and t.kind == "ent" and nxt is not None and nxt.kind == "poss":
            _, owned, j = self.possessed(i + 2)
            if owned is not None:
                i = j - 1  # "Maya's friend Zoe": Zoe is the subject
            elif self.unnamed_subject(i + 2):
                return True  # "Maya's brother works"
        t = self.peek(i)
        if t is None or t.kind != "ent":
            return False
        i += 1
        while (nxt := self.peek(i)) is not None and nxt.kind == "word" and nxt.text in _ADVERBS:
            i += 1
        return self.negation(i) > 0 or (
            nxt is not None and nxt.kind == "word" and _verb_like(nxt.text)
        )

    def unnamed_subject(self, i: int) -> bool:
        """Whether tokens from ``i`` (after "Maya's" or "her") read as a noun phrase with no
        name and then its verb: "brother works", "little brother has", "sister no longer",
        and a plural's plain verb before its argument: "parents live in", "kids love Acme"."""
        for j in range(i + 1, i + 4):  # one to three words of noun phrase
            before, t = self.peek(j - 1), self.peek(j)
            if before is None or before.kind != "word" or before.text in _NOT_NOUNS:
                return False
            if t is None or t.kind != "word":
                return False
            if self.negation(j) or (_verb_like(t.text) and t.text not in _NOT_NOUNS):
                return True
            after = self.peek(j + 1)
            if (
                before.text.endswith("s")
                and t.text.isalpha()
                and t.text not in _NOT_NOUNS | STOPWORDS | _INTRO | _ADVERBS
                and after is not None
                and (after.kind == "ent" or after.text in PREPOSITIONS | _DETERMINERS)
            ):
                return True
        return False

    def run(self) -> list[Triple]:
        clause = _Clause()
        i = 0
        toks = self.toks
        while i < len(toks):
            t = toks[i]
            if t.kind == "punct":
                if t.text in _END or (
                    t.text == "," and clause.has_verb and self.starts_clause(i + 1)
                ):
                    clause = self.close(clause)
                elif t.text == "," and not clause.subjects and not clause.has_verb:
                    clause.intro_preposition = False  # "In Paris, Maya met ..."
                elif t.text == "," and clause.subjects and not clause.has_verb:
                    i = self.aside(clause, i + 1)
                    continue
                elif t.text == "," and clause.has_verb and clause.last_object:
                    nxt = self.peek(i + 1)
                    if nxt is not None and nxt.text in (_RELATIVES | {"a", "an", "the"}):
                        i = self.skip_to_comma(i + 1)
                        continue
                i += 1
                continue
            if t.kind == "poss":
                i += 1
                continue
            if t.kind == "ent":
                i = self.entity(clause, i)
                continue
            i = self.word(clause, i)
            if self.new_clause:
                self.new_clause = False
                clause = self.close(clause)
        self.close(clause)
        return self.out

    def close(self, clause: _Clause) -> _Clause:
        if clause.subjects:
            self.previous_subjects = list(clause.subjects)
        return _Clause()

    def skip_to_comma(self, i: int) -> int:
        while (t := self.peek(i)) is not None and not (t.kind == "punct" and t.text != "'"):
            i += 1
        return i + 1 if t is not None and t.text == "," else i

    def possessed(self, i: int) -> tuple[str | None, str | None, int]:
        """After ``X's`` at ``i``: (noun, entity Y, next index) for "X's <noun> Y", or (noun,
        None, index after the noun phrase) when no entity follows the noun phrase."""
        nouns: list[str] = []
        j = i
        while (t := self.peek(j)) is not None and t.kind == "word" and len(nouns) < 3:
            if t.text in PREPOSITIONS or t.text in _AUXILIARIES or t.text in _RELATIVES:
                break
            nouns.append(t.text)
            j += 1
        t = self.peek(j)
        noun = nouns[-1] if nouns else None
        if t is not None and t.kind == "ent" and nouns:
            return noun, t.text, j + 1
        return noun, None, j

    def entity(self, clause: _Clause, i: int) -> int:
        """Place the entity at ``i`` (and a possessive after it); the next index."""
        name = self.toks[i].text
        nxt = self.peek(i + 1)
        i += 1
        if nxt is not None and nxt.kind == "poss":
            noun, owned, j = self.possessed(i + 1)
            if owned is not None:
                self.relate(owned, _predicate(noun, "of"), name)
                self.place(clause, owned)
                return j
            if noun is not None and clause.copula and clause.verb is None and clause.subjects:
                for subject in clause.subjects:  # "Pepper is Maya's rescue greyhound"
                    self.relate(subject, _predicate(noun, "of"), name)
                return j
            if noun is None:
                self.place(clause, name)
            # else "visited Ava's parents": the parents are the argument, not Ava
            return j
        self.place(clause, name)
        return i

    def place(self, clause: _Clause, name: str) -> None:
        """An entity as subject, co-subject or argument of the clause's verb."""
        if not clause.has_verb:
            if clause.blocked:
                return
            if not clause.subjects:
                if clause.intro_preposition:
                    clause.intro_preposition = False
                    return  # "In Paris, ...": an adjunct, not the subject
                clause.subjects = [name]
            elif name not in clause.subjects:
                clause.subjects.append(name)  # "Melanie and Caroline ..."
            clause.sources = list(clause.subjects)
            return
        for source in clause.sources:
            self.relate(source, clause.predicate(), name)
        clause.last_object = name
        clause.preposition = None
        clause.noun = None

    def aside(self, clause: _Clause, i: int) -> int:
        """ "Ines, Maya's sister, lives ..." / "Tomas, who has worked at Northwind, ...":
        an apposition or relative clause about the subject, up to the next comma."""
        inner = _Clause(subjects=list(clause.subjects), sources=list(clause.subjects))
        inner.copula = True
        while (t := self.peek(i)) is not None and not (t.kind == "punct" and t.text == ","):
            if t.kind == "punct" and t.text in _END:
                return i
            if t.kind == "ent":
                nxt = self.peek(i + 1)
                if nxt is not None and nxt.kind == "poss":
                    noun, owned, j = self.possessed(i + 2)
                    if owned is None and noun is not None:
                        for subject in clause.subjects:
                            self.relate(subject, _predicate(noun, "of"), t.text)
                        i = j
                        continue
                i = self.entity(inner, i)
                continue
            if t.kind == "word" and t.text in _RELATIVES:
                inner.copula = False  # "who grew up in Cairo": a verb follows
                i += 1
                continue
            i = self.word(inner, i)
        return i + 1

    def word(self, clause: _Clause, i: int) -> int:
        """Read word ``i`` into the clause; the index of the next token to read."""
        if not clause.has_verb:
            return self.before_verb(clause, i)
        return self.after_verb(clause, i)

    def before_verb(self, clause: _Clause, i: int) -> int:
        """A word before the clause's verb: an introductory phrase, a co-subject, the verb."""
        w = self.toks[i].text
        if not clause.subjects:
            if w in PREPOSITIONS:
                clause.intro_preposition = True
                return i + 1
            if w not in _DETERMINERS:
                # "On 7 May 2023 Caroline ...": the preposition had its object
                clause.intro_preposition = False
            if w in _POSSESSIVE_PRONOUNS and self.pronoun_possessive(clause, i):
                return i + 2  # "his brother Mark met ...": Mark is still the subject
            elif w not in _INTRO and w not in _DETERMINERS and not w.isdigit():
                clause.blocked = True  # "Swimming helps Oscar ...", "We loved Paris"
                clause.verb = w
            return i + 1
        if w == "and":
            return i + 1
        if w in _POSSESSIVE_PRONOUNS and self.pronoun_possessive(clause, i):
            return i + 2  # "Tom and his wife Sarah ...": Sarah is a co-subject
        if skip := self.negation(i):
            clause.negated = True
            return i + skip
        if w in _COPULAS:
            clause.copula = True
            return i + 1
        if w in _AUXILIARIES or w in _ADVERBS or w in _RELATIVES:
            return i + 1
        clause.verb = w
        clause.sources = list(clause.subjects)
        for other in clause.subjects[1:] if not clause.negated else ():
            # "Melanie and Caroline painted ..."; not "Maya and Tom no longer live in Oslo"
            self.relate(clause.subjects[0], _predicate(w, "with"), other)
        return i + 1

    def after_verb(self, clause: _Clause, i: int) -> int:
        """A word after the verb: a new verb, a new clause, a preposition, a copula's noun."""
        w = self.toks[i].text
        nxt = self.peek(i + 1)
        if clause.blocked and not clause.subjects:
            return i + 1
        if w in _COORDINATORS and nxt is not None and nxt.kind == "word":
            after = nxt.text
            if self.negation(i + 1) or (
                _verb_like(after) and after not in _DETERMINERS and after not in PREPOSITIONS
            ):
                # "... but lives in Tallinn", "... but no longer ...": a new verb, same subject
                clause.verb, clause.copula, clause.negated = None, False, False
                clause.noun = clause.preposition = None
                clause.sources = list(clause.subjects)
                clause.last_object = None
                return i + 1
        if w in _COORDINATORS and self.starts_clause(i + 1):
            self.new_clause = True  # "..., and Tomas moved to Westbrook"
            return i + 1
        if w == "to" and nxt is not None and nxt.kind == "word":
            after = nxt.text
            if (
                after not in _DETERMINERS
                and after not in PREPOSITIONS
                and after not in _NOT_INFINITIVES
                and after not in STOPWORDS
                and not after.isdigit()
            ):
                # "asked Maya to lead ...": the object is the subject of the new verb
                if clause.last_object is not None:
                    clause.sources = [clause.last_object]
                clause.verb, clause.copula, clause.noun = after, False, None
                clause.preposition = None
                return i + 2
        if w in _POSSESSIVE_PRONOUNS and self.pronoun_possessive(clause, i):
            # "from his neighbour Frank": Frank is also the argument
            return i + 2
        if w in PREPOSITIONS:
            clause.preposition = w
            return i + 1
        if clause.copula and clause.verb is None:
            if w in _AUXILIARIES or w in _ADVERBS or w in _DETERMINERS:
                return i + 1
            if skip := self.negation(i):
                clause.negated = True
                return i + skip
            participle = re.fullmatch(r"[a-z]+(?:ed|en|ing)", w) or w in _IRREGULAR_PAST
            if participle and clause.noun is None:
                clause.verb = w  # "was hired by", "is visiting from", "was born in"
                return i + 1
            clause.noun = w  # "the head chef at", "the capital of"
        return i + 1

    def pronoun_possessive(self, clause: _Clause, i: int) -> bool:
        """ "her cousin Arjun": Arjun --cousin_of--> the clause's (or last clause's) subject.
        True when the pattern matched (the noun is consumed; the entity is left to place)."""
        noun, ent = self.peek(i + 1), self.peek(i + 2)
        if noun is None or ent is None or noun.kind != "word" or ent.kind != "ent":
            return False
        owners = clause.subjects or self.previous_subjects
        for owner in owners[:1]:
            self.relate(ent.text, _predicate(noun.text, "of"), owner)
        return True


def text_relations(text: str, surfaces: Mapping[str, list[str]]) -> list[Triple]:
    """(source, predicate, target) relations between the named entities of ``text``
    (``surfaces``: entity name -> the ways it is written), in reading order."""
    return _Parser(tokens(text, surfaces)).run()


__all__ = ["PREPOSITIONS", "Token", "text_relations", "tokens"]
