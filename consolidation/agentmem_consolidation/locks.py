"""Per-scope locks: one consolidation run per scope at a time, across processes and machines.

A lock is a lease owned by a run id with an expiry: every stage of the run renews it, the last
releases it, and a worker that dies mid-run lets it expire (``lock_timeout_s``), unless the
redelivered stage of the same run picks it up first (same owner: it continues). A second run
for the same scope waits up to ``lock_wait_s`` and is then skipped; two runs never interleave.

- :class:`RedisScopeLock` when the broker is Redis (keys
  ``<global_keyprefix><lock_prefix>lock:<scope>``, the broker's key prefix first);
- :class:`StoreScopeLock` otherwise: a row in the store's ``consolidation_locks`` table (the
  embedded default, and PostgreSQL for an AMQP broker).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol

from agentmem.errors import BackendUnavailable
from agentmem.settings import Settings
from agentmem_consolidation import ledger

if TYPE_CHECKING:
    from agentmem import Memory

# Take or renew (same owner) atomically; never steal an unexpired lease of another owner.
_ACQUIRE = """
local held = redis.call('GET', KEYS[1])
if held == false or held == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class ScopeLock(Protocol):
    """A lease on one scope, owned by a run id."""

    def acquire(self, owner: str) -> bool:
        """Take or renew the lease for ``owner``; False while another owner holds it."""
        ...

    def release(self, owner: str) -> bool:
        """Drop the lease if ``owner`` holds it."""
        ...

    def owner(self) -> str | None:
        """Who holds the lease now (None: free)."""
        ...


class RedisScopeLock:
    """A scope lease in Redis (``SET`` with an expiry, compare-and-set by Lua scripts)."""

    def __init__(self, client: Any, key: str, ttl_s: float) -> None:
        self.client = client
        self.key = key
        self.ttl_ms = max(1, int(ttl_s * 1000))

    def acquire(self, owner: str) -> bool:
        """Take or renew the lease for ``owner``."""
        try:
            return bool(self.client.eval(_ACQUIRE, 1, self.key, owner, self.ttl_ms))
        except Exception as exc:  # redis errors: retried by the pipeline
            raise BackendUnavailable(f"cannot reach Redis for the scope lock: {exc}") from exc

    def release(self, owner: str) -> bool:
        """Drop the lease if ``owner`` holds it."""
        try:
            return bool(self.client.eval(_RELEASE, 1, self.key, owner))
        except Exception as exc:
            raise BackendUnavailable(f"cannot reach Redis for the scope lock: {exc}") from exc

    def owner(self) -> str | None:
        """Who holds the lease now."""
        try:
            value = self.client.get(self.key)
        except Exception as exc:
            raise BackendUnavailable(f"cannot reach Redis for the scope lock: {exc}") from exc
        return None if value is None else value.decode()


class StoreScopeLock:
    """A scope lease in the record store's ``consolidation_locks`` table."""

    def __init__(self, mem: Memory, name: str, ttl_s: float) -> None:
        self.mem = mem
        self.name = name
        self.ttl_s = ttl_s

    def acquire(self, owner: str) -> bool:
        """Take or renew the lease for ``owner``."""
        return ledger.store_of(self.mem).lease(self.name, owner, self.ttl_s)

    def release(self, owner: str) -> bool:
        """Drop the lease if ``owner`` holds it."""
        return ledger.store_of(self.mem).release(self.name, owner)

    def owner(self) -> str | None:
        """Who holds the lease now."""
        return ledger.store_of(self.mem).lease_owner(self.name)


_CLIENTS: dict[str, Any] = {}


def redis_client(url: str) -> Any:
    """One Redis client per URL per process."""
    client = _CLIENTS.get(url)
    if client is None:
        import redis

        client = _CLIENTS[url] = redis.Redis.from_url(url, socket_timeout=10)
    return client


def redis_lock_key(settings: Settings, key: str) -> str:
    """The Redis key of the scope key ``key``'s lock: under the broker's ``global_keyprefix``
    (homes that share a Redis each have their own, and their user ids are their own), then
    ``lock_prefix``."""
    config = settings.consolidation
    home_prefix = str(config.broker_transport_options.get("global_keyprefix") or "")
    return f"{home_prefix}{config.lock_prefix}lock:{key}"


def scope_lock(mem: Memory, settings: Settings, key: str) -> ScopeLock:
    """The lock of the scope key ``key``: in Redis when the broker is Redis, else the store."""
    config = settings.consolidation
    url = config.broker_url or ""
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisScopeLock(
            redis_client(url), redis_lock_key(settings, key), config.lock_timeout_s
        )
    return StoreScopeLock(mem, f"scope:{key}", config.lock_timeout_s)


def redis_owner(settings: Settings, key: str) -> str | None:
    """Who holds the scope's lock when locks live in Redis (None: free, or locks live in the
    store). Needs no Memory: a run waiting for a busy scope polls this, not the store."""
    config = settings.consolidation
    url = config.broker_url or ""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    return RedisScopeLock(redis_client(url), redis_lock_key(settings, key), 1.0).owner()


def wait_acquire(lock: ScopeLock, owner: str, wait_s: float, poll_s: float = 0.1) -> bool:
    """Acquire, waiting up to ``wait_s`` seconds for another run to finish."""
    deadline = time.monotonic() + wait_s
    while True:
        if lock.acquire(owner):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)


__all__ = [
    "RedisScopeLock",
    "ScopeLock",
    "StoreScopeLock",
    "redis_client",
    "redis_lock_key",
    "redis_owner",
    "scope_lock",
    "wait_acquire",
]
