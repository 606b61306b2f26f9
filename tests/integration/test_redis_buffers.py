"""Redis buffers under faults and concurrency, against the real server on 127.0.0.1:6379.

- an unreachable Redis: ``BackendUnavailable`` naming the URL (password hidden) and what to do;
- Redis going away mid-conversation (its connection killed with ``CLIENT KILL``, new ones
  refused): ``BackendUnavailable``, every turn acknowledged before the fault still in Redis,
  and the same buffer working again once Redis is back;
- 4 processes x 500 appends to one thread: nothing lost, each writer's order kept;
- the per-thread flush lock, and expiry refreshed on both keys of a thread;
- foreign keys under the prefix (another app's, a deployment with a longer prefix) are not
  threads: listing, forgetting and closing skip them.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from agentmem import BackendUnavailable, Conflict, InvalidSettings, Memory, Scope, Settings
from agentmem.buffers import thread_key
from agentmem.buffers.redis import CLIENT_NAME, RedisBufferBackend
from agentmem.embedders import Embedder
from tests.faults import TcpRelay, free_port
from tests.integration._scripts.support import Child

pytestmark = pytest.mark.redis

MakeMemory = Callable[..., Memory]


@pytest.fixture
def make_mem(
    tmp_path: Path, embedder: Embedder, redis_prefix: str
) -> Iterator[Callable[..., Memory]]:
    """Open Memories whose buffers live in Redis (``url`` defaults to the test server)."""
    opened: list[Memory] = []

    def make(url: str, **buffer: Any) -> Memory:
        config = {"key_prefix": redis_prefix, "topic_shift_threshold": None, **buffer}
        settings = Settings.load(
            home=tmp_path / f"home{len(opened)}",
            vectors_url="qdrant-local://:memory:",
            buffer_url=url,
            buffer=config,
            connect_timeout_s=2.0,
        )
        mem = Memory(settings=settings, embedder=embedder)
        opened.append(mem)
        return mem

    yield make
    for mem in opened:
        mem.close()


def _redis(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, decode_responses=True)


def test_unreachable_redis_names_the_url_without_its_password(make_mem: MakeMemory) -> None:
    port = free_port()
    mem = make_mem(f"redis://:s3cret@127.0.0.1:{port}/0")  # opening needs no Redis
    buf = mem.buffer(thread_id="t-1", user_id="alice")
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as err:
        buf.append("user", "hello")
    message = str(err.value)
    assert f"redis://:***@127.0.0.1:{port}/0" in message and "s3cret" not in message
    assert "redis-server" in message and "AGENTMEM_BUFFER_URL" in message
    assert time.monotonic() - started < 10, "fails fast"
    with pytest.raises(BackendUnavailable, match=str(port)):
        mem.context("hello", user_id="alice", thread_id="t-1")
    assert isinstance(err.value, ConnectionError)  # also the builtin it refines


def test_a_database_redis_has_not_got_is_a_settings_error_naming_it(
    make_mem: MakeMemory, redis_url: str
) -> None:
    """Redis answers "DB index is out of range"; the buffer said to choose another key prefix,
    which is not the fault. Now: InvalidSettings naming the database and AGENTMEM_BUFFER_URL."""
    url = urlunsplit(urlsplit(redis_url)._replace(path="/99999"))
    buf = make_mem(url).buffer(thread_id="t-1", user_id="alice")
    with pytest.raises(InvalidSettings, match="AGENTMEM_BUFFER_URL") as err:
        buf.append("user", "hello")
    assert "no database 99999" in str(err.value) and "prefix" not in str(err.value)


def test_redis_going_away_mid_conversation_loses_no_acknowledged_turn(
    make_mem: MakeMemory, redis_url: str, redis_prefix: str
) -> None:
    parts = urlsplit(redis_url)
    with TcpRelay((parts.hostname or "127.0.0.1", parts.port or 6379)) as relay:
        relayed = urlunsplit(parts._replace(netloc=f"127.0.0.1:{relay.port}"))
        mem = make_mem(relayed)
        buf = mem.buffer(thread_id="t-1", user_id="alice")
        acknowledged = [buf.append("user", f"turn {n} before the fault").id for n in range(5)]

        # The fault: new connections are refused and Redis kills the buffer's connection.
        relay.refuse()
        relayed_ports = set(relay.upstream_ports)
        admin = _redis(redis_url)
        try:
            killed = 0
            for client in admin.client_list():
                port = int(client["addr"].rsplit(":", 1)[1])
                if client.get("name") == CLIENT_NAME and port in relayed_ports:
                    killed += admin.client_kill_filter(_id=client["id"])
            assert killed >= 1, "the buffer's connection was killed by Redis"
            with pytest.raises(BackendUnavailable) as err:
                buf.append("user", "this turn is never acknowledged")
            assert f"127.0.0.1:{relay.port}" in str(err.value)
            assert "kept in Redis" in str(err.value)
            with pytest.raises(BackendUnavailable):
                buf.messages()

            # What Redis acknowledged is all there, in order, read by another client.
            key = f"{redis_prefix}{thread_key(Scope(user_id='alice', thread_id='t-1'))}"
            stored = [_turn_id(raw) for raw in admin.lrange(key, 0, -1)]
            assert stored == acknowledged
        finally:
            admin.close()

        relay.restore()  # Redis is back: the same buffer carries on
        after = buf.append("user", "turn after the fault")
        assert [t.id for t in buf.messages()] == [*acknowledged, after.id]


def _turn_id(raw: str) -> str:
    import json

    return str(json.loads(raw)["id"])


@pytest.mark.slow
def test_four_processes_append_to_one_thread(
    redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    writers, per_writer = 4, 500
    children = [
        Child(
            "buffer_writer.py",
            str(tmp_path / f"w{w}"),
            redis_url,
            redis_prefix,
            str(w),
            str(per_writer),
        )
        for w in range(writers)
    ]
    try:
        for child in children:
            child.wait_for("READY", timeout=120)
        start = time.time() + 0.5
        for child in children:  # they all start at this time
            child.send(f"{start}\n")
        for child in children:
            child.wait_for("DONE", timeout=120)
            assert child.proc.wait(timeout=30) == 0
    finally:
        for child in children:
            child.close()

    backend = RedisBufferBackend(redis_url, key_prefix=redis_prefix)
    backend.setup()
    try:
        turns = backend.turns(thread_key(Scope(user_id="team", thread_id="shared")))
        raw_length = backend.length(thread_key(Scope(user_id="team", thread_id="shared")))
    finally:
        backend.close()
    assert len(turns) == raw_length == writers * per_writer, "nothing lost, nothing doubled"
    assert len({t.id for t in turns}) == len(turns)
    for w in range(writers):
        mine = [int(t.content.rsplit(" ", 1)[1]) for t in turns if t.name == f"w{w}"]
        assert mine == list(range(per_writer)), f"writer {w}'s order"
    # The writers really ran at once (their turns interleave), yet each kept its order.
    switches = sum(a.name != b.name for a, b in itertools.pairwise(turns))
    assert switches > writers


def test_flush_waits_for_the_thread_lock_and_appends_never_block_on_it(
    make_mem: MakeMemory, redis_url: str, redis_prefix: str
) -> None:
    mem = make_mem(redis_url, lock_timeout_s=1.0)
    buf = mem.buffer(thread_id="t-1", user_id="alice", max_tokens=30)
    other = _redis(redis_url)
    lock = other.lock(f"{redis_prefix}{buf.key}:lock", timeout=10)
    assert lock.acquire(blocking=False), "another process holds the flush lock"
    try:
        started = time.monotonic()
        for n in range(6):  # over budget, but the flush must wait: the turns stay
            buf.append("user", f"turn number {n} of a long conversation")
        assert time.monotonic() - started < 1.0, "appends did not wait for the lock"
        assert len(buf) == 6 and buf.last_flush is None
        with pytest.raises(Conflict, match="being flushed"):
            buf.flush()  # an explicit flush waits lock_timeout_s, then says why
    finally:
        lock.release()
        other.close()
    buf.append("user", "the lock is free again")
    assert buf.last_flush is not None and buf.tokens() <= 30
    stored = mem.list(user_id="alice", filters={"buffer_record": "turn"})
    assert len(stored) + len(buf) == 7


def test_every_append_refreshes_the_expiry_of_both_keys(
    make_mem: MakeMemory, redis_url: str, redis_prefix: str
) -> None:
    mem = make_mem(redis_url, ttl_seconds=300)
    buf = mem.buffer(thread_id="t-1", user_id="alice")
    buf.append("user", "hello")
    raw = _redis(redis_url)
    try:
        keys = [f"{redis_prefix}{buf.key}", f"{redis_prefix}{buf.key}:tokens"]
        for key in keys:
            assert 290 < raw.ttl(key) <= 300
            raw.expire(key, 5)
        buf.append("user", "still here")
        for key in keys:
            assert 290 < raw.ttl(key) <= 300, f"{key} refreshed by the append"
        assert int(raw.get(keys[1])) == buf.tokens()
        buf.flush()
        assert raw.exists(*keys) == 0, "a flushed-empty thread leaves no keys behind"
    finally:
        raw.close()


def test_keys_under_the_prefix_that_are_not_threads_are_skipped(
    make_mem: MakeMemory, redis_url: str, redis_prefix: str, embedder: Embedder
) -> None:
    mem = make_mem(redis_url)
    mem.add("Alice likes tea", user_id="alice")
    buf = mem.buffer(thread_id="t-1", user_id="alice")
    buf.append("user", "my phone is 555-0100")
    raw = _redis(redis_url)
    try:
        raw.set(f"{redis_prefix}stats", "1")  # another app's key
        # A deployment whose prefix extends this one's, with a thread and its token total.
        raw.rpush(f"{redis_prefix}v2:{buf.key}", "{}")
        raw.set(f"{redis_prefix}v2:{buf.key}:tokens", "3")
        raw.set(f"{redis_prefix}user_id=bob,thread_id=t-9", "not a list")  # named like one
        raw.rpush(f"{redis_prefix}user_id=bob", "{}")  # a scope without a thread
        assert mem.buffers.ready().threads() == [buf.key]

        report = mem.forget(reason="erasure request", user_id="alice")  # it clears buffers
        assert report.status == "done"
        assert len(buf) == 0 and mem.list(user_id="alice") == []
        assert raw.get(f"{redis_prefix}stats") == "1", "foreign keys are left alone"
        assert raw.llen(f"{redis_prefix}v2:{buf.key}") == 1
    finally:
        raw.close()
    mem.close()
    # An unfinished forget is resumed on open: the home opens, the forget is finished.
    with Memory(settings=mem.settings, embedder=embedder) as again:
        assert again.list(user_id="alice") == []
