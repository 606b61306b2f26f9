"""Short-term buffers: the turn a buffer holds, and the contract every buffer backend implements.

A buffer backend keeps, per thread, an ordered list of :class:`Turn` s. It knows nothing of
token budgets, topics or episodes (that is :mod:`agentmem.buffers.buffer`); it only appends
atomically, reads, removes turns by id once they are flushed, and locks a thread so that one
flusher at a time moves its turns into episodic memory.

Threads are named by a *thread key* (see :func:`thread_key`): the buffer's scope, every field
percent-encoded, e.g. ``user_id=alice,thread_id=t-1``. The key is reversible
(:func:`scope_from_thread_key`), so a backend's :meth:`BufferBackend.threads` tells which scopes
hold live turns.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Self
from urllib.parse import quote, unquote

from pydantic import BaseModel, ConfigDict, Field

from agentmem.errors import InvalidScope
from agentmem.models import SCOPE_FIELDS, Scope


def new_turn_id() -> str:
    """A new random turn id (32 hex digits)."""
    return uuid.uuid4().hex


class Turn(BaseModel):
    """One turn of a live conversation: who said what, when, and its size in tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default_factory=new_turn_id)
    role: str
    content: str
    name: str | None = None
    at: datetime
    tokens: int = Field(default=0, ge=0, description="tokens of line(), counted on append")

    def line(self) -> str:
        """The turn as one line of a transcript: ``role/name: content`` (or ``role: content``)."""
        speaker = f"{self.role}/{self.name}" if self.name else self.role
        return f"{speaker}: {self.content}"

    def as_message(self) -> dict[str, str]:
        """The turn as a chat message dict (``role``, ``content`` and ``name`` if set)."""
        message = {"role": self.role, "content": self.content}
        if self.name:
            message["name"] = self.name
        return message


def render_turns(turns: Sequence[Turn]) -> str:
    """The transcript of these turns, one line each, oldest first."""
    return "\n".join(t.line() for t in turns)


def thread_key(scope: Scope) -> str:
    """The reversible name of a buffer's thread: its scope fields, percent-encoded."""
    return ",".join(f"{f}={quote(v, safe='')}" for f, v in scope.fields().items())


def scope_from_thread_key(key: str) -> Scope:
    """The scope a :func:`thread_key` names."""
    fields: dict[str, str] = {}
    for part in key.split(","):
        name, sep, value = part.partition("=")
        if not sep or name not in SCOPE_FIELDS:
            raise InvalidScope(f"{key!r} is not a buffer thread key")
        fields[name] = unquote(value)
    return Scope.of(**fields)


@dataclass(frozen=True, slots=True)
class Appended:
    """What an append saw, atomically with it."""

    length: int
    """Turns in the thread after the append (the new one included)."""
    tokens: int
    """Their tokens, summed."""
    previous: tuple[Turn, ...] = ()
    """Up to ``lookback`` turns just before the new one, oldest first."""


class BufferBackend(ABC):
    """Per-thread lists of turns, appended atomically, removed by id once flushed.

    Lifecycle: the constructor does no I/O; :meth:`setup` connects (idempotent); :meth:`close`
    releases connections. Usable as a context manager.
    """

    url: str
    supports_ttl: bool = False
    """Whether idle threads expire (:meth:`ttl` reports the time left)."""
    supports_concurrent_processes: bool = False
    """Whether several processes (and machines) may share the buffers."""
    durable: bool = False
    """Whether turns outlive the process; the in-process backend's do not, so a Memory flushes
    them into episodic memory when it closes."""

    @abstractmethod
    def setup(self) -> None:
        """Connect. Safe to call again."""

    @abstractmethod
    def close(self) -> None:
        """Release connections. Safe to call again."""

    @abstractmethod
    def append(self, thread: str, turn: Turn, *, lookback: int = 0) -> Appended:
        """Add ``turn`` at the end of ``thread`` atomically (refreshing its expiry) and return
        the thread's size after it, with up to ``lookback`` turns that precede it."""

    @abstractmethod
    def turns(self, thread: str) -> list[Turn]:
        """The thread's turns, oldest first (an unknown thread has none)."""

    @abstractmethod
    def remove(self, thread: str, turn_ids: Sequence[str]) -> int:
        """Remove these turns (after a flush stored them); unknown ids are ignored. Returns how
        many turns were removed."""

    @abstractmethod
    def delete(self, thread: str) -> int:
        """Drop every turn of the thread; returns how many there were."""

    @abstractmethod
    def lock(self, thread: str, *, wait: float, hold: float) -> AbstractContextManager[None]:
        """Hold the thread's flush lock for the ``with`` block. Waits up to ``wait`` seconds
        (0: one try), then raises :class:`~agentmem.errors.Conflict`. A backend shared by
        processes frees a lock after ``hold`` seconds, so a holder that died cannot block the
        thread for ever (a flush writes only turns not yet stored and removes only stored
        ones, so a lock that expires mid-flush is harmless)."""

    @abstractmethod
    def threads(self) -> list[str]:
        """Every thread that holds turns."""

    def length(self, thread: str) -> int:
        """How many turns the thread holds."""
        return len(self.turns(thread))

    def tail(self, thread: str, n: int) -> list[Turn]:
        """The last ``n`` turns, oldest first (fewer if the thread holds fewer)."""
        return self.turns(thread)[-n:] if n > 0 else []

    def ttl(self, thread: str) -> float | None:
        """Seconds until an idle thread expires (None: it does not, or it is unknown)."""
        return None

    def __enter__(self) -> Self:
        self.setup()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


__all__ = [
    "Appended",
    "BufferBackend",
    "Turn",
    "new_turn_id",
    "render_turns",
    "scope_from_thread_key",
    "thread_key",
]
