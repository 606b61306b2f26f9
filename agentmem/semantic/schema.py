"""The shapes of semantic memory: extracted facts, update decisions, and what was applied.

The same models validate an LLM's structured answer and carry the LLM-free extractor's output,
so both paths feed one decision-and-apply step.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from agentmem.models import as_utc
from agentmem.timeparse import MONTH_NUMBERS
from agentmem.validation import EARLIEST, LATEST

SINGLE_VALUED: tuple[str, ...] = (
    "lives_in",
    "works_at",
    "occupation",
    "married_to",
    "relationship_status",
    "age",
    "name",
)
"""Attributes a subject has one value of at a time (plus ``favourite_<thing>`` and
``likes:<thing>``): a new value contradicts the old one."""

_ATTRIBUTE = re.compile(r"^[a-z][a-z0-9_]*(:[a-z0-9 _'-]+)?$")


_YEAR = re.compile(r"(?P<y>\d{4})")
_YEAR_MONTH = re.compile(r"(?P<y>\d{4})[-/](?P<m>\d{1,2})")
_YEAR_MONTH_DAY = re.compile(r"(?P<y>\d{4})[-/](?P<m>\d{1,2})[-/](?P<d>\d{1,2})")
_MONTH_YEAR = re.compile(r"(?P<mn>[a-z]+)\.?,? (?P<y>\d{4})")
_DAY_MONTH_YEAR = re.compile(r"(?P<d>\d{1,2})(?:st|nd|rd|th)? (?P<mn>[a-z]+)\.?,? (?P<y>\d{4})")
_MONTH_DAY_YEAR = re.compile(r"(?P<mn>[a-z]+)\.? (?P<d>\d{1,2})(?:st|nd|rd|th)?,? (?P<y>\d{4})")


def read_event_time(value: Any) -> tuple[datetime | None, str | None]:
    """(when, granularity) of an event time as a model writes it: a year ("2022", 2022), a
    month ("2022-03", "March 2022"), a day ("2022-03-01", "1 March 2022") or an ISO 8601 time.
    A number is never read as Unix seconds; what cannot be read, or lies outside the range the
    store keeps (``9999-12-31`` for "forever", ``0001-01-01``), is (None, None)."""
    when, granularity = _read_time(value)
    if when is None or not supported_time(when):
        return None, None
    return when, granularity


def supported_time(when: datetime) -> bool:
    """Whether the store can keep ``when`` (in UTC, within 0001-01-02 .. 9999-12-30)."""
    try:
        return EARLIEST <= as_utc(when) <= LATEST
    except OverflowError:  # 0001-01-01T00:00+05:00 is before datetime.min in UTC
        return False


def _read_time(value: Any) -> tuple[datetime | None, str | None]:
    if isinstance(value, datetime):
        return value, None
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day), "day"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None, None
    text = str(int(value)) if isinstance(value, (int, float)) else " ".join(value.split())
    text = text.lower()
    try:
        if m := _YEAR.fullmatch(text):
            return datetime(int(m["y"]), 1, 1), "year"
        if m := _YEAR_MONTH.fullmatch(text):
            return datetime(int(m["y"]), int(m["m"]), 1), "month"
        if m := _YEAR_MONTH_DAY.fullmatch(text):
            return datetime(int(m["y"]), int(m["m"]), int(m["d"])), "day"
        if (m := _MONTH_YEAR.fullmatch(text)) and m["mn"] in MONTH_NUMBERS:
            return datetime(int(m["y"]), MONTH_NUMBERS[m["mn"]], 1), "month"
        m = _DAY_MONTH_YEAR.fullmatch(text) or _MONTH_DAY_YEAR.fullmatch(text)
        if m and m["mn"] in MONTH_NUMBERS:
            return datetime(int(m["y"]), MONTH_NUMBERS[m["mn"]], int(m["d"])), "day"
        if isinstance(value, str) and not text.isdigit() and text not in ("", "null", "none"):
            return datetime.fromisoformat(value.strip()), None
    except ValueError:  # a month 13, a 30 February, or no ISO 8601 at all
        pass
    return None, None


def storable_text(text: str, what: str) -> str:
    """``text`` when a store keeps it as it is; ``ValueError`` (shown to the model in the
    repair request) for a lone surrogate or a NUL character."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not valid Unicode (a lone surrogate)") from None
    if "\x00" in text:
        raise ValueError(f"{what} contains a NUL character")
    return text


class FactType(StrEnum):
    """What kind of statement a fact is (kept in its metadata as ``fact_type``)."""

    ATTRIBUTE = "attribute"
    PREFERENCE = "preference"
    PLAN = "plan"
    EVENT = "event"
    STATEMENT = "statement"


MAX_FACT_CHARS = 2000
"""The longest fact text extraction produces."""


class ExtractedFact(BaseModel):
    """One atomic fact drawn from an episode, before it is stored.

    ``attribute`` / ``value`` are set for single-valued attributes (``lives_in``, ``works_at``,
    ``married_to``, ``age``, ``favourite_<thing>``, ``likes:<thing>`` with value ``positive`` or
    ``negative``, ...): a different value for the same subject and attribute contradicts the
    known one. ``negated`` marks a fact that ends a value without giving a new one ("I quit my
    job at Acme": ``works_at`` = Acme, negated).
    """

    model_config = ConfigDict(extra="ignore")

    text: str = Field(min_length=1, max_length=MAX_FACT_CHARS)
    subject: str | None = Field(default=None, max_length=MAX_FACT_CHARS)
    entities: list[str] = Field(default_factory=list)
    event_time: datetime | None = None
    time_phrase: str | None = Field(default=None, max_length=MAX_FACT_CHARS)
    time_granularity: str | None = None
    attribute: str | None = None
    value: str | None = Field(default=None, max_length=MAX_FACT_CHARS)
    negated: bool = False
    fact_type: FactType = FactType.STATEMENT

    @field_validator("text")
    @classmethod
    def _clean_text(cls, value: str) -> str:
        text = " ".join(value.split())
        if not text:
            raise ValueError("a fact needs text")
        return storable_text(text, "fact text")

    @field_validator("subject", "value", "time_phrase", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("subject", "value", "time_phrase")
    @classmethod
    def _storable_field(cls, value: str | None, info: Any) -> str | None:
        return value if value is None else storable_text(value, f"fact {info.field_name}")

    @field_validator("attribute", mode="before")
    @classmethod
    def _attribute_name(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            raise ValueError("attribute must be a string")
        name = value.strip().lower().replace(" ", "_")
        name = name.replace("favorite", "favourite")
        if not _ATTRIBUTE.match(name):
            raise ValueError(f"attribute {value!r} is not a snake_case name")
        return name

    @field_validator("entities", mode="before")
    @classmethod
    def _entity_list(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        return value

    @field_validator("entities")
    @classmethod
    def _unique_entities(cls, value: list[str]) -> list[str]:
        cleaned = [" ".join(e.split()) for e in value if isinstance(e, str) and e.strip()]
        return [storable_text(e, "fact entity") for e in dict.fromkeys(cleaned)]

    @model_validator(mode="before")
    @classmethod
    def _date_or_time(cls, data: Any) -> Any:
        """Read ``event_time`` as a date of its own granularity ("2022", "2022-03", "March
        2022", "2022-03-01", ISO 8601), never as Unix seconds; one that cannot be read is
        dropped (the fact is kept without a time)."""
        if not isinstance(data, dict) or "event_time" not in data:
            return data
        when, granularity = read_event_time(data["event_time"])
        data = {**data, "event_time": when}
        if when is not None and granularity and not data.get("time_granularity"):
            data["time_granularity"] = granularity
        return data

    @field_validator("event_time")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return as_utc(value) if value is not None else None

    @property
    def slot(self) -> str | None:
        """``"<subject>|<attribute>"`` (lower-cased) when the fact sets a single-valued
        attribute: the key under which contradictions are found."""
        if self.subject and self.attribute:
            return f"{self.subject.strip().lower()}|{self.attribute}"
        return None


class ExtractionResult(BaseModel):
    """What an extraction prompt asks the model to return. ``facts`` is required: an object
    without it (``{}``, ``{"memories": [...]}``) is a malformed answer, not "no facts", so it
    gets the repair request instead of ending the episode with its facts lost;
    ``{"facts": []}`` is the answer for an episode that states nothing."""

    model_config = ConfigDict(extra="ignore")

    facts: list[ExtractedFact]


class DecisionOp(StrEnum):
    """What to do with a new fact given what is already known."""

    ADD = "ADD"
    UPDATE = "UPDATE"
    INVALIDATE = "INVALIDATE"
    NOOP = "NOOP"


class Decision(BaseModel):
    """The decision about one new fact.

    ``fact`` is the index of the new fact in its episode. ``target_id`` names the known fact
    an UPDATE rewrites, an INVALIDATE ends (the new fact is then added too) or a NOOP repeats.
    ``text`` is the merged text of an UPDATE (default: the new fact's text).
    """

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    op: DecisionOp
    fact: int = Field(default=0, ge=0, validation_alias=AliasChoices("fact", "fact_index"))
    target_id: str | None = Field(
        default=None, validation_alias=AliasChoices("target_id", "target", "id")
    )
    text: str | None = Field(default=None, max_length=MAX_FACT_CHARS)
    reason: str = ""
    valid_to: datetime | None = None
    """For an ADD of a value older than the current one: when the older value stopped holding
    (the current value's start), so the two intervals do not overlap."""

    @field_validator("op", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().upper()
            return {"DELETE": "INVALIDATE", "NONE": "NOOP"}.get(value, value)
        return value

    @field_validator("text", mode="before")
    @classmethod
    def _merged_text(cls, value: Any) -> Any:
        """The merged text of an UPDATE, held to the checks of a fact's text, so a reply the
        store would refuse gets the repair request; blank means the new fact's text."""
        if not isinstance(value, str):
            return value
        text = " ".join(value.split())
        return storable_text(text, "decision text") if text else None

    @field_validator("valid_to")
    @classmethod
    def _valid_to(cls, value: datetime | None) -> datetime | None:
        """An end the store cannot keep is dropped, as an unreadable event time is."""
        return value if value is None or supported_time(value) else None

    @field_validator("target_id", mode="before")
    @classmethod
    def _target_text(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str):
            return value.strip() or None
        return value


class DecisionBatch(BaseModel):
    """What the decision prompt asks the model to return: one decision per new fact."""

    model_config = ConfigDict(extra="ignore")

    decisions: list[Decision] = Field(default_factory=list)


class AppliedDecision(BaseModel):
    """A decision as carried out: what happened to which memory, and why."""

    op: DecisionOp
    fact: ExtractedFact
    memory_id: str | None = None
    """The fact's record: the one added, or the one updated; None for a NOOP."""
    target_id: str | None = None
    """The known fact this decision was about (updated, invalidated or repeated)."""
    reason: str = ""
    decided_by: str = "rules"


class ExtractionOutcome(BaseModel):
    """What happened to one episode: ``done`` with the decisions applied, or still ``pending``
    (or ``failed`` after too many tries) with the error."""

    episode_id: str
    status: str
    decisions: list[AppliedDecision] = Field(default_factory=list)
    error: str | None = None


__all__ = [
    "MAX_FACT_CHARS",
    "SINGLE_VALUED",
    "AppliedDecision",
    "Decision",
    "DecisionBatch",
    "DecisionOp",
    "ExtractedFact",
    "ExtractionOutcome",
    "ExtractionResult",
    "FactType",
    "read_event_time",
    "storable_text",
    "supported_time",
]
