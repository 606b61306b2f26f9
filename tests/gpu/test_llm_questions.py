"""Training questions written by an LLM (litellm with ``mock_response``): parsed, bounded,
used in place of the templates, hashed with the generator, and asked only when the data
changed; a failing LLM leaves the LLM-free templates."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentmem import Memory, Scope, Settings
from agentmem.semantic.llm import LLMClient, load_litellm
from agentmem_gpu import (
    AdapterRegistry,
    RecallSetConfig,
    TrainSetConfig,
    build_recallset,
    build_trainset,
)
from agentmem_gpu.pipeline import train_scope_adapter
from agentmem_gpu.questions import LLMQuestions, QuestionGenerator
from tests.gpu._tiny import TURNS, TinyEmbedder, fast_config, scope_records

MODEL = "ollama/llama3"
RECORDS = scope_records()


def _answer(count: int) -> str:
    """An LLM answer covering memories 1..count, plus noise the parser must drop."""
    items: list[dict[str, Any]] = [
        {
            "memory": i,
            "questions": [
                {"question": f"What happened in memory {i}?", "answer": f"event {i}"},
                {"question": f"what happened in memory {i}?", "answer": "duplicate, dropped"},
                {"question": f"Who was part of story {i}?", "answer": "x " * 20},
                {"question": f"What is the reason behind memory {i}?", "answer": f"reason {i}"},
                {"question": "A fourth question beyond the cap", "answer": "cut"},
            ],
        }
        for i in range(1, count + 1)
    ]
    items.append({"memory": count + 7, "questions": [{"question": "Not shown", "answer": "-"}]})
    return json.dumps({"items": items})


def _generator(answer: str, **kwargs: Any) -> QuestionGenerator:
    client = LLMClient(MODEL, retries=0, kwargs={"mock_response": answer})
    return QuestionGenerator(client, **kwargs)


def test_the_generator_parses_bounds_and_maps_questions_to_memories() -> None:
    generator = _generator(_answer(len(RECORDS)), per_memory=3, batch_size=len(RECORDS))
    questions = generator.generate(RECORDS)
    assert questions.calls == 1 and questions.failed_memories == 0
    assert set(questions.by_memory) == {r.id for r in RECORDS}
    first = questions.for_memory(RECORDS[0].id)
    assert first == (
        ("What happened in memory 1?", "event 1"),
        ("Who was part of story 1?", ""),  # an over-long answer is not a short answer
        ("What is the reason behind memory 1?", "reason 1"),
    )
    assert questions.generator == f"llm:{MODEL}/questions-v1/3"
    assert questions.hash_name == questions.generator


def test_memories_are_sent_in_batches() -> None:
    generator = _generator(_answer(4), batch_size=4)
    questions = generator.generate(RECORDS[:10])
    assert questions.calls == 3
    # Every batch got the same scripted answer for its memories 1-4: the third batch had 2.
    assert len(questions.by_memory) == 4 + 4 + 2


def test_an_unusable_answer_keeps_the_templates_and_marks_the_set_partial() -> None:
    generator = _generator("this is not JSON at all", batch_size=len(RECORDS))
    questions = generator.generate(RECORDS)
    assert questions.by_memory == {} and questions.failed_memories == len(RECORDS)
    assert questions.calls == 2  # the answer and one repair request
    assert questions.hash_name.endswith("/partial")
    trainset = build_trainset(RECORDS, TrainSetConfig(), questions)
    assert {p.kind for p in trainset.train} >= {"statement", "keywords"}
    assert build_trainset(RECORDS).data_hash != trainset.data_hash


def test_llm_questions_replace_the_templated_questions_of_their_turns() -> None:
    questions = _generator(_answer(len(RECORDS)), batch_size=len(RECORDS)).generate(RECORDS)
    config = TrainSetConfig(eval_fraction=0.0)
    with_llm = build_trainset(RECORDS, config, questions)
    without = build_trainset(RECORDS, config)
    kinds = {p.kind for p in with_llm.train}
    assert "llm_question" in kinds
    assert not kinds & {"statement", "keyword_question"}  # every turn got LLM questions
    assert "keywords" in kinds  # keyword queries stay
    llm = [p for p in with_llm.train if p.kind == "llm_question"]
    assert any(p.query == "What happened in memory 1?" for p in llm)
    for pair in llm:  # each question points at the memory it was written for
        number = int(pair.query.rstrip("?").split()[-1] if "memory" in pair.query else 0)
        if number:
            assert with_llm.memory_ids[pair.positive] == RECORDS[number - 1].id
    assert with_llm.data_hash != without.data_hash
    again = build_trainset(RECORDS, config, questions)
    assert again == with_llm  # deterministic for the same answers


def test_recall_sets_train_on_llm_pairs_and_hold_one_out_per_memory() -> None:
    questions = _generator(_answer(len(RECORDS)), batch_size=len(RECORDS)).generate(RECORDS)
    recallset = build_recallset(RECORDS, RecallSetConfig(max_eval_pairs=1000), questions)
    llm_train = [p for p in recallset.train if p.template == "llm"]
    llm_held = [p for p in recallset.eval if p.template == "llm"]
    assert len(llm_held) == len(RECORDS)  # "event i" and "reason i" have answers: 1 held out
    assert len(llm_train) == len(RECORDS)
    assert all(p.answer.startswith("reason") for p in llm_held)
    assert {p.question for p in llm_train}.isdisjoint({p.question for p in llm_held})
    assert build_recallset(RECORDS).data_hash != recallset.data_hash


def test_without_an_llm_there_is_no_generator(tmp_path: Path) -> None:
    assert QuestionGenerator.from_settings(Settings.load(home=tmp_path)) is None
    settings = Settings.load(home=tmp_path, llm_model=MODEL, llm_kwargs={"temperature": 0.7})
    generator = QuestionGenerator.from_settings(settings, seed=5)
    assert generator is not None
    assert generator.client.kwargs == {"temperature": 0.7, "seed": 5}  # settings win


class _ScriptedCompletion:
    """litellm.completion itself, answering through ``mock_response`` with one question per
    memory of the prompt (quoting it, so questions differ between batches), counting calls."""

    def __init__(self) -> None:
        self.litellm = load_litellm()
        self.completion = self.litellm.completion
        self.calls = 0

    def __call__(self, **kwargs: Any) -> Any:
        self.calls += 1
        listing = kwargs["messages"][-1]["content"].split("Memories:\n", 1)[1]
        lines = [line for line in listing.splitlines() if line[:1].isdigit()]
        items = [
            {
                "memory": int(line.split(".", 1)[0]),
                "questions": [
                    {"question": f"Which memory says {line.split(': ', 1)[-1]}?", "answer": "it"}
                ],
            }
            for line in lines
        ]
        kwargs.pop("mock_response", None)
        return self.completion(**kwargs, mock_response=json.dumps({"items": items}))


@pytest.fixture
def llm_mem(tmp_path: Path, tiny_embedder: TinyEmbedder) -> Iterator[Memory]:
    settings = Settings.load(
        home=tmp_path / "home",
        llm_model=MODEL,
        llm_retries=0,
        llm_kwargs={"mock_response": _answer(len(TURNS))},
    )
    with Memory(settings=settings, embedder=tiny_embedder) as mem:
        mem.add_many(
            [{"text": r.text, "metadata": r.metadata, "event_time": r.event_time} for r in RECORDS],
            user_id="alice",
        )
        yield mem


def test_a_scope_adapter_trains_on_llm_questions_and_is_not_asked_again(
    llm_mem: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = _ScriptedCompletion()
    monkeypatch.setattr(counting.litellm, "completion", counting)
    trainset_config = TrainSetConfig(eval_fraction=0.0)
    first = train_scope_adapter(
        llm_mem,
        Scope(user_id="alice"),
        config=fast_config(max_steps=4),
        trainset_config=trainset_config,
    )
    assert counting.calls >= 1 and not first.reused
    kinds = first.version.metadata.trainset["kinds"]
    assert kinds.get("llm_question", 0) > 0
    calls = counting.calls
    second = train_scope_adapter(
        llm_mem,
        Scope(user_id="alice"),
        config=fast_config(max_steps=4),
        trainset_config=trainset_config,
    )
    assert second.reused and second.version.version == first.version.version
    assert counting.calls == calls  # an unchanged scope asks the LLM nothing
    registry = AdapterRegistry.from_settings(llm_mem.settings)
    assert registry.find(first.key, first.version.metadata.data_hash) is not None


def test_llm_free_training_ignores_the_flag_when_no_llm_is_set() -> None:
    questions = LLMQuestions("none")
    assert build_trainset(RECORDS, TrainSetConfig(), questions).train
