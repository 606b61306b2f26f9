"""Schemathesis against the OpenAPI schema: no generated input is answered with a 5xx.

Every operation gets a bounded number of generated requests (valid and invalid bodies and
parameters) with an org-wide key; any 5xx fails, with the request that caused it."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from tests.server.conftest import Keys, bearer

MAX_EXAMPLES = 8


def test_no_generated_request_gets_a_5xx(client: TestClient, keys: Keys) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    headers = bearer(keys.acme)
    # Warm the embedder up, so the first generated add is not timed against its first call.
    client.post("/v1/memories", json={"user_id": "warm", "text": "warm up"}, headers=headers)
    failures: list[str] = []
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
            response = case.call(headers=headers, timeout=120)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} {case.query} {case.body!r:.300} -> "
                    f"{response.status_code} {response.text[:300]}"
                )

        check()
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_needs_no_key(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200
