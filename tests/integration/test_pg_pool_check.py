"""PostgreSQL pools ping a connection only after it sat idle (one round trip less per
statement under load), and still replace a connection the server closed while it sat idle."""

from __future__ import annotations

import time

import psycopg
import pytest

from agentmem.stores import store_from_url
from agentmem.stores._pg_pool import IdleConnectionCheck
from tests.conftest import POSTGRES_URL

pytestmark = pytest.mark.postgres


def test_a_connection_just_handed_back_is_not_pinged_and_an_idle_one_is(pg_url: str) -> None:
    check = IdleConnectionCheck(idle_s=0.2)
    conn = psycopg.connect(POSTGRES_URL, autocommit=True)
    check.check(conn)  # never seen back: pinged, and it works
    check.reset(conn)
    conn.close()  # what a restarted server leaves behind
    check.check(conn)  # handed back just now: trusted, no round trip (a closed one passes)
    check.reset(conn)
    time.sleep(0.3)
    with pytest.raises(psycopg.OperationalError):
        check.check(conn)  # idle longer than idle_s: pinged, and the pool would replace it


def test_the_store_replaces_connections_the_server_closed(pg_url: str) -> None:
    store = store_from_url(pg_url, pool_min=1, pool_max=1, timeout=5.0)
    store.setup()
    try:
        with store._cursor() as cur:  # type: ignore[attr-defined]
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
        time.sleep(1.2)  # longer than IDLE_BEFORE_CHECK_S: the next checkout pings first
        with store._cursor() as cur:  # type: ignore[attr-defined]
            cur.execute("SELECT pg_backend_pid()")
            assert cur.fetchone()[0] != pid  # a new connection, not an error
    finally:
        store.close()
