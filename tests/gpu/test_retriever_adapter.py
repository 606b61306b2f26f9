"""The retriever adapter: train sets, the LoRA query tower, training, registry, Memory use.

Training runs on a tiny BERT built from a config in code (with the MiniLM tokenizer), so the
whole file takes seconds; one test checks pooling parity against the real all-MiniLM-L6-v2.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("peft", reason="the gpu extra is not installed: pip install 'agentmem[gpu]'")

import torch

from agentmem import Memory, MemoryRecord, NotFound, Scope, Settings
from agentmem.embedders import Embedder
from agentmem.errors import InvalidSettings, ValidationError
from agentmem.parametric import (
    SHARED_SCOPE_KEY,
    QueryEncoder,
    QueryEncoderSource,
    check_compatible,
    check_scope_key,
    scope_key,
)
from agentmem_gpu import (
    AdaptedQueryEmbedder,
    AdapterMetadata,
    AdapterRegistry,
    QueryTower,
    RetrieverAdapterConfig,
    TrainSet,
    TrainSetConfig,
    build_trainset,
    get_lr,
    info_nce_loss,
    recall_at_k,
    train_retriever_adapter,
    trainset_hash,
)
from agentmem_gpu.config import RECALL_KIND, RETRIEVER_KIND
from agentmem_gpu.retriever import CHECKPOINT_FILE
from tests.gpu._tiny import (
    LORA_DAMAGES,
    TINY_NAME,
    TURNS,
    TinyEmbedder,
    damage_lora,
    fast_config,
    scope_records,
)


@pytest.fixture(scope="module")
def trainset() -> TrainSet:
    """The tiny scope's pairs, evaluated on training questions: a random 32-d BERT learns the
    scope's questions but cannot be expected to generalise to held-out turns."""
    return build_trainset(scope_records(), TrainSetConfig(eval_fraction=0.0))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path, trainset: TrainSet) -> Path:
    """An adapter trained for 60 steps on the tiny model (shared by several tests)."""
    out = tmp_path_factory.mktemp("adapter")
    result = train_retriever_adapter(trainset, out, fast_config(), base_model=tiny_dir)
    assert result.stopped == "max_steps"
    return out


# --- train sets ----------------------------------------------------------------------------


def test_trainset_is_deterministic_and_order_free() -> None:
    records = scope_records()
    first = build_trainset(records)
    again = build_trainset(list(reversed(records)))
    assert first == again
    assert first.data_hash == trainset_hash(records)
    assert len(first.train) > 2 * len(records)
    assert {p.kind for p in first.train} <= {"statement", "keyword_question", "keywords"}


def test_trainset_hash_follows_the_memories_and_the_config() -> None:
    records = scope_records()
    base = build_trainset(records).data_hash
    edited = [*records[:-1], records[-1].model_copy(update={"text": "Bob: I sold the boat."})]
    edited[-1] = MemoryRecord.model_validate({**edited[-1].model_dump(), "content_hash": ""})
    assert build_trainset(edited).data_hash != base
    assert build_trainset(records[:-1]).data_hash != base
    assert build_trainset(records, TrainSetConfig(seed=1)).data_hash != base


def test_trainset_questions_come_from_the_turns() -> None:
    ts = build_trainset(scope_records())
    by_turn: dict[int, list[str]] = {}
    for pair in (*ts.train, *ts.eval):
        by_turn.setdefault(pair.positive, []).append(pair.query)
    rex = ts.memory_ids.index(scope_records()[0].id)
    assert any("Alice" in q and "?" in q for q in by_turn[rex])
    assert any("beagle" in q.lower() or "rex" in q.lower() for q in by_turn[rex])
    statements = [p.query for p in ts.train if p.kind == "statement"]
    assert any(q.startswith(("When did", "Did")) for q in statements)
    # Hard negatives are other turns sharing the query's words, never the answer itself.
    for pair in ts.train:
        assert pair.positive not in pair.hard_negatives
        assert all(0 <= i < len(ts.memory_ids) for i in pair.hard_negatives)
    assert any(pair.hard_negatives for pair in ts.train)


def test_previous_turn_queries_are_off_by_default() -> None:
    default = build_trainset(scope_records())
    assert not any(p.kind == "previous_turn" for p in default.train)
    with_previous = build_trainset(scope_records(), TrainSetConfig(previous_turn_queries=True))
    assert any(p.kind == "previous_turn" for p in with_previous.train)


def test_eval_split_holds_out_whole_turns() -> None:
    ts = build_trainset(scope_records(), TrainSetConfig(eval_fraction=0.25))
    assert ts.eval
    assert not {p.positive for p in ts.train} & {p.positive for p in ts.eval}


def test_trainset_rejects_bad_input() -> None:
    with pytest.raises(ValidationError, match="no memories"):
        build_trainset([])
    with pytest.raises(InvalidSettings, match="eval_fraction"):
        TrainSetConfig(eval_fraction=1.5)
    with pytest.raises(InvalidSettings, match="no kind of query"):
        TrainSetConfig(templated_questions=False, keyword_queries=False)


def test_merged_trainsets_shift_indices() -> None:
    a = build_trainset(scope_records(TURNS[:12]))
    b = build_trainset(scope_records(TURNS[12:]))
    merged = TrainSet.merge([a, b])
    assert len(merged.memory_ids) == len(a.memory_ids) + len(b.memory_ids)
    last = merged.train[-1]
    assert merged.texts[last.positive] == b.texts[b.train[-1].positive]


# --- config, schedule, loss ----------------------------------------------------------------


def test_config_validates_its_fields() -> None:
    with pytest.raises(InvalidSettings, match="lora_r"):
        RetrieverAdapterConfig(lora_r=0)
    with pytest.raises(InvalidSettings, match="temperature"):
        RetrieverAdapterConfig(temperature=0)
    with pytest.raises(InvalidSettings, match="warmup_steps"):
        RetrieverAdapterConfig(warmup_steps=10, max_steps=10)
    with pytest.raises(InvalidSettings, match="device"):
        RetrieverAdapterConfig(device="tpu")
    config = RetrieverAdapterConfig()
    assert RetrieverAdapterConfig.from_dict(config.to_dict()) == config


def test_lr_schedule_warms_up_then_decays() -> None:
    config = RetrieverAdapterConfig(warmup_steps=10, max_steps=110)
    lrs = [get_lr(step, config) for step in range(120)]
    assert lrs[0] < lrs[5] < lrs[9] == pytest.approx(config.learning_rate)
    assert all(a >= b for a, b in pairwise(lrs[10:111]))
    assert lrs[110] == lrs[119] == config.min_lr


def test_info_nce_never_treats_a_shared_positive_as_a_negative() -> None:
    docs = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    queries = docs[[2, 2]]  # two queries answered by the same memory
    loss = info_nce_loss(
        queries, docs, torch.tensor([2, 2]), torch.tensor([[4], [-1]]), temperature=0.05
    )
    alone = info_nce_loss(
        queries[:1], docs, torch.tensor([2]), torch.tensor([[4]]), temperature=0.05
    )
    assert float(loss) == pytest.approx(float(alone), abs=1e-5)


def test_recall_at_k() -> None:
    docs = np.eye(4, dtype=np.float32)
    queries = np.eye(4, dtype=np.float32)[[0, 1]]
    assert recall_at_k(queries, docs, [0, 1], k=1) == 1.0
    assert recall_at_k(queries, docs, [1, 0], k=1) == 0.0


# --- the query tower -----------------------------------------------------------------------


def test_fresh_adapter_gives_the_base_vectors(tiny_dir: Path, tiny_embedder: TinyEmbedder) -> None:
    tower = QueryTower.from_base(tiny_dir, RetrieverAdapterConfig())
    texts = ["Where did Alice go hiking?", "a much longer sentence about a red motorcycle"]
    expected = tiny_embedder.embed_documents(texts)
    np.testing.assert_allclose(tower.encode(texts), expected, atol=1e-6)
    np.testing.assert_allclose(tower.encode(texts, adapter=False), expected, atol=1e-6)
    trainable = [n for n, p in tower.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)


def test_fresh_adapter_on_minilm_matches_sentence_transformers(embedder: Embedder) -> None:
    tower = QueryTower.from_base("minilm", RetrieverAdapterConfig())
    texts = ["When did Caroline go to the support group?", "Melanie: I painted a sunrise."]
    np.testing.assert_allclose(tower.encode(texts), embedder.embed_documents(texts), atol=1e-5)


# --- training ------------------------------------------------------------------------------


def test_training_lowers_the_loss_and_raises_recall(
    trained: Path, trainset: TrainSet, tiny_dir: Path, tiny_embedder: TinyEmbedder
) -> None:
    meta = AdapterMetadata.load(trained)
    assert meta.kind == "retriever" and meta.base_name == TINY_NAME and meta.dim == 32
    assert meta.data_hash == trainset.data_hash
    assert meta.hyperparameters["lora_r"] == 8
    assert (trained / "adapter_model.safetensors").is_file()
    assert (trained / CHECKPOINT_FILE).is_file()

    docs = tiny_embedder.embed_documents(list(trainset.texts))
    queries = [p.query for p in trainset.train]
    positives = [p.positive for p in trainset.train]
    before = recall_at_k(tiny_embedder.embed_documents(queries), docs, positives, k=3)
    adapted = QueryTower.from_base(tiny_dir, adapter_dir=trained).encode(queries)
    after = recall_at_k(adapted, docs, positives, k=3)
    assert after > before + 0.1, (before, after)

    # The held-out metric starts at the base model's and the saved adapter is the best seen.
    assert meta.metrics["eval_recall@1"] > meta.metrics["base_recall@1"]
    assert meta.metrics["eval_on"] == "train"
    assert meta.metrics["steps"] == 60


def test_training_loss_goes_down(tmp_path: Path, tiny_dir: Path, trainset: TrainSet) -> None:
    result = train_retriever_adapter(
        trainset, tmp_path, fast_config(max_steps=40, threads=2), base_model=tiny_dir
    )
    assert torch.get_num_threads() == 1  # the run's thread count does not leak out
    first, last = result.history[0], result.history[-1]
    assert last["loss"] < first["loss"]
    assert result.history[0]["step"] == 0 and last["step"] == 40


def test_time_budget_is_honoured(tmp_path: Path, tiny_dir: Path, trainset: TrainSet) -> None:
    config = fast_config(max_steps=1_000_000, time_budget_s=1.5, eval_interval=20)
    result = train_retriever_adapter(trainset, tmp_path, config, base_model=tiny_dir)
    assert result.stopped == "time_budget"
    assert 0 < result.metrics["steps"] < 1_000_000
    assert result.metrics["train_seconds"] < 1.5 + 1.5


def test_early_stopping(tmp_path: Path, tiny_dir: Path, trainset: TrainSet) -> None:
    # A learning rate too small to move the recall: every evaluation after the first is flat.
    config = fast_config(learning_rate=1e-9, min_lr=0.0, patience=2, eval_interval=2)
    result = train_retriever_adapter(trainset, tmp_path, config, base_model=tiny_dir)
    assert result.stopped == "early_stop"
    assert result.metrics["steps"] == 4


def test_resume_continues_from_the_checkpoint(
    tmp_path: Path, tiny_dir: Path, trainset: TrainSet
) -> None:
    train_retriever_adapter(trainset, tmp_path, fast_config(max_steps=20), base_model=tiny_dir)
    resumed = train_retriever_adapter(
        trainset, tmp_path, fast_config(max_steps=30), base_model=tiny_dir, resume=True
    )
    assert resumed.metrics["steps"] == 30
    assert [h["step"] for h in resumed.history] == [0, 10, 20, 30]
    other = build_trainset(scope_records(TURNS[:20]))
    with pytest.raises(InvalidSettings, match="another train set"):
        train_retriever_adapter(
            other, tmp_path, fast_config(max_steps=30), base_model=tiny_dir, resume=True
        )


def test_training_rejects_bad_input(tmp_path: Path, tiny_dir: Path, trainset: TrainSet) -> None:
    with pytest.raises(ValidationError, match="doc_vectors"):
        train_retriever_adapter(
            trainset, tmp_path, fast_config(), base_model=tiny_dir, doc_vectors=np.zeros((2, 32))
        )
    with pytest.raises(InvalidSettings, match="local model directory"):
        train_retriever_adapter(trainset, tmp_path, fast_config(), base_model=tmp_path / "none")


# --- using an adapter ----------------------------------------------------------------------


def test_adapted_embedder_inside_memory(
    home: Path, trained: Path, tiny_embedder: TinyEmbedder
) -> None:
    adapted = AdaptedQueryEmbedder(tiny_embedder, trained)
    assert adapted.name == tiny_embedder.name and adapted.dim == 32
    assert isinstance(adapted, QueryEncoder)
    check_compatible(adapted, tiny_embedder)
    question = "When did Alice adopt a puppy?"
    assert not np.allclose(adapted.embed_query(question), tiny_embedder.embed_query(question))

    with Memory(settings=Settings.load(home=home), embedder=adapted) as mem:
        records = mem.add_many([text for _, text in TURNS[:8]], user_id="alice")
        # Stored vectors are the base model's: same cache name, same vectors.
        hashes = [r.content_hash for r in records]
        cached = mem.backends.store.cached_embeddings(tiny_embedder.name, hashes)
        base = tiny_embedder.embed_documents([r.text for r in records])
        np.testing.assert_allclose(np.stack([cached[h] for h in hashes]), base, atol=1e-6)
        hits = mem.search(question, user_id="alice", k=3)
        assert len(hits) == 3
        assert {h.record.id for h in hits} <= {r.id for r in records}
        assert mem.stats().embedder == tiny_embedder.name


def test_adapter_named_after_the_folder_fits_the_digest_name(trained: Path, tiny_dir: Path) -> None:
    # Homes from before model names carried a digest of the files: the adapter records the
    # folder's name alone, and still serves the same folder's model under its new name.
    renamed = TinyEmbedder(tiny_dir)
    renamed.name = f"{renamed.name}#0123456789ab"
    assert AdaptedQueryEmbedder(renamed, trained).name == renamed.name
    renamed.name = "other-model#0123456789ab"
    with pytest.raises(InvalidSettings, match="trained for embedder 'tiny-bert'"):
        AdaptedQueryEmbedder(renamed, trained)


def test_adapted_embedder_refuses_another_base(trained: Path, embedder: Embedder) -> None:
    with pytest.raises(InvalidSettings, match="trained for embedder 'tiny-bert'"):
        AdaptedQueryEmbedder(embedder, trained)
    with pytest.raises(NotFound, match="holds no adapter"):
        AdaptedQueryEmbedder(embedder, trained.parent)


# --- registry ------------------------------------------------------------------------------


def fake_adapter(
    directory: Path,
    score: float,
    base: float = 0.5,
    data_hash: str = "h",
    source_ids: Sequence[str] = (),
) -> Path:
    """An adapter directory with metadata only (the registry never loads weights)."""
    directory.mkdir(parents=True)
    (directory / "adapter_model.safetensors").write_bytes(b"weights")
    (directory / CHECKPOINT_FILE).write_bytes(b"resume state")
    AdapterMetadata(
        kind="retriever",
        base_model="all-MiniLM-L6-v2",
        base_name="all-MiniLM-L6-v2",
        dim=384,
        data_hash=data_hash,
        hyperparameters={"eval_k": 10},
        metrics={"eval_recall@10": score, "base_recall@10": base},
        source_ids=list(source_ids),
    ).save(directory)
    return directory


def test_registry_versions_promotes_and_rolls_back(tmp_path: Path) -> None:
    registry = AdapterRegistry(tmp_path / "adapters")
    key = scope_key(Scope(user_id="alice"))
    assert registry.list(key) == [] and registry.current(key) is None

    v1 = registry.register(key, fake_adapter(tmp_path / "a", 0.7, data_hash="h1"))
    v2 = registry.register(key, fake_adapter(tmp_path / "b", 0.6, data_hash="h2"))
    v3 = registry.register(key, fake_adapter(tmp_path / "c", 0.8, data_hash="h3"))
    assert [v.version for v in registry.list(key)] == [1, 2, 3]
    assert v1.path == tmp_path / "adapters" / key / "v1"
    assert not (v1.path / CHECKPOINT_FILE).exists()  # training leftovers stay out
    assert registry.find(key, "h2") == v2 and registry.find(key, "nope") is None
    assert registry.scopes() == [key]

    first = registry.promote(key, 1)  # 0.7 beats the base model's 0.5
    assert first.promoted and first.previous is None
    assert registry.current(key) == registry.get(key, 1)
    assert registry.get(key, 1).promoted

    refused = registry.promote(key, 2)  # 0.6 does not beat v1's 0.7
    assert not refused.promoted and "does not beat v1" in refused.reason
    assert registry.current(key).version == 1  # type: ignore[union-attr]

    assert registry.promote(key, 3).promoted
    assert registry.promote(key, 2, force=True).promoted
    assert registry.current(key).version == 2  # type: ignore[union-attr]

    assert registry.rollback(key).version == 3  # type: ignore[union-attr]
    assert registry.rollback(key).version == 1  # type: ignore[union-attr]
    assert registry.rollback(key) is None  # back to the base model
    with pytest.raises(ValidationError, match="no promoted"):
        registry.rollback(key)
    assert v3.version == 3


def test_promotion_compares_with_the_incumbent_on_the_candidates_questions(
    tmp_path: Path,
) -> None:
    registry = AdapterRegistry(tmp_path)
    key = "user-alice"
    v1 = registry.register(key, fake_adapter(tmp_path / "a", 1.0, data_hash="h1"))
    assert registry.promote(key, v1.version).promoted  # 1.0 on its own 4 questions

    def measured_against(directory: Path, score: float, version: int, incumbent: float) -> Path:
        path = fake_adapter(directory, score)
        metadata = AdapterMetadata.load(path)
        metadata.metrics["incumbent"] = {"version": version, "score": incumbent}
        metadata.save(path)
        return path

    v2 = registry.register(key, measured_against(tmp_path / "b", 0.65, 1, 0.57))
    promoted = registry.promote(key, v2.version)
    assert promoted.promoted and "beats v1 on the same questions" in promoted.reason
    assert promoted.incumbent_score == pytest.approx(0.57)
    v3 = registry.register(key, measured_against(tmp_path / "c", 0.6, 2, 0.7))
    refused = registry.promote(key, v3.version)
    assert not refused.promoted and "v2 on the same questions (0.7000)" in refused.reason
    # measured against another version than the current one: its own recorded score counts
    v4 = registry.register(key, measured_against(tmp_path / "d", 0.6, 1, 0.1))
    stale = registry.promote(key, v4.version)
    assert not stale.promoted and stale.incumbent_score == pytest.approx(0.65)


def test_rollback_after_a_taint_demotes_the_version_that_serves(tmp_path: Path) -> None:
    registry = AdapterRegistry(tmp_path)
    key = "user-alice"
    registry.register(key, fake_adapter(tmp_path / "a", 0.6, data_hash="h1"))
    registry.register(key, fake_adapter(tmp_path / "b", 0.7, data_hash="h2"))
    assert registry.promote(key, 1).promoted and registry.promote(key, 2).promoted
    registry.taint(key, 2, "forgotten")
    assert registry.current(key).version == 1  # type: ignore[union-attr]

    assert registry.rollback(key) is None  # v1 demoted: the base model serves
    assert registry.current(key) is None and not registry.get(key, 1).promoted
    with pytest.raises(ValidationError, match="no promoted"):
        registry.rollback(key)


def test_registry_refuses_an_adapter_that_does_not_beat_the_base(tmp_path: Path) -> None:
    registry = AdapterRegistry(tmp_path)
    version = registry.register("user-bob", fake_adapter(tmp_path / "a", 0.4, base=0.5))
    result = registry.promote("user-bob", version.version)
    assert not result.promoted and "the base model" in result.reason
    assert registry.current("user-bob") is None


def test_registry_rejects_bad_keys_and_versions(tmp_path: Path) -> None:
    registry = AdapterRegistry(tmp_path)
    with pytest.raises(InvalidSettings, match="directory name"):
        registry.list("../escape")
    with pytest.raises(NotFound, match="no adapter v7"):
        registry.get("user-bob", 7)
    with pytest.raises(NotFound, match="holds no adapter"):
        registry.register("user-bob", tmp_path)


@pytest.mark.parametrize(
    "state",
    ["[]", '{"promoted": []}', '{"promoted": {"retriever": ["1"]}}', '{"tainted": []}', "{"],
)
def test_registry_refuses_a_damaged_state_file_naming_it(tmp_path: Path, state: str) -> None:
    registry = AdapterRegistry(tmp_path)
    registry.register("user-bob", fake_adapter(tmp_path / "a", 0.7))
    (tmp_path / "user-bob" / "state.json").write_text(state)
    with pytest.raises(InvalidSettings, match=r"state\.json .*restore it"):
        registry.current("user-bob")


@pytest.mark.parametrize("metadata", ["[1, 2]", '"text"', "{"])
def test_registry_refuses_damaged_metadata_naming_it(tmp_path: Path, metadata: str) -> None:
    registry = AdapterRegistry(tmp_path)
    version = registry.register("user-bob", fake_adapter(tmp_path / "a", 0.7))
    (version.path / "agentmem_adapter.json").write_text(metadata)
    with pytest.raises(InvalidSettings, match=r"agentmem_adapter\.json is unreadable"):
        registry.list("user-bob")


def test_a_damaged_adapter_of_another_scope_does_not_stop_a_forget(tmp_path: Path) -> None:
    """A forget cannot read what a damaged version was trained on: under another scope's key
    it is left (logged), under a key of the forgotten scope its weights are erased."""
    registry = AdapterRegistry(tmp_path)
    alice = registry.register("user-alice", fake_adapter(tmp_path / "a", 0.7, source_ids=["a1"]))
    bob = registry.register("user-bob", fake_adapter(tmp_path / "b", 0.7, source_ids=["b1"]))
    assert registry.promote("user-bob", bob.version).promoted
    (alice.path / "agentmem_adapter.json").write_text("[]")

    tainted = registry.taint_trained_on({"b1"}, ["user-bob", SHARED_SCOPE_KEY], "forgotten")

    assert tainted == [
        {"scope_key": "user-bob", "version": 1, "kind": "retriever", "was_serving": True}
    ]
    assert (alice.path / "adapter_model.safetensors").exists()  # not this forget's to judge

    assert registry.taint_trained_on({"a1"}, ["user-alice"], "forgotten") == []
    assert sorted(p.name for p in alice.path.iterdir()) == ["agentmem_adapter.json"]
    state = json.loads((tmp_path / "user-alice" / "state.json").read_text())
    assert "1" in state["tainted"]


def test_a_forget_meeting_a_key_whose_current_version_is_gone_still_taints(
    tmp_path: Path,
) -> None:
    registry = AdapterRegistry(tmp_path)
    gone = registry.register("user-bob", fake_adapter(tmp_path / "a", 0.7))
    assert registry.promote("user-bob", gone.version, force=True).promoted
    registry.register("user-bob", fake_adapter(tmp_path / "b", 0.7, source_ids=["b1"]))
    shutil.rmtree(gone.path)

    tainted = registry.taint_trained_on({"b1"}, ["user-bob"], "forgotten")

    assert tainted == [
        {"scope_key": "user-bob", "version": 2, "kind": "retriever", "was_serving": False}
    ]


def test_registry_hands_out_the_scope_or_shared_encoder(
    tmp_path: Path, trained: Path, tiny_embedder: TinyEmbedder
) -> None:
    registry = AdapterRegistry(tmp_path)
    assert isinstance(registry, QueryEncoderSource)
    assert registry.query_encoder("user-carol", tiny_embedder) is None
    shared = registry.register(SHARED_SCOPE_KEY, trained)
    assert registry.promote(SHARED_SCOPE_KEY, shared.version, force=True).promoted
    encoder = registry.query_encoder("user-carol", tiny_embedder)
    assert isinstance(encoder, AdaptedQueryEmbedder)
    assert encoder.adapter_path == shared.path
    assert encoder.embed_query("Who bought a motorcycle?").shape == (32,)


@pytest.mark.parametrize("damage", LORA_DAMAGES)
def test_a_promoted_adapter_with_damaged_files_says_which_and_how_to_roll_it_back(
    tmp_path: Path, trained: Path, tiny_embedder: TinyEmbedder, damage: str
) -> None:
    registry = AdapterRegistry(tmp_path)
    shared = registry.register(SHARED_SCOPE_KEY, trained)
    assert registry.promote(SHARED_SCOPE_KEY, shared.version, force=True).promoted
    damage_lora(shared.path, damage)
    encoder = registry.query_encoder("user-bob", tiny_embedder)
    assert encoder is not None
    with pytest.raises(InvalidSettings, match=r"shared/v1 is unreadable .*rollback shared`"):
        encoder.embed_query("Who adopted a puppy?")


@pytest.mark.parametrize("kind", [RETRIEVER_KIND, RECALL_KIND])
@pytest.mark.parametrize("damage", ["metadata missing", "version directory missing"])
def test_a_promoted_adapter_with_missing_files_says_which_and_how_to_roll_it_back(
    tmp_path: Path, tiny_embedder: TinyEmbedder, damage: str, kind: str
) -> None:
    """A bad copy lost the metadata file or the whole version: what serves it raises
    InvalidSettings (not NotFound, a 404 over REST) naming the directory and the rollback."""
    registry = AdapterRegistry(tmp_path)
    adapter = fake_adapter(tmp_path / "a", 0.7)
    dataclasses.replace(AdapterMetadata.load(adapter), kind=kind).save(adapter)
    version = registry.register("user-bob", adapter)
    assert registry.promote("user-bob", version.version, force=True).promoted
    if damage == "metadata missing":
        (version.path / "agentmem_adapter.json").unlink()
    else:
        shutil.rmtree(version.path)
    flag = " --kind recall" if kind == RECALL_KIND else ""
    fix = rf"user-bob/v1\b.*`agentmem adapters rollback user-bob{flag}`"
    with pytest.raises(InvalidSettings, match=fix):
        registry.current("user-bob", kind)
    with pytest.raises(InvalidSettings, match=fix):  # what a recall or a search asks
        if kind == RECALL_KIND:
            registry.recall_model("user-bob")
        else:
            registry.query_encoder("user-bob", tiny_embedder)

    registry.rollback("user-bob", kind)  # what the message says to run
    assert registry.current("user-bob", kind) is None
    if damage == "metadata missing":  # the listing names the file, not a registering mistake
        with pytest.raises(InvalidSettings, match=r"v1 has no agentmem_adapter\.json"):
            registry.list("user-bob")


# --- the core protocol ---------------------------------------------------------------------


def test_scope_keys_are_safe_stable_and_distinct() -> None:
    a = scope_key(Scope(user_id="alice", agent_id="bot:1"))
    assert a == scope_key(Scope(agent_id="bot:1", user_id="alice"))
    assert a.startswith("user-alice.agent-bot-1.") and check_scope_key(a) == a
    assert a != scope_key(Scope(user_id="alice", agent_id="bot-1"))
    with pytest.raises(InvalidSettings):
        check_scope_key("a/b")


def test_core_imports_neither_torch_nor_gpu() -> None:
    code = (
        "import sys, agentmem, agentmem.parametric; "
        "print(json.dumps([m in sys.modules for m in ('gpu', 'peft', 'torch')]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", f"import json; {code}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == [False, False, False]
