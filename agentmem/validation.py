"""Input validation shared by every entry point: text, kinds, metadata, times, importance.

Everything here raises a specific :class:`~agentmem.errors.ValidationError` before anything is
written, so bad input changes nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from agentmem.errors import InvalidKind, InvalidMetadata, InvalidText
from agentmem.models import MemoryKind, as_utc


def check_text(text: Any, *, max_chars: int, what: str = "text") -> str:
    """A non-empty string of at most ``max_chars`` characters, without NUL bytes."""
    if not isinstance(text, str):
        raise InvalidText(f"{what} must be a string, got {type(text).__name__}")
    if not text.strip():
        raise InvalidText(f"{what} is empty; pass the memory's content as a non-empty string")
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
    return tuple(check_kind(k) for k in kinds)


def check_metadata(metadata: Any) -> dict[str, Any]:
    """A JSON object with string keys (returned as a plain, round-tripped dict)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidMetadata(f"metadata must be a dict, got {type(metadata).__name__}")
    for key in metadata:
        if not isinstance(key, str):
            raise InvalidMetadata(f"metadata keys must be strings, got {key!r}")
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
    if "\\u0000" in encoded:
        raise InvalidMetadata("metadata contains a NUL character; remove it")
    result: dict[str, Any] = json.loads(encoded)
    return result


def check_time(value: Any, *, what: str = "event_time") -> datetime | None:
    """An aware UTC datetime from a datetime or an ISO-8601 string."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, str):
        try:
            return as_utc(datetime.fromisoformat(value))
        except ValueError:
            raise InvalidMetadata(
                f"{what}={value!r} is not an ISO-8601 time; e.g. '2023-05-08T13:56:00+00:00'"
            ) from None
    raise InvalidMetadata(
        f"{what} must be a datetime or ISO-8601 string, got {type(value).__name__}"
    )


def check_importance(value: Any, default: float = 0.5) -> float:
    """A number in [0, 1]."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise InvalidMetadata(f"importance must be a number in [0, 1], got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise InvalidMetadata(f"importance must be in [0, 1], got {value}")
    return float(value)


def check_k(k: Any, *, limit: int = 1000, what: str = "k") -> int:
    """A positive integer of at most ``limit``."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1 or k > limit:
        raise InvalidMetadata(f"{what} must be an integer from 1 to {limit}, got {k!r}")
    return k


__all__ = [
    "check_importance",
    "check_k",
    "check_kind",
    "check_kinds",
    "check_metadata",
    "check_text",
    "check_time",
]
