"""What both PostgreSQL backends (store and pgvector index) share: the pools' connection check,
and the error a failed setup raises.

psycopg_pool's own ``check_connection`` pings the server on every checkout: one more round trip
per statement, a fifth of a loaded server's time (the REST load benchmark spent 22% of its
samples there). A connection handed back less than a second ago was working then; only one
that sat idle longer (where a restarted server or a dropped link may have closed it) is pinged.
"""

from __future__ import annotations

import time
import weakref
from typing import TYPE_CHECKING, Any

from agentmem.errors import AgentMemError, BackendUnavailable, InvalidSettings

if TYPE_CHECKING:
    import psycopg

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


_FOREIGN_TABLE = (
    "the schema holds a table of that name that agentmem did not create: point the URL's "
    "search_path at another schema (options=-csearch_path%3Dagentmem)"
)
_SETUP_HINTS = {
    "42501": "the user needs CREATE on the schema of its search_path (GRANT CREATE ON SCHEMA ...)",
    "42704": "a type it needs (pgvector's vector) is outside the URL's search_path: add the "
    "schema holding the vector extension, e.g. options=-csearch_path%3Dmyschema,public",
    "42P07": _FOREIGN_TABLE,
    "42703": _FOREIGN_TABLE,
}


def setup_error(what: str, exc: psycopg.Error) -> AgentMemError:
    """The error for a failed setup of ``what`` ("the PostgreSQL store at URL"), with the fix
    its cause calls for: a URL libpq cannot read is a settings error; a server error gets the
    hint of its SQLSTATE (privileges, search_path, another application's table)."""
    import psycopg  # the postgres extra: only its backends call this

    reason = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, psycopg.ProgrammingError) and exc.sqlstate is None:
        return InvalidSettings(
            f"cannot set up {what}: libpq cannot read the URL ({reason}); write it as "
            "postgresql://user:password@host:5432/database[?param=value]"
        )
    hint = _SETUP_HINTS.get(
        exc.sqlstate or "",
        "check that the user may create tables in the schema of its search_path "
        "(GRANT CREATE ON SCHEMA ...)",
    )
    return BackendUnavailable(f"cannot set up {what}: {reason}; {hint}")


__all__ = ["IDLE_BEFORE_CHECK_S", "IdleConnectionCheck", "setup_error"]
