"""The window-neighbour lookup (:func:`agentmem.stores._sql.adjacent_sql`) reads an index range
bounded on ``created_at`` on both record stores, so finding a conversation turn's neighbours
costs the same in a scope of ten records as in one of a million. Its bound was once written
``created_at > ? OR (created_at = ? AND id > ?)``, which neither engine turns into a range:
SQLite walked the scope's whole (user, kind) index range on every lookup (2 x window_turns
lookups per written turn, so a bulk import of turns was quadratic)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agentmem.filters import Condition, FilterOp
from agentmem.models import MemoryKind, MemoryRecord, Scope
from agentmem.stores import RecordStore, WriteBatch, store_from_url
from agentmem.stores._sql import adjacent_sql

T0 = datetime(2024, 5, 1, tzinfo=UTC)
ALICE = Scope(user_id="alice")
BOT = Scope(user_id="alice", agent_id="bot")
SESSION = Condition("session", FilterOp.EQ, "s1")


def turns(scope: Scope, n: int) -> list[MemoryRecord]:
    """``n`` conversation turns a second apart, 50 to a session."""
    return [
        MemoryRecord(
            id=f"00000000-0000-4000-8000-{i:012d}",
            scope=scope,
            kind=MemoryKind.EPISODIC,
            text=f"turn {i}",
            metadata={"session": f"s{i // 50}"},
            created_at=T0 + timedelta(seconds=i),
            updated_at=T0 + timedelta(seconds=i),
        )
        for i in range(n)
    ]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a store of each backend, holding 200 turns of alice and 200 of alice's bot."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    store: RecordStore = store_from_url(url, pool_min=1, pool_max=2, timeout=5.0)
    store.setup()
    store.apply(WriteBatch(inserts=turns(ALICE, 200)))
    bot = [r.model_copy(update={"id": r.id[:-4] + "9" + r.id[-3:]}) for r in turns(BOT, 200)]
    store.apply(WriteBatch(inserts=bot))
    store.close()
    yield url


def plans(url: str, record: MemoryRecord) -> list[str]:
    """The plans of the neighbour lookups of ``record``, without and with a session group."""
    if url.startswith("sqlite"):
        from agentmem.stores.sqlite import SQLiteDialect as Dialect

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            return [
                " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
                for group in (None, SESSION)
                for sql, params in adjacent_sql(record, group, Dialect())
            ]
        finally:
            conn.close()
    import psycopg

    from agentmem.stores.postgres import PostgresDialect

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE memories")
        # Forbid what a small table invites, so the plan shows how the index is used.
        conn.execute("SET enable_seqscan = off")
        conn.execute("SET enable_bitmapscan = off")
        return [
            " | ".join(row[0] for row in conn.execute(f"EXPLAIN {sql}", params))
            for group in (None, SESSION)
            for sql, params in adjacent_sql(record, group, PostgresDialect())
        ]


@pytest.mark.parametrize("scope", [ALICE, BOT], ids=["user", "agent"])
def test_neighbour_lookups_read_an_index_range_on_created_at(store_url: str, scope: Scope) -> None:
    record = turns(scope, 200)[120]
    found = plans(store_url, record)
    assert len(found) == 4
    for plan in found:
        if store_url.startswith("sqlite"):
            # e.g. SEARCH memories USING INDEX memories_user (user_id=? AND kind=? AND created_at>?)
            assert "created_at>?" in plan or "created_at<?" in plan, plan
        else:
            conds = [part for part in plan.split(" | ") if "Index Cond" in part]
            assert conds and "created_at" in conds[0], plan
