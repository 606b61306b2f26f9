"""How the forget journal names the scope of a forget, and reads it back (also from rows
journaled in the older ``str(scope)`` form)."""

from __future__ import annotations

import json

from agentmem.models import SCOPE_FIELDS, Scope


def journal_scope_text(scope: Scope) -> str:
    """How the journal keeps a forget's scope: its fields as JSON, which reads back exactly
    (``str(scope)`` is for display only: ids may hold ``,`` and ``=``)."""
    return json.dumps(scope.fields(), sort_keys=True)


def scope_from_journal(text: str) -> Scope | None:
    """The scope a journal row names (:func:`journal_scope_text`); None if it names none."""
    try:
        if text.startswith("{"):
            return Scope.of(**json.loads(text))
        return _legacy_scope(text)
    except (TypeError, ValueError):  # InvalidScope and bad JSON are ValueErrors
        return None


def _legacy_scope(text: str) -> Scope | None:
    """A scope journaled as ``str(scope)`` (before :func:`journal_scope_text`). A part that does not
    start with a field name belongs to the value before it (an id holding ``,``); a field named
    twice or out of order is ambiguous (an id holding ``,user_id=``) and names no scope."""
    fields: dict[str, str] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if sep and name in SCOPE_FIELDS:
            if fields and SCOPE_FIELDS.index(name) <= SCOPE_FIELDS.index(list(fields)[-1]):
                return None
            fields[name] = value
        elif fields:
            last = list(fields)[-1]
            fields[last] = f"{fields[last]},{part}"
        else:
            return None
    return Scope.of(**fields)


__all__ = ["journal_scope_text", "scope_from_journal"]
