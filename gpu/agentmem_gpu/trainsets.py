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
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from itertools import pairwise, zip_longest
from typing import TYPE_CHECKING, Any

from agentmem.errors import InvalidSettings, ValidationError
from agentmem.models import MemoryRecord, as_utc
from agentmem_gpu.turn_questions import (
    WORD,
    Turn,
    keyword_questions,
    norm_term,
    parse_turns,
    statement_questions,
)

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
    turns = parse_turns(records)
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


def _idf(turns: Sequence[Turn]) -> dict[str, float]:
    df = Counter(term for t in turns for term in set(t.terms))
    n = len(turns)
    return {term: math.log((n + 1) / (count + 1)) + 1.0 for term, count in df.items()}


def _salient(turn: Turn, idf: dict[str, float], names: set[str]) -> list[str]:
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
    turn: Turn, config: TrainSetConfig, rng: random.Random, *, templates: bool = True
) -> list[TrainPair]:
    if not turn.keywords:
        return []  # "Thanks!": no salient word, no question can single this turn out
    phrase = _phrase(turn, config.keywords_per_query)
    pairs: list[TrainPair] = []
    if templates and config.templated_questions and config.questions_per_turn:
        statements = statement_questions(turn)
        keyworded = keyword_questions(turn, phrase)
        rng.shuffle(statements)
        rng.shuffle(keyworded)
        # Alternate the two forms, statements first: they read most like real questions.
        candidates = [
            (kind, q)
            for pair in zip_longest(statements, keyworded)
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


def _phrase(turn: Turn, n: int) -> str:
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


def _previous_turn_pairs(turns: Sequence[Turn]) -> list[TrainPair]:
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
    pairs: list[TrainPair], turns: Sequence[Turn], idf: dict[str, float], k: int
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
        terms = {n for w in WORD.findall(p.query) if (n := norm_term(w)) is not None}
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


__all__ = [
    "GENERATOR_VERSION",
    "QUERY_KINDS",
    "TrainPair",
    "TrainSet",
    "TrainSetConfig",
    "build_trainset",
    "trainset_hash",
]
