"""Metadata filters: parsing (each operator, every way a filter can be malformed) and the
reference semantics of :func:`agentmem.filters.matches`."""

from __future__ import annotations

from typing import Any

import pytest

from agentmem import InvalidFilter
from agentmem.filters import Condition, FilterOp, matches, parse_filters


def test_no_filter() -> None:
    assert parse_filters(None) == ()
    assert parse_filters({}) == ()


def test_a_plain_value_means_equality() -> None:
    assert parse_filters({"session": 3, "topic": "work", "done": False}) == (
        Condition("session", FilterOp.EQ, 3),
        Condition("topic", FilterOp.EQ, "work"),
        Condition("done", FilterOp.EQ, False),
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"$eq": "a"}, Condition("k", FilterOp.EQ, "a")),
        ({"$ne": 2}, Condition("k", FilterOp.NE, 2)),
        ({"$gt": 1}, Condition("k", FilterOp.GT, 1)),
        ({"$gte": 0.5}, Condition("k", FilterOp.GTE, 0.5)),
        ({"$lt": -3}, Condition("k", FilterOp.LT, -3)),
        ({"$lte": 1e9}, Condition("k", FilterOp.LTE, 1e9)),
        ({"$in": ["a", 1, True]}, Condition("k", FilterOp.IN, ("a", 1, True))),
        ({"$in": ("x",)}, Condition("k", FilterOp.IN, ("x",))),
        ({"$eq": 2.0}, Condition("k", FilterOp.EQ, 2.0)),
    ],
)
def test_each_operator(spec: dict[str, Any], expected: Condition) -> None:
    assert parse_filters({"k": spec}) == (expected,)


def test_several_operators_on_one_key_are_all_kept() -> None:
    assert parse_filters({"score": {"$gte": 0.5, "$lt": 0.9}}) == (
        Condition("score", FilterOp.GTE, 0.5),
        Condition("score", FilterOp.LT, 0.9),
    )


@pytest.mark.parametrize(
    ("filters", "hint"),
    [
        # not a dict
        (["session", 3], "must be a dict"),
        ("session=3", "must be a dict"),
        # bad keys
        ({"a.b": 1}, "not a metadata key"),
        ({"1abc": 1}, "not a metadata key"),
        ({"": 1}, "not a metadata key"),
        ({"with space": 1}, "not a metadata key"),
        ({"k" * 65: 1}, "at most 64 characters"),
        ({3: 1}, "not a metadata key"),
        ({"$and": [{"a": 1}]}, "not a metadata key"),
        # operators
        ({"k": {}}, "has no operator"),
        ({"k": {"$regex": "a.*"}}, "unknown filter operator '$regex'"),
        ({"k": {"eq": 1}}, "use one of: $eq $ne $gt $gte $lt $lte $in"),
        ({"k": {"$EQ": 1}}, "unknown filter operator"),
        ({"k": {"$nin": [1]}}, "unknown filter operator"),
        # value types
        ({"k": {"$gt": "2024-01-01"}}, "needs a number"),
        ({"k": {"$lte": True}}, "needs a number"),
        ({"k": {"$gte": None}}, "needs a number"),
        ({"k": {"$in": []}}, "non-empty list"),
        ({"k": {"$in": ()}}, "non-empty list"),
        ({"k": {"$in": "abc"}}, "non-empty list"),
        ({"k": {"$in": 3}}, "non-empty list"),
        ({"k": {"$in": [1, {"a": 1}]}}, "string, integer or boolean"),
        ({"k": {"$in": [1.5]}}, "fractional"),
        ({"k": None}, "string, integer or boolean"),
        ({"k": [1, 2]}, "string, integer or boolean"),
        ({"k": {"$eq": None}}, "string, integer or boolean"),
        ({"k": {"$ne": [1]}}, "string, integer or boolean"),
        ({"k": 0.5}, "fractional"),
        ({"k": {"$eq": 2.25}}, "compare fractions with $gte/$lte"),
        ({"k": "lone \ud800"}, "not valid Unicode"),
        ({"k": {"$in": ["ok", "\udfff"]}}, "not valid Unicode"),
        ({"k": "a\x00b"}, "holds a NUL character"),
        ({"k": {"$ne": "\x00"}}, "holds a NUL character"),
        ({"k": {"$in": list(range(10_001))}}, "has 10,001 values; it takes at most 10,000"),
    ],
)
def test_malformed_filters(filters: Any, hint: str) -> None:
    with pytest.raises(InvalidFilter) as info:
        parse_filters(filters)
    assert hint in str(info.value)


def test_invalid_filter_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_filters({"k": {"$bogus": 1}})


# matches: the reference semantics every backend must agree with -------------------------------

META: dict[str, Any] = {
    "session": 3,
    "score": 0.75,
    "topic": "work",
    "flag": True,
    "one": 1,
    "tags": ["a", "b"],
}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"session": 3}, True),
        ({"session": 3.0}, True),
        ({"session": 4}, False),
        ({"session": "3"}, False),
        ({"topic": "work"}, True),
        ({"topic": "Work"}, False),
        ({"missing": 1}, False),
        ({"session": {"$ne": 4}}, True),
        ({"session": {"$ne": 3}}, False),
        ({"missing": {"$ne": 1}}, True),
        ({"session": {"$gt": 2}}, True),
        ({"session": {"$gt": 3}}, False),
        ({"session": {"$gte": 3}}, True),
        ({"score": {"$lt": 0.75}}, False),
        ({"score": {"$lte": 0.75}}, True),
        ({"score": {"$gte": 0.5, "$lt": 0.9}}, True),
        ({"score": {"$gte": 0.8, "$lt": 0.9}}, False),
        ({"topic": {"$gt": 0}}, False),
        ({"flag": {"$gte": 0}}, False),
        ({"missing": {"$lt": 100}}, False),
        ({"topic": {"$in": ["home", "work"]}}, True),
        ({"topic": {"$in": ["home"]}}, False),
        ({"missing": {"$in": ["x"]}}, False),
        ({"session": {"$in": [1, 2, 3]}}, True),
        ({"flag": True}, True),
        ({"flag": 1}, False),
        ({"one": True}, False),
        ({"one": 1}, True),
        ({"flag": {"$in": [1]}}, False),
        ({"flag": {"$ne": False}}, True),
        ({"tags": "a"}, False),
        ({"session": 3, "topic": "work"}, True),
        ({"session": 3, "topic": "home"}, False),
    ],
)
def test_matches(filters: dict[str, Any], expected: bool) -> None:
    assert matches(META, parse_filters(filters)) is expected


def test_no_conditions_match_everything() -> None:
    assert matches({}, ())
    assert matches(META, parse_filters(None))
