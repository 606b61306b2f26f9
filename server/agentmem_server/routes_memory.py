"""Routes over memories: add, batch, get, update, delete, history, list, search, context."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response

from agentmem.context import Context
from agentmem.errors import InvalidFilter, InvalidText
from agentmem.models import HistoryEntry, MemoryKind, MemoryRecord, SearchHit
from agentmem_server.auth import authorise
from agentmem_server.deps import Key, QueryScope, State
from agentmem_server.http_errors import CONFLICT
from agentmem_server.schemas import (
    AddBatch,
    AddMemory,
    ContextRequest,
    MemoryPage,
    SearchRequest,
    UpdateMemory,
)

router = APIRouter(prefix="/v1", tags=["memories"])


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="any string the client makes per write (e.g. a UUID): a retry with the same "
        "key returns what the first request stored and writes nothing (409 if the key was used "
        "for different content)",
    ),
]


@router.post("/memories", status_code=201, summary="Add one memory", responses=CONFLICT)
def add_memory(
    body: AddMemory, key: Key, app: State, idempotency_key: IdempotencyKey = None
) -> MemoryRecord:
    """Store one memory (text, or chat messages as one episode); durable when this returns.
    Send an ``Idempotency-Key`` header to make retries safe."""
    scope = authorise(key, **body.scope_kwargs())
    if (body.text is None) == (body.messages is None):
        raise InvalidText("pass exactly one of text or messages")
    content: Any = (
        body.text
        if body.text is not None
        else [m.model_dump(exclude_none=True) for m in body.messages or []]
    )
    return app.memory.add(
        content,
        scope=scope,
        kind=body.kind,
        metadata=body.metadata,
        event_time=body.event_time,
        importance=body.importance,
        infer=body.infer,
        source=body.source,
        idempotency_key=idempotency_key,
    )


@router.post("/memories/batch", status_code=201, summary="Add many memories", responses=CONFLICT)
def add_memories(
    body: AddBatch, key: Key, app: State, idempotency_key: IdempotencyKey = None
) -> list[MemoryRecord]:
    """Store many memories in one transaction: one bad item rejects the whole batch. Send an
    ``Idempotency-Key`` header to make retries safe."""
    scope = authorise(key, **body.scope_kwargs())
    items = [item.model_dump(exclude_none=True) for item in body.items]
    return app.memory.add_many(
        items, scope=scope, infer=body.infer, idempotency_key=idempotency_key
    )


def _json_filters(text: str | None) -> dict[str, Any] | None:
    if text is None or not text.strip():
        return None
    try:
        found = json.loads(text)
    except (ValueError, RecursionError):  # nested deeper than Python's parser goes
        found = None
    if not isinstance(found, dict):
        raise InvalidFilter(
            f'filters={text[:80]!r} is not a JSON object; pass e.g. filters={{"topic": "travel"}}'
        )
    return found


@router.get("/memories", summary="List memories (paged)")
def list_memories(
    scope: QueryScope,
    app: State,
    kinds: Annotated[list[MemoryKind] | None, Query()] = None,
    include_invalidated: bool = False,
    filters: Annotated[
        str | None,
        Query(max_length=10_000, description='metadata filter as JSON, e.g. {"topic": "travel"}'),
    ] = None,
    event_after: datetime | None = None,
    event_before: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> MemoryPage:
    """Memories in a scope, oldest first; follow ``next_offset`` for the next page.
    ``filters`` matches metadata (the search filter language), ``event_after`` /
    ``event_before`` bound the event time."""
    items = app.memory.list(
        scope=scope,
        kinds=kinds,
        filters=_json_filters(filters),
        include_invalidated=include_invalidated,
        event_after=event_after,
        event_before=event_before,
        limit=limit + 1,
        offset=offset,
    )
    more = len(items) > limit
    return MemoryPage(
        items=items[:limit],
        limit=limit,
        offset=offset,
        next_offset=offset + limit if more else None,
    )


@router.get("/memories/{memory_id}", summary="Get one memory")
def get_memory(memory_id: str, scope: QueryScope, app: State) -> MemoryRecord:
    """One memory by id (404 when absent or outside the scope)."""
    return app.memory.get(memory_id, scope=scope)


@router.patch("/memories/{memory_id}", summary="Update a memory", responses=CONFLICT)
def update_memory(memory_id: str, body: UpdateMemory, key: Key, app: State) -> MemoryRecord:
    """Write a new version (text, metadata or importance); the old one stays in its history."""
    scope = authorise(key, **body.scope_kwargs())
    return app.memory.update(
        memory_id,
        text=body.text,
        metadata=body.metadata,
        importance=body.importance,
        scope=scope,
    )


@router.delete(
    "/memories/{memory_id}", status_code=204, summary="Delete a memory", responses=CONFLICT
)
def delete_memory(memory_id: str, scope: QueryScope, app: State) -> Response:
    """Delete a memory from the store and the index; its history keeps a DELETE entry."""
    app.memory.delete(memory_id, scope=scope)
    return Response(status_code=204)


@router.get("/memories/{memory_id}/history", summary="History of a memory")
def get_memory_history(memory_id: str, scope: QueryScope, app: State) -> list[HistoryEntry]:
    """Every change to a memory, oldest first (kept after deletion)."""
    return app.memory.history(memory_id, scope=scope)


@router.post("/memories/search", summary="Search memories")
def search_memories(body: SearchRequest, key: Key, app: State) -> list[SearchHit]:
    """The ``k`` memories most relevant to ``query`` in the scope, best first (hybrid)."""
    scope = authorise(key, **body.scope_kwargs())
    return app.memory.search(
        body.query,
        scope=scope,
        k=body.k,
        kinds=body.kinds,
        filters=body.filters,
        as_of=body.as_of,
        event_after=body.event_after,
        event_before=body.event_before,
        reference_time=body.reference_time,
        expand_links=body.expand_links,
        include_quarantined=body.include_quarantined,
    )


@router.post("/context", tags=["context"], summary="Prompt-ready context")
def get_context(body: ContextRequest, key: Key, app: State) -> Context:
    """A block of the most relevant memories that never exceeds ``max_tokens``."""
    scope = authorise(key, **body.scope_kwargs())
    return app.memory.context(
        body.query,
        scope=scope,
        max_tokens=body.max_tokens,
        kinds=body.kinds,
        filters=body.filters,
        as_of=body.as_of,
    )


__all__ = ["router"]
