"""The Redis buffer backend: buffers shared by processes and machines (``redis://...``).

Layout, under ``key_prefix`` (default ``agentmem:buffer:``), per thread key ``K``:

- ``<prefix>K``: a list of turns, each one JSON object with a unique ``id``. An append is one
  ``MULTI``: ``RPUSH`` the turn, ``INCRBY`` the token total, refresh both keys' ``EXPIRE``
  (``ttl_seconds``) and read the turns just before it, so concurrent writers never interleave
  inside an append and each writer's turns keep their order.
- ``<prefix>K:tokens``: the thread's token total, kept with the list.
- ``<prefix>K:lock``: the flush lock (redis-py's ``Lock``: a token with an expiry, so a lock
  whose holder died frees itself after ``lock_timeout_s``).

Any other key under the prefix (another app's, or one of a deployment whose prefix extends
this one's) is not a thread: :meth:`RedisBufferBackend.threads` lists only lists named by a
thread key.

Removal after a flush is one Lua script that deletes the flushed turns by id and lowers the
total. A command that fails on the connection is retried twice; should a retried append have
reached Redis the first time, the duplicate carries the same turn id and readers keep one copy.
Every Redis failure is translated here, once, into :class:`~agentmem.errors.BackendUnavailable`
naming the URL (password hidden); turns acknowledged before a failure stay in Redis.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from agentmem.buffers.base import (
    Appended,
    BufferBackend,
    Turn,
    scope_from_thread_key,
    thread_key,
)
from agentmem.errors import (
    AgentMemError,
    BackendUnavailable,
    Conflict,
    InvalidScope,
    InvalidSettings,
)
from agentmem.urls import REDIS_DATABASES, redact, redis_db, redis_db_problem

log = logging.getLogger(__name__)

SCHEMES = ("redis://", "rediss://", "unix://")
CLIENT_NAME = "agentmem-buffer"
_START_HINT = (
    "start it (e.g. `redis-server --daemonize yes`), check AGENTMEM_BUFFER_URL, or use the "
    "in-process buffer (AGENTMEM_BUFFER_URL=memory://)"
)

# KEYS: list, token total. ARGV: turn ids. Removes every copy of each turn, lowers the total,
# and drops both keys once the list is empty.
_REMOVE_LUA = """
local want = {}
for i = 1, #ARGV do want[ARGV[i]] = true end
local items = redis.call('LRANGE', KEYS[1], 0, -1)
local removed, tokens = 0, 0
for _, raw in ipairs(items) do
  local ok, turn = pcall(cjson.decode, raw)
  if ok and type(turn) == 'table' and want[turn['id']] then
    local n = redis.call('LREM', KEYS[1], 0, raw)
    removed = removed + n
    tokens = tokens + n * (tonumber(turn['tokens']) or 0)
  end
end
if redis.call('LLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
elseif tokens > 0 then
  redis.call('DECRBY', KEYS[2], tokens)
end
return removed
"""


class RedisBufferBackend(BufferBackend):
    """Buffers in Redis: atomic appends, a per-thread lock, idle threads expire."""

    supports_ttl = True
    supports_concurrent_processes = True
    durable = True

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "agentmem:buffer:",
        ttl_seconds: int | None = 7 * 24 * 3600,
        timeout: float = 5.0,
        retries: int = 2,
    ) -> None:
        if not url.startswith(SCHEMES):
            raise InvalidSettings(
                f"{redact(url)!r} is not a Redis URL like redis://localhost:6379/0"
            )
        if not key_prefix:
            raise InvalidSettings("the Redis buffer key prefix is empty; e.g. 'agentmem:buffer:'")
        self.url = url
        self.key_prefix = key_prefix
        self.ttl_seconds = ttl_seconds
        self.timeout = timeout
        self.retries = retries
        self._client: Any = None
        self._remove: Any = None

    # lifecycle ---------------------------------------------------------------------------

    def setup(self) -> None:
        if self._client is not None:
            return
        try:
            import redis
            from redis.backoff import ExponentialBackoff
            from redis.retry import Retry
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise BackendUnavailable(
                "the Redis buffer needs redis-py; install it with `pip install 'agentmem[redis]'`"
            ) from exc
        problem = redis_db_problem(self.url)
        if problem:
            raise InvalidSettings(f"cannot use the Redis URL {redact(self.url)!r}: it {problem}")
        try:
            client = redis.Redis.from_url(
                self.url,
                decode_responses=True,
                socket_connect_timeout=self.timeout,
                socket_timeout=self.timeout,
                retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), self.retries),
                client_name=CLIENT_NAME,
            )
        except ValueError as exc:
            raise InvalidSettings(f"cannot use the Redis URL {redact(self.url)!r}: {exc}") from exc
        with self._translate("connecting"):
            client.ping()
        self._remove = client.register_script(_REMOVE_LUA)
        self._client = client

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _require(self) -> Any:
        if self._client is None:
            raise BackendUnavailable(
                f"the Redis buffer at {redact(self.url)} is not open; call setup() first"
            )
        return self._client

    # keys ----------------------------------------------------------------------------------

    def _list(self, thread: str) -> str:
        return f"{self.key_prefix}{thread}"

    def _tokens(self, thread: str) -> str:
        return f"{self.key_prefix}{thread}:tokens"

    # operations ----------------------------------------------------------------------------

    def append(self, thread: str, turn: Turn, *, lookback: int = 0) -> Appended:
        client = self._require()
        key, total = self._list(thread), self._tokens(thread)
        with self._translate(f"appending to thread {thread!r}"):
            pipe = client.pipeline(transaction=True)
            pipe.rpush(key, turn.model_dump_json())
            pipe.incrby(total, turn.tokens)
            if self.ttl_seconds is not None:
                pipe.expire(key, self.ttl_seconds)
                pipe.expire(total, self.ttl_seconds)
            if lookback > 0:
                pipe.lrange(key, -lookback - 1, -2)
            results = pipe.execute()
        previous = _decode(results[-1]) if lookback > 0 else []
        return Appended(
            length=int(results[0]),
            tokens=int(results[1]),
            previous=tuple(t for t in previous if t.id != turn.id),
        )

    def turns(self, thread: str) -> list[Turn]:
        client = self._require()
        with self._translate(f"reading thread {thread!r}"):
            raw = client.lrange(self._list(thread), 0, -1)
        return _decode(raw)

    def tail(self, thread: str, n: int) -> list[Turn]:
        if n <= 0:
            return []
        client = self._require()
        with self._translate(f"reading thread {thread!r}"):
            raw = client.lrange(self._list(thread), -n, -1)
        return _decode(raw)

    def remove(self, thread: str, turn_ids: Sequence[str]) -> int:
        if not turn_ids:
            return 0
        self._require()
        with self._translate(f"removing flushed turns of thread {thread!r}"):
            removed = self._remove(
                keys=[self._list(thread), self._tokens(thread)], args=list(turn_ids)
            )
        return int(removed)

    def delete(self, thread: str) -> int:
        client = self._require()
        with self._translate(f"clearing thread {thread!r}"):
            pipe = client.pipeline(transaction=True)
            pipe.llen(self._list(thread))
            pipe.delete(self._list(thread), self._tokens(thread))
            count, _ = pipe.execute()
        return int(count)

    @contextlib.contextmanager
    def lock(self, thread: str, *, wait: float, hold: float) -> Iterator[None]:
        client = self._require()
        lock = client.lock(
            f"{self.key_prefix}{thread}:lock",
            timeout=hold,
            blocking_timeout=wait if wait > 0 else None,
            thread_local=False,
        )
        with self._translate(f"locking thread {thread!r}"):
            acquired = lock.acquire(blocking=wait > 0)
        if not acquired:
            raise Conflict(
                f"thread {thread!r} is being flushed by another process (waited {wait} s; "
                f"Redis at {redact(self.url)}); retry (AGENTMEM_BUFFER__LOCK_TIMEOUT_S sets "
                "the wait)"
            )
        try:
            yield
        finally:
            self._release(lock, thread)

    def _release(self, lock: Any, thread: str) -> None:
        from redis.exceptions import LockError

        with self._translate(f"unlocking thread {thread!r}"):
            try:
                lock.release()
            except LockError:
                # It expired while held: at worst another process flushed the same turns
                # again, found them stored and wrote only the others.
                log.warning("the flush lock of thread %r expired before its release", thread)

    def threads(self) -> list[str]:
        client = self._require()
        pattern = _glob_escape(self.key_prefix) + "*"
        with self._translate("listing threads"):
            found = list(client.scan_iter(match=pattern, count=1000))
            start = len(self.key_prefix)
            names = sorted(k[start:] for k in found if not k.endswith((":tokens", ":lock")))
            # Other keys may share the prefix (another app's, or those of a deployment whose
            # prefix extends this one's): only lists named by a thread key are threads.
            named = [n for n in names if _is_thread_key(n)]
            pipe = client.pipeline(transaction=False)
            for name in named:
                pipe.type(self._list(name))
            types = pipe.execute() if named else []
        threads = [n for n, t in zip(named, types, strict=True) if t == "list"]
        if len(threads) < len(names):
            other = sorted(set(names) - set(threads))
            log.warning(
                "skipped %d key(s) under the buffer prefix %r that are not buffer threads "
                "(e.g. %r); give each deployment its own prefix (AGENTMEM_BUFFER__KEY_PREFIX)",
                len(other),
                self.key_prefix,
                other[0],
            )
        return threads

    def length(self, thread: str) -> int:
        client = self._require()
        with self._translate(f"reading thread {thread!r}"):
            return int(client.llen(self._list(thread)))

    def ttl(self, thread: str) -> float | None:
        client = self._require()
        with self._translate(f"reading the expiry of thread {thread!r}"):
            ms = int(client.pttl(self._list(thread)))
        return ms / 1000 if ms >= 0 else None

    # errors --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _translate(self, action: str) -> Iterator[None]:
        """Turn redis-py's errors into agentmem's, at this one boundary."""
        from redis import exceptions as rx

        where = redact(self.url)
        try:
            yield
        except AgentMemError:
            raise
        except rx.AuthenticationError as exc:
            raise BackendUnavailable(
                f"Redis at {where} refused the credentials while {action} ({exc}); put the "
                "password in the URL (redis://:password@host:6379/0 or redis://user:password@...)"
            ) from exc
        except (rx.ConnectionError, rx.TimeoutError, OSError) as exc:
            raise BackendUnavailable(
                f"cannot reach Redis at {where} while {action} ({type(exc).__name__}: {exc}); "
                f"{_START_HINT}. Turns appended before this error are kept in Redis"
            ) from exc
        except rx.ResponseError as exc:
            if "DB index is out of range" in str(exc):  # answered on connecting (SELECT n)
                raise InvalidSettings(
                    f"Redis at {where} has no database {redis_db(self.url)} ({exc}); "
                    f"{REDIS_DATABASES}: set AGENTMEM_BUFFER_URL to one of them"
                ) from exc
            raise BackendUnavailable(
                f"Redis at {where} refused a command while {action}: {exc}. If a key under "
                f"{self.key_prefix!r} holds something else, choose another prefix "
                "(AGENTMEM_BUFFER__KEY_PREFIX)"
            ) from exc
        except rx.RedisError as exc:
            raise BackendUnavailable(f"Redis at {where} failed while {action}: {exc}") from exc


def _decode(raw: Sequence[str]) -> list[Turn]:
    """Turns from their JSON, in order, one copy of each id (a retried append may repeat one)."""
    seen: set[str] = set()
    out: list[Turn] = []
    for item in raw:
        try:
            turn = Turn.model_validate(json.loads(item))
        except (ValueError, PydanticValidationError):
            log.warning("skipping an unreadable buffer entry: %.80r", item)
            continue
        if turn.id not in seen:
            seen.add(turn.id)
            out.append(turn)
    return out


def _is_thread_key(name: str) -> bool:
    """Whether ``name`` (a key less the prefix) is a :func:`thread_key`: it names a scope with
    a thread, written as that scope's key is."""
    try:
        scope = scope_from_thread_key(name)
    except InvalidScope:
        return False
    return scope.thread_id is not None and thread_key(scope) == name


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


__all__ = ["CLIENT_NAME", "RedisBufferBackend"]
