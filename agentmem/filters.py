"""Metadata filters: parse the user's dict once into conditions every backend translates.

A filter is a dict of metadata key to either a value (equality) or a dict of operators::

    {"session": 3}                           # metadata.session == 3
    {"topic": {"$in": ["work", "travel"]}}
    {"score": {"$gte": 0.5, "$lt": 0.9}}     # several operators on one key are ANDed
    {"speaker": {"$ne": "bot"}}

Operators: ``$eq $ne $gt $gte $lt $lte $in``. Range operators take numbers; ``$eq $ne $in``
take strings, integers or booleans.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from agentmem.errors import InvalidFilter

Scalar = str | int | float | bool


class FilterOp(StrEnum):
    """A comparison a filter condition makes."""

    EQ = "$eq"
    NE = "$ne"
    GT = "$gt"
    GTE = "$gte"
    LT = "$lt"
    LTE = "$lte"
    IN = "$in"


INT_MIN, INT_MAX = -(2**63), 2**63 - 1
"""Integers a filter may compare with: every store and index holds 64-bit integers."""

RANGE_EXACT = 2**53

MAX_IN_VALUES = 10_000
"""The most values one ``$in`` takes: PostgreSQL binds at most 65,535 parameters a query, and
each value is a parameter or two, so a longer list is refused the same way on every backend."""
"""Range bounds ($gt, $gte, $lt, $lte) are integers below this in size: the vector indexes
compare ranges as doubles, exact for such a bound against any stored 64-bit integer."""
RANGE_OPS = frozenset({FilterOp.GT, FilterOp.GTE, FilterOp.LT, FilterOp.LTE})
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True, slots=True)
class Condition:
    """One parsed condition on a metadata key."""

    key: str
    op: FilterOp
    value: Scalar | tuple[Scalar, ...]


def parse_filters(filters: dict[str, Any] | None) -> tuple[Condition, ...]:
    """Validate a user's filter dict and return its conditions (ANDed)."""
    if filters is None:
        return ()
    if not isinstance(filters, dict):
        raise InvalidFilter(
            f"filters must be a dict like {{'session': 3}}, got {type(filters).__name__}"
        )
    conditions: list[Condition] = []
    for key, spec in filters.items():
        if not isinstance(key, str) or not _KEY.match(key):
            raise InvalidFilter(
                f"filter key {key!r} is not a metadata key; use letters, digits and '_' "
                "(starting with a letter or '_', at most 64 characters)"
            )
        if isinstance(spec, dict):
            if not spec:
                raise InvalidFilter(f"filter on {key!r} has no operator; e.g. {{'$eq': 1}}")
            for op_name, value in spec.items():
                conditions.append(_condition(key, op_name, value))
        else:
            conditions.append(_condition(key, "$eq", spec))
    return tuple(conditions)


def _condition(key: str, op_name: Any, value: Any) -> Condition:
    try:
        op = FilterOp(op_name)
    except ValueError:
        allowed = " ".join(o.value for o in FilterOp)
        raise InvalidFilter(
            f"unknown filter operator {op_name!r} on {key!r}; use one of: {allowed}"
        ) from None
    if op is FilterOp.IN:
        if not isinstance(value, list | tuple) or not value:
            raise InvalidFilter(f"$in on {key!r} needs a non-empty list of values")
        if len(value) > MAX_IN_VALUES:
            raise InvalidFilter(
                f"$in on {key!r} has {len(value):,} values; it takes at most "
                f"{MAX_IN_VALUES:,}: split the list over several searches"
            )
        for item in value:
            _check_equality_value(key, op, item)
        return Condition(key, op, tuple(value))
    if op in RANGE_OPS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidFilter(
                f"{op.value} on {key!r} needs a number, got {_show(value)}; "
                "store dates as numbers (e.g. epoch seconds) to range over them"
            )
        # NaN compares false with everything, so the store and the index would disagree on
        # it; the infinities are well ordered and mean "no bound".
        if isinstance(value, float) and math.isnan(value):
            raise InvalidFilter(f"{op.value} on {key!r} needs a number, got NaN")
        # The vector indexes compare ranges as doubles: a bound below 2**53 in size keeps the
        # comparison exact for every stored integer, so search and list agree.
        if isinstance(value, int) and abs(value) >= RANGE_EXACT:
            raise InvalidFilter(
                f"{op.value} on {key!r}: {_show(value)} is beyond the range bounds compared "
                "exactly everywhere (below 2**53 in size); store such ids as strings and "
                "match them with $eq or $in"
            )
        return Condition(key, op, value)
    _check_equality_value(key, op, value)
    return Condition(key, op, value)


def _check_int_range(key: str, op: FilterOp, value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and not INT_MIN <= value <= INT_MAX:
        raise InvalidFilter(
            f"{op.value} on {key!r}: {_show(value)} is outside the 64-bit integer range "
            "(-2**63 to 2**63-1) every store compares in"
        )


def _show(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # an int past sys.get_int_max_str_digits()
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def _check_equality_value(key: str, op: FilterOp, value: Any) -> None:
    if isinstance(value, float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise InvalidFilter(f"{op.value} on {key!r} needs a finite number, got {value!r}")
        if not value.is_integer():
            raise InvalidFilter(
                f"{op.value} on {key!r} with a fractional number {value!r}; compare "
                "fractions with $gte/$lte"
            )
        return
    if not isinstance(value, str | int | bool):
        raise InvalidFilter(
            f"{op.value} on {key!r} needs a string, integer or boolean, got {type(value).__name__}"
        )
    _check_int_range(key, op, value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidFilter(
                f"{op.value} on {key!r}: {value!r} is not valid Unicode (a lone surrogate)"
            ) from None
        if "\x00" in value:  # no store keeps one in metadata, so it could match nothing
            raise InvalidFilter(f"{op.value} on {key!r}: {value!r} holds a NUL character")


def matches(metadata: dict[str, Any], conditions: tuple[Condition, ...]) -> bool:
    """Evaluate conditions against a metadata dict in Python (the reference semantics)."""
    for c in conditions:
        present = c.key in metadata
        actual = metadata.get(c.key)
        if c.op is FilterOp.EQ:
            ok = present and _same(actual, c.value)
        elif c.op is FilterOp.NE:
            ok = not (present and _same(actual, c.value))
        elif c.op is FilterOp.IN:
            assert isinstance(c.value, tuple)
            ok = present and any(_same(actual, v) for v in c.value)
        else:
            if isinstance(actual, bool) or not isinstance(actual, int | float):
                ok = False
            else:
                v = float(c.value)  # type: ignore[arg-type]
                ok = {
                    FilterOp.GT: actual > v,
                    FilterOp.GTE: actual >= v,
                    FilterOp.LT: actual < v,
                    FilterOp.LTE: actual <= v,
                }[c.op]
        if not ok:
            return False
    return True


def _same(actual: Any, expected: Any) -> bool:
    # bool is an int in Python; keep True distinct from 1 as JSON does.
    if isinstance(actual, bool) or isinstance(expected, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    return bool(actual == expected)


__all__ = ["MAX_IN_VALUES", "RANGE_OPS", "Condition", "FilterOp", "matches", "parse_filters"]
