"""``agentmem update``, ``invalidate``, ``delete``, ``history`` and ``links``: change one
memory and see how it changed. Every command takes an id or any unique prefix of one."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from agentmem.cli._app import app, memory_for
from agentmem.cli._args import IdArg, json_option, resolve_id, scope_args
from agentmem.cli._output import console, dump, id_column, row, short, show_id, when
from agentmem.cli.options import AgentOpt, JsonOpt, OrgOpt, ThreadOpt, UserOpt
from agentmem.errors import InvalidMetadata, ValidationError

YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


@app.command()
def update(
    ctx: typer.Context,
    memory_id: IdArg,
    text: Annotated[
        str | None, typer.Option("--text", metavar="TEXT", help="The new text.")
    ] = None,
    metadata: Annotated[
        str | None,
        typer.Option("--metadata", metavar="JSON", help="The new metadata, a JSON object."),
    ] = None,
    importance: Annotated[
        float | None, typer.Option("--importance", metavar="0..1", help="The new importance.")
    ] = None,
    user: UserOpt = None,
    agent: AgentOpt = None,
    thread: ThreadOpt = None,
    org: OrgOpt = None,
) -> None:
    """Write a new version of a memory; the old one stays in its history.

    Example:

        agentmem update 0b6f1c2e --text "Alice moved to Porto"
    """
    meta = json_option(metadata, "--metadata", InvalidMetadata)
    if text is None and meta is None and importance is None:
        raise ValidationError("nothing to change: pass --text, --metadata or --importance")
    with memory_for(ctx) as mem:
        record = mem.update(
            resolve_id(mem, memory_id, scope_args(user, agent, thread, org)),
            text=text,
            metadata=meta,
            importance=importance,
            **scope_args(user, agent, thread, org),
        )
    typer.echo(f"updated {record.id} (version {record.version})")


@app.command()
def invalidate(
    ctx: typer.Context,
    memory_id: IdArg,
    valid_to: Annotated[
        str | None,
        typer.Option(
            "--valid-to",
            metavar="ISO",
            help="When it stopped being true (default now); a time ahead schedules the end.",
        ),
    ] = None,
    user: UserOpt = None,
    agent: AgentOpt = None,
    thread: ThreadOpt = None,
    org: OrgOpt = None,
) -> None:
    """Mark a memory as no longer true: kept, and found by `search --as-of` before then.

    Example:

        agentmem invalidate 0b6f1c2e --valid-to 2024-06-01
    """
    with memory_for(ctx) as mem:
        record = mem.invalidate(
            resolve_id(mem, memory_id, scope_args(user, agent, thread, org)),
            valid_to=valid_to,
            **scope_args(user, agent, thread, org),
        )
    typer.echo(f"invalidated {record.id}")


@app.command()
def delete(
    ctx: typer.Context,
    memory_id: IdArg,
    user: UserOpt = None,
    agent: AgentOpt = None,
    thread: ThreadOpt = None,
    org: OrgOpt = None,
    yes: YesOpt = False,
) -> None:
    """Delete a memory from the store and the index (its history keeps a DELETE entry).

    Example:

        agentmem delete 0b6f1c2e --yes
    """
    scope = scope_args(user, agent, thread, org)
    with memory_for(ctx) as mem:
        record = mem.get(resolve_id(mem, memory_id, scope), **scope)
        if not yes:
            typer.confirm(f"Delete memory {record.id} ({short(record.text, 40)!r})?", abort=True)
        mem.delete(record.id, **scope)
    typer.echo(f"deleted {record.id}")


@app.command()
def history(
    ctx: typer.Context,
    memory_id: IdArg,
    user: UserOpt = None,
    agent: AgentOpt = None,
    thread: ThreadOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show every change to a memory, oldest first (kept after the memory is deleted; a
    deleted memory is found by its full id only).

    Example:

        agentmem history 0b6f1c2e
    """
    with memory_for(ctx) as mem:
        full_id = resolve_id(mem, memory_id, scope_args(user, agent, thread, org))
        entries = mem.history(full_id, **scope_args(user, agent, thread, org))
    if as_json:
        dump([entry.model_dump(mode="json") for entry in entries])
        return
    table = Table(title=Text(f"history of {full_id}"))
    table.add_column("version", justify="right")
    for name in ("event", "at (UTC)", "actor", "old -> new"):
        table.add_column(name)
    for entry in entries:
        old, new = short(entry.old_text, 40), short(entry.new_text, 40)
        change = f"{old} -> {new}" if old and new and old != new else (new or old)
        row(table, str(entry.version), entry.event.value, when(entry.at), entry.actor, change)
    console().print(table)


@app.command()
def links(
    ctx: typer.Context,
    memory_id: IdArg,
    user: UserOpt = None,
    agent: AgentOpt = None,
    thread: ThreadOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A note's typed links, out and in (related, elaborates, contradicts, follows).

    Example:

        agentmem links 0b6f1c2e --user maya
    """
    with memory_for(ctx) as mem:
        scope = scope_args(user, agent, thread, org)
        found = mem.links(resolve_id(mem, memory_id, scope), **scope)
    if as_json:
        dump([link.model_dump(mode="json") for link in found])
        return
    if not found:
        console().print("no links")
        return
    table = Table(title="links")
    table.add_column("direction")
    table.add_column("type")
    id_column(table, "other")
    for name in ("made by", "reason"):
        table.add_column(name)
    for link in found:
        other = link.other_id or (link.target_id if link.direction == "out" else link.source_id)
        cells = (link.made_by, short(link.reason))
        row(table, link.direction, link.type.value, show_id(other), *cells)
    console().print(table)
