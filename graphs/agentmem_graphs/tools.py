"""LangChain tools a model calls to use memory: :data:`search_memory`, :data:`save_memory`,
:data:`recall_experience` (all three in :data:`MEMORY_TOOLS`).

They run in LangGraph's ``ToolNode``, which hands each call a ``ToolRuntime``: the memory comes
from the graph's store (``compile(store=AgentMemStore(mem))``), the scope from
``config["configurable"]`` (``user_id`` / ``org_id``, ``agent_id``, ``team``). The model only
supplies the query or the text: no argument it can fill names a user, agent or thread, so it
cannot read or write outside the run's scope.

An argument agentmem refuses (an empty query, a text over ``max_text_chars``) comes back to the
model as the tool's result, ``Error: <what was wrong>`` with ``status="error"``, so it can
retry; a misconfigured graph (no scope, no store) still raises.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager

from langchain_core.tools import BaseTool, ToolException, tool
from langgraph.prebuilt import ToolRuntime

from agentmem import InvalidSettings, SearchHit, ValidationError
from agentmem_graphs._memory import RunScope, memory_from


@contextmanager
def _refused_as_tool_error() -> Iterator[None]:
    """Raise agentmem's refusal of the model's arguments as a :class:`ToolException` (which the
    tool hands back to the model); a settings error is the developer's and stays as it is."""
    try:
        yield
    except InvalidSettings:
        raise
    except ValidationError as exc:
        raise ToolException(str(exc)) from exc


def _error_message(error: ToolException) -> str:
    return f"Error: {error}"


def _clamped(k: int, most: int) -> int:
    """The model's ``k`` within ``1..most`` (a model asks for 0, -1 or 1000 as readily as 5)."""
    return max(1, min(int(k), most))


def _call_key(scope: RunScope, tool_call_id: str | None, text: str) -> str | None:
    """The idempotency key of one ``save_memory`` call (None outside a tool call).

    LangGraph runs a tools node again, with the same tool calls, when a run resumes after an
    interrupt in it or retries it: the key (of the thread, the call's id and the text, so a
    provider that reuses call ids in later turns still saves a new fact) makes the repeat
    return the memory the first run stored."""
    if not tool_call_id:
        return None
    call = json.dumps([scope.thread_id, tool_call_id, text])
    return "langgraph:save_memory:" + hashlib.sha256(call.encode()).hexdigest()


def _line(hit: SearchHit) -> str:
    record = hit.record
    when = record.event_time or record.valid_from or record.created_at
    text = " ".join(record.text.split())
    return f"- [{when.date().isoformat()}] {text} ({record.kind.value})"


@tool
def search_memory(query: str, runtime: ToolRuntime, k: int = 5) -> str:
    """Search long-term memory (facts, past conversations, learned procedures) for what is
    relevant to `query`. Returns the best matches, one per line, most relevant first."""
    mem = memory_from(runtime.store, runtime.context)
    scope = RunScope.from_config(runtime.config)
    with _refused_as_tool_error():
        hits = scope.search(mem, query, k=_clamped(k, 20))
    if not hits:
        return "No memories found."
    return "\n".join(_line(h) for h in hits)


@tool
def save_memory(text: str, runtime: ToolRuntime, shared: bool = False) -> str:
    """Save a fact worth remembering in later conversations (a preference, a decision, a
    detail about the user). Write it as one self-contained sentence. `shared=True` shares it
    with your team (when you work in one)."""
    mem = memory_from(runtime.store, runtime.context)
    scope = RunScope.from_config(runtime.config)
    key = _call_key(scope, runtime.tool_call_id, text)
    with _refused_as_tool_error():
        memory_id = scope.save(mem, text, shared=shared, idempotency_key=key)
    where = "your team's memory" if shared and scope.team and scope.agent_id else "memory"
    return f"Saved to {where} (id {memory_id})."


@tool
def recall_experience(task: str, runtime: ToolRuntime, k: int = 3) -> str:
    """Recall what past attempts at tasks like `task` taught: procedures to follow (best
    first) and how similar attempts went."""
    mem = memory_from(runtime.store, runtime.context)
    scope = RunScope.from_config(runtime.config)
    k = _clamped(k, 10)  # the model's k, for the search and the list alike
    with _refused_as_tool_error():
        recall = scope.recall_experience(mem, task, k=k)
    lines: list[str] = []
    if recall.procedures:
        lines.append("Procedures:")
        lines += [
            f"- {m.procedure.text} ({m.procedure.status.value}, "
            f"{m.procedure.successes} successes, {m.procedure.failures} failures)"
            for m in recall.procedures[:k]
        ]
    if recall.experiences:
        lines.append("Past attempts:")
        for m in recall.experiences:
            e = m.experience
            summary = e.reflection.summary if e.reflection else ""
            lines.append(f"- {e.task} -> {e.outcome.value}. {summary}".rstrip())
    return "\n".join(lines) if lines else "No past experience with tasks like this."


MEMORY_TOOLS: tuple[BaseTool, ...] = (search_memory, save_memory, recall_experience)
"""The three memory tools, ready for ``ToolNode`` / ``bind_tools``."""

for _memory_tool in MEMORY_TOOLS:
    _memory_tool.handle_tool_error = _error_message


__all__ = ["MEMORY_TOOLS", "recall_experience", "save_memory", "search_memory"]
