"""A LangGraph agent with lifelong memory: it fails, learns a procedure, and uses it next time.

``create_memory_agent(model, mem, tools=...)`` builds a tool-calling agent whose every turn goes
through agentmem: ``recall`` puts what the user's memory holds into the prompt, the model and
its tools loop, ``remember`` writes the turn into the thread's short-term buffer, and
``experience`` records how the tool calls went, so the lesson ("log in before booking") is
there in the next conversation. LangGraph's checkpointer keeps each thread's messages;
agentmem keeps memory across threads.

Offline by default, with a scripted chat model (LangChain's ``GenericFakeChatModel``): its
moves are fixed, the memory it is shown is real. With ``AGENTMEM_LLM_MODEL`` set (any litellm
model string) and ``langchain-litellm`` installed, a real model plays the agent instead; a model
that cannot be reached ends the run with one ``error: LLMUnavailable: ...`` line.

Run: ``python examples/langgraph_agent.py``
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import ToolException, tool
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from agentmem import AgentMemError, Memory, MemoryKind
from agentmem.semantic.llm import load_litellm
from agentmem_graphs import create_memory_agent

USER = "maya"
console = Console()


class BookingService:
    """A restaurant booking API with one hidden rule: you must log in before booking."""

    def __init__(self) -> None:
        self.logged_in = False

        @tool
        def login() -> str:
            """Log in to the booking service."""
            self.logged_in = True
            return "logged in as maya"

        @tool
        def book_table(place: str, people: int) -> str:
            """Book a table for `people` at the restaurant `place`."""
            if not self.logged_in:
                raise ToolException("E_AUTH: not logged in")
            return f"booked {place} for {people} at 19:30, confirmation NR-{people}{len(place)}"

        self.tools = [login, book_table]


def step(title: str) -> None:
    console.rule(f"[bold cyan]{title}")


def call(name: str, **args: Any) -> AIMessage:
    return AIMessage(
        "", tool_calls=[{"name": name, "args": args, "id": f"{name}-{time.time_ns()}"}]
    )


def scripted_model() -> BaseChatModel:
    """The offline agent's moves, turn by turn (a real model decides them itself)."""
    return GenericFakeChatModel(
        messages=iter(
            [
                # Monday: it books at once, is refused, logs in, books again.
                call("book_table", place="Nori", people=2),
                call("login"),
                call("book_table", place="Nori", people=2),
                AIMessage("Done: a table for two at Nori, 19:30."),
                # Tuesday, a new thread: the recalled procedure says to log in first.
                call("login"),
                call("book_table", place="Sora", people=4),
                AIMessage("Booked Sora for four at 19:30. No meat dishes needed, noted."),
                # Tuesday, the same thread: it searches memory for Monday.
                call("search_memory", query="restaurant booking Nori"),
                AIMessage("On Monday I booked Nori for two at 19:30."),
            ]
        )
    )


def chosen_model() -> tuple[BaseChatModel, str]:
    name = os.environ.get("AGENTMEM_LLM_MODEL")
    if name:
        try:
            load_litellm()  # offline cost map, no banners, agentmem's local providers
            from langchain_litellm import ChatLiteLLM
        except (ImportError, AgentMemError):
            console.print("[yellow]langchain-litellm is not installed: using the scripted model")
        else:
            return ChatLiteLLM(model=name, temperature=0), f"{name} (litellm)"
    return scripted_model(), "scripted (offline)"


def show_turn(title: str, messages: list[Any]) -> None:
    """The turn's tool calls and results, then the answer."""
    table = Table(title=title)
    for column in ("#", "model called", "result"):
        table.add_column(column)
    results = {m.tool_call_id: m for m in messages if isinstance(m, ToolMessage)}
    n = 0
    for message in messages:
        for tool_call in getattr(message, "tool_calls", None) or []:
            n += 1
            result = results.get(tool_call["id"])
            style = "red" if result is not None and result.status == "error" else "green"
            text = " · ".join(str(result.content).splitlines()) if result is not None else "-"
            args = ", ".join(f"{k}={v!r}" for k, v in tool_call["args"].items())
            table.add_row(str(n), f"{tool_call['name']}({args})", f"[{style}]{text[:90]}")
    console.print(table)
    console.print(f"[bold]answer:[/] {messages[-1].content}")


def run(graph: Any, thread: str, text: str) -> dict[str, Any]:
    config = {"configurable": {"user_id": USER, "thread_id": thread}}
    before = len(graph.get_state(config).values.get("messages", []))
    out: dict[str, Any] = graph.invoke({"messages": [HumanMessage(text)]}, config)
    show_turn(f"thread {thread!r}: {text}", out["messages"][before:])
    return out


def main() -> int:
    try:
        return demo()
    except AgentMemError as exc:  # e.g. a configured model that cannot be reached
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def demo() -> int:
    started = time.perf_counter()
    model, label = chosen_model()
    console.print(Panel.fit(f"LangGraph memory agent; model: {label}", style="bold"))
    with tempfile.TemporaryDirectory() as home, Memory(home=home) as mem:
        mem.add("Maya is vegetarian.", user_id=USER, kind=MemoryKind.SEMANTIC)
        service = BookingService()
        graph = create_memory_agent(
            model,
            mem,
            tools=service.tools,
            prompt="You book restaurants for Maya. Use the tools; be brief.",
        )

        step("1. Monday: the agent books a table and learns the service's rule the hard way")
        run(graph, "monday", "Book a table for two at Nori tonight")

        step("2. what agentmem learned from the run (experience -> procedures)")
        table = Table()
        table.add_column("procedure")
        table.add_column("type")
        for procedure in mem.procedures(user_id=USER):
            table.add_row(procedure.text, procedure.type.value)
        console.print(table)

        step("3. Tuesday, a new thread: the procedure is recalled into the model's prompt")
        service.logged_in = False  # a new session with the service
        out = run(graph, "tuesday", "Book a table for four at Sora")
        console.print(Panel(out["memory_context"], title="memory the model was given"))
        followed = "call `login` before `book_table`" in out["memory_context"]
        console.print(f"procedure recalled for a new task: {followed}")

        step("4. the same thread continues (checkpointer); memory spans threads (agentmem)")
        out = run(graph, "tuesday", "Which restaurant did you book on Monday?")
        console.print(f"messages in thread 'tuesday': {len(out['messages'])}")
        buffered = mem.buffer(thread_id="tuesday", user_id=USER).messages()
        console.print(f"turns in the thread's short-term buffer: {len(buffered)}")
    console.print(f"[green]langgraph agent finished in {time.perf_counter() - started:.1f} s[/]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
