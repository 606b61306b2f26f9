"""``POST /v1/consolidation/runs`` sends the run to the Celery broker when one is configured
(issue 22: it always ran in the API process, beside the workers)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agentmem import Memory, Scope, Settings
from agentmem.embedders import Embedder
from agentmem_server import ServerSettings, create_app, create_key
from tests.server.conftest import bearer


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A fresh Celery key prefix on the test Redis, deleted afterwards."""
    import redis

    value = f"agentmem-test-broker:{uuid.uuid4().hex[:12]}:"
    yield value
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=value + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def test_a_run_goes_to_the_broker_when_one_is_configured(
    tmp_path: Path, embedder: Embedder, redis_url: str, prefix: str
) -> None:
    pytest.importorskip("celery")
    import redis

    settings = Settings.load(
        home=tmp_path / "home",
        consolidation={
            "broker_url": redis_url,
            "broker_transport_options": {"global_keyprefix": prefix},
        },
    )
    with Memory(settings=settings, embedder=embedder) as mem:
        token = create_key(mem.backends.store, org_id="acme").token
        app = create_app(mem, ServerSettings(rate_limit="off"))
        with TestClient(app) as client:
            sent = client.post(
                "/v1/consolidation/runs",
                json={"org_id": "acme", "user_id": "maya", "stages": ["flush"]},
                headers=bearer(token),
            )
            assert sent.status_code == 202, sent.text
            run_id = sent.json()["run_id"]
            # No worker runs here: the run waits in the broker's queue, not in this process.
            queued = redis.Redis.from_url(redis_url).lrange(prefix + "consolidation", 0, -1)
            sent_run = [message for message in queued if run_id.encode() in message]
            assert sent_run
            # The run names this server's store, so a worker on another store refuses it.
            from agentmem_consolidation import ledger

            body = base64.b64decode(json.loads(sent_run[0])["body"]).decode()
            assert json.dumps(ledger.store_identity(mem.settings)) in body
            status = client.get(f"/v1/consolidation/runs/{run_id}", headers=bearer(token))
            assert status.status_code == 200, status.text
            body = status.json()
            # Listed as queued (not finished) from the moment it is sent, as the CLI lists it.
            assert body["status"] == "queued"
            assert body["scope"] == ledger.scope_key(Scope(org_id="acme", user_id="maya"))
            assert body["started_at"] is not None
            assert body["finished_at"] is None and body["duration_s"] is None
            assert body["error"] is None and body["stages"] == []
