"""``agentmem serve --workers N``: several server processes on one PostgreSQL + pgvector memory,
rate limits shared through Redis, a killed worker not taking the others down; an embedded home
still refusing a second process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from agentmem import Memory, Settings
from agentmem.embedders import Embedder
from agentmem.stores.postgres import PostgresStore
from agentmem_server import create_key
from tests.server.conftest import bearer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _agentmem(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentmem", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _env(**extra: str) -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": root, "AGENTMEM_ADAPTERS": "off", **extra}


def test_workers_refuse_an_embedded_home(tmp_path: Path) -> None:
    done = _agentmem("--home", str(tmp_path / "h"), "serve", "--workers", "2", env=_env())
    assert done.returncode == 1
    assert "--workers 2 needs a memory several processes may share" in done.stderr
    assert "postgresql://" in done.stderr


def test_second_server_on_an_embedded_home_gets_home_locked(
    tmp_path: Path, embedder: Embedder
) -> None:
    home = tmp_path / "h"
    with Memory(settings=Settings.load(home=home), embedder=embedder):
        done = _agentmem("--home", str(home), "serve", "--port", str(_free_port()), env=_env())
    assert done.returncode == 1
    assert "is open in another process" in done.stderr


def _workers(proc: subprocess.Popen[bytes]) -> list[int]:
    import psutil

    return [c.pid for c in psutil.Process(proc.pid).children() if "python" in c.name()]


@pytest.mark.slow
def test_two_workers_share_one_memory_and_one_rate_limit(
    tmp_path: Path, pgvector_url: str, redis_url: str
) -> None:
    with PostgresStore(pgvector_url) as store:
        store.setup()
        limited = create_key(store, org_id="acme", name="limited").token
        other = create_key(store, org_id="acme", name="other").token
    port = _free_port()
    env = _env(
        AGENTMEM_HOME=str(tmp_path / "h"),
        AGENTMEM_STORE_URL=pgvector_url,
        AGENTMEM_VECTORS_URL=pgvector_url,
        AGENTMEM_SERVER_RATE_LIMIT="6/minute",
        AGENTMEM_SERVER_RATE_LIMIT_STORAGE_URL=redis_url,
        AGENTMEM_SERVER_LOG_JSON="false",
    )
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentmem", "serve", "--workers", "2", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while len(_workers(proc)) < 2 or not _ready(base):
            assert proc.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the workers did not get ready"
            time.sleep(0.5)
        # One limit per key across both processes: new connections land on either worker.
        codes = []
        for n in range(10):
            with httpx.Client(base_url=base, headers=bearer(limited), timeout=60) as c:
                codes.append(
                    c.post("/v1/memories", json={"user_id": "u", "text": f"note {n}"}).status_code
                )
        assert codes.count(201) == 6 and codes.count(429) == 4, codes
        # Killing one worker leaves the other serving the same memory.
        os.kill(_workers(proc)[0], signal.SIGKILL)
        found = _search_until_served(base, other)
        assert {h["text"] for h in found} == {f"note {n}" for n in range(10) if codes[n] == 201}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _search_until_served(base: str, token: str) -> list[dict[str, object]]:
    for _ in range(5):
        try:
            with httpx.Client(base_url=base, headers=bearer(token), timeout=60) as c:
                r = c.post("/v1/memories/search", json={"user_id": "u", "query": "note", "k": 20})
            r.raise_for_status()
            hits: list[dict[str, object]] = [h["record"] for h in r.json()]
            return hits
        except httpx.TransportError:  # a connection the killed worker had accepted
            time.sleep(0.5)
    raise AssertionError("no worker answered after one was killed")


def test_rate_limit_storage_is_checked_at_start() -> None:
    from agentmem.errors import BackendUnavailable, InvalidSettings
    from agentmem_server import ServerSettings
    from agentmem_server.app import rate_limit_storage

    with pytest.raises(InvalidSettings, match="rate_limit_storage_url"):
        ServerSettings.load(rate_limit_storage_url="memcached://localhost:11211")
    closed = _free_port()
    settings = ServerSettings.load(rate_limit_storage_url=f"redis://:pw@127.0.0.1:{closed}/0")
    with pytest.raises(BackendUnavailable, match="memory://") as info:
        rate_limit_storage(settings)
    assert "pw" not in str(info.value)
