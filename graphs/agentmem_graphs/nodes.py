"""Memory nodes for any LangGraph graph: ``recall`` before the model, ``remember`` after it,
``experience`` at the end of a run.

Each node is a plain function of ``(state, config, runtime)``: the memory comes from the store
attached at ``compile(store=AgentMemStore(mem))`` (``runtime.store``), the scope from
``config["configurable"]`` (``user_id`` / ``org_id``, ``agent_id``, ``team``, ``thread_id``).
The module-level :func:`recall`, :func:`remember` and :func:`experience` use the defaults;
:func:`recall_node`, :func:`remember_node` and :func:`experience_node` build variants::

    builder = StateGraph(MemoryState)
    builder.add_node("recall", recall)
    builder.add_node("model", call_model)          # reads state["memory_context"]
    builder.add_node("remember", remember)
    builder.add_edge(START, "recall")
    builder.add_edge("recall", "model")
    builder.add_edge("model", "remember")
    graph = builder.compile(store=AgentMemStore(mem), checkpointer=InMemorySaver())
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, NotRequired

from langchain_core.messages import AIMessage, AnyMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import MessagesState
from langgraph.runtime import Runtime

from agentmem import MemoryKind
from agentmem_graphs._memory import (
    RunScope,
    current_turn,
    cut_text,
    final_answer,
    memory_from,
    message_text,
    query_text,
)

MEMORY_TOOL_NAMES: frozenset[str] = frozenset({"search_memory", "save_memory", "recall_experience"})
"""Tool names that are memory operations, not steps of the task (left out of trajectories)."""


class MemoryState(MessagesState):
    """Graph state with the memory the nodes read and write.

    ``memory_context``: the block :func:`recall` assembled for the latest user message;
    ``memory_procedures``: ids of the procedures in it (reported as used when the run's
    experience is recorded); ``outcome`` / ``reward`` / ``feedback``: set them (from a tool,
    a node or the input) to grade the run; :func:`experience` reads and then clears them.
    """

    memory_context: NotRequired[str]
    memory_procedures: NotRequired[list[str]]
    memory_retrieval_id: NotRequired[str | None]
    outcome: NotRequired[str | None]
    reward: NotRequired[float | None]
    feedback: NotRequired[str | None]


Node = Callable[..., dict[str, Any]]


def recall_node(
    *, max_tokens: int = 1500, conversation: bool = False, key: str = "memory_context"
) -> Node:
    """A node that puts ``mem.context(...)`` for the latest user message into ``state[key]``
    (an empty string when there is no user message).

    The block holds the scope's facts, procedures learned from experience, past experiences
    and a timeline of episodes, within ``max_tokens``. The graph's messages already carry the
    conversation, so the thread's live buffer is left out unless ``conversation=True`` (for a
    graph without a checkpointer)."""

    def recall(state: dict[str, Any], config: RunnableConfig, runtime: Runtime) -> dict[str, Any]:
        mem = memory_from(runtime.store, runtime.context)
        scope = RunScope.from_config(config)
        question, _ = current_turn(state.get("messages", []))
        query = query_text(mem, question)
        if not query:
            return {key: "", "memory_procedures": [], "memory_retrieval_id": None}
        ctx = scope.context(mem, query, max_tokens=max_tokens, conversation=conversation)
        procedures = [r.id for r in ctx.records if r.kind is MemoryKind.PROCEDURAL]
        return {
            key: ctx.text,
            "memory_procedures": procedures,
            "memory_retrieval_id": ctx.retrieval_id,
        }

    return recall


def remember_node(*, extract: bool = False, name: str | None = None) -> Node:
    """A node that writes the turn (the latest user message and the answer after it) into
    the thread's short-term buffer (``thread_id`` in the config; without one, as one episode).
    ``extract=True`` also distils facts from the turn now (an LLM when ``llm_model`` is set,
    else agentmem's rules). ``name`` names the assistant in the transcript (default: the
    run's ``agent_id``)."""

    def remember(state: dict[str, Any], config: RunnableConfig, runtime: Runtime) -> dict[str, Any]:
        mem = memory_from(runtime.store, runtime.context)
        scope = RunScope.from_config(config)
        question, after = current_turn(state.get("messages", []))
        answer = final_answer(after)
        room = 200  # for the speaker in a buffer line
        turn: list[dict[str, str]] = []
        if question is not None and message_text(question).strip():
            message = {"role": "user", "content": cut_text(mem, message_text(question), room=room)}
            if question.name:
                message["name"] = question.name
            turn.append(message)
        if answer is not None and message_text(answer).strip():
            message = {
                "role": "assistant",
                "content": cut_text(mem, message_text(answer), room=room),
            }
            speaker = name or answer.name or scope.agent_id
            if speaker:
                message["name"] = speaker
            turn.append(message)
        if turn:
            scope.remember_turn(mem, turn, extract=extract)
        return {}

    return remember


def experience_node(
    *,
    exclude_tools: Collection[str] = MEMORY_TOOL_NAMES,
    learn_from_chat: bool = False,
) -> Node:
    """A node that records the run as an experience (``mem.record_experience``): the task is
    the latest user message, the steps are the tool calls made since (with their results;
    a tool message with ``status="error"`` is a failed step), the outcome is
    ``state["outcome"]`` when set, else ``success`` when the last call of every action
    worked and ``failure`` when one did not. Procedures the recall showed are reported as
    used with that outcome, so rules that keep failing are demoted, then retired.

    A turn without tool calls is a chat, not a task: nothing is recorded unless
    ``learn_from_chat``. Memory tools (``exclude_tools``) are not steps of the task."""

    def experience(
        state: dict[str, Any], config: RunnableConfig, runtime: Runtime
    ) -> dict[str, Any]:
        mem = memory_from(runtime.store, runtime.context)
        scope = RunScope.from_config(config)
        cleared: dict[str, Any] = {
            "outcome": None,
            "reward": None,
            "feedback": None,
            "memory_retrieval_id": None,
        }
        question, after = current_turn(state.get("messages", []))
        task = query_text(mem, question)  # cut as recall cuts it
        steps = trajectory(after, exclude_tools)
        if not task or (not steps and not learn_from_chat):
            return cleared
        if not steps:
            answer = final_answer(after)
            steps = [{"action": "answer", "observation": message_text(answer) if answer else ""}]
        outcome = state.get("outcome") or _judge(steps)
        feedback = state.get("feedback")
        scope.record_experience(
            mem,
            task,
            steps,
            outcome,
            reward=state.get("reward"),
            feedback=cut_text(mem, feedback) if isinstance(feedback, str) else feedback,
            used_procedures=state.get("memory_procedures") or (),
        )
        retrieval_id = state.get("memory_retrieval_id")
        if retrieval_id:
            # What recall showed this run shares its outcome (learned utility).
            reward = state.get("reward")
            if reward is None:
                reward = _OUTCOME_REWARD.get(str(outcome), 0.0)
            low, high = mem.settings.utility.reward_range
            scope.feedback(mem, retrieval_id, min(max(float(reward), low), high))
        return cleared

    return experience


_OUTCOME_REWARD = {"success": 1.0, "partial": 0.0, "failure": -1.0}


def trajectory(
    messages: list[AnyMessage] | list[Any], exclude_tools: Collection[str] = MEMORY_TOOL_NAMES
) -> list[dict[str, Any]]:
    """The steps of a run: each tool call with its arguments and result, in order."""
    results = {m.tool_call_id: m for m in messages if isinstance(m, ToolMessage)}
    steps: list[dict[str, Any]] = []
    for message in messages:
        if not isinstance(message, AIMessage):
            continue
        for call in message.tool_calls:
            if call["name"] in exclude_tools:
                continue
            result = results.get(call.get("id") or "")
            observation = message_text(result) if result is not None else ""
            failed = result is not None and result.status == "error"
            steps.append(
                {
                    "action": call["name"],
                    "args": dict(call.get("args") or {}),
                    "observation": "" if failed else observation,
                    "ok": result is not None and not failed,
                    "error": (observation.removeprefix("Error: ") or "error") if failed else None,
                }
            )
    return steps


def _judge(steps: list[dict[str, Any]]) -> str:
    """``success`` when the last call of every action worked, else ``failure``."""
    last: dict[str, bool] = {}
    for step in steps:
        last[step["action"]] = bool(step["ok"])
    return "success" if all(last.values()) else "failure"


recall = recall_node()
"""The :func:`recall_node` with its defaults."""

remember = remember_node()
"""The :func:`remember_node` with its defaults."""

experience = experience_node()
"""The :func:`experience_node` with its defaults."""


__all__ = [
    "MEMORY_TOOL_NAMES",
    "MemoryState",
    "experience",
    "experience_node",
    "recall",
    "recall_node",
    "remember",
    "remember_node",
    "trajectory",
]
