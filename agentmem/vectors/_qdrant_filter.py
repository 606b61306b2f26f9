"""Translate a :class:`VectorQuery` into a Qdrant filter, for Qdrant Edge and the server alike.

Qdrant Edge (``qdrant_edge``) and qdrant-client (``qdrant_client.models``) spell the same filter
model with the same class names except the numeric range; the caller passes its module's classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentmem.filters import Condition, FilterOp
from agentmem.models import scope_members
from agentmem.vectors.base import VectorQuery, index_value

KEYWORD_PAYLOAD_FIELDS = (
    "org_id",
    "user_id",
    "agent_id",
    "thread_id",
    "kind",
    "status",
    "metadata.archived",
    "metadata.lg_indexed",
)
"""Payload keys both Qdrant backends index as keywords: the ones every search filters on.
``metadata.archived`` and ``metadata.lg_indexed`` are among them because every search leaves
archived memories and LangGraph store items with nothing indexed out (``retrieval``'s default
conditions): without an index, such a ``must_not`` reads each point's payload, 1.4 ms of a
1.5 ms query at 10,000 points."""

FLOAT_PAYLOAD_FIELDS = ("valid_from", "valid_to", "event_time", "created_at")
"""Payload keys both Qdrant backends index as floats (validity and time ranges)."""


@dataclass(frozen=True, slots=True)
class FilterModels:
    """The filter classes of one Qdrant binding."""

    Filter: Any
    FieldCondition: Any
    MatchValue: Any
    Range: Any


def build_filter(query: VectorQuery, m: FilterModels) -> Any:
    """A Qdrant filter applying scope (or a set of scopes), kinds, validity and metadata
    conditions."""
    must: list[Any] = []
    must_not: list[Any] = []
    members = scope_members(query.scope)
    if len(members) == 1:
        must.extend(_match(m, key, value) for key, value in members[0].fields().items())
    else:
        # Several scopes: a point passes when it matches every field of any one member.
        must.append(
            m.Filter(
                should=[
                    m.Filter(must=[_match(m, key, value) for key, value in s.fields().items()])
                    for s in members
                ]
            )
        )
    if query.kinds:
        must.append(m.Filter(should=[_match(m, "kind", k.value) for k in query.kinds]))
    if query.as_of is not None:
        t = query.as_of.timestamp()
        must.append(m.FieldCondition(key="valid_from", range=m.Range(lte=t)))
        must.append(m.FieldCondition(key="valid_to", range=m.Range(gt=t)))
    elif not query.include_invalidated:
        must.append(_match(m, "status", "active"))
        must.append(m.FieldCondition(key="valid_to", range=m.Range(gt=query.now)))
    if query.event_after is not None or query.event_before is not None:
        must.append(
            m.FieldCondition(
                key="event_time", range=m.Range(gte=query.event_after, lt=query.event_before)
            )
        )
    for c in query.conditions:
        _add_condition(m, c, must, must_not)
    return m.Filter(must=must, must_not=must_not or None)


def _match(m: FilterModels, key: str, value: Any) -> Any:
    return m.FieldCondition(key=key, match=m.MatchValue(value=value))


def _add_condition(m: FilterModels, c: Condition, must: list[Any], must_not: list[Any]) -> None:
    key = f"metadata.{c.key}"
    if c.op is FilterOp.EQ:
        must.append(_eq(m, key, c.value))
    elif c.op is FilterOp.NE:
        must_not.append(_eq(m, key, c.value))
    elif c.op is FilterOp.IN:
        assert isinstance(c.value, tuple)
        must.append(m.Filter(should=[_eq(m, key, v) for v in c.value]))
    else:
        bound = {FilterOp.GT: "gt", FilterOp.GTE: "gte", FilterOp.LT: "lt", FilterOp.LTE: "lte"}
        must.append(m.FieldCondition(key=key, range=m.Range(**{bound[c.op]: float(c.value)})))  # type: ignore[arg-type]


def _eq(m: FilterModels, key: str, value: Any) -> Any:
    # Qdrant matches keywords, integers and booleans exactly; an integral float is an integer.
    if isinstance(value, float):
        value = int(value)
    return _match(m, key, index_value(value))


__all__ = ["FLOAT_PAYLOAD_FIELDS", "KEYWORD_PAYLOAD_FIELDS", "FilterModels", "build_filter"]
