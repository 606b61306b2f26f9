"""Command-line pieces every `agentmem` sub-command shares: the scope and output options, and
how a sub-command app is made. The CLIs of `agentmem`, `consolidation`, `server`, `gpu` and the
security commands import them, so an option reads the same everywhere."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

UserOpt = Annotated[
    str | None,
    typer.Option("--user", "-u", metavar="ID", help="User id of the scope.", show_default=False),
]
AgentOpt = Annotated[
    str | None,
    typer.Option("--agent", "-a", metavar="ID", help="Agent id of the scope.", show_default=False),
]
ThreadOpt = Annotated[
    str | None,
    typer.Option(
        "--thread", "-t", metavar="ID", help="Thread id of the scope.", show_default=False
    ),
]
OrgOpt = Annotated[
    str | None,
    typer.Option("--org", "-o", metavar="ID", help="Org id of the scope.", show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


class _CommandGroup(TyperGroup):
    """A sub-command app's group: when it has no sub-commands (a single command such as
    ``agentmem serve``) its usage line reads ``[OPTIONS]``, not ``[OPTIONS] COMMAND
    [ARGS]...``."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces: list[str] = super().collect_usage_pieces(ctx)
        if not self.commands and self.subcommand_metavar in pieces:
            pieces.remove(self.subcommand_metavar)
        return pieces


def sub_app(name: str, help: str, *, no_args_is_help: bool = False) -> typer.Typer:
    """A sub-command app of `agentmem`: runs its callback when called bare, unless
    ``no_args_is_help`` (a group of commands, which then prints its help)."""
    return typer.Typer(
        name=name,
        help=help,
        cls=_CommandGroup,
        invoke_without_command=not no_args_is_help,
        no_args_is_help=no_args_is_help,
        add_completion=False,
        pretty_exceptions_show_locals=False,
    )


__all__ = ["AgentOpt", "JsonOpt", "OrgOpt", "ThreadOpt", "UserOpt", "sub_app"]
