"""agentmem: lifelong memory for multi-agent systems.

>>> from agentmem import Memory
>>> with Memory() as mem:                       # doctest: +SKIP
...     mem.add("Alice moved to Lisbon in May", user_id="alice")
...     hits = mem.search("where does Alice live?", user_id="alice")
"""

from __future__ import annotations

import os
import warnings
from typing import Any

# litellm (imported by agentmem's LLM path, by langchain-litellm or by the user, always after
# this) reads its model cost map from the copy it ships instead of fetching it over the network
# at import: a default only, an explicit LITELLM_LOCAL_MODEL_COST_MAP wins.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from agentmem.agents import AgentMemory, handoff
from agentmem.buffers import Flush, FlushKind, ThreadBuffer, Turn
from agentmem.context import Context
from agentmem.erasure import ForgetReport
from agentmem.errors import (
    AgentMemError,
    AmbiguousId,
    BackendUnavailable,
    Conflict,
    EmbedderMismatch,
    ExtractionFailed,
    GraphCorrupt,
    HomeLocked,
    IndexRefused,
    IndexUnreadable,
    InvalidDataFile,
    InvalidExperience,
    InvalidFilter,
    InvalidKind,
    InvalidLink,
    InvalidMetadata,
    InvalidProfile,
    InvalidScope,
    InvalidSettings,
    InvalidText,
    LLMUnavailable,
    MemoryClosed,
    MemoryDeleted,
    MissingCapability,
    ModelUnavailable,
    NotFound,
    PermissionDenied,
    ProfileSchemaChanged,
    ValidationError,
)
from agentmem.experience import (
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
    plan_call,
)
from agentmem.graph import (
    Community,
    Entity,
    EpisodeLink,
    GraphAPI,
    GraphStats,
    GraphStore,
    Merge,
    Neighbor,
    PathStep,
    Relation,
    TimelineEntry,
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
    ScopeSummary,
    SearchHit,
)
from agentmem.notes import Link, LinkReport, LinkType, NotesAPI
from agentmem.parametric import RecallAnswer
from agentmem.profiles import FieldValue, Profile, ProfileView, UserProfile
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
    ContextSettings,
    ExperienceSettings,
    GraphSettings,
    NotesSettings,
    ProfileSettings,
    RetrievalSettings,
    SemanticSettings,
    Settings,
    UtilitySettings,
)
from agentmem.trust import Quarantine
from agentmem.usefulness import (
    FeedbackResult,
    MemoryUtility,
    PruneChange,
    PruneReport,
    UtilityUpdate,
)

__version__ = "0.1.0"

__all__ = [
    "AgentMemError",
    "AgentMemory",
    "AmbiguousId",
    "AppliedDecision",
    "BackendUnavailable",
    "BufferSettings",
    "ChannelScore",
    "Community",
    "Conflict",
    "Context",
    "ContextSettings",
    "DecisionOp",
    "EmbedderMismatch",
    "Entity",
    "EpisodeLink",
    "Experience",
    "ExperienceAdvice",
    "ExperienceMatch",
    "ExperienceResult",
    "ExperienceSettings",
    "ExtractedFact",
    "ExtractionFailed",
    "ExtractionOutcome",
    "FeedbackResult",
    "FieldValue",
    "Flush",
    "FlushKind",
    "ForgetReport",
    "GraphAPI",
    "GraphCorrupt",
    "GraphSettings",
    "GraphStats",
    "GraphStore",
    "HistoryEntry",
    "HistoryEvent",
    "HomeLocked",
    "IndexRefused",
    "IndexUnreadable",
    "InvalidDataFile",
    "InvalidExperience",
    "InvalidFilter",
    "InvalidKind",
    "InvalidLink",
    "InvalidMetadata",
    "InvalidProfile",
    "InvalidScope",
    "InvalidSettings",
    "InvalidText",
    "LLMUnavailable",
    "Link",
    "LinkReport",
    "LinkType",
    "Memory",
    "MemoryClosed",
    "MemoryDeleted",
    "MemoryKind",
    "MemoryRecord",
    "MemoryStats",
    "MemoryUtility",
    "Merge",
    "MissingCapability",
    "ModelUnavailable",
    "Neighbor",
    "NotFound",
    "NotesAPI",
    "NotesSettings",
    "Outcome",
    "PathStep",
    "PermissionDenied",
    "PlannedCall",
    "Procedure",
    "ProcedureMatch",
    "ProcedureStatus",
    "ProcedureType",
    "Profile",
    "ProfileSchemaChanged",
    "ProfileSettings",
    "ProfileView",
    "PruneChange",
    "PruneReport",
    "Quarantine",
    "RecallAnswer",
    "Reflection",
    "Relation",
    "RetrievalSettings",
    "Scope",
    "ScopeSet",
    "ScopeSummary",
    "SearchHit",
    "SemanticSettings",
    "Settings",
    "Step",
    "ThreadBuffer",
    "TimelineEntry",
    "Turn",
    "UserProfile",
    "UtilitySettings",
    "UtilityUpdate",
    "ValidationError",
    "__version__",
    "consolidate_episode",
    "extract_pending",
    "handoff",
    "plan_call",
]


def __getattr__(name: str) -> Any:
    """``Recall``: the old name of :class:`ExperienceAdvice`, kept for a while (deprecated)."""
    if name == "Recall":
        warnings.warn(
            "agentmem.Recall is deprecated; use ExperienceAdvice",
            DeprecationWarning,
            stacklevel=2,
        )
        return ExperienceAdvice
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
