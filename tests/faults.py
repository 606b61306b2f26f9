"""Fault injection against real servers: a TCP relay a test can cut and restore.

:class:`TcpRelay` forwards a local port to a real server. :meth:`TcpRelay.cut` stops accepting
connections and closes the relayed ones, so a client sees its server go away mid-conversation
(the server itself, and what it already acknowledged, stay intact); :meth:`TcpRelay.refuse`
only stops accepting, so the test can kill the live connections from the server side (Redis's
``CLIENT KILL``); :meth:`TcpRelay.restore` listens again on the same port.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from types import TracebackType
from typing import Self


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on (at the time of asking)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class TcpRelay:
    """Relays 127.0.0.1:``port`` to ``upstream``; :meth:`cut` makes the server unreachable."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._upstream_ports: list[int] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._acceptor: threading.Thread | None = None

    @property
    def upstream_ports(self) -> list[int]:
        """Local ports of the relay's connections to the server (as the server sees them)."""
        with self._lock:
            return list(self._upstream_ports)

    def restore(self) -> None:
        """Listen (again) on the relay's port."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        listener.settimeout(0.05)
        self._listener = listener
        self._stop.clear()
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def refuse(self) -> None:
        """Refuse new connections (connecting to the port fails); relayed ones stay up."""
        self._stop.set()
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def cut(self) -> None:
        """Refuse new connections and close every relayed one."""
        self.refuse()
        with self._lock:
            sockets, self._sockets = self._sockets, []
            self._upstream_ports = []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _accept(self) -> None:
        assert self._listener is not None
        listener = self._listener
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
                self._upstream_ports.append(server.getsockname()[1])
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        """Copy bytes both ways until either side closes, then close both."""
        sel = selectors.DefaultSelector()
        try:
            sel.register(a, selectors.EVENT_READ, b)
            sel.register(b, selectors.EVENT_READ, a)
            while True:
                for key, _ in sel.select(timeout=0.5):
                    src: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = src.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
        except (OSError, ValueError):
            return
        finally:
            sel.close()
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def __enter__(self) -> Self:
        self.restore()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cut()
