"""A Celery app for the crash test: the consolidation app with a slow ``extract`` stage (one
episode at a time, with a pause), so a worker can be killed in the middle of it."""

from __future__ import annotations

import time

from agentmem.models import Scope
from agentmem.semantic import extract_pending
from agentmem_consolidation import app, stages
from agentmem_consolidation.stages import RunContext, StageResult

__all__ = ["app"]
_fast = stages.STAGES["extract"]


def slow_extract(mem: object, scope: Scope, run: RunContext) -> StageResult:
    """Extract one pending episode at a time, pausing between them."""
    done = 0
    while extract_pending(mem, scope, limit=1):  # type: ignore[arg-type]
        done += 1
        time.sleep(0.4)
    return StageResult(done, 0)


stages.STAGES["extract"] = slow_extract
