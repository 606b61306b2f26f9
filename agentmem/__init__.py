"""agentmem: lifelong memory for multi-agent systems.

>>> from agentmem import Memory
>>> with Memory() as mem:                       # doctest: +SKIP
...     mem.add("Alice moved to Lisbon in May", user_id="alice")
...     hits = mem.search("where does Alice live?", user_id="alice")
"""

from __future__ import annotations

from agentmem.context import Context
from agentmem.errors import (
    AgentMemError,
    BackendUnavailable,
    Conflict,
    HomeLocked,
    InvalidFilter,
    InvalidKind,
    InvalidMetadata,
    InvalidScope,
    InvalidSettings,
    InvalidText,
    NotFound,
    PermissionDenied,
    ValidationError,
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
    SearchHit,
)
from agentmem.settings import RetrievalSettings, Settings

__version__ = "0.1.0"

__all__ = [
    "AgentMemError",
    "BackendUnavailable",
    "ChannelScore",
    "Conflict",
    "Context",
    "HistoryEntry",
    "HistoryEvent",
    "HomeLocked",
    "InvalidFilter",
    "InvalidKind",
    "InvalidMetadata",
    "InvalidScope",
    "InvalidSettings",
    "InvalidText",
    "Memory",
    "MemoryKind",
    "MemoryRecord",
    "MemoryStats",
    "NotFound",
    "PermissionDenied",
    "RetrievalSettings",
    "Scope",
    "SearchHit",
    "Settings",
    "ValidationError",
    "__version__",
]
