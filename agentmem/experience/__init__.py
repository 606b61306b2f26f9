"""Experience memory: task trajectories, their reflections, and the procedures distilled from
them, which make an agent's next attempt better.

The lifecycle (docs/architecture.md, "Experience lifecycle"):
record (:meth:`Memory.record_experience`) -> reflect (rules, or an LLM when configured) ->
distil (lessons from failure-then-success pairs and successful sequences become procedures)
-> use (:meth:`Memory.recall_experience`, ``context()``, :func:`plan_call`; report how it went
with ``used_procedures=``) -> demote / retire procedures that keep failing.
"""

from __future__ import annotations

import warnings
from typing import Any

from agentmem.experience.api import (
    context_hits,
    distil_experiences,
    list_procedures,
    recall_experience,
    record_experience,
)
from agentmem.experience.distil import Lesson, extract_lessons, procedure_score, winners
from agentmem.experience.models import (
    Experience,
    ExperienceAdvice,
    ExperienceMatch,
    ExperienceResult,
    Outcome,
    PlannedCall,
    Procedure,
    ProcedureMatch,
    ProcedureStatus,
    ProcedureType,
    Reflection,
    Step,
)
from agentmem.experience.plan import plan_call, rewrite_args
from agentmem.experience.reflect import reflect, rules_reflection

__all__ = [
    "Experience",
    "ExperienceAdvice",
    "ExperienceMatch",
    "ExperienceResult",
    "Lesson",
    "Outcome",
    "PlannedCall",
    "Procedure",
    "ProcedureMatch",
    "ProcedureStatus",
    "ProcedureType",
    "Reflection",
    "Step",
    "context_hits",
    "distil_experiences",
    "extract_lessons",
    "list_procedures",
    "plan_call",
    "procedure_score",
    "recall_experience",
    "record_experience",
    "reflect",
    "rewrite_args",
    "rules_reflection",
    "winners",
]


def __getattr__(name: str) -> Any:
    """``Recall``: the old name of :class:`ExperienceAdvice`, kept for a while (deprecated)."""
    if name == "Recall":
        warnings.warn(
            "agentmem.experience.Recall is deprecated; use ExperienceAdvice",
            DeprecationWarning,
            stacklevel=2,
        )
        return ExperienceAdvice
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
