"""Who a graph run works for, and the memory operations nodes and tools share.

A run's scope comes from its config, ``config["configurable"]``: ``user_id`` and/or
``org_id`` (at least one), optionally ``agent_id`` and ``team`` (an agent reads its private
and its team's memory, as :meth:`agentmem.Memory.for_agent`), and ``thread_id`` (LangGraph's
thread: the short-term buffer the turns go to). Never from a model's tool arguments, so a
model cannot reach another user's or agent's memory.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.store.base import BaseStore

from agentmem import AgentMemory, Context, Memory, MemoryKind, Scope, SearchHit
from agentmem.agents import team_agent_id
from agentmem.errors import ExtractionFailed, InvalidScope, InvalidSettings, LLMUnavailable
from agentmem.experience import ExperienceAdvice, ExperienceResult
from agentmem.semantic import consolidate_episode
from agentmem.semantic.episodes import render_messages
from agentmem_graphs.store import AgentMemStore

log = logging.getLogger("agentmem_graphs")

CONFIG_KEYS = ("user_id", "org_id", "agent_id", "team", "thread_id")
"""The keys of ``config["configurable"]`` that scope a run's memory."""


@dataclass(frozen=True)
class RunScope:
    """The memory scope of one graph run, read from its config."""

    user_id: str | None = None
    org_id: str | None = None
    agent_id: str | None = None
    team: str | None = None
    thread_id: str | None = None

    @classmethod
    def from_config(cls, config: RunnableConfig | Mapping[str, Any] | None) -> RunScope:
        """The scope named by ``config["configurable"]``: :class:`InvalidScope` without a user
        or org, or with an id that is no valid scope id (a ``thread_id`` LangGraph takes, such
        as ``"maya/monday"``, included), so the first node or tool refuses the run before any
        other tool has run."""
        configurable: Mapping[str, Any] = (config or {}).get("configurable") or {}
        values: dict[str, str | None] = {}
        for key in CONFIG_KEYS:
            value = configurable.get(key)
            if value is not None and not isinstance(value, str):
                if key != "thread_id":
                    raise InvalidScope(
                        f'config["configurable"]["{key}"] must be a string, got '
                        f"{type(value).__name__}"
                    )
                value = str(value)  # LangGraph accepts any thread id; buffers need text
            values[key] = value
        scope = cls(**values)
        if scope.user_id is None and scope.org_id is None:
            raise InvalidScope(
                "this graph's memory needs to know whose memory it is: pass "
                "config={'configurable': {'user_id': 'alice', 'thread_id': 't-1'}} "
                "(or org_id=...) when you invoke it"
            )
        try:
            Scope.of(
                org_id=scope.org_id,
                user_id=scope.user_id,
                agent_id=scope.agent_id,
                thread_id=scope.thread_id,
            )
        except InvalidScope as exc:
            raise InvalidScope(
                f'config["configurable"] holds an id agentmem cannot use: {exc}'
            ) from None
        return scope

    # handles -------------------------------------------------------------------------------

    def agent(self, mem: Memory) -> AgentMemory | None:
        """The agent's handle (private + team scope) when the run names an agent."""
        if self.agent_id is None:
            return None
        return mem.for_agent(
            self.agent_id, user_id=self.user_id, team=self.team, org_id=self.org_id
        )

    def tenant(self) -> Scope:
        """The user / org scope, without agent or thread."""
        return Scope.of(org_id=self.org_id, user_id=self.user_id)

    def writes_to(self, *, shared: bool = False) -> Scope:
        """Where this run's long-term writes go: the agent's private (or team) scope, else the
        user's."""
        if self.agent_id is None:
            return self.tenant()
        agent_id = team_agent_id(self.team) if shared and self.team else self.agent_id
        return Scope.of(org_id=self.org_id, user_id=self.user_id, agent_id=agent_id)

    # reads ---------------------------------------------------------------------------------

    def context(
        self, mem: Memory, query: str, *, max_tokens: int, conversation: bool = False
    ) -> Context:
        """``mem.context`` for ``query`` in this scope (every thread); with ``conversation``,
        the thread's live buffer first."""
        buffer = None
        if conversation and self.thread_id is not None:
            live = Scope.of(**self.writes_to().fields(), thread_id=self.thread_id)
            buffer = mem.buffers.live(live)
        agent = self.agent(mem)
        if agent is not None:
            return agent.context(query, max_tokens=max_tokens, buffer=buffer)
        return mem.context(
            query, max_tokens=max_tokens, buffer=buffer, org_id=self.org_id, user_id=self.user_id
        )

    def feedback(self, mem: Memory, retrieval_id: str, reward: float) -> None:
        """Credit ``reward`` to what the retrieval ``retrieval_id`` showed this run (once:
        feedback is idempotent by retrieval id)."""
        agent = self.agent(mem)
        if agent is not None:
            agent.feedback(retrieval_id, reward)
        else:
            mem.feedback(retrieval_id, reward, org_id=self.org_id, user_id=self.user_id)

    def search(self, mem: Memory, query: str, *, k: int) -> list[SearchHit]:
        """Hybrid search in this scope (an agent: its private and team memory)."""
        agent = self.agent(mem)
        if agent is not None:
            return agent.search(query, k=k)
        return mem.search(query, k=k, org_id=self.org_id, user_id=self.user_id)

    def recall_experience(self, mem: Memory, task: str, *, k: int) -> ExperienceAdvice:
        """Past experiences and procedures for ``task`` in this run's writing scope."""
        scope = self.writes_to()
        return mem.recall_experience(
            task, k, org_id=scope.org_id, user_id=scope.user_id, agent_id=scope.agent_id
        )

    # writes --------------------------------------------------------------------------------

    def save(
        self,
        mem: Memory,
        text: str,
        *,
        shared: bool = False,
        idempotency_key: str | None = None,
    ) -> str:
        """Store a fact the model chose to keep; returns its id. A repeat with the same
        ``idempotency_key`` returns the first write's id and stores nothing."""
        metadata = {"source": "save_memory"}
        agent = self.agent(mem)
        if agent is not None:
            shared = shared and agent.team is not None
            return agent.add(
                text,
                shared=shared,
                kind=MemoryKind.SEMANTIC,
                metadata=metadata,
                idempotency_key=idempotency_key,
            ).id
        return mem.add(
            text,
            kind=MemoryKind.SEMANTIC,
            metadata=metadata,
            idempotency_key=idempotency_key,
            org_id=self.org_id,
            user_id=self.user_id,
        ).id

    def remember_turn(
        self, mem: Memory, messages: Sequence[Mapping[str, str]], *, extract: bool = False
    ) -> None:
        """Write a turn: into the thread's short-term buffer when the run has a thread (it is
        flushed into episodic memory by the buffer), else as one episode. ``extract`` also
        distils facts from it now (LLM when configured, else rules)."""
        agent = self.agent(mem)
        if self.thread_id is not None:
            buffer = (
                agent.buffer(self.thread_id)
                if agent is not None
                else mem.buffer(thread_id=self.thread_id, user_id=self.user_id, org_id=self.org_id)
            )
            for message in messages:
                buffer.append(message["role"], message["content"], message.get("name"))
        else:
            text = render_messages(messages, max_chars=mem.settings.max_text_chars)
            if agent is not None:
                agent.add(text)
            else:
                mem.add(text, org_id=self.org_id, user_id=self.user_id)
        if extract:
            try:
                consolidate_episode(mem, list(messages), scope=self.writes_to())
            except (LLMUnavailable, ExtractionFailed) as exc:
                # The turn is already kept (buffer or episode); facts can be extracted later.
                log.warning("fact extraction failed for a turn in %s: %s", self.writes_to(), exc)

    def record_experience(
        self,
        mem: Memory,
        task: str,
        steps: Sequence[Mapping[str, Any]],
        outcome: str,
        *,
        reward: float | None = None,
        feedback: str | None = None,
        used_procedures: Sequence[str] = (),
    ) -> ExperienceResult:
        """Record an attempt in this run's writing scope (procedures that are not in it are
        not reported as used)."""
        scope = self.writes_to()
        steps = list(steps)[-mem.settings.experience.max_steps :]
        usable = [
            r.id
            for r in mem.backends.store.get_many(list(used_procedures), scope)
            if r.kind is MemoryKind.PROCEDURAL
        ]
        return mem.record_experience(
            task,
            steps,
            outcome,
            reward,
            feedback,
            used_procedures=usable or None,
            org_id=scope.org_id,
            user_id=scope.user_id,
            agent_id=scope.agent_id,
        )


def memory_from(store: BaseStore | None, context: Any = None) -> Memory:
    """The :class:`~agentmem.Memory` a graph runs with: its store's (an
    :class:`AgentMemStore`), else a ``memory`` in its runtime context."""
    if isinstance(store, AgentMemStore):
        return store.memory
    candidate = context.get("memory") if isinstance(context, Mapping) else None
    candidate = candidate or getattr(context, "memory", None) or context
    if isinstance(candidate, Memory):
        return candidate
    raise InvalidSettings(
        "agentmem's nodes and tools need the graph compiled with "
        "store=AgentMemStore(mem) (from graphs), or a runtime context holding memory=mem"
    )


def message_text(message: BaseMessage) -> str:
    """The text of a message (text blocks joined when its content is a list)."""
    content = message.content
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "".join(parts)


def cut_text(mem: Memory, text: str, *, room: int = 0) -> str:
    """``text`` cut to ``max_text_chars`` less ``room`` (kept for what is added to it): what
    the nodes recall for, store or learn from a message over the limit (a pasted report must
    not stop the run; its beginning says what it is about)."""
    return text[: max(mem.settings.max_text_chars - room, 1)]


def query_text(mem: Memory, message: BaseMessage | None) -> str:
    """A user message as a memory query or a task: its text, stripped, cut to
    ``max_text_chars`` (:func:`cut_text`)."""
    text = message_text(message).strip() if message is not None else ""
    return cut_text(mem, text).strip()


def current_turn(messages: Sequence[BaseMessage]) -> tuple[HumanMessage | None, list[BaseMessage]]:
    """The latest user message and every message after it."""
    for position in range(len(messages) - 1, -1, -1):
        message = messages[position]
        if isinstance(message, HumanMessage):
            return message, list(messages[position + 1 :])
    return None, list(messages)


def final_answer(after: Sequence[BaseMessage]) -> AIMessage | None:
    """The last AI message without tool calls: the turn's answer."""
    for message in reversed(after):
        if isinstance(message, AIMessage) and not message.tool_calls:
            return message
    return None


__all__ = [
    "CONFIG_KEYS",
    "RunScope",
    "current_turn",
    "cut_text",
    "final_answer",
    "memory_from",
    "message_text",
    "query_text",
]
