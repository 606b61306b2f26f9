"""The in-process buffer backend: the default, a dict of lists behind locks.

Turns live as long as the process (the :class:`~agentmem.Memory` that owns the backend
flushes them into episodic memory when it closes). Threads within the process are safe;
other processes do not see these buffers: use Redis for that.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from agentmem.buffers.base import Appended, BufferBackend, Turn
from agentmem.errors import Conflict


class InProcessBufferBackend(BufferBackend):
    """Buffers in this process's memory (``memory://``)."""

    supports_ttl = False
    supports_concurrent_processes = False
    durable = False

    def __init__(self) -> None:
        self.url = "memory://"
        self._threads: dict[str, list[Turn]] = {}
        self._tokens: dict[str, int] = {}
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def setup(self) -> None:
        """Nothing to connect."""

    def close(self) -> None:
        """Nothing to release; the turns stay readable until the object is dropped."""

    def append(self, thread: str, turn: Turn, *, lookback: int = 0) -> Appended:
        with self._guard:
            turns = self._threads.setdefault(thread, [])
            turns.append(turn)
            tokens = self._tokens[thread] = self._tokens.get(thread, 0) + turn.tokens
            previous = tuple(turns[-lookback - 1 : -1]) if lookback > 0 else ()
            return Appended(length=len(turns), tokens=tokens, previous=previous)

    def turns(self, thread: str) -> list[Turn]:
        with self._guard:
            return list(self._threads.get(thread, ()))

    def remove(self, thread: str, turn_ids: Sequence[str]) -> int:
        gone = set(turn_ids)
        with self._guard:
            turns = self._threads.get(thread)
            if not turns:
                return 0
            kept = [t for t in turns if t.id not in gone]
            removed = len(turns) - len(kept)
            if kept:
                self._threads[thread] = kept
                self._tokens[thread] = sum(t.tokens for t in kept)
            else:
                del self._threads[thread]
                self._tokens.pop(thread, None)
            return removed

    def delete(self, thread: str) -> int:
        with self._guard:
            self._tokens.pop(thread, None)
            return len(self._threads.pop(thread, ()))

    @contextmanager
    def lock(self, thread: str, *, wait: float, hold: float) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(thread, threading.Lock())
        acquired = lock.acquire(timeout=wait) if wait > 0 else lock.acquire(blocking=False)
        if not acquired:
            raise Conflict(
                f"thread {thread!r} is being flushed by another caller (waited {wait} s); "
                "retry (AGENTMEM_BUFFER__LOCK_TIMEOUT_S sets the wait)"
            )
        try:
            yield
        finally:
            lock.release()

    def threads(self) -> list[str]:
        with self._guard:
            return [k for k, v in self._threads.items() if v]

    def length(self, thread: str) -> int:
        with self._guard:
            return len(self._threads.get(thread, ()))

    def tail(self, thread: str, n: int) -> list[Turn]:
        with self._guard:
            return list(self._threads.get(thread, ())[-n:]) if n > 0 else []


__all__ = ["InProcessBufferBackend"]
