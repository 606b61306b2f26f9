"""The data model: scopes, memory records, history entries and search hits."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from agentmem.errors import InvalidKind, InvalidScope, first_message

SCOPE_FIELDS: tuple[str, ...] = ("org_id", "user_id", "agent_id", "thread_id")
_MAX_SCOPE_VALUE = 256
# Path separators and control characters would make ids unsafe in file paths, URLs and keys.
_BAD_SCOPE_CHARS = re.compile(r"[/\\\x00-\x1f\x7f]")
_DOT_NAMES = frozenset({".", ".."})


READ_DEPTH = 64
"""Nesting past which stored metadata is returned flattened (see :func:`readable_metadata`)."""


def nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether dicts/lists in ``value`` nest more than ``limit`` levels (a dict of scalars is
    one level). Iterative, so any depth is measured without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, dict | list | tuple):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def readable_metadata(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` itself, or, where it nests deeper than :data:`READ_DEPTH` (written before
    the depth limit existed), a copy whose too-deep parts are replaced by their JSON text, so
    every read can serialise the record and nothing stored is dropped."""
    if not nesting_exceeds(value, READ_DEPTH):
        return value
    return _flatten(value, 1)


def _flatten(value: Any, depth: int) -> Any:
    if isinstance(value, dict | list | tuple):
        if depth >= READ_DEPTH:
            try:
                return json.dumps(value, ensure_ascii=False)
            except (RecursionError, TypeError, ValueError):
                return "<metadata nested too deep to read>"
        if isinstance(value, dict):
            return {k: _flatten(v, depth + 1) for k, v in value.items()}
        return [_flatten(v, depth + 1) for v in value]
    return value


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Return ``value`` as an aware UTC datetime (naive values are taken as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


RECORD_TIMES = (
    "event_time",
    "valid_from",
    "valid_to",
    "created_at",
    "updated_at",
    "invalidated_at",
    "last_accessed_at",
)
"""The time fields of a :class:`MemoryRecord`."""


def new_id() -> str:
    """A new random record id."""
    return str(uuid.uuid4())


def content_hash(text: str) -> str:
    """The SHA-256 of ``text`` (UTF-8), used to deduplicate embeddings."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class MemoryKind(StrEnum):
    """What kind of memory a record is."""

    EPISODIC = "episodic"
    SEMANTIC = "semantic"
    PROCEDURAL = "procedural"
    EXPERIENCE = "experience"

    @classmethod
    def parse(cls, value: str | MemoryKind) -> MemoryKind:
        """Parse a kind, raising :class:`InvalidKind` with the allowed values."""
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(k.value for k in cls)
            raise InvalidKind(f"unknown memory kind {value!r}; use one of: {allowed}") from None


class Scope(BaseModel):
    """Who a memory belongs to: any subset of org, user, agent and thread, at least one.

    A query scope matches every record whose fields equal the fields set here; fields left
    unset are not constrained (``Scope(user_id="a")`` sees all of user a's agents and threads).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    org_id: str | None = None
    user_id: str | None = None
    agent_id: str | None = None
    thread_id: str | None = None

    @field_validator(*SCOPE_FIELDS, mode="before")
    @classmethod
    def _check_value(cls, value: Any, info: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise InvalidScope(
                f"{info.field_name} must be a string, got {type(value).__name__}; "
                "pass ids as strings, e.g. user_id='alice'"
            )
        if not value.strip():
            raise InvalidScope(f"{info.field_name} is empty; pass a non-empty id or leave it out")
        if len(value) > _MAX_SCOPE_VALUE:
            raise InvalidScope(
                f"{info.field_name} is {len(value)} characters; ids are limited to "
                f"{_MAX_SCOPE_VALUE}"
            )
        if _BAD_SCOPE_CHARS.search(value):
            raise InvalidScope(
                f"{info.field_name}={value!r} contains a path separator or control character; "
                "use letters, digits, '-', '_', '.', ':' or '@'"
            )
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidScope(
                f"{info.field_name}={value!r} is not valid Unicode (a lone surrogate); "
                "decode bytes with the right codec"
            ) from None
        return value

    @model_validator(mode="after")
    def _at_least_one(self) -> Scope:
        if not any(getattr(self, f) for f in SCOPE_FIELDS):
            raise InvalidScope(
                "a scope needs at least one of org_id, user_id, agent_id, thread_id; "
                "e.g. mem.add('...', user_id='alice')"
            )
        return self

    @classmethod
    def of(
        cls,
        *,
        org_id: str | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        thread_id: str | None = None,
    ) -> Scope:
        """Build a scope from caller input, raising :class:`InvalidScope` (not pydantic's
        error) on bad input.

        Ids are normalised first, so values that only look the same are the same scope:
        Unicode NFC, surrounding whitespace stripped (``" u1 "`` is ``"u1"``). Ids that are
        ``"."`` or ``".."``, or that hold invisible format characters (zero-width space,
        joiner, bidi marks, BOM), are refused. Stored scopes are read as stored (the model's
        own validation), so records written before a rule existed stay readable."""
        fields = {"org_id": org_id, "user_id": user_id, "agent_id": agent_id}
        fields["thread_id"] = thread_id
        for name, value in fields.items():
            fields[name] = _normalise_id(name, value)
        try:
            return cls(**fields)
        except PydanticValidationError as exc:
            raise InvalidScope(first_message(exc)) from None

    def fields(self) -> dict[str, str]:
        """The fields that are set, as a dict."""
        return {f: v for f in SCOPE_FIELDS if (v := getattr(self, f)) is not None}

    def contains(self, other: Scope) -> bool:
        """Whether a record in scope ``other`` is visible to a query in this scope."""
        return all(getattr(other, f) == v for f, v in self.fields().items())

    def __str__(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.fields().items())


def _normalise_id(name: str, value: Any) -> Any:
    """A caller's scope id in canonical form (see :meth:`Scope.of`); non-strings are left to
    the model's validation, which names the type."""
    if not isinstance(value, str):
        return value
    try:
        value = unicodedata.normalize("NFC", value).strip()
    except UnicodeError:  # a lone surrogate: the model's validation explains it
        return value
    if value in _DOT_NAMES:
        raise InvalidScope(f"{name}={value!r} is a path name, not an id; pick a real id")
    hidden = sorted({f"U+{ord(ch):04X}" for ch in value if unicodedata.category(ch) == "Cf"})
    if hidden:
        raise InvalidScope(
            f"{name} holds invisible characters ({', '.join(hidden)}), so it would look like "
            "another id; remove them"
        )
    return value


class ScopeSet(BaseModel):
    """Several scopes read as one: a record is visible when any member scope contains it.

    An agent handle reads through one (its private scope plus its team's shared scope). Every
    store and index applies it inside its query, as an OR of the members' conditions, so
    isolation never depends on filtering results afterwards.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    members: tuple[Scope, ...]

    @model_validator(mode="after")
    def _not_empty(self) -> ScopeSet:
        if not self.members:
            raise InvalidScope("a scope set needs at least one scope")
        return self

    @classmethod
    def of(cls, *scopes: Scope) -> ScopeSet:
        """A set of these scopes (duplicates dropped, order kept)."""
        if not scopes:
            raise InvalidScope("a scope set needs at least one scope")
        return cls(members=tuple(dict.fromkeys(scopes)))

    def contains(self, other: Scope) -> bool:
        """Whether a record in scope ``other`` is visible through any member."""
        return any(member.contains(other) for member in self.members)

    def __str__(self) -> str:
        return " | ".join(f"({member})" for member in self.members)


def scope_members(scope: Scope | ScopeSet) -> tuple[Scope, ...]:
    """The scopes a query scope stands for: itself, or the members of a :class:`ScopeSet`."""
    return (scope,) if isinstance(scope, Scope) else scope.members


_SCOPE_SEPARATORS = tuple(f",{name}=" for name in SCOPE_FIELDS)
_SET_SEPARATOR = ") | ("


def scope_text(scope: Scope | ScopeSet) -> str:
    """A text naming ``scope`` and no other, for keys and columns that tell scopes apart
    (``str(scope)`` is for display: ids may hold ``,`` and ``=``, so two scopes can print the
    same). It is ``str(scope)`` where no id holds a separator (``,user_id=``, or ``) | (`` in a
    set), which reads back one way, so texts written before stay valid; otherwise the fields as
    JSON (an object for a scope, a list of them for a set), which no ``str`` form starts like."""
    members = scope_members(scope)
    separators = (*_SCOPE_SEPARATORS, *(() if isinstance(scope, Scope) else (_SET_SEPARATOR,)))
    values = [v for m in members for v in m.fields().values()]
    if not any(sep in v for v in values for sep in separators):
        return str(scope)
    if isinstance(scope, Scope):
        return json.dumps(scope.fields(), sort_keys=True)
    return json.dumps([m.fields() for m in members], sort_keys=True)


class MemoryRecord(BaseModel):
    """One memory: an episode, a fact, a procedure or an experience, with its full lineage."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=new_id)
    scope: Scope
    kind: MemoryKind = MemoryKind.EPISODIC
    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    provenance: dict[str, Any] = Field(
        default_factory=dict,
        description="where it came from: source record ids, extractor, model",
    )
    content_hash: str = ""
    event_time: datetime | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    invalidated_at: datetime | None = None
    importance: float = 0.5
    access_count: int = 0
    last_accessed_at: datetime | None = None
    version: int = 1

    @field_validator("id")
    @classmethod
    def _uuid_id(cls, value: str) -> str:
        try:
            return str(uuid.UUID(value))
        except (ValueError, AttributeError, TypeError):
            raise ValueError(
                f"memory id {value!r} is not a UUID; ids are UUIDs like "
                "'1b4e28ba-2fa1-11d2-883f-0016d3cca427' (leave id out to get a new one)"
            ) from None

    @field_validator("metadata", "provenance")
    @classmethod
    def _readable(cls, value: dict[str, Any]) -> dict[str, Any]:
        return readable_metadata(value)

    @field_validator(*RECORD_TIMES)
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """Times are aware UTC; a naive one is UTC (as ``add()`` takes it), never host time."""
        if value is None:
            return None
        try:
            return as_utc(value)
        except OverflowError:  # 0001-01-01T00:00+05:00 is before datetime.min in UTC
            raise ValueError(f"{value.isoformat()} is before the earliest time in UTC") from None

    @model_validator(mode="after")
    def _fill_hash(self) -> MemoryRecord:
        if not self.content_hash:
            self.content_hash = content_hash(self.text)
        return self

    def is_valid_at(self, when: datetime) -> bool:
        """Whether the record held at ``when`` in valid time: ``valid_from`` (else event time,
        else creation) <= when < ``valid_to``. This is what ``search(as_of=...)`` applies."""
        when = as_utc(when)
        start = self.valid_from or self.event_time or self.created_at
        return start <= when and (self.valid_to is None or self.valid_to > when)


class HistoryEvent(StrEnum):
    """What happened to a record in one history entry."""

    ADD = "ADD"
    UPDATE = "UPDATE"
    INVALIDATE = "INVALIDATE"
    DELETE = "DELETE"
    FEEDBACK = "FEEDBACK"
    """A reward moved the memory's learned utility (see :mod:`agentmem.usefulness`); the
    record itself is unchanged, so the version is the current one."""


class HistoryEntry(BaseModel):
    """One append-only entry of a record's history: who changed what, when, from what to what."""

    model_config = ConfigDict(frozen=True)

    memory_id: str
    scope: Scope | None = None
    event: HistoryEvent
    version: int
    old_text: str | None = None
    new_text: str | None = None
    old_metadata: dict[str, Any] | None = None
    new_metadata: dict[str, Any] | None = None
    actor: str = "api"
    at: datetime

    @field_validator("old_metadata", "new_metadata")
    @classmethod
    def _readable(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else readable_metadata(value)


class ChannelScore(BaseModel):
    """What one retrieval channel said about a hit: its rank (1-based) and raw score."""

    model_config = ConfigDict(frozen=True)

    rank: int
    score: float


class SearchHit(BaseModel):
    """A search result: the record, its fused score and each channel's rank and score."""

    record: MemoryRecord
    score: float
    channels: dict[str, ChannelScore] = Field(default_factory=dict)
    retrieval_id: str | None = None
    """The retrieval that returned this hit: pass it to ``Memory.feedback`` to credit exactly
    what the search showed (None when retrievals are not recorded)."""


class ScopeSummary(BaseModel):
    """One scope that holds memories: how many of each kind and when one last changed."""

    scope: Scope
    records: int
    by_kind: dict[str, int]
    last_updated: datetime | None = None


class MemoryStats(BaseModel):
    """Counts and sizes of what a memory holds."""

    records: int
    by_kind: dict[str, int]
    history_entries: int
    indexed_vectors: int
    pending_index: int
    index_error: str | None = None
    """Why the vector index cannot be read (then ``indexed_vectors`` is 0), or None."""
    index_incomplete: str | None = None
    """Why the vector index may miss records that are stored (a ``reindex --rebuild`` that
    did not finish) and how to finish it, or None."""
    store_url: str
    vectors_url: str
    embedder: str


__all__ = [
    "RECORD_TIMES",
    "SCOPE_FIELDS",
    "ChannelScore",
    "HistoryEntry",
    "HistoryEvent",
    "MemoryKind",
    "MemoryRecord",
    "MemoryStats",
    "Scope",
    "ScopeSet",
    "ScopeSummary",
    "SearchHit",
    "as_utc",
    "content_hash",
    "nesting_exceeds",
    "new_id",
    "readable_metadata",
    "scope_members",
    "scope_text",
    "utcnow",
]
