"""Short-term buffers: the live turns of each thread, flushed into episodic memory as segments.

Backends: in-process (``memory://``, the default) and Redis (``redis://host:6379/0``), both
behind :class:`BufferBackend` and both passing ``tests/contract/test_buffers.py``.
"""

from __future__ import annotations

from agentmem.buffers.base import (
    Appended,
    BufferBackend,
    Turn,
    render_turns,
    scope_from_thread_key,
    thread_key,
)
from agentmem.buffers.buffer import Buffers, Flush, FlushKind, ThreadBuffer, check_budget
from agentmem.buffers.memory import InProcessBufferBackend
from agentmem.errors import InvalidSettings
from agentmem.settings import BufferSettings


def buffer_backend_from_url(
    url: str, settings: BufferSettings | None = None, *, timeout: float = 5.0
) -> BufferBackend:
    """Build (without connecting) the buffer backend a URL names."""
    settings = settings or BufferSettings()
    if url == "memory://":
        return InProcessBufferBackend()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from agentmem.buffers.redis import RedisBufferBackend

        return RedisBufferBackend(
            url, key_prefix=settings.key_prefix, ttl_seconds=settings.ttl_seconds, timeout=timeout
        )
    raise InvalidSettings(
        f"unknown buffer URL {url!r}; use memory:// (in-process) or redis://host:6379/0"
    )


__all__ = [
    "Appended",
    "BufferBackend",
    "Buffers",
    "Flush",
    "FlushKind",
    "InProcessBufferBackend",
    "ThreadBuffer",
    "Turn",
    "buffer_backend_from_url",
    "check_budget",
    "render_turns",
    "scope_from_thread_key",
    "thread_key",
]
