"""``agentmem graph export|neighbors|timeline``: look at the knowledge graph built from facts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from agentmem.cli._app import app, memory_for
from agentmem.cli._args import required_scope
from agentmem.cli._output import console, dump, fail, row, short, when
from agentmem.cli.options import AgentOpt, JsonOpt, OrgOpt, ThreadOpt, UserOpt

graph_app = typer.Typer(
    name="graph",
    help="Look at the knowledge graph built from facts: export it, list an entity's neighbours "
    "or its timeline.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(graph_app, name="graph")


@graph_app.command(name="export")
def graph_export(
    ctx: typer.Context,
    format: Annotated[
        str,
        typer.Option("--format", "-f", metavar="FORMAT", help="html, graphml or json."),
    ] = "html",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="PATH",
            # Markdown help: a literal <format> would be read as an HTML tag and dropped.
            help="File to write (default: graph.html, graph.graphml or graph.json, after "
            "--format; '-' prints to stdout).",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    max_nodes: Annotated[
        int, typer.Option("--max-nodes", min=1, metavar="N", help="HTML: most entities drawn.")
    ] = 400,
    user: UserOpt = None,
    agent: AgentOpt = None,
    thread: ThreadOpt = None,
    org: OrgOpt = None,
) -> None:
    """Export a scope's knowledge graph: an interactive HTML page (opens offline), GraphML
    (Gephi, yEd, Cytoscape) or JSON.

    Example:

        agentmem graph export --format html --user alice --out alice.html
    """
    from agentmem.graph import ExportFormat

    scope = required_scope(user, agent, thread, org)
    chosen = ExportFormat.parse(format)
    with memory_for(ctx) as mem:
        text = mem.graph.export(chosen, max_nodes=max_nodes, **scope)
        stats = mem.graph.stats(**scope)
    if out is not None and str(out) == "-":
        typer.echo(text)
        return
    target = out or Path(f"graph.{chosen.value}")
    try:
        partial = target.with_name(target.name + ".partial")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, target)
    except OSError as exc:
        fail(f"cannot write {target}: {exc.strerror or exc}")
    typer.echo(
        f"wrote {target} ({chosen.value}): {stats.entities} entities, {stats.relations} "
        f"relations, {stats.communities} communities"
    )


@graph_app.command(name="neighbors")
def graph_neighbors(
    ctx: typer.Context,
    entity: Annotated[str, typer.Argument(metavar="ENTITY", help="Name, alias or id.")],
    depth: Annotated[int, typer.Option("--depth", min=1, max=5, help="Hops.")] = 1,
    user: UserOpt = None,
    agent: AgentOpt = None,
    thread: ThreadOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the entities related to ENTITY and how.

    Example:

        agentmem graph neighbors Caroline --user alice
    """
    scope = required_scope(user, agent, thread, org)
    with memory_for(ctx) as mem:
        found = mem.graph.neighbors(entity, depth=depth, **scope)
    if as_json:
        dump(
            [
                {
                    "entity": n.entity.name,
                    "predicate": n.relation.predicate,
                    "direction": n.direction,
                    "hops": n.hops,
                    "fact": n.relation.fact,
                }
                for n in found
            ]
        )
        return
    table = Table(title=f"neighbours of {entity}")
    for column in ("hops", "relation", "entity", "fact"):
        table.add_column(column)
    for n in found:
        predicate = n.relation.predicate
        arrow = f"-{predicate}->" if n.direction == "out" else f"<-{predicate}-"
        row(table, str(n.hops), arrow, n.entity.name, short(n.relation.fact))
    console().print(table)


@graph_app.command(name="timeline")
def graph_timeline(
    ctx: typer.Context,
    entity: Annotated[str, typer.Argument(metavar="ENTITY", help="Name, alias or id.")],
    user: UserOpt = None,
    agent: AgentOpt = None,
    thread: ThreadOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The facts about ENTITY in the order they held (ended ones marked).

    Example:

        agentmem graph timeline Caroline --user alice
    """
    scope = required_scope(user, agent, thread, org)
    with memory_for(ctx) as mem:
        entries = mem.graph.timeline(entity, **scope)
    if as_json:
        dump(
            [
                {
                    "id": e.record.id,
                    "text": e.record.text,
                    "valid_from": e.valid_from.isoformat(),
                    "valid_to": e.valid_to.isoformat() if e.valid_to else None,
                    "current": e.current,
                }
                for e in entries
            ]
        )
        return
    table = Table(title=f"timeline of {entity}")
    for column in ("from", "to", "fact"):
        table.add_column(column)
    for e in entries:
        until = when(e.valid_to) if e.valid_to else ("-" if e.current else "ended")
        row(table, when(e.valid_from), until, short(e.record.text))
    console().print(table)
