"""LangGraph integration for agentmem (see ``docs/langgraph.md``). Three ways to plug in:

- **store**: :class:`AgentMemStore`, a LangGraph ``BaseStore`` whose items are agentmem
  memories (``graph.compile(store=AgentMemStore(mem))``);
- **nodes and tools**: :func:`recall`, :func:`remember`, :func:`experience` nodes and the
  :data:`search_memory`, :data:`save_memory`, :data:`recall_experience` tools, scoped by
  ``config["configurable"]`` (``user_id`` / ``org_id``, ``agent_id``, ``team``, ``thread_id``);
- **prebuilt graphs**: :func:`create_memory_agent` and :func:`create_team`.
"""

from __future__ import annotations

from agentmem_graphs._memory import CONFIG_KEYS, RunScope
from agentmem_graphs.nodes import (
    MEMORY_TOOL_NAMES,
    MemoryState,
    experience,
    experience_node,
    recall,
    recall_node,
    remember,
    remember_node,
    trajectory,
)
from agentmem_graphs.prebuilt import TeamMember, TeamState, create_memory_agent, create_team
from agentmem_graphs.store import AgentMemSearchItem, AgentMemStore
from agentmem_graphs.tools import MEMORY_TOOLS, recall_experience, save_memory, search_memory

__all__ = [
    "CONFIG_KEYS",
    "MEMORY_TOOLS",
    "MEMORY_TOOL_NAMES",
    "AgentMemSearchItem",
    "AgentMemStore",
    "MemoryState",
    "RunScope",
    "TeamMember",
    "TeamState",
    "create_memory_agent",
    "create_team",
    "experience",
    "experience_node",
    "recall",
    "recall_experience",
    "recall_node",
    "remember",
    "remember_node",
    "save_memory",
    "search_memory",
    "trajectory",
]
