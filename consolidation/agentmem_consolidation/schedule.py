"""The beat schedule: one dispatcher entry, nightly by default.

The dispatcher (``agentmem.consolidation.dispatch``) finds the scopes with new activity since their
last run and starts one pipeline per scope; a quiet scope costs nothing. ``cron`` and
``timezone`` come from settings (``AGENTMEM_CONSOLIDATION__CRON="0 3 * * *"``,
``AGENTMEM_CONSOLIDATION__TIMEZONE=Europe/Berlin``); ``schedule_seconds`` replaces cron with a
fixed interval (tests, demos). Each entry expires, so a night the workers could not keep up
with does not pile up dispatches.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery.schedules import crontab

from agentmem.errors import InvalidSettings
from agentmem.settings import ConsolidationSettings

DISPATCH_TASK = "agentmem.consolidation.dispatch"


def parse_cron(expression: str) -> crontab:
    """A five-field cron expression (minute hour day-of-month month day-of-week)."""
    fields = expression.split()
    if len(fields) != 5:
        raise InvalidSettings(
            f"consolidation cron {expression!r} needs 5 fields: minute hour day-of-month "
            "month day-of-week, e.g. '0 3 * * *' (03:00 every night)"
        )
    names = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
    for name, value in zip(names, fields, strict=True):  # name the field that is wrong
        try:
            crontab(**{name: value})
        except ValueError as exc:
            raise InvalidSettings(
                f"consolidation cron {expression!r}: its {name.replace('_', '-')} field "
                f"{value!r} is not valid ({exc}); e.g. '0 3 * * *' (03:00 every night)"
            ) from None
    try:  # each field is valid alone; together they may name a date that never comes
        return crontab(**dict(zip(names, fields, strict=True)))
    except ValueError as exc:
        raise InvalidSettings(
            f"consolidation cron {expression!r}: its day-of-month and month fields never occur "
            f"together ({exc}); set AGENTMEM_CONSOLIDATION__CRON to a date that exists, "
            "e.g. '0 3 28 2 *' or '0 3 * * *' (03:00 every night)"
        ) from None


def beat_schedule(config: ConsolidationSettings) -> dict[str, dict[str, Any]]:
    """The ``beat_schedule`` of the Celery app."""
    if config.schedule_seconds is not None:
        every: Any = timedelta(seconds=config.schedule_seconds)
        expires = config.schedule_seconds
    else:
        every = parse_cron(config.cron)
        expires = 6 * 3600.0
    return {
        "consolidation-dispatch": {
            "task": DISPATCH_TASK,
            "schedule": every,
            "options": {"queue": "consolidation", "expires": expires},
        }
    }


__all__ = ["DISPATCH_TASK", "beat_schedule", "parse_cron"]
