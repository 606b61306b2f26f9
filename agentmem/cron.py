"""The cron expression of the consolidation schedule (``consolidation.cron``), read by the one
parser that both the settings (when they load) and Celery beat (when it builds its schedule,
:mod:`agentmem_consolidation.schedule`) use, so a bad cron is refused where the settings load,
not by beat at night.

Celery is imported only to read a cron other than the default, and not at all where it is not
installed (the core install, which never schedules anything): there only the number of fields
is checked, and beat, which needs Celery, reads the rest.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from agentmem.errors import InvalidSettings

if TYPE_CHECKING:
    from celery.schedules import crontab

DEFAULT_CRON = "0 3 * * *"
"""03:00 every night."""

_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
_EXAMPLE = f"e.g. {DEFAULT_CRON!r} (03:00 every night)"


def parse_cron(expression: str) -> crontab:
    """A five-field cron expression (minute hour day-of-month month day-of-week) as Celery's
    ``crontab``, or :class:`InvalidSettings` naming the field that is wrong and the setting."""
    from celery.schedules import crontab

    fields = _split(expression)
    for name, value in zip(_FIELDS, fields, strict=True):  # name the field that is wrong
        try:
            crontab(**{name: value})
        except ValueError as exc:
            raise InvalidSettings(
                f"consolidation cron {expression!r}: its {name.replace('_', '-')} field "
                f"{value!r} is not valid ({exc}); set AGENTMEM_CONSOLIDATION__CRON to a valid "
                f"cron, {_EXAMPLE}"
            ) from None
    try:  # each field is valid alone; together they may name a date that never comes
        return crontab(**dict(zip(_FIELDS, fields, strict=True)))
    except ValueError as exc:
        raise InvalidSettings(
            f"consolidation cron {expression!r}: its day-of-month and month fields never occur "
            f"together ({exc}); set AGENTMEM_CONSOLIDATION__CRON to a date that exists, "
            f"e.g. '0 3 28 2 *', or {DEFAULT_CRON!r} (03:00 every night)"
        ) from None


def check_cron(expression: str) -> str:
    """``expression``, once :func:`parse_cron` reads it (where Celery is installed; else its
    fields are counted): the check of ``consolidation.cron`` when the settings load."""
    if expression == DEFAULT_CRON:
        return expression
    if importlib.util.find_spec("celery") is None:
        _split(expression)
    else:
        parse_cron(expression)
    return expression


def _split(expression: str) -> list[str]:
    fields = expression.split()
    if len(fields) != len(_FIELDS):
        raise InvalidSettings(
            f"consolidation cron {expression!r} needs 5 fields: minute hour day-of-month "
            f"month day-of-week; set AGENTMEM_CONSOLIDATION__CRON to one, {_EXAMPLE}"
        )
    return fields


__all__ = ["DEFAULT_CRON", "check_cron", "parse_cron"]
