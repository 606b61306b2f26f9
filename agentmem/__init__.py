"""agentmem: lifelong memory for multi-agent systems.

>>> from agentmem import Memory
>>> with Memory() as mem:                       # doctest: +SKIP
...     mem.add("Alice moved to Lisbon in May", user_id="alice")
...     hits = mem.search("where does Alice live?", user_id="alice")
"""

from __future__ import annotations

from agentmem.agents import AgentMemory, handoff
from agentmem.buffers import Flush, FlushKind, ThreadBuffer, Turn
from agentmem.context import Context
from agentmem.errors import (
    AgentMemError,
    BackendUnavailable,
    Conflict,
    ExtractionFailed,
    HomeLocked,
    InvalidExperience,
    InvalidFilter,
    InvalidKind,
    InvalidMetadata,
    InvalidScope,
    InvalidSettings,
    InvalidText,
    LLMUnavailable,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from agentmem.experience import (
    Experience,
    ExperienceMatch,
    ExperienceResult,
    Outcome,
    PlannedCall,
    Procedure,
    ProcedureMatch,
    ProcedureStatus,
    ProcedureType,
    Recall,
    Reflection,
    Step,
    plan_call,
)
from agentmem.memory import Memory
from agentmem.models import (
    ChannelScore,
    HistoryEntry,
    HistoryEvent,
    MemoryKind,
    MemoryRecord,
    MemoryStats,
    Scope,
    ScopeSet,
    SearchHit,
)
from agentmem.semantic import (
    AppliedDecision,
    DecisionOp,
    ExtractedFact,
    ExtractionOutcome,
    consolidate_episode,
    extract_pending,
)
from agentmem.settings import (
    BufferSettings,
    ExperienceSettings,
    RetrievalSettings,
    SemanticSettings,
    Settings,
)

__version__ = "0.1.0"

__all__ = [
    "AgentMemError",
    "AgentMemory",
    "AppliedDecision",
    "BackendUnavailable",
    "BufferSettings",
    "ChannelScore",
    "Conflict",
    "Context",
    "DecisionOp",
    "Experience",
    "ExperienceMatch",
    "ExperienceResult",
    "ExperienceSettings",
    "ExtractedFact",
    "ExtractionFailed",
    "ExtractionOutcome",
    "Flush",
    "FlushKind",
    "HistoryEntry",
    "HistoryEvent",
    "HomeLocked",
    "InvalidExperience",
    "InvalidFilter",
    "InvalidKind",
    "InvalidMetadata",
    "InvalidScope",
    "InvalidSettings",
    "InvalidText",
    "LLMUnavailable",
    "Memory",
    "MemoryKind",
    "MemoryRecord",
    "MemoryStats",
    "NotFound",
    "Outcome",
    "PermissionDenied",
    "PlannedCall",
    "Procedure",
    "ProcedureMatch",
    "ProcedureStatus",
    "ProcedureType",
    "Recall",
    "Reflection",
    "RetrievalSettings",
    "Scope",
    "ScopeSet",
    "SearchHit",
    "SemanticSettings",
    "Settings",
    "Step",
    "ThreadBuffer",
    "Turn",
    "ValidationError",
    "__version__",
    "consolidate_episode",
    "extract_pending",
    "handoff",
    "plan_call",
]
