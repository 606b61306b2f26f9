"""``agentmem add``, ``search``, ``get``, ``list`` and ``stats``: write and read memories."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from agentmem.cli._app import app, memory_for
from agentmem.cli._args import (
    FilterOpt,
    IdArg,
    KindsOpt,
    json_option,
    required_scope,
    resolve_id,
    scope_args,
)
from agentmem.cli._output import console, dump, id_column, row, short, show_id, when
from agentmem.cli.options import AgentOpt, JsonOpt, OrgOpt, ThreadOpt, UserOpt
from agentmem.errors import InvalidFilter, InvalidMetadata, ValidationError

TextArg = Annotated[
    str | None,
    typer.Argument(
        metavar="TEXT", help="The memory's text (- reads it from stdin).", show_default=False
    ),
]
KindOpt = Annotated[
    str,
    typer.Option("--kind", metavar="KIND", help="episodic, semantic, procedural or experience."),
]
MetadataOpt = Annotated[
    str | None,
    typer.Option(
        "--metadata",
        metavar="JSON",
        help='Metadata as a JSON object, e.g. \'{"topic": "travel"}\'.',
    ),
]
EventTimeOpt = Annotated[
    str | None,
    typer.Option(
        "--event-time",
        metavar="ISO",
        help="When it happened, ISO-8601, e.g. 2023-05-08T13:56:00+00:00.",
    ),
]
ImportanceOpt = Annotated[
    float | None,
    typer.Option("--importance", metavar="0..1", help="From 0 to 1 (default 0.5)."),
]
FileOpt = Annotated[
    Path | None,
    typer.Option(
        "--file",
        metavar="PATH",
        help="Add every line of a file instead of TEXT: plain text (one memory a line) or, "
        'for .jsonl files, JSON objects like {"text": "...", "user_id": "maya"}; - reads '
        "plain text from stdin. The options above are the defaults of each line.",
        # Not exists=True: it would refuse "-" (typer ignores allow_dash for a Path); a
        # missing file is reported when it is read.
        dir_okay=False,
        readable=True,
        show_default=False,
    ),
]
InferOpt = Annotated[
    bool,
    typer.Option(
        "--infer",
        help="Also extract facts from it now (rules without an LLM, or the configured LLM).",
    ),
]


@app.command()
def add(
    ctx: typer.Context,
    text: TextArg = None,
    user: UserOpt = None,
    agent: AgentOpt = None,
    thread: ThreadOpt = None,
    org: OrgOpt = None,
    kind: KindOpt = "episodic",
    metadata: MetadataOpt = None,
    event_time: EventTimeOpt = None,
    importance: ImportanceOpt = None,
    infer: InferOpt = False,
    file: FileOpt = None,
) -> None:
    """Store one memory and print its id (or, with --file, every line of a file).

    The memory is durable and searchable when the command returns.

    Example:

        agentmem add "Alice moved to Lisbon in May" --user alice --event-time 2023-05-08
        agentmem add --file notes.jsonl --user alice
    """
    meta = json_option(metadata, "--metadata", InvalidMetadata)
    if file is not None:
        if text is not None:
            raise ValidationError("pass TEXT or --file, not both")
        from agentmem.cli.bulk import FileDefaults, add_file

        defaults = FileDefaults(
            scope=scope_args(user, agent, thread, org),
            kind=kind,
            metadata=meta,
            event_time=event_time,
            importance=importance,
        )
        add_file(ctx, file, defaults, infer=infer)
        return
    if text is None:
        raise ValidationError(
            "pass the memory's TEXT (agentmem add 'Alice moved to Lisbon' --user alice) "
            "or --file PATH"
        )
    if text == "-":  # the shell convention: the text comes from stdin
        text = sys.stdin.read().removeprefix("\ufeff").rstrip("\r\n")
    scope = required_scope(user, agent, thread, org)
    with memory_for(ctx) as mem:
        record = mem.add(
            text,
            **scope,
            kind=kind,
            metadata=meta,
            event_time=event_time,
            importance=importance,
            infer=infer or None,
        )
    typer.echo(record.id)


@app.command()
def search(
    ctx: typer.Context,
    query: Annotated[
        str, typer.Argument(metavar="QUERY", help="What to look for.", show_default=False)
    ],
    user: UserOpt = None,
    agent: AgentOpt = None,
    thread: ThreadOpt = None,
    org: OrgOpt = None,
    k: Annotated[int, typer.Option("-k", "--top", metavar="N", help="How many results.")] = 10,
    kinds: KindsOpt = None,
    filter_json: FilterOpt = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            metavar="ISO",
            help="Answer as of this ISO-8601 time (includes memories invalidated since).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Find the memories in a scope most relevant to a query, best first.

    Example:

        agentmem search "where does Alice live?" --user alice -k 5 --kind episodic
    """
    scope = required_scope(user, agent, thread, org)
    filters = json_option(filter_json, "--filter", InvalidFilter)
    with memory_for(ctx) as mem:
        hits = mem.search(query, **scope, k=k, kinds=kinds or None, filters=filters, as_of=as_of)
    if as_json:
        dump([{"rank": i, **hit.model_dump(mode="json")} for i, hit in enumerate(hits, 1)])
        return
    if not hits:
        console().print("no memories found")
        return
    table = Table(title=Text(f"{len(hits)} result(s) for {query!r}"))
    table.add_column("rank", justify="right")
    table.add_column("score", justify="right")
    id_column(table)
    for name in ("kind", "event time (UTC)", "text"):
        table.add_column(name)
    for rank, hit in enumerate(hits, 1):
        r = hit.record
        cells = (r.kind.value, when(r.event_time), short(r.text))
        row(table, str(rank), f"{hit.score:.4f}", show_id(r.id), *cells)
    console().print(table)


@app.command()
def get(
    ctx: typer.Context,
    memory_id: IdArg,
    user: UserOpt = None,
    agent: AgentOpt = None,
    thread: ThreadOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one memory by id or id prefix (with a scope, only if it belongs to that scope).

    Example:

        agentmem get 0b6f1c2e --json
    """
    with memory_for(ctx) as mem:
        scope = scope_args(user, agent, thread, org)
        record = mem.get(resolve_id(mem, memory_id, scope), **scope)
    data = record.model_dump(mode="json")
    if as_json:
        dump(data)
        return
    table = Table(show_header=False, title=Text(f"memory {record.id}"))
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for field, value in data.items():
        if field == "scope":
            shown = str(record.scope)
        elif isinstance(value, dict):
            shown = json.dumps(value, ensure_ascii=False)
        else:
            shown = "-" if value is None else str(value)
        row(table, field, shown)
    console().print(table)


@app.command(name="list")
def list_(
    ctx: typer.Context,
    user: UserOpt = None,
    agent: AgentOpt = None,
    thread: ThreadOpt = None,
    org: OrgOpt = None,
    kinds: KindsOpt = None,
    limit: Annotated[int, typer.Option("--limit", metavar="N", help="Most memories to show.")] = 20,
    offset: Annotated[int, typer.Option("--offset", metavar="N", help="Skip this many first.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """List the memories in a scope, oldest first, a page at a time.

    Example:

        agentmem list --user alice --limit 50 --offset 50
    """
    scope = required_scope(user, agent, thread, org)
    with memory_for(ctx) as mem:
        records = mem.list(**scope, kinds=kinds or None, limit=limit, offset=offset)
    if as_json:
        dump([r.model_dump(mode="json") for r in records])
        return
    if not records:
        console().print("no memories in this scope" + (" at this offset" if offset else ""))
        return
    table = Table(title=f"memories {offset + 1}-{offset + len(records)}")
    table.add_column("#", justify="right")
    id_column(table)
    for name in ("kind", "created (UTC)", "event time (UTC)", "text"):
        table.add_column(name)
    for n, r in enumerate(records, offset + 1):
        cells = (r.kind.value, when(r.created_at), when(r.event_time), short(r.text))
        row(table, str(n), show_id(r.id), *cells)
    console().print(table)


@app.command()
def stats(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Show how many memories, history entries and indexed vectors there are, and where.

    Example:

        agentmem --home ./.agentmem stats
    """
    with memory_for(ctx) as mem:
        s = mem.stats()
    if as_json:
        dump(s.model_dump(mode="json"))
        return
    table = Table(show_header=False, title="agentmem")
    table.add_column("what", style="bold")
    table.add_column("value")
    row(table, "records", str(s.records))
    for kind, count in sorted(s.by_kind.items()):
        row(table, f"  {kind}", str(count))
    row(table, "history entries", str(s.history_entries))
    row(table, "indexed vectors", "unreadable" if s.index_error else str(s.indexed_vectors))
    row(table, "pending index updates", str(s.pending_index))
    row(table, "store", s.store_url)
    row(table, "vectors", s.vectors_url)
    row(table, "embedder", s.embedder)
    console().print(table)
    if s.index_error:
        typer.echo(f"warning: {s.index_error}", err=True)
    if s.index_incomplete:
        typer.echo(f"warning: {s.index_incomplete}", err=True)
