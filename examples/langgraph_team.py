"""A LangGraph team with shared and private memory: a supervisor routes between a researcher
and a writer.

``create_team({"researcher": ..., "writer": ...}, mem, supervisor=..., team="city-report")``
builds a supervisor graph whose agents are memory agents with ``agent_id=<name>`` and
``team="city-report"``: each reads its private memory and the team's (never the other agent's
private notes), saves with the ``save_memory`` tool (``shared=True`` for the team), and each
answer is shared with the team, so a later conversation starts from what the team knows.

Offline by default, with scripted chat models (LangChain's ``GenericFakeChatModel``): their
moves are fixed, the memory they read and write is real. With ``AGENTMEM_LLM_MODEL`` set and
``langchain-litellm`` installed, a real model plays every role.

Run: ``python examples/langgraph_team.py``
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from agentmem import AgentMemError, Memory
from agentmem.semantic.llm import load_litellm
from agentmem_graphs import TeamMember, create_team

USER = "maya"
TEAM = "city-report"
console = Console()


def step(title: str) -> None:
    console.rule(f"[bold cyan]{title}")


def call(name: str, **args: Any) -> AIMessage:
    return AIMessage(
        "", tool_calls=[{"name": name, "args": args, "id": f"{name}-{time.time_ns()}"}]
    )


def scripted(*moves: AIMessage | str) -> BaseChatModel:
    return GenericFakeChatModel(messages=iter(moves))


def scripted_roles() -> dict[str, BaseChatModel]:
    """Each role's moves across the two conversations below."""
    return {
        "supervisor": scripted(
            call("route", agent="researcher"),
            call("route", agent="writer"),
            "The note is ready: see the writer's draft above.",
            call("route", agent="writer"),
            "Answered from the team's memory.",
        ),
        "researcher": scripted(
            call("save_memory", text="A blog claims 300 km of lanes; unverified, no source"),
            call(
                "save_memory",
                text="Verified: the city has 142 km of protected cycling lanes (2024)",
                shared=True,
            ),
            "Verified: 142 km of protected lanes (transport office, 2024).",
        ),
        "writer": scripted(
            call("save_memory", text="Style: short paragraphs, one figure per section"),
            "Draft: The city now has 142 km of protected cycling lanes.",
            call("search_memory", query="how many km of cycling lanes"),
            "The team verified 142 km of protected lanes.",
        ),
    }


def real_roles(name: str) -> dict[str, BaseChatModel] | None:
    try:
        load_litellm()  # offline cost map, no banners, agentmem's local providers
        from langchain_litellm import ChatLiteLLM
    except (ImportError, AgentMemError):
        console.print("[yellow]langchain-litellm is not installed: using scripted models")
        return None
    return {
        role: ChatLiteLLM(model=name, temperature=0)
        for role in ("supervisor", "researcher", "writer")
    }


def conversation(graph: Any, thread: str, text: str) -> None:
    config = {"configurable": {"user_id": USER, "thread_id": thread}}
    out = graph.invoke({"messages": [HumanMessage(text)]}, config)
    table = Table(title=f"thread {thread!r}")
    table.add_column("who")
    table.add_column("said")
    for message in out["messages"]:
        table.add_row(message.name or message.type, str(message.content))
    console.print(table)


def visibility(mem: Memory) -> None:
    """Every memory of the user, and which agent can read it."""
    agents = {
        name: mem.for_agent(name, user_id=USER, team=TEAM) for name in ("researcher", "writer")
    }
    table = Table(title="who can read what (private scope + team scope)")
    table.add_column("memory")
    table.add_column("scope")
    for name in agents:
        table.add_column(name, justify="center")
    for record in mem.list(user_id=USER, kinds=["semantic", "episodic"], limit=100):
        cells = ["[green]yes[/]" if a.can_read(record) else "[red]no[/]" for a in agents.values()]
        table.add_row(record.text[:70], record.scope.agent_id or "-", *cells)
    console.print(table)


def main() -> int:
    try:
        return demo()
    except AgentMemError as exc:  # e.g. a configured model that cannot be reached
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def demo() -> int:
    started = time.perf_counter()
    name = os.environ.get("AGENTMEM_LLM_MODEL")
    roles, label = scripted_roles(), "scripted (offline)"
    if name and (real := real_roles(name)) is not None:
        roles, label = real, f"{name} (litellm)"
    console.print(Panel.fit(f"LangGraph team with shared memory; models: {label}", style="bold"))
    with tempfile.TemporaryDirectory() as home, Memory(home=home) as mem:
        graph = create_team(
            {
                "researcher": TeamMember(
                    roles["researcher"],
                    prompt="You research facts. Save raw leads privately, verified facts shared.",
                    description="finds and verifies facts",
                ),
                "writer": TeamMember(
                    roles["writer"],
                    prompt="You write short, clear notes from the team's verified facts.",
                    description="drafts the text",
                ),
            },
            mem,
            supervisor=roles["supervisor"],
            team=TEAM,
        )

        step("1. a conversation: the supervisor routes researcher -> writer")
        conversation(graph, "monday", "Prepare a short note on the city's cycling lanes")

        step("2. memory after it: private notes stay private, the team's is shared")
        visibility(mem)

        step("3. a new thread: the writer answers from the team's memory")
        conversation(graph, "tuesday", "How many km of cycling lanes does the city have?")
        writer = mem.for_agent("writer", user_id=USER, team=TEAM)
        ctx = writer.context("How many km of cycling lanes?", max_tokens=200)
        console.print(Panel(ctx.text, title="what the writer recalls (its own + the team's)"))
        sees_raw = "300 km" in ctx.text
        console.print(f"the writer sees the researcher's unverified lead? {sees_raw}")
    console.print(f"[green]langgraph team finished in {time.perf_counter() - started:.1f} s[/]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
