"""Find the time a query is about ("last week", "in May 2023", "on 8 May, 2023").

Used by the time channel of hybrid retrieval: when a query names a time, memories whose
event time falls in that window are retrieved (and ranked by relevance within it). Parsing is
dateparser's; a found phrase counts only if it carries a digit or a clearly temporal word, so
"may" the verb or "march" the noun are not taken for months.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from agentmem.models import as_utc

_TEMPORAL_WORDS = re.compile(
    r"\b(yesterday|today|tonight|tomorrow|ago|last|past|previous|this|next|week|weekend|"
    r"month|year|decade)\b",
    re.IGNORECASE,
)
_MONTH_AFTER_PREPOSITION = re.compile(
    r"\b(in|on|during|since|before|after|until|by)\s+(january|february|march|april|may|june|"
    r"july|august|september|october|november|december)\b",
    re.IGNORECASE,
)
_DIGIT = re.compile(r"\d")
_lock = threading.Lock()
_parser: Any = None


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A half-open interval [start, end) of event time, and the phrase it came from."""

    start: datetime
    end: datetime
    phrase: str


def _date_data_parser() -> Any:
    global _parser
    if _parser is None:
        with _lock:
            if _parser is None:
                from dateparser.date import DateDataParser

                _parser = DateDataParser(
                    languages=["en"],
                    settings={"PREFER_DATES_FROM": "past", "RETURN_AS_TIMEZONE_AWARE": False},
                )
    return _parser


def _plausible(phrase: str) -> bool:
    return bool(
        _DIGIT.search(phrase)
        or _TEMPORAL_WORDS.search(phrase)
        or _MONTH_AFTER_PREPOSITION.search(phrase)
    )


def parse_time_window(query: str, *, now: datetime) -> TimeWindow | None:
    """The event-time window a query refers to, relative to ``now``; None if it names none."""
    from dateparser.search import search_dates

    base = as_utc(now).replace(tzinfo=None)
    settings = {"RELATIVE_BASE": base, "PREFER_DATES_FROM": "past"}
    try:
        found = search_dates(query, languages=["en"], settings=settings)
    except Exception:  # dateparser raises assorted errors on odd input; no window then
        return None
    for phrase, when in found or []:
        if not _plausible(phrase):
            continue
        # search_dates resolved the date against ``now``; the parser tells its granularity.
        data = _date_data_parser().get_date_data(phrase)
        period = (data.period if data and data.date_obj else None) or "day"
        start, end = _period_window(when.replace(tzinfo=None), period, phrase)
        return TimeWindow(as_utc(start), as_utc(end), phrase)
    return None


def _period_window(when: datetime, period: str, phrase: str) -> tuple[datetime, datetime]:
    day = when.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "year":
        return day.replace(month=1, day=1), day.replace(year=day.year + 1, month=1, day=1)
    if period == "month":
        start = day.replace(day=1)
        nxt = (start + timedelta(days=32)).replace(day=1)
        return start, nxt
    if period == "week" or re.search(r"\bweek", phrase, re.IGNORECASE):
        return day - timedelta(days=3), day + timedelta(days=7)
    # A named day: allow one day either side (time zones, "that night").
    return day - timedelta(days=1), day + timedelta(days=2)


__all__ = ["TimeWindow", "parse_time_window"]
