"""Routes for inspecting and correcting memory: who the key is, which scopes it sees, a
memory's links and utility, how search ranks, invalidation, forgetting, quarantine review,
forget reports (with retrain probes), procedures and the consolidation ledger of a scope.

They are ordinary ``/v1`` routes (same keys, same scope rules, same errors); the ``/ui`` page
calls them and nothing else, so whatever the page shows a client can fetch.
"""

from __future__ import annotations

import itertools
from typing import Annotated

from fastapi import APIRouter, Query

from agentmem import erasure
from agentmem.erasure import ForgetReport
from agentmem.errors import ValidationError
from agentmem.experience.models import Procedure
from agentmem.models import MemoryRecord, Scope, ScopeSet, ScopeSummary
from agentmem.notes import Link
from agentmem.usefulness import FeedbackResult, utilities
from agentmem_server.auth import authorise
from agentmem_server.deps import Key, QueryScope, State
from agentmem_server.http_errors import CONFLICT, UNAVAILABLE
from agentmem_server.keys import ApiKey
from agentmem_server.routes_tiers import _require
from agentmem_server.schemas import JobInfo
from agentmem_server.schemas_inspect import (
    FeedbackRequest,
    ForgetRequest,
    InvalidateRequest,
    KeyInfo,
    QuarantineDecision,
    RankingInfo,
    Rejected,
    UtilityInfo,
)

router = APIRouter(prefix="/v1", tags=["inspect"])


def readable(key: ApiKey) -> Scope | ScopeSet:
    """Everything ``key`` may read, as one query scope: its org, narrowed to its users and
    agents when it names any."""
    pairs = list(itertools.product(key.user_ids or (None,), key.agent_ids or (None,)))
    scopes = [Scope.of(org_id=key.org_id, user_id=u, agent_id=a) for u, a in pairs]
    return scopes[0] if len(scopes) == 1 else ScopeSet.of(*scopes)


@router.get("/whoami", summary="The calling API key")
def get_whoami(key: Key) -> KeyInfo:
    """The key's id, name, org and the users and agents it is bound to (never its secret)."""
    return KeyInfo(
        key_id=key.id,
        name=key.name,
        org_id=key.org_id,
        user_ids=list(key.user_ids),
        agent_ids=list(key.agent_ids),
    )


@router.get("/scopes", summary="Scopes holding memories")
def list_scopes(key: Key, app: State) -> list[ScopeSummary]:
    """Every scope the key may read that holds memories, with counts by kind."""
    return app.memory.backends.store.scope_summaries(readable(key))


@router.get("/memories/{memory_id}/links", summary="Links of a memory")
def get_memory_links(memory_id: str, scope: QueryScope, app: State) -> list[Link]:
    """The memory's typed links (out and in), with who made each and why."""
    return app.memory.links(memory_id, scope=scope)


@router.get("/memories/{memory_id}/utility", summary="Learned utility of a memory")
def get_memory_utility(memory_id: str, scope: QueryScope, app: State) -> UtilityInfo:
    """How useful feedback says the memory was (None until a reward reached it)."""
    app.memory.get(memory_id, scope=scope)  # 404 outside the scope
    found = utilities(app.memory, [memory_id], scope).get(memory_id)
    if found is None:
        return UtilityInfo(memory_id=memory_id)
    return UtilityInfo(memory_id=memory_id, utility=found.utility, count=found.count)


@router.post("/feedback", tags=["memories"], summary="Reward the memories that served a task")
def give_feedback(body: FeedbackRequest, key: Key, app: State) -> FeedbackResult:
    """Report how a task went (``reward`` within ``utility.reward_range``, default [-1, 1]):
    each memory of the retrieval (or of ``ids``) moves its learned utility toward the reward,
    and search re-ranks by it. Idempotent by ``feedback_id`` (default: the retrieval id): a
    repeat answers ``applied: false`` and changes nothing."""
    scope = authorise(key, **body.scope_kwargs())
    target: str | list[str] | None = body.retrieval_id if body.ids is None else body.ids
    if target is None or (body.retrieval_id is not None and body.ids is not None):
        raise ValidationError(
            "pass either retrieval_id (from a search hit or a context) or ids (the memories "
            "that served the task), not both and not neither"
        )
    return app.memory.feedback(
        target, body.reward, task=body.task, feedback_id=body.feedback_id, scope=scope
    )


@router.post("/memories/{memory_id}/invalidate", summary="Invalidate a memory", responses=CONFLICT)
def invalidate_memory(
    memory_id: str, body: InvalidateRequest, key: Key, app: State
) -> MemoryRecord:
    """Mark a fact as no longer true: kept, listed with ``include_invalidated`` and found
    by ``search(as_of=...)`` before ``valid_to``; its history gains an INVALIDATE entry. A
    ``valid_to`` still ahead schedules the end: the fact stays valid until then."""
    scope = authorise(key, **body.scope_kwargs())
    return app.memory.invalidate(memory_id, valid_to=body.valid_to, scope=scope)


@router.get("/search/ranking", tags=["memories"], summary="How search ranks")
def explain_ranking(key: Key, app: State) -> RankingInfo:
    """The fusion settings that turn each hit's channel ranks into its score."""
    del key  # any valid key may read the server's ranking settings
    settings = app.memory.settings
    return RankingInfo(
        weights=dict(settings.retrieval.weights),
        rrf_k=settings.retrieval.rrf_k,
        dense_gap_ranks=settings.retrieval.dense_gap_ranks,
        candidates=settings.retrieval.candidates,
        mmr_lambda=settings.retrieval.mmr_lambda,
        utility_enabled=settings.utility.enabled,
        utility_weight=settings.utility.weight,
        utility_confidence_k=settings.utility.confidence_k,
    )


@router.post("/forget", summary="Forget memories everywhere", responses=CONFLICT)
def forget_memories(body: ForgetRequest, key: Key, app: State) -> ForgetReport:
    """Forget ``ids`` (or with ``whole_scope`` every memory of the scope) and all derived
    from them: store, indexes, graph, quarantine, buffers; adapters trained on them are
    tainted. Returns the report (ids and counts, never the forgotten text)."""
    scope = authorise(key, **body.scope_kwargs())
    if (body.ids is None) == (not body.whole_scope):
        raise ValidationError(
            "pass either ids (the memories to forget) or whole_scope=true (every memory of "
            "the scope), not both and not neither"
        )
    return app.memory.forget(body.ids, reason=body.reason, purge=body.purge, scope=scope)


@router.get("/forget/reports", summary="Forget reports of a scope")
def list_forget_reports(
    scope: QueryScope, app: State, limit: Annotated[int, Query(ge=1, le=1000)] = 20
) -> list[ForgetReport]:
    """The forgets asked for within the scope, newest first: what each removed (ids and
    counts), the adapters it tainted, the clean retrains and the leak probe's result per
    adapter (``probe.adapters``: version, questions, leaks, passed). Never forgotten text."""
    return erasure.reports(app.memory, scope=scope, limit=limit)


@router.get("/quarantine", tags=["quarantine"], summary="Held writes of a scope")
def list_quarantine(
    scope: QueryScope, app: State, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[MemoryRecord]:
    """Memories from untrusted sources (or flagged as prompt injection) awaiting review."""
    return app.memory.quarantine.list(scope, limit=limit)


@router.post(
    "/quarantine/approve", tags=["quarantine"], summary="Release held writes", responses=CONFLICT
)
def approve_quarantined(body: QuarantineDecision, key: Key, app: State) -> list[MemoryRecord]:
    """Store held memories as trusted writes (indexed, in the graph, consolidated)."""
    scope = authorise(key, **body.scope_kwargs())
    return app.memory.quarantine.approve(body.ids, scope)


@router.post(
    "/quarantine/reject", tags=["quarantine"], summary="Drop held writes", responses=CONFLICT
)
def reject_quarantined(body: QuarantineDecision, key: Key, app: State) -> Rejected:
    """Drop held memories; they were never stored, indexed or trained on."""
    scope = authorise(key, **body.scope_kwargs())
    return Rejected(rejected=app.memory.quarantine.reject(body.ids, scope))


@router.get("/procedures", tags=["experiences"], summary="Procedures of a scope")
def list_procedures(
    scope: QueryScope,
    app: State,
    task_family: Annotated[str | None, Query(max_length=256)] = None,
    include_retired: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Procedure]:
    """Procedures distilled from experience, strongest first, with their success counts."""
    return app.memory.procedures(
        scope=scope,
        task_family=task_family,
        include_retired=include_retired,
        limit=limit,
    )


@router.get(
    "/consolidation/runs",
    tags=["consolidation"],
    summary="Ledger of a scope",
    responses=UNAVAILABLE,
)
def list_consolidation_runs(
    scope: QueryScope, app: State, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> list[JobInfo]:
    """The scope's consolidation ledger rows (run, stage, status, counts, note), newest first."""
    _require("agentmem_consolidation", "consolidation")
    from agentmem_consolidation import ledger
    from agentmem_consolidation.pipeline import consolidation_scope

    rows = ledger.jobs(app.memory, scope=consolidation_scope(scope), limit=limit)
    return [JobInfo.of(r) for r in rows]


__all__ = ["readable", "router"]
