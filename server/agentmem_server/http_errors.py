"""How the REST API answers errors: ``{"error": {"type", "message", "request_id"}}``.

agentmem's error tree maps to 4xx/503 (:data:`STATUS`), FastAPI's request validation to a 422
whose message says which field to change (and a malformed JSON body, or one not UTF-8 encoded,
to an ``InvalidJSON`` saying so), HTTP errors keep their status; :data:`RESPONSES`,
:data:`CONFLICT` and :data:`UNAVAILABLE` declare them in the OpenAPI schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from agentmem.errors import (
    AgentMemError,
    BackendUnavailable,
    Conflict,
    LLMUnavailable,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from agentmem_server import logs
from agentmem_server.schemas import ErrorResponse

STATUS: tuple[tuple[type[AgentMemError], int], ...] = (
    (ValidationError, 422),
    (NotFound, 404),
    (PermissionDenied, 403),
    (Conflict, 409),
    (LLMUnavailable, 503),
    (BackendUnavailable, 503),
)
"""The HTTP status of each kind of agentmem error (the first match wins; others are 400)."""


def _declared(*pairs: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorResponse, "description": text} for code, text in pairs}


RESPONSES = _declared(
    (401, "no API key, or an unknown or revoked one"),
    (403, "the key may not act in the requested scope"),
    (404, "no such record in the scope"),
    (413, "request body too large"),
    (422, "invalid input; the message says what to change"),
    (429, "rate limit exceeded; see Retry-After"),
    (503, "a backend (store, index, graph, LLM) does not answer; the message names it"),
)
"""The errors every route may answer with."""

CONFLICT = _declared(
    (
        409,
        "a concurrent write won (retry), or the Idempotency-Key was used for other content or "
        "for a memory since deleted (use a new key)",
    )
)
"""Declared on the routes that write."""

UNAVAILABLE = _declared((501, "the package this route needs is not installed on the server"))
"""Declared on the routes of an optional package (consolidation, gpu)."""


def error_response(
    status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """An error body with the current request's id."""
    body = ErrorResponse.model_validate(
        {"error": {"type": kind, "message": message, "request_id": logs.request_id.get()}}
    )
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def status_of(exc: AgentMemError) -> int:
    """The HTTP status of an agentmem error."""
    return next((code for kind, code in STATUS if isinstance(exc, kind)), 400)


async def _agentmem_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AgentMemError)
    return error_response(status_of(exc), type(exc).__name__, str(exc))


# FastAPI's bare 400 for a body it could not decode beyond a JSON syntax error.
_UNPARSED_BODY = "There was an error parsing the body"


def _unparsed_body_message(cause: BaseException | None) -> str:
    """What to say about a JSON body FastAPI could not decode (its bare 400): bytes that are
    not UTF-8, or nesting deeper than the parser goes."""
    send = "send a UTF-8 encoded JSON object with Content-Type: application/json"
    if isinstance(cause, UnicodeDecodeError):
        return (
            f"the request body is not UTF-8 encoded JSON (byte {cause.start}: {cause.reason}); "
            f"{send}"
        )
    if isinstance(cause, RecursionError):
        return f"the request body's JSON is nested too deeply to parse; {send}, less nested"
    what = f" ({type(cause).__name__})" if cause is not None else ""
    return f"the request body could not be decoded as JSON{what}; {send}"


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == _UNPARSED_BODY:
        return error_response(422, "InvalidJSON", _unparsed_body_message(exc.__cause__))
    kinds = {401: "Unauthorized", 404: "NotFound", 405: "MethodNotAllowed", 429: "RateLimited"}
    kinds |= {501: "NotInstalled"}
    return error_response(
        exc.status_code,
        kinds.get(exc.status_code, "HTTPError"),
        str(exc.detail),
        headers=dict(exc.headers or {}),
    )


async def _invalid_request(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    broken = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if broken is not None:
        return error_response(422, "InvalidJSON", malformed_json_message(broken))
    problems = []
    for error in errors[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        if not where and tuple(error.get("loc", ())) == ("body",):
            problems.append(_body_problem(error))
            continue
        problems.append(f"{where}: {first_message_of(error)}" if where else first_message_of(error))
    return error_response(422, "InvalidRequest", "; ".join(problems) or "invalid request")


def _body_problem(error: dict[str, Any]) -> str:
    """What is wrong with the body as a whole: missing, or not a JSON object."""
    if error.get("type") == "missing":
        return "the request body is empty; send a JSON object with Content-Type: application/json"
    sent = error.get("input")
    if isinstance(sent, bytes | str):  # FastAPI parses JSON only when the request says so
        return (
            "the request body was not sent as JSON; send a JSON object with "
            "Content-Type: application/json"
        )
    return (
        f"the request body must be a JSON object, got {type(sent).__name__}; send one with "
        "Content-Type: application/json"
    )


def malformed_json_message(error: dict[str, Any]) -> str:
    """What to say about a request body that is not JSON (FastAPI's ``json_invalid`` entry,
    whose location holds the character offset)."""
    loc = [p for p in error.get("loc", ()) if p != "body"]
    where = f" at character {loc[0]}" if loc and isinstance(loc[0], int) else ""
    reason = str(error.get("ctx", {}).get("error") or "not JSON")
    return (
        f"the request body is not valid JSON ({reason}{where}); send a JSON object with "
        "Content-Type: application/json"
    )


# pydantic's errors for a value that is no datetime / date at all; their ``ctx.error`` (the
# parser's "input is too short") would drop which type was expected.
_TIME_FORMATS = {
    "datetime": "an ISO 8601 datetime such as 2024-05-01T12:00:00Z",
    "date": "an ISO 8601 date such as 2024-05-01",
}
_TIME_ERRORS = {
    "datetime_type": "datetime",
    "datetime_parsing": "datetime",
    "datetime_from_date_parsing": "datetime",
    "date_type": "date",
    "date_parsing": "date",
    "date_from_datetime_parsing": "date",
    "date_from_datetime_inexact": "date",
}


def first_message_of(error: dict[str, Any]) -> str:
    """The readable message of one pydantic error entry; a value that is no datetime says
    which format to send."""
    expected = _TIME_ERRORS.get(str(error.get("type")))
    if expected is not None:
        return f"{error.get('msg', 'invalid')}; send {_TIME_FORMATS[expected]}"
    inner = (error.get("ctx") or {}).get("error")
    return str(inner) if inner is not None else str(error.get("msg", "invalid"))


def install_handlers(app: FastAPI) -> None:
    """Answer agentmem's, HTTP and validation errors with the API's error body."""
    app.add_exception_handler(AgentMemError, _agentmem_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)


__all__ = [
    "CONFLICT",
    "RESPONSES",
    "STATUS",
    "UNAVAILABLE",
    "error_response",
    "first_message_of",
    "install_handlers",
    "malformed_json_message",
    "status_of",
]
