"""Questions a memory answers, written by the configured LLM (litellm) for adapter training.

With ``AGENTMEM_LLM_MODEL`` set, training sets ask the model for a few questions per memory,
each with its short answer: the retriever adapter learns (question -> memory), the recall
adapter (question -> answer). Memories are sent in batches (one call per ``batch_size``); a
batch whose answer stays unusable after the client's one repair request, or whose call fails,
is logged and its memories keep the LLM-free templates, so training never stops for the LLM.
Calls ask for temperature 0 and the train set's seed, so a rerun asks the same question the
same way; the generator's name (model and prompt version) is part of the data hash, so a
scope is retrained when the model or the prompt changes and never re-asked when nothing did.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel, Field

from agentmem.errors import ExtractionFailed, LLMUnavailable
from agentmem.models import MemoryRecord
from agentmem.semantic.llm import LLMClient
from agentmem.semantic.prompts import Messages, Prompt
from agentmem.settings import Settings

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 300
MAX_ANSWER_WORDS = 8


class GeneratedQuestion(BaseModel):
    """One question and its short answer."""

    question: str = Field(min_length=1)
    answer: str = ""


class MemoryQuestions(BaseModel):
    """The questions about one memory of the batch (``memory``: its number in the prompt)."""

    memory: int
    questions: list[GeneratedQuestion] = Field(default_factory=list)


class QuestionBatch(BaseModel):
    """The answer to :data:`QUESTIONS`."""

    items: list[MemoryQuestions] = Field(default_factory=list)


_QUESTIONS_SYSTEM_V1 = """You write questions for training a memory search system.
For each numbered memory, write {n} different questions that this memory answers, the way a
person would later ask about it without seeing it (name the people, say what happened; do not
quote the memory word for word), each with its short answer (a few words taken from the
memory). Skip a memory that states nothing worth asking about (greetings, thanks).
Answer with only a JSON object, no prose and no code fences:
{{"items": [{{"memory": 1, "questions": [{{"question": "...", "answer": "..."}}]}}]}}"""


def _questions_v1(*, memories: Sequence[str], per_memory: int) -> Messages:
    listing = "\n".join(f"{i}. {text}" for i, text in enumerate(memories, start=1))
    return [
        {"role": "system", "content": _QUESTIONS_SYSTEM_V1.format(n=per_memory)},
        {"role": "user", "content": f'Memories:\n{listing}\n\nReturn {{"items": [...]}}.'},
    ]


QUESTIONS_V1 = Prompt("questions", 1, _questions_v1, QuestionBatch)
QUESTIONS = QUESTIONS_V1
"""The current question-writing prompt."""


@dataclass(frozen=True)
class LLMQuestions:
    """Generated (question, answer) pairs per memory id, and who generated them."""

    generator: str
    by_memory: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    failed_memories: int = 0
    calls: int = 0

    @property
    def hash_name(self) -> str:
        """The name a data hash records: a set with failed batches never matches a complete
        one, so the next run asks again."""
        return self.generator if not self.failed_memories else f"{self.generator}/partial"

    def for_memory(self, memory_id: str) -> tuple[tuple[str, str], ...]:
        """The pairs written for ``memory_id`` (empty when none were)."""
        return self.by_memory.get(memory_id, ())


class QuestionsConfig(Protocol):
    """What a train set config says about LLM questions (TrainSetConfig, RecallSetConfig)."""

    @property
    def llm_questions(self) -> bool: ...
    @property
    def llm_questions_per_memory(self) -> int: ...
    @property
    def seed(self) -> int: ...


class QuestionGenerator:
    """Asks an LLM for ``per_memory`` questions about each memory, ``batch_size`` at a time."""

    def __init__(self, client: LLMClient, *, per_memory: int = 3, batch_size: int = 10) -> None:
        if per_memory < 1 or batch_size < 1:
            raise ValueError("per_memory and batch_size must be at least 1")
        self.client = client
        self.per_memory = per_memory
        self.batch_size = batch_size

    @classmethod
    def from_settings(
        cls, settings: Settings, *, seed: int = 0, per_memory: int = 3, batch_size: int = 10
    ) -> QuestionGenerator | None:
        """The generator for ``settings.llm_model``; ``None`` in LLM-free mode."""
        if not settings.llm_model:
            return None
        client = LLMClient.from_settings(settings)
        client.kwargs = {"temperature": 0, "seed": seed, **client.kwargs}  # settings win
        return cls(client, per_memory=per_memory, batch_size=batch_size)

    @classmethod
    def for_config(cls, settings: Settings, config: QuestionsConfig) -> QuestionGenerator | None:
        """The generator a train set config asks for (its ``llm_questions``, ``seed`` and
        ``llm_questions_per_memory``); ``None`` when it asks for none or no LLM is set."""
        if not config.llm_questions:
            return None
        return cls.from_settings(
            settings, seed=config.seed, per_memory=config.llm_questions_per_memory
        )

    @property
    def name(self) -> str:
        """``"llm:<model>/questions-v1/<per_memory>"``: part of the train set's data hash."""
        return f"{self.client.name}/{QUESTIONS.id}/{self.per_memory}"

    def generate(self, records: Sequence[MemoryRecord]) -> LLMQuestions:
        """Questions for every record; a failed batch leaves its records without any."""
        by_memory: dict[str, tuple[tuple[str, str], ...]] = {}
        failed = 0
        calls_before = self.client.calls
        for start in range(0, len(records), self.batch_size):
            batch = records[start : start + self.batch_size]
            try:
                answer = self.client.ask(
                    QUESTIONS, memories=[r.text for r in batch], per_memory=self.per_memory
                )
            except (LLMUnavailable, ExtractionFailed) as exc:
                log.warning(
                    "question generation failed for %d memories (%s); they keep the "
                    "LLM-free templates",
                    len(batch),
                    exc,
                )
                failed += len(batch)
                continue
            assert isinstance(answer, QuestionBatch)
            for item in answer.items:
                if not 1 <= item.memory <= len(batch):
                    continue  # a number that was not in the prompt
                pairs = _clean(item.questions, self.per_memory)
                if pairs:
                    by_memory[batch[item.memory - 1].id] = pairs
        return LLMQuestions(self.name, by_memory, failed, self.client.calls - calls_before)


def _clean(questions: Sequence[GeneratedQuestion], limit: int) -> tuple[tuple[str, str], ...]:
    """Stripped, deduplicated, bounded pairs; an over-long answer is dropped (kept as '')."""
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for item in questions:
        question = " ".join(item.question.split())
        if not question or len(question) > MAX_QUESTION_CHARS or question.lower() in seen:
            continue
        seen.add(question.lower())
        answer = " ".join(item.answer.split())
        if len(answer.split()) > MAX_ANSWER_WORDS:
            answer = ""
        out.append((question, answer))
        if len(out) >= limit:
            break
    return tuple(out)


__all__ = [
    "QUESTIONS",
    "GeneratedQuestion",
    "LLMQuestions",
    "MemoryQuestions",
    "QuestionBatch",
    "QuestionGenerator",
]
