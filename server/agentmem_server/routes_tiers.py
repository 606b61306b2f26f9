"""Routes over the other tiers: buffers, experiences, graph, consolidation, adapters."""

from __future__ import annotations

import importlib.util
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response

from agentmem.buffers import Turn
from agentmem.buffers.buffer import Flush
from agentmem.errors import InvalidScope, NotFound, ValidationError
from agentmem.experience.models import ExperienceAdvice, ExperienceResult
from agentmem.graph.api import Neighbor, TimelineEntry
from agentmem.models import Scope
from agentmem.parametric import scope_key
from agentmem_server.auth import authorise, may_read
from agentmem_server.deps import Key, QueryScope, State
from agentmem_server.http_errors import CONFLICT, UNAVAILABLE
from agentmem_server.schemas import (
    AdapterInfo,
    AppendTurn,
    ConsolidationRequest,
    FlushRequest,
    PromoteRequest,
    PromotionInfo,
    RecallExperience,
    RecordExperience,
    RunStatus,
    RunSummary,
)

router = APIRouter(prefix="/v1")


def _thread(scope: Scope) -> Scope:
    if scope.thread_id is None:
        raise InvalidScope("buffers belong to a thread: pass thread_id (e.g. thread_id='t1')")
    return scope


# buffers ------------------------------------------------------------------------------------


@router.post(
    "/buffers/append",
    tags=["buffers"],
    status_code=201,
    summary="Append a turn",
    responses=CONFLICT,
)
def append_turn(body: AppendTurn, key: Key, app: State) -> Turn:
    """Append one turn to a thread's live buffer (flushed into episodic memory past its
    token budget or on a topic shift)."""
    scope = _thread(authorise(key, **body.scope_kwargs()))
    return app.memory.buffer(scope=scope).append(body.role, body.content, body.name)


@router.get("/buffers/window", tags=["buffers"], summary="Recent turns of a thread")
def get_buffer_window(
    scope: QueryScope,
    app: State,
    max_tokens: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
) -> list[Turn]:
    """The most recent turns of a thread that fit ``max_tokens`` (default: the buffer's)."""
    return app.memory.buffer(scope=_thread(scope)).window(max_tokens)


@router.post(
    "/buffers/flush", tags=["buffers"], summary="Flush a thread's buffer", responses=CONFLICT
)
def flush_buffer(body: FlushRequest, key: Key, app: State) -> Flush | None:
    """Store every turn of the buffer as one episode now (null when it was empty)."""
    scope = _thread(authorise(key, **body.scope_kwargs()))
    return app.memory.buffer(scope=scope).flush()


# experiences --------------------------------------------------------------------------------


@router.post(
    "/experiences",
    tags=["experiences"],
    status_code=201,
    summary="Record experience",
    responses=CONFLICT,
)
def record_experience(body: RecordExperience, key: Key, app: State) -> ExperienceResult:
    """Store an attempt at a task, reflect on it and distil procedures from it."""
    scope = authorise(key, **body.scope_kwargs())
    return app.memory.record_experience(
        body.task,
        body.steps,
        body.outcome,
        body.reward,
        body.feedback,
        scope=scope,
        metadata=body.metadata,
        used_procedures=body.used_procedures,
    )


@router.post("/experiences/recall", tags=["experiences"], summary="Recall experience")
def recall_experience(body: RecallExperience, key: Key, app: State) -> ExperienceAdvice:
    """Past attempts most like ``task`` and the procedures of its task family, best first."""
    scope = authorise(key, **body.scope_kwargs())
    return app.memory.recall_experience(
        body.task,
        body.k,
        scope=scope,
        task_family=body.task_family,
        include_retired=body.include_retired,
    )


# graph --------------------------------------------------------------------------------------

Entity = Annotated[str, Query(min_length=1, max_length=500, description="name, alias or id")]


@router.get(
    "/graph/neighbors",
    tags=["graph"],
    summary="Neighbours of an entity",
    # An entity's name vector (384 floats) is for matching inside the graph, not for clients.
    response_model_exclude={"__all__": {"entity": {"embedding"}}},
)
def get_neighbors(
    entity: Entity,
    scope: QueryScope,
    app: State,
    depth: Annotated[int, Query(ge=1, le=5)] = 1,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[Neighbor]:
    """Entities related to ``entity`` within ``depth`` hops, by relations that hold now."""
    return app.memory.graph.neighbors(entity, scope=scope, depth=depth, limit=limit)


@router.get("/graph/timeline", tags=["graph"], summary="Timeline of an entity")
def get_timeline(
    entity: Entity,
    scope: QueryScope,
    app: State,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[TimelineEntry]:
    """The facts about ``entity`` in the order they held, ended ones marked."""
    return app.memory.graph.timeline(entity, scope=scope, limit=limit)


_MEDIA = {"json": "application/json", "graphml": "application/xml", "html": "text/html"}


@router.get(
    "/graph/export",
    tags=["graph"],
    summary="Export the graph",
    response_class=Response,
    responses={200: {"content": {m: {} for m in _MEDIA.values()}}},
)
def export_graph(
    scope: QueryScope,
    app: State,
    format: Literal["json", "graphml", "html"] = "json",
) -> Response:
    """The scope's knowledge graph as JSON, GraphML or a self-contained HTML page."""
    text = app.memory.graph.export(format, scope=scope)
    return Response(content=text, media_type=_MEDIA[format])


# consolidation ------------------------------------------------------------------------------


def _require(module: str, extra: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise HTTPException(
            status_code=501,
            detail=f"the {module!r} package is not installed on this server; "
            f"install it with pip install 'agentmem[{extra}]'",
        )


@router.post(
    "/consolidation/runs",
    tags=["consolidation"],
    status_code=202,
    summary="Start consolidation",
    responses=UNAVAILABLE,
)
def start_consolidation(body: ConsolidationRequest, key: Key, app: State) -> RunSummary:
    """Start the consolidation pipeline for the scope: on the Celery workers when a broker is
    configured, else in the server's background worker; poll
    ``GET /v1/consolidation/runs/{run_id}`` for its status."""
    _require("agentmem_consolidation", "consolidation")
    from agentmem_consolidation import ledger
    from agentmem_consolidation.pipeline import consolidation_scope
    from agentmem_consolidation.stages import STAGES

    scope = consolidation_scope(authorise(key, **body.scope_kwargs()))
    unknown = [s for s in body.stages or [] if s not in STAGES]
    if unknown:
        raise ValidationError(f"unknown stage(s) {unknown}; stages are {list(STAGES)}")
    run_id = ledger.new_run_id()
    app.jobs.submit(run_id, key.id, scope, body.stages)
    return RunSummary(
        run_id=run_id, scope=ledger.scope_key(scope), skipped=False, duration_s=0.0, stages=[]
    )


@router.get(
    "/consolidation/runs/{run_id}",
    tags=["consolidation"],
    summary="Run status",
    responses=UNAVAILABLE,
)
def get_consolidation_run(run_id: str, key: Key, app: State) -> RunStatus:
    """Where a run stands: ``queued`` until a worker takes it, then ``running`` and finally
    ``done``, ``failed`` or ``skipped``, with each stage's status, counts and ISO-8601 times;
    404 when the run is unknown or outside what the key may read."""
    _require("agentmem_consolidation", "consolidation")
    from agentmem_consolidation import ledger

    rows = ledger.jobs(app.memory, run_id=run_id, limit=1000)
    visible = (
        all(may_read(key, ledger.scope_of(r.scope)) for r in rows)
        if rows
        else app.jobs.owns(run_id, key.id)
    )
    if not visible:
        raise NotFound(f"no consolidation run {run_id!r} visible to this API key")
    return RunStatus.of(run_id, rows, ledger.RUN_STAGE)


# adapters -----------------------------------------------------------------------------------


def _adapter_info(version: Any) -> AdapterInfo:
    return AdapterInfo(
        scope_key=version.scope_key,
        version=version.version,
        kind=version.kind,
        promoted=version.promoted,
        score=version.score(),
        base_score=version.base_score(),
        tainted=version.tainted,
        created=version.metadata.created,
        metrics=dict(version.metadata.metrics),
    )


@router.get("/adapters", tags=["adapters"], summary="Adapters of a scope", responses=UNAVAILABLE)
def list_adapters(scope: QueryScope, app: State) -> list[AdapterInfo]:
    """The registered adapter versions of the scope (empty when none was trained)."""
    _require("agentmem_gpu", "gpu")
    from agentmem_gpu.registry import AdapterRegistry

    registry = AdapterRegistry.from_settings(app.memory.settings)
    return [_adapter_info(v) for v in registry.list(scope_key(scope))]


@router.post(
    "/adapters/promote", tags=["adapters"], summary="Promote an adapter", responses=UNAVAILABLE
)
def promote_adapter(body: PromoteRequest, key: Key, app: State) -> PromotionInfo:
    """Make a version current if its held-out score beats the current one's (or ``force``)."""
    _require("agentmem_gpu", "gpu")
    from agentmem_gpu.registry import AdapterRegistry

    scope = authorise(key, **body.scope_kwargs())
    registry = AdapterRegistry.from_settings(app.memory.settings)
    promotion = registry.promote(scope_key(scope), body.version, force=body.force)
    return PromotionInfo(
        promoted=promotion.promoted,
        reason=promotion.reason,
        adapter=_adapter_info(promotion.candidate),
    )


__all__ = ["router"]
