"""Shared fixtures: one embedder per session, a fresh embedded home per test, PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from agentmem import Memory, Settings
from agentmem.embedders import Embedder, SentenceTransformerEmbedder
from tests.services import POSTGRES_URL, require_service


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """all-MiniLM-L6-v2, loaded once for the whole run."""
    return SentenceTransformerEmbedder.minilm()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A fresh embedded home directory."""
    return tmp_path / "home"


@pytest.fixture
def mem(home: Path, embedder: Embedder) -> Iterator[Memory]:
    """A Memory on the embedded defaults in a fresh home."""
    with Memory(settings=Settings.load(home=home), embedder=embedder) as m:
        yield m


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
