"""Authorisation: the scope a request may act in, given its API key.

A key is bound to one org and optionally to users and agents. A request names a scope (org,
user, agent, thread); it is allowed when:

- its ``org_id`` is the key's (left out, the key's org is filled in);
- the key names users: its ``user_id`` is one of them (required: leaving it out would read
  every user of the org);
- the key names agents: its ``agent_id`` is one of them (required, for the same reason), so an
  agent key never reads another agent's private memory. A team's shared scope
  (``agent_id="team:<name>"``) is readable by keys that list it.

A refusal is :class:`~agentmem.errors.PermissionDenied` (HTTP 403) saying what the key allows.
"""

from __future__ import annotations

from agentmem.errors import InvalidScope, PermissionDenied
from agentmem.models import Scope
from agentmem_server.keys import ApiKey


def authorise(
    key: ApiKey,
    *,
    org_id: str | None = None,
    user_id: str | None = None,
    agent_id: str | None = None,
    thread_id: str | None = None,
) -> Scope:
    """The scope the request acts in, with the key's org filled in; PermissionDenied if the
    key may not act there. Ids are compared in canonical form (``Scope.of`` normalises them),
    so ``" alice "`` is ``alice`` for the key's bounds exactly as for the store."""
    wanted = Scope.of(
        org_id=key.org_id if org_id is None else org_id,
        user_id=user_id,
        agent_id=agent_id,
        thread_id=thread_id,
    )
    org_id = None if org_id is None else wanted.org_id
    user_id, agent_id, thread_id = wanted.user_id, wanted.agent_id, wanted.thread_id
    key = _canonical(key)
    if org_id is not None and org_id != key.org_id:
        raise PermissionDenied(
            f"API key {key.id} is bound to org {key.org_id!r}, not {org_id!r}; "
            "use a key of that org"
        )
    if key.user_ids and user_id not in key.user_ids:
        raise PermissionDenied(
            f"API key {key.id} may act only for user_id in {list(key.user_ids)}; "
            f"got user_id={user_id!r}"
        )
    if key.agent_ids and agent_id not in key.agent_ids:
        raise PermissionDenied(
            f"API key {key.id} may act only for agent_id in {list(key.agent_ids)}; "
            f"got agent_id={agent_id!r}"
        )
    return Scope.of(org_id=key.org_id, user_id=user_id, agent_id=agent_id, thread_id=thread_id)


def _canonical(key: ApiKey) -> ApiKey:
    """The key with its bounds in canonical form (keys made before ids were normalised)."""

    def canonical(field: str, value: str) -> str:
        try:
            return getattr(Scope.of(**{field: value}), field) or value
        except InvalidScope:  # stored before a rule existed: compared as stored
            return value

    org = canonical("org_id", key.org_id)
    users = tuple(canonical("user_id", u) for u in key.user_ids)
    agents = tuple(canonical("agent_id", a) for a in key.agent_ids)
    if (org, users, agents) == (key.org_id, key.user_ids, key.agent_ids):
        return key
    return key.model_copy(update={"org_id": org, "user_ids": users, "agent_ids": agents})


def may_read(key: ApiKey, scope: Scope) -> bool:
    """Whether a record (or run) in ``scope`` is inside what ``key`` may read."""
    if scope.org_id != key.org_id:
        return False
    if key.user_ids and scope.user_id not in key.user_ids:
        return False
    return not (key.agent_ids and scope.agent_id not in key.agent_ids)


__all__ = ["authorise", "may_read"]
