"""Learning from outcomes (issue 16): feedback, learned utility in search, pruning.

Every test runs on both record stores (SQLite in a fresh home, PostgreSQL in a fresh schema).
The concurrency test runs 4 processes x 500 feedbacks against PostgreSQL.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from agentmem import Memory, Settings
from agentmem.embedders import Embedder
from agentmem.errors import InvalidSettings, NotFound, ValidationError
from agentmem.models import HistoryEvent, Scope, ScopeSet, scope_text
from agentmem.stores import store_from_url
from agentmem.usefulness import (
    ARCHIVED_KEY,
    UTILITY_CHANNEL,
    _made_by,
    prune,
    restore,
    utilities,
)

ALICE = {"user_id": "alice"}
BOB = {"user_id": "bob"}

FACTS = [
    "The deploy script lives in tools/deploy.sh and needs the staging token.",
    "To deploy, run tools/deploy.sh with the production flag after tests pass.",
    "Deploys on Fridays need a second reviewer.",
    "The cafeteria serves pasta on Tuesdays.",
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def umem(request: pytest.FixtureRequest, tmp_path: Path, embedder: Embedder) -> Iterator[Memory]:
    """A Memory on each record store, holding FACTS for alice and one fact for bob."""
    home = tmp_path / "home"
    if request.param == "sqlite":
        settings = Settings.load(home=home, adapters="off")
    else:
        pg_url = request.getfixturevalue("pg_url")
        settings = Settings.load(home=home, store_url=pg_url, adapters="off")
    with Memory(settings=settings, embedder=embedder) as m:
        m.add_many(FACTS, **ALICE)
        m.add("Bob deploys with a different script, tools/bob.sh.", **BOB)
        yield m


def _ids(hits: list) -> list[str]:
    return [h.record.id for h in hits]


def test_hits_carry_one_retrieval_id_and_feedback_credits_exactly_them(umem: Memory) -> None:
    hits = umem.search("how do I deploy", k=2, **ALICE)
    assert len(hits) == 2
    rid = hits[0].retrieval_id
    assert rid and all(h.retrieval_id == rid for h in hits)
    result = umem.feedback(rid, 1.0, task="deploy the app", **ALICE)
    assert result.applied and result.retrieval_id == rid and result.feedback_id == rid
    assert sorted(u.memory_id for u in result.updates) == sorted(_ids(hits))
    for u in result.updates:
        assert u.old_utility == 0.0 and u.count == 1
        assert u.new_utility == pytest.approx(0.2)  # 0 + 0.2 * (1 - 0)
    known = utilities(umem, [r.id for r in umem.list(**ALICE)], Scope(**ALICE))
    assert set(known) == set(_ids(hits))  # nothing else was credited
    entry = umem.history(hits[0].record.id, **ALICE)[-1]
    assert entry.event is HistoryEvent.FEEDBACK and entry.actor == "feedback"
    assert entry.old_metadata == {"utility": 0.0, "utility_n": 0}
    assert entry.new_metadata is not None
    assert entry.new_metadata["reward"] == 1.0
    assert entry.new_metadata["retrieval_id"] == rid
    assert entry.new_metadata["task"] == "deploy the app"
    assert entry.version == hits[0].record.version  # the record itself is unchanged


def test_duplicate_feedback_changes_nothing(umem: Memory) -> None:
    hits = umem.search("deploy", k=3, **ALICE)
    rid = hits[0].retrieval_id
    assert rid is not None
    first = umem.feedback(rid, 1.0, **ALICE)
    history = len(umem.history(hits[0].record.id, **ALICE))
    again = umem.feedback(rid, -1.0, **ALICE)  # same retrieval: idempotent by id
    assert first.applied and not again.applied and again.updates == []
    assert len(umem.history(hits[0].record.id, **ALICE)) == history
    assert utilities(umem, [hits[0].record.id])[hits[0].record.id].count == 1
    # An explicit feedback id is idempotent too, for lists of memory ids.
    ids = _ids(hits)[:1]
    assert umem.feedback(ids, 0.5, feedback_id="episode-7", **ALICE).applied
    assert not umem.feedback(ids, 0.5, feedback_id="episode-7", **ALICE).applied
    assert utilities(umem, ids)[ids[0]].count == 2
    # A feedback id is the caller's within their scope: bob's "episode-7" (or alice's
    # retrieval id as bob's feedback id) is applied, and tells bob nothing about alice's.
    bobs = [umem.list(**BOB)[0].id]
    assert umem.feedback(bobs, 1.0, feedback_id="episode-7", **BOB).applied
    assert umem.feedback(bobs, 1.0, feedback_id=rid, **BOB).applied
    assert utilities(umem, bobs)[bobs[0]].count == 2


def test_scopes_that_print_the_same_keep_their_feedback_ids_and_retrievals_apart(
    umem: Memory,
) -> None:
    # Both print "user_id=maya,thread_id=t": the ledger must not key them on that text.
    maya = Scope(user_id="maya", thread_id="t")
    other = Scope(user_id="maya,thread_id=t")
    assert str(maya) == str(other)
    theirs = umem.add("Mallory's note", scope=other)
    mine = umem.add("Deploy with make release", scope=maya)
    assert umem.feedback([theirs.id], 1.0, feedback_id="run-1", scope=other).applied
    result = umem.feedback([mine.id], 1.0, feedback_id="run-1", scope=maya)
    assert result.applied and [u.memory_id for u in result.updates] == [mine.id]
    assert not umem.feedback([mine.id], 1.0, feedback_id="run-1", scope=maya).applied
    # A retrieval is the caller's by its exact scope, also for a caller naming no thread.
    unthreaded = Scope(user_id="maya")
    assert not _made_by(unthreaded, scope_text(Scope(user_id="maya,thread_id=q")))
    assert _made_by(unthreaded, scope_text(Scope(user_id="maya", thread_id="q,agent_id=z")))
    pair = ScopeSet.of(Scope(user_id="maya", agent_id="a"), Scope(user_id="maya", agent_id="b"))
    odd = "x) | (user_id=maya,agent_id=b,thread_id=y"
    threaded = ScopeSet.of(*(m.model_copy(update={"thread_id": odd}) for m in pair.members))
    assert _made_by(pair, scope_text(threaded))
    assert scope_text(unthreaded) == str(unthreaded)  # ordinary scopes keep their old rows


def test_bad_feedback_is_refused_and_changes_nothing(umem: Memory) -> None:
    hits = umem.search("deploy", k=2, **ALICE)
    rid = hits[0].retrieval_id
    assert rid is not None
    bob_hits = umem.search("deploy", k=1, **BOB)
    bob_rid = bob_hits[0].retrieval_id
    assert bob_rid is not None
    every = [r.id for r in umem.list(**ALICE)] + _ids(bob_hits)
    with pytest.raises(NotFound, match="no retrieval"):
        umem.feedback("00000000-0000-4000-8000-000000000000", 1.0, **ALICE)
    with pytest.raises(NotFound, match="no memory"):
        umem.feedback(["00000000-0000-4000-8000-000000000000"], 1.0, **ALICE)
    # another scope's ids are as unknown: alice does not learn that bob's exist
    with pytest.raises(NotFound, match="no memory"):
        umem.feedback(_ids(bob_hits), 1.0, **ALICE)
    with pytest.raises(NotFound, match="no retrieval"):
        umem.feedback(bob_rid, 1.0, **ALICE)  # bob's retrieval, alice's feedback
    with pytest.raises(NotFound):  # one foreign id spoils the whole list
        umem.feedback([*_ids(hits), *_ids(bob_hits)], 1.0, **ALICE)
    for reward in (1.5, -2, math.nan, math.inf, True, "1"):
        with pytest.raises(ValidationError):
            umem.feedback(rid, reward, **ALICE)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        umem.feedback([], 1.0, **ALICE)
    with pytest.raises(ValidationError):
        umem.feedback(rid, 1.0, feedback_id="", **ALICE)
    assert utilities(umem, every) == {}
    assert all(e.event is not HistoryEvent.FEEDBACK for i in every for e in umem.history(i))
    # The refused retrieval can still be credited once, correctly.
    assert umem.feedback(rid, 1.0, **ALICE).applied


@pytest.mark.parametrize(
    "bad",
    [
        {"prior": math.nan},
        {"prior": math.inf},
        {"archive_below": -math.inf},
        {"promote_above": math.nan},
        {"reward_range": (-1e308, 1e308)},  # finite ends, but Q + a * (r - Q) overflows
        {"reward_range": (0.0, math.inf)},
    ],
)
def test_utility_settings_refuse_nan_and_infinite_values(tmp_path: Path, bad: dict) -> None:
    with pytest.raises(InvalidSettings):
        Settings.load(home=tmp_path, utility=bad)


def test_without_feedback_search_is_exactly_as_before(umem: Memory) -> None:
    queries = ["deploy script", "what is for lunch", "who reviews friday deploys"]
    on = [umem.search(q, k=4, **ALICE) for q in queries]
    umem.settings.utility.enabled = False
    off = [umem.search(q, k=4, **ALICE) for q in queries]
    for a, b in zip(on, off, strict=True):
        assert [(h.record.id, h.score, h.channels) for h in a] == [
            (h.record.id, h.score, h.channels) for h in b
        ]


def test_utility_reranks_what_keeps_failing(umem: Memory) -> None:
    hits = umem.search("how do I deploy", k=3, **ALICE)
    top, second = hits[0].record.id, hits[1].record.id
    for i in range(6):
        umem.feedback([top], -1.0, feedback_id=f"fail-{i}", **ALICE)
        umem.feedback([second], 1.0, feedback_id=f"win-{i}", **ALICE)
    again = umem.search("how do I deploy", k=4, **ALICE)
    assert again[0].record.id == second
    assert _ids(again).index(top) > 0  # still found: demoted, not filtered
    assert UTILITY_CHANNEL in again[0].channels
    assert again[0].channels[UTILITY_CHANNEL].score > 0.5
    # Switching utility off restores relevance order.
    umem.settings.utility.enabled = False
    assert umem.search("how do I deploy", k=3, **ALICE)[0].record.id == top


def test_agent_handles_credit_team_memories_but_not_other_agents(umem: Memory) -> None:
    planner = umem.for_agent("planner", team="ops", org_id="acme")
    coder = umem.for_agent("coder", team="ops", org_id="acme")
    spy = umem.for_agent("spy", team="other", org_id="acme")
    shared = planner.add("Release checklist: tag, build, deploy to staging.", shared=True)
    private = coder.add("My own deploy shortcut is tools/fast.sh.")
    hits = coder.search("deploy", k=5)
    assert {h.record.id for h in hits} == {shared.id, private.id}
    assert hits[0].retrieval_id is not None
    result = coder.feedback(hits[0].retrieval_id, 1.0)
    assert {u.memory_id for u in result.updates} == {shared.id, private.id}
    with pytest.raises(NotFound):
        spy.feedback(hits[0].retrieval_id, -1.0)
    with pytest.raises(NotFound):
        planner.feedback([private.id], -1.0)  # the coder's private memory


def test_feedback_on_a_retrieval_another_reader_made_is_not_found(umem: Memory) -> None:
    researcher = umem.for_agent("researcher", user_id="maya", team="report")
    writer = umem.for_agent("writer", user_id="maya", team="report")
    fact = researcher.add("Verified: the city has 142 km of cycling lanes", shared=True)
    rid = researcher.search("cycling lanes")[0].retrieval_id
    assert rid is not None
    with pytest.raises(NotFound, match="no retrieval"):
        writer.feedback(rid, -1.0)  # a team mate sees the memory, yet did not make the search
    with pytest.raises(NotFound, match="no retrieval"):
        umem.feedback(rid, -1.0, user_id="maya")  # nor did the user above the agent
    result = researcher.feedback(rid, 1.0)  # the owner's feedback was not blocked
    assert result.applied and [u.memory_id for u in result.updates] == [fact.id]
    # a retrieval made in one of the caller's threads is the caller's
    researcher.add("Draft: cycling lanes section", thread_id="t1")
    threaded = researcher.search("cycling lanes", thread_id="t1")[0].retrieval_id
    assert threaded is not None and researcher.feedback(threaded, 1.0).applied
    umem.add("Deploy notes for this chat", thread_id="t(1) | x", **ALICE)
    mine = umem.search("deploy", thread_id="t(1) | x", **ALICE)[0].retrieval_id
    assert mine is not None and umem.feedback(mine, 1.0, **ALICE).applied


def test_context_credits_the_records_it_shows(umem: Memory) -> None:
    ctx = umem.context("how do I deploy", max_tokens=60, **ALICE)
    assert ctx.records and ctx.retrieval_id
    result = umem.feedback(ctx.retrieval_id, 1.0, **ALICE)
    assert sorted(u.memory_id for u in result.updates) == sorted(r.id for r in ctx.records)


def test_prune_archives_what_never_helps_and_promotes_what_does(umem: Memory) -> None:
    lunch = umem.search("cafeteria pasta", k=1, **ALICE)[0].record
    exp = umem.record_experience(
        "deploy the app",
        [{"action": "run", "args": {"script": "tools/deploy.sh"}, "observation": "ok"}],
        "success",
        reward=1.0,
        **ALICE,
    )
    good = exp.experience.record
    for i in range(5):
        umem.feedback([lunch.id], -1.0, feedback_id=f"lunch-{i}", **ALICE)
        umem.feedback([good.id], 1.0, feedback_id=f"good-{i}", **ALICE)
    preview = prune(umem, Scope(**ALICE), dry_run=True)
    assert [c.memory_id for c in preview.archived] == [lunch.id]
    assert umem.get(lunch.id).metadata.get(ARCHIVED_KEY) is None  # dry run wrote nothing

    report = prune(umem, Scope(**ALICE))
    [archived] = report.archived
    assert archived.memory_id == lunch.id and archived.count == 5 and archived.utility < -0.3
    assert "utility" in archived.reason
    assert [c.memory_id for c in report.promoted] == [good.id]
    assert report.promoted[0].new_importance > report.promoted[0].old_importance
    stored = umem.get(lunch.id)
    assert stored.metadata[ARCHIVED_KEY] is True and stored.importance < lunch.importance
    assert umem.history(lunch.id)[-1].actor == "utility"
    assert lunch.id not in _ids(umem.search("cafeteria pasta", k=5, **ALICE))
    assert lunch.id in _ids(
        umem.search("cafeteria pasta", k=5, filters={ARCHIVED_KEY: True}, **ALICE)
    )

    # No new evidence: a second pass changes nothing.
    assert prune(umem, Scope(**ALICE)).changes == []
    # Bob's scope is untouched by alice's pass, and restore brings the memory back.
    assert prune(umem, Scope(**BOB)).changes == []
    restore(umem, lunch.id, Scope(**ALICE))
    assert lunch.id in _ids(umem.search("cafeteria pasta", k=5, **ALICE))


def _hammer(url: str, memory_id: str, worker: int, n: int) -> None:
    """One process: ``n`` feedbacks on one memory through the public feedback path."""
    from agentmem import usefulness

    store = store_from_url(url, pool_min=1, pool_max=2, timeout=30.0)
    store.setup()
    backends = SimpleNamespace(store=store, settings=Settings())
    try:
        for i in range(n):
            reward = 1.0 if (i + worker) % 3 else -1.0
            usefulness.feedback(backends, Scope(user_id="alice"), [memory_id], reward)  # type: ignore[arg-type]
    finally:
        store.close()


@pytest.mark.postgres
@pytest.mark.timeout(600)  # the workers' pace depends on the machine's load: no stopwatch here
def test_concurrent_feedback_loses_no_update(
    pg_url: str, tmp_path: Path, embedder: Embedder
) -> None:
    settings = Settings.load(home=tmp_path / "home", store_url=pg_url, adapters="off")
    with Memory(settings=settings, embedder=embedder) as m:
        target = m.add("A memory four agents rate at once.", **ALICE).id
    workers, per = 4, 250
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(pg_url, target, w, per)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    with Memory(settings=settings, embedder=embedder) as m:
        [row] = utilities(m, [target]).values()
        entries = [e for e in m.history(target) if e.event is HistoryEvent.FEEDBACK]
    assert row.count == workers * per == len(entries)
    # Serial replay in commit order: every update started from the one before it.
    alpha, q = settings.utility.learning_rate, settings.utility.prior
    for n, e in enumerate(entries, start=1):
        assert e.old_metadata is not None and e.new_metadata is not None
        assert e.old_metadata["utility"] == pytest.approx(q, abs=1e-12)
        assert e.new_metadata["utility_n"] == n
        q = q + alpha * (e.new_metadata["reward"] - q)
        assert e.new_metadata["utility"] == pytest.approx(q, abs=1e-12)
    assert row.utility == pytest.approx(q, abs=1e-12)
    rewards = sorted(e.new_metadata["reward"] for e in entries if e.new_metadata)
    expected = sorted(1.0 if (i + w) % 3 else -1.0 for w in range(workers) for i in range(per))
    assert rewards == expected


def test_rerank_latency_benchmark_writes_its_section(tmp_path: Path, embedder: Embedder) -> None:
    from benchmarks import utility_rerank

    out, js = tmp_path / "RESULTS.md", tmp_path / "r.json"
    argv = ["--memories", "40", "--queries", "4", "--out", str(out), "--json", str(js)]
    results = utility_rerank.main(argv, embedder=embedder)
    assert set(results["latency"]) == set(utility_rerank.MODES)
    assert results["rerank_step"]["n"] == 4
    text = out.read_text()
    assert "<!-- utility:start -->" in text and "| feedback |" in text
