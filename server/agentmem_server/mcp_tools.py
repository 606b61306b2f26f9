"""The MCP server (official ``mcp`` SDK): agentmem as the memory of any MCP client.

Tools: ``add_memory``, ``search_memory``, ``list_memories``, ``get_context``,
``update_memory``, ``delete_memory``, ``record_experience``, ``recall_experience``; each
declares what it does to memory (``readOnlyHint``, ``destructiveHint``, ``idempotentHint``),
its parameters are described, ``kind`` and ``outcome`` are enums and counts are bounded.

The scope: with ``pin_scope`` (what ``agentmem mcp --user alice`` does) every call acts in the
server's scope and the tools have no scope parameters, so a model cannot reach another user's
memory (as the LangGraph tools take the scope from the run, not the model). Without it the tools
take ``user_id``, ``agent_id``, ``thread_id`` and ``org_id``, fields left out coming from the
defaults (``agentmem mcp --user alice --no-pin-scope``). Over stdio the client is the local
user who owns the memory (optionally held to an API key's scope with ``--api-key``); over
streamable HTTP every request needs an API key (``Authorization: Bearer amk_...`` or
``X-API-Key``), checked like the REST API's: no key 401, a scope outside the key an error result.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Annotated, Any, cast

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import ConfigDict, Field
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from agentmem import __version__
from agentmem.errors import AgentMemError, InvalidScope, PermissionDenied
from agentmem.experience.models import Outcome, Step
from agentmem.memory import Memory
from agentmem.models import MemoryKind, MemoryRecord
from agentmem.models import Scope as MemoryScope
from agentmem.scoping import ScopeKwargs, optional_scope_of
from agentmem_server.auth import authorise
from agentmem_server.keys import ApiKey, verify_key

INSTRUCTIONS = (
    "agentmem is long-term memory. Call search_memory or get_context before answering "
    "questions about the user or past work; call add_memory to remember facts and events, "
    "update_memory to correct one and delete_memory to remove one (ids come from "
    "search_memory and list_memories); call record_experience after finishing a task and "
    "recall_experience before starting one."
)

_SCOPE = ("org_id", "user_id", "agent_id", "thread_id")

UserId = Annotated[
    str | None, Field(description="whose memory (default: the server's user)", max_length=256)
]
AgentId = Annotated[
    str | None, Field(description="the agent's own memory within the user's", max_length=256)
]
ThreadId = Annotated[
    str | None, Field(description="one conversation's memory (default: none)", max_length=256)
]
OrgId = Annotated[
    str | None, Field(description="the organisation (default: the server's)", max_length=256)
]
MemoryId = Annotated[
    str, Field(description="the id of a memory, from search_memory or list_memories")
]
Query = Annotated[str, Field(description="what to look for, in natural language", min_length=1)]
Task = Annotated[str, Field(description="the task, in one sentence", min_length=1)]

_READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
_WRITE = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
)
_DELETE = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
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

    def resolve(self, ctx: Context | None, given: Mapping[str, str | None]) -> MemoryScope:
        """The scope of one call; ``given``: the tool's arguments (its ``locals()``), of which
        the scope fields are read. A field given empty (``""``) is refused as by the library
        and the REST API, not replaced by the default."""
        fields = {f: self.defaults.get(f) if given.get(f) is None else given.get(f) for f in _SCOPE}
        key = self.key
        if self.require_key:
            token = _token(ctx.headers if ctx is not None else None)
            key = verify_key(self.memory.backends.store, token) if token else None
            if key is None:
                raise PermissionDenied("this MCP server needs a valid API key (Bearer amk_...)")
        return authorise(key, **fields) if key is not None else MemoryScope.of(**fields)


@contextmanager
def _tool_errors() -> Iterator[None]:
    """agentmem's errors reach the client as tool errors with their message (the SDK hides
    the message of any other exception)."""
    try:
        yield
    except AgentMemError as exc:
        raise ToolError(f"{type(exc).__name__}: {exc}") from exc


def _brief(record: MemoryRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "text": record.text,
        "kind": record.kind.value,
        "scope": str(record.scope),
        "event_time": record.event_time.isoformat() if record.event_time else None,
        "version": record.version,
    }


def _listed(items: list[dict[str, Any]], empty: str) -> CallToolResult:
    """A tool's list result: the list as structured content, and as text one block per item
    or, with none, the sentence ``empty`` (a reply with no text reads as a failure to a client
    that shows the model only text)."""
    texts = [json.dumps(item, indent=2, ensure_ascii=False) for item in items] or [empty]
    return CallToolResult(
        content=[TextContent(type="text", text=text) for text in texts],
        structured_content={"result": items},
    )


class _Tools:
    """The tools' bodies over one memory; each takes the scope fields (hidden when pinned)."""

    def __init__(self, memory: Memory, scopes: _Scopes) -> None:
        self.memory = memory
        self.scopes = scopes

    async def add_memory(
        self,
        text: Annotated[str, Field(description="what to remember, one fact or event")],
        ctx: Context,
        kind: Annotated[
            MemoryKind, Field(description="episodic: an event; semantic: a lasting fact")
        ] = MemoryKind.EPISODIC,
        metadata: Annotated[
            dict[str, Any] | None, Field(description='JSON labels, e.g. {"topic": "travel"}')
        ] = None,
        user_id: UserId = None,
        agent_id: AgentId = None,
        thread_id: ThreadId = None,
        org_id: OrgId = None,
    ) -> dict[str, Any]:
        """Remember something (an event, a fact, a preference). Returns the memory's id."""
        with _tool_errors():
            scope = self.scopes.resolve(ctx, locals())
            record = await self.memory.aadd(text, scope=scope, kind=kind, metadata=metadata)
            return _brief(record)

    async def search_memory(
        self,
        query: Query,
        ctx: Context,
        k: Annotated[int, Field(description="how many memories to return", ge=1, le=50)] = 5,
        user_id: UserId = None,
        agent_id: AgentId = None,
        thread_id: ThreadId = None,
        org_id: OrgId = None,
    ) -> Annotated[CallToolResult, list[dict[str, Any]]]:
        """Find the memories most relevant to a query, best first."""
        with _tool_errors():
            scope = self.scopes.resolve(ctx, locals())
            hits = await self.memory.asearch(query, scope=scope, k=k)
            found = [_brief(h.record) | {"score": round(h.score, 6)} for h in hits]
            return _listed(found, "no memory matches this query")

    async def list_memories(
        self,
        ctx: Context,
        limit: Annotated[int, Field(description="page size", ge=1, le=100)] = 20,
        offset: Annotated[int, Field(description="memories to skip (paging)", ge=0)] = 0,
        kind: Annotated[MemoryKind | None, Field(description="only this kind")] = None,
        user_id: UserId = None,
        agent_id: AgentId = None,
        thread_id: ThreadId = None,
        org_id: OrgId = None,
    ) -> Annotated[CallToolResult, list[dict[str, Any]]]:
        """The memories of the scope, oldest first (page with offset)."""
        with _tool_errors():
            scope = self.scopes.resolve(ctx, locals())
            kinds = [kind] if kind is not None else None
            records = await self.memory.alist(scope=scope, kinds=kinds, limit=limit, offset=offset)
            stored = f"{kind.value} memories" if kind is not None else "memories"
            empty = (
                f"no more {stored} past offset {offset}" if offset else f"no {stored} stored here"
            )
            return _listed([_brief(r) for r in records], empty)

    async def get_context(
        self,
        query: Query,
        ctx: Context,
        max_tokens: Annotated[
            int, Field(description="the block's budget in tokens", ge=50, le=32_000)
        ] = 1000,
        user_id: UserId = None,
        agent_id: AgentId = None,
        thread_id: ThreadId = None,
        org_id: OrgId = None,
    ) -> str:
        """A prompt-ready block of what memory knows about a query, within max_tokens."""
        with _tool_errors():
            scope = self.scopes.resolve(ctx, locals())
            block = await self.memory.acontext(query, scope=scope, max_tokens=max_tokens)
            return block.text

    async def update_memory(
        self,
        memory_id: MemoryId,
        ctx: Context,
        text: Annotated[str | None, Field(description="the corrected text")] = None,
        metadata: Annotated[dict[str, Any] | None, Field(description="new JSON labels")] = None,
        importance: Annotated[float | None, Field(description="0 to 1", ge=0, le=1)] = None,
        user_id: UserId = None,
        agent_id: AgentId = None,
        thread_id: ThreadId = None,
        org_id: OrgId = None,
    ) -> dict[str, Any]:
        """Correct a memory: a new version replaces it, the old one stays in its history."""
        with _tool_errors():
            scope = self.scopes.resolve(ctx, locals())
            record = await self.memory.aupdate(
                memory_id, text=text, metadata=metadata, importance=importance, scope=scope
            )
            return _brief(record)

    async def delete_memory(
        self,
        memory_id: MemoryId,
        ctx: Context,
        user_id: UserId = None,
        agent_id: AgentId = None,
        thread_id: ThreadId = None,
        org_id: OrgId = None,
    ) -> dict[str, Any]:
        """Delete a memory that is wrong or no longer wanted (its history keeps the deletion)."""
        with _tool_errors():
            scope = self.scopes.resolve(ctx, locals())
            await self.memory.adelete(memory_id, scope=scope)
            return {"id": memory_id, "deleted": True}

    async def record_experience(
        self,
        task: Task,
        steps: Annotated[list[Step], Field(description="the steps taken, in order")],
        outcome: Annotated[Outcome, Field(description="how the attempt ended")],
        ctx: Context,
        reward: Annotated[float | None, Field(description="a score, e.g. 0 to 1")] = None,
        feedback: Annotated[str | None, Field(description="what the user said")] = None,
        user_id: UserId = None,
        agent_id: AgentId = None,
        thread_id: ThreadId = None,
        org_id: OrgId = None,
    ) -> dict[str, Any]:
        """Record how an attempt at a task went (steps taken, outcome, reward); returns the
        reflection and the procedures learned."""
        with _tool_errors():
            scope = self.scopes.resolve(ctx, locals())
            result = await self.memory.arecord_experience(
                task, steps, outcome, reward, feedback, scope=scope
            )
            return {
                "id": result.record.id,
                "reflection": result.reflection.summary,
                "procedures": [p.text for p in result.procedures],
            }

    async def recall_experience(
        self,
        task: Task,
        ctx: Context,
        k: Annotated[int, Field(description="how many past attempts", ge=1, le=20)] = 3,
        user_id: UserId = None,
        agent_id: AgentId = None,
        thread_id: ThreadId = None,
        org_id: OrgId = None,
    ) -> str:
        """Past attempts at similar tasks and the procedures learned from them, as text."""
        with _tool_errors():
            scope = self.scopes.resolve(ctx, locals())
            recall = await self.memory.arecall_experience(task, k, scope=scope)
            return recall.render() or "no past experience with tasks like this"


TOOLS: dict[str, ToolAnnotations] = {
    "add_memory": _WRITE,
    "search_memory": _READ,
    "list_memories": _READ,
    "get_context": _READ,
    "update_memory": _WRITE,
    "delete_memory": _DELETE,
    "record_experience": _WRITE,
    "recall_experience": _READ,
}
"""Each tool and what it declares it does to memory."""


def _without_scope(tool: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """``tool`` with no scope parameters in its signature (so none in its schema): the call
    acts in the server's scope."""
    signature = inspect.signature(tool, eval_str=True)

    @functools.wraps(tool)
    async def pinned(**kwargs: Any) -> Any:
        return await tool(**kwargs)

    params = [p for p in signature.parameters.values() if p.name not in _SCOPE]
    pinned.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    return pinned


def _strict(tool: Tool) -> Tool:
    """``tool`` refusing arguments it does not declare (a misspelt ``usr_id``, or a scope field
    of a pinned server) instead of ignoring them."""
    loose = tool.fn_metadata.arg_model
    strict: type[ArgModelBase] = type(
        loose.__name__, (loose,), {"model_config": ConfigDict(extra="forbid")}
    )
    tool.fn_metadata.arg_model = strict
    tool.parameters = strict.model_json_schema(by_alias=True)
    return tool


def _checked_defaults(defaults: Mapping[str, str | None]) -> dict[str, str]:
    """The default scope fields that are set, in canonical form (as ``Scope.of`` gives
    them); names outside the scope fields and bad ids are refused, as by the library."""
    scope = optional_scope_of(None, cast(ScopeKwargs, dict(defaults)))
    return scope.fields() if scope is not None else {}


def build_mcp(
    memory: Memory,
    *,
    defaults: Mapping[str, str | None] | None = None,
    pin_scope: bool = False,
    key: ApiKey | None = None,
    require_key: bool = False,
    lifespan: Callable[[MCPServer[Any]], AbstractAsyncContextManager[Any]] | None = None,
) -> MCPServer[Any]:
    """An MCP server whose tools read and write ``memory``. ``pin_scope``: every call acts in
    the ``defaults`` scope and the tools take no scope parameters; else the call's fields
    override the defaults. ``require_key``: each request must carry an API key (streamable
    HTTP); else ``key`` (if any) bounds every call. A misspelt scope name in ``defaults`` is
    a TypeError, a bad id an InvalidScope, both raised here rather than on every call."""
    defaults = _checked_defaults(defaults or {})
    if pin_scope and not defaults:
        raise InvalidScope("pin_scope needs a scope to pin: pass defaults, e.g. a user_id")
    tools = _Tools(memory, _Scopes(memory, defaults, key, require_key))
    pinned_to = ", ".join(f"{k}={v}" for k, v in defaults.items())
    built = []
    for name, hints in TOOLS.items():
        tool = getattr(tools, name)
        description = inspect.getdoc(tool) or ""
        if pin_scope:
            tool = _without_scope(tool)
            description += f" Acts in the memory of {pinned_to}."
        built.append(
            _strict(Tool.from_function(tool, name=name, description=description, annotations=hints))
        )
    server: MCPServer[Any] = MCPServer(
        "agentmem", version=__version__, instructions=INSTRUCTIONS, lifespan=lifespan, tools=built
    )
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
    pin_scope: bool = False,
    close_memory: bool = False,
) -> ASGIApp:
    """The streamable-HTTP MCP app (path ``/mcp``), every request needing an API key (and
    held to ``defaults`` with ``pin_scope``). With ``close_memory`` the memory is closed when
    the app shuts down."""

    @asynccontextmanager
    async def lifespan(_: MCPServer[Any]) -> AsyncIterator[dict[str, Any]]:
        yield {}
        if close_memory:
            memory.close()

    server = build_mcp(
        memory, defaults=defaults, pin_scope=pin_scope, require_key=True, lifespan=lifespan
    )
    return RequireKey(server.streamable_http_app(), memory)


__all__ = ["INSTRUCTIONS", "RequireKey", "build_mcp", "http_app"]
