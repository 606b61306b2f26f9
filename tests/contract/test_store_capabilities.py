"""The optional store interfaces (``agentmem.stores.capabilities``): one contract each.

Every store of the suite runs every test; a test of a capability the store does not implement
is skipped (``capable``). Stores: SQLite in a fresh file, PostgreSQL in a fresh schema, and a
records-only store (real SQLite underneath, implementing :class:`RecordStore` and nothing
else), which skips every capability here and shows what a store without them gets: the
controller refuses each missing feature with :class:`MissingCapability`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from agentmem import Memory, Settings
from agentmem.embedders import Embedder
from agentmem.errors import Conflict, InvalidProfile, MissingCapability
from agentmem.filters import Condition, FilterOp
from agentmem.models import (
    HistoryEntry,
    MemoryKind,
    MemoryRecord,
    Scope,
    ScopeSet,
    ScopeSummary,
)
from agentmem.stores import (
    CAPABILITIES,
    ForgetJob,
    ForgetJournal,
    GraphRows,
    JobLedger,
    KeyStore,
    MaintenanceLog,
    NoteStore,
    OutboxItem,
    QuarantineStore,
    RecordQuery,
    RecordStore,
    SessionTexts,
    SQLiteStore,
    StoreCounts,
    UtilityLedger,
    WriteBatch,
    require,
    store_from_url,
)
from agentmem.stores._graph_sql import GraphRow
from agentmem.stores._jobs_sql import JobRow
from agentmem.stores._keys_sql import KeyRow
from agentmem.stores._notes_sql import LinkRow, ProfileRow
from agentmem.stores._utility_sql import FeedbackWrite, RetrievalRow
from agentmem.stores.base import SessionTurn, record_session
from tests.contract.test_record_store import (
    ALICE,
    BOB,
    T0,
    insert,
    rec,
    session_records,
    vector,
)

C = TypeVar("C")
ALICE_T1 = Scope(user_id="alice", thread_id="t1")


class RecordsOnlyStore(RecordStore):
    """A store implementing the records core and no optional interface (a real SQLite store
    underneath, reached only through the core methods)."""

    def __init__(self, inner: RecordStore) -> None:
        self.inner = inner
        self.url = f"records-only+{inner.url}"

    def setup(self) -> None:
        self.inner.setup()

    def close(self) -> None:
        self.inner.close()

    def apply(self, batch: WriteBatch) -> None:
        self.inner.apply(batch)

    def get_many(
        self, ids: Sequence[str], scope: Scope | ScopeSet | None = None
    ) -> list[MemoryRecord]:
        return self.inner.get_many(ids, scope)

    def query(self, query: RecordQuery) -> list[MemoryRecord]:
        return self.inner.query(query)

    def adjacent(
        self, record: MemoryRecord, group: Condition | None = None
    ) -> tuple[MemoryRecord | None, MemoryRecord | None]:
        return self.inner.adjacent(record, group)

    def ids_in_scope(self, scope: Scope | ScopeSet) -> list[str]:
        return self.inner.ids_in_scope(scope)

    def scope_summaries(self, scope: Scope | ScopeSet) -> list[ScopeSummary]:
        return self.inner.scope_summaries(scope)

    def history(self, memory_id: str, scope: Scope | ScopeSet | None = None) -> list[HistoryEntry]:
        return self.inner.history(memory_id, scope)

    def pending_index(self, limit: int = 1000) -> list[OutboxItem]:
        return self.inner.pending_index(limit)

    def ack_index(self, seqs: Sequence[int]) -> None:
        self.inner.ack_index(seqs)

    def cached_embeddings(self, embedder: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        return self.inner.cached_embeddings(embedder, hashes)

    def all_ids(self, after: str | None = None, limit: int = 1000) -> list[str]:
        return self.inner.all_ids(after, limit)

    def counts(self) -> StoreCounts:
        return self.inner.counts()


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "records-only"]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordStore]:
    """An open, empty store of each kind."""
    s: RecordStore
    if request.param == "postgres":
        s = store_from_url(request.getfixturevalue("pg_url"), pool_min=1, pool_max=4)
    else:
        s = SQLiteStore(tmp_path / "store.db")
        if request.param == "records-only":
            s = RecordsOnlyStore(s)
    s.setup()
    yield s
    s.close()


def capable(store: RecordStore, capability: type[C]) -> C:
    """``store`` as ``capability``, or skip the test: the store does not implement it."""
    if not isinstance(store, capability):
        pytest.skip(f"{type(store).__name__} does not implement {capability.__name__}")
    return store


# which store implements what -----------------------------------------------------------------


def test_sql_stores_implement_every_capability_and_records_only_none(store: RecordStore) -> None:
    implemented = [c for c in CAPABILITIES if isinstance(store, c)]
    if isinstance(store, RecordsOnlyStore):
        assert implemented == []
        with pytest.raises(MissingCapability, match="JobLedger"):
            require(store, JobLedger, "consolidation")
    else:
        assert implemented == list(CAPABILITIES)
        assert require(store, JobLedger, "consolidation") is store


# maintenance log -----------------------------------------------------------------------------


def test_maintenance_log_keeps_a_task_until_it_ends(store: RecordStore) -> None:
    log = capable(store, MaintenanceLog)
    assert log.maintenance_unfinished() == {}
    log.maintenance_begin("index_rebuild", 100.0)
    log.maintenance_begin("index_rebuild", 200.0)  # begun again: the latest start counts
    store.close()
    store.setup()  # durable: a process that reopens the store sees it
    assert log.maintenance_unfinished() == {"index_rebuild": 200.0}
    log.maintenance_end("index_rebuild", started_by=150.0)  # a run begun later stays
    assert log.maintenance_unfinished() == {"index_rebuild": 200.0}
    log.maintenance_end("index_rebuild", started_by=200.0)
    assert log.maintenance_unfinished() == {}


# graph rows ----------------------------------------------------------------------------------


def test_graph_rows_write_read_conflict_and_drop(store: RecordStore) -> None:
    graph = capable(store, GraphRows)
    rows = [GraphRow("entity", "e1", '{"name": "Rex"}'), GraphRow("fact", "f1", "{}")]
    kw: dict[str, Any] = {"deletes": [], "generation": "g1"}
    assert graph.graph_write(key="a", scope=ALICE, expected_version=0, upserts=rows, **kw) == 1
    assert graph.graph_write(key="b", scope=BOB, expected_version=0, upserts=rows[:1], **kw) == 1
    assert graph.graph_rows("a") == sorted(rows, key=lambda r: (r.kind, r.item_id))
    assert [p.key for p in graph.graph_partitions(ALICE)] == ["a"]  # isolation in the query
    assert {p.key for p in graph.graph_partitions(None)} == {"a", "b"}
    assert {p.key for p in graph.graph_partitions_holding("entity", ["e1"])} == {"a", "b"}
    with pytest.raises(Conflict):
        graph.graph_write(key="a", scope=ALICE, expected_version=0, upserts=[], **kw)
    version = graph.graph_write(
        key="a", scope=ALICE, expected_version=1, generation="g1", upserts=[],
        deletes=[("fact", "f1")],
    )  # fmt: skip
    assert version == 2 and graph.graph_rows("a") == rows[:1]
    assert graph.graph_drop(ALICE) == 1
    assert [p.key for p in graph.graph_partitions(None)] == ["b"]
    # Written again after the drop: version 1 again, but a new generation, and a write
    # expecting the old generation at that version is a conflict.
    assert graph.graph_write(key="a", scope=ALICE, expected_version=0, upserts=rows,
                             deletes=[], generation="g2") == 1  # fmt: skip
    (again,) = graph.graph_partitions(ALICE)
    assert (again.version, again.generation) == (1, "g2")
    with pytest.raises(Conflict, match="rebuilt"):
        graph.graph_write(key="a", scope=ALICE, expected_version=1, upserts=[], **kw)


# job ledger ----------------------------------------------------------------------------------


def test_job_ledger_rows_watermarks_and_leases(store: RecordStore) -> None:
    ledger = capable(store, JobLedger)
    ledger.job_write(JobRow("r1", "extract", "user_id=alice", "running", started_at=1.0))
    ledger.job_write(JobRow("r1", "extract", "user_id=alice", "done", 3, 2, started_at=1.0))
    ledger.job_write(JobRow("r2", "extract", "user_id=bob", "done", started_at=2.0))
    assert [(r.run_id, r.status) for r in ledger.job_rows()] == [("r2", "done"), ("r1", "done")]
    assert [r.run_id for r in ledger.job_rows(scope="user_id=alice")] == ["r1"]
    assert ledger.watermark("user_id=alice", "extract") is None
    ledger.set_watermark("user_id=alice", "extract", '{"n": 1}')
    mark = ledger.watermark("user_id=alice", "extract")
    assert mark is not None and json.loads(mark.value) == {"n": 1}
    assert [w.scope for w in ledger.watermarks("extract")] == ["user_id=alice"]
    assert ledger.lease("scope-lock", "w1", 60) and ledger.lease("scope-lock", "w1", 60)
    assert not ledger.lease("scope-lock", "w2", 60)
    assert ledger.lease_owner("scope-lock") == "w1"
    assert not ledger.release("scope-lock", "w2") and ledger.release("scope-lock", "w1")
    assert ledger.lease_owner("scope-lock") is None


# learned utility -----------------------------------------------------------------------------


def test_utility_ledger_records_retrievals_in_a_batch(store: RecordStore) -> None:
    utility = capable(store, UtilityLedger)
    rows = [RetrievalRow(f"b{i}", str(ALICE), (f"m{i}", "shared"), 10.0 + i) for i in range(3)]
    utility.record_retrievals(rows)
    utility.record_retrievals(rows[:1])  # an id written before is kept as it was
    utility.record_retrievals([])
    assert [utility.retrieval(f"b{i}") for i in range(3)] == rows


def test_utility_ledger_retrievals_and_idempotent_feedback(store: RecordStore) -> None:
    utility = capable(store, UtilityLedger)
    records = (rec(1), rec(2))
    insert(store, *records)
    utility.record_retrieval("q1", str(ALICE), [r.id for r in records], 10.0)
    shown = utility.retrieval("q1")
    assert shown is not None and list(shown.memory_ids) == [r.id for r in records]
    assert utility.retrieval("nope") is None
    feedback = FeedbackWrite("q1", "q1", str(ALICE), records, 1.0, None, 0.5, 0.0, 11.0)
    changes = utility.apply_feedback(feedback)
    assert changes is not None and [c.new_utility for c in changes] == [0.5, 0.5]
    assert utility.apply_feedback(feedback) is None  # applied before: nothing changes
    assert {i: u.count for i, u in utility.utilities([r.id for r in records]).items()} == {
        records[0].id: 1,
        records[1].id: 1,
    }
    assert utility.utilities([]) == {}
    assert len(utility.rated_utilities(1)) == 2 and utility.rated_utilities(2) == []


def test_utility_ledger_forgets_ids_wherever_it_names_them(store: RecordStore) -> None:
    utility = capable(store, UtilityLedger)
    a, b, c = rec(1), rec(2), rec(3)
    insert(store, a, b, c)
    utility.record_retrievals(
        [
            RetrievalRow("r1", str(ALICE), (a.id, b.id), 1.0),
            RetrievalRow("r2", str(ALICE), (a.id,), 2.0),
            RetrievalRow("r3", str(ALICE), (c.id,), 3.0),
        ]
    )
    feedback = FeedbackWrite("f1", "r1", str(ALICE), (a, b), 1.0, "about a", 0.5, 0.0, 4.0)
    assert utility.apply_feedback(feedback) is not None
    # a's utility row, r1 (loses a), r2 (named only a: goes), f1 (loses a, task blanked) and
    # the FEEDBACK history entry f1 wrote for b (its task text about a taken out)
    assert utility.utility_forget([a.id]) == 5
    kept = utility.retrieval("r1")
    assert kept is not None and list(kept.memory_ids) == [b.id]
    assert utility.retrieval("r2") is None
    assert utility.retrieval("r3") == RetrievalRow("r3", str(ALICE), (c.id,), 3.0)
    assert set(utility.utilities([a.id, b.id])) == {b.id}
    assert utility.utility_forget([a.id]) == 0 and utility.utility_forget([]) == 0


# API keys ------------------------------------------------------------------------------------


def test_key_store_write_read_and_revoke(store: RecordStore) -> None:
    keys = capable(store, KeyStore)
    row = KeyRow("k1", "ci", "acme", ("alice",), (), "hash", 1.0)
    keys.key_write(row)
    keys.key_write(KeyRow("k2", "other", "globex", (), (), "hash2", 2.0))
    assert keys.key_get("k1") == row and keys.key_get("k9") is None
    assert [k.id for k in keys.key_rows()] == ["k1", "k2"]
    assert [k.id for k in keys.key_rows("acme")] == ["k1"]
    assert keys.key_revoke("k1", 5.0) and not keys.key_revoke("k1", 6.0)
    revoked = keys.key_get("k1")
    assert revoked is not None and revoked.revoked_at == 5.0


# notes and profiles --------------------------------------------------------------------------


def _profile_row(i: str, value: Any, sources: tuple[str, ...] = (), at: float = 1.0) -> ProfileRow:
    return ProfileRow(
        i, "user_id=alice", ALICE, "city", value, "str", sources, "test", "", None, None, at
    )


def test_note_store_links_profiles_and_erasure(store: RecordStore) -> None:
    notes = capable(store, NoteStore)
    link = LinkRow("n1", "n2", ALICE, "related", "test", "why", 0.9, 1.0)
    notes.link_write([link, LinkRow("n3", "n4", BOB, "related", "test", "", 0.5, 1.0)])
    assert notes.link_rows(["n2"]) == [link]  # either end
    assert notes.link_rows(["n3"], ALICE) == []  # scoped in the query
    notes.link_write([], [("n1", "n2")])
    assert notes.link_rows(["n1"]) == []
    notes.profile_write([_profile_row("p1", "Paris", sources=("m1",))])
    notes.profile_write([_profile_row("p2", "Lyon", at=2.0)], supersede=[("p1", 2.0, 2.0)])
    assert [r.value for r in notes.profile_rows("user_id=alice")] == ["Lyon"]
    history = notes.profile_rows("user_id=alice", current_only=False, field="city")
    assert [r.id for r in history] == ["p1", "p2"]
    assert notes.profile_erase(ids=["m1"]) == 1  # the value derived from m1
    assert notes.profile_erase(scope=ALICE) == 1
    assert notes.profile_rows("user_id=alice", current_only=False) == []


def test_note_store_erasure_keeps_what_a_replacing_version_holds(store: RecordStore) -> None:
    """profile_erase(keep=...) replaces a current version erased for a forgotten id, in the
    same transaction; a version erased for the whole scope is not replaced."""
    notes = capable(store, NoteStore)
    items = replace(_profile_row("p1", ["a", "b"], sources=("m1", "m2")), field="tags")
    notes.profile_write([items, _profile_row("p2", "Paris", sources=("m1",))])
    seen: list[str] = []

    def keep(row: ProfileRow) -> ProfileRow | None:
        seen.append(row.id)
        return replace(row, id="p3", value=["b"], sources=("m2",)) if row.id == "p1" else None

    assert notes.profile_erase(ids=["m1"], keep=keep) == 2
    assert sorted(seen) == ["p1", "p2"]
    assert [(r.id, r.value) for r in notes.profile_rows("user_id=alice")] == [("p3", ["b"])]
    assert notes.profile_erase(ids=["m2"], scope=ALICE, keep=keep) == 1
    assert notes.profile_rows("user_id=alice", current_only=False) == []


# quarantine ----------------------------------------------------------------------------------


def test_quarantine_store_holds_lists_and_drops(store: RecordStore) -> None:
    held = capable(store, QuarantineStore)
    untrusted = rec(1, provenance={"source": "tool", "flags": ["prompt_injection"]})
    held.quarantine_hold([untrusted, rec(2, BOB)], 5.0)
    held.quarantine_hold([], 6.0)
    rows = held.quarantine_rows(scope=ALICE)
    assert [r.id for r in rows] == [untrusted.id]
    assert rows[0].source == "tool" and rows[0].flags == ["prompt_injection"]
    assert MemoryRecord.model_validate(rows[0].record) == untrusted
    assert [r.id for r in held.quarantine_rows(ids=[rec(2).id])] == [rec(2).id]
    assert store.get_many([untrusted.id]) == []  # held out of the records table
    assert held.quarantine_drop([untrusted.id, "unknown"]) == 1
    assert [r.id for r in held.quarantine_rows()] == [rec(2).id]


def test_quarantine_rows_page_on_after_the_last_row(store: RecordStore) -> None:
    held = capable(store, QuarantineStore)
    held.quarantine_hold([rec(i) for i in range(1, 4)], 5.0)  # one batch: one time
    held.quarantine_hold([rec(4)], 6.0)
    every = [r.id for r in held.quarantine_rows(scope=ALICE)]
    assert len(every) == 4 and every[-1] == rec(4).id
    pages: list[str] = []
    after: tuple[float, str] | None = None
    while rows := held.quarantine_rows(scope=ALICE, limit=2, after=after):
        pages += [r.id for r in rows]
        after = (rows[-1].created_at, rows[-1].id)
    assert pages == every


# forget journal ------------------------------------------------------------------------------


def _job(forget_id: str, status: str, at: float) -> ForgetJob:
    return ForgetJob(forget_id, str(ALICE), "test", False, status, ["m"], {}, None, at, at)


def test_forget_journal_jobs_and_tombstones(store: RecordStore) -> None:
    journal = capable(store, ForgetJournal)
    first = rec(1)
    journal.forget_begin(_job("f1", "started", 1.0), [(first.id, ALICE_T1)])
    assert journal.tombstoned([first.id, rec(2).id]) == {first.id: ALICE_T1}
    journal.tombstone("f2", [(first.id, BOB), (rec(2).id, BOB)], 2.0)  # the first stays
    assert journal.tombstoned([first.id, rec(2).id]) == {first.id: ALICE_T1, rec(2).id: BOB}
    assert [j.forget_id for j in journal.forget_jobs(statuses=["started"])] == ["f1"]
    journal.forget_job_write(_job("f1", "done", 1.0))
    journal.forget_job_write(_job("f3", "started", 3.0))
    assert [j.forget_id for j in journal.forget_jobs()] == ["f3", "f1"]
    assert journal.forget_jobs(forget_id="f1")[0].status == "done"
    assert journal.forget_jobs(statuses=["started"], limit=5)[0].forget_id == "f3"


@pytest.mark.parametrize("purge", [False, True])
def test_forget_journal_scrubs_history_and_cached_vectors(store: RecordStore, purge: bool) -> None:
    journal = capable(store, ForgetJournal)
    gone, kept = rec(1), rec(2)
    insert(store, gone, kept)
    store.apply(
        WriteBatch(embeddings=[("e", gone.content_hash, vector(1)), ("e", "h2", vector(2))])
    )
    assert journal.scrub([gone.id], [gone.content_hash], purge=purge) == (1, 1)
    history = store.history(gone.id)
    if purge:
        assert history == []
    else:
        assert [(h.new_text, h.new_metadata) for h in history] == [(None, None)]
    assert store.history(kept.id)[0].new_text == kept.text
    assert set(store.cached_embeddings("e", [gone.content_hash, "h2"])) == {"h2"}


def test_forget_journal_rewrites_the_metadata_of_history_entries(store: RecordStore) -> None:
    """A forget takes a forgotten note's words out of the history of a note it evolved: the
    entries are read with their numbers and their metadata replaced, nothing else."""
    journal = capable(store, ForgetJournal)
    note, other = rec(1), rec(2)
    insert(store, note, other)
    evolved = note.model_copy(update={"metadata": {"context": "secret"}, "version": 2})
    store.apply(
        WriteBatch(
            updates=[evolved],
            history=[
                HistoryEntry(
                    memory_id=note.id,
                    event="UPDATE",
                    version=2,
                    old_text=note.text,
                    new_text=note.text,
                    old_metadata=note.metadata,
                    new_metadata={"context": "secret"},
                    at=note.created_at,
                )
            ],
        )
    )
    rows = journal.history_metadata([note.id])
    assert [(r[1], r[3]) for r in rows] == [
        (note.id, note.metadata),
        (note.id, {"context": "secret"}),
    ]
    assert rows[0][0] < rows[1][0]
    seq = rows[1][0]
    assert journal.history_metadata_write([(seq, {"a": 1}, {"context": "mine"})]) == 1
    assert journal.history_metadata_write([]) == 0
    history = store.history(note.id)
    assert [(h.old_metadata, h.new_metadata) for h in history][1] == ({"a": 1}, {"context": "mine"})
    assert history[1].new_text == note.text and history[0] == store.history(note.id)[0]
    assert store.history(other.id)[0].new_metadata == other.metadata


def test_forget_journal_finds_memories_known_only_to_history(store: RecordStore) -> None:
    journal = capable(store, ForgetJournal)
    deleted, kept, other = rec(1, ALICE_T1), rec(2, ALICE), rec(3, BOB)
    insert(store, deleted, kept, other)
    store.apply(WriteBatch(deletes=[deleted.id, other.id]))
    assert journal.history_only(scope=ALICE) == {deleted.id: (ALICE_T1, [deleted.text])}
    assert journal.history_only(scope=ALICE_T1) == {deleted.id: (ALICE_T1, [deleted.text])}
    assert journal.history_only(scope=BOB) == {other.id: (BOB, [other.text])}
    assert journal.history_only(ids=[deleted.id, kept.id, rec(9).id]) == {
        deleted.id: (ALICE_T1, [deleted.text])
    }
    journal.scrub([deleted.id], [], purge=False)  # blanked: still known, no text left
    assert journal.history_only(ids=[deleted.id]) == {deleted.id: (ALICE_T1, [])}
    journal.scrub([deleted.id], [], purge=True)
    assert journal.history_only(scope=ALICE) == {}


# a store without the optional interfaces, under the controller ------------------------------


def test_session_texts_are_those_of_the_queried_records(store: RecordStore) -> None:
    texts = capable(store, SessionTexts)
    records = session_records()
    store.apply(WriteBatch(inserts=records))
    values = ("s1", 7, "7", True, 1.5, "ünï ☃", 2**40)
    for scope in (ALICE, BOB, ScopeSet(members=(ALICE_T1, BOB, ALICE))):
        for query in (
            RecordQuery(scope=scope, kinds=(MemoryKind.EPISODIC,), limit=1000),
            RecordQuery(
                scope=scope,
                kinds=(MemoryKind.EPISODIC,),
                conditions=(Condition("session", FilterOp.IN, values),),
                limit=7,
                offset=2,
            ),
            RecordQuery(scope=scope, include_invalidated=True, limit=1000),
        ):
            expected = [
                SessionTurn(record_session(r, "session"), r.text, r.event_time)
                for r in store.query(query)
            ]
            assert texts.session_turns(query, "session") == expected


def test_session_stamps_count_every_queried_turn_and_change_with_them(store: RecordStore) -> None:
    texts = capable(store, SessionTexts)
    records = session_records()
    store.apply(WriteBatch(inserts=records))
    values = ("s1", 7, "7", True, 1.5, "ünï ☃", 2**40)
    for scope in (ALICE, ScopeSet(members=(ALICE_T1, BOB, ALICE))):
        query = RecordQuery(
            scope=scope,
            kinds=(MemoryKind.EPISODIC,),
            conditions=(Condition("session", FilterOp.IN, values),),
            limit=3,  # no limit or page: every turn is counted
            offset=1,
        )
        whole = replace(query, limit=1000, offset=0)
        turns = Counter(t.session for t in texts.session_turns(whole, "session"))
        stamps = texts.session_stamps(query, "session")
        assert {k: s.turns for k, s in stamps.items()} == {
            k: n for k, n in turns.items() if k is not None
        }
    query = RecordQuery(scope=ALICE, kinds=(MemoryKind.EPISODIC,), limit=1000)
    before = texts.session_stamps(query, "session")
    turn = next(
        r
        for r in store.query(query)
        if (key := record_session(r, "session")) is not None and before[key].turns > 1
    )
    session = record_session(turn, "session")
    assert session is not None
    edited = turn.model_copy(update={"text": turn.text + "!", "version": turn.version + 1})
    store.apply(WriteBatch(updates=[edited]))
    after = texts.session_stamps(query, "session")
    assert after[session] != before[session]
    assert {k: s for k, s in after.items() if k != session} == {
        k: s for k, s in before.items() if k != session
    }
    gone = edited.model_copy(update={"invalidated_at": T0, "version": edited.version + 1})
    store.apply(WriteBatch(updates=[gone]))
    assert texts.session_stamps(query, "session")[session].turns == before[session].turns - 1


def test_the_controller_refuses_what_a_records_only_store_lacks(
    tmp_path: Path, embedder: Embedder
) -> None:
    settings = Settings.load(home=tmp_path / "home", graph={"enabled": False})
    with Memory(settings=settings, embedder=embedder) as mem:
        inner = mem.backends.store
        mem.backends.store = RecordsOnlyStore(inner)
        # the records core is enough to write, read and search
        kept = mem.add("Rex the beagle lives in Denver.", user_id="alice")
        assert [h.record.id for h in mem.search("beagle", user_id="alice")] == [kept.id]
        # each optional feature is refused with what to do, and nothing changes
        with pytest.raises(MissingCapability, match=r"ForgetJournal.*SQLite or PostgreSQL"):
            mem.forget([kept.id], reason="erasure request", user_id="alice")
        with pytest.raises(MissingCapability, match="QuarantineStore"):
            mem.add("From a tool.", user_id="alice", source="tool")
        with pytest.raises(MissingCapability, match="QuarantineStore"):
            mem.quarantine.list(user_id="alice")
        with pytest.raises(InvalidProfile, match="keeps no profiles"):
            mem.profile(user_id="alice")
        assert [r.id for r in mem.list(user_id="alice")] == [kept.id]
        mem.backends.store = inner


def test_read_candidates_is_each_read_of_the_candidates(store: RecordStore) -> None:
    # Search reads its candidates with one call (one statement on PostgreSQL): the same rank
    # fields, whole records and utility rows (of the candidates in scope) as the separate reads.
    records = [rec(1, text="Caroline: hi", metadata={"session": 1}), rec(2), rec(3, BOB)]
    records += [rec(4, ALICE_T1, text="Sam: hello"), rec(5, metadata={"speaker": "Mel"})]
    insert(store, *records)
    rewarded = (records[0], records[2], records[3])
    if isinstance(store, UtilityLedger):
        feedback = FeedbackWrite("f", None, str(ALICE), rewarded, 1.0, None, 0.5, 0.0, 11.0)
        assert store.apply_feedback(feedback) is not None
    ids = [r.id for r in records] + ["no-such-id"]
    for scope in (ALICE, BOB, ALICE_T1, ScopeSet(members=(ALICE_T1, BOB))):
        for key, whole, utilities in [
            (None, (), False),
            ("session", ids[:3], True),
            (None, ids, True),
            ("session", ["no-such-id", ids[2]], False),
        ]:
            got = store.read_candidates(ids, scope, key, whole=whole, utilities=utilities)
            want = RecordStore.read_candidates(
                store, ids, scope, key, whole=whole, utilities=utilities
            )
            assert sorted(got.fields, key=lambda f: f.id) == sorted(want.fields, key=lambda f: f.id)
            assert sorted(got.records, key=lambda r: r.id) == sorted(
                want.records, key=lambda r: r.id
            )
            assert got.utilities == want.utilities
            assert {f.id for f in got.fields} == {r.id for r in store.get_many(ids, scope)}
            if utilities and isinstance(store, UtilityLedger):
                assert got.utilities is not None and set(got.utilities) == {
                    r.id for r in rewarded if r.id in {f.id for f in got.fields}
                }
    empty = store.read_candidates([], ALICE, utilities=True)
    assert empty.fields == [] and empty.records == []
