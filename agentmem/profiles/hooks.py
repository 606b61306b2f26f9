"""The hooks that keep profiles following their facts: after an extraction, a fact rewritten,
invalidated or deleted by hand, and an import (:class:`~agentmem.profiles.api.Profile` does the
revising). None raises for a profile problem: it is logged, and the memory write stands."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import partial

from agentmem.backends import Backends
from agentmem.errors import AgentMemError
from agentmem.models import MemoryKind, MemoryRecord, Scope
from agentmem.profiles.api import Profile, profile_scope
from agentmem.semantic.schema import AppliedDecision, DecisionOp
from agentmem.stores import NoteStore

log = logging.getLogger("agentmem.profiles.api")


def observe_applied(backends: Backends, scope: Scope, applied: Sequence[AppliedDecision]) -> int:
    """Revise the profile of ``scope``'s owner from the decisions an extraction applied (the
    hook of :func:`agentmem.semantic.consolidate_episode`). Never raises for a profile
    problem: it is logged, and the facts stay stored."""
    settings = backends.settings
    if not settings.profile.from_facts or not isinstance(backends.store, NoteStore) or not applied:
        return 0
    if not (scope.user_id or scope.agent_id):
        return 0
    added = [a.memory_id for a in applied if a.op is not DecisionOp.NOOP and a.memory_id]
    ended = [a.target_id for a in applied if a.op is DecisionOp.INVALIDATE and a.target_id]
    found = {r.id: r for r in backends.store.get_many([*added, *ended])}
    llm = None
    if settings.llm_model:
        from agentmem.semantic.llm import LLMClient

        llm = LLMClient.from_settings(settings)
    facts = [found[i] for i in added if i in found]
    gone = [found[i] for i in ended if i in found]
    return _revise(backends, scope, "revised", lambda p: p.observe(facts, gone, llm=llm))


def observe_restated(backends: Backends, fact: MemoryRecord) -> int:
    """Revise the profile of a fact's owner after its text was rewritten by hand (the value
    it gave is replaced, or cleared when the new text gives none). Never raises for a profile
    problem: it is logged, and the fact stays stored."""
    return sum(
        _revise(backends, scope, "revised", partial(Profile.observe, facts=facts))
        for scope, facts in _by_owner(backends, [fact])
    )


def observe_removed(backends: Backends, facts: Sequence[MemoryRecord]) -> int:
    """Revise the profiles of the owners of facts invalidated or deleted by hand (the hook of
    ``invalidate()`` and ``delete()``): a value none of whose facts holds any more is cleared
    and a list item drawn from one is taken out, at once, as :meth:`Profile.refresh` would.
    Never raises for a profile problem: it is logged, and the removal stands."""
    return sum(
        _revise(backends, scope, "revised", partial(Profile.observe, facts=[], ended=ended))
        for scope, ended in _by_owner(backends, facts)
    )


def rebuild_imported(backends: Backends, records: Sequence[MemoryRecord]) -> int:
    """Rebuild (:meth:`Profile.refresh`) the profile of every owner an import brought facts
    for, as the index is rebuilt: an export holds no profile values. Returns how many fields
    changed. Never raises for a profile problem: it is logged, and the records stay imported."""
    return sum(
        _revise(backends, scope, "rebuilt after import", Profile.refresh)
        for scope, _ in _by_owner(backends, records)
    )


def _by_owner(
    backends: Backends, records: Sequence[MemoryRecord]
) -> list[tuple[Scope, list[MemoryRecord]]]:
    """The facts among ``records`` grouped by the profile they feed (a user's, else an
    agent's); none where profiles are not drawn from facts or the store keeps none."""
    if not backends.settings.profile.from_facts or not isinstance(backends.store, NoteStore):
        return []
    owners: dict[str, tuple[Scope, list[MemoryRecord]]] = {}
    for fact in records:
        if fact.kind is MemoryKind.SEMANTIC and (fact.scope.user_id or fact.scope.agent_id):
            owners.setdefault(profile_scope(fact.scope)[1], (fact.scope, []))[1].append(fact)
    return list(owners.values())


def _revise(backends: Backends, scope: Scope, what: str, revise: Callable[[Profile], int]) -> int:
    """``revise`` the profile of ``scope``'s owner; a profile problem is logged instead of
    raised (the memory write it follows stands)."""
    try:
        return revise(Profile(backends, scope))
    except AgentMemError as exc:
        log.warning("profile of %s not %s: %s", scope, what, exc)
        return 0


__all__ = ["observe_applied", "observe_removed", "observe_restated", "rebuild_imported"]
