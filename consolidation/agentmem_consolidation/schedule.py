"""The beat schedule: one dispatcher entry, nightly by default.

The dispatcher (``agentmem.consolidation.dispatch``) finds the scopes with new activity since their
last run and starts one pipeline per scope; a quiet scope costs nothing. ``cron`` and
``timezone`` come from settings (``AGENTMEM_CONSOLIDATION__CRON="0 3 * * *"``,
``AGENTMEM_CONSOLIDATION__TIMEZONE=Europe/Berlin``); ``schedule_seconds`` replaces cron with a
fixed interval (tests, demos). The cron is read by :func:`agentmem.cron.parse_cron`, the
parser the settings check it with when they load. Each entry expires, so a night the workers
could not keep up with does not pile up dispatches.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from agentmem.cron import parse_cron
from agentmem.settings import ConsolidationSettings

DISPATCH_TASK = "agentmem.consolidation.dispatch"


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
