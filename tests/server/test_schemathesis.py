"""Schemathesis against the OpenAPI schema: no generated input is answered with a 5xx.

Every operation gets a bounded number of generated requests (valid and invalid bodies and
parameters) with an org-wide key; any 5xx fails, with the request that caused it. A write
answered with an error must have stored nothing, and afterwards every read of the scopes the
run wrote to still answers 200 (issue 22: one poisoned record used to make a user's reads 500).
``AGENTMEM_FUZZ_REPORT_REST=path`` writes the counts as JSON."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from agentmem import Memory
from tests.server.conftest import Keys, bearer

MAX_EXAMPLES = int(os.environ.get("AGENTMEM_FUZZ_REST_EXAMPLES", "8"))
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def test_no_generated_request_gets_a_5xx(
    client: TestClient, keys: Keys, server_mem: Memory
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    headers = bearer(keys.acme)
    # Warm the embedder up, so the first generated add is not timed against its first call.
    client.post("/v1/memories", json={"user_id": "warm", "text": "warm up"}, headers=headers)
    failures: list[str] = []
    counts: Counter[str] = Counter()
    users: set[str] = {"warm"}

    def stored() -> tuple[int, int]:
        found = server_mem.backends.store.counts()
        return found.records, found.history_entries

    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20

    for operation in operations:

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            before = stored()
            response = case.call(headers=headers, timeout=120)
            counts["requests"] += 1
            counts[f"{response.status_code // 100}xx"] += 1
            if isinstance(case.body, dict) and isinstance(case.body.get("user_id"), str):
                users.add(case.body["user_id"])
            refused = case.method.upper() in WRITES and response.status_code >= 400
            if refused and stored() != before:
                counts["changed_on_error"] += 1
                failures.append(
                    f"{case.method} {case.formatted_path} {case.body!r:.300} -> "
                    f"{response.status_code} but the store changed"
                )
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} {case.query} {case.body!r:.300} -> "
                    f"{response.status_code} {response.text[:300]}"
                )

        check()
    # Every read of every scope the run wrote to still works.
    for user in sorted(users)[:200]:
        for method, path, params in (
            ("GET", "/v1/memories", {"user_id": user, "limit": 100}),
            ("POST", "/v1/memories/search", None),
            ("POST", "/v1/context", None),
        ):
            body = {"user_id": user, "query": "what do you know"}
            if method == "GET":
                response = client.get(path, params=params, headers=headers)
            else:
                response = client.post(path, json=body, headers=headers)
            counts["reads_after"] += 1
            if response.status_code != 200 and not (
                response.status_code == 422 and "scope" in response.text.lower()
            ):
                counts["broken_reads"] += 1
                failures.append(f"read {path} of {user!r} -> {response.status_code}")
    if report := os.environ.get("AGENTMEM_FUZZ_REPORT_REST"):
        Path(report).write_text(json.dumps(dict(sorted(counts.items())), indent=2) + "\n")
    assert not failures, "\n".join(failures[:30])


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_needs_no_key(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200
