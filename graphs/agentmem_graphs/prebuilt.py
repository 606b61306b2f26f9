"""Prebuilt graphs: a tool-calling agent whose every turn goes through memory, and a team of
such agents under a supervisor.

:func:`create_memory_agent`::

    START -> recall -> agent <-> tools        (the model, with the recalled memory in its prompt)
                         |
                         v
                      remember -> experience -> END

:func:`create_team`::

    START -> supervisor -> <agent> -> supervisor -> ... -> END

Every agent of a team is a memory agent with ``agent_id=<its name>`` and ``team=<team>``: it
reads its private memory and the team's, writes its turns to its own buffer, and its answer is
shared with the team. LangGraph's thread id (``config["configurable"]["thread_id"]``) is the
short-term buffer's thread; the checkpointer (LangGraph's ``InMemorySaver`` by default) keeps
the graph's state, agentmem keeps memory across threads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage, ToolMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode
from langgraph.runtime import Runtime
from langgraph.types import Checkpointer

from agentmem import Memory
from agentmem.agents import TEAM_PREFIX, team_agent_id
from agentmem.errors import AgentMemError, InvalidScope, InvalidSettings, LLMUnavailable
from agentmem.models import Scope
from agentmem_graphs._memory import (
    RunScope,
    current_turn,
    cut_text,
    final_answer,
    memory_from,
    message_text,
    query_text,
)
from agentmem_graphs.nodes import MemoryState, experience_node, recall_node, remember_node
from agentmem_graphs.store import AgentMemStore
from agentmem_graphs.tools import MEMORY_TOOLS

log = logging.getLogger("agentmem_graphs")

DEFAULT_PROMPT = (
    "You are a helpful assistant with long-term memory. Use what you remember when it helps, "
    "follow the procedures learned from past attempts, and save facts worth keeping."
)
SUPERVISOR = "supervisor"

ToolLike = BaseTool | Callable[..., Any]


def create_memory_agent(
    model: BaseChatModel | Runnable[Any, Any],
    memory: Memory,
    *,
    tools: Sequence[ToolLike] = (),
    memory_tools: bool = True,
    prompt: str | None = None,
    name: str | None = None,
    max_tokens: int = 1500,
    extract: bool = False,
    learn: bool = True,
    checkpointer: Checkpointer | Literal["memory"] = "memory",
    store: AgentMemStore | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """A tool-calling agent whose every turn routes through agentmem: ``recall`` puts the
    memory relevant to the user's message into the prompt, the model and its tools loop,
    ``remember`` writes the turn to the thread's buffer, and ``experience`` (with ``learn``)
    records how the run's tool calls went, so the procedures distilled from it are recalled
    next time.

    ``model`` is any LangChain chat model (tools are bound with ``bind_tools`` when it has
    it); ``tools`` are the task's tools, joined by ``search_memory``, ``save_memory`` and
    ``recall_experience`` unless ``memory_tools=False``. ``prompt`` is the system prompt
    (the memory block is appended to it). ``name`` names the agent's messages and graph.
    ``extract`` distils facts from each turn. ``checkpointer`` defaults to LangGraph's
    ``InMemorySaver`` (pass ``None`` for a graph used inside another). ``store`` defaults to
    ``AgentMemStore(memory)``; it is also the graph's LangGraph store.

    Invoke it with the scope in the config:
    ``graph.invoke({"messages": [...]}, {"configurable": {"user_id": "alice",
    "thread_id": "t-1"}})`` (optionally ``agent_id`` and ``team``).
    """
    store = _store_for(memory, store)
    all_tools: list[ToolLike] = [*tools, *(MEMORY_TOOLS if memory_tools else ())]
    bound = _bind(model, all_tools)

    def agent(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        system = _system(prompt or DEFAULT_PROMPT, state.get("memory_context", ""))
        response = _ask(bound, [SystemMessage(system), *state["messages"]], config, model)
        if not isinstance(response, BaseMessage):
            response = AIMessage(content=str(response))
        if name and isinstance(response, AIMessage) and not response.name:
            response.name = name
        return {"messages": [response]}

    builder = StateGraph(MemoryState)
    builder.add_node("recall", recall_node(max_tokens=max_tokens))
    builder.add_node("agent", agent)
    builder.add_node("remember", remember_node(extract=extract, name=name))
    builder.add_edge(START, "recall")
    builder.add_edge("recall", "agent")
    after_answer: str = "remember"
    if learn:
        builder.add_node("experience", experience_node())
        builder.add_edge("remember", "experience")
        builder.add_edge("experience", END)
    else:
        builder.add_edge("remember", END)
    if all_tools:
        builder.add_node("tools", ToolNode(all_tools, handle_tool_errors=_tool_error))
        builder.add_conditional_edges(
            "agent", _route_tools, {"tools": "tools", after_answer: after_answer}
        )
        builder.add_edge("tools", "agent")
    else:
        builder.add_edge("agent", after_answer)
    return builder.compile(
        checkpointer=InMemorySaver() if checkpointer == "memory" else checkpointer,
        store=store,
        name=name or "memory_agent",
    )


@dataclass(frozen=True)
class TeamMember:
    """One agent of a team: its chat model, its task tools, its system prompt, and what it
    does (shown to the supervisor)."""

    model: BaseChatModel | Runnable[Any, Any]
    tools: Sequence[ToolLike] = field(default_factory=tuple)
    prompt: str | None = None
    description: str = ""


class TeamState(MemoryState):
    """The team's state: the shared conversation and the agent the supervisor chose."""

    next: NotRequired[str | None]


Supervisor = BaseChatModel | Runnable[Any, Any] | Callable[[dict[str, Any]], str | None]


def create_team(
    agents: Mapping[str, TeamMember | BaseChatModel | Runnable[Any, Any]],
    memory: Memory,
    *,
    supervisor: Supervisor | None = None,
    team: str = "team",
    max_turns: int = 6,
    share_answers: bool = True,
    learn: bool = True,
    max_tokens: int = 1500,
    checkpointer: Checkpointer | Literal["memory"] = "memory",
    store: AgentMemStore | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """A supervisor routing a conversation between memory agents that share a team scope.

    Each agent (``name -> TeamMember`` or a bare chat model) runs as
    :func:`create_memory_agent` with ``agent_id=name`` and ``team=team``: it reads its own
    private memory and the team's, never another agent's, and keeps its own buffer and
    experiences. With ``share_answers`` each answer is also written to the team's memory, so
    the others recall it in later threads.

    ``supervisor`` picks who speaks next: ``None`` asks every agent once, in order; a
    function gets the state and returns an agent's name or ``None`` to finish; a chat model
    is given the agents' descriptions and the team's memory and calls the ``route`` tool
    (``{"agent": name}``) or answers to finish; a route naming no agent is sent back to it once
    as the call's error, and if it names none again it answers that it could not hand the
    request on. At most ``max_turns`` agent turns per user message. The scope comes from the
    config, as for :func:`create_memory_agent`.
    """
    if not agents:
        raise InvalidSettings("a team needs at least one agent: create_team({'name': model}, mem)")
    members = {name: _member(name, spec) for name, spec in agents.items()}
    _check_agent_ids(members, team)
    store = _store_for(memory, store)
    builder = StateGraph(TeamState)
    builder.add_node(SUPERVISOR, _supervisor_node(members, supervisor, team, max_turns, max_tokens))
    for name, member in members.items():
        graph = create_memory_agent(
            member.model,
            memory,
            tools=member.tools,
            prompt=member.prompt,
            name=name,
            max_tokens=max_tokens,
            learn=learn,
            checkpointer=None,
            store=store,
        )
        builder.add_node(name, _member_node(name, graph, team, share_answers))
        builder.add_edge(name, SUPERVISOR)
    builder.add_edge(START, SUPERVISOR)
    builder.add_conditional_edges(
        SUPERVISOR,
        lambda state: state.get("next") or END,
        {**{name: name for name in members}, END: END},
    )
    return builder.compile(
        checkpointer=InMemorySaver() if checkpointer == "memory" else checkpointer,
        store=store,
        name=f"team:{team}",
    )


# agent ----------------------------------------------------------------------------------------


def _store_for(memory: Memory, store: AgentMemStore | None) -> AgentMemStore:
    if store is None:
        return AgentMemStore(memory)
    if not isinstance(store, AgentMemStore) or store.memory is not memory:
        raise InvalidSettings(
            "store must be an AgentMemStore over the same Memory (the nodes and tools read "
            "memory from the graph's store)"
        )
    return store


def _bind(model: Any, tools: Sequence[ToolLike]) -> Runnable[Any, Any]:
    """The model with ``tools`` bound (models without tool binding, such as LangChain's fake
    chat models, are used as they are)."""
    if not tools or not hasattr(model, "bind_tools"):
        return model
    try:
        return model.bind_tools(list(tools))
    except NotImplementedError:
        return model


# Exceptions of the libraries a chat model reaches its server through: a model that cannot be
# reached (or refuses) fails the run with one LLMUnavailable naming it, not a client traceback.
_CLIENT_MODULES = ("litellm", "openai", "anthropic", "httpx", "httpcore", "requests", "aiohttp")


def _ask(bound: Runnable[Any, Any], messages: list[Any], config: RunnableConfig, model: Any) -> Any:
    """``bound.invoke(messages)``, with the model client's errors as :class:`LLMUnavailable`."""
    try:
        return bound.invoke(messages, config)
    except AgentMemError:
        raise
    except Exception as exc:
        if not _is_client_error(exc):
            raise
        raise LLMUnavailable(
            f"chat model {_model_name(model)} failed: {type(exc).__name__}: {_first_line(exc)}; "
            "check that its server is running and reachable (api_base) and its key is set"
        ) from exc


def _is_client_error(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    return any(cls.__module__.split(".")[0] in _CLIENT_MODULES for cls in type(exc).__mro__[:-1])


def _model_name(model: Any) -> str:
    name = getattr(model, "model", None) or getattr(model, "model_name", None)
    return repr(name) if isinstance(name, str) and name else type(model).__name__


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else "no message"
    return text if len(text) <= 300 else text[:299] + "…"


def _tool_error(error: Exception) -> str:
    """A failed tool call's message (``status="error"``): the error itself, which is what the
    model needs and what the experience store learns from."""
    return f"Error: {error}"


def _system(prompt: str, memory_context: str) -> str:
    if not memory_context.strip():
        return prompt
    return f"{prompt}\n\n# What you remember\n{memory_context}"


def _route_tools(state: dict[str, Any]) -> str:
    last = state["messages"][-1]
    return "tools" if isinstance(last, AIMessage) and last.tool_calls else "remember"


# team -----------------------------------------------------------------------------------------


def _member(name: str, spec: TeamMember | BaseChatModel | Runnable[Any, Any]) -> TeamMember:
    if not isinstance(name, str) or not name.strip() or name == SUPERVISOR:
        raise InvalidSettings(f"agent names must be non-empty and not {SUPERVISOR!r}: {name!r}")
    if name.startswith(TEAM_PREFIX) or name in (START, END):
        raise InvalidSettings(f"{name!r} is reserved; pick another agent name")
    return spec if isinstance(spec, TeamMember) else TeamMember(model=spec)


def _check_agent_ids(names: Iterable[str], team: str) -> None:
    """Refuse, before anything runs, agent names (and a team name) that are no valid scope
    ids, and two names that are one agent id once normalised (NFC, stripped: ``"writer"`` and
    ``"writer "``), which would share one private memory, buffer and experiences."""
    try:
        Scope.of(agent_id=team_agent_id(team))
    except InvalidScope as exc:
        raise InvalidSettings(f"team={team!r} is not a valid team name: {exc}") from None
    seen: dict[str, str] = {}
    for name in names:
        try:
            agent_id = Scope.of(agent_id=name).agent_id or name
        except InvalidScope as exc:
            raise InvalidSettings(f"agent name {name!r} is not a valid agent id: {exc}") from None
        if agent_id.startswith(TEAM_PREFIX):
            raise InvalidSettings(f"{name!r} is reserved; pick another agent name")
        if agent_id in seen:
            raise InvalidSettings(
                f"agent names {seen[agent_id]!r} and {name!r} are one agent id {agent_id!r} "
                "(agent ids are NFC-normalised and stripped), so they would share one private "
                "memory; rename one of them"
            )
        seen[agent_id] = name


def _member_node(
    name: str, graph: CompiledStateGraph[Any, Any, Any, Any], team: str, share: bool
) -> Callable[..., dict[str, Any]]:
    def run(state: dict[str, Any], config: RunnableConfig, runtime: Runtime) -> dict[str, Any]:
        configurable = {**(config.get("configurable") or {}), "agent_id": name, "team": team}
        before = len(state["messages"])
        out = graph.invoke(
            {"messages": state["messages"]}, {**config, "configurable": configurable}
        )
        answer = final_answer(out["messages"][before:])
        text = message_text(answer) if answer is not None else ""
        if share and text.strip():
            mem = memory_from(runtime.store, runtime.context)
            agent = RunScope.from_config({"configurable": configurable}).agent(mem)
            assert agent is not None
            shared = cut_text(mem, f"{name}: {text}")  # as remember cuts the agent's turn
            agent.add(shared, shared=True, metadata={"source": "team", "agent": name})
        return {"messages": [AIMessage(content=text, name=name)]}

    return run


def _supervisor_node(
    members: Mapping[str, TeamMember],
    supervisor: Supervisor | None,
    team: str,
    max_turns: int,
    max_tokens: int,
) -> Callable[..., dict[str, Any]]:
    route = _route_tool(members)
    bound = _bind(supervisor, [route]) if _is_model(supervisor) else None
    names = {_agent_id(name): name for name in members}

    def decide(state: dict[str, Any], config: RunnableConfig, runtime: Runtime) -> dict[str, Any]:
        question, after = current_turn(state["messages"])
        spoke = [m.name for m in after if isinstance(m, AIMessage) and m.name in members]
        if question is None or len(spoke) >= max_turns:
            return {"next": None}
        if supervisor is None:
            return {"next": next((n for n in members if n not in spoke), None)}
        if bound is None:
            chosen = supervisor(state)  # type: ignore[operator]
            if chosen is not None and _agent_id(chosen) not in names:
                log.warning(
                    "supervisor function chose no agent of the team (%r); finishing", chosen
                )
            return {"next": names.get(_agent_id(chosen))}
        scope = RunScope.from_config(config)
        mem = memory_from(runtime.store, runtime.context)
        query = query_text(mem, question)
        shared = (
            mem.for_agent(SUPERVISOR, user_id=scope.user_id, org_id=scope.org_id, team=team)
            .context(query, max_tokens=max_tokens)
            .text
            if query
            else ""
        )
        messages = [SystemMessage(_system(_team_prompt(members), shared)), *state["messages"]]
        response = _ask(bound, messages, config, supervisor)
        chosen, refused = _routed(response, names)
        if chosen is None and refused:
            # Route back once: the supervisor reads why its call was refused and routes again
            # or answers (neither the call nor the error joins the conversation).
            response = _ask(bound, [*messages, response, *refused], config, supervisor)
            chosen, refused = _routed(response, names)
        if chosen is not None:
            return {"next": chosen}
        text = message_text(response) if isinstance(response, BaseMessage) else str(response)
        if not text.strip() and refused:
            # Never end the user's turn without an answer: say why the team stopped.
            text = _UNROUTED.format(agents=", ".join(members))
        update: dict[str, Any] = {"next": None}
        if text.strip():
            update["messages"] = [AIMessage(content=text, name=SUPERVISOR)]
        return update

    return decide


_UNROUTED = (
    "I could not hand your request to the team: twice I named no agent of it ({agents}). "
    "Please ask again, or say which agent should take it."
)
"""The supervisor's answer when its model routed to no agent, even after being told why."""


def _agent_id(value: Any) -> str | None:
    """An agent name as the agent id it stands for (NFC, stripped, as
    :func:`_check_agent_ids` compares names); None for what names no agent (not a string)."""
    if not isinstance(value, str):
        return None
    try:
        return Scope.of(agent_id=value).agent_id
    except InvalidScope:
        return None


def _routed(response: Any, names: Mapping[str | None, str]) -> tuple[str | None, list[ToolMessage]]:
    """The agent a supervisor's ``route`` call names (``names``: agent id -> name), else None
    and, for each of its tool calls, the error that tells the model what was wrong."""
    refused: list[ToolMessage] = []
    agents = ", ".join(names.values())
    for call in getattr(response, "tool_calls", None) or []:
        args = call.get("args") or {}
        agent = args.get("agent") if isinstance(args, Mapping) else None
        if call["name"] == "route" and _agent_id(agent) in names:
            return names[_agent_id(agent)], []
        log.warning("supervisor asked for an unknown route %r; sending it back", call)
        if call["name"] != "route":
            error = f"there is no tool {call['name']!r}"
        elif isinstance(agent, str):
            error = f"{agent!r} is no agent of this team"
        else:
            error = f"agent must be one agent's name as a string, got {agent!r}"
        refused.append(
            ToolMessage(
                f"Error: {error}; call route with one of: {agents}, or answer the user yourself",
                tool_call_id=call.get("id") or "",
                name=call["name"],
                status="error",
            )
        )
    return None, refused


def _is_model(value: Any) -> bool:
    return isinstance(value, BaseChatModel | Runnable)


def _route_tool(members: Mapping[str, TeamMember]) -> BaseTool:
    def route(agent: str) -> str:
        return agent

    names = ", ".join(members)
    return StructuredTool.from_function(
        route,
        name="route",
        description=f"Hand the conversation to one of the team's agents: {names}.",
    )


def _team_prompt(members: Mapping[str, TeamMember]) -> str:
    lines = [
        "You supervise a team of agents. Call `route` with the agent that should act next, "
        "or answer the user yourself when the work is done. Agents:"
    ]
    lines += [f"- {name}: {m.description or 'an assistant'}" for name, m in members.items()]
    return "\n".join(lines)


__all__ = ["DEFAULT_PROMPT", "TeamMember", "TeamState", "create_memory_agent", "create_team"]
