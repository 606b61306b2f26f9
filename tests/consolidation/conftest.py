"""Module-scoped broker fixtures: the worker tests of a module share one key prefix (Redis) or
one purged queue (RabbitMQ), so they can share one worker."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.services import REDIS_URL, require_service

RABBITMQ_URL = os.environ.get("AGENTMEM_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")


@pytest.fixture(scope="module")
def module_redis() -> Iterator[tuple[str, str]]:
    """(Redis URL, a fresh key prefix) for one test module; the prefix's keys are deleted
    afterwards."""
    import redis

    parts = urlsplit(REDIS_URL)
    require_service("redis", parts.hostname or "127.0.0.1", parts.port or 6379)
    prefix = f"agentmem-test:{uuid.uuid4().hex[:12]}:"
    yield REDIS_URL, prefix
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(scope="module")
def rabbitmq_url() -> str:
    """The test RabbitMQ (``AGENTMEM_TEST_RABBITMQ_URL``), its ``consolidation`` queue purged
    of anything an earlier, interrupted run left and its ``gpu`` queue declared afresh (as the
    app declares it now: an older one was bound under the ``consolidation`` routing key);
    skips (fails in CI) without it."""
    from kombu import Connection, Queue

    from agentmem_consolidation.app import CONSOLIDATION_QUEUE, EXCHANGE, GPU_QUEUE

    parts = urlsplit(RABBITMQ_URL)
    require_service("rabbitmq", parts.hostname or "127.0.0.1", parts.port or 5672)
    with Connection(RABBITMQ_URL) as conn:
        channel = conn.default_channel
        queue = Queue(CONSOLIDATION_QUEUE, EXCHANGE, routing_key=CONSOLIDATION_QUEUE)(channel)
        queue.declare()
        queue.purge()
        Queue(GPU_QUEUE)(channel).delete()
        Queue(GPU_QUEUE, EXCHANGE, routing_key=GPU_QUEUE)(channel).declare()
    return RABBITMQ_URL
