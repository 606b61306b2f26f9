"""The connection check both PostgreSQL pools (store and pgvector index) use.

psycopg_pool's own ``check_connection`` pings the server on every checkout: one more round trip
per statement, a fifth of a loaded server's time (the REST load benchmark spent 22% of its
samples there). A connection handed back less than a second ago was working then; only one
that sat idle longer (where a restarted server or a dropped link may have closed it) is pinged.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

IDLE_BEFORE_CHECK_S = 1.0
"""A pooled connection idle for longer than this is pinged before it is handed out."""


class IdleConnectionCheck:
    """``check`` and ``reset`` callbacks for a :class:`psycopg_pool.ConnectionPool`: ``reset``
    notes when a connection came back, ``check`` pings only one idle since longer than
    ``idle_s`` (or never seen back)."""

    def __init__(self, idle_s: float = IDLE_BEFORE_CHECK_S) -> None:
        self.idle_s = idle_s
        self._returned: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

    def check(self, conn: Any) -> None:
        """Raise if ``conn`` no longer works (the pool then replaces it)."""
        from psycopg_pool import ConnectionPool  # the postgres extra: present where pools are

        returned = self._returned.pop(conn, None)
        if returned is None or time.monotonic() - returned > self.idle_s:
            ConnectionPool.check_connection(conn)

    def reset(self, conn: Any) -> None:
        """Note that ``conn`` came back to the pool, working, now."""
        self._returned[conn] = time.monotonic()


__all__ = ["IDLE_BEFORE_CHECK_S", "IdleConnectionCheck"]
