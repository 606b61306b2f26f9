"""The REST API's three ASGI middlewares, outermost first:

- :class:`RequestLog`: a request id (``X-Request-ID``, kept if the client sent a sane one) in
  the logs' context and the response headers, a latency observation per route template and one
  JSON log line per request;
- :class:`ServerErrors`: an unhandled exception becomes a 500 naming the request id;
- :class:`BodyLimit`: a body over the cap gets a 413, whether it declares its length or not.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentmem_server import logs
from agentmem_server.http_errors import error_response
from agentmem_server.metrics import Metrics

log = logging.getLogger("agentmem_server.requests")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _header(scope: Scope, name: str) -> str:
    """The value of one request header (empty when absent)."""
    wanted = name.encode("latin-1")
    for key, value in scope["headers"]:
        if key.lower() == wanted:
            return str(value.decode("latin-1"))
    return ""


class _TrackedSend:
    """Wraps ``send``: remembers whether (and with which status) the response started, and
    adds ``headers`` to its start."""

    def __init__(self, send: Send, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self._send = send
        self._headers = headers or []
        self.started = False
        self.status = 500

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
            message["headers"] = [*message.get("headers", []), *self._headers]
        await self._send(message)


class RequestLog:
    """Request id, latency metric and one log line per HTTP request."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, "x-request-id")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        token = logs.request_id.set(rid)
        tracked = _TrackedSend(send, [(b"x-request-id", rid.encode())])
        started = time.perf_counter()
        try:
            await self.app(scope, receive, tracked)
        finally:
            self._record(scope, tracked.status, time.perf_counter() - started)
            logs.request_id.reset(token)

    def _record(self, scope: Scope, status: int, elapsed: float) -> None:
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


class ServerErrors:
    """An exception no handler took is logged with the request id and answered with a 500
    (unless the response had already started)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = _TrackedSend(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            log.exception("unhandled error", exc_info=exc)
            if not tracked.started:
                response = error_response(
                    500,
                    "InternalError",
                    f"internal error ({type(exc).__name__}); quote the request id when "
                    "reporting it",
                )
                await response(scope, receive, tracked)


class BodyLimit:
    """413 for a request body over ``max_body`` bytes: at once when its Content-Length says
    so, else as soon as the streamed (chunked) body passes the cap."""

    def __init__(self, app: ASGIApp, *, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await _CappedRequest(self.max_body, scope, receive, send).run(self.app)


class _CappedRequest:
    """One request under :class:`BodyLimit`. Once refused, the app sees a disconnect and
    whatever it sends is dropped."""

    def __init__(self, max_body: int, scope: Scope, receive: Receive, send: Send) -> None:
        self.max_body = max_body
        self.scope = scope
        self._receive = receive
        self._send = _TrackedSend(send)
        self.received = 0
        self.refused = False

    async def run(self, app: ASGIApp) -> None:
        length = _header(self.scope, "content-length")
        if length.isdigit() and int(length) > self.max_body:
            await self.refuse()
            return
        try:
            await app(self.scope, self.receive, self.send)
        except Exception:
            if not self.refused:  # else the app only noticed the disconnect of a refused body
                raise

    async def send(self, message: Message) -> None:
        if not self.refused:
            await self._send(message)

    async def receive(self) -> Message:
        if self.refused:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.max_body:
                if not self._send.started:
                    await self.refuse()
                return {"type": "http.disconnect"}
        return message

    async def refuse(self) -> None:
        response = error_response(
            413,
            "RequestTooLarge",
            f"request body over {self.max_body} bytes; split it (e.g. smaller batches)",
        )
        await response(self.scope, self._receive, self._send)
        self.refused = True


__all__ = ["BodyLimit", "RequestLog", "ServerErrors"]
