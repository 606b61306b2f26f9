"""Secrets taken out of LLM error texts before they are logged or stored.

Providers and proxies echo credentials in their errors ("Incorrect API key provided: sk-...",
Gemini URLs with ``?key=...``). Those texts become ``LLMUnavailable`` messages, an episode's
``extraction_error`` and an experience's ``fallback_reason``, which ``get``/``list``/``export``
return, so :func:`scrub` replaces with ``***``: the values of secret-looking ``llm_kwargs``
(``api_key``, ``*token*``, ``*secret*``, ``*password*``, ``Authorization`` headers ...) and of
secret-looking environment variables (``OPENAI_API_KEY``, ``HF_TOKEN`` ...), passwords and
secret query parameters (``key=``, ``token=``, ``sig=``) in URLs, ``Bearer`` / ``Basic``
credentials, and the well-known key formats :mod:`agentmem.redaction` knows.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

from agentmem.redaction import redact
from agentmem.security_settings import RedactionKind, RedactionSettings
from agentmem.urls import redact as redact_url

MASK = "***"

_SECRET_NAME = re.compile(r"key|token|secret|passw|credential|auth|signature", re.IGNORECASE)
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.IGNORECASE)
_QUERY_SECRET = re.compile(
    r"(?i)([?&;](?:[a-z_-]*key|[a-z_-]*token|secret|sig|signature|password|auth)=)[^&;#\s'\"]+"
)
# A credential after the scheme has a capital, a digit or base64 padding ("Basic
# authentication failed" keeps its words).
_AUTH_SCHEME = re.compile(r"(?i:\b(bearer|basic))\s+(?=\S*[A-Z0-9+/=])[A-Za-z0-9._~+/=-]{8,}")
_SECRET_ENV = re.compile(r"(?:^|_)(?:API_?KEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD)$", re.IGNORECASE)
_KEY_FORMATS = RedactionSettings(enabled=True, kinds=[RedactionKind.API_KEY])
_MIN_SECRET_CHARS = 6  # shorter values ("true", "us") would mask ordinary words


def _secret_values(value: Any, name: str = "") -> Iterator[str]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _secret_values(item, f"{name}.{key}")
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _secret_values(item, name)
    elif isinstance(value, str) and _SECRET_NAME.search(name):
        yield value
        if " " in value:  # "Bearer <token>": the token alone may be echoed too
            yield value.split(" ", 1)[1]


def secrets_of(kwargs: Mapping[str, Any] | None = None) -> list[str]:
    """The secret values ``kwargs`` (``llm_kwargs``) and the environment hold, longest
    first (so a value containing another is masked whole)."""
    found = set(_secret_values(dict(kwargs or {})))
    found.update(v for k, v in os.environ.items() if _SECRET_ENV.search(k))
    return sorted((v for v in found if len(v.strip()) >= _MIN_SECRET_CHARS), key=len, reverse=True)


def scrub(text: str, kwargs: Mapping[str, Any] | None = None) -> str:
    """``text`` without the secrets it may echo (see the module docstring)."""
    for value in secrets_of(kwargs):
        text = text.replace(value, MASK)
    text = _URL.sub(lambda m: redact_url(m.group(0)), text)
    text = _QUERY_SECRET.sub(rf"\g<1>{MASK}", text)
    text = _AUTH_SCHEME.sub(rf"\g<1> {MASK}", text)
    return redact(text, _KEY_FORMATS).text


__all__ = ["MASK", "scrub", "secrets_of"]
