"""Retriever adapters in use: trained for a scope of a Memory, promoted, used by mem.search
through the entry-point plugin, rolled back, and driven from `agentmem adapters`."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner, Result

from agentmem import Memory, Scope, Settings, cli
from agentmem.errors import ValidationError
from agentmem.parametric import SHARED_SCOPE_KEY, discover_query_encoders, scope_key
from agentmem_gpu import AdaptedQueryEmbedder, AdapterRegistry, TrainSetConfig
from agentmem_gpu.pipeline import train_scope_adapter
from tests.gpu._tiny import TURNS, TinyEmbedder, fast_config

ALICE = Scope(user_id="alice")
QUESTION = "Who adopted a beagle puppy?"
# Training questions are the held-out ones: a random 32-d BERT learns its scope's questions
# but cannot be expected to generalise, and promotion needs a held-out gain.
ON_TRAIN = TrainSetConfig(eval_fraction=0.0)


def _fill(mem: Memory, user: str) -> None:
    mem.add_many(
        [
            {
                "text": f"{speaker}: {text}",
                "metadata": {"session": i // 8, "speaker": speaker},
                "event_time": f"2024-05-{1 + i // 8:02d}T09:{i:02d}:00Z",
            }
            for i, (speaker, text) in enumerate(TURNS)
        ],
        user_id=user,
    )


@pytest.fixture
def tiny_mem(tmp_path: Path, tiny_embedder: TinyEmbedder) -> Iterator[Memory]:
    """A Memory on the tiny model, alice and bob holding the same turns."""
    with Memory(settings=Settings.load(home=tmp_path / "home"), embedder=tiny_embedder) as mem:
        _fill(mem, "alice")
        _fill(mem, "bob")
        yield mem


def test_the_gpu_package_is_found_through_its_entry_point(tmp_path: Path) -> None:
    source = discover_query_encoders(Settings.load(home=tmp_path))
    assert isinstance(source, AdapterRegistry)
    assert source.root == tmp_path / "adapters"
    assert discover_query_encoders(Settings.load(home=tmp_path, adapters="off")) is None


def test_a_promoted_adapter_changes_only_its_scopes_queries(
    tiny_mem: Memory, tiny_embedder: TinyEmbedder
) -> None:
    backends = tiny_mem.backends
    base = tiny_embedder.embed_query(QUESTION)
    np.testing.assert_allclose(backends.query_vector(QUESTION, ALICE), base, atol=1e-6)

    outcome = train_scope_adapter(tiny_mem, ALICE, config=fast_config(), trainset_config=ON_TRAIN)
    assert outcome.key == scope_key(ALICE) and not outcome.reused
    assert outcome.memories == len(TURNS)
    assert outcome.promotion is not None and outcome.promotion.promoted, outcome.promotion

    adapted = AdaptedQueryEmbedder(tiny_embedder, outcome.version.path).embed_query(QUESTION)
    assert not np.allclose(adapted, base, atol=1e-3)
    np.testing.assert_allclose(backends.query_vector(QUESTION, ALICE), adapted, atol=1e-5)
    # bob has no adapter of his own and there is no shared one: his queries are untouched.
    np.testing.assert_allclose(
        backends.query_vector(QUESTION, Scope(user_id="bob")), base, atol=1e-6
    )
    hits = tiny_mem.search(QUESTION, user_id="alice", k=5)
    assert hits and all(h.record.scope == ALICE for h in hits)

    # Same memories, same config: nothing is retrained.
    again = train_scope_adapter(tiny_mem, ALICE, config=fast_config(), trainset_config=ON_TRAIN)
    assert again.reused and again.version.version == outcome.version.version
    # the scope spelled as a caller may ("alice" with spaces): the key searches use
    spaced = Scope(user_id=" alice ")
    same = train_scope_adapter(tiny_mem, spaced, config=fast_config(), trainset_config=ON_TRAIN)
    assert same.key == outcome.key and same.reused

    registry = AdapterRegistry.from_settings(tiny_mem.settings)
    assert registry.rollback(scope_key(ALICE)) is None
    np.testing.assert_allclose(backends.query_vector(QUESTION, ALICE), base, atol=1e-6)


def test_a_shared_adapter_serves_every_scope_without_its_own(
    tiny_mem: Memory, tiny_embedder: TinyEmbedder
) -> None:
    scopes = [ALICE, Scope(user_id="bob")]
    outcome = train_scope_adapter(tiny_mem, scopes, config=fast_config(), trainset_config=ON_TRAIN)
    assert outcome.key == SHARED_SCOPE_KEY and outcome.memories == 2 * len(TURNS)
    assert outcome.promotion is not None and outcome.promotion.promoted
    base = tiny_embedder.embed_query(QUESTION)
    for scope in (*scopes, Scope(user_id="carol")):
        assert not np.allclose(tiny_mem.backends.query_vector(QUESTION, scope), base, atol=1e-3)


def test_a_retrained_adapter_is_compared_with_the_current_one_on_its_own_questions(
    tmp_path: Path, tiny_embedder: TinyEmbedder
) -> None:
    """v1, trained on the first turns, scores high on its few questions; v2, trained when the
    scope has grown, must beat v1 on v2's questions, not v1's old score on v1's own."""
    from agentmem_gpu.pipeline import episodic_records
    from agentmem_gpu.retriever import evaluate_adapter
    from agentmem_gpu.trainsets import build_trainset

    settings = Settings.load(home=tmp_path / "home")
    with Memory(settings=settings, embedder=tiny_embedder) as mem:
        mem.add_many([f"{s}: {t}" for s, t in TURNS[:4]], user_id="alice")
        first = train_scope_adapter(
            mem, ALICE, config=fast_config(max_steps=30), trainset_config=ON_TRAIN
        )
        assert first.promotion is not None and first.promotion.promoted
        assert "incumbent" not in first.version.metadata.metrics  # nothing to replace
        mem.add_many([f"{s}: {t}" for s, t in TURNS[4:]], user_id="alice")
        second = train_scope_adapter(mem, ALICE, config=fast_config(), trainset_config=ON_TRAIN)
        trainset = build_trainset(episodic_records(mem, ALICE), ON_TRAIN)

    measured = second.version.metadata.metrics["incumbent"]
    assert measured["version"] == first.version.version
    docs = tiny_embedder.embed_documents(list(trainset.texts))
    again = evaluate_adapter(first.version.path, trainset, fast_config(), doc_vectors=docs)
    assert measured["score"] == pytest.approx(again[f"recall@{fast_config().eval_k}"])
    assert measured["score"] < first.version.score()  # v1 on the grown scope's questions
    assert second.promotion is not None
    assert second.promotion.incumbent_score == pytest.approx(measured["score"])
    assert second.promotion.promoted == (second.version.score() > measured["score"])


def test_training_needs_memories(tiny_mem: Memory) -> None:
    with pytest.raises(ValidationError, match="holds 0 episodic memories"):
        train_scope_adapter(tiny_mem, Scope(user_id="nobody"), config=fast_config())
    with pytest.raises(ValidationError, match="at least one scope"):
        train_scope_adapter(tiny_mem, [], config=fast_config())


def _run(home: Path, *args: str) -> Result:
    return CliRunner(env={"COLUMNS": "250"}).invoke(cli.app, ["--home", str(home), *args])


def test_the_adapters_commands(
    tmp_path: Path, tiny_embedder: TinyEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setattr(
        cli, "open_memory", lambda settings: Memory(settings=settings, embedder=tiny_embedder)
    )
    with Memory(settings=Settings.load(home=home), embedder=tiny_embedder) as mem:
        _fill(mem, "alice")
    key = scope_key(ALICE)

    result = _run(home, "adapters", "list")
    assert result.exit_code == 0 and "no adapters" in result.output

    result = _run(
        home, "adapters", "train", "--user", "alice", "--time-budget", "2", "--no-promote"
    )
    assert result.exit_code == 0, result.output
    assert f"{key}: v1 trained on {len(TURNS)} memories" in result.output

    result = _run(home, "adapters", "list")
    assert result.exit_code == 0 and key in result.output and "v1" in result.output

    result = _run(home, "adapters", "show", key, "1")
    shown = json.loads(result.output)
    assert shown["version"] == 1 and shown["kind"] == "retriever" and not shown["promoted"]
    assert shown["base_name"] == tiny_embedder.name and "eval_recall@10" in shown["metrics"]

    result = _run(home, "adapters", "show", key)
    assert result.exit_code == 1 and "no current retriever adapter" in result.output

    result = _run(home, "adapters", "promote", key, "1", "--force")
    assert result.exit_code == 0 and "promoted (forced" in result.output
    result = _run(home, "adapters", "rollback", key)
    assert result.exit_code == 0 and "the base model" in result.output
    result = _run(home, "adapters", "rollback", key)
    assert result.exit_code == 1 and "no promoted retriever adapter" in result.output

    result = _run(home, "adapters", "train", "--user", "alice", "--user", "bob")
    assert result.exit_code == 1 and "add --shared" in result.output
    result = _run(home, "adapters", "promote", "a/b", "1")
    assert result.exit_code == 1 and "not usable as a directory name" in result.output


def test_adapters_list_shows_a_damaged_scope_and_lists_the_others(tmp_path: Path) -> None:
    """A bad copy lost a promoted version's metadata file (alice) or its whole directory
    (carol): the listing names both and what to run, and still lists bob's adapter."""
    from tests.gpu.test_retriever_adapter import fake_adapter

    home = tmp_path / "home"
    registry = AdapterRegistry.from_settings(Settings.load(home=home))
    for user in ("alice", "bob", "carol"):
        registry.register(f"user-{user}", fake_adapter(tmp_path / user, 0.7))
        registry.register(f"user-{user}", fake_adapter(tmp_path / f"{user}2", 0.8))
        assert registry.promote(f"user-{user}", 2, force=True).promoted
    (registry.root / "user-alice" / "v2" / "agentmem_adapter.json").unlink()
    shutil.rmtree(registry.root / "user-carol" / "v2")

    result = _run(home, "adapters", "list")

    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())  # the table wraps long lines
    assert "user-bob" in out and "v2" in out
    assert "has no agentmem_adapter.json" in out
    assert "`agentmem adapters rollback user-alice`" in out
    assert "`agentmem adapters rollback user-carol`" in out
    rows = json.loads(_run(home, "adapters", "list", "--json").output)
    assert [(r["scope_key"], r["version"]) for r in rows if r.get("damaged")] == [
        ("user-alice", None),
        ("user-carol", None),
    ]
