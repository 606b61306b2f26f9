"""Resolve the dates a statement mentions against the time it was made (fact extraction):
"yesterday" in a message written on 8 May 2023 is 7 May 2023.

It is rule-based (no dateparser): a statement is longer than a query and dateparser's search
finds dates in ordinary words ("We" as Wednesday, "a second" as a time), which would put wrong
dates on facts. Ambiguous phrases (a bare weekday, a month without a year) are read as past
unless the sentence speaks of the future ("will", "going to", "next", ...) or states a plan in
the present tense ("I am training for a marathon in October", "the wedding is in June", "I have
a dentist appointment on the 14th of May") with no past verb; after "since" or "back in" they
are always past. The month names, number words and calendar helpers here are shared with the
query parser, :mod:`agentmem.timeparse`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from agentmem.models import as_utc
from agentmem.validation import EARLIEST, LATEST

_MONTHS = "January February March April May June July August September October November December"
_MONTHS_LIST = _MONTHS.split(" ")
MONTH_NUMBERS = {
    name: n
    for n, month in enumerate(_MONTHS_LIST, 1)
    for name in (month.lower(), month.lower()[:3])
}
"""Month number by lower-case English name or three-letter abbreviation ("march", "mar": 3)."""
_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_MONTH_RE = _MONTHS.replace(" ", "|")
_WEEKDAY_RE = "|".join(_WEEKDAYS)
_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "a few": 3, "a couple of": 2,
    "a couple": 2, "couple of": 2,
}  # fmt: skip
_NUM_WORDS = sorted((w for w in _NUMBERS if " " not in w and w not in ("a", "an")), key=len)
_NUM_RE = "|".join(
    [r"\d{1,3}", "a couple of", "a couple", "couple of", "a few", "an?", *_NUM_WORDS[::-1]]
)
_FUTURE_HINT = re.compile(
    r"\b(will|won't|shall|going to|gonna|planning|plan to|plans to|intend|hope to|about to|"
    r"next|tomorrow|upcoming|soon|coming up|can't wait)\b|'ll\b",
    re.IGNORECASE,
)
_COMING = re.compile(
    r"\b(?:am|is|are|'m|'re|'s)(?: (?:also|still|finally|actually|really|now|just|busy))? "
    r"(?:going|flying|leaving|moving|travell?ing|visiting|meeting|starting|training for|"
    r"preparing for|getting (?:married|ready)|having|hosting|attending|taking|heading|driving|"
    r"coming|returning|celebrating|throwing|presenting|speaking|competing|performing|"
    r"graduating|interviewing|relocating|launching|organi[sz]ing)\b"
    rf"|\b(?:is|are|'s|'re) (?:(?:scheduled|planned|set|booked|due) )?(?:on|in|for) "
    rf"(?=(?:the )?\d|(?:{_MONTHS.replace(' ', '|')})\b)"
    r"|\b(?:have|has|'ve)(?: got)? (?:an?|my|the|our|his|her|their) [\w' -]{0,30}?"
    r"\b(?:appointment|meeting|interview|exam|flight|trip|reservation|deadline|concert|match|"
    r"party|wedding|class|surgery|race|marathon|conference|holiday|vacation)s?\b",
    re.IGNORECASE,
)
"""A plan said in the present tense: "am training for", "the wedding is in June", "have a
dentist appointment on": its dates lie ahead, unless the sentence also speaks of the past."""
_PAST_HINT = re.compile(
    r"\b(?:was|were|went|did|had|got|made|took|saw|came|gave|found|met|ran|began|bought|left|"
    r"won|lost|spent|ago|last|\w{3,}ed)\b",
    re.IGNORECASE,
)
_PAST_PREPOSITIONS = ("since", "back in")
"""A date after these lies behind, whatever the tense: "since June", "back in May"."""


def _points_forward(text: str) -> bool:
    """Whether ambiguous dates in ``text`` point forward: it speaks of the future ("will",
    "going to", "next", ...) or states a plan in the present tense without a past verb."""
    if _FUTURE_HINT.search(text):
        return True
    return bool(_COMING.search(text)) and not _PAST_HINT.search(_COMING.sub(" ", text))


_DATE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, flags))
    for name, pattern, flags in (
        ("day_before_yesterday", r"\bthe day before yesterday\b", re.IGNORECASE),
        ("day_after_tomorrow", r"\bthe day after tomorrow\b", re.IGNORECASE),
        ("yesterday", r"\b(?:yesterday|last night)\b", re.IGNORECASE),
        ("today", r"\b(?:today|tonight|this (?:morning|afternoon|evening))\b", re.IGNORECASE),
        ("tomorrow", r"\btomorrow\b", re.IGNORECASE),
        ("ago", rf"\b(?P<n>{_NUM_RE}) (?P<unit>day|week|month|year)s? ago\b", re.IGNORECASE),
        ("in_n", rf"\bin (?P<n>{_NUM_RE}) (?P<unit>day|week|month|year)s?\b", re.IGNORECASE),
        (
            "weekday_before_last",
            rf"\b(?:on )?(?:the )?(?P<wd>{_WEEKDAY_RE}) before last\b",
            re.IGNORECASE,
        ),
        (
            "relative",
            rf"\b(?P<rel>last|past|this past|next|this coming|coming|this)\s+"
            rf"(?P<unit>weekend|week|month|year|{_WEEKDAY_RE})\b",
            re.IGNORECASE,
        ),
        (
            "iso",
            r"\b(?:(?P<prep>(?i:on|since|until|by|before|after)) )?"
            r"(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})\b",
            0,
        ),
        (
            "day_month",
            rf"\b(?:(?P<prep>(?i:on|since|until|by|before|after)) )?(?:the )?(?P<d>\d{{1,2}})"
            rf"(?:st|nd|rd|th)?(?: of)? (?P<month>{_MONTH_RE})(?:,? (?P<y>\d{{4}}))?\b",
            0,
        ),
        (
            "month_day",
            rf"\b(?:(?P<prep>(?i:on|since|until|by|before|after)) )?(?P<month>{_MONTH_RE}) "
            rf"(?P<d>\d{{1,2}})(?:st|nd|rd|th)?(?:,? (?P<y>\d{{4}}))?\b(?!:)",
            0,
        ),
        (
            "month",
            r"\b(?:(?P<prep>(?i:in early|in late|in mid|back in|in|during|since|until|by|before|"
            r"after|early|late|mid))[ -])?"
            rf"(?P<month>{_MONTH_RE})(?:,? (?P<y>\d{{4}}))?\b",
            0,
        ),
        (
            "year",
            r"\b(?P<prep>in|during|since|until|by|before|after|back in|around) "
            r"(?P<y>(?:19|20)\d{2})\b",
            re.IGNORECASE,
        ),
        ("weekday", rf"(?<!every )\b(?:(?P<prep>(?i:on)) )?(?P<wd>{_WEEKDAY_RE})\b", 0),
    )
)


@dataclass(frozen=True, slots=True)
class ResolvedDate:
    """A time expression found in a statement, resolved against the time it was made.

    ``when`` is the start of the period meant (midnight of the day, in the zone it was said
    in, the Monday of a week, the Saturday of a weekend, the first of a month or year);
    ``text`` says it in absolute terms, ready to replace ``phrase`` in the statement ("on 7
    May 2023", "in April 2023", "in the week before 9 June 2023").
    """

    phrase: str
    start: int
    end: int
    when: datetime
    granularity: str
    text: str


def _day_text(day: datetime) -> str:
    return f"{day.day} {_MONTHS_LIST[day.month - 1]} {day.year}"


def _add_months(day: datetime, months: int) -> datetime:
    index = day.year * 12 + day.month - 1 + months
    return day.replace(year=index // 12, month=index % 12 + 1, day=1)


def _weekday_near(today: datetime, weekday: int, *, future: bool, strict: bool) -> datetime:
    """The nearest ``weekday`` before today (or after, when ``future``); ``strict`` excludes
    today itself."""
    if future:
        delta = (weekday - today.weekday()) % 7
        if delta == 0 and strict:
            delta = 7
        return today + timedelta(days=delta)
    delta = (today.weekday() - weekday) % 7
    if delta == 0 and strict:
        delta = 7
    return today - timedelta(days=delta)


Resolved = tuple[datetime, str, str]
"""(when, granularity, absolute text) of one matched phrase."""

_DAY_OFFSETS = {
    "day_before_yesterday": -2,
    "day_after_tomorrow": 2,
    "yesterday": -1,
    "today": 0,
    "tomorrow": 1,
}


def _on_day(day: datetime) -> Resolved:
    return day, "day", f"on {_day_text(day)}"


def _in_month(first: datetime) -> Resolved:
    return first, "month", f"in {_MONTHS_LIST[first.month - 1]} {first.year}"


def _in_year(today: datetime, year: int, lead: str = "in") -> Resolved:
    return today.replace(year=year, month=1, day=1), "year", f"{lead} {year}"


def _named_day(
    name: str, groups: dict[str, Any], prep: str, today: datetime, future: bool
) -> Resolved:
    """yesterday, today, tomorrow, the day before yesterday, the day after tomorrow."""
    return _on_day(today + timedelta(days=_DAY_OFFSETS[name]))


def _counted(
    name: str, groups: dict[str, Any], prep: str, today: datetime, future: bool
) -> Resolved:
    """ "three weeks ago", "in 2 months"."""
    n = _NUMBERS.get(groups["n"].lower()) or int(groups["n"])
    unit = groups["unit"].lower()
    sign = -1 if name == "ago" else 1
    if unit == "day":
        return _on_day(today + timedelta(days=sign * n))
    if unit == "week":
        day = today + timedelta(weeks=sign * n)
        return day, "week", f"in the week of {_day_text(day)}"
    if unit == "month":
        return _in_month(_add_months(today, sign * n))
    return _in_year(today, today.year + sign * n)


def _weekday_before_last(
    name: str, groups: dict[str, Any], prep: str, today: datetime, future: bool
) -> Resolved:
    wd = _WEEKDAYS.index(groups["wd"].capitalize())
    return _on_day(_weekday_near(today, wd, future=False, strict=True) - timedelta(days=7))


def _relative(
    name: str, groups: dict[str, Any], prep: str, today: datetime, future: bool
) -> Resolved:
    """ "last Friday", "next week", "this weekend", "last month", "next year"."""
    rel = groups["rel"].lower()
    unit = groups["unit"].lower()
    step = {"last": -1, "past": -1, "this past": -1, "next": 1, "this coming": 1}.get(rel, 0)
    if rel == "coming":
        step = 1
    if unit.capitalize() in _WEEKDAYS:
        wd = _WEEKDAYS.index(unit.capitalize())
        if step == 0:
            return _on_day(_weekday_near(today, wd, future=future, strict=False))
        return _on_day(_weekday_near(today, wd, future=step > 0, strict=True))
    where = {-1: "before", 0: "of", 1: "after"}[step]
    if unit == "week":
        day = today + timedelta(weeks=step)
        return day, "week", f"in the week {where} {_day_text(today)}"
    if unit == "weekend":
        saturday = _weekday_near(today, 5, future=step > 0, strict=step != 0)
        if step == 0 and not future and today.weekday() < 5:
            saturday = _weekday_near(today, 5, future=True, strict=False)
        anchor = saturday if step == 0 else today
        return saturday, "weekend", f"on the weekend {where} {_day_text(anchor)}"
    if unit == "month":
        return _in_month(_add_months(today, step))
    return _in_year(today, today.year + step)


def _iso(
    name: str, groups: dict[str, Any], prep: str, today: datetime, future: bool
) -> Resolved | None:
    try:
        day = today.replace(year=int(groups["y"]), month=int(groups["m"]), day=int(groups["d"]))
    except ValueError:
        return None
    lead = prep if prep and prep != "on" else "on"
    return day, "day", f"{lead} {_day_text(day)}"


def _month(
    name: str, groups: dict[str, Any], prep: str, today: datetime, future: bool
) -> Resolved | None:
    """ "in May", "early June 2023": the month, in the past (or future) when no year is given."""
    month = _MONTHS_LIST.index(groups["month"]) + 1
    year_text = groups.get("y")
    if not prep and not year_text:
        return None  # "May I ...", "March on": a bare month name is too ambiguous
    year = int(year_text) if year_text else today.year
    first = today.replace(year=year, month=month, day=1)
    if not year_text:
        if not future and first > today:
            first = first.replace(year=year - 1)
        elif future and _add_months(first, 1) <= today:
            first = first.replace(year=year + 1)
    if any(w in prep for w in ("early", "late", "mid")):
        lead = "in " + prep.split()[-1]
    else:
        lead = prep if prep not in ("", "in", "during") else "in"
    return first, "month", f"{lead} {_MONTHS_LIST[month - 1]} {first.year}"


def _month_day(
    name: str, groups: dict[str, Any], prep: str, today: datetime, future: bool
) -> Resolved | None:
    """ "7 May", "May 7th, 2023": the day, in the past (or future) when no year is given."""
    month = _MONTHS_LIST.index(groups["month"]) + 1
    year_text = groups.get("y")
    year = int(year_text) if year_text else today.year
    try:
        day = today.replace(year=year, month=month, day=int(groups["d"]))
    except ValueError:
        return None
    if not year_text:
        if not future and day > today:
            day = day.replace(year=year - 1)
        elif future and day < today:
            day = day.replace(year=year + 1)
    lead = prep if prep and prep != "on" else "on"
    return day, "day", f"{lead} {_day_text(day)}"


def _year(name: str, groups: dict[str, Any], prep: str, today: datetime, future: bool) -> Resolved:
    lead = "in" if prep in ("in", "during", "around") else prep
    return _in_year(today, int(groups["y"]), lead)


def _weekday(
    name: str, groups: dict[str, Any], prep: str, today: datetime, future: bool
) -> Resolved:
    wd = _WEEKDAYS.index(groups["wd"])
    return _on_day(_weekday_near(today, wd, future=future, strict=False))


_RESOLVERS: dict[str, Callable[[str, dict[str, Any], str, datetime, bool], Resolved | None]] = {
    **dict.fromkeys(_DAY_OFFSETS, _named_day),
    "ago": _counted,
    "in_n": _counted,
    "weekday_before_last": _weekday_before_last,
    "relative": _relative,
    "iso": _iso,
    "month": _month,
    "day_month": _month_day,
    "month_day": _month_day,
    "year": _year,
    "weekday": _weekday,
}
"""One resolver per pattern name: (name, groups, preposition, today, future) -> Resolved."""


def _resolve_match(name: str, m: re.Match[str], today: datetime, future: bool) -> Resolved | None:
    """(when, granularity, absolute text) of one matched phrase, or None if it is no date."""
    groups = m.groupdict()
    prep = (groups.get("prep") or "").lower()
    if prep in _PAST_PREPOSITIONS:
        future = False
    return _RESOLVERS[name](name, groups, prep.replace("back in", "in"), today, future)


def resolve_dates(text: str, *, now: datetime, future: bool | None = None) -> list[ResolvedDate]:
    """The time expressions in ``text``, in order, resolved against ``now`` (when it was said)
    in ``now``'s own zone (naive is UTC): the dates are midnights of that zone.

    ``future`` says whether ambiguous phrases point forward; by default it is guessed from the
    text ("will", "going to", "next", a plan in the present tense: see the module docstring).
    Overlapping phrases keep the earlier, longer match. A phrase whose date falls outside
    the supported range (:data:`agentmem.validation.EARLIEST` to ``LATEST``) resolves to none.
    """
    base = now if now.tzinfo is not None else as_utc(now)  # "yesterday" in the speaker's zone
    today = base.replace(hour=0, minute=0, second=0, microsecond=0)
    forward = _points_forward(text) if future is None else future
    found: list[ResolvedDate] = []
    taken: list[tuple[int, int]] = []
    for name, pattern in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            if any(m.start() < end and start < m.end() for start, end in taken):
                continue
            try:
                resolved = _resolve_match(name, m, today, forward)
                if resolved is not None and not EARLIEST <= as_utc(resolved[0]) <= LATEST:
                    raise ValueError("outside the supported range")
            except (ValueError, OverflowError):
                # "next month" said in December 9999, "the day after tomorrow" on the 29th,
                # name no date in the supported range: unresolved, "tomorrow" in it too.
                taken.append((m.start(), m.end()))
                continue
            if resolved is None:
                continue
            when, granularity, absolute = resolved
            taken.append((m.start(), m.end()))
            found.append(ResolvedDate(m.group(0), m.start(), m.end(), when, granularity, absolute))
    return sorted(found, key=lambda r: r.start)


__all__ = ["MONTH_NUMBERS", "ResolvedDate", "resolve_dates"]
