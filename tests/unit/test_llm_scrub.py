"""Secrets are scrubbed from LLM error texts before they are logged or stored (an episode's
``extraction_error``, a reflection's ``fallback_reason``): providers and proxies echo keys."""

from __future__ import annotations

import pytest

from agentmem.semantic.scrub import scrub

KWARGS = {
    "api_key": "mysecretkey99",
    "api_base": "http://gateway:8080",
    "extra_headers": {"Authorization": "Bearer abcDEF1234567890"},
    "temperature": 0,
}


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Incorrect API key provided: mysecretkey99.", "mysecretkey99"),
        ("401 with token abcDEF1234567890", "abcDEF1234567890"),  # a header's token alone
        (
            "GET https://generativelanguage.googleapis.com/v1/x?alt=json&key=AIzaXYZ1 failed",
            "AIzaXYZ1",
        ),
        ("proxy http://bob:hunter2hunter@proxy:8080/ is down", "hunter2hunter"),
        ("sent Authorization: Bearer eyJhbGciOiJIUzI1NiJ9xyz", "eyJhbGciOiJIUzI1NiJ9xyz"),
        ("invalid key sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX", "sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX"),
    ],
)
def test_secrets_are_masked(text: str, secret: str) -> None:
    assert secret not in scrub(text, KWARGS)


def test_a_provider_key_from_the_environment_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOMEPROVIDER_API_KEY", "env-held-key-42")
    assert scrub("bad key env-held-key-42 given", {}) == "bad key *** given"


def test_ordinary_error_text_is_kept() -> None:
    text = "Basic authentication failed: max token exceeded for gpt-4o-mini at http://gateway:8080"
    assert scrub(text, KWARGS) == text
