"""Forgetting reaches trained weights: an adapter trained on a forgotten memory is tainted and
stops serving at once, consolidation retrains a clean one without it, promotes it through the
registry, and a probe of generated questions about the forgotten turn finds no leak."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from agentmem import Memory, Scope, Settings, erasure
from agentmem.parametric import SHARED_SCOPE_KEY, RecallAnswer, scope_key
from agentmem.stores import ForgetJournal
from agentmem_consolidation import run_inline
from agentmem_gpu import AdapterRegistry, TrainSetConfig
from agentmem_gpu.clean import CleanConfigs, retrain_forgotten
from agentmem_gpu.pipeline import TrainOutcome, train_scope_adapter, trained_scopes
from tests.gpu._tiny import TURNS, TinyEmbedder, fast_config
from tests.gpu.test_retriever_adapter import fake_adapter


def journal_of(mem: Memory) -> ForgetJournal:
    """The forget journal of ``mem``'s store (both test stores keep one)."""
    store = mem.backends.store
    assert isinstance(store, ForgetJournal)
    return store


ALICE = Scope(user_id="alice")
ON_TRAIN = TrainSetConfig(eval_fraction=0.0)
FORGOTTEN = "Alice: I adopted a beagle puppy named Rex from the shelter."


@pytest.fixture
def tiny_mem(tmp_path: Path, tiny_embedder: TinyEmbedder) -> Iterator[Memory]:
    with Memory(settings=Settings.load(home=tmp_path / "home"), embedder=tiny_embedder) as mem:
        mem.add_many(
            [
                {"text": f"{s}: {t}", "metadata": {"session": i // 8, "speaker": s}}
                for i, (s, t) in enumerate(TURNS)
            ],
            user_id="alice",
        )
        yield mem


def test_a_tainted_adapter_stops_serving_at_once_and_a_clean_one_replaces_it(
    tiny_mem: Memory, tiny_embedder: TinyEmbedder
) -> None:
    registry = AdapterRegistry.from_settings(tiny_mem.settings)
    key = scope_key(ALICE)
    trained = train_scope_adapter(
        tiny_mem, ALICE, config=fast_config(), trainset_config=ON_TRAIN, registry=registry
    )
    assert trained.promotion is not None and trained.promotion.promoted
    gone = next(r for r in tiny_mem.list(user_id="alice") if r.text == FORGOTTEN)
    assert gone.id in trained.version.metadata.source_ids  # membership is testable
    assert registry.query_encoder(key, tiny_embedder) is not None

    report = tiny_mem.forget(gone.id, reason="asked", user_id="alice")

    assert report.status == "retrain_pending"
    assert report.adapters_tainted == [
        {"scope_key": key, "version": 1, "kind": "retriever", "was_serving": True}
    ]
    # immediate: the very next read gets no adapter (search falls back to the base model)
    assert registry.current(key) is None
    assert registry.query_encoder(key, tiny_embedder) is None
    assert registry.get(key, 1).tainted
    # its weights are erased at once; the metadata stays for the record
    assert [p.name for p in registry.get(key, 1).path.iterdir()] == ["agentmem_adapter.json"]
    assert not registry.promote(key, 1).promoted  # never promoted again
    assert all(h.record.id != gone.id for h in tiny_mem.search("beagle Rex", user_id="alice"))
    # the probe texts wait in the journal until the clean adapter is probed
    journal = journal_of(tiny_mem).forget_jobs(forget_id=report.forget_id)[0]
    assert journal.probe == [FORGOTTEN]

    updated = retrain_forgotten(
        tiny_mem,
        ALICE,
        registry=registry,
        configs=CleanConfigs(retriever=fast_config(), trainset=ON_TRAIN),
    )

    assert len(updated) == 1
    final = erasure.reports(tiny_mem, forget_id=report.forget_id)[0]
    assert final.status == "done"
    assert final.retrained[0]["version"] == 2 and final.retrained[0]["promoted"]
    assert final.probe is not None and final.probe["questions"] > 0
    assert final.probe["leaks"] == 0 and final.probe["passed"]
    clean = registry.current(key)
    assert clean is not None and clean.version == 2
    assert gone.id not in clean.metadata.source_ids
    journal = journal_of(tiny_mem).forget_jobs(forget_id=report.forget_id)[0]
    assert journal.probe is None  # erased once probed
    # the consolidation stage finds nothing left to retrain
    run = run_inline(tiny_mem, ALICE, stages=["retrain_forgotten"])
    assert run.results["retrain_forgotten"].count_in == 0


def test_a_forget_with_adapters_off_still_taints_them(
    tmp_path: Path, tiny_embedder: TinyEmbedder
) -> None:
    """``adapters="off"`` only stops serving: a forget made then still reaches the weights, so
    turning adapters back on never serves an adapter trained on a forgotten memory."""
    key = scope_key(ALICE)
    settings = Settings.load(home=tmp_path / "home", adapters="off")
    with Memory(settings=settings, embedder=tiny_embedder) as mem:
        gone = mem.add(FORGOTTEN, user_id="alice")
        registry = AdapterRegistry.from_settings(mem.settings)
        adapter = fake_adapter(tmp_path / "a", 0.9, source_ids=[gone.id])
        version = registry.register(key, adapter)
        assert registry.promote(key, version.version).promoted

        report = mem.forget(gone.id, reason="asked", user_id="alice")

    assert report.status == "retrain_pending"
    assert report.adapters_tainted == [
        {"scope_key": key, "version": 1, "kind": "retriever", "was_serving": True}
    ]
    assert registry.current(key) is None
    assert [p.name for p in registry.get(key, 1).path.iterdir()] == ["agentmem_adapter.json"]


def test_a_forget_erases_the_checkpoints_of_a_killed_training_run(
    tmp_path: Path, tiny_embedder: TinyEmbedder
) -> None:
    """A run killed mid-training (OOM, deploy, kill -9) never cleans its work directory, and
    its checkpoint holds weights trained on the scope: a forget removes it, a live run's stays."""
    home = tmp_path / "home"
    registry = AdapterRegistry(home / "adapters")
    child = (
        "import time\n"
        "from agentmem_gpu.registry import AdapterRegistry\n"
        f"with AdapterRegistry({str(registry.root)!r}).training_dir() as work:\n"
        "    (work / 'checkpoint.pt').write_bytes(b'weights trained on alice')\n"
        "    print(work, flush=True)\n"
        "    time.sleep(120)\n"
    )
    run = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    try:
        assert run.stdout is not None
        work = Path(run.stdout.readline().strip())
        assert (work / "checkpoint.pt").is_file()
        assert registry.sweep_work() == []  # still training: left alone
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait()
    with (
        registry.training_dir() as live,
        Memory(settings=Settings.load(home=home), embedder=tiny_embedder) as mem,
    ):
        gone = mem.add(FORGOTTEN, user_id="alice")
        report = mem.forget(gone.id, reason="asked", user_id="alice")
        assert live.is_dir()  # this process still trains: its run registers checked
    assert report.status == "done"
    assert not work.exists() and not list(work.parent.glob(f"{work.name}*"))
    assert not live.exists()


def test_a_tainted_recall_adapter_falls_back_to_retrieval_and_is_retrained_clean(
    tiny_mem: Memory, tmp_path: Path
) -> None:
    from agentmem_gpu.recall_adapter_data import build_recallset
    from agentmem_gpu.recall_adapter_pipeline import train_scope_recall_adapter
    from tests.gpu._tiny import scope_records
    from tests.gpu._tiny_lm import build_tiny_lm_for
    from tests.gpu.test_recall_adapter import fast_recall_config

    tiny_lm = build_tiny_lm_for(tmp_path / "tiny-gpt2", build_recallset(scope_records()))
    registry = AdapterRegistry.from_settings(tiny_mem.settings)
    key = scope_key(ALICE)
    config = fast_recall_config(max_steps=20, eval_interval=20)
    first = train_scope_recall_adapter(tiny_mem, ALICE, tiny_lm, config=config, registry=registry)
    assert trained_scopes(first.version.metadata) == [ALICE]  # what a retrain runs over
    registry.promote(key, first.version.version, force=True)
    question = "Which pet did Alice adopt?"
    always = tiny_mem.recall(question, user_id="alice", gate_threshold=-1e9)
    assert_answered_by(always, first.version.metadata.data_hash)
    gone = next(r for r in tiny_mem.list(user_id="alice") if r.text == FORGOTTEN)

    report = tiny_mem.forget(gone.id, reason="asked", user_id="alice")

    assert [(t["kind"], t["was_serving"]) for t in report.adapters_tainted] == [("recall", True)]
    after = tiny_mem.recall(question, user_id="alice", gate_threshold=-1e9)
    # at once: no tainted adapter is even asked
    assert after.source == "retrieved" and after.model is None and after.parametric_answer is None
    assert all(h.record.id != gone.id for h in after.hits)
    retrain_forgotten(
        tiny_mem,
        ALICE,
        registry=registry,
        configs=CleanConfigs(recall=config, force_promote=True),
    )
    final = erasure.reports(tiny_mem, forget_id=report.forget_id)[0]
    assert final.status == "done" and final.retrained[0]["kind"] == "recall"
    assert final.retrained[0]["promoted"]
    assert final.probe is not None and final.probe["questions"] > 0
    assert final.probe["adapters"][0]["clean_sources"]
    assert final.probe["leaks"] == 0
    clean = registry.current(key, "recall")
    assert clean is not None and gone.id not in clean.metadata.source_ids
    assert_answered_by(
        tiny_mem.recall(question, user_id="alice", gate_threshold=-1e9), clean.metadata.data_hash
    )


def assert_answered_by(answer: RecallAnswer, data_hash: str) -> None:
    """The adapter trained on ``data_hash`` was asked, and with the gate forced open its answer
    is the one returned. A 20-step adapter may decode an empty answer (end of text first); an
    empty answer always falls back to retrieval, so only a non-empty one must be parametric."""
    assert answer.model is not None and answer.model.endswith(f"+lora:{data_hash[:12]}")
    assert answer.parametric_answer is not None
    expected = "parametric" if answer.parametric_answer.strip() else "retrieved"
    assert answer.source == expected


BOB = Scope(user_id="bob")


def _serve_shared_adapter(mem: Memory, registry: AdapterRegistry) -> TrainOutcome:
    """Bob holds alice's turns but the one to forget; a shared adapter over both serves."""
    mem.add_many([f"{s}: {t}" for s, t in TURNS if t not in FORGOTTEN], user_id="bob")
    trained = train_scope_adapter(
        mem, [ALICE, BOB], config=fast_config(), trainset_config=ON_TRAIN, registry=registry
    )
    registry.promote(SHARED_SCOPE_KEY, trained.version.version, force=True)
    return trained


def test_a_tainted_shared_adapter_is_retrained_over_the_scopes_it_was_trained_on(
    tiny_mem: Memory,
) -> None:
    registry = AdapterRegistry.from_settings(tiny_mem.settings)
    trained = _serve_shared_adapter(tiny_mem, registry)
    assert trained.key == SHARED_SCOPE_KEY
    assert trained_scopes(trained.version.metadata) == [ALICE, BOB]
    gone = next(r for r in tiny_mem.list(user_id="alice") if r.text == FORGOTTEN)

    report = tiny_mem.forget(gone.id, reason="asked", user_id="alice")

    assert report.status == "retrain_pending"
    assert [(t["scope_key"], t["was_serving"]) for t in report.adapters_tainted] == [
        (SHARED_SCOPE_KEY, True)
    ]
    assert registry.current(SHARED_SCOPE_KEY) is None  # bob's searches lose it too, at once
    # bob's consolidation run meets it first: the shared adapter is his to retrain as well
    run = run_inline(tiny_mem, BOB, stages=["retrain_forgotten"])
    assert run.results["retrain_forgotten"].count_in == 1
    final = erasure.reports(tiny_mem, forget_id=report.forget_id)[0]
    assert final.status == "done"
    assert [(r["scope_key"], r["version"]) for r in final.retrained] == [(SHARED_SCOPE_KEY, 2)]
    assert final.probe is not None and final.probe["leaks"] == 0
    clean = registry.get(SHARED_SCOPE_KEY, 2)
    assert trained_scopes(clean.metadata) == [ALICE, BOB]
    assert gone.id not in clean.metadata.source_ids
    assert len(clean.metadata.source_ids) == len(trained.version.metadata.source_ids) - 1
    journal = journal_of(tiny_mem).forget_jobs(forget_id=report.forget_id)[0]
    assert journal.probe is None  # the forgotten text is not kept once the retrain is probed
    assert (
        run_inline(tiny_mem, ALICE, stages=["retrain_forgotten"])
        .results["retrain_forgotten"]
        .count_in
        == 0
    )


def test_a_shared_adapter_that_cannot_be_retrained_still_closes_the_forget(
    tiny_mem: Memory,
) -> None:
    """A shared adapter saved before its scopes were recorded is not retrained; the report says
    how to retrain it by hand and the forget closes, so the probe texts are not kept."""
    registry = AdapterRegistry.from_settings(tiny_mem.settings)
    trained = train_scope_adapter(
        tiny_mem,
        [ALICE],
        key=SHARED_SCOPE_KEY,
        config=fast_config(),
        trainset_config=ON_TRAIN,
        registry=registry,
    )
    metadata_file = trained.version.path / "agentmem_adapter.json"
    data = json.loads(metadata_file.read_text())
    data["trainset"].pop("scopes")
    metadata_file.write_text(json.dumps(data))
    gone = next(r for r in tiny_mem.list(user_id="alice") if r.text == FORGOTTEN)
    report = tiny_mem.forget(gone.id, reason="asked", user_id="alice")
    assert report.status == "retrain_pending"

    retrain_forgotten(tiny_mem, ALICE, registry=registry)

    final = erasure.reports(tiny_mem, forget_id=report.forget_id)[0]
    assert final.status == "done"
    (entry,) = final.retrained
    assert entry["version"] is None and not entry["promoted"]
    assert "agentmem adapters train --shared" in entry["reason"]


def test_two_scopes_that_meet_one_tainted_shared_adapter_retrain_it_once(
    tiny_mem: Memory,
) -> None:
    registry = AdapterRegistry.from_settings(tiny_mem.settings)
    _serve_shared_adapter(tiny_mem, registry)
    gone = next(r for r in tiny_mem.list(user_id="alice") if r.text == FORGOTTEN)
    report = tiny_mem.forget(gone.id, reason="asked", user_id="alice")
    configs = CleanConfigs(retriever=fast_config(), trainset=ON_TRAIN, force_promote=True)

    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(
            pool.map(
                lambda scope: retrain_forgotten(
                    tiny_mem, scope, registry=registry, configs=configs
                ),
                [ALICE, BOB],
            )
        )

    assert sorted(len(r) for r in runs) == [0, 1]  # one run retrained, the other found it done
    final = erasure.reports(tiny_mem, forget_id=report.forget_id)[0]
    assert final.status == "done"
    assert [(r["scope_key"], r["version"]) for r in final.retrained] == [(SHARED_SCOPE_KEY, 2)]
    assert [v.version for v in registry.list(SHARED_SCOPE_KEY)] == [1, 2]


def test_an_adapter_trained_across_a_forget_is_registered_tainted(
    tiny_mem: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The forget's own taint pass ran while this adapter trained (nothing to taint yet): the
    version is tainted when it is registered, and never promoted."""
    import agentmem_gpu.retriever as retriever

    gone = next(r for r in tiny_mem.list(user_id="alice") if r.text == FORGOTTEN)
    train = retriever.train_retriever_adapter

    def forgotten_meanwhile(*args: object, **kwargs: object) -> object:
        result = train(*args, **kwargs)  # type: ignore[arg-type]
        report = tiny_mem.forget(gone.id, reason="asked", user_id="alice")
        assert report.adapters_tainted == []  # nothing registered yet
        return result

    monkeypatch.setattr(retriever, "train_retriever_adapter", forgotten_meanwhile)
    registry = AdapterRegistry.from_settings(tiny_mem.settings)
    trained = train_scope_adapter(
        tiny_mem, ALICE, config=fast_config(), trainset_config=ON_TRAIN, registry=registry
    )
    assert gone.id in trained.version.metadata.source_ids
    assert trained.version.tainted
    assert trained.promotion is not None and not trained.promotion.promoted
    assert registry.current(scope_key(ALICE)) is None


def test_a_forget_awaiting_its_retrain_makes_its_scope_due(tiny_mem: Memory) -> None:
    """A forgotten user writes nothing new, yet the nightly dispatch must run their scope:
    its retrain_forgotten stage closes the forget and erases the probe texts it keeps."""
    from agentmem_consolidation import ledger
    from agentmem_consolidation.pipeline import active_scopes

    registry = AdapterRegistry.from_settings(tiny_mem.settings)
    train_scope_adapter(
        tiny_mem, ALICE, config=fast_config(), trainset_config=ON_TRAIN, registry=registry
    )
    gone = next(r for r in tiny_mem.list(user_id="alice") if r.text == FORGOTTEN)
    report = tiny_mem.forget(gone.id, reason="asked", user_id="alice")
    assert report.status == "retrain_pending"
    ledger.set_watermark(tiny_mem, ALICE, ledger.RUN_STAGE, "{}")  # a run after the forget
    assert active_scopes(tiny_mem) == [ALICE]  # nothing new was written, the retrain is due
    retrain_forgotten(
        tiny_mem,
        ALICE,
        registry=registry,
        configs=CleanConfigs(retriever=fast_config(), trainset=ON_TRAIN),
    )
    ledger.set_watermark(tiny_mem, ALICE, ledger.RUN_STAGE, "{}")
    assert active_scopes(tiny_mem) == []


@pytest.mark.parametrize(
    ("trained", "stored"),
    [
        # `agentmem adapters train --user alice` over her agents' memories
        (ALICE, Scope(user_id="alice", agent_id="bot")),
        # `--org acme` over its users' memories
        (Scope(org_id="acme"), Scope(org_id="acme", user_id="alice")),
        # a thread's adapter (consolidation runs the user's scope, threads together)
        (Scope(user_id="alice", thread_id="t1"), Scope(user_id="alice", thread_id="t1")),
    ],
    ids=["user-wide", "org-wide", "thread-keyed"],
)
def test_an_adapter_keyed_apart_from_the_forgotten_scope_is_retrained_by_consolidation(
    tmp_path: Path,
    tiny_embedder: TinyEmbedder,
    monkeypatch: pytest.MonkeyPatch,
    trained: Scope,
    stored: Scope,
) -> None:
    """The tainted adapter's key is not the key of the consolidation scope the forgotten memory
    falls in: the inline run the nightly dispatch makes still retrains it (over the scopes it
    was trained on), closes the forget and erases the probe texts."""
    from functools import partial

    import agentmem_gpu.clean as clean
    from agentmem_consolidation.pipeline import active_scopes

    configs = partial(
        CleanConfigs,
        retriever=fast_config(max_steps=4, eval_interval=2),
        trainset=ON_TRAIN,
        force_promote=True,
    )
    monkeypatch.setattr(clean, "CleanConfigs", configs)  # the stage's default, kept tiny
    where = stored.fields()
    with Memory(settings=Settings.load(home=tmp_path / "home"), embedder=tiny_embedder) as mem:
        records = mem.add_many([f"{s}: {t}" for s, t in TURNS[:6]], **where)
        registry = AdapterRegistry.from_settings(mem.settings)
        key = scope_key(trained)
        first = train_scope_adapter(
            mem,
            trained,
            config=fast_config(max_steps=4, eval_interval=2),
            trainset_config=ON_TRAIN,
            registry=registry,
        )
        assert first.key == key and trained_scopes(first.version.metadata) == [trained]
        report = mem.forget(records[0].id, reason="asked", **where)
        assert [t["scope_key"] for t in report.adapters_tainted] == [key]

        for scope in active_scopes(mem):  # what `agentmem consolidate --now` runs
            run_inline(mem, scope, stages=["retrain_forgotten"])

        final = erasure.reports(mem, forget_id=report.forget_id)[0]
        assert final.status == "done"
        assert [(r["scope_key"], r["version"], r["promoted"]) for r in final.retrained] == [
            (key, 2, True)
        ]
        assert final.probe is not None and final.probe["questions"] > 0
        assert final.probe["passed"]
        clean_version = registry.current(key)
        assert clean_version is not None and clean_version.version == 2
        assert records[0].id not in clean_version.metadata.source_ids
        assert trained_scopes(clean_version.metadata) == [trained]
        assert journal_of(mem).forget_jobs(forget_id=report.forget_id)[0].probe is None


def test_the_probe_counts_no_leak_for_an_answer_a_kept_memory_still_holds(
    tiny_mem: Memory,
) -> None:
    """A kept turn ("Bob: Rex sounds adorable!") still names Rex: a clean adapter saying "Rex"
    for the forgotten turn's question learnt it there. "shelter" is held by no kept memory, so
    saying it is a leak."""
    from types import SimpleNamespace
    from typing import Any, cast

    from agentmem_gpu.clean import probe
    from agentmem_gpu.config import RECALL_KIND

    gone = next(r for r in tiny_mem.list(user_id="alice") if r.text == FORGOTTEN)
    tiny_mem.delete(gone.id, user_id="alice")
    version = SimpleNamespace(
        kind=RECALL_KIND, scope_key="user-alice", version=2, metadata=SimpleNamespace(source_ids=[])
    )

    def probed(says: str) -> dict[str, Any]:
        model = SimpleNamespace(answer=lambda question: SimpleNamespace(answer=says))
        registry = SimpleNamespace(recall_model=lambda key: model)
        return probe(
            tiny_mem, ALICE, cast(Any, version), cast(Any, registry), [FORGOTTEN], [gone.id], 8
        )

    assert probed("Rex")["leaks"] == 0
    said_shelter = probed("It was the shelter.")
    assert 0 < said_shelter["leaks"] < said_shelter["questions"]
    assert not said_shelter["passed"]
