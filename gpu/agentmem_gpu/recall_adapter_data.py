"""LLM-free question-answer pairs for a recall adapter, generated from a scope's memories.

Every memory (a semantic fact or an episodic turn) becomes a third-person statement
("Alice: I adopted a puppy named Rex." -> "Alice adopted a puppy named Rex."); its answer
spans are its names and numbers (runs of capitalised words not starting the sentence, digits),
or its last content word when it has none. Each span gives cloze questions: the statement
with the span blanked, wrapped in question templates. Training uses some templates; the
held-out questions use *other* templates (paraphrases never seen in training) about the same,
trained facts: the adapter is measured on recalling what it learnt, asked differently.

With an LLM configured, the questions it writes about a memory, with their short answers
(:mod:`agentmem_gpu.questions`), are added: all but one train, and one per memory is held out.

The statements themselves are training text too (plain language-model loss). Generation is
deterministic for a seed, and :attr:`RecallSet.data_hash` hashes the inputs, so an unchanged
scope is not retrained. No torch here.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from agentmem.errors import InvalidSettings, ValidationError
from agentmem.models import MemoryRecord

if TYPE_CHECKING:
    from agentmem_gpu.questions import LLMQuestions

GENERATOR_VERSION = 1
"""Bumped whenever generation changes, so stored hashes stop matching and scopes retrain."""

BLANK = "___"

TRAIN_TEMPLATES = (
    "{cloze} What goes in the blank?",
    "Fill in the blank: {cloze}",
    "Complete the sentence: {cloze}",
    "{cloze} What is missing?",
)
"""Question templates the adapter is trained on (``{cloze}``: the statement with a blank)."""

HELD_OUT_TEMPLATES = (
    "Which words complete this sentence? {cloze}",
    "From memory, what fills the gap in: {cloze}",
)
"""Paraphrased templates used only for held-out questions."""

_STOP_WORDS = (
    "a an the and or but of to in on at for with from by about as into over after before "
    "is are was were be been am it its this that these those there here very so too just "
    "my your his her our their me him them us we you he she they i not no yes all some "
    "time times first last new old good great"
)
_STOP = frozenset(_STOP_WORDS.split())
_SPEAKER = re.compile(r"^\s*([A-Z][\w.'-]{0,40}(?: [A-Z][\w.'-]{0,40})?):\s+(.*)$", re.S)
_PRONOUNS = (
    (re.compile(r"\bI am\b"), "{s} is"),
    (re.compile(r"\bI'm\b"), "{s} is"),
    (re.compile(r"\bI've\b"), "{s} has"),
    (re.compile(r"\bI\b"), "{s}"),
    (re.compile(r"\b[Mm]y\b"), "{s}'s"),
    (re.compile(r"\b[Mm]e\b"), "{s}"),
    (re.compile(r"\b[Mm]yself\b"), "{s}"),
)
_TOKEN = re.compile(r"[A-Za-z0-9][\w'-]*")


@dataclass(frozen=True)
class RecallSetConfig:
    """How question-answer pairs are generated."""

    seed: int = field(default=0, metadata={"help": "seed of template and span sampling"})
    spans_per_fact: int = field(
        default=2, metadata={"help": "answer spans (names, numbers, key words) used per memory"}
    )
    train_questions_per_span: int = field(
        default=3, metadata={"help": "training questions per span, each a different template"}
    )
    max_answer_words: int = field(default=4, metadata={"help": "longest answer span, in words"})
    llm_questions: bool = field(
        default=True,
        metadata={"help": "add question-answer pairs written by the configured LLM"},
    )
    llm_questions_per_memory: int = field(
        default=3, metadata={"help": "questions the LLM writes per memory"}
    )
    max_eval_pairs: int = field(
        default=200, metadata={"help": "cap on held-out questions (one per span)"}
    )

    def __post_init__(self) -> None:
        for name in (
            "spans_per_fact",
            "train_questions_per_span",
            "max_answer_words",
            "llm_questions_per_memory",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidSettings(
                    f"RecallSetConfig.{name} must be a positive integer, got {value!r}"
                )
        if self.train_questions_per_span > len(TRAIN_TEMPLATES):
            raise InvalidSettings(
                f"RecallSetConfig.train_questions_per_span must be at most {len(TRAIN_TEMPLATES)}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InvalidSettings(f"RecallSetConfig.seed must be >= 0, got {self.seed!r}")
        if self.max_eval_pairs < 1:
            raise InvalidSettings("RecallSetConfig.max_eval_pairs must be at least 1")


@dataclass(frozen=True)
class QAPair:
    """A question, its answer, and the index of the fact (in ``RecallSet.facts``) it is about."""

    question: str
    answer: str
    fact: int
    template: str = ""


@dataclass(frozen=True)
class RecallSet:
    """The facts of a scope as statements, with training and held-out question-answer pairs."""

    memory_ids: tuple[str, ...]
    facts: tuple[str, ...]
    train: tuple[QAPair, ...]
    eval: tuple[QAPair, ...]
    data_hash: str
    config: RecallSetConfig = field(default_factory=RecallSetConfig)

    def __len__(self) -> int:
        return len(self.train)

    def texts(self) -> list[str]:
        """Every text training and evaluation show the model (to build a test vocabulary)."""
        out = list(self.facts)
        for pair in (*self.train, *self.eval):
            out.extend((pair.question, pair.answer))
        return out

    def summary(self) -> dict[str, Any]:
        """Sizes and config, for the adapter metadata."""
        return {
            "memories": len(self.memory_ids),
            "train_pairs": len(self.train),
            "eval_pairs": len(self.eval),
            "templates": dict(sorted(Counter(p.template for p in self.train).items())),
            "config": asdict(self.config),
            "generator_version": GENERATOR_VERSION,
        }


def recallset_hash(
    records: Sequence[MemoryRecord],
    config: RecallSetConfig | None = None,
    *,
    generator: str | None = None,
) -> str:
    """The content hash a recall set built from ``records`` with ``config`` (and LLM questions
    from ``generator``) would have."""
    config = config or RecallSetConfig()
    rows = sorted([r.id, r.content_hash, str(r.metadata.get("speaker", ""))] for r in records)
    data: dict[str, Any] = {
        "version": GENERATOR_VERSION,
        "config": asdict(config),
        "memories": rows,
    }
    if generator:
        data["generator"] = generator
    return _sha256(data)


def build_recallset(
    records: Sequence[MemoryRecord],
    config: RecallSetConfig | None = None,
    questions: LLMQuestions | None = None,
) -> RecallSet:
    """Generate the statements and question-answer pairs of a scope from ``records`` (semantic
    facts and episodic turns; ``metadata["speaker"]`` or a ``"Name: "`` prefix names the
    speaker of a first-person turn)."""
    config = config or RecallSetConfig()
    if not records:
        raise ValidationError(
            "cannot build a recall set from no memories; add memories to the scope first"
        )
    if len({r.id for r in records}) != len(records):
        raise ValidationError("records given to build_recallset have duplicate ids")
    ordered = sorted(records, key=lambda r: r.id)
    facts: list[str] = []
    ids: list[str] = []
    train: list[QAPair] = []
    held: list[QAPair] = []
    for record in ordered:
        statement = third_person(record.text, record.metadata.get("speaker"))
        if not statement:
            continue
        index = len(facts)
        facts.append(statement)
        ids.append(record.id)
        rng = random.Random(f"{config.seed}:{record.id}")
        spans = answer_spans(statement, config.max_answer_words)
        for span in spans[: config.spans_per_fact]:
            cloze = _blank(statement, span)
            templates = rng.sample(TRAIN_TEMPLATES, config.train_questions_per_span)
            train.extend(QAPair(t.format(cloze=cloze), span, index, t) for t in templates)
            paraphrase = rng.choice(HELD_OUT_TEMPLATES)
            held.append(QAPair(paraphrase.format(cloze=cloze), span, index, paraphrase))
        written = [(q, a) for q, a in (questions.for_memory(record.id) if questions else ()) if a]
        if len(written) > 1:  # one question per memory is held out, the rest train
            held.append(QAPair(*written[-1], index, "llm"))
        train.extend(QAPair(q, a, index, "llm") for q, a in written[:-1] or written)
    if not train:
        raise ValidationError(
            "the memories gave no question-answer pairs (no names, numbers or content words)"
        )
    if len(held) > config.max_eval_pairs:
        held = random.Random(config.seed).sample(held, config.max_eval_pairs)
    return RecallSet(
        tuple(ids),
        tuple(facts),
        tuple(train),
        tuple(held),
        recallset_hash(
            records, config, generator=questions.hash_name if questions is not None else None
        ),
        config,
    )


def third_person(text: str, speaker: Any = None) -> str:
    """``text`` as a statement about its speaker: ``"Alice: I met Bob"`` -> ``"Alice met Bob"``
    (the verb is left as it is). Text without a speaker is returned stripped."""
    body = " ".join(text.split())
    match = _SPEAKER.match(body)
    if match:
        speaker = speaker or match.group(1)
        body = match.group(2)
    if isinstance(speaker, str) and speaker.strip():
        for pattern, replacement in _PRONOUNS:
            body = pattern.sub(replacement.format(s=speaker.strip()), body)
    return body.strip()


def answer_spans(statement: str, max_words: int = 4) -> list[str]:
    """Candidate answers in a statement, most specific first: runs of capitalised words not
    starting it, numbers, then its last content word."""
    tokens = [(m.group(0), m.start()) for m in _TOKEN.finditer(statement)]
    spans: list[str] = []
    run: list[str] = []
    for i, (word, _) in enumerate(tokens):
        named = i > 0 and (word[0].isupper() or word[0].isdigit())
        if named and len(run) < max_words:
            run.append(word)
            continue
        if run:
            spans.append(" ".join(run))
        run = [word] if named else []
    if run:
        spans.append(" ".join(run))
    spans = [s.removesuffix("'s") for s in spans]
    content = [w for w, _ in tokens[1:] if w.lower() not in _STOP and len(w) > 3]
    if content and content[-1] not in spans:
        spans.append(content[-1])
    return [s for s in dict.fromkeys(spans) if s]


def normalize_answer(text: str) -> str:
    """SQuAD-style normalisation: lower case, no punctuation or articles, single spaces."""
    text = text.lower().translate(str.maketrans("", "", string.punctuation))
    return " ".join(w for w in text.split() if w not in ("a", "an", "the"))


def exact_match(prediction: str, answer: str) -> float:
    """1.0 when the normalised strings are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(answer))


def token_f1(prediction: str, answer: str) -> float:
    """SQuAD token F1 of the normalised strings."""
    pred, gold = normalize_answer(prediction).split(), normalize_answer(answer).split()
    common = sum((Counter(pred) & Counter(gold)).values())
    if not pred or not gold or common == 0:
        return float(pred == gold)
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def _blank(statement: str, span: str) -> str:
    return re.sub(rf"(?<![\w]){re.escape(span)}(?![\w])", BLANK, statement, count=1)


def _sha256(data: Any) -> str:
    blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


__all__ = [
    "BLANK",
    "GENERATOR_VERSION",
    "HELD_OUT_TEMPLATES",
    "TRAIN_TEMPLATES",
    "QAPair",
    "RecallSet",
    "RecallSetConfig",
    "answer_spans",
    "build_recallset",
    "exact_match",
    "normalize_answer",
    "recallset_hash",
    "third_person",
    "token_f1",
]
