"""``agentmem forget`` and ``agentmem quarantine``, added through the ``agentmem.cli`` entry
point like the other command groups.

::

    agentmem forget --user alice --reason "account closed"          # every memory of alice
    agentmem forget --user alice --id 1b4e... --id 2c5f... --reason "asked" --purge
    agentmem forget --report --user alice                           # alice's forget reports
    agentmem quarantine list --user alice
    agentmem quarantine approve --user alice 1b4e...
    agentmem quarantine reject --user alice 1b4e...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from agentmem.cli.options import AgentOpt, JsonOpt, OrgOpt, ThreadOpt, UserOpt, sub_app
from agentmem.erasure import ForgetReport
from agentmem.errors import AgentMemError
from agentmem.models import Scope

if TYPE_CHECKING:
    from agentmem.memory import Memory

forget_app = sub_app(
    "forget",
    "Forget memories everywhere they were copied (store, history, indexes, graph, "
    "buffers, adapters); --report lists what earlier forgets removed.",
)
quarantine_app = sub_app(
    "quarantine",
    "Memories from untrusted sources awaiting review: list, approve, reject.",
    no_args_is_help=True,
)


def _scope(user: str | None, agent: str | None, thread: str | None, org: str | None) -> Scope:
    return Scope.of(org_id=org, user_id=user, agent_id=agent, thread_id=thread)


@forget_app.callback()
def forget(
    ctx: typer.Context,
    ids: Annotated[
        list[str] | None,
        typer.Option(
            "--id",
            help="A memory id or unique id prefix to forget (repeatable); none: the whole scope.",
        ),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (kept in the report and the ledger).")
    ] = None,
    purge: Annotated[
        bool, typer.Option("--purge", help="Erase the history too (erasure requests).")
    ] = False,
    report: Annotated[
        bool,
        typer.Option(
            "--report",
            help="Show stored forget reports instead of forgetting (with a scope, only the "
            "forgets asked within it).",
        ),
    ] = False,
    forget_id: Annotated[
        str | None,
        typer.Option("--forget-id", help="With --report: one forget's report (id or prefix)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="With --report: how many.")] = 20,
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="Do not ask before forgetting a whole scope."),
    ] = False,
    user: UserOpt = None,
    agent: AgentOpt = None,
    thread: ThreadOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Forget ``--id`` memories (or every memory of the scope, after a confirmation) with a
    ``--reason``; or show reports with ``--report``."""
    from agentmem.cli import fail, memory_for

    scope = None if not (user or agent or thread or org) else _scope(user, agent, thread, org)
    try:
        with memory_for(ctx) as mem:
            if report:
                _print_reports(_reports(mem, forget_id, scope, limit), as_json)
                return
            if reason is None:
                fail("--reason is required to forget (or pass --report to list reports)")
            if scope is None:
                fail("forget needs a scope: pass --user, --agent, --thread or --org")
            if not ids and not yes:
                typer.confirm(
                    f"Forget every memory of {scope} everywhere it was copied?", abort=True
                )
            wanted = _full_ids(mem, ids or [], scope) or None
            done = mem.forget(wanted, reason=reason, purge=purge, scope=scope)
            _print_reports([done], as_json)
    except AgentMemError as exc:
        fail(str(exc))


def _full_ids(mem: Memory, ids: list[str], scope: Scope) -> list[str]:
    from agentmem.cli import resolve_id

    return [resolve_id(mem, given, scope) for given in ids]


def _reports(
    mem: Memory, forget_id: str | None, scope: Scope | None, limit: int
) -> list[ForgetReport]:
    from agentmem import erasure
    from agentmem.cli import unique_prefix

    if forget_id is None:
        return erasure.reports(mem, scope=scope, limit=limit)
    every = erasure.reports(mem, scope=scope, limit=10_000_000)
    full = unique_prefix(forget_id, (r.forget_id for r in every), what="forget")
    return erasure.reports(mem, forget_id=full or forget_id, scope=scope, limit=limit)


def _print_reports(reports: list[ForgetReport], as_json: bool) -> None:
    from agentmem.cli import console, dump, id_column, show_id

    if as_json:
        dump([r.model_dump(mode="json") for r in reports])
        return
    table = Table()
    id_column(table, "forget")
    for name in ("scope", "status", "reason", "forgotten", "removed", "adapters", "probe"):
        table.add_column(name)
    for r in reports:
        removed = ", ".join(f"{k} {v}" for k, v in sorted(r.removed.items()) if v)
        adapters = ", ".join(
            f"{a['scope_key']} v{a['version']} tainted" for a in r.adapters_tainted
        )
        retrained = ", ".join(
            f"v{x['version']} {'promoted' if x.get('promoted') else 'not promoted'}"
            for x in r.retrained
        )
        probe = (
            "-"
            if r.probe is None
            else f"{r.probe.get('questions', 0)} questions, {r.probe.get('leaks', 0)} leaks"
        )
        table.add_row(
            show_id(r.forget_id),
            r.scope,
            r.status,
            r.reason,
            str(len(r.forgotten_ids)),
            removed or "-",
            "; ".join(x for x in (adapters, retrained) if x) or "-",
            probe,
        )
    console().print(table)


@quarantine_app.command(name="list")
def quarantine_list(
    ctx: typer.Context,
    user: UserOpt = None,
    agent: AgentOpt = None,
    thread: ThreadOpt = None,
    org: OrgOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Held memories (of a scope, or all), oldest first."""
    from agentmem.cli import fail, memory_for

    scope = None if not (user or agent or thread or org) else _scope(user, agent, thread, org)
    try:
        with memory_for(ctx) as mem:
            held = mem.quarantine.list(scope)
    except AgentMemError as exc:
        fail(str(exc))
    from agentmem.cli import console, dump, id_column

    if as_json:
        dump([r.model_dump(mode="json") for r in held])
        return
    table = Table()
    id_column(table)
    for name in ("scope", "source", "flags", "text"):
        table.add_column(name)
    for r in held:
        flags = ", ".join(r.provenance.get("flags", [])) or "-"
        table.add_row(r.id, str(r.scope), str(r.provenance.get("source")), flags, r.text[:80])
    console().print(table)


def _review(ctx: typer.Context, ids: list[str], scope: Scope | None, approve: bool) -> None:
    from agentmem.cli import fail, memory_for, unique_prefix

    try:
        with memory_for(ctx) as mem:
            held = [r.id for r in mem.quarantine.list(scope, limit=100_000)]
            ids = [unique_prefix(given, held, what="held memory") or given for given in ids]
            if approve:
                done = len(mem.quarantine.approve(ids, scope))
            else:
                done = mem.quarantine.reject(ids, scope)
    except AgentMemError as exc:
        fail(str(exc))
    Console().print(f"{'approved' if approve else 'rejected'} {done}")


@quarantine_app.command(name="approve")
def quarantine_approve(
    ctx: typer.Context,
    ids: Annotated[list[str], typer.Argument(help="Ids of held memories (or unique prefixes).")],
    user: UserOpt = None,
    agent: AgentOpt = None,
    thread: ThreadOpt = None,
    org: OrgOpt = None,
) -> None:
    """Store held memories as trusted (indexed, graphed, consolidated from now on)."""
    scope = None if not (user or agent or thread or org) else _scope(user, agent, thread, org)
    _review(ctx, ids, scope, approve=True)


@quarantine_app.command(name="reject")
def quarantine_reject(
    ctx: typer.Context,
    ids: Annotated[list[str], typer.Argument(help="Ids of held memories (or unique prefixes).")],
    user: UserOpt = None,
    agent: AgentOpt = None,
    thread: ThreadOpt = None,
    org: OrgOpt = None,
) -> None:
    """Drop held memories."""
    scope = None if not (user or agent or thread or org) else _scope(user, agent, thread, org)
    _review(ctx, ids, scope, approve=False)


__all__ = ["forget_app", "quarantine_app"]
