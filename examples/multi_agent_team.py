"""Two agents, one team: a researcher and a writer share a team scope and keep private notes.

Scripted (no LLM), offline, on the embedded defaults in a temporary home. Each agent gets a
handle from ``mem.for_agent(...)``: it writes to its private scope unless it says
``shared=True``, and reads its own notes plus the team's, never the other agent's. The script
prints what each agent can and cannot see, then hands one private note over with provenance.

Run: ``python examples/multi_agent_team.py``
"""

from __future__ import annotations

import sys
import tempfile
import time

from rich.console import Console
from rich.table import Table

from agentmem import AgentMemory, Memory, MemoryRecord, PermissionDenied, handoff

USER = "maya"  # the person the team works for
TEAM = "city-report"
QUESTION = "What do we know for the report on the city's cycling lanes?"

console = Console()


def step(title: str) -> None:
    console.rule(f"[bold cyan]{title}")


def research(researcher: AgentMemory) -> dict[str, MemoryRecord]:
    """The researcher keeps raw findings private and shares what it has checked."""
    notes = {
        "raw-blog": researcher.add(
            "A cycling blog claims the city built 300 km of lanes; no source given, unverified"
        ),
        "lead": researcher.add("Lead to follow up: the transport office publishes lane data"),
        "lanes": researcher.add(
            "Verified: the city has 142 km of protected cycling lanes (transport office, 2024)",
            shared=True,
            kind="semantic",
        ),
        "growth": researcher.add(
            "Verified: bike trips grew 38% between 2019 and 2024 (city traffic counts)",
            shared=True,
            kind="semantic",
        ),
    }
    console.print("researcher: 2 private notes, 2 verified facts shared with the team")
    return notes


def write(writer: AgentMemory) -> dict[str, MemoryRecord]:
    """The writer keeps its style notes private and shares the outline."""
    notes = {
        "style": writer.add("Style: short paragraphs, no jargon, one figure per section"),
        "outline": writer.add(
            "Outline: 1) lanes today 2) growth in trips 3) what is planned", shared=True
        ),
    }
    console.print("writer: 1 private style note, 1 outline shared with the team")
    return notes


def visibility(agents: dict[str, AgentMemory], notes: dict[str, MemoryRecord]) -> None:
    """A table: which note each agent can read."""
    table = Table(title="who can read what (reads are private scope + team scope)")
    table.add_column("note")
    table.add_column("scope")
    for name in agents:
        table.add_column(name, justify="center")
    for label, record in notes.items():
        cells = []
        for agent in agents.values():
            try:
                agent.get(record.id)
                cells.append("[green]yes[/]")
            except PermissionDenied:
                cells.append("[red]no[/]")
        table.add_row(label, record.scope.agent_id or "-", *cells)
    console.print(table)


def search_as(agent: AgentMemory) -> None:
    hits = agent.search(QUESTION, k=10)
    console.print(f"[bold]{agent.agent_id}[/] searches and finds {len(hits)} memories:")
    for hit in hits:
        owner = hit.record.scope.agent_id
        console.print(f"  - ({owner}) {hit.record.text}")


def main() -> int:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as home, Memory(home=home) as mem:
        researcher = mem.for_agent("researcher", user_id=USER, team=TEAM)
        writer = mem.for_agent("writer", user_id=USER, team=TEAM)

        step("1. each agent works: private notes by default, shared=True for the team")
        notes = {**research(researcher), **write(writer)}

        step("2. what each agent can and cannot see")
        visibility({"researcher": researcher, "writer": writer}, notes)
        search_as(researcher)
        search_as(writer)
        try:
            writer.get(notes["raw-blog"].id)
        except PermissionDenied as exc:
            console.print(f"[yellow]writer cannot see the researcher's raw notes[/]: {exc}")
        try:
            researcher.get(notes["style"].id)
        except PermissionDenied:
            console.print("[yellow]researcher cannot see the writer's style note[/]")

        step("3. a handoff: the researcher passes one private note to the writer")
        (copy,) = handoff(researcher, writer, ids=[notes["lead"].id], note="for section 3")
        console.print(f"writer now has: {copy.text!r}")
        console.print(f"provenance: {copy.provenance}")
        console.print(
            f"the original stays private: writer can read it? "
            f"{writer.can_read(mem.get(notes['lead'].id))}"
        )

        step("4. the writer's context for drafting: its notes and the team's, in budget")
        ctx = writer.context(QUESTION, max_tokens=160)
        console.print(ctx.text)
        console.print(f"({ctx.tokens} tokens of {ctx.max_tokens})")
    console.print(f"[green]team finished in {time.perf_counter() - started:.1f} s[/]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
