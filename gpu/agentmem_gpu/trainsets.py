"""LLM-free training pairs (question -> memory) generated from a scope's own episodic memories.

Each turn (one episodic record) yields a few queries whose answer is that turn:

- templated questions: who/what/when/where/why questions built from the turn's speaker, its
  salient keywords (TF-IDF over the scope, boosted for capitalised words and nouns after a
  determiner) and its first-person statements turned into third-person questions
  ("I went to a support group yesterday" -> "When did Caroline go to a support group?");
- keyword queries: the turn's salient keywords, sometimes with the speaker;
- optionally the previous turn of the same session as a query for the next (off by default:
  on LoCoMo it slightly hurt on its own).

With an LLM configured (``AGENTMEM_LLM_MODEL``) and ``llm_questions`` on, the questions the
model writes about a turn (:mod:`agentmem_gpu.questions`) take the place of its templated questions;
turns the model gave none keep the templates.

Every pair carries hard negatives: other turns of the scope sharing the query's rarest words.
Generation is deterministic for a seed, and :attr:`TrainSet.data_hash` hashes the inputs (the
memories and the config), so an unchanged scope is never retrained. No benchmark questions are
ever used: everything comes from the memories themselves.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from itertools import pairwise, zip_longest
from typing import TYPE_CHECKING, Any

from agentmem.errors import InvalidSettings, ValidationError
from agentmem.models import MemoryRecord, as_utc

if TYPE_CHECKING:
    from agentmem_gpu.questions import LLMQuestions

GENERATOR_VERSION = 1
"""Bumped whenever generation changes, so stored hashes stop matching and scopes retrain."""

QUERY_KINDS = ("statement", "keyword_question", "keywords", "previous_turn", "llm_question")


@dataclass(frozen=True)
class TrainSetConfig:
    """How training pairs are generated (every field has its help text in ``metadata``)."""

    seed: int = field(default=0, metadata={"help": "seed of sampling and of the eval split"})
    templated_questions: bool = field(
        default=True, metadata={"help": "who/what/when/where questions from each turn"}
    )
    keyword_queries: bool = field(
        default=True, metadata={"help": "a bag of the turn's salient keywords as a query"}
    )
    previous_turn_queries: bool = field(
        default=False,
        metadata={"help": "the previous turn of a session as a query for the next one"},
    )
    questions_per_turn: int = field(
        default=4, metadata={"help": "templated questions sampled per turn"}
    )
    keywords_per_query: int = field(
        default=3, metadata={"help": "salient keywords used in a question or keyword query"}
    )
    llm_questions: bool = field(
        default=True,
        metadata={"help": "questions written by the configured LLM replace the templates"},
    )
    llm_questions_per_memory: int = field(
        default=3, metadata={"help": "questions the LLM writes per memory"}
    )
    hard_negatives: int = field(
        default=4, metadata={"help": "lexically overlapping other turns kept per pair"}
    )
    eval_fraction: float = field(
        default=0.1,
        metadata={"help": "share of turns whose questions are held out for evaluation"},
    )
    max_eval_pairs: int = field(
        default=200,
        metadata={"help": "cap on held-out questions (evaluation time counts in the budget)"},
    )

    def __post_init__(self) -> None:
        for name in (
            "seed",
            "questions_per_turn",
            "keywords_per_query",
            "hard_negatives",
            "llm_questions_per_memory",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidSettings(
                    f"TrainSetConfig.{name} must be a non-negative integer, got {value!r}"
                )
        if not 0.0 <= self.eval_fraction < 1.0:
            raise InvalidSettings(
                f"TrainSetConfig.eval_fraction must be in [0, 1), got {self.eval_fraction!r}"
            )
        if self.max_eval_pairs < 1:
            raise InvalidSettings("TrainSetConfig.max_eval_pairs must be at least 1")
        if not (self.templated_questions or self.keyword_queries or self.previous_turn_queries):
            raise InvalidSettings(
                "TrainSetConfig enables no kind of query; set templated_questions, "
                "keyword_queries or previous_turn_queries"
            )


@dataclass(frozen=True)
class TrainPair:
    """One training query, the index of the memory that answers it, and hard negatives."""

    query: str
    positive: int
    hard_negatives: tuple[int, ...] = ()
    kind: str = "statement"


@dataclass(frozen=True)
class TrainSet:
    """Training and held-out pairs over a scope's memories (indices into ``memory_ids``)."""

    memory_ids: tuple[str, ...]
    texts: tuple[str, ...]
    train: tuple[TrainPair, ...]
    eval: tuple[TrainPair, ...]
    data_hash: str
    config: TrainSetConfig = field(default_factory=TrainSetConfig)

    def __len__(self) -> int:
        return len(self.train)

    def summary(self) -> dict[str, Any]:
        """Sizes, kinds and config, for the adapter metadata."""
        return {
            "memories": len(self.memory_ids),
            "train_pairs": len(self.train),
            "eval_pairs": len(self.eval),
            "kinds": dict(sorted(Counter(p.kind for p in self.train).items())),
            "config": asdict(self.config),
            "generator_version": GENERATOR_VERSION,
        }

    @classmethod
    def merge(cls, trainsets: Sequence[TrainSet]) -> TrainSet:
        """One train set over the memories of several (e.g. a shared adapter across scopes)."""
        if not trainsets:
            raise ValidationError("TrainSet.merge needs at least one train set")
        ids: list[str] = []
        texts: list[str] = []
        train: list[TrainPair] = []
        held: list[TrainPair] = []
        for ts in trainsets:
            offset = len(ids)
            ids.extend(ts.memory_ids)
            texts.extend(ts.texts)
            train.extend(_shift(p, offset) for p in ts.train)
            held.extend(_shift(p, offset) for p in ts.eval)
        digest = merged_hash([ts.data_hash for ts in trainsets])
        return cls(tuple(ids), tuple(texts), tuple(train), tuple(held), digest, trainsets[0].config)


def trainset_hash(
    records: Iterable[MemoryRecord],
    config: TrainSetConfig | None = None,
    *,
    generator: str | None = None,
) -> str:
    """The content hash a train set built from ``records`` with ``config`` would have.

    It covers what generation reads (ids, texts, times, sessions, speakers), the config, the
    generator version and the LLM question generator's name (``generator``, when questions
    come from an LLM), and not the records' order.
    """
    config = config or TrainSetConfig()
    rows = sorted(
        [
            r.id,
            r.content_hash,
            _iso(r.event_time),
            _iso(r.created_at),
            str(r.metadata.get("session", "")),
            str(r.metadata.get("speaker", "")),
        ]
        for r in records
    )
    data: dict[str, Any] = {
        "version": GENERATOR_VERSION,
        "config": asdict(config),
        "memories": rows,
    }
    if generator:
        data["generator"] = generator
    return _sha256(data)


def merged_hash(hashes: Sequence[str]) -> str:
    """The data hash of :meth:`TrainSet.merge` over train sets with these hashes."""
    return _sha256({"merge": list(hashes)})


def build_trainset(
    records: Sequence[MemoryRecord],
    config: TrainSetConfig | None = None,
    questions: LLMQuestions | None = None,
) -> TrainSet:
    """Generate the training and held-out pairs of a scope from its episodic ``records``.

    Records are grouped into sessions by ``metadata["session"]`` and ordered by event time
    (else creation time). The speaker is ``metadata["speaker"]`` or a ``"Name: "`` prefix.
    ``questions`` (from :class:`agentmem_gpu.questions.QuestionGenerator`) replace the templated
    questions of the turns they cover.
    """
    config = config or TrainSetConfig()
    if not records:
        raise ValidationError(
            "cannot build a train set from no memories; add episodic memories to the scope first"
        )
    if len({r.id for r in records}) != len(records):
        raise ValidationError("records given to build_trainset have duplicate ids")
    turns = _parse_turns(records)
    idf = _idf(turns)
    names = {t.speaker.lower() for t in turns if t.speaker}
    for turn in turns:
        turn.keywords = _salient(turn, idf, names)

    pairs: list[TrainPair] = []
    for turn in turns:
        rng = random.Random(f"{config.seed}:{turn.record_id}")
        written = questions.for_memory(turn.record_id) if questions is not None else ()
        pairs.extend(_queries_for(turn, config, rng, templates=not written))
        pairs.extend(TrainPair(q, turn.index, kind="llm_question") for q, _ in written)
    if config.previous_turn_queries:
        pairs.extend(_previous_turn_pairs(turns))
    pairs = _drop_ambiguous(pairs)
    pairs = _with_hard_negatives(pairs, turns, idf, config.hard_negatives)

    held_turns = {
        t.index for t in turns if _unit(f"eval:{config.seed}:{t.record_id}") < config.eval_fraction
    }
    train = [p for p in pairs if p.positive not in held_turns]
    held = [p for p in pairs if p.positive in held_turns]
    random.Random(f"eval:{config.seed}").shuffle(held)
    return TrainSet(
        memory_ids=tuple(t.record_id for t in turns),
        texts=tuple(t.text for t in turns),
        train=tuple(train),
        eval=tuple(held[: config.max_eval_pairs]),
        data_hash=trainset_hash(
            records, config, generator=questions.hash_name if questions is not None else None
        ),
        config=config,
    )


# --- parsing turns -------------------------------------------------------------------------

_SPEAKER_PREFIX = re.compile(r"^\s*([A-Z][\w .'-]{0,40}?):\s+")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*[A-Za-z]|[A-Za-z]|\d+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass
class _Turn:
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


def _parse_turns(records: Sequence[MemoryRecord]) -> list[_Turn]:
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
            _Turn(
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
        words = _WORD.findall(sentence)
        for i, word in enumerate(words):
            term = _norm(word)
            if term is None:
                continue
            terms.append(term)
            capitalised = word[0].isupper() and i > 0 and word.lower() != "i"
            surface.setdefault(term, word if capitalised or word.isupper() else word.lower())
            after_determiner = i > 0 and words[i - 1].lower() in _DETERMINERS
            if capitalised or after_determiner:
                boosted.add(term)
    return terms, surface, boosted


def _norm(word: str) -> str | None:
    term = word.lower()
    if term.endswith("'s"):
        term = term[:-2]
    if term in _STOPWORDS or "'" in term:
        return None
    if term.isdigit():
        return term if len(term) == 4 else None  # years only
    return term if len(term) >= 3 else None


def _idf(turns: Sequence[_Turn]) -> dict[str, float]:
    df = Counter(term for t in turns for term in set(t.terms))
    n = len(turns)
    return {term: math.log((n + 1) / (count + 1)) + 1.0 for term, count in df.items()}


def _salient(turn: _Turn, idf: dict[str, float], names: set[str]) -> list[str]:
    """The turn's terms by TF-IDF (boosted for likely names and nouns), best first."""
    if not turn.terms:
        return []
    own_name = (turn.speaker or "").lower()
    tf = Counter(turn.terms)
    scores = {
        term: count * idf.get(term, 1.0) * (1.5 if term in turn.boosted else 1.0)
        for term, count in tf.items()
        if term != own_name and term not in names
    }
    first = {term: i for i, term in reversed(list(enumerate(turn.terms)))}
    return sorted(scores, key=lambda t: (-scores[t], first[t]))


# --- generating queries --------------------------------------------------------------------


def _queries_for(
    turn: _Turn, config: TrainSetConfig, rng: random.Random, *, templates: bool = True
) -> list[TrainPair]:
    if not turn.keywords:
        return []  # "Thanks!": no salient word, no question can single this turn out
    phrase = _phrase(turn, config.keywords_per_query)
    pairs: list[TrainPair] = []
    if templates and config.templated_questions and config.questions_per_turn:
        statements = _statement_questions(turn)
        keyword_questions = _keyword_questions(turn, phrase)
        rng.shuffle(statements)
        rng.shuffle(keyword_questions)
        # Alternate the two forms, statements first: they read most like real questions.
        candidates = [
            (kind, q)
            for pair in zip_longest(statements, keyword_questions)
            for kind, q in zip(("statement", "keyword_question"), pair, strict=True)
            if q is not None
        ]
        seen: set[str] = set()
        for kind, query in candidates:
            if query.lower() not in seen:
                seen.add(query.lower())
                pairs.append(TrainPair(query, turn.index, kind=kind))
            if len(pairs) >= config.questions_per_turn:
                break
    if config.keyword_queries:
        words = [turn.surface[t] for t in turn.keywords[: config.keywords_per_query]]
        if turn.speaker and rng.random() < 0.5:
            words.insert(0, turn.speaker)
        pairs.append(TrainPair(" ".join(words), turn.index, kind="keywords"))
    return pairs


def _phrase(turn: _Turn, n: int) -> str:
    """The top-``n`` keywords in text order; adjacent ones read as one phrase."""
    top = set(turn.keywords[:n])
    groups: list[list[str]] = []
    seen: set[str] = set()
    previous_kept = False
    for term in turn.terms:
        if term in top and term not in seen:
            seen.add(term)
            if previous_kept:
                groups[-1].append(turn.surface[term])
            else:
                groups.append([turn.surface[term]])
            previous_kept = True
        else:
            previous_kept = False
    words = [" ".join(g) for g in groups]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _keyword_questions(turn: _Turn, phrase: str) -> list[str]:
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
        places = _places(turn)
        if places:
            questions.append(f"Where did {s} talk about {phrase}?")
    return questions


def _places(turn: _Turn) -> list[str]:
    return [m.group(2) for m in _PLACE.finditer(turn.body) if m.group(2) != turn.speaker]


_PLACE = re.compile(r"\b(in|at|to|from|near|visit(?:ed|ing)?)\s+((?:[A-Z][a-z]+\s?){1,3})")
_FIRST_PERSON = re.compile(r"\b(I|we)\s+([a-z][a-z']*)\s+(.*)", re.IGNORECASE)


def _statement_questions(turn: _Turn) -> list[str]:
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
        places = [p.strip() for p in _places(turn) if p.strip() in predicate]
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


def _previous_turn_pairs(turns: Sequence[_Turn]) -> list[TrainPair]:
    pairs = []
    for prev, turn in pairwise(turns):
        if prev.session == turn.session and turn.keywords:
            pairs.append(TrainPair(prev.text, turn.index, kind="previous_turn"))
    return pairs


# --- hard negatives, ambiguity, splitting ---------------------------------------------------


def _drop_ambiguous(pairs: list[TrainPair]) -> list[TrainPair]:
    """Drop queries generated for two different turns: no single answer to learn."""
    answers: defaultdict[str, set[int]] = defaultdict(set)
    for p in pairs:
        answers[p.query.lower()].add(p.positive)
    return [p for p in pairs if len(answers[p.query.lower()]) == 1]


def _with_hard_negatives(
    pairs: list[TrainPair], turns: Sequence[_Turn], idf: dict[str, float], k: int
) -> list[TrainPair]:
    """Attach to each pair the ``k`` other turns sharing the most idf mass with its query."""
    if k == 0:
        return pairs
    # Words in more than 5% of turns (speakers' names, "today") say little and cost a lot.
    limit = max(50, len(turns) // 20)
    postings: defaultdict[str, list[int]] = defaultdict(list)
    for t in turns:
        for term in set(t.terms):
            postings[term].append(t.index)
    out = []
    for p in pairs:
        scores: defaultdict[int, float] = defaultdict(float)
        terms = {n for w in _WORD.findall(p.query) if (n := _norm(w)) is not None}
        for term in sorted(terms):
            hits = postings.get(term, [])
            if len(hits) <= limit:
                for index in hits:
                    scores[index] += idf[term]
        scores.pop(p.positive, None)
        best = sorted(scores, key=lambda i: (-scores[i], i))[:k]
        out.append(TrainPair(p.query, p.positive, tuple(best), p.kind))
    return out


def _shift(pair: TrainPair, offset: int) -> TrainPair:
    return TrainPair(
        pair.query,
        pair.positive + offset,
        tuple(i + offset for i in pair.hard_negatives),
        pair.kind,
    )


def _unit(key: str) -> float:
    """A stable pseudo-random number in [0, 1) for ``key``."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:13], 16) / 16**13


def _iso(value: datetime | None) -> str:
    return as_utc(value).isoformat() if value is not None else ""


def _sha256(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode("utf-8")).hexdigest()


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
    "GENERATOR_VERSION",
    "QUERY_KINDS",
    "TrainPair",
    "TrainSet",
    "TrainSetConfig",
    "build_trainset",
    "trainset_hash",
]
