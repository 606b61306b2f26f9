"""The authorisation matrix: every scoped route, every kind of caller.

No key is 401; a key of another org, an agent key acting as another agent, an agent key
without an agent, and a user key acting for another user are 403; the right key gets through.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.server.conftest import Keys, bearer

MEMORY_ID = "00000000-0000-4000-8000-000000000000"
RUN_ID = "00000000-0000-4000-8000-000000000001"

Scope = dict[str, str]
# (method, path, how the scope and the rest of the request are sent)
ROUTES: list[tuple[str, str, Callable[[Scope], dict[str, Any]]]] = [
    ("POST", "/v1/memories", lambda s: {"json": {**s, "text": "hello"}}),
    ("POST", "/v1/memories/batch", lambda s: {"json": {**s, "items": [{"text": "hi"}]}}),
    ("GET", "/v1/memories", lambda s: {"params": s}),
    ("GET", f"/v1/memories/{MEMORY_ID}", lambda s: {"params": s}),
    ("PATCH", f"/v1/memories/{MEMORY_ID}", lambda s: {"json": {**s, "text": "new"}}),
    ("DELETE", f"/v1/memories/{MEMORY_ID}", lambda s: {"params": s}),
    ("GET", f"/v1/memories/{MEMORY_ID}/history", lambda s: {"params": s}),
    ("POST", "/v1/memories/search", lambda s: {"json": {**s, "query": "hello"}}),
    ("POST", "/v1/context", lambda s: {"json": {**s, "query": "hello"}}),
    (
        "POST",
        "/v1/buffers/append",
        lambda s: {"json": {**s, "thread_id": "t", "role": "user", "content": "hi"}},
    ),
    ("GET", "/v1/buffers/window", lambda s: {"params": {**s, "thread_id": "t"}}),
    ("POST", "/v1/buffers/flush", lambda s: {"json": {**s, "thread_id": "t"}}),
    (
        "POST",
        "/v1/experiences",
        lambda s: {"json": {**s, "task": "t", "steps": [{"action": "go"}], "outcome": "success"}},
    ),
    ("POST", "/v1/experiences/recall", lambda s: {"json": {**s, "task": "t"}}),
    ("GET", "/v1/graph/neighbors", lambda s: {"params": {**s, "entity": "Alice"}}),
    ("GET", "/v1/graph/timeline", lambda s: {"params": {**s, "entity": "Alice"}}),
    ("GET", "/v1/graph/export", lambda s: {"params": s}),
    ("POST", "/v1/consolidation/runs", lambda s: {"json": {**s, "stages": ["flush"]}}),
    ("GET", "/v1/adapters", lambda s: {"params": s}),
    ("POST", "/v1/adapters/promote", lambda s: {"json": {**s, "version": 1}}),
    ("GET", f"/v1/memories/{MEMORY_ID}/links", lambda s: {"params": s}),
    ("GET", f"/v1/memories/{MEMORY_ID}/utility", lambda s: {"params": s}),
    ("POST", f"/v1/memories/{MEMORY_ID}/invalidate", lambda s: {"json": s}),
    ("POST", "/v1/feedback", lambda s: {"json": {**s, "ids": [MEMORY_ID], "reward": 1.0}}),
    ("POST", "/v1/forget", lambda s: {"json": {**s, "ids": [MEMORY_ID], "reason": "asked"}}),
    ("GET", "/v1/forget/reports", lambda s: {"params": s}),
    ("GET", "/v1/quarantine", lambda s: {"params": s}),
    ("POST", "/v1/quarantine/approve", lambda s: {"json": {**s, "ids": [MEMORY_ID]}}),
    ("POST", "/v1/quarantine/reject", lambda s: {"json": {**s, "ids": [MEMORY_ID]}}),
    ("GET", "/v1/procedures", lambda s: {"params": s}),
    ("GET", "/v1/consolidation/runs", lambda s: {"params": s}),
]
# Routes that name no scope: they answer about the key itself (whoami), what it may read
# (scopes) or the server (ranking settings).
KEY_ONLY = [("GET", "/v1/whoami"), ("GET", "/v1/scopes"), ("GET", "/v1/search/ranking")]

ALICE_A = {"org_id": "acme", "user_id": "alice", "agent_id": "a"}

# (caller, scope asked for, expected status class)
DENIED: list[tuple[str, Scope]] = [
    ("other_org", {"org_id": "acme", "user_id": "alice"}),
    ("agent_b", ALICE_A),
    ("agent_a", {"org_id": "acme", "user_id": "alice"}),
    ("user_alice", {"org_id": "acme", "user_id": "bob"}),
    ("acme", {"org_id": "globex", "user_id": "alice"}),
]


def _ids(route: tuple[str, str, Any]) -> str:
    return f"{route[0]} {route[1]}"


def test_every_scoped_route_is_in_the_matrix(client: TestClient) -> None:
    """A new /v1 route must join the matrix (else its authorisation is untested)."""
    schema = client.get("/openapi.json").json()
    served = {
        (method.upper(), path)
        for path, ops in schema["paths"].items()
        if path.startswith("/v1/")
        for method in ops
    }
    listed = {
        (m, p.replace(MEMORY_ID, "{memory_id}").replace(RUN_ID, "{run_id}")) for m, p, _ in ROUTES
    }
    listed.add(("GET", "/v1/consolidation/runs/{run_id}"))
    assert served == listed | set(KEY_ONLY)


@pytest.mark.parametrize(("method", "path"), KEY_ONLY)
def test_key_only_routes_need_a_key(client: TestClient, keys: Keys, method: str, path: str) -> None:
    assert client.request(method, path).status_code == 401
    assert client.request(method, path, headers=bearer(keys.agent_a)).status_code == 200


@pytest.mark.parametrize("route", ROUTES, ids=_ids)
def test_no_key_is_401(client: TestClient, route: tuple[str, str, Any]) -> None:
    method, path, build = route
    response = client.request(method, path, **build(ALICE_A))
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    bad = client.request(
        method, path, headers=bearer("amk_0000000000000000_" + "x" * 43), **build(ALICE_A)
    )
    assert bad.status_code == 401


@pytest.mark.parametrize("route", ROUTES, ids=_ids)
@pytest.mark.parametrize(("caller", "scope"), DENIED, ids=[c for c, _ in DENIED])
def test_wrong_scope_is_403(
    client: TestClient, keys: Keys, route: tuple[str, str, Any], caller: str, scope: Scope
) -> None:
    method, path, build = route
    response = client.request(method, path, headers=bearer(getattr(keys, caller)), **build(scope))
    assert response.status_code == 403, response.text
    assert response.json()["error"]["type"] == "PermissionDenied"


@pytest.mark.parametrize("route", ROUTES, ids=_ids)
def test_the_right_key_gets_through(
    client: TestClient, keys: Keys, route: tuple[str, str, Any]
) -> None:
    method, path, build = route
    response = client.request(method, path, headers=bearer(keys.agent_a), **build(ALICE_A))
    # Past authorisation: a success, or a 404 for the made-up memory id / entity / version.
    assert response.status_code in (200, 201, 202, 204, 404), response.text
    if response.status_code == 404:
        assert response.json()["error"]["type"] == "NotFound"


def test_run_status_is_hidden_from_other_orgs(client: TestClient, keys: Keys) -> None:
    started = client.post(
        "/v1/consolidation/runs",
        json={"user_id": "alice", "stages": ["flush"]},
        headers=bearer(keys.acme),
    )
    assert started.status_code == 202
    run_id = started.json()["run_id"]
    assert client.get(f"/v1/consolidation/runs/{run_id}").status_code == 401
    other = client.get(f"/v1/consolidation/runs/{run_id}", headers=bearer(keys.other_org))
    assert other.status_code == 404
    mine = client.get(f"/v1/consolidation/runs/{run_id}", headers=bearer(keys.acme))
    assert mine.status_code == 200


def test_agent_key_never_reads_another_agents_memory(client: TestClient, keys: Keys) -> None:
    written = client.post(
        "/v1/memories",
        json={**ALICE_A, "text": "agent a's secret plan"},
        headers=bearer(keys.agent_a),
    )
    assert written.status_code == 201
    memory_id = written.json()["id"]
    as_b = {"org_id": "acme", "user_id": "alice", "agent_id": "b"}
    got = client.get(f"/v1/memories/{memory_id}", params=as_b, headers=bearer(keys.agent_b))
    assert got.status_code == 404
    hits = client.post(
        "/v1/memories/search", json={**as_b, "query": "secret plan"}, headers=bearer(keys.agent_b)
    )
    assert hits.status_code == 200 and hits.json() == []
    # The org-wide key sees it; another org's key cannot even name the org.
    assert client.get(f"/v1/memories/{memory_id}", headers=bearer(keys.acme)).status_code == 200
    other = client.get(f"/v1/memories/{memory_id}", headers=bearer(keys.other_org))
    assert other.status_code == 404


def test_key_bounds_compare_canonical_ids(client: TestClient, keys: Keys) -> None:
    """A user key for alice writes to alice whether the client sends "alice" or " alice "
    (the store normalises ids; the key's bounds must compare the same form), and an id that
    only looks like alice is refused, never stored under another scope."""
    h = bearer(keys.user_alice)
    spaced = client.post("/v1/memories", json={"user_id": " alice ", "text": "x"}, headers=h)
    assert spaced.status_code == 201, spaced.text
    assert spaced.json()["scope"]["user_id"] == "alice"
    hidden = client.post("/v1/memories", json={"user_id": "alice\u200b", "text": "x"}, headers=h)
    assert hidden.status_code == 422
