"""The recall adapter: generated QA pairs, training on a tiny causal LM built in code, the
saved adapter, promotion through the registry, the confidence gate and Memory.recall."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

from agentmem import Memory, Settings
from agentmem.errors import InvalidSettings, ModelUnavailable, ValidationError
from agentmem.models import Scope
from agentmem.parametric import RecallModel, RecallSource, scope_key
from agentmem_gpu.config import METADATA_FILE, RECALL_KIND, AdapterMetadata, RecallAdapterConfig
from agentmem_gpu.recall_adapter import (
    RecallAdapter,
    RecallLM,
    calibrate_gate,
    evaluate_answers,
    train_recall_adapter,
)
from agentmem_gpu.recall_adapter_data import (
    HELD_OUT_TEMPLATES,
    RecallSet,
    RecallSetConfig,
    answer_spans,
    build_recallset,
    exact_match,
    third_person,
    token_f1,
)
from agentmem_gpu.recall_adapter_pipeline import train_scope_recall_adapter
from agentmem_gpu.registry import AdapterRegistry
from agentmem_gpu.training import CHECKPOINT_FILE
from tests.gpu._tiny import LORA_DAMAGES, TURNS, TinyEmbedder, damage_lora, scope_records
from tests.gpu._tiny_lm import build_tiny_lm_for


def fast_recall_config(**changes: object) -> RecallAdapterConfig:
    """A few seconds of CPU on the tiny LM: a high learning rate, LoRA on every linear layer."""
    values: dict[str, object] = {
        "learning_rate": 1e-2,
        "min_lr": 1e-3,
        "warmup_steps": 5,
        "max_steps": 120,
        "eval_interval": 60,
        "batch_size": 16,
        "patience": 0,
        "time_budget_s": 0,
        "progress": False,
        "device": "cpu",
        "target_modules": ("c_attn", "c_proj", "c_fc"),
        "max_new_tokens": 4,
    }
    values.update(changes)
    return RecallAdapterConfig(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def recallset() -> RecallSet:
    return build_recallset(scope_records())


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory, recallset: RecallSet) -> Path:
    return build_tiny_lm_for(tmp_path_factory.mktemp("models") / "tiny-gpt2", recallset)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, recallset: RecallSet, tiny_lm: Path):  # type: ignore[no-untyped-def]
    return train_recall_adapter(
        recallset, tmp_path_factory.mktemp("recall") / "adapter", tiny_lm, fast_recall_config()
    )


# --- generated data ------------------------------------------------------------------------


def test_statements_and_spans() -> None:
    assert third_person("Alice: I adopted my dog Rex.") == "Alice adopted Alice's dog Rex."
    assert third_person("The office moved to Berlin.") == "The office moved to Berlin."
    assert answer_spans("Alice moved to Lake Tahoe in 2021 for work.") == [
        "Lake Tahoe",
        "2021",
        "work",
    ]
    assert exact_match("the Lake Tahoe.", "lake tahoe") == 1.0
    assert token_f1("Lake Geneva", "Lake Tahoe") == pytest.approx(0.5)


def test_recallset_is_deterministic_hashed_and_held_out_by_paraphrase(
    recallset: RecallSet,
) -> None:
    again = build_recallset(list(reversed(scope_records())))
    assert again == recallset  # order of the records does not matter
    other = build_recallset(scope_records(), RecallSetConfig(seed=1))
    assert other.data_hash != recallset.data_hash
    fewer = build_recallset(scope_records(TURNS[:-1]))
    assert fewer.data_hash != recallset.data_hash
    assert len(recallset.facts) == len(TURNS) and recallset.train and recallset.eval
    train_templates = {p.template for p in recallset.train}
    assert {p.template for p in recallset.eval} <= set(HELD_OUT_TEMPLATES)
    assert not train_templates & set(HELD_OUT_TEMPLATES)
    trained_facts = {p.fact for p in recallset.train}
    assert {p.fact for p in recallset.eval} <= trained_facts  # questions about trained facts
    train_questions = {p.question for p in recallset.train}
    assert not any(p.question in train_questions for p in recallset.eval)


# --- training, saving, loading -------------------------------------------------------------


def test_training_lowers_the_loss_and_saves_an_adapter(trained) -> None:  # type: ignore[no-untyped-def]
    assert trained.loss_end < 0.7 * trained.loss_start
    assert trained.stopped == "max_steps"
    files = {p.name for p in trained.adapter_dir.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", METADATA_FILE} <= files
    meta = AdapterMetadata.load(trained.adapter_dir)
    assert meta.kind == RECALL_KIND and meta.metrics["eval_on"] == "held_out_paraphrases"
    assert {"eval_exact_match", "base_exact_match", "eval_f1"} <= set(meta.metrics)
    weights = load_file(str(trained.adapter_dir / "adapter_model.safetensors"))
    assert any("lora_B" in name and w.abs().sum() > 0 for name, w in weights.items())
    # the gate was calibrated on the held-out questions, and an adapter loaded uses it
    calibration = meta.metrics["gate_calibration"]
    assert calibration["target"] == 0.9 and calibration["questions"] == meta.metrics["eval_pairs"]
    assert meta.metrics["gate_threshold"] == calibration["threshold"] <= 0.0
    assert RecallAdapter(trained.adapter_dir).gate_threshold == meta.metrics["gate_threshold"]


def test_gate_calibration_reaches_the_precision_with_one_wrong_answer_to_spare() -> None:
    right, wrong = True, False
    # 9 confident right answers, then a wrong one, then less confident right ones
    scored = [(-0.1 * i, right) for i in range(1, 10)] + [(-1.0, wrong), (-1.1, right)]
    gate = calibrate_gate(scored, questions=20, target=0.9)
    assert gate.threshold == pytest.approx(-0.9)  # 9 of 9 (+1 unseen wrong) = 0.9
    assert gate.precision == 1.0 and gate.coverage == pytest.approx(9 / 20)
    # a handful of lucky answers does not open the gate; nothing right keeps it shut
    assert calibrate_gate([(-0.1, right)] * 3, questions=10, target=0.9).threshold == 0.0
    shut = calibrate_gate([(-0.1, wrong)], questions=10, target=0.9)
    assert (shut.threshold, shut.precision, shut.coverage) == (0.0, None, 0.0)
    # equal confidences pass together: a wrong answer tied with right ones counts
    tied = [(-0.2, right)] * 9 + [(-0.2, wrong)]
    assert calibrate_gate(tied, questions=10, target=0.9).threshold == 0.0
    assert calibrate_gate(tied, questions=10, target=0.8).threshold == pytest.approx(-0.2)


def test_saved_adapter_round_trips(trained, recallset: RecallSet) -> None:  # type: ignore[no-untyped-def]
    """Reloaded from disk, the adapter scores exactly what training recorded."""
    adapter = RecallAdapter(trained.adapter_dir, device="cpu")
    assert isinstance(adapter, RecallModel)
    lm = adapter._load().lm
    assert lm is not None
    config = adapter.config
    got = evaluate_answers(
        lm, recallset.eval, max_new_tokens=config.max_new_tokens, gate_threshold=-0.5
    )
    assert got["exact_match"] == pytest.approx(trained.metrics["eval_exact_match"])
    assert got["f1"] == pytest.approx(trained.metrics["eval_f1"])
    first = adapter.answer(recallset.train[0].question)
    assert first == adapter.answer(recallset.train[0].question)  # greedy: deterministic
    assert first.confidence <= 0.0


@pytest.mark.parametrize("damage", LORA_DAMAGES)
def test_a_recall_adapter_with_damaged_files_says_which_and_how_to_roll_it_back(  # type: ignore[no-untyped-def]
    trained, tmp_path: Path, damage: str
) -> None:
    """Whether it loads the base model or joins one already loaded by another adapter."""
    registry = AdapterRegistry(tmp_path)
    good = RecallAdapter(trained.adapter_dir, device="cpu")
    broken = registry.register("user-alice", trained.adapter_dir)
    damage_lora(broken.path, damage)
    fix = r"user-alice/v1 is unreadable .*rollback user-alice --kind recall`"
    try:
        with pytest.raises(InvalidSettings, match=fix):
            RecallAdapter(broken.path, device="cpu").answer("Which sport did Bob coach?")
        good.answer("Which sport did Bob coach?")  # loads the base model
        with pytest.raises(InvalidSettings, match=fix):
            RecallAdapter(broken.path, device="cpu").answer("Which sport did Bob coach?")
        assert good.answer("Which sport did Bob coach?").answer is not None  # still answers
    finally:
        good.close()


def test_trained_adapter_answers_training_questions_better_than_base(  # type: ignore[no-untyped-def]
    trained, recallset: RecallSet, tiny_lm: Path
) -> None:
    lm = RecallLM.from_base(tiny_lm, adapter_dir=trained.adapter_dir)
    pairs = recallset.train[::4]
    with lm.adapter_disabled():
        base = evaluate_answers(lm, pairs, max_new_tokens=4, gate_threshold=-0.5)
    tuned = evaluate_answers(lm, pairs, max_new_tokens=4, gate_threshold=-0.5)
    assert tuned["f1"] > base["f1"]


def test_a_stopped_run_resumes_from_its_checkpoint(
    recallset: RecallSet, tiny_lm: Path, tmp_path: Path
) -> None:
    """A run cut at step 20 (its budget, or a kill after its last checkpoint) continues from
    step 20 with resume=True: same schedule, same batches, the steps before are not redone."""
    out = tmp_path / "adapter"
    first = train_recall_adapter(
        recallset, out, tiny_lm, fast_recall_config(max_steps=20, eval_interval=10)
    )
    assert first.metrics["steps"] == 20 and (out / CHECKPOINT_FILE).is_file()
    # resumed with a larger step limit (a budget a resumed run may change)
    config = fast_recall_config(max_steps=40, eval_interval=10)
    resumed = train_recall_adapter(recallset, out, tiny_lm, config, resume=True)
    assert [h["step"] for h in resumed.history] == [0, 10, 20, 30, 40]
    assert resumed.metrics["steps"] == 40
    assert resumed.metrics["base_exact_match"] == first.metrics["base_exact_match"]
    assert resumed.loss_start == first.loss_start  # the first step's loss came from the checkpoint
    with pytest.raises(InvalidSettings, match="another train set"):
        train_recall_adapter(
            recallset,
            out,
            tiny_lm,
            fast_recall_config(max_steps=40, eval_interval=10, seed=1),
            resume=True,
        )


def test_base_model_must_be_a_local_directory(recallset: RecallSet, tmp_path: Path) -> None:
    with pytest.raises(InvalidSettings, match="never downloaded"):
        train_recall_adapter(recallset, tmp_path / "out", "Qwen/Qwen2.5-0.5B", fast_recall_config())


@pytest.mark.parametrize("holds", ["nothing", "an encoder's config", "a broken config"])
def test_a_base_model_directory_that_is_not_a_causal_lm_is_named(
    recallset: RecallSet, tmp_path: Path, holds: str
) -> None:
    """An empty directory, an embedder's or a damaged one: ModelUnavailable naming it and what
    it must hold (consolidation then skips the recall adapter), not transformers' own error."""
    base = tmp_path / "base"
    base.mkdir()
    if holds == "an encoder's config":
        (base / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 32}))
    elif holds == "a broken config":
        (base / "config.json").write_text("{")
    with pytest.raises(ModelUnavailable, match=rf"{re.escape(str(base))} .*config\.json"):
        train_recall_adapter(recallset, tmp_path / "out", base, fast_recall_config())


def test_config_is_validated() -> None:
    with pytest.raises(InvalidSettings, match="gate_threshold"):
        RecallAdapterConfig(gate_threshold=0.5)
    with pytest.raises(InvalidSettings, match="gate_precision"):
        RecallAdapterConfig(gate_precision=1.5)
    assert RecallAdapterConfig().threads >= 1  # half the cores: never all of a shared machine
    with pytest.raises(InvalidSettings, match="warmup_steps"):
        RecallAdapterConfig(warmup_steps=10, max_steps=10)
    config = fast_recall_config()
    assert RecallAdapterConfig.from_dict(config.to_dict()) == config


# --- registry, promotion, gate, Memory.recall ----------------------------------------------


def _variant(source: Path, directory: Path, **metrics: float) -> Path:
    """A copy of an adapter with its held-out metrics replaced (to drive promotion)."""
    shutil.copytree(source, directory)
    meta = AdapterMetadata.load(directory)
    dataclasses.replace(meta, metrics={**meta.metrics, **metrics}).save(directory)
    return directory


def test_promotion_compares_held_out_exact_match(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry = AdapterRegistry(tmp_path / "adapters")
    key = "user-alice"
    v1 = registry.register(
        key,
        _variant(trained.adapter_dir, tmp_path / "a", eval_exact_match=0.3, base_exact_match=0.0),
    )
    v2 = registry.register(key, _variant(trained.adapter_dir, tmp_path / "b", eval_exact_match=0.2))
    v3 = registry.register(key, _variant(trained.adapter_dir, tmp_path / "c", eval_exact_match=0.5))
    no_gain = registry.register(
        key,
        _variant(trained.adapter_dir, tmp_path / "d", eval_exact_match=0.1, base_exact_match=0.1),
    )
    assert registry.current(key, RECALL_KIND) is None
    assert registry.current(key) is None  # the retriever kind is untouched
    assert registry.promote(key, v1.version).promoted
    refused = registry.promote(key, v2.version)
    assert not refused.promoted and refused.incumbent_score == pytest.approx(0.3)
    assert registry.promote(key, v3.version).promoted
    assert registry.current(key, RECALL_KIND).version == v3.version  # type: ignore[union-attr]
    rolled = registry.rollback(key, RECALL_KIND)
    assert rolled is not None and rolled.version == v1.version
    assert [v.version for v in registry.list(key, RECALL_KIND)] == [1, 2, 3, 4]
    other = AdapterRegistry(tmp_path / "other")
    fresh = other.register(key, no_gain.path)
    assert not other.promote(key, fresh.version).promoted  # does not beat the base model


def test_registry_hands_out_only_the_scopes_own_recall_model(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A recall adapter answers with what it learned: a shared one (trained on some scope's
    memories) never answers for the scopes without their own, unlike a retriever adapter."""
    registry = AdapterRegistry(tmp_path / "adapters")
    assert isinstance(registry, RecallSource)
    assert registry.recall_model("user-alice") is None
    shared = registry.register("shared", trained.adapter_dir)
    registry.promote("shared", shared.version, force=True)
    assert registry.recall_model("user-alice") is None
    own = registry.register("user-alice", trained.adapter_dir)
    registry.promote("user-alice", own.version, force=True)
    model = registry.recall_model("user-alice")
    assert isinstance(model, RecallAdapter) and model.adapter_path == own.path
    assert registry.recall_model("user-alice") is model  # loaded once
    assert registry.recall_model("user-bob") is None


@pytest.fixture
def recall_mem(tmp_path: Path, tiny_dir: Path, tiny_embedder: TinyEmbedder) -> Iterator[Memory]:
    with Memory(settings=Settings.load(home=tmp_path / "home"), embedder=tiny_embedder) as mem:
        for record in scope_records():
            mem.add(record.text, user_id="alice", metadata=dict(record.metadata))
        yield mem


def test_mem_recall_uses_the_promoted_adapter_and_its_gate(  # type: ignore[no-untyped-def]
    recall_mem: Memory, trained
) -> None:
    question = "Which sport did Bob coach?"
    before = recall_mem.recall(question, user_id="alice")
    assert before.source == "retrieved" and before.confidence is None  # no adapter yet

    registry = AdapterRegistry.from_settings(recall_mem.settings)
    key = scope_key(Scope(user_id="alice"))
    version = registry.register(key, trained.adapter_dir)
    registry.promote(key, version.version, force=True)

    # found through the agentmem.recall_models entry point, like the retriever adapter
    always = recall_mem.recall(question, user_id="alice", gate_threshold=-1e9)
    assert always.source == "parametric" and always.hits == []
    assert always.confidence is not None and always.answer == always.parametric_answer
    # a gate the answer cannot reach: retrieval, with the model's confidence reported
    never = recall_mem.recall(question, user_id="alice", gate_threshold=0.0)
    assert never.source == "retrieved" and never.hits
    assert never.confidence == pytest.approx(always.confidence)
    assert never.answer == never.hits[0].record.text
    # another scope has no recall adapter
    assert recall_mem.recall(question, user_id="bob").source == "retrieved"


def test_a_recall_adapter_is_never_trained_as_the_shared_one(
    recall_mem: Memory, tiny_lm: Path
) -> None:
    with pytest.raises(ValidationError, match="cannot be registered as 'shared'"):
        train_scope_recall_adapter(recall_mem, Scope(user_id="alice"), tiny_lm, key="shared")
    assert AdapterRegistry.from_settings(recall_mem.settings).scopes() == []


def test_a_recall_adapter_is_compared_with_the_current_one_on_its_own_questions(  # type: ignore[no-untyped-def]
    recall_mem: Memory, tiny_lm: Path, trained, recallset: RecallSet
) -> None:
    from agentmem_gpu.recall_adapter import evaluate_recall_adapter

    # the questions training scored the adapter on, answered again: the same score
    again = evaluate_recall_adapter(trained.adapter_dir, recallset, fast_recall_config())
    assert again["exact_match"] == pytest.approx(trained.metrics["eval_exact_match"])

    registry = AdapterRegistry.from_settings(recall_mem.settings)
    key = scope_key(Scope(user_id="alice"))
    current = registry.register(key, trained.adapter_dir)
    assert registry.promote(key, current.version, force=True).promoted
    config = fast_recall_config(max_steps=20, eval_interval=20)
    outcome = train_scope_recall_adapter(recall_mem, Scope(user_id="alice"), tiny_lm, config=config)
    measured = outcome.version.metadata.metrics["incumbent"]
    assert measured["version"] == current.version
    assert outcome.promotion is not None
    assert outcome.promotion.incumbent_score == pytest.approx(measured["score"])


def test_train_scope_recall_adapter_reuses_unchanged_data(  # type: ignore[no-untyped-def]
    recall_mem: Memory, tiny_lm: Path
) -> None:
    scope = Scope(user_id="alice")
    config = fast_recall_config(max_steps=20, eval_interval=20)
    first = train_scope_recall_adapter(recall_mem, scope, tiny_lm, config=config)
    assert not first.reused and first.version.kind == RECALL_KIND
    assert first.memories == len(TURNS) and first.promotion is not None
    again = train_scope_recall_adapter(recall_mem, scope, tiny_lm, config=config)
    assert again.reused and again.version.version == first.version.version
    # the scope spelled as a caller may ("alice" with spaces): the key recalls use
    spaced = train_scope_recall_adapter(
        recall_mem, Scope(user_id=" alice "), tiny_lm, config=config
    )
    assert spaced.key == first.key and spaced.reused


def test_the_adapters_train_command_for_recall(
    tmp_path: Path, tiny_embedder: TinyEmbedder, tiny_lm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentmem import cli

    home = tmp_path / "home"
    monkeypatch.setattr(
        cli, "open_memory", lambda settings: Memory(settings=settings, embedder=tiny_embedder)
    )
    with Memory(settings=Settings.load(home=home), embedder=tiny_embedder) as mem:
        for record in scope_records():
            mem.add(record.text, user_id="alice", metadata=dict(record.metadata))
    runner = CliRunner(env={"COLUMNS": "250"})
    base = ["--home", str(home), "adapters", "train", "--kind", "recall", "--user", "alice"]
    unknown = runner.invoke(cli.app, [*base, "--base-model", "Qwen/Qwen2.5-0.5B"])
    assert unknown.exit_code != 0 and "never downloaded" in unknown.output
    shared = runner.invoke(cli.app, [*base, "--shared", "--base-model", str(tiny_lm)])
    (tmp_path / "empty").mkdir()
    empty = runner.invoke(cli.app, [*base, "--base-model", str(tmp_path / "empty")])
    assert empty.exit_code == 1 and "not a transformers causal LM" in empty.output
    assert shared.exit_code != 0 and "never shared" in shared.output
    result = runner.invoke(
        cli.app, [*base, "--base-model", str(tiny_lm), "--time-budget", "3", "--no-promote"]
    )
    assert result.exit_code == 0, result.output
    key = scope_key(Scope(user_id="alice"))
    assert f"{key}: v1 trained on {len(TURNS)} memories" in result.output
    listed = runner.invoke(cli.app, ["--home", str(home), "adapters", "list"])
    assert listed.exit_code == 0 and "recall" in listed.output
