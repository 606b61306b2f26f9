"""When facts hold: a new fact's start, the period its date names, whether it tells of a time
before a known value, and where a value it replaces ends.

A fact dated "today", "this month" or "in 2023" names a whole day, month or year, and its date
is the first instant of that period. Such a fact is older than a known value of its slot only
when the whole period ends at or before the known value started; a period that contains the
known start ("I live in Paris" at 15:00, then "I moved to Berlin today" at 18:00) is read by
when the fact was said: told after the known value started, the change came after it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

from agentmem.models import MemoryRecord
from agentmem.semantic.schema import ExtractedFact

_PERIOD_DAYS = {"day": 1, "weekend": 2, "week": 7}
"""The length of a period named by a ``time_granularity`` (months and years are counted)."""


def fact_start(fact: ExtractedFact, said_at: datetime) -> datetime:
    """When a new fact started to hold: its date if it is in the past, else when it was said."""
    if fact.event_time is not None and fact.event_time <= said_at:
        return fact.event_time
    return said_at


def record_start(record: MemoryRecord) -> datetime:
    """When a known fact started to hold."""
    return record.valid_from or record.event_time or record.created_at


def period_end(fact: ExtractedFact, start: datetime, zone: tzinfo | None = None) -> datetime:
    """The end of the period a fact starting at ``start`` names: the next day, month or year
    (of the calendar in ``zone``, where it was said) for a date of that ``time_granularity``;
    ``start`` itself for an exact time, or for a fact known from when it was said."""
    if fact.event_time is None or start != fact.event_time:
        return start
    granularity = (fact.time_granularity or "").lower()
    local = start.astimezone(zone) if zone is not None else start
    try:
        if granularity in _PERIOD_DAYS:
            return start + timedelta(days=_PERIOD_DAYS[granularity])
        if granularity == "month":
            index = local.year * 12 + local.month  # the next month, counted from 0
            return local.replace(year=index // 12, month=index % 12 + 1, day=1)
        if granularity == "year":
            return local.replace(year=local.year + 1, month=1, day=1)
    except (ValueError, OverflowError):  # the period of December 9999 ends past the calendar
        return datetime.max.replace(tzinfo=start.tzinfo)
    return start


def is_older(fact: ExtractedFact, said_at: datetime, known_start: datetime) -> bool:
    """Whether a new fact's value held before a known value that started at ``known_start``
    (so it is history, not the current value): the whole period its date names ends at or
    before that start, or the period contains it and the fact was said before it."""
    start = fact_start(fact, said_at)
    if start >= known_start:
        return False
    return period_end(fact, start, said_at.tzinfo) <= known_start or said_at < known_start


def end_of(target: MemoryRecord, fact: ExtractedFact, said_at: datetime) -> datetime:
    """When a fact invalidated by a new one stopped holding: when the new one started, else
    (a new fact dated at or before the old one's start) when it was said, never before the
    old one started; a new value said at the old one's start (two turns of one dated
    session) ends it a microsecond after, never at the moment the fact is extracted."""
    start = record_start(target)
    for candidate in (fact_start(fact, said_at), said_at):
        if candidate > start:
            return candidate
    return start + timedelta(microseconds=1)


__all__ = ["end_of", "fact_start", "is_older", "period_end", "record_start"]
