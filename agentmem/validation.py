"""Input validation shared by every entry point: text, kinds, metadata, times, importance.

Everything here raises a specific :class:`~agentmem.errors.ValidationError` before anything is
written, so bad input changes nothing.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from agentmem.errors import InvalidKind, InvalidMetadata, InvalidText, ValidationError
from agentmem.models import MemoryKind, as_utc, nesting_exceeds

MAX_METADATA_DEPTH = 20
"""Default of ``Settings.max_metadata_depth``: levels of nested dicts/lists metadata may have."""
MAX_METADATA_BYTES = 65_536
"""Default of ``Settings.max_metadata_bytes``: size of metadata as UTF-8 JSON."""
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
"""The earliest time accepted (a day after ``datetime.min``, so every time zone converts)."""
LATEST = datetime(9999, 12, 30, tzinfo=UTC)
"""The latest time accepted (a day before ``datetime.max``)."""
MAX_K = 1000
"""The most results one search returns (its largest ``k``)."""
RESERVED_PREFIX = "lg_"
"""Metadata keys starting with this are a LangGraph store item's (``agentmem_graphs``): only the
store writes them, so no ordinary write can make a memory pass for one of its items."""


def check_text(text: Any, *, max_chars: int, what: str = "text") -> str:
    """A non-empty string of at most ``max_chars`` characters, without NUL bytes."""
    if not isinstance(text, str):
        raise InvalidText(f"{what} must be a string, got {type(text).__name__}")
    if not visible(text):
        raise InvalidText(
            f"{what} is empty (or only whitespace and invisible characters such as zero-width "
            "spaces); pass the memory's content as a non-empty string"
        )
    if len(text) > max_chars:
        raise InvalidText(
            f"{what} is {len(text):,} characters, over the limit of {max_chars:,} "
            "(AGENTMEM_MAX_TEXT_CHARS); split it into smaller memories or raise the limit"
        )
    if "\x00" in text:
        raise InvalidText(f"{what} contains a NUL character; remove it")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidText(
            f"{what} is not valid Unicode ({exc.reason}); decode bytes with the right codec"
        ) from None
    return text


def show(value: Any, limit: int = 60) -> str:
    """A short repr of ``value`` for an error message (never fails, even on a huge int)."""
    try:
        text = repr(value)
    except Exception:  # e.g. an int past sys.get_int_max_str_digits()
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def visible(text: str) -> bool:
    """Whether ``text`` has a character that shows: not whitespace, and not an invisible
    format character (zero-width space/joiner, word joiner, BOM, bidi marks: category Cf)."""
    return any(not ch.isspace() and unicodedata.category(ch) != "Cf" for ch in text)


def check_kind(kind: Any) -> MemoryKind:
    """A known memory kind."""
    if not isinstance(kind, str | MemoryKind):
        raise InvalidKind(f"kind must be a string, got {type(kind).__name__}")
    return MemoryKind.parse(kind)


def check_kinds(kinds: Sequence[str | MemoryKind] | str | None) -> tuple[MemoryKind, ...]:
    """A tuple of known kinds (a single kind string is accepted)."""
    if kinds is None:
        return ()
    if isinstance(kinds, str):
        kinds = [kinds]
    if isinstance(kinds, bytes | dict) or not isinstance(kinds, Sequence | set | frozenset):
        raise InvalidKind(
            f"kinds must be a kind or a list of kinds, got {type(kinds).__name__}; "
            "e.g. kinds=['semantic']"
        )
    return tuple(check_kind(k) for k in kinds)


# A NUL as JSON encodes it: backslash-u0000 after an even number of backslashes (an escaped
# backslash followed by the characters "u0000" is no NUL: a Windows path, an escaped log line).
_ENCODED_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def check_metadata(
    metadata: Any,
    *,
    max_depth: int = MAX_METADATA_DEPTH,
    max_bytes: int = MAX_METADATA_BYTES,
    what: str = "metadata",
) -> dict[str, Any]:
    """A JSON object with string keys, nested at most ``max_depth`` levels and at most
    ``max_bytes`` long as UTF-8 JSON (returned as a plain, round-tripped dict)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidMetadata(f"{what} must be a dict, got {type(metadata).__name__}")
    for key in metadata:
        if not isinstance(key, str):
            raise InvalidMetadata(f"{what} keys must be strings, got {key!r}")
    # Checked without recursion, before json.dumps could recurse past the interpreter's limit.
    if nesting_exceeds(metadata, max_depth):
        raise InvalidMetadata(
            f"{what} is nested more than {max_depth} levels deep (AGENTMEM_MAX_METADATA_DEPTH); "
            "flatten it (e.g. keys like 'a.b.c') or raise the limit"
        )
    try:
        encoded = json.dumps(metadata, allow_nan=False, ensure_ascii=False)
        encoded.encode("utf-8")  # a lone surrogate would pass json.dumps, then fail the index
    except UnicodeEncodeError:
        raise InvalidMetadata(
            "metadata holds text that is not valid Unicode (a lone surrogate); decode bytes "
            "with the right codec"
        ) from None
    except (TypeError, ValueError) as exc:
        raise InvalidMetadata(
            f"metadata must be JSON-serialisable (strings, numbers, booleans, lists, dicts): {exc}"
        ) from None
    if _ENCODED_NUL.search(encoded):
        raise InvalidMetadata(f"{what} contains a NUL character; remove it")
    size = len(encoded.encode("utf-8"))
    if size > max_bytes:
        raise InvalidMetadata(
            f"{what} is {size:,} bytes as JSON, over the limit of {max_bytes:,} "
            "(AGENTMEM_MAX_METADATA_BYTES); keep large content in the text or elsewhere"
        )
    result: dict[str, Any] = json.loads(encoded, parse_int=_int64(what))
    return result


def check_reserved(metadata: Mapping[str, Any], current: Mapping[str, Any] | None = None) -> None:
    """Refuse metadata that sets a reserved key (:data:`RESERVED_PREFIX`) to anything but the
    value ``current`` (the memory's metadata before an update) already holds."""
    before = current or {}
    changed = sorted(
        k
        for k in metadata
        if k.startswith(RESERVED_PREFIX) and (k not in before or metadata[k] != before[k])
    )
    if changed:
        raise InvalidMetadata(
            f"metadata keys {changed} are reserved: keys starting with {RESERVED_PREFIX!r} are "
            "written only by the LangGraph store (agentmem_graphs.AgentMemStore); rename them, "
            "or change a store item through the store"
        )


def _int64(what: str) -> Any:
    def parse(digits: str) -> int:
        value = int(digits)
        if not -(2**63) <= value < 2**63:
            raise InvalidMetadata(
                f"{what} holds the integer {digits[:30]}..., outside the 64-bit range every "
                "store and index holds; store it as a string"
            )
        return value

    return parse


def check_time(value: Any, *, what: str = "event_time") -> datetime | None:
    """An aware UTC datetime from a datetime or an ISO-8601 string."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidMetadata(
                f"{what}={value!r} is not an ISO-8601 time; e.g. '2023-05-08T13:56:00+00:00'"
            ) from None
    if not isinstance(value, datetime):
        raise InvalidMetadata(
            f"{what} must be a datetime or ISO-8601 string, got {type(value).__name__}"
        )
    try:
        when = as_utc(value)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+05:00 is before datetime.min in UTC
        when = None
    if when is None or not EARLIEST <= when <= LATEST:
        raise InvalidMetadata(
            f"{what}={value.isoformat()} is outside the supported range "
            f"{EARLIEST.date()} to {LATEST.date()} (UTC); pass a real date"
        )
    return when


def check_local_time(value: Any, *, what: str = "time") -> datetime | None:
    """:func:`check_time`, kept in the zone it was given in: a datetime's own time zone (a
    ``ZoneInfo`` keeps its daylight-saving changes, so "last month" asked in April in Berlin
    begins at midnight of 1 March there, in winter time), a string's UTC offset (naive: UTC).
    A "now" whose relative phrases ("last month") are read in the caller's own calendar."""
    when = check_time(value, what=what)
    if when is None:
        return None
    if isinstance(value, datetime) and value.tzinfo is not None:
        return when.astimezone(value.tzinfo)
    zone = zone_of(utc_offset(value))
    return when.astimezone(zone) if zone is not None else when


def shift(when: datetime, delta: timedelta) -> datetime | None:
    """``when + delta``, or None where that leaves the supported range (relative times near
    the ends of the calendar resolve to nothing instead of failing)."""
    try:
        moved = when + delta
    except OverflowError:
        return None
    return moved if EARLIEST <= as_utc(moved) <= LATEST else None


UTC_OFFSET_KEY = "utc_offset"
"""Metadata key of an episode whose ``event_time`` was given with a UTC offset: the offset
("-07:00"), so its relative dates ("yesterday", "last month") are read in the speaker's own
date rather than UTC's (:func:`agentmem.semantic.episodes.episode_from`)."""
_UTC_OFFSET = re.compile(r"(?P<sign>[+-])(?P<h>\d{2}):(?P<m>[0-5]\d)")


def utc_offset(value: Any) -> str | None:
    """The UTC offset a time was given with, as "+09:00"; None for UTC, a naive time, or
    anything that is not a time."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        return None
    delta = value.utcoffset()
    if not delta:
        return None
    minutes = abs(delta) // timedelta(minutes=1)
    return f"{'-' if delta < timedelta(0) else '+'}{minutes // 60:02d}:{minutes % 60:02d}"


def zone_of(offset: Any) -> timezone | None:
    """The fixed time zone of a UTC offset written as "+09:00"; None for anything else."""
    m = _UTC_OFFSET.fullmatch(offset.strip()) if isinstance(offset, str) else None
    if m is None or int(m["h"]) > 23:
        return None
    delta = timedelta(hours=int(m["h"]), minutes=int(m["m"]))
    return timezone(-delta if m["sign"] == "-" else delta)


def check_importance(value: Any, default: float = 0.5) -> float:
    """A number in [0, 1]."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidMetadata(f"importance must be a number in [0, 1], got {show(value)}")
    try:
        number = float(value)
    except OverflowError:  # an int past the float range
        number = math.inf
    if math.isnan(number) or not 0.0 <= number <= 1.0:
        raise InvalidMetadata(f"importance must be in [0, 1], got {show(value)}")
    return number


MAX_COUNTER = 2**31 - 1
"""The largest version or access count a record may carry (PostgreSQL's INTEGER columns)."""


def check_counters(version: int, access_count: int) -> None:
    """A record's ``version`` (from 1) and ``access_count`` (from 0), within
    :data:`MAX_COUNTER`: no write makes other values, so a record carrying them (an import)
    is damaged or was edited by hand."""
    for name, value, low in (("version", version, 1), ("access_count", access_count, 0)):
        if not low <= value <= MAX_COUNTER:
            raise ValidationError(
                f"{name} must be a whole number from {low} to {MAX_COUNTER}, got {value}; no "
                "write makes that, so the record was damaged or edited: fix or remove it"
            )


def check_k(k: Any, *, limit: int = MAX_K, what: str = "k") -> int:
    """A positive integer of at most ``limit``."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1 or k > limit:
        raise ValidationError(f"{what} must be an integer from 1 to {limit}, got {show(k)}")
    return k


def check_gate(gate: Any) -> float | None:
    """None (the recall model's own gate) or a gate threshold: a mean answer-token
    log-probability, so a number <= 0 (0.0: only a certain answer is used; a very negative
    one: any answer is)."""
    if gate is None:
        return None
    if isinstance(gate, bool) or not isinstance(gate, int | float) or not gate <= 0:
        raise ValidationError(
            f"gate_threshold must be a log-probability (a number <= 0, e.g. -0.5), got "
            f"{show(gate)}; 0.0 answers from retrieval unless the model is certain"
        )
    try:
        return float(gate)
    except OverflowError:  # an int below every float: any answer passes
        return -math.inf


MAX_OFFSET = 2**62
"""The largest ``offset`` a listing accepts (every store binds it as a 64-bit integer)."""


def check_offset(offset: Any) -> int:
    """A non-negative integer a store can bind (below 2**62)."""
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        raise ValidationError(
            f"offset must be a non-negative integer up to 2**62, got {show(offset)}"
        )
    return offset


__all__ = [
    "EARLIEST",
    "LATEST",
    "MAX_COUNTER",
    "MAX_K",
    "MAX_METADATA_BYTES",
    "MAX_METADATA_DEPTH",
    "MAX_OFFSET",
    "RESERVED_PREFIX",
    "UTC_OFFSET_KEY",
    "check_counters",
    "check_gate",
    "check_importance",
    "check_k",
    "check_kind",
    "check_kinds",
    "check_local_time",
    "check_metadata",
    "check_offset",
    "check_reserved",
    "check_text",
    "check_time",
    "shift",
    "show",
    "utc_offset",
    "visible",
    "zone_of",
]
