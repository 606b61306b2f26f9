"""Buffer settings: the environment variables a deployment sets, and what is refused."""

from __future__ import annotations

import pytest

from agentmem import BufferSettings, InvalidSettings, Settings
from agentmem.buffers import InProcessBufferBackend, buffer_backend_from_url
from agentmem.buffers.redis import RedisBufferBackend


def test_environment_chooses_the_backend_and_tunes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.load().resolved_buffer_url() == "memory://"
    monkeypatch.setenv("AGENTMEM_BUFFER_URL", "redis://:pw@cache:6380/2")
    monkeypatch.setenv("AGENTMEM_BUFFER__MAX_TOKENS", "500")
    monkeypatch.setenv("AGENTMEM_BUFFER__TOPIC_SHIFT_THRESHOLD", "none")
    monkeypatch.setenv("AGENTMEM_BUFFER__TTL_SECONDS", "off")
    monkeypatch.setenv("AGENTMEM_BUFFER__KEY_PREFIX", "team-a:")
    s = Settings.load()
    assert s.resolved_buffer_url() == "redis://:pw@cache:6380/2"
    assert s.buffer == BufferSettings(
        max_tokens=500, topic_shift_threshold=None, ttl_seconds=None, key_prefix="team-a:"
    )
    backend = buffer_backend_from_url(s.resolved_buffer_url(), s.buffer)
    assert isinstance(backend, RedisBufferBackend)  # built without connecting
    assert (backend.key_prefix, backend.ttl_seconds) == ("team-a:", None)
    assert isinstance(buffer_backend_from_url("memory://"), InProcessBufferBackend)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"buffer_url": "memcached://x"}, "unknown scheme"),
        ({"buffer": {"max_tokens": 0}}, "max_tokens"),
        ({"buffer": {"max_tokens": -10}}, "max_tokens"),
        ({"buffer": {"topic_shift_threshold": 1.5}}, "topic_shift_threshold"),
        ({"buffer": {"context_share": 0}}, "context_share"),
        ({"buffer": {"ttl_seconds": 0}}, "ttl_seconds"),
        ({"buffer": {"key_prefix": ""}}, "key_prefix"),
        ({"buffer": {"lock_timeout_s": 0}}, "lock_timeout_s"),
        ({"buffer": {"unknown": 1}}, "unknown"),
    ],
)
def test_unusable_buffer_settings_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidSettings, match=message):
        Settings.load(**overrides)


@pytest.mark.parametrize(
    "url",
    ["redis://127.0.0.1:6379/abc", "rediss://cache:6380/1x", "redis://h/-1", "redis://h/0/1"],
)
def test_a_redis_buffer_url_whose_db_is_not_a_number_is_refused(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """redis-py reads a db it cannot parse as database 0, so a typo put the buffers in db 0
    (perhaps another deployment's) without a word; now the settings refuse it, naming it."""
    monkeypatch.setenv("AGENTMEM_BUFFER_URL", url)
    with pytest.raises(InvalidSettings, match="AGENTMEM_BUFFER_URL") as caught:
        Settings.load()
    assert "not a database number" in str(caught.value) and url in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "redis://cache:6379",
        "redis://cache:6379/",
        "redis://:pw@cache:6379/15",
        "rediss://cache:6380/2?ssl_cert_reqs=none",
        "unix:///run/redis.sock?db=3",
    ],
)
def test_redis_buffer_urls_with_a_db_number_or_none_load(url: str) -> None:
    assert Settings.load(buffer_url=url).buffer_url == url


def test_a_url_only_a_buffer_backend_would_misread_is_refused() -> None:
    with pytest.raises(InvalidSettings, match=r"memory:// \(in-process\) or redis://"):
        buffer_backend_from_url("memory://somewhere")
