"""How every ``agentmem`` command prints: errors, tables, JSON, ids and progress bars.

On a terminal, tables fit its width and ids are shortened to a prefix every command accepts
back; piped or redirected, tables are as wide as their content and ids are printed whole, so
scripts never read a truncated id."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any, NoReturn

import typer
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

TEXT_WIDTH = 60
"""Characters of memory text shown in a table cell."""
ID_WIDTH = 8
"""Characters of an id shown on a terminal (a prefix every id-taking command accepts)."""
_PIPED_WIDTH = 4096  # wide enough that no table cell is cut or wrapped when piped


def on_terminal(*, stderr: bool = False) -> bool:
    """Whether stdout (or stderr) is an interactive terminal."""
    stream = sys.stderr if stderr else sys.stdout
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def console(*, stderr: bool = False) -> Console:
    """A console built per use, so it sees the stream and COLUMNS of this invocation; when the
    stream is not a terminal, tables are never cut to 80 columns."""
    width = None if on_terminal(stderr=stderr) else _PIPED_WIDTH
    return Console(stderr=stderr, highlight=False, width=width)


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and exit with code 1."""
    # One line, no markup parsing: messages quote user input that may contain brackets.
    line = Text("error: ", style="bold red") + Text(" ".join(message.split()), style="red")
    console(stderr=True).print(line, soft_wrap=True)
    raise typer.Exit(code=1)


def show_id(value: str) -> str:
    """An id as a table shows it: a prefix on a terminal, whole when piped."""
    return value[:ID_WIDTH] if on_terminal() else value


def short(text: str | None, width: int = TEXT_WIDTH) -> str:
    """Text on one line, cut to ``width`` characters with an ellipsis."""
    if text is None:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def when(value: datetime | None) -> str:
    """A time as tables show it (UTC, to the second, the year in four digits: "0090-06-01
    00:00:00"), ``-`` when unset."""
    return f"{value.date().isoformat()} {value:%H:%M:%S}" if value is not None else "-"


def row(table: Table, *cells: str) -> None:
    """Add a row of plain text: memory text may contain [brackets] rich would read as markup."""
    table.add_row(*(Text(cell) for cell in cells))


def id_column(table: Table, name: str = "id") -> None:
    """An id column that is never wrapped or cut."""
    table.add_column(name, no_wrap=True, overflow="fold", min_width=ID_WIDTH)


def dump(value: Any) -> None:
    """Print JSON for machines: plain stdout, never wrapped or coloured."""
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def progress() -> Progress:
    """A progress bar on stderr (gone when done), counting items done of the total."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console(stderr=True),
        transient=True,
    )
