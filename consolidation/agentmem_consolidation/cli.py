"""``agentmem consolidate`` and ``agentmem jobs``, added through the ``agentmem.cli`` entry
point (the core never imports this package).

::

    agentmem consolidate --now --user alice    # inline, no broker, with a progress bar
    agentmem consolidate --now                 # every scope with new activity
    agentmem consolidate --user alice          # queue it on the Celery workers
    agentmem jobs --limit 20                   # the job ledger
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from agentmem.cli.options import AgentOpt, JsonOpt, OrgOpt, ThreadOpt, UserOpt, sub_app
from agentmem.errors import AgentMemError, HomeLocked
from agentmem.models import Scope
from agentmem.stores._jobs_sql import JobRow
from agentmem_consolidation import ledger
from agentmem_consolidation.pipeline import RunReport, active_scopes, run_inline
from agentmem_consolidation.stages import STAGES

consolidate_app = sub_app(
    "consolidate",
    "Run the consolidation pipeline: --now inline (no broker), else on Celery workers.",
)
jobs_app = sub_app(
    "jobs",
    "The consolidation job ledger (runs, stages, counts, durations, errors).",
)


def _scope(
    user: str | None, agent: str | None, thread: str | None, org: str | None
) -> Scope | None:
    if user is None and agent is None and thread is None and org is None:
        return None
    return Scope.of(org_id=org, user_id=user, agent_id=agent, thread_id=thread)


@consolidate_app.callback()
def consolidate(
    ctx: typer.Context,
    now: Annotated[
        bool, typer.Option("--now", help="Run inline in this process (no broker).")
    ] = False,
    user: UserOpt = None,
    agent: AgentOpt = None,
    thread: ThreadOpt = None,
    org: OrgOpt = None,
) -> None:
    """Consolidate one scope, or every scope with new activity since its last run."""
    from agentmem.cli import fail, memory_for

    try:
        scope = _scope(user, agent, thread, org)
        if not now:
            if scope is None:
                fail("queueing needs a scope (--user ...); or run every active scope with --now")
            _queue(ctx, scope)
            return
        with memory_for(ctx) as mem:
            scopes = [scope] if scope is not None else active_scopes(mem)
            console = Console(stderr=True)
            with Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as progress:
                task = progress.add_task("consolidating", total=len(scopes) * len(STAGES))
                reports: list[RunReport | tuple[Scope, Exception]] = []
                for s in scopes:
                    progress.update(task, description=f"{s}")

                    def advance(name: str, _result: object, s: Scope = s) -> None:
                        progress.update(task, advance=1, description=f"{s}: {name}")

                    # One broken scope must not hold up the others: its run is recorded
                    # failed in the ledger, and the command exits 1 once all have run.
                    try:
                        reports.append(run_inline(mem, s, on_stage=advance))
                    except Exception as exc:
                        reports.append((s, exc))
            out = Console()
            failed = 0
            for r in reports:
                if isinstance(r, tuple):
                    failed += 1
                    line = " ".join(f"{type(r[1]).__name__}: {r[1]}".split())
                    out.print(Text(f"{r[0]}: failed: {line}"), soft_wrap=True)
                    continue
                if r.skipped:
                    out.print(f"{r.scope}: skipped (another run holds the scope)")
                    continue
                summary = ", ".join(
                    f"{n} {res.count_in}->{res.count_out}" for n, res in r.results.items()
                )
                out.print(f"{r.scope}: run {r.run_id} in {r.duration_s:.1f}s ({summary})")
            if not reports:
                out.print("nothing to consolidate: no scope has new activity")
            if failed:
                fail(
                    f"{failed} of {len(reports)} scopes failed to consolidate; "
                    "agentmem jobs shows their errors"
                )
    except AgentMemError as exc:
        fail(str(exc))


def _queue(ctx: typer.Context, scope: Scope) -> None:
    """Queue a run of ``scope`` on the workers, naming this command's store (``--home``,
    ``--store-url``): a worker on another store refuses it rather than consolidate its own.
    The run is recorded ``queued`` in the ledger first, so ``agentmem jobs --run`` shows it
    before a worker starts it (``failed`` if it could not be sent)."""
    from agentmem.cli import settings_for
    from agentmem_consolidation.tasks import consolidate as send

    store = ledger.store_identity(settings_for(ctx))
    run_id = ledger.new_run_id()
    recorded = _record_run(ctx, run_id, scope, ledger.QUEUED)
    try:
        send(scope, run_id=run_id, store=store)
    except Exception as exc:  # whatever it was, nothing was sent: never left `queued`
        if recorded:
            said = str(exc) if isinstance(exc, AgentMemError) else f"{type(exc).__name__}: {exc}"
            _record_run(ctx, run_id, scope, ledger.FAILED, error=f"not queued: {said}")
        raise
    Console().print(Text(f"queued run {run_id} for {scope} on the workers of {store}"))
    if not recorded:
        Console(stderr=True).print(
            Text(
                f"note: the home is busy, so the ledger lists run {run_id} once a worker starts it"
            )
        )


def _record_run(
    ctx: typer.Context, run_id: str, scope: Scope, status: str, error: str | None = None
) -> bool:
    """Write the run row of ``run_id``; False when the store cannot be opened now (an embedded
    home a worker has open: the run is still queued, and recorded when a worker starts it)."""
    from agentmem.cli import memory_for

    try:
        with memory_for(ctx) as mem:
            ledger.record(mem, run_id, ledger.RUN_STAGE, scope, status, error=error)
    except HomeLocked:
        return False
    return True


@jobs_app.callback()
def jobs(
    ctx: typer.Context,
    user: UserOpt = None,
    agent: AgentOpt = None,
    thread: ThreadOpt = None,
    org: OrgOpt = None,
    run: Annotated[
        str | None, typer.Option("--run", help="One run id (any unique prefix).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Rows to show.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Show the job ledger, newest first (full run ids and errors when piped)."""
    from agentmem.cli import fail, memory_for, unique_prefix

    scope = _scope(user, agent, thread, org)
    try:
        with memory_for(ctx) as mem:
            rows = ledger.jobs(mem, scope=scope, run_id=run, limit=limit)
            if run is not None and not rows:  # a prefix: a terminal shows 8 characters
                known = {r.run_id for r in ledger.jobs(mem, scope=scope, limit=100_000)}
                full = unique_prefix(run, known, what="run")
                rows = ledger.jobs(mem, scope=scope, run_id=full, limit=limit) if full else []
    except AgentMemError as exc:
        fail(str(exc))
    if run is not None and not rows:
        fail(
            f"no run {run!r} in the job ledger of this store (of this scope); list runs with "
            "`agentmem jobs`. A queued run is listed from when it is queued, or, queued while "
            "the home was busy, from when a worker starts it"
        )
    _print_jobs(rows, as_json)


def _print_jobs(rows: list[JobRow], as_json: bool) -> None:
    from agentmem.cli import console, dump, id_column, on_terminal, show_id

    def started(row: JobRow) -> datetime:
        return datetime.fromtimestamp(row.started_at, UTC)

    if as_json:
        dump([{**asdict(r), "started_at": started(r).isoformat()} for r in rows])
        return
    table = Table()
    id_column(table, "run")
    for name in ("scope", "stage", "status", "in", "out", "started", "seconds", "error"):
        table.add_column(name)
    for r in rows:
        error = r.error or ""
        table.add_row(
            show_id(r.run_id),
            r.scope,
            r.stage,
            r.status,
            str(r.count_in),
            str(r.count_out),
            started(r).strftime("%Y-%m-%d %H:%M:%S"),
            f"{r.duration_s:.2f}",
            error[:60] if on_terminal() else error,
        )
    console().print(table)


__all__ = ["consolidate_app", "jobs_app"]
