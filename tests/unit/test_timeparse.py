"""Time expressions in queries become event-time windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from agentmem.timeparse import (
    asks_about_past,
    asks_about_present,
    parse_time_window,
    resolve_dates,
)
from agentmem.validation import EARLIEST, LATEST

NOW = datetime(2023, 6, 1, 12, 0, tzinfo=UTC)


def d(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        ("What happened in May 2023?", d(2023, 5, 1), d(2023, 6, 1)),
        ("what did we do in 2022", d(2022, 1, 1), d(2023, 1, 1)),
        ("Where was Maya on 8 May, 2023?", d(2023, 5, 7), d(2023, 5, 10)),
        ("what did I eat yesterday", d(2023, 5, 30), d(2023, 6, 2)),
        ("What happened last month", d(2023, 5, 1), d(2023, 6, 1)),
        ("what did we discuss in march", d(2023, 3, 1), d(2023, 4, 1)),
        # spans dateparser reads as a day or one month
        ("what happened in the 1990s?", d(1990, 1, 1), d(2000, 1, 1)),
        ("music from the 80s", d(1980, 1, 1), d(1990, 1, 1)),
        ("sales in Q3 2022", d(2022, 7, 1), d(2022, 10, 1)),
        ("what did I do in the last 3 months?", d(2023, 3, 1, 12), d(2023, 6, 2)),
        ("what did I read over the past two weeks", d(2023, 5, 18), d(2023, 6, 2)),
        # a day of the month not yet come is last month's
        ("what did I do on the 15th?", d(2023, 5, 14), d(2023, 5, 17)),
        ("what changed since 2019", d(2019, 1, 1), d(2023, 6, 2)),
        # years and ordinals said of dates stay dates
        ("What state did Joanna visit in summer 2021?", d(2021, 1, 1), d(2022, 1, 1)),
        ("what did Audrey do on 4th October, 2022?", d(2022, 10, 3), d(2022, 10, 6)),
    ],
)
def test_windows(query: str, start: datetime, end: datetime) -> None:
    window = parse_time_window(query, now=NOW)
    assert window is not None
    assert (window.start, window.end) == (start, end)
    assert window.start <= window.end


def test_relative_week_is_around_the_reference_time() -> None:
    window = parse_time_window("What did Caroline do last week?", now=NOW)
    assert window is not None
    assert d(2023, 5, 18) <= window.start < window.end <= d(2023, 6, 2)


@pytest.mark.parametrize(
    "query",
    [
        "When did Melanie paint a sunrise?",
        "May I ask about dogs?",
        "what is on my list",
        "",
        "???",
        "what did we decide about ticket #2023?",
        "the fix for issue #95",
        # numbers that are not dates
        "what is the 3rd chapter about?",
        "who won 1st place?",
        "who lives in room 1204?",
        "is flight BA 2490 on time?",
        "she is 30 years old",
        "the score was 3-1",
        "When did James try Cyberpunk 2077?",
        "How old was she at her 18th birthday?",
        # "am" before a number is the verb or German "am" + day, not the clock time "3 am"
        "I am 3 years old",
        "Was habe ich am 3. Mai 2023 gemacht?",
        "Was habe ich am 12. Juni gemacht?",
        "Wir treffen uns am 5.",
        # a clock time alone names no day (it was read as a day weeks away)
        "what did I eat at 7 pm?",
        "dinner at 7pm",
        "meet at 19:00",
        "the call at 3 p.m.",
    ],
)
def test_no_time_named(query: str) -> None:
    assert parse_time_window(query, now=NOW) is None


@pytest.mark.parametrize(
    ("query", "now"),
    [
        ("sales in Q4 9999", NOW),
        ("sales in Q1 0000", NOW),
        ("sales in the last 2 months", d(1, 2, 15)),
        ("sales in the last 999 days", d(1, 1, 5)),
    ],
)
def test_a_span_past_the_ends_of_the_calendar_is_no_window(query: str, now: datetime) -> None:
    assert parse_time_window(query, now=now) is None


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        ("what did I do last month?", d(2024, 3, 1), d(2024, 4, 1)),
        ("what happened last year?", d(2023, 1, 1), d(2024, 1, 1)),
        ("sales in Q1 2024", d(2024, 1, 1), d(2024, 4, 1)),
        ("what did I do in the last 2 days?", d(2024, 3, 30), d(2024, 4, 2)),
    ],
)
def test_relative_times_are_read_in_nows_own_zone(
    query: str, start: datetime, end: datetime
) -> None:
    """Asked at 08:00 on 1 April 2024 in Tokyo (31 March in UTC): Tokyo's calendar, in UTC."""
    tokyo = timezone(timedelta(hours=9))
    window = parse_time_window(query, now=datetime(2024, 4, 1, 8, tzinfo=tokyo))
    assert window is not None
    nine_hours = timedelta(hours=9)
    assert (window.start, window.end) == (start - nine_hours, end - nine_hours)
    assert window.start.tzinfo is UTC


@pytest.mark.parametrize(
    ("statement", "now"),
    [
        ("I will move to Paris the day after tomorrow.", d(9999, 12, 29)),
        ("I moved to Lisbon yesterday.", d(1, 1, 2)),
        ("I moved to Lisbon yesterday.", datetime(1, 1, 3, 8, tzinfo=timezone(timedelta(hours=9)))),
    ],
)
def test_a_date_past_the_supported_range_resolves_to_none(statement: str, now: datetime) -> None:
    assert resolve_dates(statement, now=now) == []


@pytest.mark.parametrize(
    ("now", "day"),
    [
        (d(2024, 5, 10), d(2024, 3, 31)),
        (d(2024, 3, 30), d(2024, 1, 31)),
        (d(2023, 3, 5), d(2023, 1, 31)),
    ],
)
def test_a_day_of_the_month_not_yet_come_is_the_latest_month_that_has_it(
    now: datetime, day: datetime
) -> None:
    """On the 31st asked on 10 May is 31 March: April has no 31st."""
    window = parse_time_window("what did I do on the 31st?", now=now)
    assert window is not None
    assert (window.start, window.end) == (day - timedelta(days=1), day + timedelta(days=2))


def test_a_numbered_reference_does_not_hide_a_real_time() -> None:
    window = parse_time_window("what did we decide about ticket #2023 in May 2022?", now=NOW)
    assert window is not None
    assert (window.start, window.end) == (d(2022, 5, 1), d(2022, 6, 1))


def test_relative_times_follow_the_reference_not_the_clock() -> None:
    a = parse_time_window("what happened yesterday", now=d(2020, 1, 10))
    b = parse_time_window("what happened yesterday", now=d(2021, 1, 10))
    assert a is not None and b is not None
    assert a.start.year == 2020 and b.start.year == 2021


@pytest.mark.parametrize(
    "query",
    [
        "When did Melanie paint a sunrise?",
        "Where did Caroline move from 4 years ago?",
        "What did they do on the Friday before the concert?",
        "Did Jon go to Paris in May or June?",
        "what is planned for next summer",
        "who adopted a dog in Chicago",  # 'ago' inside a word: dateparser still asked
        "What does Gina sell?",
        "May I ask about dogs?",
        "what did I cook from November to February?",
        "what happened between March and May?",
        "what did I read prior to March?",
    ],
)
def test_the_quick_check_changes_no_answer(query: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Queries without a digit or a temporal word skip dateparser; the answer is the same as
    dateparser's filtered by the plausibility rule."""
    import re

    from agentmem import timeparse

    quick = parse_time_window(query, now=NOW)
    monkeypatch.setattr(timeparse, "_ANY_TEMPORAL", re.compile(""))  # always ask dateparser
    assert parse_time_window(query, now=NOW) == quick


@pytest.mark.parametrize(
    ("query", "present"),
    [
        ("Where does Quentin live now?", True),
        ("What is Rosa's current job?", True),
        ("Does Yara still smoke?", True),
        ("What is Jon currently reading?", True),
        ("How does Ines get to work these days?", True),
        ("Where does Quentin live?", False),
        ("Where did Quentin live in 2020?", False),
        ("What did the snow do?", False),  # 'now' inside a word
    ],
)
def test_questions_about_the_present_state(query: str, present: bool) -> None:
    assert asks_about_present(query) is present


@pytest.mark.parametrize(
    ("query", "past"),
    [
        ("Where did Quentin live?", True),
        ("What was Rosa's first job?", True),
        ("Which car did Bea drive before?", True),
        ("Where was Maya living in March?", True),
        ("Where is Bea in 2023?", True),  # a time it names
        ("What happened last week?", True),
        ("Where does Quentin live?", False),
        ("What is Rosa's job?", False),
        ("What did Maya say she does now?", False),  # a present-state word wins
        ("Does Yara still smoke?", False),
        ("Where was Bea's old flat?", True),
        ("What is Bea's old address?", True),
        ("How old is Maya?", False),  # her age now
        ("How old was Maya when she moved?", True),
        ("Who was her previous boss?", True),
        ("What happened 2 weeks ago?", True),
        ("What did she do in the 1990s?", True),
        ("What is Maya's 401k provider?", False),  # a number that names no time
        ("Where does Maya live with her 3 kids?", False),
        ("What does Maya do this year?", False),  # this year is now
    ],
)
def test_questions_about_the_past(query: str, past: bool) -> None:
    assert asks_about_past(query) is past


# Dates in statements ---------------------------------------------------------------------------

SAID_IN_MARCH = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)  # a Friday


@pytest.mark.parametrize(
    ("statement", "day", "text"),
    [
        # a plan in the present tense lies ahead
        ("Maya is training for a marathon in October.", "2024-10-01", "in October 2024"),
        ("Maya's sister's wedding is in June.", "2024-06-01", "in June 2024"),
        ("Maya has a dentist appointment on the 14th of May.", "2024-05-14", "on 14 May 2024"),
        ("The conference is on May 20.", "2024-05-20", "on 20 May 2024"),
        ("Maya is moving to Berlin in February.", "2025-02-01", "in February 2025"),
        # past tense, or a date after "since" / "back in", stays behind
        ("Maya went to Paris in October.", "2023-10-01", "in October 2023"),
        ("Maya visited Rome on 14 May.", "2023-05-14", "on 14 May 2023"),
        ("Maya had a dentist appointment on the 14th of May.", "2023-05-14", "on 14 May 2023"),
        ("Maya is having a great time since June.", "2023-06-01", "since June 2023"),
        ("Back in May Maya was sad.", "2023-05-01", "in May 2023"),
    ],
)
def test_a_plan_in_the_present_tense_is_dated_ahead_a_past_event_behind(
    statement: str, day: str, text: str
) -> None:
    (found,) = resolve_dates(statement, now=SAID_IN_MARCH)
    assert (found.when.date().isoformat(), found.text) == (day, text)


@pytest.mark.parametrize(
    ("statement", "text"),
    [
        ("Maya visited Rome on 2021-03-03.", "on 3 March 2021"),
        ("Maya has lived in Paris since 2021-03-03.", "since 3 March 2021"),
        ("Maya will fly to Oslo by 2024-02-01.", "by 1 February 2024"),
        ("Maya moved on 2021-03-03.", "on 3 March 2021"),
    ],
)
def test_an_iso_date_keeps_its_preposition_once(statement: str, text: str) -> None:
    (found,) = resolve_dates(statement, now=SAID_IN_MARCH)
    assert found.text == text
    assert found.phrase == text.split()[0] + " " + found.phrase.split()[-1]


FRIDAY = datetime(2025, 3, 14, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("query", "day"),
    [
        # 1st-12th: dateparser reads them as months (December, April, March)
        ("Where was I on the 12th?", d(2025, 3, 12)),
        ("what did I do on the 4th?", d(2025, 3, 4)),
        ("dinner on the 1st", d(2025, 3, 1)),
        ("What did I do on the 14th?", d(2025, 3, 14)),  # today is on or before today
        ("What did I do on the 20th?", d(2025, 2, 20)),
        # a query that points forward takes the next such day
        ("What will I do on the 20th?", d(2025, 3, 20)),
        ("Where am I going to be on the 2nd?", d(2025, 4, 2)),
    ],
)
def test_a_day_of_the_month_is_a_day_not_a_month(query: str, day: datetime) -> None:
    window = parse_time_window(query, now=FRIDAY)
    assert window is not None
    assert (window.start, window.end) == (day - timedelta(days=1), day + timedelta(days=2))


@pytest.mark.parametrize(
    ("query", "monday"),
    [
        ("Where did I have lunch last week?", d(2025, 3, 3)),
        ("What did we cook this week?", d(2025, 3, 10)),
        ("What is planned for next week?", d(2025, 3, 17)),
    ],
)
def test_this_last_and_next_week_are_calendar_weeks(query: str, monday: datetime) -> None:
    """Monday to Sunday, whatever the weekday asked on: not a window centred on a day."""
    window = parse_time_window(query, now=FRIDAY)
    assert window is not None
    assert (window.start, window.end) == (monday, monday + timedelta(days=7))


def test_a_week_ago_stays_a_window_around_the_day() -> None:
    window = parse_time_window("what did I do a week ago?", now=FRIDAY)
    assert window is not None
    assert window.start < d(2025, 3, 7) < window.end
    assert (window.start.weekday(), window.end.weekday()) != (0, 0)


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        ("what did I do at 3 am yesterday?", d(2023, 5, 30), d(2023, 6, 2)),
        ("what happened at 3am on 8 May 2023?", d(2023, 5, 7), d(2023, 5, 10)),
        ("who called at 11 pm on May 8, 2023?", d(2023, 5, 7), d(2023, 5, 10)),
        ("where am I on 8 May 2023?", d(2023, 5, 7), d(2023, 5, 10)),
        # with dots the parser stopped at "at 3 a" and read a date from it
        ("what did I do at 3 a.m. on 8 May 2023?", d(2023, 5, 7), d(2023, 5, 10)),
        ("what happened on 8 May 2023 at 10 P.M.?", d(2023, 5, 7), d(2023, 5, 10)),
        ("what did I do at 3 a.m. yesterday?", d(2023, 5, 30), d(2023, 6, 2)),
    ],
)
def test_a_clock_time_written_the_english_way_keeps_its_day(
    query: str, start: datetime, end: datetime
) -> None:
    window = parse_time_window(query, now=NOW)
    assert window is not None
    assert (window.start, window.end) == (start, end)


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        # no count: one week, month or year back from today, today included (asked Thu 1 June)
        ("where did I swim in the past week?", d(2023, 5, 25), d(2023, 6, 2)),
        ("where did I swim in the last week?", d(2023, 5, 25), d(2023, 6, 2)),
        ("what did I read over the past month?", d(2023, 5, 1, 12), d(2023, 6, 2)),
        ("who did I meet over the last year?", d(2022, 6, 1, 12), d(2023, 6, 2)),
        ("what did I cook in the past day?", d(2023, 5, 31), d(2023, 6, 2)),
        ("what did I read in the past few weeks?", d(2023, 5, 11), d(2023, 6, 2)),
    ],
)
def test_the_past_week_without_a_count_is_the_last_seven_days(
    query: str, start: datetime, end: datetime
) -> None:
    """Without a count, "in the past week" named no window (the span needed one), and "in
    the last week" was read as a week around seven days ago that left today out."""
    window = parse_time_window(query, now=NOW)
    assert window is not None
    assert (window.start, window.end) == (start, end)


def test_a_plural_without_a_count_is_no_span_of_one() -> None:
    """A plural without a count ("the past weeks") is not read as one week."""
    assert parse_time_window("what did we discuss in the past weeks?", now=NOW) is None


@pytest.mark.parametrize(
    "query",
    [
        "what did I sign on February 29, 2023?",
        "what did I sign on 29 February 2023?",
        "what did I sign on the 29th of Feb, 2023?",
        "what happened on 2023-02-30?",
        "what did I do on April 31st?",
        "what did I do on 30 February?",
    ],
)
def test_a_day_no_calendar_has_is_no_window(query: str) -> None:
    """29 February 2023 does not exist: it was moved to 29 February 2024 (dateparser kept the
    day and dropped the year) or read as all of 2023; a query naming no real day gets none."""
    assert parse_time_window(query, now=NOW) is None


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        ("what did I sign on February 29, 2024?", d(2024, 2, 28), d(2024, 3, 2)),
        ("what did I sign on 29 February 2024?", d(2024, 2, 28), d(2024, 3, 2)),
        ("what did I do on April 30th?", d(2023, 4, 29), d(2023, 5, 2)),
    ],
)
def test_a_real_day_next_to_an_impossible_one_is_read(
    query: str, start: datetime, end: datetime
) -> None:
    window = parse_time_window(query, now=NOW)
    assert window is not None
    assert (window.start, window.end) == (start, end)


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        ("what was built in the 1800s?", d(1800, 1, 1), d(1900, 1, 1)),
        ("music of the 1900s", d(1900, 1, 1), d(2000, 1, 1)),
        ("what was built in the 19th century?", d(1800, 1, 1), d(1900, 1, 1)),
        ("art of the 21st century", d(2000, 1, 1), d(2100, 1, 1)),
        # "the 2000s" is the decade it is mostly said of; other decades stay decades
        ("songs from the 2000s", d(2000, 1, 1), d(2010, 1, 1)),
        ("what happened in the 1810s?", d(1810, 1, 1), d(1820, 1, 1)),
    ],
)
def test_the_1800s_is_a_century(query: str, start: datetime, end: datetime) -> None:
    """A century written as its years ("the 1800s") was read as the decade 1800-1809."""
    window = parse_time_window(query, now=NOW)
    assert window is not None
    assert (window.start, window.end) == (start, end)


@pytest.mark.parametrize(
    ("query", "day"),
    [
        # asked on Friday 14 March 2025
        ("what did I do with the team this Monday?", d(2025, 3, 10)),
        ("Who did I call on this Tuesday?", d(2025, 3, 11)),
        ("what did we eat this Friday?", d(2025, 3, 14)),  # today
        ("what was cooked this Saturday?", d(2025, 3, 8)),  # the latest Saturday
        ("what happened this Wednesday?", d(2025, 3, 12)),
        # a question about what is ahead keeps the coming day
        ("what will I do this Monday?", d(2025, 3, 17)),
        ("what is planned for this Sunday?", d(2025, 3, 16)),
        ("what am I booked for this Thursday?", d(2025, 3, 20)),
    ],
)
def test_this_monday_in_a_question_about_the_past_is_behind(query: str, day: datetime) -> None:
    """dateparser reads "this Monday" as the coming Monday, also in "what did I do this
    Monday?" asked on a Friday, whose Monday is four days ago."""
    window = parse_time_window(query, now=FRIDAY)
    assert window is not None
    assert (window.start, window.end) == (day - timedelta(days=1), day + timedelta(days=2))


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        # asked on 1 June 2023
        ("where did I go skiing in January last year?", d(2022, 1, 1), d(2022, 2, 1)),
        ("what happened in March of last year?", d(2022, 3, 1), d(2022, 4, 1)),
        ("what did I do in December this year?", d(2023, 12, 1), d(2024, 1, 1)),
        ("what is planned for October next year?", d(2024, 10, 1), d(2024, 11, 1)),
        ("where did we go in August two years ago?", d(2021, 8, 1), d(2021, 9, 1)),
        ("who visited in May a year ago?", d(2022, 5, 1), d(2022, 6, 1)),
        ("what did I buy in Feb last year?", d(2022, 2, 1), d(2022, 3, 1)),
    ],
)
def test_a_month_of_last_year_is_in_last_year(query: str, start: datetime, end: datetime) -> None:
    """dateparser found "in January" and "last year" apart, and the first was taken: January
    of this year."""
    window = parse_time_window(query, now=NOW)
    assert window is not None
    assert (window.start, window.end) == (start, end)


def test_may_the_verb_before_this_year_is_no_month() -> None:
    window = parse_time_window("what may this year bring?", now=NOW)
    assert window is None or window.start != d(2023, 5, 1)


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        # asked on Thursday 1 June 2023: "since"/"after" run to the end of today
        ("which doctor did I visit before 2020?", EARLIEST, d(2020, 1, 1)),
        ("what did I read prior to 2020?", EARLIEST, d(2020, 1, 1)),
        ("what happened before March 2023?", EARLIEST, d(2023, 3, 1)),
        ("what did I buy until 8 May 2023?", EARLIEST, d(2023, 5, 9)),
        ("how many races has Nate won by July 10, 2022?", EARLIEST, d(2022, 7, 11)),
        ("which doctors have I visited since 2020?", d(2020, 1, 1), d(2023, 6, 2)),
        ("what did I do since January?", d(2023, 1, 1), d(2023, 6, 2)),
        ("what did I do after March?", d(2023, 4, 1), d(2023, 6, 2)),
        ("what have I read since last week?", d(2023, 5, 22), d(2023, 6, 2)),
        ("what is planned after 2030?", d(2031, 1, 1), LATEST),  # ahead: open to the end
        ("what happened between 2019 and 2021?", d(2019, 1, 1), d(2022, 1, 1)),
        ("what happened between March and May?", d(2023, 3, 1), d(2023, 6, 1)),
        ("what did I cook from November to February?", d(2022, 11, 1), d(2023, 3, 1)),
        ("where was I between 8 May and 10 May 2023?", d(2023, 5, 8), d(2023, 5, 11)),
        # a first time without a year is in the years of the second
        ("did we meet between August and November 2021?", d(2021, 8, 1), d(2021, 12, 1)),
    ],
)
def test_a_bound_word_opens_the_window_on_the_other_side(
    query: str, start: datetime, end: datetime
) -> None:
    """The direction was dropped: "before 2020" was read as 2020 itself (the boost went to
    the excluded year), "since 2020" as 2020 alone, "after March" as March; "since January"
    and "between March and May" named no window."""
    window = parse_time_window(query, now=NOW)
    assert window is not None
    assert (window.start, window.end) == (start, end)


@pytest.mark.parametrize(
    "query",
    [
        # a unit before the bound word says an offset from the date: not every time before it
        "what did I do the week before August 3, 2022?",
        "what did we do on the Sunday before October 25, 2022?",
        "what did I do two days after 8 May 2023?",
        # "from" without a "to" is a place ("moved from ..."), and a bound of no time is none
        "where did Caroline move from 4 years ago?",
        "what did I learn before my trip in August 2022?",
    ],
)
def test_an_offset_or_a_bound_of_no_time_is_no_open_window(query: str) -> None:
    window = parse_time_window(query, now=NOW)
    assert window is None or (
        window.start != EARLIEST and window.end not in (d(2023, 6, 2), LATEST)
    )


def test_before_with_no_time_after_it_is_no_window() -> None:
    assert parse_time_window("have I been to Paris before?", now=NOW) is None
    assert parse_time_window("what did I eat before 5?", now=NOW) is None


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        # asked on 1 June 2023
        ("what did I do in the last 2 months of 2022?", d(2022, 11, 1), d(2023, 1, 1)),
        ("Where was Dave in the last two weeks of August 2022?", d(2022, 8, 18), d(2022, 9, 1)),
        ("where was I during the last week of October 2022?", d(2022, 10, 25), d(2022, 11, 1)),
        ("what did I do in the first week of May?", d(2023, 5, 1), d(2023, 5, 8)),
        ("what happened on the last day of 2022?", d(2022, 12, 31), d(2023, 1, 1)),
        ("what did I read in the first three months of last year?", d(2022, 1, 1), d(2022, 4, 1)),
    ],
)
def test_the_last_weeks_of_a_period_are_inside_it(
    query: str, start: datetime, end: datetime
) -> None:
    """Read apart, "the last 2 months of 2023" was a month of this year (dateparser's "2
    months of 2023") and "the last week of October 2022" the days before now."""
    window = parse_time_window(query, now=NOW)
    assert window is not None
    assert (window.start, window.end) == (start, end)
