"""Find the time a query is about ("last week", "in May 2023", "on 8 May, 2023").

Used by the time channel of hybrid retrieval: when a query names a time, memories whose
event time falls in that window are retrieved (and ranked by relevance within it). Parsing is
dateparser's; a found phrase counts only if it carries a digit or a clearly temporal word, so
"may" the verb or "march" the noun are not taken for months.

The dates a statement mentions are resolved by :func:`resolve_dates`
(:mod:`agentmem.statement_dates`, re-exported here), which serves fact extraction.
"""

from __future__ import annotations

import calendar
import re
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from agentmem.models import as_utc
from agentmem.statement_dates import (
    _NUM_RE,
    _NUM_WORDS,
    _NUMBERS,
    _PAST_HINT,
    _WEEKDAY_RE,
    _WEEKDAYS,
    MONTH_NUMBERS,
    ResolvedDate,
    _add_months,
    _points_forward,
    _weekday_near,
    resolve_dates,
)
from agentmem.validation import EARLIEST, LATEST

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
# "#95", "ticket #2023": a number written as a reference (an issue, ticket, rank or item) is
# never a date, though dateparser reads a bare number as a year.
_NUMBERED_REFERENCE = re.compile(r"#\d+\b")
# "3 a.m." as "3 am": the parser stops at the first dot and reads "at 3 a" as a date.
_DOTTED_MERIDIEM = re.compile(r"(?<=\d)(\s*)([ap])\.\s?m\.?(?!\w)", re.IGNORECASE)
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


# The same words without the word boundaries: a query none of these occurs in has no plausible
# phrase (a phrase is a piece of the query), so dateparser's search (~10 ms) need not run.
_ANY_TEMPORAL = re.compile(
    _TEMPORAL_WORDS.pattern.replace(r"\b", "")
    + "|"
    + _MONTH_AFTER_PREPOSITION.pattern.replace(r"\b", "")
    + "|"
    + _MONTH_AFTER_PREPOSITION.pattern.replace(r"\b", "").replace("in|on|", "between|from|till|to|")
    + r"|\d",
    re.IGNORECASE,
)


def _plausible(phrase: str) -> bool:
    return bool(
        _DIGIT.search(phrase)
        or _TEMPORAL_WORDS.search(phrase)
        or _MONTH_AFTER_PREPOSITION.search(phrase)
    )


_PRESENT_STATE = re.compile(
    r"\b(now|nowadays|currently|current|these days|at the moment|at present|still|any ?more|"
    r"latest|most recent)\b",
    re.IGNORECASE,
)


def asks_about_present(query: str) -> bool:
    """Whether ``query`` asks how things stand now ("Where does Quentin live now?", "What is
    Rosa's current job?", "Does Yara still smoke?"): where a fact changed, the newer memory
    answers it."""
    return bool(_PRESENT_STATE.search(query))


_PAST_STATE = re.compile(
    r"\b(did|didn't|was|wasn't|were|weren't|had|hadn't|used to|before|previously|previous|"
    r"former|formerly|originally|earlier|at first|first|back then|ago|last|past|"
    r"(?<!how )old)\b",
    re.IGNORECASE,
)
"""Words of a question about how things were ("her old flat"; "How old is Maya?" asks her age
now)."""

_YEAR_OR_DATE = re.compile(
    r"\b(?:1[89]\d\d|20\d\d)s?\b|\b\d{1,2}(?:st|nd|rd|th)\b|\b\d{1,4}[/.-]\d{1,2}\b"
)
"""A number that names a time: a year ("2023", "the 1990s"), a day ("the 15th"), a date
("12/03"); "401k", "5 minutes" or "3 kids" name none."""


def asks_about_past(query: str) -> bool:
    """Whether ``query`` asks how things were, or at a time it names, rather than how they are
    ("Where did Quentin live?", "What was Rosa's first job?", "Where is Bea in 2023?"); a
    question with a present-state word ("What did Maya say she does now?") is about the
    present. A time the query names only as "this year", "today" or "next month" is not the
    past; where the time parser reads a window from the query, search treats it as dated
    anyway."""
    names_then = (
        _PAST_STATE.search(query)
        or _MONTH_AFTER_PREPOSITION.search(query)
        or _YEAR_OR_DATE.search(query)
    )
    return bool(names_then) and not asks_about_present(query)


def might_name_time(query: str) -> bool:
    """False when ``query`` cannot name a time (:func:`parse_time_window` returns None at once);
    True when dateparser has to look."""
    return bool(_ANY_TEMPORAL.search(_NUMBERED_REFERENCE.sub(" ", query)))


def warm_up() -> None:
    """Import dateparser and load its English data now, instead of in the first query that
    names a time (:meth:`agentmem.Memory.warm_up`)."""
    parse_time_window("what happened last week?", now=datetime.now(UTC))


def parse_time_window(query: str, *, now: datetime) -> TimeWindow | None:
    """The event-time window a query refers to, relative to ``now`` and read in ``now``'s
    own zone (naive: UTC: "last month" asked on 1 April at 08:00 in Tokyo is March), in UTC;
    None if it names none. A time after "before", "until", "since", "after" ... is a bound:
    the window is open on the other side ("before 2020" is every time until 2020)."""
    query = _DOTTED_MERIDIEM.sub(r"\1\2m", _NUMBERED_REFERENCE.sub(" ", query))
    if not _ANY_TEMPORAL.search(query):  # might_name_time, on the query already cleaned
        return None  # no phrase of it could pass _plausible: same answer, without dateparser
    local = now if now.tzinfo is not None else as_utc(now)
    try:
        found = _bounded(query, local) or _read(query, local)
    except (ValueError, OverflowError):  # "Q4 9999", "the last 2 months" in year 1: none
        return None
    if found is None:
        return None
    return TimeWindow(as_utc(found.start), as_utc(found.end), found.phrase)


@dataclass(frozen=True, slots=True)
class _Reading:
    """A time the query names: the window searched, [start, end), the phrase, where the phrase
    starts in the query, and the period itself, [first, last), where it differs from the
    window (a named day's window has a day of slack either side; a bound is set at the day)."""

    start: datetime
    end: datetime
    phrase: str
    at: int
    first: datetime | None = None
    last: datetime | None = None

    @property
    def period(self) -> tuple[datetime, datetime]:
        """[first, last): the period the phrase names, without slack."""
        return self.first or self.start, self.last or self.end


def _read(query: str, local: datetime, lead: int | None = None) -> _Reading | None:
    """The first time ``query`` names; with ``lead``, only a time named right at that position
    (the words after "before", "since", "between" ...): "the year 2020", "March", "8 May"."""
    pos = lead or 0
    text = query[pos:]
    if lead is not None and not _ANY_TEMPORAL.search(f"in {text}"):  # "in" as the bound word
        return None
    span = _span_window(text, local)
    if span is not None and (lead is None or _opens(text, span.at)):
        return replace(span, at=span.at + pos)
    if lead is not None and (m := _LEAD_YEAR.match(text)):  # "before 2020": dateparser
        start = datetime(int(m["y"]), 1, 1, tzinfo=local.tzinfo)  # finds no bare year
        return _Reading(start, start.replace(year=start.year + 1), m.group(0), pos)
    return _parsed(query, local, lead)


def _opens(text: str, at: int) -> bool:
    return text[:at].strip().lower() in ("", "the")


def _parsed(query: str, local: datetime, lead: int | None) -> _Reading | None:
    """The first time dateparser finds in ``query`` (from ``lead`` on, and only right there)
    that is plausibly a date."""
    from dateparser.search import search_dates

    pos = lead or 0
    text = query[pos:]
    base = local.replace(tzinfo=None)
    settings = {"RELATIVE_BASE": base, "PREFER_DATES_FROM": "past"}
    try:
        found = search_dates(text, languages=["en"], settings=settings)
    except Exception:  # dateparser raises assorted errors on odd input; no window then
        return None
    impossible = _impossible_dates(query)
    for phrase, when in found or []:
        at = pos + text.find(phrase)
        if lead is not None and not _opens(text, at - pos):
            return None  # a time further on is not the one the bound word names
        if lead is not None and _BARE_NUMBER.fullmatch(phrase.strip()):
            return None  # "before 5": a year would have been read already
        plausible = _plausible(phrase) or (lead is not None and _plausible(f"in {phrase}"))
        if not plausible or _not_a_date(phrase, query, at):
            if lead is not None:
                return None
            continue
        if any(at < end and start < at + len(phrase) for start, end in impossible):
            if lead is not None:
                return None
            continue  # a piece of "February 29, 2023": no such day, so no window
        return _reading_of(phrase, when, query, base, at, local)
    return None


def _reading_of(
    phrase: str, when: datetime, query: str, base: datetime, at: int, local: datetime
) -> _Reading:
    """The window of a phrase dateparser resolved to ``when`` (in ``local``'s zone)."""
    # search_dates resolved the date against ``now``; the parser tells its granularity.
    data = _date_data_parser().get_date_data(phrase)
    period = (data.period if data and data.date_obj else None) or "day"
    if _DAY_OF_MONTH.fullmatch(phrase.strip()):
        # dateparser reads "the 1st" ... "the 12th" as a month: read the day itself
        when = _day_of_month(phrase, base, forward=_points_forward(query))
        period = "day"
    if (this := _THIS_WEEKDAY.fullmatch(phrase.strip())) and _asks_back(query):
        # dateparser reads "this Monday" ahead, even in "what did I do this Monday?"
        weekday = _WEEKDAYS.index(this["wd"].capitalize())
        when = _weekday_near(base, weekday, future=False, strict=False)
        period = "day"
    zone = local.tzinfo
    day = when.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=zone)
    if _CALENDAR_WEEK.fullmatch(phrase.strip()):
        start, end = _calendar_week(when.replace(tzinfo=None))
        return _Reading(start.replace(tzinfo=zone), end.replace(tzinfo=zone), phrase, at)
    start, end = _period_window(when.replace(tzinfo=None), period, phrase)
    start, end = start.replace(tzinfo=zone), end.replace(tzinfo=zone)
    if (end - start).days > 10:  # a month or a year: the window is the period
        return _Reading(start, end, phrase, at)
    return _Reading(start, end, phrase, at, day, day + timedelta(days=1))


def _bounded(query: str, local: datetime) -> _Reading | None:
    """A time the query bounds: "before 2020" (every time until 2020), "until 8 May" (up to
    the end of that day), "since March", "after March" (to the end of today, or on where the
    time is still ahead), "between 2019 and 2021", "from March to May". A bound word after a
    unit ("the week before 3 August", "two days after the party") says an offset, not a
    bound, and is left to the other rules."""
    for m in _BOUND.finditer(query):
        word = m["word"].lower().split()[0]
        if _OFFSET.search(query[: m.start()]):
            continue
        if word in ("between", "from"):  # the first time is read up to the "and", "to"
            joint = _JOINT.search(query, m.end())
            first = _read(query[: joint.start()], local, m.end()) if joint else None
            second = _read(query, local, joint.end()) if joint and first else None
            if first is None or second is None:
                continue
            start, end = _in_years_of(first, second), second.period[1]
            said = query[m.start() : second.at + len(second.phrase)]
        else:
            if (first := _read(query, local, m.end())) is None:
                continue
            start, end = _bound_edges(word, first, local)
            said = query[m.start() : first.at + len(first.phrase)]
        if start < end:
            return _Reading(start, end, said, m.start())
    return None


def _in_years_of(first: _Reading, second: _Reading) -> datetime:
    """Where a span from ``first`` to ``second`` starts: a first time said without a year
    ("between August and November 2021") is the latest such time not after the second."""
    start = first.period[0]
    if _YEAR.search(first.phrase) or start <= second.period[0]:
        return start
    start = start.replace(year=second.period[0].year)
    return start if start <= second.period[0] else start.replace(year=start.year - 1)


def _bound_edges(word: str, named: _Reading, local: datetime) -> tuple[datetime, datetime]:
    """[start, end) of every time before, until, since or after the period ``named``."""
    first, last = named.period
    if word in ("before", "prior"):
        return EARLIEST, first
    if word in ("until", "till", "by"):
        return EARLIEST, last
    start = first if word == "since" else last
    tomorrow = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return start, tomorrow if start < tomorrow else LATEST


_PRESENT_PASSIVE = re.compile(r"\b(?:is|are|am|be|'s|'re|'m)\s+(?:\w+\s+)?\w{3,}ed\b", re.I)
"""A participle said in the present ("what is planned for ..."), which is no past verb."""


def _asks_back(query: str) -> bool:
    """Whether ``query`` speaks of the past ("what did I do ...", "what happened ...") and
    not of the future."""
    past = _PAST_HINT.search(_PRESENT_PASSIVE.sub(" ", query))
    return bool(past) and not _points_forward(query)


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


# Spans and refusals ------------------------------------------------------------------------------
# Spans dateparser reads wrongly ("in the 1990s" as a day near now, "in the last 3 months" as
# one month, "Q3 2023" as a day), read first by parse_time_window; and phrases it takes for
# dates that are not (an ordinal of a chapter or a place, a room number, an age, a score),
# refused. They reuse the statements' number words and month names.
_DECADE = re.compile(r"\b(?:(?P<century>1\d|20)(?P<decade>\d)0|'?(?P<short>\d)0)'?s\b")
_CENTURY = re.compile(r"\b(?P<n>[1-9]\d?)(?:st|nd|rd|th)[\s-]+century\b", re.IGNORECASE)
_MONTH_NAMES = "|".join(sorted(MONTH_NUMBERS, key=len, reverse=True))  # "september", "sep"
_NAMED_DATE = re.compile(
    rf"\b(?:(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?(?:\s+of)?\s+(?P<m1>{_MONTH_NAMES})\b\.?"
    rf"|(?P<m2>{_MONTH_NAMES})\b\.?\s+(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\b)(?:,?\s*(?P<y>\d{{4}})\b)?"
    r"|\b(?P<iso_y>\d{4})-(?P<iso_m>\d{2})-(?P<iso_d>\d{2})\b",
    re.IGNORECASE,
)
_SPAN_COUNTS = [*(w for w in _NUM_WORDS if w != "one"), "a few", "few", "a couple of"]
_SPAN_NUMBERS = {**_NUMBERS, "few": 3}  # "the past few weeks"
_PART_OF = re.compile(
    r"\bthe\s+(?P<side>first|last|final)\s+(?:(?P<n>\d{1,3}|"
    + "|".join(_SPAN_COUNTS)
    + r")\s+)?(?P<unit>day|week|month)s?\s+of\s+",
    re.IGNORECASE,
)
_MONTH_OF_YEAR = re.compile(
    rf"(?:\b(?P<prep>in|during|on|of|since|before|after|until|by)\s+)?\b(?P<month>{_MONTH_NAMES})"
    rf"\s+(?:of\s+)?(?:(?P<rel>last|this|next)\s+year|(?P<n>{_NUM_RE})\s+years?\s+ago)\b",
    re.IGNORECASE,
)
"""A month in a year said relative to now: "in January last year", "March of next year",
"in May two years ago"."""
_VERBS = {"may", "march", "mar"}  # a month name that is also a word: dated by a preposition
_QUARTER = re.compile(r"\bQ(?P<q>[1-4])\s*(?:of\s+)?(?P<year>\d{4})\b", re.IGNORECASE)
_LAST_SPAN = re.compile(
    r"\b(?:in|over|during|within|for)\s+the\s+(?:last|past|previous)\s+"
    r"(?:(?P<n>\d{1,3}|" + "|".join(_SPAN_COUNTS) + r")\s+(?P<unit>day|week|month|year)s?"
    r"|(?P<one>day|week|month|year))"  # "in the past week": one, and no count is said
    r"\b(?!\s+(?:of|before|in|at)\b)",  # not "the last week of August"
    re.IGNORECASE,
)
_ORDINAL = re.compile(r"(?:the\s+)?\d{1,2}(?:st|nd|rd|th)", re.IGNORECASE)
_DAY_OF_MONTH = re.compile(r"(?:on\s+)?" + _ORDINAL.pattern, re.IGNORECASE)
_BOUND = re.compile(
    r"\b(?P<word>before|prior\s+to|until|till|by|since|after|between|from)\s+", re.IGNORECASE
)
"""A word that bounds the time after it ("before 2020"); "from" only with a "to" after it."""
_BOUND_WORDS = {"before", "to", "until", "till", "by", "since", "after", "between", "and"}
_JOINT = re.compile(r"\s+(?:and|to|until|till|through)\s+", re.IGNORECASE)
_OFFSET = re.compile(
    rf"\b(?:day|night|morning|afternoon|evening|week|weekend|fortnight|month|year|hour|minute|"
    rf"{_WEEKDAY_RE})s?\s*$",
    re.IGNORECASE,
)
"""A unit right before a bound word: "the week before", "two days after", "the Sunday before"."""
_YEAR = re.compile(r"\d{4}")
_LEAD_YEAR = re.compile(r"(?:the\s+year\s+)?(?P<y>\d{4})\b(?![-/.:]\d|\s*(?:[ap]\.?m\b|%))")
_THIS_WEEKDAY = re.compile(rf"(?:on\s+)?this\s+(?P<wd>{_WEEKDAY_RE})", re.IGNORECASE)
"""A weekday of this week: in a question about the past, the latest one ("what did I do this
Monday?" asked on a Wednesday is two days ago); otherwise the coming one, as dateparser reads."""
_CALENDAR_WEEK = re.compile(r"(?:this|last|next|previous|coming)\s+week", re.IGNORECASE)
"""A week named by its place in the calendar ("last week"), not counted back ("a week ago")."""
_BARE_NUMBER = re.compile(r"\d{1,4}(?:\s+(?:on|in|at|to))?")
_COUNT_OF_UNITS = re.compile(r"\d{1,3}\s+(?:day|week|month|year)s?", re.IGNORECASE)
_SCORE = re.compile(r"\d{1,2}\s*[-:]\s*\d{1,2}")
# "am"/"pm" *before* a number: English writes "3 am", never "am 3", so this "am" is the verb
# ("I am 3 years old") or German "am" + day ("am 3. Mai"), which dateparser reads as a time.
_MERIDIEM_FIRST = re.compile(r"(?:at\s+)?[ap]\.?m\.?\s+\d", re.IGNORECASE)
_CLOCK_ONLY = re.compile(r"(?:at\s+)?\d{1,2}(?:(?::\d{2})?\s*[ap]m|:\d{2})", re.IGNORECASE)
_BEFORE_A_YEAR = {"in", "since", "during", "from", "until", "till", "by", "before", "after",
                  "of", "year", "around", "circa", "between", "and", "summer", "winter",
                  "spring", "autumn", "fall", "early", "late", "mid", "end"}  # fmt: skip
_MONTH_WORDS = frozenset(MONTH_NUMBERS)
_AFTER_A_COUNT = {"ago", "back", "before", "earlier", "later"}


def _span_window(query: str, now: datetime) -> _Reading | None:
    """A century, a decade, a quarter, or the last N days/weeks/months/years ("in the past
    week": the last seven days and today, not the calendar week "last week" names), when the
    query names one (in ``now``'s zone)."""
    if (m := _PART_OF.search(query)) and (whole := _read(query, now, m.end())) is not None:
        return _part_of(m, whole, query)
    if m := _QUARTER.search(query):
        start = datetime(int(m["year"]), 3 * int(m["q"]) - 2, 1, tzinfo=now.tzinfo)
        return _Reading(start, _add_months(start, 3), m.group(0), m.start())
    if (m := _MONTH_OF_YEAR.search(query)) and (m["prep"] or m["month"].lower() not in _VERBS):
        # "in January last year": dateparser reads "in January" alone, of this year
        step = {"last": -1, "this": 0, "next": 1}.get((m["rel"] or "").lower())
        if step is None:
            step = -(_NUMBERS.get(m["n"].lower()) or int(m["n"]))
        month = MONTH_NUMBERS[m["month"].lower()]
        start = datetime(now.year + step, month, 1, tzinfo=now.tzinfo)
        return _Reading(start, _add_months(start, 1), m.group(0).strip(), m.start())
    if m := _LAST_SPAN.search(query):
        raw = (m["n"] or "1").lower()
        n = _SPAN_NUMBERS.get(raw) or int(raw)
        unit = (m["unit"] or m["one"]).lower()
        end = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        if unit in ("day", "week"):
            start = end - timedelta(days=n * (7 if unit == "week" else 1) + 1)
        else:
            start = _add_months(now, -n * (12 if unit == "year" else 1))
        return _Reading(start, end, m.group(0), m.start())
    if m := _CENTURY.search(query):  # "the 19th century": 1800 to 1899
        start = datetime(max(1, (int(m["n"]) - 1) * 100), 1, 1, tzinfo=now.tzinfo)
        return _Reading(start, start.replace(year=int(m["n"]) * 100), m.group(0), m.start())
    if m := _DECADE.search(query):
        span = 10
        if m["century"]:
            year = int(m["century"]) * 100 + int(m["decade"]) * 10
            if year % 100 == 0 and year < 2000:  # "the 1800s": the century; "the 2000s" is
                span = 100  # the decade it is mostly said of
        else:  # "the 80s": the latest such decade that has begun
            recent = 2000 + int(m["short"]) * 10
            year = recent if recent <= now.year else recent - 100
        start = datetime(year, 1, 1, tzinfo=now.tzinfo)
        return _Reading(start, start.replace(year=year + span), m.group(0), m.start())
    return None


def _part_of(m: re.Match[str], whole: _Reading, query: str) -> _Reading:
    """The first or last N days, weeks or months of the period ``whole`` ("the last two weeks
    of August 2023", "the first week of May"); dateparser read "the last week" alone, counted
    back from now, and "the last 2 months of 2023" as a month of this year."""
    raw = (m["n"] or "1").lower()
    n = _SPAN_NUMBERS.get(raw) or int(raw)
    first, last = whole.period
    monthly = m["unit"].lower() == "month"
    days = timedelta(days=n * (7 if m["unit"].lower() == "week" else 1))
    if m["side"].lower() == "first":
        start, end = first, min(last, _add_months(first, n) if monthly else first + days)
    else:
        start, end = max(first, _add_months(last, -n) if monthly else last - days), last
    return _Reading(start, end, query[m.start() : whole.at + len(whole.phrase)], m.start())


def _impossible_dates(query: str) -> list[tuple[int, int]]:
    """Where ``query`` writes a day no calendar has ("February 29, 2023", "30 February",
    "2023-02-30"): dateparser would move it to another date, or read the year alone."""
    spans = []
    for m in _NAMED_DATE.finditer(query):
        if m["iso_y"]:
            year, month, day = int(m["iso_y"]), int(m["iso_m"]), int(m["iso_d"])
        else:
            month = MONTH_NUMBERS[(m["m1"] or m["m2"]).lower()]
            day = int(m["d1"] or m["d2"])
            year = int(m["y"]) if m["y"] else 2000  # no year: a day some year has (29 Feb)
        if not 1 <= month <= 12 or not 1 <= day <= _days_in(year, month):
            spans.append(m.span())
    return spans


def _days_in(year: int, month: int) -> int:
    return calendar.monthrange(year if 1 <= year <= 9999 else 2000, month)[1]


def _day_of_month(phrase: str, today: datetime, *, forward: bool) -> datetime:
    """The day a bare ordinal names ("on the 12th"): the latest such day on or before
    ``today``, or the next one on or after it when the query points forward; a month without
    that day is skipped ("the 31st" asked on 10 May is 31 March)."""
    n = int(re.sub(r"\D", "", phrase))
    if not 1 <= n <= 31:
        raise ValueError(f"no month has a day {n}")
    month = today.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    step = 1 if forward else -1
    if (n < today.day and forward) or (n > today.day and not forward):
        month = _add_months(month, step)
    while calendar.monthrange(month.year, month.month)[1] < n:
        month = _add_months(month, step)  # at most twice: every month next to a short one is long
    return month.replace(day=n)


def _calendar_week(when: datetime) -> tuple[datetime, datetime]:
    """The ISO calendar week (Monday to Sunday) that holds ``when``."""
    monday = when.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
        days=when.weekday()
    )
    return monday, monday + timedelta(days=7)


def _not_a_date(phrase: str, query: str, at: int) -> bool:
    """Whether dateparser's ``phrase`` is a number the query uses otherwise: an ordinal not
    said of a day ("the 3rd chapter", "1st place"), a number not said of a year ("room 1204"),
    a count not said of the past ("30 years old"), a score ("3-1"), a number after "am"
    (German "am 3. Mai", English "I am 3 years old"), or a clock time alone ("at 7 pm")."""
    text = phrase.strip()
    if _MERIDIEM_FIRST.match(text) or _CLOCK_ONLY.fullmatch(text):  # "at 7 pm": no day
        return True
    before = query[:at].split()[-1:]
    after = query[at + len(phrase) :].split()[:1]
    word_before = before[0].lower().strip(",.;:") if before else ""
    word_after = after[0].lower().strip(",.;:?!") if after else ""
    if _ORDINAL.fullmatch(text):  # "on the 4th", "the 4th of May", "4th October"
        if word_before in _BOUND_WORDS and not word_after.isalpha():
            return False  # "before the 15th?", not "after the 3rd chapter"
        return not ({word_before, word_after} & {"on", "of", *_MONTH_WORDS})
    if _BARE_NUMBER.fullmatch(text):  # "in 2021", "summer 2021", "May 10, 2023"
        dated = word_before in _BEFORE_A_YEAR | _MONTH_WORDS or word_before[-1:].isdigit()
        return not (dated or word_before.split("-")[-1] in _MONTH_WORDS)
    if _COUNT_OF_UNITS.fullmatch(text):
        return word_after not in _AFTER_A_COUNT
    return bool(_SCORE.fullmatch(text))


__all__ = [
    "MONTH_NUMBERS",
    "ResolvedDate",
    "TimeWindow",
    "might_name_time",
    "parse_time_window",
    "resolve_dates",
    "warm_up",
]
