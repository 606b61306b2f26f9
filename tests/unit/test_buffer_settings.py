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


def test_a_url_only_a_buffer_backend_would_misread_is_refused() -> None:
    with pytest.raises(InvalidSettings, match=r"memory:// \(in-process\) or redis://"):
        buffer_backend_from_url("memory://somewhere")
