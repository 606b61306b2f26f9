"""Arguments the ``agentmem`` commands share: scopes, JSON options and id prefixes."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Annotated, Any, TypedDict

import typer

from agentmem.errors import AmbiguousId, InvalidScope, NotFound, ValidationError
from agentmem.memory import Memory
from agentmem.models import Scope
from agentmem.scoping import ScopeKwargs, optional_scope_of

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
IdArg = Annotated[
    str,
    typer.Argument(
        metavar="ID", help="The memory's id, or any unique prefix of it.", show_default=False
    ),
]

_CANDIDATES_SHOWN = 10


class ScopeArgs(TypedDict):
    """The scope keyword arguments of :class:`~agentmem.Memory`'s methods."""

    org_id: str | None
    user_id: str | None
    agent_id: str | None
    thread_id: str | None


def scope_args(
    user: str | None, agent: str | None, thread: str | None, org: str | None
) -> ScopeArgs:
    """The scope options as keyword arguments (all may be ``None``)."""
    return {"org_id": org, "user_id": user, "agent_id": agent, "thread_id": thread}


def required_scope(
    user: str | None, agent: str | None, thread: str | None, org: str | None
) -> ScopeArgs:
    """The scope options, at least one of which must be given."""
    if user is None and agent is None and thread is None and org is None:
        raise InvalidScope(
            "this command needs a scope: pass at least one of --user, --agent, --thread, --org "
            "(e.g. --user alice)"
        )
    return scope_args(user, agent, thread, org)


def json_option(value: str | None, option: str, error: type[ValidationError]) -> Any:
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


def unique_prefix(given: str, ids: Iterable[str], what: str = "memory") -> str | None:
    """The one id in ``ids`` equal to or starting with ``given``; ``None`` when none does;
    :class:`AmbiguousId` listing the candidates when several do.

    An empty or blank ``given`` (say, an unset shell variable) is refused with
    :class:`ValidationError`: as a prefix it would match every id."""
    if not given.strip():
        raise ValidationError(
            f"pass a {what} id (or the first characters of one); an empty id matches nothing"
        )
    matches = sorted({i for i in ids if i.startswith(given)})
    if given in matches:
        return given
    if len(matches) > 1:
        shown = ", ".join(matches[:_CANDIDATES_SHOWN])
        more = f" and {len(matches) - _CANDIDATES_SHOWN} more" if len(matches) > 10 else ""
        raise AmbiguousId(
            f"{what} id prefix {given!r} matches {len(matches)} ids: {shown}{more}; "
            "pass more characters of the id"
        )
    return matches[0] if matches else None


def resolve_id(mem: Memory, given: str, scope: Scope | ScopeArgs | None = None) -> str:
    """The full id of the stored memory whose id is ``given`` or starts with it, among the
    memories ``scope`` (a Scope, or the scope options) can see when one is given: another
    scope's ids are neither completed nor listed.

    An unknown prefix is returned as given, so the command reports it as not found (and
    ``history`` still finds a deleted memory by its full id)."""
    if not given.strip():
        raise NotFound("pass a memory id (or the first characters of one)")
    store = mem.backends.store
    if scope is None or isinstance(scope, Scope):
        within = scope
    else:  # the scope options, all None when none was given
        within = optional_scope_of(None, ScopeKwargs(**scope))
    if store.get_many([given]):
        return given
    # Ids come back sorted: those starting with the prefix follow it directly.
    following = store.all_ids(after=given, limit=_CANDIDATES_SHOWN + 1)
    candidates = [i for i in following if i.startswith(given)]
    if len(candidates) > _CANDIDATES_SHOWN or within is not None:  # count them all
        candidates = _all_with_prefix(mem, given)
    if within is not None:
        visible = {r.id for r in store.get_many(candidates, within)}
        candidates = [i for i in candidates if i in visible]
    return unique_prefix(given, candidates) or given


def _all_with_prefix(mem: Memory, given: str) -> list[str]:
    found: list[str] = []
    after = given
    while True:
        page = mem.backends.store.all_ids(after=after, limit=1000)
        matching = [i for i in page if i.startswith(given)]
        found += matching
        if len(matching) < len(page) or not page:
            return found
        after = page[-1]
