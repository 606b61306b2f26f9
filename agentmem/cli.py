"""The ``agentmem`` command line: add, search, inspect, export, import and reindex memory.

Every command opens one :class:`~agentmem.Memory` through :func:`open_memory` (from ``--home``,
``--store-url``, ``--vectors-url`` and the ``AGENTMEM_*`` environment), does its work and closes
it. Errors from agentmem are caught at one boundary (:class:`_ErrorBoundary`) and printed as one
red ``error: ...`` line with exit code 1. ``--help`` touches neither the disk nor the model.

::

    agentmem add "Alice moved to Lisbon in May" --user alice
    agentmem search "where does Alice live?" --user alice
    agentmem export backup.jsonl && agentmem --home ./restored import backup.jsonl
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypedDict

import typer
from pydantic import ValidationError as PydanticValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from agentmem.cli_options import AgentOpt, JsonOpt, OrgOpt, ThreadOpt, UserOpt
from agentmem.errors import (
    AgentMemError,
    InvalidFilter,
    InvalidMetadata,
    InvalidScope,
    ValidationError,
    first_message,
)
from agentmem.memory import Memory
from agentmem.models import MemoryRecord
from agentmem.settings import Settings
from agentmem.validation import check_text

_TEXT_WIDTH = 60
_ID_WIDTH = 8
_IMPORT_BATCH = 500


class _ErrorBoundary(TyperGroup):
    """The one place agentmem errors become ``error: <message>`` and exit code 1."""

    def invoke(self, ctx: Any) -> Any:  # typer's own (vendored) click Context
        try:
            return super().invoke(ctx)
        except AgentMemError as exc:
            _fail(str(exc))

    # Plugin command groups load when they are called (or listed by --help), never on import:
    # `agentmem search` does not pay for the server's, Celery's or torch's imports.
    def list_commands(self, ctx: Any) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(_plugin_entries()))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in _plugin_entries():
            command = typer.main.get_command(_load_plugin(cmd_name))
            command.name = cmd_name
            self.add_command(command, cmd_name)
        return command


def _console(*, stderr: bool = False) -> Console:
    """A console built per use, so it sees the stream and COLUMNS of this invocation."""
    return Console(stderr=stderr, highlight=False)


def _fail(message: str) -> NoReturn:
    # One line, no markup parsing: messages quote user input that may contain brackets.
    line = Text("error: ", style="bold red") + Text(" ".join(message.split()), style="red")
    _console(stderr=True).print(line, soft_wrap=True)
    raise typer.Exit(code=1)


app = typer.Typer(
    name="agentmem",
    cls=_ErrorBoundary,
    help=(
        "Lifelong memory for agents: add, search and inspect memories from the shell.\n\n"
        "Backends come from --home / --store-url / --vectors-url, else the AGENTMEM_* "
        "environment, else the embedded default in ./.agentmem."
    ),
    epilog="Example: agentmem add 'Alice moved to Lisbon' --user alice",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


# memory factory ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Options:
    """The global options, kept until a command needs a Memory (``--help`` never does)."""

    home: Path | None
    store_url: str | None
    vectors_url: str | None

    def settings(self) -> Settings:
        overrides: dict[str, Any] = {}
        if self.home is not None:
            overrides["home"] = self.home
        if self.store_url is not None:
            overrides["store_url"] = self.store_url
        if self.vectors_url is not None:
            overrides["vectors_url"] = self.vectors_url
        return Settings.load(**overrides)


def open_memory(settings: Settings) -> Memory:
    """Open the Memory a command works on. The one place the CLI builds one (tests replace
    it to share a loaded embedder)."""
    return Memory(settings=settings)


def _settings(ctx: typer.Context) -> Settings:
    options = ctx.find_object(_Options)
    if options is None:  # a command invoked without the group (should not happen)
        options = _Options(home=None, store_url=None, vectors_url=None)
    return options.settings()


@contextmanager
def _memory(ctx: typer.Context) -> Iterator[Memory]:
    with open_memory(_settings(ctx)) as mem:
        yield mem


@app.callback()
def main(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            metavar="PATH",
            help="Embedded home directory (SQLite + Qdrant Edge). "
            "Default: $AGENTMEM_HOME, else ./.agentmem",
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    store_url: Annotated[
        str | None,
        typer.Option(
            "--store-url",
            metavar="URL",
            help="System of record, e.g. postgresql://user@host/db (default: SQLite in home)",
            show_default=False,
        ),
    ] = None,
    vectors_url: Annotated[
        str | None,
        typer.Option(
            "--vectors-url",
            metavar="URL",
            help="Vector index, e.g. http://localhost:6333 (default: Qdrant Edge in home)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Lifelong memory for agents: add, search and inspect memories from the shell."""
    # Only remember the options: opening backends here would run for `cmd --help` too.
    ctx.obj = _Options(home=home, store_url=store_url, vectors_url=vectors_url)


# shared options ------------------------------------------------------------------------------

KindsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--kind",
        metavar="KIND",
        help="Only this kind (episodic, semantic, procedural, experience); repeatable.",
        show_default=False,
    ),
]
FilterOpt = Annotated[
    str | None,
    typer.Option(
        "--filter",
        metavar="JSON",
        help='Metadata filter as JSON, e.g. \'{"topic": {"$in": ["work", "travel"]}}\'.',
        show_default=False,
    ),
]


class _ScopeArgs(TypedDict):
    org_id: str | None
    user_id: str | None
    agent_id: str | None
    thread_id: str | None


def _scope(user: str | None, agent: str | None, thread: str | None, org: str | None) -> _ScopeArgs:
    return {"org_id": org, "user_id": user, "agent_id": agent, "thread_id": thread}


def _required_scope(
    user: str | None, agent: str | None, thread: str | None, org: str | None
) -> _ScopeArgs:
    if user is None and agent is None and thread is None and org is None:
        raise InvalidScope(
            "this command needs a scope: pass at least one of --user, --agent, --thread, --org "
            "(e.g. --user alice)"
        )
    return _scope(user, agent, thread, org)


def _json_option(value: str | None, option: str, error: type[ValidationError]) -> Any:
    """Parse a JSON option value, raising ``error`` with the option name on bad JSON."""
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise error(
            f"{option} is not valid JSON ({exc.msg} at column {exc.colno}); "
            f"""e.g. {option} '{{"topic": "travel"}}'"""
        ) from None


# formatting ----------------------------------------------------------------------------------


def _short(text: str | None, width: int = _TEXT_WIDTH) -> str:
    if text is None:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


def _row(table: Table, *cells: str) -> None:
    """Add a row of plain text: memory text may contain [brackets] rich would read as markup."""
    table.add_row(*(Text(cell) for cell in cells))


def _dump(value: Any) -> None:
    """Print JSON for machines: plain stdout, never wrapped or coloured."""
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_console(stderr=True),
        transient=True,
    )


# commands ------------------------------------------------------------------------------------


@app.command()
def add(
    ctx: typer.Context,
    text: Annotated[
        str, typer.Argument(metavar="TEXT", help="The memory's text.", show_default=False)
    ],
    user: UserOpt = None,
    agent: AgentOpt = None,
    thread: ThreadOpt = None,
    org: OrgOpt = None,
    kind: Annotated[
        str,
        typer.Option(
            "--kind", metavar="KIND", help="episodic, semantic, procedural or experience."
        ),
    ] = "episodic",
    metadata: Annotated[
        str | None,
        typer.Option(
            "--metadata",
            metavar="JSON",
            help='Metadata as a JSON object, e.g. \'{"topic": "travel"}\'.',
        ),
    ] = None,
    event_time: Annotated[
        str | None,
        typer.Option(
            "--event-time",
            metavar="ISO",
            help="When it happened, ISO-8601, e.g. 2023-05-08T13:56:00+00:00.",
        ),
    ] = None,
    importance: Annotated[
        float | None,
        typer.Option("--importance", metavar="0..1", help="From 0 to 1 (default 0.5)."),
    ] = None,
) -> None:
    """Store one memory and print its id.

    The memory is durable and searchable when the command returns.

    Example:

        agentmem add "Alice moved to Lisbon in May" --user alice --event-time 2023-05-08
    """
    scope = _required_scope(user, agent, thread, org)
    meta = _json_option(metadata, "--metadata", InvalidMetadata)
    with _memory(ctx) as mem:
        record = mem.add(
            text,
            **scope,
            kind=kind,
            metadata=meta,
            event_time=event_time,
            importance=importance,
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
    scope = _required_scope(user, agent, thread, org)
    filters = _json_option(filter_json, "--filter", InvalidFilter)
    with _memory(ctx) as mem:
        hits = mem.search(query, **scope, k=k, kinds=kinds or None, filters=filters, as_of=as_of)
    if as_json:
        _dump([{"rank": i, **hit.model_dump(mode="json")} for i, hit in enumerate(hits, 1)])
        return
    if not hits:
        _console().print("no memories found")
        return
    table = Table(title=Text(f"{len(hits)} result(s) for {query!r}"))
    table.add_column("rank", justify="right")
    table.add_column("score", justify="right")
    table.add_column("id", no_wrap=True)
    table.add_column("kind")
    table.add_column("event time (UTC)")
    table.add_column("text")
    for rank, hit in enumerate(hits, 1):
        r = hit.record
        _row(
            table,
            str(rank),
            f"{hit.score:.4f}",
            r.id[:_ID_WIDTH],
            r.kind.value,
            _when(r.event_time),
            _short(r.text),
        )
    _console().print(table)


@app.command()
def get(
    ctx: typer.Context,
    memory_id: Annotated[str, typer.Argument(metavar="ID", help="The memory's id.")],
    user: UserOpt = None,
    agent: AgentOpt = None,
    thread: ThreadOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one memory by id (with a scope, only if it belongs to that scope).

    Example:

        agentmem get 0b6f1c2e-1d2a-4c55-9a4e-3f0f8f9f2a10 --json
    """
    with _memory(ctx) as mem:
        record = mem.get(memory_id, **_scope(user, agent, thread, org))
    data = record.model_dump(mode="json")
    if as_json:
        _dump(data)
        return
    table = Table(show_header=False, title=Text(f"memory {record.id}"))
    table.add_column("field", style="bold")
    table.add_column("value")
    for field, value in data.items():
        if field == "scope":
            shown = str(record.scope)
        elif isinstance(value, dict):
            shown = json.dumps(value, ensure_ascii=False)
        else:
            shown = "-" if value is None else str(value)
        _row(table, field, shown)
    _console().print(table)


@app.command()
def history(
    ctx: typer.Context,
    memory_id: Annotated[str, typer.Argument(metavar="ID", help="The memory's id.")],
    user: UserOpt = None,
    agent: AgentOpt = None,
    thread: ThreadOpt = None,
    org: OrgOpt = None,
) -> None:
    """Show every change to a memory, oldest first (kept after the memory is deleted).

    Example:

        agentmem history 0b6f1c2e-1d2a-4c55-9a4e-3f0f8f9f2a10
    """
    with _memory(ctx) as mem:
        entries = mem.history(memory_id, **_scope(user, agent, thread, org))
    table = Table(title=Text(f"history of {memory_id}"))
    table.add_column("version", justify="right")
    table.add_column("event")
    table.add_column("at (UTC)")
    table.add_column("actor")
    table.add_column("old -> new")
    for entry in entries:
        old, new = _short(entry.old_text, 40), _short(entry.new_text, 40)
        change = f"{old} -> {new}" if old and new and old != new else (new or old)
        _row(table, str(entry.version), entry.event.value, _when(entry.at), entry.actor, change)
    _console().print(table)


@app.command()
def delete(
    ctx: typer.Context,
    memory_id: Annotated[str, typer.Argument(metavar="ID", help="The memory's id.")],
    user: UserOpt = None,
    agent: AgentOpt = None,
    thread: ThreadOpt = None,
    org: OrgOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a memory from the store and the index (its history keeps a DELETE entry).

    Example:

        agentmem delete 0b6f1c2e-1d2a-4c55-9a4e-3f0f8f9f2a10 --yes
    """
    scope = _scope(user, agent, thread, org)
    with _memory(ctx) as mem:
        record = mem.get(memory_id, **scope)
        if not yes:
            typer.confirm(f"Delete memory {record.id} ({_short(record.text, 40)!r})?", abort=True)
        mem.delete(memory_id, **scope)
    typer.echo(f"deleted {record.id}")


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
    scope = _required_scope(user, agent, thread, org)
    with _memory(ctx) as mem:
        records = mem.list(**scope, kinds=kinds or None, limit=limit, offset=offset)
    if as_json:
        _dump([r.model_dump(mode="json") for r in records])
        return
    if not records:
        _console().print("no memories in this scope" + (" at this offset" if offset else ""))
        return
    table = Table(title=f"memories {offset + 1}-{offset + len(records)}")
    table.add_column("#", justify="right")
    table.add_column("id", no_wrap=True)
    table.add_column("kind")
    table.add_column("created (UTC)")
    table.add_column("event time (UTC)")
    table.add_column("text")
    for n, r in enumerate(records, offset + 1):
        _row(
            table,
            str(n),
            r.id[:_ID_WIDTH],
            r.kind.value,
            _when(r.created_at),
            _when(r.event_time),
            _short(r.text),
        )
    _console().print(table)


@app.command()
def stats(ctx: typer.Context) -> None:
    """Show how many memories, history entries and indexed vectors there are, and where.

    Example:

        agentmem --home ./.agentmem stats
    """
    with _memory(ctx) as mem:
        s = mem.stats()
    table = Table(show_header=False, title="agentmem")
    table.add_column("what", style="bold")
    table.add_column("value")
    _row(table, "records", str(s.records))
    for kind, count in sorted(s.by_kind.items()):
        _row(table, f"  {kind}", str(count))
    _row(table, "history entries", str(s.history_entries))
    _row(table, "indexed vectors", str(s.indexed_vectors))
    _row(table, "pending index updates", str(s.pending_index))
    _row(table, "store", s.store_url)
    _row(table, "vectors", s.vectors_url)
    _row(table, "embedder", s.embedder)
    _console().print(table)


@app.command(name="export")
def export_(
    ctx: typer.Context,
    path: Annotated[
        Path,
        typer.Argument(
            metavar="PATH.jsonl",
            help="File to write (replaced if it exists).",
            dir_okay=False,
            show_default=False,
        ),
    ],
) -> None:
    """Write every memory, in every scope, to a JSON Lines file (one record per line).

    Ids, times and versions are kept, so `agentmem import` restores them exactly.

    Example:

        agentmem export backup.jsonl
    """
    partial = path.with_name(path.name + ".partial")
    written = 0
    with _memory(ctx) as mem:
        total = mem.stats().records
        try:
            with partial.open("w", encoding="utf-8") as out, _progress() as progress:
                task = progress.add_task("exporting", total=total)
                for record in mem.export():
                    out.write(_json_line(record.model_dump(mode="json")))
                    written += 1
                    progress.advance(task)
            os.replace(partial, path)
        except OSError as exc:
            _fail(f"cannot write {path}: {exc.strerror or exc}")
        finally:
            partial.unlink(missing_ok=True)
    typer.echo(f"exported {written} records to {path}")


# Characters str.splitlines() breaks on that json.dumps leaves raw: escape them so every
# JSON Lines reader sees one record per line.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _json_line(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False).translate(_LINE_BREAKS) + "\n"


def _read_records(path: Path, max_chars: int) -> list[MemoryRecord]:
    """Every record of an export file, validated; the first bad line raises, naming it."""
    records: list[MemoryRecord] = []
    first_line: dict[str, int] = {}
    try:
        with path.open("rb") as src:
            for number, raw in enumerate(src, 1):
                record = _parse_line(raw, max_chars, f"{path} line {number}")
                if record is None:
                    continue
                if record.id in first_line:
                    raise ValidationError(
                        f"{path} line {number}: record id {record.id!r} already appears on line "
                        f"{first_line[record.id]}; nothing was imported"
                    )
                first_line[record.id] = number
                records.append(record)
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror or exc}")
    return records


def _parse_line(raw: bytes, max_chars: int, where: str) -> MemoryRecord | None:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(f"{where}: not UTF-8 text; nothing was imported") from None
    if not line.strip():
        return None
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); nothing was imported"
        ) from None
    try:
        record = MemoryRecord.model_validate(data)
        check_text(record.text, max_chars=max_chars)
    except PydanticValidationError as exc:
        raise ValidationError(
            f"{where}: not a memory record ({first_message(exc)}); nothing was imported"
        ) from None
    except AgentMemError as exc:
        raise ValidationError(f"{where}: {exc}; nothing was imported") from None
    return record


@app.command(name="import")
def import_(
    ctx: typer.Context,
    path: Annotated[
        Path,
        typer.Argument(
            metavar="PATH.jsonl",
            help="A file written by `agentmem export`.",
            exists=True,
            dir_okay=False,
            readable=True,
            show_default=False,
        ),
    ],
    batch_size: Annotated[
        int,
        typer.Option("--batch-size", min=1, metavar="N", help="Records stored per transaction."),
    ] = _IMPORT_BATCH,
) -> None:
    """Restore memories from `agentmem export` (same ids, times and versions).

    The whole file is checked first: a malformed line is reported with its number and nothing
    is imported. Records whose id is already present are skipped, so importing twice is safe.

    Example:

        agentmem --home ./restored import backup.jsonl
    """
    settings = _settings(ctx)
    records = _read_records(path, settings.max_text_chars)
    inserted = 0
    with open_memory(settings) as mem, _progress() as progress:
        task = progress.add_task("importing", total=len(records))
        for start in range(0, len(records), batch_size):
            batch = records[start : start + batch_size]
            inserted += mem.import_records(batch)
            progress.advance(task, len(batch))
    skipped = len(records) - inserted
    typer.echo(f"imported {inserted} records, skipped {skipped} already present (from {path})")


@app.command()
def reindex(
    ctx: typer.Context,
    rebuild: Annotated[
        bool,
        typer.Option("--rebuild", help="Drop every indexed vector first, then index everything."),
    ] = False,
    graph: Annotated[
        bool,
        typer.Option(
            "--graph",
            help="Rebuild the knowledge graph from the stored facts instead (e.g. after "
            "'the stored knowledge graph ... is corrupt').",
        ),
    ] = False,
) -> None:
    """Rebuild the vector index from the store (the store is the truth).

    Use it after losing or moving the vectors directory, or after changing the vector backend.
    With --graph, rebuild the knowledge graph of every scope from the facts instead.

    Example:

        agentmem reindex --rebuild
        agentmem reindex --graph
    """
    if graph:
        with _memory(ctx) as mem, _progress() as progress:
            progress.add_task("rebuilding the knowledge graph", total=None)
            report = mem.graph.rebuild()
        typer.echo(
            f"rebuilt the knowledge graph of {report.partitions} scope(s) from "
            f"{report.facts} facts: {report.entities} entities, {report.relations} relations "
            f"in {report.seconds:.1f} s"
        )
        return
    with _memory(ctx) as mem:
        before = mem.stats()
        with _progress() as progress:
            progress.add_task("reindexing", total=None)
            indexed = mem.reindex(rebuild=rebuild)
        after = mem.stats()
    typer.echo(
        f"reindexed {indexed} of {after.records} records; "
        f"vectors {before.indexed_vectors} -> {after.indexed_vectors}"
    )


# evaluation ----------------------------------------------------------------------------------


@app.command(name="eval")
def eval_(
    ctx: typer.Context,
    kind: Annotated[
        str,
        typer.Argument(
            metavar="KIND",
            help="locomo, locomo-observations, longmemeval, or small (the set shipped with "
            "agentmem)",
            show_default=False,
        ),
    ],
    path: Annotated[
        Path | None,
        typer.Argument(
            metavar="[PATH]",
            help="The data file (not needed for small)",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    k: Annotated[
        str, typer.Option("--k", metavar="K,K", help="Cut-offs for recall@k and hit@k.")
    ] = "1,5,10",
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            min=1,
            help="Only the first N scopes (conversations, questions).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="FILE",
            help="Also write the results as JSON here.",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    use_home: Annotated[
        bool,
        typer.Option(
            "--use-home",
            help="Replay into the home of --home / AGENTMEM_HOME (kept afterwards) instead of "
            "a temporary one that is deleted.",
        ),
    ] = False,
    baselines: Annotated[
        bool, typer.Option("--baselines/--no-baselines", help="Also score dense-only and BM25.")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Measure search on a data set: replay it into fresh scopes, ask its questions, and report
    recall@k, hit@k and NDCG@10 per category, beside dense-only and BM25 in the same run.

    Nothing is written to your home unless --use-home is given.

    Example:

        agentmem eval small
        agentmem eval locomo locomo10.json --limit 2 --out locomo.json
    """
    from agentmem.evaluation import load_dataset, metric_names, run_eval

    try:
        ks = sorted({int(part) for part in k.split(",") if part.strip()})
    except ValueError:
        ks = []
    if not ks or min(ks) < 1:
        raise ValidationError(f"--k takes positive integers separated by commas, got {k!r}")
    data = load_dataset(kind, path, limit=limit)
    settings = _settings(ctx)
    with contextlib.ExitStack() as stack:
        if not use_home:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="agentmem-eval-"))
            # The embedded defaults in a temporary home, whatever else AGENTMEM_* says.
            settings = Settings.load(home=Path(tmp), store_url=None, vectors_url=None)
        mem = stack.enter_context(open_memory(settings))
        with _progress() as progress:
            adding = progress.add_task("adding memories", total=data.memories)
            asking = progress.add_task("asking questions", total=data.questions)

            def advance(stage: str, n: int) -> None:
                progress.advance(adding if stage == "add" else asking, n)

            report = run_eval(mem, data, ks=ks, baselines=baselines, progress=advance)
    result = report.to_dict()
    if out is not None:
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if as_json:
        _dump(result)
        return
    console = _console()
    shown = metric_names(ks)
    table = Table(
        title=f"{kind}: {result['dataset']['questions']} questions, "
        f"{report.memories} memories in {report.scopes} scopes"
    )
    for name in ("category", "questions", "system", *shown):
        table.add_column(name, justify="left" if name in ("category", "system") else "right")
    systems = result["systems"]
    first = next(iter(systems.values()))
    for category in first:
        for n, (system, means) in enumerate(systems.items()):
            label = (category, f"{first[category]['questions']:.0f}") if n == 0 else ("", "")
            _row(table, *label, system, *(f"{means[category][m]:.3f}" for m in shown))
        table.add_section()
    console.print(table)
    for note in report.notes:
        console.print(Text(f"note: {note}"))
    if out is not None:
        console.print(Text(f"wrote {out}"))


# knowledge graph ---------------------------------------------------------------------------

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
            help="File to write (default: graph.<format>; '-' prints to stdout).",
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

    scope = _required_scope(user, agent, thread, org)
    chosen = ExportFormat.parse(format)
    with _memory(ctx) as mem:
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
        _fail(f"cannot write {target}: {exc.strerror or exc}")
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
    scope = _required_scope(user, agent, thread, org)
    with _memory(ctx) as mem:
        found = mem.graph.neighbors(entity, depth=depth, **scope)
    if as_json:
        _dump(
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
        _row(table, str(n.hops), arrow, n.entity.name, _short(n.relation.fact))
    _console().print(table)


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
    scope = _required_scope(user, agent, thread, org)
    with _memory(ctx) as mem:
        entries = mem.graph.timeline(entity, **scope)
    if as_json:
        _dump(
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
        until = _when(e.valid_to) if e.valid_to else ("-" if e.current else "ended")
        _row(table, _when(e.valid_from), until, _short(e.record.text))
    _console().print(table)


# plugins -----------------------------------------------------------------------------------

PLUGIN_GROUP = "agentmem.cli"
"""Entry-point group of command groups other packages add (``gpu`` adds ``adapters``)."""


def settings_for(ctx: typer.Context) -> Settings:
    """The settings a plugin command works with (the global options applied)."""
    return _settings(ctx)


@contextmanager
def memory_for(ctx: typer.Context) -> Iterator[Memory]:
    """The Memory a plugin command works on, closed when the block ends."""
    with _memory(ctx) as mem:
        yield mem


def fail(message: str) -> NoReturn:
    """Print ``error: message`` and exit with code 1 (for plugin commands)."""
    _fail(message)


@functools.cache
def _plugin_entries() -> dict[str, Any]:
    """Installed plugin command groups by name (their entry points, not yet loaded)."""
    return {entry.name: entry for entry in entry_points(group=PLUGIN_GROUP)}


def _load_plugin(name: str) -> typer.Typer:
    entry = _plugin_entries()[name]
    try:
        group: typer.Typer = entry.load()
    except (ImportError, AttributeError) as exc:  # installed but broken: say so on use
        group = _broken_plugin(entry.name, entry.value, exc)
    return group


def _broken_plugin(name: str, value: str, exc: Exception) -> typer.Typer:
    broken = typer.Typer(help=f"(unavailable: {exc})", invoke_without_command=True)

    @broken.callback()
    def unavailable() -> None:
        _fail(
            f"the {name!r} commands ({value}) cannot load: {exc}; reinstall the extra that "
            f"provides them (e.g. pip install 'agentmem[gpu]')"
        )

    return broken


__all__ = [
    "PLUGIN_GROUP",
    "AgentOpt",
    "JsonOpt",
    "OrgOpt",
    "ThreadOpt",
    "UserOpt",
    "app",
    "fail",
    "memory_for",
    "open_memory",
    "settings_for",
]


if __name__ == "__main__":
    app()
