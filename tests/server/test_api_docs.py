"""The REST API's description: offline /docs and /redoc, a schema a client generator can use
(stable unique operation ids, declared 409/503, /metrics, no Sphinx markup), readable errors
for malformed JSON, and a consolidation run's status."""

from __future__ import annotations

import json
import random
import re
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from agentmem.errors import InvalidScope
from agentmem.models import Scope
from agentmem_server.api_docs import ASSETS, plain_markup
from tests.server.conftest import Keys, bearer


def _schema(client: TestClient) -> dict:  # type: ignore[type-arg]
    response = client.get("/openapi.json")
    assert response.status_code == 200
    schema: dict = response.json()  # type: ignore[type-arg]
    return schema


def _operations(client: TestClient) -> dict[tuple[str, str], dict]:  # type: ignore[type-arg]
    paths = _schema(client)["paths"]
    return {(m.upper(), p): op for p, ops in paths.items() for m, op in ops.items()}


def test_docs_pages_load_their_assets_from_this_server(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        response = client.get(page)
        assert response.status_code == 200
        links = re.findall(r'(?:src|href)="([^"]*)"', response.text)
        assert links and all(link.startswith("/docs/assets/") for link in links), links
        assert "cdn" not in response.text.lower() and "fonts.googleapis" not in response.text
        assert "default-src 'self'" in response.headers["content-security-policy"]
    for name, media in ASSETS.items():
        asset = client.get(f"/docs/assets/{name}")
        assert asset.status_code == 200 and len(asset.content) > 1000
        assert asset.headers["content-type"] == media
    missing = client.get("/docs/assets/../app.py")
    assert missing.status_code == 404


def test_operation_ids_are_unique_camel_case_names(client: TestClient) -> None:
    ops = _operations(client)
    ids = [op["operationId"] for op in ops.values()]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][A-Za-z]*", i) for i in ids), ids
    assert ops[("POST", "/v1/memories")]["operationId"] == "addMemory"
    assert ops[("POST", "/v1/memories/search")]["operationId"] == "searchMemories"
    assert ops[("GET", "/v1/consolidation/runs/{run_id}")]["operationId"] == "getConsolidationRun"


def test_schema_declares_what_routes_answer(client: TestClient) -> None:
    ops = _operations(client)
    assert ("GET", "/metrics") in ops
    assert "text/plain" in ops[("GET", "/metrics")]["responses"]["200"]["content"]
    for key, op in ops.items():
        if key[1].startswith("/v1/"):
            assert {"401", "403", "503"} <= set(op["responses"]), key
        else:  # health, metrics and docs need no key
            assert "401" not in op["responses"], key
    for write in [("POST", "/v1/memories"), ("PATCH", "/v1/memories/{memory_id}")]:
        assert "409" in ops[write]["responses"]
    assert "409" not in ops[("POST", "/v1/memories/search")]["responses"]
    assert "501" in ops[("POST", "/v1/consolidation/runs")]["responses"]


def test_schema_text_has_no_sphinx_markup(client: TestClient) -> None:
    text = json.dumps(_schema(client))
    assert not re.search(r":[a-z]+:`", text), re.findall(r".{40}:[a-z]+:`.{40}", text)[:3]
    assert plain_markup("see :class:`~agentmem.models.Scope`") == "see `Scope`"
    assert plain_markup(":func:`agentmem.add`") == "`agentmem.add`"


def _server_takes(value: str) -> bool:
    try:
        Scope.of(user_id=value)
    except InvalidScope:
        return False
    return True


def test_scope_ids_in_the_schema_carry_the_rules_the_server_enforces(
    client: TestClient, keys: Keys
) -> None:
    """Scope ids were any string up to 256 characters in the schema while the server refused
    '/', control characters, '.' and invisible characters: schema-valid requests got a 422."""
    schema = _schema(client)
    body = schema["components"]["schemas"]["AddMemory"]["properties"]["user_id"]["anyOf"][0]
    query = next(
        p for p in schema["paths"]["/v1/memories"]["get"]["parameters"] if p["name"] == "thread_id"
    )["schema"]["anyOf"][0]
    assert body == query and body["maxLength"] == 256 and "'..'" in body["description"]
    pattern = re.compile(body["pattern"])
    chars = [*"ab .é/\\:@-_", "\x00", "\t", "\n", "\x1f", "\x7f", "\x85", "\xa0", "\u2028"]
    chars += ["\u3000", "\u200b", "\u202e", "\ufeff", "\u00ad", "e\u0301"]
    rng = random.Random(7)
    samples = ["alice", "a/b", ".", " .. ", "...", "\tbob\n", "a\tb", "zoë", "x\u200dy"]
    samples += ["".join(rng.choices(chars, k=rng.randint(1, 6))) for _ in range(3000)]
    disagree = [v for v in samples if (pattern.search(v) is not None) != _server_takes(v)]
    assert not disagree, disagree[:10]
    for value, status in (("al/ice", 422), (" .. ", 422), ("a\u200bb", 422), (" zoë ", 200)):
        assert bool(pattern.search(value)) is (status == 200)
        sent = client.get("/v1/memories", params={"user_id": value}, headers=bearer(keys.acme))
        assert sent.status_code == status, sent.text


def test_an_over_long_scope_id_is_invalid_scope_as_documented(
    client: TestClient, keys: Keys
) -> None:
    """An id over 256 characters was refused by pydantic before the server's own check, as a
    422 InvalidRequest: the only scope rule whose error type was not the documented
    InvalidScope. Its length counts after stripping, as in the library."""
    h = bearer(keys.acme)
    long_id = "x" * 257
    query = client.get("/v1/memories", params={"user_id": long_id}, headers=h)
    body = client.post("/v1/memories", json={"agent_id": long_id, "text": "a"}, headers=h)
    found = {"thread_id": long_id, "query": "a"}
    search = client.post("/v1/memories/search", json=found, headers=h)
    for sent in (query, body, search):
        error = sent.json()["error"]
        assert sent.status_code == 422 and error["type"] == "InvalidScope", sent.text
        assert "257 characters" in error["message"] and "256" in error["message"]
    padded = client.get("/v1/memories", params={"user_id": f" {'y' * 256} "}, headers=h)
    assert padded.status_code == 200, padded.text


def test_malformed_json_says_so(client: TestClient, keys: Keys) -> None:
    response = client.post(
        "/v1/memories",
        content=b'{"user_id": "json-user", "text": ',
        headers={**bearer(keys.acme), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "InvalidJSON"
    assert error["message"].startswith("the request body is not valid JSON (Expecting value")
    assert "Content-Type: application/json" in error["message"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"user_id": "u", "text": "caf\xe9"}'.encode("latin-1"), "is not UTF-8 encoded JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_a_body_json_cannot_decode_is_a_declared_422(
    client: TestClient, keys: Keys, body: bytes, expected: str
) -> None:
    """Latin-1 bytes or nesting past the parser's depth were FastAPI's undeclared 400 'There
    was an error parsing the body', which said neither what was wrong nor what to send."""
    response = client.post(
        "/v1/memories",
        content=body,
        headers={**bearer(keys.acme), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert "422" in _schema(client)["paths"]["/v1/memories"]["post"]["responses"]
    error = response.json()["error"]
    assert error["type"] == "InvalidJSON" and expected in error["message"], error
    assert "UTF-8 encoded JSON object with Content-Type: application/json" in error["message"]


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"", "application/json", "the request body is empty"),
        (b'{"user_id": "u", "text": "x"}', "text/plain", "was not sent as JSON"),
        (b"[1]", "application/json", "must be a JSON object, got list"),
    ],
)
def test_a_body_that_is_no_json_object_says_what_to_send(
    client: TestClient, keys: Keys, body: bytes, content_type: str, expected: str
) -> None:
    response = client.post(
        "/v1/memories", content=body, headers={**bearer(keys.acme), "Content-Type": content_type}
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "InvalidRequest" and expected in error["message"], error
    assert "Content-Type: application/json" in error["message"]


def test_a_consolidation_run_reports_its_status_and_stages(client: TestClient, keys: Keys) -> None:
    started = client.post(
        "/v1/consolidation/runs",
        json={"user_id": "run-status", "stages": ["flush", "extract"]},
        headers=bearer(keys.acme),
    )
    assert started.status_code == 202
    run_id = started.json()["run_id"]
    client.app.state.agentmem.jobs.shutdown()  # type: ignore[attr-defined]  # runs the queue
    status = client.get(f"/v1/consolidation/runs/{run_id}", headers=bearer(keys.acme)).json()
    assert status["run_id"] == run_id and status["status"] == "done", status
    assert "user_id=run-status" in status["scope"]
    assert [s["stage"] for s in status["stages"]] == ["flush", "extract"]
    times = [status["started_at"], status["finished_at"]]
    times += [s[t] for s in status["stages"] for t in ("started_at", "finished_at")]
    for text in times:
        assert isinstance(text, str) and datetime.fromisoformat(text).tzinfo is not None
    assert all(s["status"] in ("done", "skipped") for s in status["stages"])
