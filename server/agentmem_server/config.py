"""Settings of the memory service, read from ``AGENTMEM_SERVER_*`` (the memory itself is
configured by :class:`agentmem.Settings` as everywhere else)."""

from __future__ import annotations

import difflib
import os
from typing import Any

from limits import RateLimitItem, parse
from pydantic import Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from agentmem.errors import InvalidSettings, first_message
from agentmem.urls import redact

_STORAGE_SCHEMES = ("memory://", "redis://", "rediss://", "redis+unix://")
_ENV_PREFIX = "AGENTMEM_SERVER_"


class ServerSettings(BaseSettings):
    """How ``agentmem serve`` listens, limits and reports. Build it explicitly and pass it in."""

    model_config = SettingsConfigDict(env_prefix=_ENV_PREFIX, extra="forbid", validate_default=True)

    host: str = Field(default="127.0.0.1", description="interface to listen on")
    port: int = Field(default=8080, ge=0, le=65535, description="TCP port")
    rate_limit: str = Field(
        default="600/minute",
        description="requests per API key, in the `limits` notation (e.g. 100/second, "
        "600/minute); 'off' disables it",
    )
    rate_limit_storage_url: str = Field(
        default="memory://",
        description="where rate-limit counters live: memory:// (in each server process, so "
        "with --workers N a key gets N times the limit) or redis://[:password@]host:6379/0 "
        "(rediss:// for TLS): one limit per key shared by every process and machine",
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="largest request body accepted (413 beyond)"
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="origins allowed by CORS; empty (the default) sends no CORS headers",
    )
    graceful_timeout_s: float = Field(
        default=30.0, ge=0, description="seconds in-flight requests get to finish on shutdown"
    )
    log_json: bool = Field(default=True, description="structured JSON logs (one object a line)")
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    metrics: bool = Field(default=True, description="serve Prometheus metrics on /metrics")
    ui: bool = Field(
        default=True,
        description="serve the memory inspector page at /ui (it shows only what the API key "
        "typed into it may read)",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_unknown_variables(cls, data: Any) -> Any:
        # A misspelt AGENTMEM_SERVER_* variable would otherwise be ignored silently and the
        # server would run on a default (issue 27 item 7, as agentmem.Settings does).
        fields = list(cls.model_fields)
        for name in os.environ:
            if not name.upper().startswith(_ENV_PREFIX):
                continue
            key = name.upper().removeprefix(_ENV_PREFIX).lower()
            if key in fields:
                continue
            close = difflib.get_close_matches(key, fields, n=1, cutoff=0.6)
            hint = (
                f"did you mean {_ENV_PREFIX}{close[0].upper()}?" if close else "see docs/server.md"
            )
            raise ValueError(f"unknown setting {name} (environment variable); {hint}")
        for key in data if isinstance(data, dict) else ():
            if key not in fields:
                close = difflib.get_close_matches(str(key), fields, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}?" if close else "see docs/server.md"
                raise ValueError(f"unknown setting {key!r} (keyword argument); {hint}")
        return data

    @field_validator("rate_limit")
    @classmethod
    def _parse_limit(cls, value: str) -> str:
        if value.strip().lower() == "off":
            return "off"
        try:
            amount = parse(value).amount
        except ValueError:
            raise ValueError(
                f"rate_limit {value!r} is not a rate like '600/minute' or '10/second' (or 'off')"
            ) from None
        if amount < 1:  # a zero rate would answer every request with 429
            raise ValueError(f"rate_limit {value!r} allows no request; use 'off' for no limit")
        return value

    @field_validator("rate_limit_storage_url")
    @classmethod
    def _storage_scheme(cls, value: str) -> str:
        if not value.startswith(_STORAGE_SCHEMES):
            raise ValueError(
                f"rate_limit_storage_url {redact(value)!r} has an unknown scheme; use one of: "
                + ", ".join(_STORAGE_SCHEMES)
            )
        return value

    def rate_item(self) -> RateLimitItem | None:
        """The per-key rate limit, or None when it is off."""
        return None if self.rate_limit == "off" else parse(self.rate_limit)

    @classmethod
    def load(cls, **overrides: Any) -> ServerSettings:
        """Read settings (overrides, then environment), raising InvalidSettings."""
        try:
            return cls(**overrides)
        except PydanticValidationError as exc:
            raise InvalidSettings(f"invalid server settings: {first_message(exc)}") from None
        except SettingsError as exc:  # an environment value the settings could not decode
            raise InvalidSettings(
                f"invalid server settings: {exc}; list values such as "
                f"{_ENV_PREFIX}CORS_ORIGINS are JSON, e.g. '[\"https://app.example\"]'"
            ) from None


__all__ = ["ServerSettings"]
