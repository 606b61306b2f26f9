"""FastAPI dependencies: the app's state, the caller's API key (401), its rate limit (429),
the query parameters a route takes (422 for any other) and the scope a request acts in (403)."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from limits import RateLimitItem
from limits.strategies import RateLimiter

from agentmem.errors import ValidationError
from agentmem.memory import Memory
from agentmem.models import Scope
from agentmem_server.auth import authorise
from agentmem_server.config import ServerSettings
from agentmem_server.jobs import ConsolidationJobs
from agentmem_server.keys import ApiKey, verify_key
from agentmem_server.metrics import Metrics
from agentmem_server.schemas import ScopeId

log = logging.getLogger("agentmem_server.ratelimit")


@dataclass
class AppState:
    """What the routes need, kept on ``app.state.agentmem``."""

    memory: Memory
    settings: ServerSettings
    metrics: Metrics
    limiter: RateLimiter | None
    rate: RateLimitItem | None
    jobs: ConsolidationJobs


def state(request: Request) -> AppState:
    """The app's state."""
    found: AppState = request.app.state.agentmem
    return found


_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer amk_...")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="X-API-Key: amk_...")


def _unauthorised(message: str) -> HTTPException:
    return HTTPException(status_code=401, detail=message, headers={"WWW-Authenticate": "Bearer"})


def api_key(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> ApiKey:
    """The caller's API key (401 when missing, unknown or revoked), within its rate limit
    (429 with Retry-After beyond it)."""
    token = bearer.credentials if bearer is not None else header
    if not token:
        raise _unauthorised(
            "no API key: send 'Authorization: Bearer amk_...' or 'X-API-Key: amk_...' "
            "(create one with `agentmem keys create --org ORG`)"
        )
    app = state(request)
    key = verify_key(app.memory.backends.store, token)
    if key is None:
        raise _unauthorised("the API key is unknown, malformed or revoked")
    request.state.key_id = key.id
    if app.limiter is not None and app.rate is not None and not _within_limit(app, key.id):
        reset = app.limiter.get_window_stats(app.rate, key.id).reset_time
        retry = max(1, math.ceil(reset - time.time()))
        app.metrics.rate_limited.inc()
        raise HTTPException(
            status_code=429,
            detail=f"rate limit of {app.settings.rate_limit} per API key exceeded; "
            f"retry in {retry} s",
            headers={"Retry-After": str(retry)},
        )
    return key


def _within_limit(app: AppState, key_id: str) -> bool:
    """Whether the key may make this request. A shared (Redis) storage that fails mid-run lets
    the request through with a warning: an outage of the rate limiter must not take the memory
    down with it (the server checked the storage when it started)."""
    assert app.limiter is not None and app.rate is not None
    try:
        return bool(app.limiter.hit(app.rate, key_id))
    except Exception as exc:  # redis' connection and timeout errors, and the limits library's
        log.warning("rate limiter unavailable, request let through: %s", exc)
        return True


Key = Annotated[ApiKey, Depends(api_key)]
State = Annotated[AppState, Depends(state)]

_Q = Query()


def query_scope(
    key: Key,
    org_id: Annotated[ScopeId | None, _Q] = None,
    user_id: Annotated[ScopeId | None, _Q] = None,
    agent_id: Annotated[ScopeId | None, _Q] = None,
    thread_id: Annotated[ScopeId | None, _Q] = None,
) -> Scope:
    """The scope named by query parameters, authorised against the key (403)."""
    return authorise(key, org_id=org_id, user_id=user_id, agent_id=agent_id, thread_id=thread_id)


QueryScope = Annotated[Scope, Depends(query_scope)]


def _query_names(dependant: Dependant) -> list[str]:
    """The query parameters a route declares, its dependencies' included, in order."""
    names: list[str] = []
    pending = [dependant]
    while pending:
        current = pending.pop(0)
        names.extend(field.alias for field in current.query_params)
        pending.extend(current.dependencies)
    return list(dict.fromkeys(names))


def known_query(request: Request, _: Key) -> None:
    """Refuse (422) a query parameter the route does not declare, as bodies refuse unknown
    fields: a misspelt ``usr_id`` dropped without a word would make a read or delete act in
    the key's whole org instead of the user meant. Runs after the key check (401 first)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    declared = _query_names(route.dependant)
    unknown = [name for name in dict.fromkeys(request.query_params) if name not in declared]
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        takes = ", ".join(declared) if declared else "no query parameters"
        raise ValidationError(
            f"unknown query parameter{plural} {', '.join(map(repr, unknown))}; "
            f"{request.method} {route.path} takes: {takes}"
        )


__all__ = [
    "AppState",
    "Key",
    "QueryScope",
    "State",
    "api_key",
    "known_query",
    "state",
]
