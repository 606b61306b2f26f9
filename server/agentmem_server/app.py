"""The REST API: :func:`create_app` builds a FastAPI app over one :class:`~agentmem.Memory`.

Every ``/v1`` route needs an API key (401), acts only in a scope the key allows (403), and is
rate limited per key (429 with ``Retry-After``). Request bodies are capped (413). Errors are
``{"error": {"type", "message", "request_id"}}``: agentmem's error tree maps to 4xx/503, and a
bug is a 500 that names the request id to look up in the logs. CORS headers are sent only for
the origins configured. ``/healthz``, ``/readyz`` and ``/metrics`` need no key.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentmem import __version__
from agentmem.errors import (
    AgentMemError,
    BackendUnavailable,
    Conflict,
    LLMUnavailable,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from agentmem.memory import Memory
from agentmem.urls import redact
from agentmem_server import logs
from agentmem_server.config import ServerSettings
from agentmem_server.deps import AppState
from agentmem_server.jobs import ConsolidationJobs
from agentmem_server.metrics import Metrics
from agentmem_server.routes_inspect import router as inspect_router
from agentmem_server.routes_memory import router as memory_router
from agentmem_server.routes_tiers import router as tiers_router
from agentmem_server.schemas import ErrorResponse, Health

log = logging.getLogger("agentmem_server.requests")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

_STATUS: tuple[tuple[type[AgentMemError], int], ...] = (
    (ValidationError, 422),
    (NotFound, 404),
    (PermissionDenied, 403),
    (Conflict, 409),
    (LLMUnavailable, 503),
    (BackendUnavailable, 503),
)

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in (
        (401, "no API key, or an unknown or revoked one"),
        (403, "the key may not act in the requested scope"),
        (404, "no such record in the scope"),
        (413, "request body too large"),
        (422, "invalid input; the message says what to change"),
        (429, "rate limit exceeded; see Retry-After"),
    )
}


class RequestContext:
    """Per request: an id (``X-Request-ID``, kept if the client sent a sane one), the body
    size cap, a latency observation per route template and one JSON log line."""

    def __init__(self, app: ASGIApp, *, max_body: int, metrics: Metrics) -> None:
        self.app = app
        self.max_body = max_body
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given = headers.get("x-request-id", "")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        token = logs.request_id.set(rid)
        started = time.perf_counter()
        status = 500
        sent = False

        refused = False  # a 413 went out mid-body; whatever the app sends after is dropped

        async def send_with_id(message: Message) -> None:
            nonlocal status, sent
            if refused:
                return
            if message["type"] == "http.response.start":
                status = message["status"]
                sent = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        async def too_large() -> None:
            nonlocal refused
            response = _error_response(
                413,
                "RequestTooLarge",
                f"request body over {self.max_body} bytes; split it (e.g. smaller batches)",
            )
            await response(scope, receive, send_with_id)
            refused = True

        received = 0

        async def capped_receive() -> Message:
            # A body without Content-Length (chunked) is counted as it arrives; past the cap
            # the client gets its 413 and the app sees a disconnect.
            nonlocal received
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    if not sent:
                        await too_large()
                    return {"type": "http.disconnect"}
            return message

        try:
            length = headers.get("content-length", "")
            if length.isdigit() and int(length) > self.max_body:
                await too_large()
            else:
                await self.app(scope, capped_receive, send_with_id)
        except Exception as exc:
            if refused:  # the app noticed the disconnect of a refused body
                return
            log.exception("unhandled error", exc_info=exc)
            if not sent:
                response = _error_response(
                    500,
                    "InternalError",
                    f"internal error ({type(exc).__name__}); quote the "
                    "request id when reporting it",
                )
                await response(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.latency.labels(scope["method"], route, str(status)).observe(elapsed)
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "key_id": scope.get("state", {}).get("key_id"),
                },
            )
            logs.request_id.reset(token)


def _error_response(
    status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = ErrorResponse.model_validate(
        {"error": {"type": kind, "message": message, "request_id": logs.request_id.get()}}
    )
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _status_of(exc: AgentMemError) -> int:
    return next((code for kind, code in _STATUS if isinstance(exc, kind)), 400)


async def _agentmem_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AgentMemError)
    return _error_response(_status_of(exc), type(exc).__name__, str(exc))


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    kinds = {401: "Unauthorized", 404: "NotFound", 405: "MethodNotAllowed", 429: "RateLimited"}
    kinds |= {501: "NotInstalled"}
    return _error_response(
        exc.status_code,
        kinds.get(exc.status_code, "HTTPError"),
        str(exc.detail),
        headers=dict(exc.headers or {}),
    )


async def _invalid_request(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        problems.append(f"{where}: {first_message_of(error)}" if where else first_message_of(error))
    return _error_response(422, "InvalidRequest", "; ".join(problems) or "invalid request")


def first_message_of(error: dict[str, Any]) -> str:
    """The readable message of one pydantic error entry."""
    inner = error.get("ctx", {}).get("error")
    return str(inner) if inner is not None else str(error.get("msg", "invalid"))


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


def create_app(
    memory: Memory,
    settings: ServerSettings | None = None,
    *,
    close_memory: bool = False,
) -> FastAPI:
    """The REST API over ``memory``. With ``close_memory`` the app closes it on shutdown,
    after in-flight requests and queued consolidation runs have finished."""
    settings = settings or ServerSettings.load()
    metrics = Metrics(memory.stats)
    rate = settings.rate_item()
    jobs = ConsolidationJobs(memory, on_done=lambda r: metrics.consolidation_runs.labels(r).inc())
    state = AppState(
        memory=memory,
        settings=settings,
        metrics=metrics,
        limiter=MovingWindowRateLimiter(rate_limit_storage(settings)) if rate is not None else None,
        rate=rate,
        jobs=jobs,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        log.info("agentmem server ready", extra={"store": memory.stats().store_url})
        yield
        # uvicorn calls this once in-flight requests are done (or graceful_timeout_s passed).
        jobs.shutdown()
        if close_memory:
            memory.close()
        log.info("agentmem server stopped")

    app = FastAPI(
        title="agentmem",
        version=__version__,
        summary="Lifelong memory for multi-agent systems, as a service.",
        description=__doc__,
        lifespan=lifespan,
        responses=_ERRORS,
    )
    app.state.agentmem = state
    app.include_router(memory_router)
    app.include_router(tiers_router)
    app.include_router(inspect_router)
    if settings.ui:
        from agentmem_server.ui import build_router

        app.include_router(build_router())
    app.add_exception_handler(AgentMemError, _agentmem_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)

    @app.get("/healthz", tags=["health"], summary="Liveness")
    def healthz() -> Health:
        """The process is up."""
        return Health(status="ok")

    @app.get("/readyz", tags=["health"], summary="Readiness", responses={503: {"model": Health}})
    def readyz() -> Any:
        """The store and index answer (503 otherwise)."""
        try:
            memory.stats()
        except AgentMemError as exc:
            return JSONResponse(
                Health(status="unavailable", detail=str(exc)).model_dump(), status_code=503
            )
        return Health(status="ready")

    if settings.metrics:

        @app.get("/metrics", tags=["health"], summary="Prometheus metrics", include_in_schema=False)
        def prometheus() -> PlainTextResponse:
            return PlainTextResponse(
                generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST
            )

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Request-ID"],
        )
    app.add_middleware(RequestContext, max_body=settings.max_body_bytes, metrics=metrics)
    return app


__all__ = ["RequestContext", "create_app"]
