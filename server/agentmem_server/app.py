"""The REST API: :func:`create_app` builds a FastAPI app over one :class:`~agentmem.Memory`.

Every ``/v1`` route needs an API key (401), acts only in a scope the key allows (403), and is
rate limited per key (429 with ``Retry-After``). Request bodies are capped (413). Errors are
``{"error": {"type", "message", "request_id"}}`` (:mod:`agentmem_server.http_errors`). CORS
headers are sent only for the origins configured. ``/healthz``, ``/readyz`` and ``/metrics``
need no key; ``/docs`` and ``/redoc`` render the schema with no CDN
(:mod:`agentmem_server.api_docs`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from agentmem import __version__
from agentmem.errors import AgentMemError, BackendUnavailable
from agentmem.memory import Memory
from agentmem.urls import redact
from agentmem_server.api_docs import DESCRIPTION, docs_router, install_openapi, operation_id
from agentmem_server.config import ServerSettings
from agentmem_server.deps import AppState, known_query
from agentmem_server.http_errors import RESPONSES, install_handlers
from agentmem_server.jobs import ConsolidationJobs
from agentmem_server.metrics import Metrics
from agentmem_server.middleware import BodyLimit, RequestLog, ServerErrors
from agentmem_server.routes_inspect import router as inspect_router
from agentmem_server.routes_memory import router as memory_router
from agentmem_server.routes_tiers import router as tiers_router
from agentmem_server.schemas import Health

log = logging.getLogger("agentmem_server.requests")


def rate_limit_storage(settings: ServerSettings) -> Storage:
    """The ``limits`` storage of the rate-limit counters: in this process (``memory://``), or
    in Redis, shared by every server process and machine (checked here, so a server does not
    start with a Redis it cannot reach)."""
    url = settings.rate_limit_storage_url
    if url.startswith("memory://"):
        return MemoryStorage()
    try:
        # A sync URL (redis://, memcached://) gives a sync storage; async:// ones are refused
        # below by the isinstance check.
        storage = storage_from_string(url)
        if not isinstance(storage, Storage):
            raise TypeError("an async storage cannot back the sync rate limiter")
        reachable = storage.check()
    except Exception as exc:  # the limits library's and redis' errors vary
        raise BackendUnavailable(
            f"cannot use the rate-limit storage {redact(url)}: {exc}; start Redis there or set "
            "AGENTMEM_SERVER_RATE_LIMIT_STORAGE_URL=memory:// (limits per process)"
        ) from exc
    if not reachable:
        raise BackendUnavailable(
            f"the rate-limit storage {redact(url)} does not answer; start Redis there (e.g. "
            "`redis-server --daemonize yes`) or set AGENTMEM_SERVER_RATE_LIMIT_STORAGE_URL="
            "memory:// (limits per process)"
        )
    return storage


def _state(memory: Memory, settings: ServerSettings) -> AppState:
    """What the routes share: the memory, metrics, rate limiter and consolidation queue."""
    metrics = Metrics(memory.stats)
    rate = settings.rate_item()
    jobs = ConsolidationJobs(memory, on_done=lambda r: metrics.consolidation_runs.labels(r).inc())
    return AppState(
        memory=memory,
        settings=settings,
        metrics=metrics,
        limiter=MovingWindowRateLimiter(rate_limit_storage(settings)) if rate is not None else None,
        rate=rate,
        jobs=jobs,
    )


def _health_routes(app: FastAPI, state: AppState) -> None:
    """``/healthz``, ``/readyz`` and (when enabled) ``/metrics``: no key needed."""

    @app.get("/healthz", tags=["health"], summary="Liveness")
    def healthz() -> Health:
        """The process is up."""
        return Health(status="ok")

    @app.get("/readyz", tags=["health"], summary="Readiness", responses={503: {"model": Health}})
    def readyz() -> Any:
        """The store and index answer (503 otherwise)."""
        try:
            state.memory.stats()
        except AgentMemError as exc:
            return JSONResponse(
                Health(status="unavailable", detail=str(exc)).model_dump(), status_code=503
            )
        return Health(status="ready")

    if state.settings.metrics:

        @app.get(
            "/metrics",
            tags=["health"],
            summary="Prometheus metrics",
            response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
        )
        def get_metrics() -> PlainTextResponse:
            """Request latencies, memory counts and consolidation runs in Prometheus' text
            format."""
            return PlainTextResponse(
                generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST
            )


def create_app(
    memory: Memory,
    settings: ServerSettings | None = None,
    *,
    close_memory: bool = False,
) -> FastAPI:
    """The REST API over ``memory``. With ``close_memory`` the app closes it on shutdown,
    after in-flight requests and queued consolidation runs have finished."""
    settings = settings or ServerSettings.load()
    state = _state(memory, settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Before the port opens: a burst of first searches would otherwise all queue on the
        # model and date-parser loads (the first 35 of the load benchmark waited 3-5 s).
        await memory.awarm_up()
        log.info("agentmem server ready", extra={"store": memory.stats().store_url})
        yield
        # uvicorn calls this once in-flight requests are done (or graceful_timeout_s passed).
        state.jobs.shutdown()
        if close_memory:
            memory.close()
        log.info("agentmem server stopped")

    app = FastAPI(
        title="agentmem",
        version=__version__,
        summary="Lifelong memory for multi-agent systems, as a service.",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=operation_id,
    )
    app.state.agentmem = state
    for router in (memory_router, tiers_router, inspect_router):
        # the keyed /v1 routes; a query parameter a route does not take is a 422
        app.include_router(router, responses=RESPONSES, dependencies=[Depends(known_query)])
    app.include_router(docs_router(app.title))
    if settings.ui:
        from agentmem_server.ui import build_router

        app.include_router(build_router())
    install_handlers(app)
    install_openapi(app)
    _health_routes(app, state)
    # The last added runs first: RequestLog -> CORS -> ServerErrors -> BodyLimit -> routes.
    # CORS wraps the 413 and the 500, so a browser app on an allowed origin can read them.
    app.add_middleware(BodyLimit, max_body=settings.max_body_bytes)
    app.add_middleware(ServerErrors)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "X-API-Key",
                "Content-Type",
                "X-Request-ID",
                "Idempotency-Key",
            ],
            # What a browser app must read: the request id to quote, when to retry.
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    app.add_middleware(RequestLog, metrics=state.metrics)
    return app


__all__ = ["create_app", "rate_limit_storage"]
