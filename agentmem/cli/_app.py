"""The ``agentmem`` group itself: the error boundary, the global options, the Memory factory
and the lazy plugin command groups. The command modules beside it add their commands to
:data:`app`."""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from agentmem.cli._output import fail
from agentmem.errors import AgentMemError
from agentmem.memory import Memory
from agentmem.settings import Settings

PLUGIN_GROUP = "agentmem.cli"
"""Entry-point group of command groups other packages add (``agentmem_gpu`` adds ``adapters``)."""


class _ErrorBoundary(TyperGroup):
    """The one place agentmem errors become ``error: <message>`` and exit code 1."""

    def invoke(self, ctx: Any) -> Any:  # typer's own (vendored) click Context
        try:
            return super().invoke(ctx)
        except AgentMemError as exc:
            fail(str(exc))

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
    ``agentmem.cli.open_memory`` to share a loaded embedder)."""
    return Memory(settings=settings)


def settings_for(ctx: typer.Context) -> Settings:
    """The settings a command works with (the global options applied)."""
    options = ctx.find_object(_Options)
    if options is None:  # a command invoked without the group (should not happen)
        options = _Options(home=None, store_url=None, vectors_url=None)
    return options.settings()


def open_configured(settings: Settings) -> Memory:
    """Open a Memory through ``agentmem.cli.open_memory``, looked up at call time so a
    replacement set on the package reaches every command module."""
    package = sys.modules.get("agentmem.cli")
    factory = getattr(package, "open_memory", open_memory)
    memory: Memory = factory(settings)
    return memory


@contextmanager
def memory_for(ctx: typer.Context) -> Iterator[Memory]:
    """The Memory a command works on, closed when the block ends."""
    with open_configured(settings_for(ctx)) as mem:
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


# plugins -----------------------------------------------------------------------------------


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
        fail(
            f"the {name!r} commands ({value}) cannot load: {exc}; reinstall the extra that "
            f"provides them (e.g. pip install 'agentmem[gpu]')"
        )

    return broken
