"""The one scope argument of every public call: ``scope=Scope(...)`` or the scope keywords.

Each method of :class:`~agentmem.Memory` (and of ``mem.graph`` and ``mem.notes``) accepts the
scope either way::

    mem.search("tea", user_id="alice", thread_id="t-1")
    mem.search("tea", scope=Scope(user_id="alice", thread_id="t-1"))

The keywords are typed once, here (:class:`ScopeKwargs`, spread with ``Unpack``), so a type
checker rejects a misspelt one (``usr_id=``) and a caller holding a :class:`Scope` passes it
as it is instead of spreading its fields back into keywords.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import TypedDict

from agentmem.errors import InvalidScope
from agentmem.models import SCOPE_FIELDS, Scope


class ScopeKwargs(TypedDict, total=False):
    """The scope as keywords: any of them, at least one (``None`` is the same as leaving a
    keyword out)."""

    org_id: str | None
    user_id: str | None
    agent_id: str | None
    thread_id: str | None


def scope_of(scope: Scope | None, fields: ScopeKwargs) -> Scope:
    """The scope a call names, by ``scope=`` or by keywords (one way, not both); a call that
    names none raises :class:`~agentmem.errors.InvalidScope`."""
    found = optional_scope_of(scope, fields)
    if found is None:
        return Scope.of()  # raises InvalidScope, saying which keywords name a scope
    return found


def optional_scope_of(scope: Scope | None, fields: ScopeKwargs) -> Scope | None:
    """As :func:`scope_of`, or None when the call names no scope (reads by id may omit it)."""
    _check_names(fields)
    given = {name: value for name, value in fields.items() if value is not None}
    if scope is not None:
        if not isinstance(scope, Scope):
            raise InvalidScope(
                f"scope must be a Scope, got {type(scope).__name__}; e.g. "
                "scope=Scope(user_id='alice'), or pass user_id='alice' instead"
            )
        if given:
            raise InvalidScope(
                f"pass scope= or the scope keywords, not both (got scope={scope} and "
                f"{', '.join(f'{k}={v!r}' for k, v in given.items())})"
            )
        # A caller's Scope gets the keywords' canonical form (NFC, stripped; dot names and
        # invisible characters refused), so both ways name the same memories.
        return Scope.of(**scope.fields())
    return Scope.of(**fields) if given else None


def _check_names(fields: Mapping[str, object]) -> None:
    unknown = [name for name in fields if name not in SCOPE_FIELDS]
    if unknown:
        close = difflib.get_close_matches(unknown[0], SCOPE_FIELDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        # A TypeError, as Python raises for any unexpected keyword argument.
        raise TypeError(
            f"unexpected keyword argument {unknown[0]!r}{hint}; the scope keywords are "
            f"{', '.join(SCOPE_FIELDS)}"
        )


__all__ = ["ScopeKwargs", "optional_scope_of", "scope_of"]
