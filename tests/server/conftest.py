"""An app over a fresh embedded memory, keys for two orgs and an agent, and a client."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

pytest.importorskip(
    "fastapi", reason="the server extra is not installed: pip install -e '.[server]'"
)

from fastapi.testclient import TestClient

from agentmem import Memory, Settings
from agentmem.embedders import Embedder
from agentmem_server import ServerSettings, create_app, create_key


@dataclass
class Keys:
    """Tokens: an org-wide key of acme, one of another org, one per agent, one per user."""

    acme: str
    other_org: str
    agent_a: str
    agent_b: str
    user_alice: str


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for a token."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def server_mem(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Memory]:
    """One embedded memory for the server tests (opening one per test costs seconds); each
    test writes under its own user ids."""
    home = tmp_path_factory.mktemp("server-home")
    with Memory(settings=Settings.load(home=home), embedder=embedder) as m:
        yield m


@pytest.fixture(scope="session")
def keys(server_mem: Memory) -> Keys:
    store = server_mem.backends.store
    return Keys(
        acme=create_key(store, org_id="acme", name="acme").token,
        other_org=create_key(store, org_id="globex").token,
        agent_a=create_key(store, org_id="acme", user_ids=("alice",), agent_ids=("a",)).token,
        agent_b=create_key(store, org_id="acme", user_ids=("alice",), agent_ids=("b",)).token,
        user_alice=create_key(store, org_id="acme", user_ids=("alice",)).token,
    )


@pytest.fixture(scope="session")
def client(server_mem: Memory) -> Iterator[TestClient]:
    """A client of an app with no rate limit, shared by the server tests."""
    with TestClient(create_app(server_mem, ServerSettings(rate_limit="off"))) as c:
        yield c
