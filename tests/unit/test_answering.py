"""Memory.recall and the recall protocol of the core, with stub recall models (no torch)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agentmem import Memory, Settings
from agentmem.errors import ValidationError
from agentmem.models import Scope
from agentmem.parametric import (
    ParametricAnswer,
    RecallAnswer,
    RecallModel,
    RecallSource,
    discover_recall_models,
    scope_key,
)


class StubModel:
    """A recall model that always gives the same answer with the same confidence."""

    def __init__(self, answer: str, confidence: float, threshold: float = -1.0) -> None:
        self.name = "stub"
        self.gate_threshold = threshold
        self._answer = ParametricAnswer(answer, confidence)
        self.questions: list[str] = []

    def answer(self, question: str) -> ParametricAnswer:
        self.questions.append(question)
        return self._answer


class StubSource:
    """Hands out a model for one scope key only."""

    def __init__(self, key: str, model: StubModel) -> None:
        self.key, self.model = key, model

    def recall_model(self, scope_key: str) -> RecallModel | None:
        return self.model if scope_key == self.key else None


def _fill(mem: Memory) -> None:
    mem.add("Alice adopted a beagle puppy named Rex from the shelter.", user_id="alice")
    mem.add("Alice's bakery on Elm Street opened in May.", user_id="alice")


def test_stubs_satisfy_the_protocols() -> None:
    model = StubModel("Rex", -0.1)
    assert isinstance(model, RecallModel)
    assert isinstance(StubSource("k", model), RecallSource)


def test_scope_keys_of_different_scopes_differ_and_old_keys_stay() -> None:
    # Ids may hold ',' and '=': str(scope) of user 'x...,agent_id=bot' is that of agent 'bot'
    # of user 'x...', and the readable part is cut at 150 characters, so the two shared
    # adapters; the hash now names the exact scope.
    long = "x" * 140
    agent = Scope.of(org_id="acme", user_id=long, agent_id="bot")
    crafted = Scope.of(org_id="acme", user_id=f"{long},agent_id=bot")
    assert scope_key(agent) != scope_key(crafted)
    swapped = Scope.of(org_id="acme,user_id=x"), Scope.of(org_id="acme", user_id="x")
    assert scope_key(swapped[0]) != scope_key(swapped[1])
    # Every other scope keeps the key it had (the adapter directories keep their names).
    for scope in (agent, Scope(user_id="alice"), Scope.of(user_id="smith, john", thread_id="a=b")):
        digest = hashlib.sha256(str(scope).encode("utf-8")).hexdigest()[:8]
        assert scope_key(scope).endswith(f".{digest}")
    assert scope_key(Scope(user_id="alice")) == "user-alice.e13a9452"


def test_recall_without_a_model_is_retrieval(mem: Memory) -> None:
    _fill(mem)
    got = mem.recall("Which beagle puppy did Alice adopt from the shelter?", user_id="alice")
    assert isinstance(got, RecallAnswer)
    assert got.source == "retrieved" and got.confidence is None and got.model is None
    assert got.hits and got.answer == got.hits[0].record.text
    assert any("Rex" in hit.record.text for hit in got.hits)


def test_confident_model_answers_parametrically(home: Path, embedder: object) -> None:
    model = StubModel("Rex", confidence=-0.2, threshold=-1.0)
    source = StubSource(scope_key(Scope(user_id="alice")), model)
    settings = Settings.load(home=home)
    with Memory(settings=settings, embedder=embedder, recall_models=source) as mem:  # type: ignore[arg-type]
        _fill(mem)
        got = mem.recall("Puppy's name?", user_id="alice")
        assert (got.answer, got.source, got.confidence, got.hits) == ("Rex", "parametric", -0.2, [])
        assert got.model == "stub" and model.questions == ["Puppy's name?"]
        # another scope has no adapter: retrieval
        assert mem.recall("Puppy's name?", user_id="bob").source == "retrieved"


def test_gate_falls_back_to_retrieval_below_threshold(home: Path, embedder: object) -> None:
    model = StubModel("Max", confidence=-3.0, threshold=-1.0)
    source = StubSource(scope_key(Scope(user_id="alice")), model)
    with Memory(settings=Settings.load(home=home), embedder=embedder, recall_models=source) as mem:  # type: ignore[arg-type]
        _fill(mem)
        got = mem.recall("Which beagle puppy did Alice adopt from the shelter?", user_id="alice")
        assert got.source == "retrieved" and got.confidence == -3.0
        assert got.parametric_answer == "Max" and got.answer == got.hits[0].record.text
        # a per-call threshold overrides the model's gate
        forced = mem.recall(
            "Which beagle puppy did Alice adopt from the shelter?",
            user_id="alice",
            gate_threshold=-5,
        )
        assert forced.source == "parametric" and forced.answer == "Max"


@pytest.mark.parametrize("gate", ["high", 5.0, 1, float("nan"), float("inf"), True, [-1.0]])
def test_a_bad_gate_threshold_is_refused_with_or_without_a_model(
    home: Path, embedder: object, gate: object
) -> None:
    source = StubSource(scope_key(Scope(user_id="alice")), StubModel("Rex", confidence=-0.2))
    with Memory(settings=Settings.load(home=home), embedder=embedder, recall_models=source) as mem:  # type: ignore[arg-type]
        _fill(mem)
        for user in ("alice", "bob"):  # with a recall model, and without one
            with pytest.raises(ValidationError, match="gate_threshold must be a log-probability"):
                mem.recall("Puppy?", user_id=user, gate_threshold=gate)  # type: ignore[arg-type]
        # the edges are fine: 0 (only certain answers), any negative number
        assert mem.recall("Puppy?", user_id="alice", gate_threshold=0).source == "retrieved"
        forced = mem.recall("Puppy?", user_id="alice", gate_threshold=-(10**400))
        assert forced.source == "parametric"


def test_empty_parametric_answer_is_never_used(home: Path, embedder: object) -> None:
    source = StubSource(scope_key(Scope(user_id="alice")), StubModel("  ", confidence=0.0))
    with Memory(settings=Settings.load(home=home), embedder=embedder, recall_models=source) as mem:  # type: ignore[arg-type]
        _fill(mem)
        assert mem.recall("Puppy?", user_id="alice").source == "retrieved"


class TorchlessSource:
    """A registry with a promoted recall adapter in a process without torch: loading it fails
    to import (the gpu entry point is registered by the core distribution too)."""

    def recall_model(self, scope_key: str) -> RecallModel | None:
        raise ModuleNotFoundError("import of torch halted; None in sys.modules")


def test_a_recall_adapter_that_cannot_load_without_torch_falls_back_to_retrieval(
    home: Path, embedder: object, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentmem import answering

    monkeypatch.setattr(answering, "_unservable_warned", set(), raising=False)
    source = TorchlessSource()
    assert isinstance(source, RecallSource)
    with Memory(settings=Settings.load(home=home), embedder=embedder, recall_models=source) as mem:  # type: ignore[arg-type]
        _fill(mem)
        with caplog.at_level("WARNING", logger="agentmem.answering"):
            first = mem.recall("Which beagle did Alice adopt?", user_id="alice")
            second = mem.recall("Where is the bakery?", user_id="alice")
    assert first.source == second.source == "retrieved" and first.model is None
    assert first.answer == first.hits[0].record.text
    said = [r.getMessage() for r in caplog.records if "cannot be served" in r.getMessage()]
    assert len(said) == 1  # once per process


def test_adapters_off_discovers_nothing(home: Path) -> None:
    assert discover_recall_models(Settings.load(home=home, adapters="off")) is None


def test_arecall(mem: Memory) -> None:
    _fill(mem)
    got = asyncio.run(mem.arecall("Where is the bakery?", user_id="alice"))
    assert got.source == "retrieved" and got.answer == got.hits[0].record.text


def test_recall_works_without_torch_or_the_gpu_extra(tmp_path: Path) -> None:
    """With torch, peft and transformers unimportable, recall still answers by retrieval."""
    script = textwrap.dedent(
        f"""
        import hashlib, json, sys
        for name in ("torch", "peft", "transformers", "sentence_transformers"):
            sys.modules[name] = None  # import fails, as without the gpu extra
        import numpy as np
        from agentmem import Memory, Settings
        from agentmem.embedders import Embedder, normalise

        class HashEmbedder(Embedder):
            name = "hash-16"
            @property
            def dim(self):
                return 16
            def embed_documents(self, texts):
                rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[:16], np.uint8)
                        for t in texts]
                return normalise(np.asarray(rows, dtype=np.float32).reshape(len(texts), 16) + 1)

        settings = Settings.load(home={str(tmp_path / "home")!r})
        with Memory(settings=settings, embedder=HashEmbedder()) as mem:
            mem.add("Alice adopted a beagle named Rex.", user_id="alice")
            got = mem.recall("Alice beagle Rex", user_id="alice")
        print(json.dumps([got.source, got.answer, "torch" in sys.modules and
                          sys.modules["torch"] is not None]))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [
        "retrieved",
        "Alice adopted a beagle named Rex.",
        False,
    ]


@pytest.mark.parametrize("bad", ["", "   "])
def test_recall_rejects_empty_questions(mem: Memory, bad: str) -> None:
    from agentmem.errors import AgentMemError

    with pytest.raises(AgentMemError):
        mem.recall(bad, user_id="alice")
