"""Graceful shutdown: a real uvicorn server asked to stop mid-request finishes the write."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import uvicorn

from agentmem import Memory
from agentmem_server import ServerSettings, create_app
from tests.server.conftest import Keys, bearer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_stop_finishes_in_flight_writes(server_mem: Memory, keys: Keys) -> None:
    port = _free_port()
    app = create_app(server_mem, ServerSettings(rate_limit="off"))
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_config=None,
            lifespan="on",
            timeout_graceful_shutdown=60,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started

    scope = {"user_id": "shutdown"}
    items = [{"text": f"item {i}: a note long enough to take a moment to embed"} for i in range(60)]
    result: dict[str, httpx.Response] = {}

    def write() -> None:
        result["response"] = httpx.post(
            f"http://127.0.0.1:{port}/v1/memories/batch",
            json={**scope, "items": items},
            headers=bearer(keys.acme),
            timeout=120,
        )

    writer = threading.Thread(target=write)
    writer.start()
    while not server.server_state.tasks and writer.is_alive():  # wait until it is in flight
        time.sleep(0.005)
    server.should_exit = True
    writer.join(120)
    thread.join(120)
    assert result["response"].status_code == 201
    assert len(server_mem.list(org_id="acme", user_id="shutdown", limit=1000)) == 60


def test_an_app_started_again_after_a_stop_still_runs_consolidation(
    server_mem: Memory, keys: Keys
) -> None:
    """A lifespan may be entered twice (test clients, schema fuzzers): the second start queues
    consolidation runs like the first, instead of failing on a stopped worker thread."""
    from fastapi.testclient import TestClient

    app = create_app(server_mem, ServerSettings(rate_limit="off"))
    body = {"user_id": "restart", "stages": ["flush"]}
    for _ in range(2):
        with TestClient(app) as client:
            response = client.post("/v1/consolidation/runs", json=body, headers=bearer(keys.acme))
            assert response.status_code == 202, response.text
