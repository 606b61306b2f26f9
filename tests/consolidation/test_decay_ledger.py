"""Consolidation without a broker: stages, ledger, watermarks, decay, archive, restore,
retention, and per-scope locks."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

import agentmem_consolidation
from agentmem import Memory, Scope, Settings, ValidationError, writing
from agentmem.embedders import Embedder
from agentmem.models import MemoryKind, utcnow
from agentmem.settings import ConsolidationSettings
from agentmem_consolidation import decay, ledger, run_inline
from agentmem_consolidation.pipeline import active_scopes

ALICE = Scope.of(user_id="alice")


def _fill(mem: Memory, n: int = 6) -> None:
    for i in range(n):
        mem.add(
            f"Alice: I adopted a cat named Tom{i}. I work as a nurse in Berlin.",
            user_id="alice",
            thread_id=f"t{i % 2}",
            infer="deferred",
        )


@pytest.mark.parametrize(
    ("scope", "stages"),
    [(ALICE, ["bogus"]), (ALICE, "flush"), (ALICE, []), (None, None), ({"user_id": "a"}, None)],
)
def test_run_inline_refuses_bad_arguments_before_anything_runs(
    mem: Memory, scope: object, stages: object
) -> None:
    with pytest.raises(ValidationError):
        run_inline(mem, scope, stages=stages)  # type: ignore[arg-type]
    assert ledger.jobs(mem) == []  # no failed rows for a typo


def test_retention_curve() -> None:
    config = ConsolidationSettings(stability_days=10)
    now = utcnow()
    from agentmem.models import MemoryRecord

    fresh = MemoryRecord(scope=ALICE, text="x", created_at=now)
    old = MemoryRecord(scope=ALICE, text="x", created_at=now - timedelta(days=10))
    recalled = old.model_copy(update={"access_count": 3})
    important = old.model_copy(update={"importance": 1.0})
    assert decay.retention(fresh, now, config) == pytest.approx(1.0)
    assert decay.retention(old, now, config) == pytest.approx(0.3679, abs=1e-3)
    assert decay.retention(recalled, now, config) > decay.retention(old, now, config)
    assert decay.retention(important, now, config) > decay.retention(old, now, config)
    touched = old.model_copy(update={"last_accessed_at": now})
    assert decay.retention(touched, now, config) == pytest.approx(1.0)


def test_extractive_summary_keeps_central_sentences() -> None:
    text = decay.extractive_summary(
        ["Alice loves cats. The weather was odd.", "Alice has two cats.", "Cats sleep a lot."], 2
    )
    assert "cats" in text.lower() and "weather" not in text


def test_a_summary_spans_its_members_event_times_not_their_writing_order() -> None:
    """A diary added newest first was summarised "(2024-05-01 to 2024-01-01)", dated by its
    latest entry, its sentences in the order written."""
    from datetime import UTC, datetime

    from agentmem.models import MemoryRecord

    written = utcnow() - timedelta(days=400)
    diary = [
        MemoryRecord(
            scope=ALICE,
            text=text,
            event_time=datetime(2024, month, 1, 10, tzinfo=UTC),
            created_at=written + timedelta(minutes=n),
        )
        for n, (month, text) in enumerate(
            [
                (5, "Alice planted tomatoes in the garden."),
                (3, "Alice watered the garden tomatoes."),
                (1, "Alice bought garden seeds for tomatoes."),
            ]
        )
    ]
    sid = str(uuid.uuid4())
    summary = decay._summary_record(sid, diary, ConsolidationSettings(summary_sentences=3))
    assert "(2024-01-01 to 2024-05-01)" in summary.text
    assert summary.event_time == datetime(2024, 1, 1, 10, tzinfo=UTC)
    body = summary.text.split("): ", 1)[1]
    assert body.index("bought") < body.index("watered") < body.index("planted")


def test_inline_run_ledger_and_watermarks(mem: Memory) -> None:
    _fill(mem)
    report = run_inline(mem, ALICE)
    assert not report.skipped
    assert report.results["extract"].count_in == 6
    facts = mem.list(user_id="alice", kinds="semantic", limit=1000)
    assert facts and report.results["extract"].count_out >= 1
    rows = ledger.jobs(mem, run_id=report.run_id)
    assert {r.stage for r in rows} == {"run", *agentmem_consolidation.STAGES}
    assert all(r.status == "done" and r.scope == "user_id=alice" for r in rows)
    extract_row = next(r for r in rows if r.stage == "extract")
    assert (extract_row.count_in, extract_row.duration_s > 0) == (6, True)
    assert ledger.watermark(mem, ALICE, "run") is not None
    assert active_scopes(mem) == []
    # A rerun finds nothing new and writes nothing twice.
    again = run_inline(mem, ALICE)
    assert again.results["extract"].count_in == 0
    assert len(mem.list(user_id="alice", kinds="semantic", limit=1000)) == len(facts)
    mem.add("Bob: hi", user_id="bob")
    assert active_scopes(mem) == [Scope.of(user_id="bob")]

    # An episode written while a run is under way, after its extract stage, is still found.
    def write_late(name: str, _: object) -> None:
        if name == "extract":
            mem.add("Alice: I moved to Eastgate.", user_id="alice", infer="deferred")

    run_inline(mem, ALICE, on_stage=write_late)
    assert ALICE in active_scopes(mem)


def test_utility_stage_archives_what_keeps_failing(mem: Memory) -> None:
    kept = mem.add("Alice: the office wifi password is on the fridge.", user_id="alice")
    misleading = mem.add("Alice: the printer is on the third floor.", user_id="alice")
    for i in range(5):
        mem.feedback([misleading.id], -1.0, feedback_id=f"fail-{i}", user_id="alice")
        mem.feedback([kept.id], 1.0, feedback_id=f"ok-{i}", user_id="alice")
    report = run_inline(mem, ALICE)
    assert report.results["utility"].count_out == 1
    assert f"archive {misleading.id[:8]}" in report.results["utility"].note
    row = next(r for r in ledger.jobs(mem, run_id=report.run_id) if r.stage == "utility")
    assert (row.status, row.count_out) == ("done", 1)
    assert f"archive {misleading.id[:8]}" in row.note  # the evidence is in the ledger
    assert mem.get(misleading.id).metadata.get("archived") is True
    assert mem.get(kept.id).metadata.get("archived") is not True
    # A second run finds nothing new to change.
    assert run_inline(mem, ALICE).results["utility"].count_out == 0


def test_buffers_are_flushed(mem: Memory) -> None:
    buf = mem.buffer(user_id="alice", thread_id="live")
    buf.append("user", "I moved to Lisbon.", name="Alice")
    assert active_scopes(mem) == [ALICE]
    report = run_inline(mem, ALICE)
    assert report.results["flush"].count_out == 1
    assert len(buf) == 0


def test_decay_archives_summarises_restores_and_retains(mem: Memory) -> None:
    _fill(mem, 4)
    config = ConsolidationSettings(stability_days=1, summary_cluster_max=10)
    later = utcnow() + timedelta(days=30)
    report = decay.decay_scope(mem, ALICE, config, later)
    # Two threads: two clusters, two summaries; every episode archived, none deleted.
    assert (report.archived, report.summaries, report.deleted) == (4, 2, 0)
    episodes = mem.list(user_id="alice", kinds="episodic", limit=100)
    archived = [r for r in episodes if decay.is_archived(r)]
    summaries = [r for r in episodes if decay.SUMMARY_OF_KEY in r.metadata]
    assert len(archived) == 4 and len(summaries) == 2
    assert {i for s in summaries for i in s.metadata[decay.SUMMARY_OF_KEY]} == {
        r.id for r in archived
    }
    hits = mem.search("cat named Tom", user_id="alice", kinds=["episodic"], k=20)
    assert {h.record.id for h in hits} == {s.id for s in summaries}
    shown = mem.search("cat", user_id="alice", kinds=["episodic"], filters={"archived": True})
    assert {h.record.id for h in shown} <= {r.id for r in archived} and shown
    # Idempotent: a second pass does nothing more.
    assert decay.decay_scope(mem, ALICE, config, later) == decay.DecayReport(6, 0, 0, 0)
    restored = decay.restore(mem, archived[0].id)
    assert not decay.is_archived(restored)
    hits = mem.search("cat named Tom", user_id="alice", kinds=["episodic"], k=20)
    assert archived[0].id in {h.record.id for h in hits}
    # Retention deletes archived episodes only, and only past the policy; summaries stay.
    keep = config.model_copy(update={"retention_days": {"episodic": 10}})
    assert decay.decay_scope(mem, ALICE, keep, later + timedelta(days=5)).deleted == 0
    gone = decay.decay_scope(mem, ALICE, keep, later + timedelta(days=11))
    assert gone.deleted == 3
    left = {r.id for r in mem.list(user_id="alice", kinds="episodic", limit=100)}
    # The restored episode decayed again (archived just now, so not yet past retention).
    assert {archived[0].id} | {s.id for s in summaries} <= left
    assert not {r.id for r in archived[1:]} & left


def test_search_counts_recalls(mem: Memory) -> None:
    record = mem.add("Alice likes green tea.", user_id="alice")
    assert mem.get(record.id).access_count == 0
    mem.search("green tea", user_id="alice")
    mem.backends.recalls.flush()  # written behind the search (agentmem.recall_log)
    got = mem.get(record.id)
    assert got.access_count == 1 and got.last_accessed_at is not None


def test_store_lease(mem: Memory) -> None:
    store = mem.backends.store
    assert store.lease("scope:x", "run-a", 60)
    assert not store.lease("scope:x", "run-b", 60)
    assert store.lease("scope:x", "run-a", 60)  # renewal
    assert store.lease_owner("scope:x") == "run-a"
    assert not store.release("scope:x", "run-b")
    assert store.release("scope:x", "run-a")
    assert store.lease("scope:x", "run-b", 0.01)
    time.sleep(0.05)
    assert store.lease("scope:x", "run-a", 60)  # expired: taken over


@pytest.mark.parametrize("backend", ["store", "redis"])
def test_concurrent_runs_never_interleave(
    backend: str, home: Path, embedder: Embedder, request: pytest.FixtureRequest
) -> None:
    overrides: dict[str, object] = {}
    if backend == "redis":
        redis_url = request.getfixturevalue("redis_url")
        prefix = request.getfixturevalue("redis_prefix")
        overrides = {"broker_url": redis_url, "lock_prefix": prefix}
    settings = Settings.load(home=home, consolidation=overrides)
    with Memory(settings=settings, embedder=embedder) as mem:
        _fill(mem, 4)
        reports = []

        def go() -> None:
            reports.append(run_inline(mem, ALICE))

        threads = [threading.Thread(target=go) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ran = [r for r in reports if not r.skipped]
        assert len(ran) == 1 and len(reports) == 2
        rows = [r for r in ledger.jobs(mem, scope=ALICE, limit=100) if r.stage == "run"]
        assert sorted(r.status for r in rows) == ["done", "skipped"]
        # With waiting allowed, the second run starts after the first ended.
        patient = settings.model_copy(
            update={"consolidation": settings.consolidation.model_copy(update={"lock_wait_s": 60})}
        )
        mem.settings = patient
        reports.clear()
        threads = [threading.Thread(target=go) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(not r.skipped for r in reports)
        spans = sorted(
            (r.started_at, r.started_at + r.duration_s)
            for r in ledger.jobs(mem, scope=ALICE, limit=100)
            if r.stage == "run" and r.run_id in {x.run_id for x in reports}
        )
        assert spans[0][1] <= spans[1][0]
        assert mem.list(user_id="alice", kinds=MemoryKind.SEMANTIC, limit=1000)


def test_postgres_ledger_watermarks_and_leases(pg_url: str) -> None:
    from agentmem.stores._jobs_sql import JobRow
    from agentmem.stores.postgres import PostgresStore

    with PostgresStore(pg_url) as store:
        store.job_write(JobRow("r1", "extract", "user_id=a", "running", started_at=1.0))
        store.job_write(JobRow("r1", "extract", "user_id=a", "done", 3, 2, 1.0, 0.5))
        store.job_write(JobRow("r2", "run", "user_id=b", "skipped", started_at=2.0))
        assert [r.status for r in store.job_rows(scope="user_id=a")] == ["done"]
        assert [r.run_id for r in store.job_rows()] == ["r2", "r1"]
        assert store.watermark("user_id=a", "distil") is None
        store.set_watermark("user_id=a", "distil", '{"count": 1}')
        store.set_watermark("user_id=a", "distil", '{"count": 2}')
        mark = store.watermark("user_id=a", "distil")
        assert mark is not None and mark.value == '{"count": 2}'
        assert [w.scope for w in store.watermarks("distil")] == ["user_id=a"]
        assert store.lease("scope:a", "r1", 60) and not store.lease("scope:a", "r2", 60)
        assert store.lease_owner("scope:a") == "r1"
        assert store.release("scope:a", "r1") and store.lease("scope:a", "r2", 60)


def test_internal_searches_do_not_count_as_recalls(mem: Memory) -> None:
    """Update decisions compare a new fact with known ones through search; that is not a
    recall, so it must not keep the known facts from decaying. A context counts a recall of
    what it kept, not of every candidate it looked at."""
    mem.add("I love green tea.", user_id="alice", infer=True)
    (fact,) = mem.list(user_id="alice", kinds="semantic")
    mem.add("I really love green tea.", user_id="alice", infer=True)  # decided against `fact`
    assert mem.get(fact.id).access_count == 0

    block = mem.context("green tea", user_id="alice", max_tokens=1000)
    mem.backends.recalls.flush()
    kept = {r.id for r in block.records}
    listed = mem.list(user_id="alice", limit=100)
    assert kept and len(listed) > len(kept)  # it looked at more than it kept
    for record in listed:
        assert record.access_count == (1 if record.id in kept else 0), record.text


def test_langgraph_store_items_are_exempt_from_decay_and_retention(mem: Memory) -> None:
    """Store items were archived, summarised ("Summary of 2 archived memories" appeared in the
    user's scope) and deleted by retention; they change only through the store (issue 22)."""
    pytest.importorskip("langgraph")
    from agentmem_graphs import AgentMemStore

    store = AgentMemStore(mem, user_id="alice")
    store.put(("prefs",), "tea", {"text": "Alice drinks jasmine tea"})
    store.put(("prefs",), "city", {"text": "Alice lives in Berlin"})
    config = ConsolidationSettings(stability_days=1, retention_days={"episodic": 1})
    for days in (30, 60):
        report = decay.decay_scope(mem, ALICE, config, utcnow() + timedelta(days=days))
        assert (report.archived, report.summaries, report.deleted) == (0, 0, 0)
    assert store.get(("prefs",), "tea") is not None
    assert store.list_namespaces() == [("prefs",)]
    assert [r.metadata.get(decay.SUMMARY_OF_KEY) for r in mem.list(user_id="alice")] == [None] * 2
    assert not any(decay.is_archived(r) for r in mem.list(user_id="alice"))
    # Opted in, they decay like any episode.
    opted = config.model_copy(update={"decay_store_items": True})
    assert decay.decay_scope(mem, ALICE, opted, utcnow() + timedelta(days=30)).archived == 2


def test_inline_stage_out_of_retries_is_failed_not_retrying(
    home: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentmem.errors import BackendUnavailable
    from agentmem_consolidation.stages import STAGES

    def down(*_: object) -> None:
        raise BackendUnavailable("llm down")

    monkeypatch.setitem(STAGES, "distil", down)
    settings = Settings.load(home=home, consolidation={"max_retries": 1, "retry_backoff_s": 0.01})
    with Memory(settings=settings, embedder=embedder) as m:
        with pytest.raises(BackendUnavailable):
            run_inline(m, ALICE, stages=["distil"])
        rows = {r.stage: (r.status, r.attempt) for r in ledger.jobs(m, scope=ALICE)}
    assert rows["distil"] == (ledger.FAILED, 2)
    assert rows["run"][0] == ledger.FAILED


def test_retention_keeps_a_memory_whose_archive_mark_is_not_a_time(
    mem: Memory, caplog: pytest.LogCaptureFixture
) -> None:
    odd = mem.add(
        "Alice: imported note",
        user_id="alice",
        metadata={"archived": True, "archived_at": "last tuesday"},
    )
    config = ConsolidationSettings(retention_days={"episodic": 30})
    report = decay.decay_scope(mem, ALICE, config, utcnow() + timedelta(days=60))
    assert report.deleted == 0
    assert mem.get(odd.id) is not None
    assert "last tuesday" in caplog.text and "retention keeps it" in caplog.text


def test_homes_sharing_a_redis_have_their_own_scope_locks(
    mem: Memory, home: Path, redis_url: str, redis_prefix: str
) -> None:
    from agentmem_consolidation.locks import redis_owner, scope_lock

    def settings(name: str) -> Settings:
        options = {"global_keyprefix": f"{redis_prefix}{name}:"}
        return Settings.load(
            home=home,
            consolidation={"broker_url": redis_url, "broker_transport_options": options},
        )

    a, b = settings("a"), settings("b")
    key = ledger.scope_key(ALICE)
    assert scope_lock(mem, a, key).acquire("run-a")
    assert scope_lock(mem, b, key).acquire("run-b")  # home b's alice is not home a's
    assert (redis_owner(a, key), redis_owner(b, key)) == ("run-a", "run-b")
    assert scope_lock(mem, a, key).release("run-a")
    assert scope_lock(mem, b, key).release("run-b")


def test_retention_deletes_what_prune_archived_in_a_kind_that_does_not_decay(
    mem: Memory,
) -> None:
    pruned = mem.add(
        "Alice prefers the printer on the third floor.", user_id="alice", kind="semantic"
    )
    kept = mem.add("Alice works as a nurse in Berlin.", user_id="alice", kind="semantic")
    # archived as the utility stage's prune does: the shared archive marks
    mem.update(
        pruned.id,
        metadata={decay.ARCHIVED_KEY: True, decay.ARCHIVED_AT_KEY: utcnow().isoformat()},
    )
    config = ConsolidationSettings(retention_days={"semantic": 30})
    assert "semantic" not in config.decay_kinds
    report = decay.decay_scope(mem, ALICE, config, utcnow() + timedelta(days=60))
    assert (report.archived, report.deleted) == (0, 1)
    assert mem.get(kept.id) is not None and not decay.is_archived(mem.get(kept.id))
    left = {
        r.id
        for r in mem.list(user_id="alice", kinds="semantic", limit=100, filters={"archived": True})
    }
    assert pruned.id not in left


def test_a_summary_a_forget_erased_is_replaced_under_a_new_id(mem: Memory) -> None:
    """Summary ids derive from their cluster; the members left after a forget still pointed to
    the erased one, and the next pass re-created a live record under the tombstoned id (which
    an import of a backup then skipped as erased)."""
    pin = mem.add("Alice: my bank PIN is 4821.", user_id="alice", thread_id="t1")
    walk = mem.add("Alice: I walked the dog in the park.", user_id="alice", thread_id="t1")
    loves = mem.add("Alice: the dog loves the park.", user_id="alice", thread_id="t1")
    config = ConsolidationSettings(stability_days=1)
    later = utcnow() + timedelta(days=30)
    decay.decay_scope(mem, ALICE, config, later)
    (erased,) = [
        r for r in mem.list(user_id="alice", limit=50) if decay.SUMMARY_OF_KEY in r.metadata
    ]
    mem.forget(pin.id, reason="user asked", user_id="alice")
    assert mem.backends.store.get_many([erased.id]) == []

    report = decay.decay_scope(mem, ALICE, config, later + timedelta(days=1))
    assert report.summaries == 1 and mem.backends.store.get_many([erased.id]) == []
    (summary,) = [
        r for r in mem.list(user_id="alice", limit=50) if decay.SUMMARY_OF_KEY in r.metadata
    ]
    assert summary.id != erased.id and not mem.backends.store.tombstoned([summary.id])
    assert sorted(summary.metadata[decay.SUMMARY_OF_KEY]) == sorted([walk.id, loves.id])
    assert "4821" not in summary.text
    for member in mem.backends.store.get_many([walk.id, loves.id]):
        assert member.metadata[decay.SUMMARIZED_BY_KEY] == summary.id
    # Stable: the next pass neither re-points nor summarises again.
    assert decay.decay_scope(mem, ALICE, config, later + timedelta(days=2)).summaries == 0
    # A backup taken now restores the summary into this home.
    backup = [r for r in mem.export() if r.id == summary.id]
    writing.delete(mem.backends, backup, actor="test")  # the row lost
    assert mem.import_records(backup) == 1


def test_a_resumed_inline_run_totals_every_stage_it_did_and_keeps_its_start(
    mem: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run row of a resumed run summed only the resumed stages and started at the resume."""
    from agentmem_consolidation.stages import STAGES

    _fill(mem, 3)

    def crash(*_: object) -> None:
        raise RuntimeError("crash in distil")

    with monkeypatch.context() as patched:
        patched.setitem(STAGES, "distil", crash)
        with pytest.raises(RuntimeError):
            run_inline(mem, ALICE, run_id="run-1")
    (first,) = [r for r in ledger.jobs(mem, run_id="run-1") if r.stage == ledger.RUN_STAGE]
    run_inline(mem, ALICE, run_id="run-1")
    rows = ledger.jobs(mem, run_id="run-1", limit=100)
    (run,) = [r for r in rows if r.stage == ledger.RUN_STAGE]
    done = [r for r in rows if r.stage != ledger.RUN_STAGE and r.status == ledger.DONE]
    assert {r.stage for r in done} == set(agentmem_consolidation.STAGES)
    assert run.status == ledger.DONE and run.started_at == first.started_at
    assert (run.count_in, run.count_out) == (
        sum(r.count_in for r in done),
        sum(r.count_out for r in done),
    )
    assert next(r for r in done if r.stage == "extract").count_in == 3  # the first attempt's
