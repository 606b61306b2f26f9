"""The MCP server (official ``mcp`` SDK): agentmem as the memory of any MCP client.

Tools: ``add_memory``, ``search_memory``, ``get_context``, ``record_experience``,
``recall_experience``. Each takes the scope (``user_id``, ``agent_id``, ``thread_id``,
``org_id``); fields left out come from the server's default scope (``agentmem mcp --user
alice``). Over stdio the client is the local user who owns the memory (optionally held to an
API key's scope with ``--api-key``); over streamable HTTP every request needs an API key
(``Authorization: Bearer amk_...`` or ``X-API-Key``), checked like the REST API's: no key 401,
a scope outside the key an error result.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from agentmem.errors import AgentMemError, PermissionDenied
from agentmem.experience.models import Step
from agentmem.memory import Memory
from agentmem.models import Scope as MemoryScope
from agentmem_server.auth import authorise
from agentmem_server.keys import ApiKey, verify_key

INSTRUCTIONS = (
    "agentmem is long-term memory. Call search_memory or get_context before answering "
    "questions about the user or past work; call add_memory to remember facts and events; "
    "call record_experience after finishing a task and recall_experience before starting one."
)


def _token(headers: Mapping[str, str] | None) -> str | None:
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    auth = lowered.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return lowered.get("x-api-key")


class _Scopes:
    """Resolves a tool call's scope: the call's fields over the defaults, checked against the
    API key (the fixed one for stdio, or the one the HTTP request carries)."""

    def __init__(
        self,
        memory: Memory,
        defaults: Mapping[str, str | None],
        key: ApiKey | None,
        require_key: bool,
    ) -> None:
        self.memory = memory
        self.defaults = dict(defaults)
        self.key = key
        self.require_key = require_key

    def resolve(self, ctx: Context | None, **given: str | None) -> MemoryScope:
        fields = {f: given.get(f) or self.defaults.get(f) for f in _SCOPE}
        key = self.key
        if self.require_key:
            token = _token(ctx.headers if ctx is not None else None)
            key = verify_key(self.memory.backends.store, token) if token else None
            if key is None:
                raise PermissionDenied("this MCP server needs a valid API key (Bearer amk_...)")
        if key is not None:
            return authorise(key, **fields)
        return MemoryScope.of(**fields)


_SCOPE = ("org_id", "user_id", "agent_id", "thread_id")


@contextmanager
def _tool_errors() -> Iterator[None]:
    """agentmem's errors reach the client as tool errors with their message (the SDK hides
    the message of any other exception)."""
    try:
        yield
    except AgentMemError as exc:
        raise ToolError(f"{type(exc).__name__}: {exc}") from exc


def build_mcp(
    memory: Memory,
    *,
    defaults: Mapping[str, str | None] | None = None,
    key: ApiKey | None = None,
    require_key: bool = False,
    lifespan: Callable[[MCPServer[Any]], AbstractAsyncContextManager[Any]] | None = None,
) -> MCPServer[Any]:
    """An MCP server whose tools read and write ``memory``. ``require_key``: each request
    must carry an API key (streamable HTTP); else ``key`` (if any) bounds every call."""
    scopes = _Scopes(memory, defaults or {}, key, require_key)
    server: MCPServer[Any] = MCPServer("agentmem", instructions=INSTRUCTIONS, lifespan=lifespan)

    @server.tool()
    async def add_memory(
        text: str,
        ctx: Context,
        user_id: str | None = None,
        agent_id: str | None = None,
        thread_id: str | None = None,
        org_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        kind: str = "episodic",
    ) -> dict[str, Any]:
        """Remember something (an event, a fact, a preference). Returns the memory's id."""
        with _tool_errors():
            scope = scopes.resolve(
                ctx, user_id=user_id, agent_id=agent_id, thread_id=thread_id, org_id=org_id
            )
            record = await memory.aadd(text, **scope.model_dump(), kind=kind, metadata=metadata)
            return {"id": record.id, "text": record.text, "scope": str(record.scope)}

    @server.tool()
    async def search_memory(
        query: str,
        ctx: Context,
        user_id: str | None = None,
        agent_id: str | None = None,
        thread_id: str | None = None,
        org_id: str | None = None,
        k: int = 5,
    ) -> list[dict[str, Any]]:
        """Find the memories most relevant to a query, best first."""
        with _tool_errors():
            scope = scopes.resolve(
                ctx, user_id=user_id, agent_id=agent_id, thread_id=thread_id, org_id=org_id
            )
            hits = await memory.asearch(query, **scope.model_dump(), k=k)
            return [
                {
                    "id": h.record.id,
                    "text": h.record.text,
                    "kind": h.record.kind.value,
                    "score": round(h.score, 6),
                    "event_time": h.record.event_time.isoformat() if h.record.event_time else None,
                }
                for h in hits
            ]

    @server.tool()
    async def get_context(
        query: str,
        ctx: Context,
        user_id: str | None = None,
        agent_id: str | None = None,
        thread_id: str | None = None,
        org_id: str | None = None,
        max_tokens: int = 1000,
    ) -> str:
        """A prompt-ready block of what memory knows about a query, within max_tokens."""
        with _tool_errors():
            scope = scopes.resolve(
                ctx, user_id=user_id, agent_id=agent_id, thread_id=thread_id, org_id=org_id
            )
            block = await memory.acontext(query, **scope.model_dump(), max_tokens=max_tokens)
            return block.text

    @server.tool()
    async def record_experience(
        task: str,
        steps: list[Step],
        outcome: str,
        ctx: Context,
        reward: float | None = None,
        feedback: str | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        thread_id: str | None = None,
        org_id: str | None = None,
    ) -> dict[str, Any]:
        """Record how an attempt at a task went (steps taken, outcome success/failure/partial,
        reward); returns the reflection and the procedures learned."""
        with _tool_errors():
            scope = scopes.resolve(
                ctx, user_id=user_id, agent_id=agent_id, thread_id=thread_id, org_id=org_id
            )
            result = await memory.arecord_experience(
                task, steps, outcome, reward, feedback, **scope.model_dump()
            )
            return {
                "id": result.record.id,
                "reflection": result.reflection.summary,
                "procedures": [p.text for p in result.procedures],
            }

    @server.tool()
    async def recall_experience(
        task: str,
        ctx: Context,
        user_id: str | None = None,
        agent_id: str | None = None,
        thread_id: str | None = None,
        org_id: str | None = None,
        k: int = 3,
    ) -> str:
        """Past attempts at similar tasks and the procedures learned from them, as text."""
        with _tool_errors():
            scope = scopes.resolve(
                ctx, user_id=user_id, agent_id=agent_id, thread_id=thread_id, org_id=org_id
            )
            recall = await memory.arecall_experience(task, k, **scope.model_dump())
            return recall.render() or "no past experience with tasks like this"

    return server


class RequireKey:
    """ASGI middleware answering 401 to HTTP requests without a valid API key."""

    def __init__(self, app: ASGIApp, memory: Memory) -> None:
        self.app = app
        self.memory = memory

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            token = _token(headers)
            key = (
                await asyncio.to_thread(verify_key, self.memory.backends.store, token)
                if token
                else None
            )
            if key is None:
                response = JSONResponse(
                    {"error": {"type": "Unauthorized", "message": "a valid API key is needed"}},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def http_app(
    memory: Memory,
    *,
    defaults: Mapping[str, str | None] | None = None,
    close_memory: bool = False,
) -> ASGIApp:
    """The streamable-HTTP MCP app (path ``/mcp``), every request needing an API key. With
    ``close_memory`` the memory is closed when the app shuts down."""

    @asynccontextmanager
    async def lifespan(_: MCPServer[Any]) -> AsyncIterator[dict[str, Any]]:
        yield {}
        if close_memory:
            memory.close()

    server = build_mcp(memory, defaults=defaults, require_key=True, lifespan=lifespan)
    return RequireKey(server.streamable_http_app(), memory)


__all__ = ["INSTRUCTIONS", "RequireKey", "build_mcp", "http_app"]
