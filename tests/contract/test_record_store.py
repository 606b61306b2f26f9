"""The RecordStore contract: every record store passes this same suite.

Backends: SQLite in a fresh file, and PostgreSQL in a fresh schema (the ``pg_url`` fixture).
Records are built in code with explicit times, so ordering and validity are deterministic;
metadata filters are checked against the reference semantics of ``agentmem.filters.matches``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agentmem import Memory, Settings
from agentmem.embedders import Embedder
from agentmem.errors import BackendUnavailable, Conflict, InvalidSettings, NotFound
from agentmem.filters import matches, parse_filters
from agentmem.models import HistoryEntry, HistoryEvent, MemoryKind, MemoryRecord, Scope, ScopeSet
from agentmem.stores import (
    IndexOp,
    RecordQuery,
    RecordStore,
    StoreCounts,
    WriteBatch,
    store_from_url,
)

ALICE = Scope(user_id="alice")
ALICE_BOT = Scope(user_id="alice", agent_id="bot")
BOB = Scope(user_id="bob")
T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordStore]:
    """An open, empty store of each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    s = store_from_url(url, pool_min=1, pool_max=4, timeout=5.0)
    s.setup()
    yield s
    s.close()


def mid(n: int) -> str:
    """The id of record number ``n``: a UUID that sorts in the order of ``n``."""
    return f"00000000-0000-4000-8000-{n:012d}"


def rec(
    n: int,
    scope: Scope = ALICE,
    *,
    kind: MemoryKind = MemoryKind.EPISODIC,
    metadata: dict[str, Any] | None = None,
    **fields: Any,
) -> MemoryRecord:
    """Record number ``n``, created ``n`` seconds after T0 (so creation order is ``n``)."""
    created = T0 + timedelta(seconds=n)
    values: dict[str, Any] = {
        "id": mid(n),
        "scope": scope,
        "kind": kind,
        "text": f"memory number {n}",
        "metadata": metadata or {},
        "created_at": created,
        "updated_at": created,
    }
    values.update(fields)
    return MemoryRecord(**values)


def added(r: MemoryRecord, actor: str = "test") -> HistoryEntry:
    """The ADD history entry of a new record."""
    return HistoryEntry(
        memory_id=r.id,
        scope=r.scope,
        event=HistoryEvent.ADD,
        version=r.version,
        new_text=r.text,
        new_metadata=r.metadata,
        actor=actor,
        at=r.created_at,
    )


def insert(store: RecordStore, *records: MemoryRecord) -> None:
    """Insert records with their history and outbox entries, as the writer does."""
    store.apply(
        WriteBatch(
            inserts=list(records),
            history=[added(r) for r in records],
            index=[(r.id, IndexOp.UPSERT) for r in records],
        )
    )


def ids(records: list[MemoryRecord]) -> list[str]:
    """The ids of records, in their order."""
    return [r.id for r in records]


def one(store: RecordStore, memory_id: str) -> MemoryRecord:
    """The one stored record with this id."""
    found = store.get_many([memory_id])
    assert len(found) == 1, f"{memory_id} not found"
    return found[0]


def vector(seed: int, dim: int = 8) -> np.ndarray:
    """A deterministic random float32 vector."""
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


# lifecycle -----------------------------------------------------------------------------------


def test_setup_is_idempotent(store: RecordStore) -> None:
    store.setup()
    store.setup()
    again = store_from_url(store.url)
    again.setup()  # migrations already applied by another instance
    again.setup()
    again.close()
    assert store.counts() == StoreCounts(records=0, by_kind={}, history_entries=0, pending_index=0)


def test_reopen_after_close_keeps_data(store: RecordStore) -> None:
    r = rec(1, metadata={"k": 1})
    insert(store, r)
    store.close()
    store.close()  # safe twice
    reopened = store_from_url(store.url)
    with reopened:
        assert reopened.get_many([r.id]) == [r]
        assert [e.event for e in reopened.history(r.id)] == [HistoryEvent.ADD]
    store.setup()  # the same object opens again after close
    assert store.get_many([r.id]) == [r]


def test_record_round_trips_every_field(store: RecordStore) -> None:
    r = rec(
        1,
        Scope(org_id="acme", user_id="alice", agent_id="bot", thread_id="t-1"),
        kind=MemoryKind.SEMANTIC,
        metadata={"n": 1, "f": 0.25, "b": True, "s": "x", "l": [1, "a"], "o": {"k": None}},
        provenance={"sources": [mid(1)], "extractor": "rules"},
        event_time=T0 - timedelta(days=1, microseconds=7),
        valid_from=T0 - timedelta(days=1),
        valid_to=T0 + timedelta(days=3650),
        importance=0.875,
        access_count=3,
        last_accessed_at=T0 + timedelta(hours=1, microseconds=999999),
        version=4,
    )
    insert(store, r)
    assert store.get_many([r.id]) == [r]


# writes --------------------------------------------------------------------------------------


def test_apply_writes_every_part_of_a_batch(store: RecordStore) -> None:
    a, b = rec(1), rec(2)
    insert(store, a, b)
    a2 = a.model_copy(update={"text": "changed", "version": 2})
    c = rec(3)
    v = vector(1)
    store.apply(
        WriteBatch(
            inserts=[c],
            updates=[a2],
            deletes=[b.id],
            history=[added(c)],
            index=[(c.id, IndexOp.UPSERT), (a.id, IndexOp.UPSERT), (b.id, IndexOp.DELETE)],
            embeddings=[("emb", c.content_hash, v)],
        )
    )
    assert sorted(ids(store.get_many([a.id, b.id, c.id]))) == [a.id, c.id]
    assert one(store, a.id).text == "changed"
    assert one(store, a.id).version == 2
    assert [(i.memory_id, i.op) for i in store.pending_index()][-3:] == [
        (c.id, IndexOp.UPSERT),
        (a.id, IndexOp.UPSERT),
        (b.id, IndexOp.DELETE),
    ]
    assert np.array_equal(store.cached_embeddings("emb", [c.content_hash])[c.content_hash], v)


def test_a_batch_of_inserts_writes_every_part_in_order(store: RecordStore) -> None:
    """What an add writes (PostgreSQL sends it as one statement): records, history, the
    outbox entries in the batch's order, and cached vectors, a duplicate vector once."""
    a, b, c = rec(3), rec(1, metadata={"x": {"y": [1, 2.5, None]}}), rec(2, BOB)
    v = vector(3)
    store.apply(
        WriteBatch(
            inserts=[a, b, c],
            history=[added(a), added(b), added(c)],
            index=[(b.id, IndexOp.UPSERT), (mid(9), IndexOp.UPSERT), (a.id, IndexOp.UPSERT)],
            embeddings=[("emb", "h1", v), ("emb", "h2", vector(4)), ("emb", "h1", v)],
        )
    )
    assert sorted(store.get_many([a.id, b.id, c.id]), key=lambda r: r.id) == [b, c, a]
    assert [h.event for h in store.history(b.id)] == [HistoryEvent.ADD]
    assert [(i.memory_id, i.op) for i in store.pending_index()] == [
        (b.id, IndexOp.UPSERT),
        (mid(9), IndexOp.UPSERT),
        (a.id, IndexOp.UPSERT),
    ]
    assert np.array_equal(store.cached_embeddings("emb", ["h1"])["h1"], v)
    assert store.counts().history_entries == 3


def test_a_big_batch_of_inserts_is_written_whole(store: RecordStore) -> None:
    """More rows than one PostgreSQL statement takes parameters for (then a statement per
    table, in one transaction), and a conflict in such a batch still leaves nothing."""
    records = [rec(n) for n in range(1, 701)]
    insert(store, *records)
    assert store.counts().records == 700
    assert len(store.pending_index(limit=1000)) == 700
    more = [rec(n) for n in range(701, 1401)] + [rec(5)]  # the last one a duplicate id
    with pytest.raises(Conflict):
        insert(store, *more)
    assert store.counts().records == 700
    assert store.get_many([mid(701)]) == []


def test_failed_batch_leaves_nothing_behind(store: RecordStore) -> None:
    a = rec(1)
    insert(store, a)
    before = store.counts()
    b = rec(2)
    duplicate = rec(1, BOB)  # same id as a
    with pytest.raises(Conflict):
        store.apply(
            WriteBatch(
                inserts=[b, duplicate],
                history=[added(b)],
                index=[(b.id, IndexOp.UPSERT)],
                embeddings=[("emb", b.content_hash, vector(2))],
            )
        )
    assert store.get_many([b.id]) == []
    assert store.get_many([a.id]) == [a]
    assert store.history(b.id) == []
    assert store.counts() == before
    assert store.cached_embeddings("emb", [b.content_hash]) == {}
    # The store is still usable after the failed transaction.
    insert(store, b)
    assert store.get_many([b.id]) == [b]


def test_stale_update_raises_conflict_and_rolls_back(store: RecordStore) -> None:
    a, b = rec(1), rec(2)
    insert(store, a, b)
    store.apply(WriteBatch(updates=[a.model_copy(update={"text": "v2", "version": 2})]))
    before = store.counts()
    c = rec(3)
    stale = a.model_copy(update={"text": "lost race", "version": 2})  # also replaces v1
    fine = b.model_copy(update={"text": "b v2", "version": 2})
    with pytest.raises(Conflict, match=a.id):
        store.apply(
            WriteBatch(
                inserts=[c],
                updates=[fine, stale],
                history=[added(c)],
                index=[(c.id, IndexOp.UPSERT)],
            )
        )
    assert one(store, a.id).text == "v2"
    assert one(store, b.id) == b  # the good update in the same batch was rolled back
    assert store.get_many([c.id]) == []
    assert store.counts() == before


def test_update_of_missing_record_raises_conflict(store: RecordStore) -> None:
    ghost = rec(9).model_copy(update={"version": 2})
    with pytest.raises(Conflict):
        store.apply(WriteBatch(updates=[ghost]))
    assert store.get_many([ghost.id]) == []


def test_delete_keeps_history(store: RecordStore) -> None:
    a = rec(1)
    insert(store, a)
    gone = HistoryEntry(
        memory_id=a.id,
        scope=a.scope,
        event=HistoryEvent.DELETE,
        version=2,
        old_text=a.text,
        old_metadata=a.metadata,
        actor="test",
        at=T0 + timedelta(minutes=5),
    )
    store.apply(WriteBatch(deletes=[a.id], history=[gone], index=[(a.id, IndexOp.DELETE)]))
    assert store.get_many([a.id]) == []
    assert store.history(a.id) == [added(a), gone]
    assert store.ids_in_scope(ALICE) == []


def test_stale_delete_raises_conflict_and_rolls_back(store: RecordStore) -> None:
    # A delete names the version it read, as an update does: an update (or a delete) landing
    # between the read and the delete wins, and the whole batch is rolled back.
    a, b, c = rec(1), rec(2), rec(3)
    insert(store, a, b, c)
    store.apply(WriteBatch(updates=[a.model_copy(update={"text": "v2", "version": 2})]))
    before = store.counts()
    for versions in ({a.id: 1, b.id: 1}, {b.id: 1, a.id: 1}, {b.id: 1, "gone": 1}):
        with pytest.raises(Conflict, match="changed or was deleted since version 1"):
            store.apply(
                WriteBatch(
                    deletes=list(versions),
                    delete_versions=versions,
                    index=[(i, IndexOp.DELETE) for i in versions],
                )
            )
        assert sorted(ids(store.get_many([a.id, b.id, c.id]))) == sorted([a.id, b.id, c.id])
        assert store.counts() == before
    store.apply(WriteBatch(deletes=[a.id, b.id], delete_versions={a.id: 2, b.id: 1}))
    store.apply(WriteBatch(deletes=[c.id, "never-stored"]))  # no version: deleted as stored
    assert store.get_many([a.id, b.id, c.id]) == []


def test_empty_batch_is_harmless(store: RecordStore) -> None:
    store.apply(WriteBatch())
    assert store.counts().records == 0


# reads ---------------------------------------------------------------------------------------


def test_get_many_with_and_without_scope(store: RecordStore) -> None:
    a, a_bot, b = rec(1, ALICE), rec(2, ALICE_BOT), rec(3, BOB)
    insert(store, a, a_bot, b)
    every = [a.id, a_bot.id, b.id, "no-such-id"]
    assert store.get_many([]) == []
    assert sorted(ids(store.get_many(every))) == [a.id, a_bot.id, b.id]
    # Knowing an id never reaches across scopes.
    assert sorted(ids(store.get_many(every, ALICE))) == [a.id, a_bot.id]
    assert ids(store.get_many(every, ALICE_BOT)) == [a_bot.id]
    assert ids(store.get_many(every, BOB)) == [b.id]
    assert store.get_many([b.id], ALICE) == []
    assert store.get_many([a.id], Scope(org_id="acme")) == []


def test_get_many_handles_many_ids(store: RecordStore) -> None:
    records = [rec(n) for n in range(1, 1201)]
    store.apply(WriteBatch(inserts=records))
    wanted = [r.id for r in records[::2]]
    assert sorted(ids(store.get_many(wanted, ALICE))) == sorted(wanted)


def test_rank_fields_are_get_many_s_records_fields(store: RecordStore) -> None:
    # The same records as get_many (scope included), with the very values of its records.
    event = T0 - timedelta(days=3, microseconds=7)
    records = [
        rec(1, ALICE, event_time=event, importance=0.9),
        rec(2, ALICE_BOT),
        rec(3, BOB, importance=0.1),
        *(rec(n) for n in range(4, 704)),
    ]
    store.apply(WriteBatch(inserts=records))
    every = [r.id for r in records] + ["no-such-id"]
    assert store.rank_fields([]) == []
    for scope in (None, ALICE, ALICE_BOT, BOB, Scope(org_id="acme")):
        light = sorted(store.rank_fields(every, scope), key=lambda f: f.id)
        whole = sorted(RecordStore.rank_fields(store, every, scope), key=lambda f: f.id)
        assert light == whole
        assert [f.id for f in light] == sorted(ids(store.get_many(every, scope)))
    first = next(f for f in store.rank_fields([records[0].id]))
    assert (first.event_time, first.created_at, first.importance) == (
        event,
        T0 + timedelta(seconds=1),
        0.9,
    )


def test_rank_fields_name_each_records_speaker(store: RecordStore) -> None:
    # The speaker prior reads who said each candidate with its rank fields: metadata first,
    # else, on a turn of a conversation (an episode of a session or a thread), a "Name:"
    # prefix, exactly as from the whole record.
    long_name = "A" * 61
    turn = {"session": 1}
    thread = Scope(user_id="alice", thread_id="t1")
    records = [
        rec(1, text="Caroline: I went to the support group.", metadata=turn),
        rec(2, text="I went too.", metadata={"speaker": "Melanie"}),
        rec(3, text="Jon Snow: hi", metadata={"speaker": 7, "session": "s"}),
        rec(4, text="Ünï: a capital of any script", metadata={"speaker": long_name, **turn}),
        rec(5, text="x" * 2000 + "Late: too far in", metadata=turn),
        rec(6, text="Mom: call me when you land"),  # a note on its own: no turn
        rec(7, text="Lisbon: flight TP 441", kind=MemoryKind.SEMANTIC, metadata=turn),
        rec(8, thread, text="Sam: I'll pick up the kids"),  # a thread's episode is a turn
    ]
    store.apply(WriteBatch(inserts=records))
    for scope, ids, speakers in [
        (ALICE, [mid(n) for n in range(1, 8)], ["Caroline", "Melanie", "Jon Snow", "Ünï"]),
        (thread, [mid(8)], ["Sam"]),
    ]:
        light = {f.id: f.speaker for f in store.rank_fields(ids, scope, "session")}
        whole = RecordStore.rank_fields(store, ids, scope, "session")
        assert light == {f.id: f.speaker for f in whole}
        assert [light[i] for i in ids] == speakers + [None] * (len(ids) - len(speakers))
        # Without the session key no record is known to be a turn: metadata speakers only.
        bare = {f.id: f.speaker for f in store.rank_fields(ids, scope)}
        assert bare == {f.id: f.speaker for f in RecordStore.rank_fields(store, ids, scope)}
        assert bare == {i: (s if i in (mid(2),) else None) for i, s in light.items()}


SESSION_VALUES: list[Any] = ["s1", 7, "7", True, 1.5, None, ["s1"], {"s": 1}, "ünï ☃", 2**40]
"""Values under the session key: strings and integers name a session, nothing else does."""


def session_records() -> list[MemoryRecord]:
    """Episodes and facts in three scopes, with every kind of value under ``session`` (or
    none), some invalidated."""
    out = []
    for n in range(1, 61):
        value = SESSION_VALUES[n % len(SESSION_VALUES)]
        metadata = {"other": n} if n % 11 == 0 else {"session": value, "n": n}
        out.append(
            rec(
                n,
                [ALICE, ALICE_BOT, BOB][n % 3],
                kind=MemoryKind.SEMANTIC if n % 7 == 0 else MemoryKind.EPISODIC,
                metadata=metadata,
                text=f"turn {n} of {value!r}",
                event_time=T0 - timedelta(days=n) if n % 2 else None,
                invalidated_at=T0 if n % 13 == 0 else None,
            )
        )
    return out


def test_rank_fields_read_the_sessions_of_whole_records(store: RecordStore) -> None:
    records = session_records()
    store.apply(WriteBatch(inserts=records))
    every = [r.id for r in records]
    for scope in (None, ALICE, BOB, ScopeSet(members=(ALICE_BOT, BOB))):
        for key in ("session", "n", "missing"):
            light = sorted(store.rank_fields(every, scope, key), key=lambda f: f.id)
            whole = sorted(RecordStore.rank_fields(store, every, scope, key), key=lambda f: f.id)
            assert light == whole, (scope, key)
    sessions = {f.session for f in store.rank_fields(every, None, "session")}
    assert (None, "alice", "bot", None, "s1") in sessions  # the exact scope, and the value
    assert {s[-1] for s in sessions if s is not None} == {"s1", 7, "7", "ünï ☃", 2**40}


def test_query_scope_kinds_and_paging(store: RecordStore) -> None:
    # Inserted out of creation order: results come back oldest first.
    records = [
        rec(5, ALICE, kind=MemoryKind.SEMANTIC),
        rec(1, ALICE),
        rec(3, ALICE_BOT, kind=MemoryKind.PROCEDURAL),
        rec(2, BOB),
        rec(4, ALICE),
        rec(6, BOB, kind=MemoryKind.SEMANTIC),
    ]
    insert(store, *records)
    assert ids(store.query(RecordQuery(scope=ALICE))) == [mid(1), mid(3), mid(4), mid(5)]
    assert ids(store.query(RecordQuery(scope=ALICE_BOT))) == [mid(3)]
    assert ids(store.query(RecordQuery(scope=BOB))) == [mid(2), mid(6)]
    semantic = RecordQuery(scope=ALICE, kinds=(MemoryKind.SEMANTIC,))
    assert ids(store.query(semantic)) == [mid(5)]
    two_kinds = RecordQuery(scope=ALICE, kinds=(MemoryKind.EPISODIC, MemoryKind.PROCEDURAL))
    assert ids(store.query(two_kinds)) == [mid(1), mid(3), mid(4)]
    assert ids(store.query(RecordQuery(scope=ALICE, limit=2))) == [mid(1), mid(3)]
    assert ids(store.query(RecordQuery(scope=ALICE, limit=2, offset=2))) == [mid(4), mid(5)]
    assert store.query(RecordQuery(scope=ALICE, limit=2, offset=4)) == []
    assert store.query(RecordQuery(scope=Scope(user_id="carol"))) == []
    newest = RecordQuery(scope=ALICE, limit=2, newest_first=True)
    assert ids(store.query(newest)) == [mid(5), mid(4)]
    assert ids(store.query(replace(newest, offset=2))) == [mid(3), mid(1)]


def test_query_orders_ties_by_id(store: RecordStore) -> None:
    same = T0 + timedelta(seconds=1)
    records = [rec(n, created_at=same, updated_at=same) for n in (3, 1, 2)]
    insert(store, *records)
    assert ids(store.query(RecordQuery(scope=ALICE))) == [mid(1), mid(2), mid(3)]
    newest = RecordQuery(scope=ALICE, newest_first=True)
    assert ids(store.query(newest)) == [mid(3), mid(2), mid(1)]


METADATA: list[dict[str, Any]] = [
    {"n": 1, "s": "a", "b": True, "f": 1.5},
    {"n": 2, "s": "b", "b": False, "f": 2.0},
    {"n": 1.0, "s": "1", "b": 1},
    {"n": True, "s": 1, "b": "true"},
    {"n": "1", "b": 0},
    {"n": -3, "f": -0.5, "s": "a b"},
    {},
    {"n": None, "s": None, "b": None},
    {"n": [1, 2], "s": {"a": 1}, "b": [True]},
    {"n": 10**12, "f": 1e-3, "s": "A"},
    {"n": 0, "f": 0.0, "s": ""},
]
FILTERS: list[dict[str, Any]] = [
    {"n": 1},
    {"n": 1.0},
    {"n": {"$eq": 1}},
    {"n": True},
    {"n": "1"},
    {"n": 0},
    {"n": False},
    {"n": {"$ne": 1}},
    {"n": {"$ne": True}},
    {"n": {"$ne": "1"}},
    {"s": "a"},
    {"s": ""},
    {"s": {"$ne": "a"}},
    {"b": True},
    {"b": False},
    {"b": 1},
    {"b": {"$ne": False}},
    {"n": {"$in": [1, "1"]}},
    {"n": {"$in": [True, 2]}},
    {"s": {"$in": ["a", "b", "A"]}},
    {"b": {"$in": [False, 0]}},
    {"n": {"$gt": 1}},
    {"n": {"$gte": 1}},
    {"n": {"$lt": 2}},
    {"n": {"$lte": 1.0}},
    {"n": {"$gt": 10**11}},
    {"n": {"$gte": -3, "$lte": 0}},
    {"f": {"$gt": 0.0, "$lt": 2.0}},
    {"f": {"$gte": -0.5}},
    {"f": {"$lt": 0.001}},
    {"f": {"$lte": 0.001}},
    {"f": {"$lt": float("inf")}},
    {"f": {"$gt": float("-inf")}},
    {"f": {"$gt": float("inf")}},
    {"s": {"$gt": 0}},
    {"n": 1, "s": "a"},
    {"n": {"$gte": 1}, "b": {"$ne": True}},
    {"missing": {"$ne": 1}},
    {"missing": 1},
    {"missing": {"$lt": 1}},
]


@pytest.mark.parametrize("filters", FILTERS, ids=[repr(f) for f in FILTERS])
def test_metadata_conditions_match_the_reference(
    store: RecordStore, filters: dict[str, Any]
) -> None:
    mine = [rec(n, metadata=m) for n, m in enumerate(METADATA, start=1)]
    # Bob's records match the same filters; scope isolation must still hold.
    theirs = [rec(n + 100, BOB, metadata=m) for n, m in enumerate(METADATA, start=1)]
    store.apply(WriteBatch(inserts=[*mine, *theirs]))
    conditions = parse_filters(filters)
    expected = [r.id for r in mine if matches(r.metadata, conditions)]
    got = store.query(RecordQuery(scope=ALICE, conditions=conditions))
    assert ids(got) == expected


def test_validity_include_invalidated_and_as_of(store: RecordStore) -> None:
    now = datetime.now(UTC)
    current = rec(1)
    invalidated = rec(2, invalidated_at=T0 + timedelta(days=2), valid_to=T0 + timedelta(days=2))
    expired = rec(3, valid_to=T0 + timedelta(days=1))  # ended, never marked invalidated
    future_end = rec(4, valid_to=now + timedelta(days=365))
    window = rec(
        5, valid_from=T0 + timedelta(days=10), valid_to=T0 + timedelta(days=20)
    )  # valid_from wins over created_at
    insert(store, current, invalidated, expired, future_end, window)

    assert ids(store.query(RecordQuery(scope=ALICE))) == [current.id, future_end.id]
    everything = RecordQuery(scope=ALICE, include_invalidated=True)
    assert ids(store.query(everything)) == ids([current, invalidated, expired, future_end, window])

    def as_of(t: datetime) -> list[str]:
        return ids(store.query(RecordQuery(scope=ALICE, as_of=t)))

    assert as_of(T0) == []  # nothing was created yet
    assert as_of(T0 + timedelta(hours=1)) == ids([current, invalidated, expired, future_end])
    assert as_of(T0 + timedelta(days=1, hours=1)) == ids([current, invalidated, future_end])
    assert as_of(T0 + timedelta(days=15)) == ids([current, future_end, window])
    assert as_of(T0 + timedelta(days=25)) == ids([current, future_end])


def test_ids_in_scope(store: RecordStore) -> None:
    insert(store, rec(3, ALICE), rec(1, ALICE_BOT), rec(2, BOB))
    assert store.ids_in_scope(ALICE) == [mid(1), mid(3)]
    assert store.ids_in_scope(ALICE_BOT) == [mid(1)]
    assert store.ids_in_scope(BOB) == [mid(2)]
    assert store.ids_in_scope(Scope(user_id="carol")) == []


def test_history_order_and_scope(store: RecordStore) -> None:
    a = rec(1)
    insert(store, a)
    entries = [added(a)]
    current = a
    for version in (2, 3, 4):
        new = current.model_copy(update={"text": f"v{version}", "version": version})
        entry = HistoryEntry(
            memory_id=a.id,
            scope=a.scope,
            event=HistoryEvent.UPDATE,
            version=version,
            old_text=current.text,
            new_text=new.text,
            old_metadata=current.metadata,
            new_metadata={"v": version},
            actor="test",
            # Appended order wins, even when the clock says otherwise.
            at=T0 - timedelta(seconds=version),
        )
        store.apply(WriteBatch(updates=[new], history=[entry]))
        entries.append(entry)
        current = new
    insert(store, rec(2, BOB))
    assert store.history(a.id) == entries
    assert store.history(a.id, ALICE) == entries
    assert store.history(a.id, BOB) == []
    assert store.history("no-such-id") == []


def test_outbox_pending_and_ack(store: RecordStore) -> None:
    ops = [(mid(n), IndexOp.UPSERT if n % 3 else IndexOp.DELETE) for n in range(1, 11)]
    store.apply(WriteBatch(index=ops[:4]))
    store.apply(WriteBatch(index=ops[4:]))
    pending = store.pending_index()
    assert [(i.memory_id, i.op) for i in pending] == ops
    seqs = [i.seq for i in pending]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    assert store.pending_index(limit=3) == pending[:3]
    store.ack_index([])
    store.ack_index([pending[0].seq, pending[2].seq])
    assert store.pending_index() == [pending[1], *pending[3:]]
    assert store.counts().pending_index == 8
    store.ack_index([i.seq for i in pending])
    assert store.pending_index() == []


def test_cached_embeddings_round_trip(store: RecordStore) -> None:
    vectors = {f"h{i}": vector(i, dim=384) for i in range(5)}
    store.apply(WriteBatch(embeddings=[("minilm", h, v) for h, v in vectors.items()]))
    got = store.cached_embeddings("minilm", ["h0", "h3", "h3", "absent"])
    assert set(got) == {"h0", "h3"}
    for h, v in got.items():
        assert v.dtype == np.float32
        assert np.array_equal(v, vectors[h])
    assert store.cached_embeddings("other-model", ["h0"]) == {}
    assert store.cached_embeddings("minilm", []) == {}
    # A hash already cached keeps its first vector; float64 input is stored as float32.
    store.apply(WriteBatch(embeddings=[("minilm", "h0", vector(99, dim=384))]))
    wide = np.random.default_rng(7).standard_normal(384)
    store.apply(WriteBatch(embeddings=[("minilm", "h9", wide)]))
    got = store.cached_embeddings("minilm", ["h0", "h9"])
    assert np.array_equal(got["h0"], vectors["h0"])
    assert np.array_equal(got["h9"], wide.astype(np.float32))


def test_all_ids_pages_in_id_order(store: RecordStore) -> None:
    records = [rec(n, ALICE if n % 2 else BOB) for n in range(25, 0, -1)]
    store.apply(WriteBatch(inserts=records))
    pages: list[list[str]] = []
    after: str | None = None
    while page := store.all_ids(after=after, limit=10):
        pages.append(page)
        after = page[-1]
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [i for p in pages for i in p] == sorted(r.id for r in records)
    assert store.all_ids(after=mid(25)) == []


def test_counts(store: RecordStore) -> None:
    insert(
        store,
        rec(1),
        rec(2, kind=MemoryKind.SEMANTIC),
        rec(3, BOB, kind=MemoryKind.SEMANTIC),
        rec(4, kind=MemoryKind.EXPERIENCE),
    )
    store.apply(WriteBatch(deletes=[mid(4)], index=[(mid(4), IndexOp.DELETE)]))
    assert store.counts() == StoreCounts(
        records=3,
        by_kind={"episodic": 1, "semantic": 2},
        history_entries=4,
        pending_index=5,
    )


# PostgreSQL only -----------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_setup_is_safe_when_run_concurrently(pg_url: str) -> None:
    from agentmem.stores.postgres import MIGRATIONS, PostgresStore

    stores = [PostgresStore(pg_url, pool_min=1, pool_max=1) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def start(s: PostgresStore) -> None:
        try:
            barrier.wait()
            s.setup()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    try:
        assert errors == []
        import psycopg

        with psycopg.connect(pg_url) as conn:
            versions = conn.execute("SELECT version FROM schema_migrations").fetchall()
        assert sorted(v for (v,) in versions) == list(range(1, len(MIGRATIONS) + 1))
    finally:
        for s in stores:
            s.close()


def test_postgres_unreachable_is_backend_unavailable() -> None:
    from agentmem.stores.postgres import PostgresStore

    url = "postgresql://agent:s3cret@127.0.0.1:1/agentmem"
    store = PostgresStore(url, timeout=1)  # the constructor does no I/O
    with pytest.raises(BackendUnavailable) as info:
        store.setup()
    message = str(info.value)
    assert "s3cret" not in message
    assert "postgresql://agent:***@127.0.0.1:1/agentmem" in message
    assert "start PostgreSQL" in message
    with pytest.raises(BackendUnavailable, match="setup"):
        store.get_many(["x"])


@pytest.mark.postgres
def test_postgres_missing_schema_is_invalid_settings(pg_url: str) -> None:
    from agentmem.stores.postgres import PostgresStore

    url = pg_url.replace("search_path%3D", "search_path%3Dno_such_")
    with pytest.raises(InvalidSettings, match="CREATE SCHEMA"):
        PostgresStore(url).setup()


@pytest.mark.postgres
def test_postgres_setup_errors_say_what_their_cause_needs(pg_url: str) -> None:
    """Not one privileges hint for every failure: a URL libpq cannot read is a settings error,
    and another application's table of the same name says so."""
    import psycopg

    from agentmem.stores._pg_pool import setup_error
    from agentmem.stores.postgres import PostgresStore

    with pytest.raises(InvalidSettings, match="libpq cannot read the URL") as info:
        PostgresStore(pg_url + "&conect_timeout=3").setup()
    assert "GRANT" not in str(info.value) and "\n" not in str(info.value)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE memories (x int)")
    with pytest.raises(BackendUnavailable, match="agentmem did not create") as info:
        PostgresStore(pg_url).setup()
    assert "GRANT" not in str(info.value)
    vector = setup_error(
        "the index", psycopg.errors.UndefinedObject('type "vector" does not exist')
    )
    assert "search_path" in str(vector) and "public" in str(vector)
    denied = setup_error("the index", psycopg.errors.InsufficientPrivilege("permission denied"))
    assert "GRANT CREATE ON SCHEMA" in str(denied)


# the controller on PostgreSQL ----------------------------------------------------------------


@pytest.mark.postgres
def test_memory_end_to_end_on_postgres(pg_url: str, tmp_path: Path, embedder: Embedder) -> None:
    settings = Settings.load(store_url=pg_url, home=tmp_path)
    with Memory(settings=settings, embedder=embedder) as mem:
        assert mem.backends.store.supports_concurrent_processes
        cat = mem.add("My cat is called Miso", user_id="alice", metadata={"topic": "pets"})
        mem.add("I work as a nurse in Lyon", user_id="alice", metadata={"topic": "work"})
        mem.add("My cat is called Pixel", user_id="bob")
        hits = mem.search("what is the cat's name?", user_id="alice", k=2)
        assert hits[0].record.id == cat.id
        assert all(h.record.scope.user_id == "alice" for h in hits)
        filtered = mem.search("cat", user_id="alice", filters={"topic": "work"})
        assert [h.record.metadata["topic"] for h in filtered] == ["work"]

        updated = mem.update(cat.id, text="My cat is called Mochi", user_id="alice")
        assert updated.version == 2
        assert mem.search("cat's name", user_id="alice", k=1)[0].record.text == updated.text
        mem.delete(cat.id, user_id="alice")
        with pytest.raises(NotFound):
            mem.get(cat.id)
        events = [e.event for e in mem.history(cat.id)]
        assert events == [HistoryEvent.ADD, HistoryEvent.UPDATE, HistoryEvent.DELETE]
        assert mem.stats().records == 2
        assert mem.stats().pending_index == 0


# sets of scopes (what an agent handle reads) -------------------------------------------------

SCOPE_GRID = [
    ALICE,
    ALICE_BOT,
    BOB,
    Scope(user_id="alice", agent_id="team:t"),
    Scope(user_id="alice", agent_id="other"),
    Scope(user_id="alice", agent_id="bot", thread_id="t1"),
    Scope(org_id="acme", user_id="alice", agent_id="bot"),
    Scope(agent_id="bot"),
    Scope(org_id="acme"),
]
SCOPE_SETS = [
    ScopeSet.of(ALICE_BOT, Scope(user_id="alice", agent_id="team:t")),
    ScopeSet.of(ALICE_BOT),
    ScopeSet.of(BOB, Scope(agent_id="bot")),
    ScopeSet.of(Scope(user_id="alice", agent_id="bot", thread_id="t1"), Scope(org_id="acme")),
    ScopeSet.of(Scope(user_id="carol"), Scope(user_id="dave")),
]


@pytest.mark.parametrize("scopes", SCOPE_SETS, ids=str)
def test_a_scope_set_reads_its_members_and_nothing_else(
    store: RecordStore, scopes: ScopeSet
) -> None:
    records = [
        rec(n, scope, kind=MemoryKind.SEMANTIC if n % 3 == 0 else MemoryKind.EPISODIC)
        for n, scope in enumerate(SCOPE_GRID * 2, start=1)
    ]
    for n, r in enumerate(records, start=1):
        r.metadata = {"n": n}
    insert(store, *records)
    every_id = [r.id for r in records]
    visible = [r for r in records if scopes.contains(r.scope)]
    expected = [r.id for r in visible]

    assert ids(store.query(RecordQuery(scope=scopes, limit=100))) == expected
    assert sorted(ids(store.get_many(every_id, scopes))) == sorted(expected)
    assert store.ids_in_scope(scopes) == sorted(expected)
    for r in records:
        assert bool(store.history(r.id, scopes)) == (r.id in expected), r.scope
    # The members are OR-ed inside the other conditions, never beside them.
    narrowed = RecordQuery(
        scope=scopes,
        kinds=(MemoryKind.EPISODIC,),
        conditions=parse_filters({"n": {"$gte": 5}}),
        limit=100,
    )
    assert ids(store.query(narrowed)) == [
        r.id for r in visible if r.kind is MemoryKind.EPISODIC and r.metadata["n"] >= 5
    ]


def test_a_one_scope_set_is_that_scope(store: RecordStore) -> None:
    records = [rec(n, scope) for n, scope in enumerate(SCOPE_GRID, start=1)]
    insert(store, *records)
    for scope in SCOPE_GRID:
        as_set = ScopeSet.of(scope)
        assert ids(store.query(RecordQuery(scope=as_set))) == ids(
            store.query(RecordQuery(scope=scope))
        )


def test_scope_summaries(store: RecordStore) -> None:
    fact = rec(4, ALICE_BOT).model_copy(update={"kind": MemoryKind.SEMANTIC})
    insert(store, rec(3, ALICE), rec(1, ALICE_BOT), fact, rec(2, BOB))
    summaries = store.scope_summaries(ALICE)
    assert [s.scope for s in summaries] == [ALICE, ALICE_BOT]
    assert [s.records for s in summaries] == [1, 2]
    assert summaries[1].by_kind == {"episodic": 1, "semantic": 1}
    assert summaries[0].last_updated is not None
    both = store.scope_summaries(ScopeSet.of(ALICE_BOT, BOB))
    assert [s.scope for s in both] == [ALICE_BOT, BOB]
    assert store.scope_summaries(Scope(user_id="carol")) == []


def test_adjacent_many_answers_each_pair_as_adjacent_does(store: RecordStore) -> None:
    """Neighbours in creation order within scope, kind and group, several records at once."""
    from agentmem.filters import Condition, FilterOp

    records = [rec(i, metadata={"session": "a" if i != 3 else "b"}) for i in range(1, 6)]
    insert(store, *records, rec(6, BOB))
    in_a = Condition("session", FilterOp.EQ, "a")
    queries = [(records[0], None), (records[2], None), (records[3], in_a), (records[4], in_a)]
    found = store.adjacent_many(queries)
    assert found == [store.adjacent(r, g) for r, g in queries]
    ids = [tuple(n.id if n else None for n in pair) for pair in found]
    assert ids == [(None, mid(2)), (mid(2), mid(4)), (mid(2), mid(5)), (mid(4), None)]
    assert store.adjacent_many([]) == []


def test_adjacent_orders_records_created_at_the_same_instant_by_id(store: RecordStore) -> None:
    """Records created at one instant are neighbours in id order, and the bound is strict."""
    same = [rec(n).model_copy(update={"created_at": T0, "updated_at": T0}) for n in (4, 2, 3)]
    insert(store, rec(1), *same, rec(5), rec(6, BOB))
    by_id = {r.id: r for r in same}
    pairs = [store.adjacent(by_id[mid(n)]) for n in (2, 3, 4)]
    ids = [tuple(n.id if n else None for n in pair) for pair in pairs]
    # rec(1) was created a second after T0, so it follows the three created at T0.
    assert ids == [(None, mid(3)), (mid(2), mid(4)), (mid(3), mid(1))]
    assert store.adjacent_many([(by_id[mid(3)], None)]) == [pairs[1]]


def test_count_recalls_adds_each_count_in_one_batch(store: RecordStore) -> None:
    """The batches the recall log writes: ``n`` recalls per record, the last time kept."""
    insert(store, rec(1), rec(2), rec(3))
    store.count_recalls(
        {mid(2): (3, T0 + timedelta(hours=2)), mid(1): (1, T0 + timedelta(hours=1))}
    )
    store.count_recalls({mid(2): (2, T0 + timedelta(hours=3))})
    store.count_recalls({})
    if one(store, mid(1)).access_count == 0:
        return  # a store that keeps no recall counts (touch is optional)
    assert [one(store, mid(i)).access_count for i in (1, 2, 3)] == [1, 5, 0]
    assert one(store, mid(2)).last_accessed_at == T0 + timedelta(hours=3)


def test_an_update_keeps_the_recalls_counted_since_its_read(store: RecordStore) -> None:
    """An update carries the counts it was read with; a recall counted in between (the recall
    log writes behind searches) must survive it."""
    insert(store, rec(1))
    read = one(store, mid(1))
    store.count_recalls({mid(1): (2, T0 + timedelta(hours=1))})
    if one(store, mid(1)).access_count == 0:
        return  # a store that keeps no recall counts (touch is optional)
    store.apply(WriteBatch(updates=[read.model_copy(update={"text": "v2", "version": 2})]))
    after = one(store, mid(1))
    assert (after.text, after.access_count) == ("v2", 2)
    assert after.last_accessed_at == T0 + timedelta(hours=1)


def test_search_bookkeeping_lands_and_user_writes_stay_durable(store: RecordStore) -> None:
    """Recall counts and the retrieval log commit without waiting for the disk; the records a
    user stores afterwards are committed durably as before."""
    from agentmem.stores.capabilities import UtilityLedger

    insert(store, rec(1), rec(2))
    store.touch([mid(1)], T0 + timedelta(hours=1))
    assert one(store, mid(1)).access_count == 1
    assert one(store, mid(2)).access_count == 0
    if isinstance(store, UtilityLedger):
        store.record_retrieval("r1", "user:alice", [mid(1)], 10.0)
        row = store.retrieval("r1")
        assert row is not None and list(row.memory_ids) == [mid(1)]
    with store._cursor() as cur:  # type: ignore[attr-defined]
        if store.placeholder == "?":
            cur.execute("PRAGMA synchronous")
            assert cur.fetchone()[0] == 2  # FULL
        else:
            cur.execute("SHOW synchronous_commit")
            assert cur.fetchone()[0] == "on"


def test_a_store_migrated_by_a_newer_agentmem_is_refused(store: RecordStore) -> None:
    """A schema version this agentmem does not know means tables it would not keep up to date
    (as tombstones or quarantine once were): the store is refused, not written around."""
    with store._transaction() as cur:  # type: ignore[attr-defined]
        cur.execute("INSERT INTO schema_migrations (version) VALUES (999)")
    store.close()
    with pytest.raises(InvalidSettings, match=r"schema version 999, newer than this agentmem"):
        store.setup()
    store.close()
