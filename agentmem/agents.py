"""Multi-agent scopes: each agent a private scope, each team a shared one, and handoffs.

``mem.for_agent("researcher", user_id="alice", team="report")`` returns an
:class:`AgentMemory`. Its scopes, built from the existing scope fields:

- **private**: ``user_id`` (and ``org_id``) + ``agent_id="researcher"``: where its writes go by
  default;
- **team** (shared): the same ``user_id`` / ``org_id`` + ``agent_id="team:report"``: where
  ``shared=True`` writes go, readable by every agent of the team.

Reads (``search``, ``list``, ``context``, ``get``, ``history``) go through a
:class:`~agentmem.models.ScopeSet` of those two scopes, applied inside the store's SQL and the
index's filter: an agent never sees another agent's private memory, nor memories written
without an agent. ``get`` of another agent's record raises
:class:`~agentmem.errors.PermissionDenied` (a record of another user or org is
:class:`~agentmem.errors.NotFound`: its existence is not revealed across tenants).
:func:`handoff` copies selected memories into another agent's private scope, with provenance.
Agent ids starting with ``team:`` are reserved for teams.
"""

from __future__ import annotations

import builtins
import json
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from agentmem import reading, retrieval, trust, usefulness, writing
from agentmem.backends import Backends
from agentmem.buffers import Buffers, ThreadBuffer
from agentmem.context import Context
from agentmem.context import build as build_context
from agentmem.errors import Conflict, InvalidScope, NotFound, PermissionDenied, ValidationError
from agentmem.filters import parse_filters
from agentmem.models import (
    HistoryEntry,
    MemoryKind,
    MemoryRecord,
    Scope,
    ScopeSet,
    SearchHit,
    utcnow,
)
from agentmem.stores import RecordQuery
from agentmem.twins import async_twin
from agentmem.validation import RESERVED_PREFIX

TEAM_PREFIX = "team:"
"""Agent ids of team (shared) scopes start with this."""

STORE_ITEM_KEY = "handoff_store_item"
"""The metadata key of a handoff copy of a LangGraph store item: ``{"store", "namespace",
"key", "value"}`` of the item (the copy itself is a plain memory, without ``lg_*`` keys)."""


def team_agent_id(team: str) -> str:
    """The ``agent_id`` under which a team's shared memories are stored: the team's name in
    the scope ids' canonical form (NFC, stripped), so ``" trip"`` and ``"trip"`` are one team."""
    if not isinstance(team, str) or not team.strip():
        raise InvalidScope(f"team must be a non-empty name, got {team!r}")
    return f"{TEAM_PREFIX}{unicodedata.normalize('NFC', team).strip()}"


class AgentMemory:
    """One agent's handle on memory: writes to its private scope (or, with ``shared=True``, its
    team's), reads its private scope plus its team's, and nothing else.

    Build it with :meth:`Memory.for_agent`. Every method may narrow to a thread with
    ``thread_id=``. Writes record the agent as the actor in each memory's history.
    """

    def __init__(
        self,
        backends: Backends,
        buffers: Buffers,
        agent_id: str,
        *,
        user_id: str | None = None,
        team: str | None = None,
        org_id: str | None = None,
    ) -> None:
        if not isinstance(agent_id, str) or not agent_id.strip():
            # None would make the "private" scope the whole user's (every agent's memory).
            raise InvalidScope(
                f"an agent handle needs a non-empty agent_id string, got {agent_id!r}; "
                "e.g. mem.for_agent('researcher', user_id='alice')"
            )
        if user_id is None and org_id is None:
            raise InvalidScope(
                "an agent handle needs user_id= or org_id=: the user (or org) whose memory the "
                "agent works in, e.g. mem.for_agent('researcher', user_id='alice', team='report')"
            )
        if agent_id.strip().startswith(TEAM_PREFIX):
            raise InvalidScope(
                f"agent_id={agent_id!r} starts with {TEAM_PREFIX!r}, which names team scopes; "
                "pick another agent id (teams are given with team=...)"
            )
        if team is not None and (not isinstance(team, str) or not team.strip()):
            raise InvalidScope(
                f"team must be a non-empty string (the team's name) or None, got {team!r}"
            )
        self._bundle = backends
        self._call_gate = backends.calls
        self._buffers = buffers
        self.private_scope = Scope.of(org_id=org_id, user_id=user_id, agent_id=agent_id)
        self.team_scope = (
            Scope.of(org_id=org_id, user_id=user_id, agent_id=team_agent_id(team))
            if team is not None
            else None
        )
        self.agent_id: str = self.private_scope.agent_id or agent_id
        self.user_id = user_id
        self.org_id = org_id
        self.team = team
        self.tenant = Scope.of(org_id=org_id, user_id=user_id)
        """The user / org the agent works for: records outside it are never revealed."""

    def __repr__(self) -> str:
        team = f", team={self.team!r}" if self.team else ""
        return f"AgentMemory({self.agent_id!r}, {self.tenant}{team})"

    # scopes --------------------------------------------------------------------------------

    def readable(self, thread_id: str | None = None) -> ScopeSet:
        """The scopes this agent reads: its private scope and its team's (in ``thread_id``)."""
        members = [self.private_scope] + ([self.team_scope] if self.team_scope else [])
        if thread_id is not None:
            members = [_with_thread(m, thread_id) for m in members]
        return ScopeSet.of(*members)

    def writable(self, *, shared: bool = False, thread_id: str | None = None) -> Scope:
        """Where a write goes: the private scope, or the team's with ``shared=True``."""
        if shared:
            if self.team_scope is None:
                raise ValidationError(
                    f"agent {self.agent_id!r} has no team, so it cannot write shared memories; "
                    "pass team=... to mem.for_agent(...)"
                )
            scope = self.team_scope
        else:
            scope = self.private_scope
        return _with_thread(scope, thread_id) if thread_id is not None else scope

    def can_read(self, record: MemoryRecord) -> bool:
        """Whether ``record`` is in this agent's private scope or its team's."""
        return self.readable().contains(record.scope)

    # writes --------------------------------------------------------------------------------

    def add(
        self,
        text: str,
        *,
        shared: bool = False,
        thread_id: str | None = None,
        kind: str | MemoryKind = MemoryKind.EPISODIC,
        metadata: dict[str, Any] | None = None,
        event_time: datetime | str | None = None,
        importance: float | None = None,
        source: str | None = None,
        idempotency_key: str | None = None,
    ) -> MemoryRecord:
        """Store one memory in the agent's private scope (or the team's with ``shared=True``).

        Screened like every write (:func:`agentmem.trust.admit`): ``source`` as for
        :meth:`Memory.add`; a held memory is returned with ``provenance["quarantine"]``.
        ``idempotency_key`` as for :meth:`Memory.add`."""
        scope = self.writable(shared=shared, thread_id=thread_id)
        b = self.backends
        record = writing.new_record(
            b,
            scope,
            text,
            kind=kind,
            metadata=metadata,
            event_time=event_time,
            importance=importance,
        )
        done = trust.admit_once(b, [record], scope, source, idempotency_key, actor=self._actor)
        return done[0] if isinstance(done, list) else record

    def add_many(
        self,
        items: Sequence[Mapping[str, Any] | str],
        *,
        shared: bool = False,
        thread_id: str | None = None,
        source: str | None = None,
        idempotency_key: str | None = None,
    ) -> list[MemoryRecord]:
        """Store many memories in one transaction (items, ``source`` and ``idempotency_key``
        as for :meth:`Memory.add_many`; held items are returned too)."""
        scope = self.writable(shared=shared, thread_id=thread_id)
        b = self.backends
        records = writing.records_from_items(b, scope, items)
        done = trust.admit_once(b, records, scope, source, idempotency_key, actor=self._actor)
        if isinstance(done, list):
            return done
        return records

    def update(
        self,
        memory_id: str,
        *,
        text: str | None = None,
        metadata: dict[str, Any] | None = None,
        importance: float | None = None,
    ) -> MemoryRecord:
        """A new version of a memory this agent can read (private or team)."""
        current = self.get(memory_id)
        return writing.update(
            self.backends,
            memory_id,
            current.scope,
            text=text,
            metadata=metadata,
            importance=importance,
            actor=self._actor,
            by_hand=True,
        )

    def invalidate(self, memory_id: str, *, valid_to: datetime | str | None = None) -> MemoryRecord:
        """Mark a memory this agent can read as no longer true (kept for ``as_of``)."""
        current = self.get(memory_id)
        return writing.invalidate(
            self.backends, memory_id, current.scope, valid_to=valid_to, actor=self._actor
        )

    def delete(self, memory_id: str) -> None:
        """Delete a memory this agent can read (its history keeps a DELETE entry). A write of
        that id held in quarantine in the agent's scopes is dropped too, as by
        :meth:`Memory.delete`."""
        trust.delete_with_held(
            self.backends, memory_id, self.readable(), read=self.get, actor=self._actor
        )

    # reads ---------------------------------------------------------------------------------

    def get(self, memory_id: str) -> MemoryRecord:
        """One memory by id. Another agent's memory of the same user/org raises
        :class:`PermissionDenied`; an unknown id, or another tenant's, :class:`NotFound`."""
        if not isinstance(memory_id, str) or not memory_id:
            raise NotFound(f"memory id must be a non-empty string, got {memory_id!r}")
        store = self.backends.store
        found = store.get_many([memory_id], self.readable())
        if found:
            return found[0]
        anywhere = store.get_many([memory_id])
        if anywhere and self.tenant.contains(anywhere[0].scope):
            raise PermissionDenied(
                f"memory {memory_id!r} is not in agent {self.agent_id!r}'s private scope or its "
                f"team's ({self.readable()}): it belongs to another agent. Share it with "
                "handoff(...), or write shared memories with shared=True"
            )
        raise NotFound(
            f"no memory with id {memory_id!r} for agent {self.agent_id!r}; list ids with "
            "agent.list()"
        )

    def history(self, memory_id: str) -> list[HistoryEntry]:
        """Every change to a memory this agent can read, oldest first."""
        record = self.get(memory_id)
        return self.backends.store.history(memory_id, record.scope)

    def search(
        self,
        query: str,
        *,
        thread_id: str | None = None,
        k: int = 10,
        kinds: Sequence[str | MemoryKind] | str | None = None,
        filters: dict[str, Any] | None = None,
        as_of: datetime | str | None = None,
        event_after: datetime | str | None = None,
        event_before: datetime | str | None = None,
        reference_time: datetime | str | None = None,
    ) -> list[SearchHit]:
        """Hybrid search over the agent's private and team memories (as :meth:`Memory.search`)."""
        return retrieval.search_with_validation(
            self.backends,
            query,
            self.readable(thread_id),
            k=k,
            kinds=kinds,
            filters=filters,
            as_of=as_of,
            event_after=event_after,
            event_before=event_before,
            reference_time=reference_time,
        )

    def list(
        self,
        *,
        thread_id: str | None = None,
        shared: bool | None = None,
        kinds: Sequence[str | MemoryKind] | str | None = None,
        filters: dict[str, Any] | None = None,
        include_invalidated: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[MemoryRecord]:
        """The agent's memories, oldest first: private and team (``shared=None``), only the
        team's (``True``) or only its own (``False``)."""
        scope: Scope | ScopeSet = (
            self.readable(thread_id)
            if shared is None
            else self.writable(shared=shared, thread_id=thread_id)
        )
        return reading.list_records(
            self.backends,
            scope,
            kinds=kinds,
            filters=filters,
            include_invalidated=include_invalidated,
            limit=limit,
            offset=offset,
        )

    def context(
        self,
        query: str,
        *,
        thread_id: str | None = None,
        max_tokens: int = 2000,
        kinds: Sequence[str | MemoryKind] | str | None = None,
        filters: dict[str, Any] | None = None,
        as_of: datetime | str | None = None,
        candidates: int = 50,
        buffer: ThreadBuffer | None = None,
    ) -> Context:
        """A prompt-ready block from the agent's private and team memories within
        ``max_tokens``; with ``thread_id``, that thread's live buffer (the agent's own) comes
        first, or pass ``buffer=`` explicitly: a buffer the agent may not read (another
        agent's private thread, or another thread than ``thread_id``) raises
        :class:`PermissionDenied` before any of its turns is read."""
        readable = self.readable(thread_id)
        if buffer is None and thread_id is not None:
            buffer = self._buffers.live(_with_thread(self.private_scope, thread_id))
        elif buffer is not None:
            self._check_buffer(buffer, readable)
        return build_context(
            self.backends,
            query,
            readable,
            max_tokens=max_tokens,
            kinds=kinds,
            filters=filters,
            as_of=as_of,
            candidates=candidates,
            buffer=buffer,
        )

    def feedback(
        self,
        target: str | Sequence[str],
        reward: float,
        *,
        task: str | None = None,
        feedback_id: str | None = None,
    ) -> usefulness.FeedbackResult:
        """Credit a task's outcome to what a retrieval showed this agent (or to memory ids it
        can read, private or team), as :meth:`Memory.feedback`."""
        return usefulness.feedback(
            self.backends,
            self.readable(),
            target,
            reward,
            task=task,
            feedback_id=feedback_id,
        )

    # buffers and handoffs ------------------------------------------------------------------

    def _check_buffer(self, buffer: Any, readable: ScopeSet) -> None:
        """Refuse a buffer outside ``readable``: its live turns are memories of the buffer's
        scope (flushed there), so the rule of :meth:`get` applies to them."""
        if not isinstance(buffer, ThreadBuffer):
            raise ValidationError(
                f"buffer must be an agent.buffer(...), got {type(buffer).__name__}"
            )
        if not readable.contains(buffer.scope):
            raise PermissionDenied(
                f"buffer {buffer.scope} is not in agent {self.agent_id!r}'s private scope or "
                f"its team's ({readable}): it belongs to another agent, user or thread, and "
                "none of its turns were read. Use this agent's own buffer "
                "(agent.buffer(thread_id)), a team buffer (agent.buffer(thread_id, "
                "shared=True)), or share memories with handoff(...)"
            )

    def buffer(
        self, thread_id: str, *, shared: bool = False, max_tokens: int | None = None
    ) -> ThreadBuffer:
        """The agent's live buffer of ``thread_id`` (flushed into its private scope, or the
        team's with ``shared=True``)."""
        scope = self.writable(shared=shared, thread_id=thread_id)
        return self._buffers.thread(scope, max_tokens=max_tokens)

    def handoff(
        self,
        to: AgentMemory,
        *,
        ids: Sequence[str] | None = None,
        query: str | None = None,
        k: int = 5,
        note: str | None = None,
    ) -> builtins.list[MemoryRecord]:
        """Copy memories to another agent; see :func:`handoff`."""
        return handoff(self, to, ids=ids, query=query, k=k, note=note)

    # async twins: the same signatures, run in a worker thread (see agentmem.twins) ---------

    aadd = async_twin(add)
    aadd_many = async_twin(add_many)
    aupdate = async_twin(update)
    ainvalidate = async_twin(invalidate)
    adelete = async_twin(delete)
    aget = async_twin(get)
    ahistory = async_twin(history)
    asearch = async_twin(search)
    alist = async_twin(list)
    acontext = async_twin(context)
    afeedback = async_twin(feedback)
    ahandoff = async_twin(handoff)

    @property
    def backends(self) -> Backends:
        """The open bundle this agent works through (for extensions; prefer the methods)."""
        return self._bundle.opened()

    @property
    def _actor(self) -> str:
        return f"agent:{self.agent_id}"


def handoff(
    source: AgentMemory,
    target: AgentMemory,
    *,
    ids: Sequence[str] | None = None,
    query: str | None = None,
    k: int = 5,
    note: str | None = None,
) -> list[MemoryRecord]:
    """Copy memories ``source`` can read into ``target``'s private scope, with provenance.

    Select them by ``ids`` (each must be readable by ``source``: checked before anything is
    written) or by ``query`` (``source``'s top ``k`` search hits). Memories ``target`` can
    already read (its team's, say) are not copied. Each copy keeps the text, kind, event and
    validity times and importance; its metadata gains ``handoff_from`` (the source agent) and
    ``handoff_source_id``, and its provenance names the source ids, agent and scope. Handing
    the same memory to the same agent again returns the earlier copy instead of a new one,
    also when the handoffs run concurrently (a copy's id is derived from the source id and the
    target scope). The copy of a LangGraph store item (``agentmem_graphs.AgentMemStore``) is
    a plain memory: the reserved ``lg_*`` keys stay behind and the item's store, namespace, key
    and value are kept under the metadata key ``handoff_store_item``.
    Both agents must work for the same user / org. Returns the target's copies, in the order
    selected.
    """
    _check_handoff(source, target, ids, query, note)
    if ids is not None:
        selected = [source.get(i) for i in ids]
    else:
        selected = [h.record for h in source.search(query or "", k=k)]
    selected = [r for r in dict((r.id, r) for r in selected).values() if not target.can_read(r)]
    if not selected:
        return []
    b = source.backends
    actor = f"handoff:{source.agent_id}->{target.agent_id}"
    at = utcnow().isoformat()
    while True:
        earlier = _earlier_copies(b, target.private_scope, selected)
        fresh = [r for r in selected if r.id not in earlier]
        items = [_handoff_item(r, source, target, note, at) for r in fresh]
        copies = writing.records_from_items(b, target.private_scope, items)
        for original, copy in zip(fresh, copies, strict=True):
            copy.id = _copy_id(original.id, target.private_scope)
        try:
            writing.insert(b, copies, actor=actor)
        except Conflict:
            # A concurrent handoff stored a copy first (under the same id): read the copies
            # again and store only the ones still missing. Any other conflict is not ours.
            if not _earlier_copies(b, target.private_scope, fresh):
                raise
            continue
        by_source = {**earlier, **{c.metadata["handoff_source_id"]: c for c in copies}}
        return [by_source[r.id] for r in selected]


_HANDOFF = uuid.UUID("5b0e7c3a-9d24-4f61-8a57-2e1c6b9f0d43")


def _copy_id(source_id: str, target: Scope) -> str:
    """The id of the copy of ``source_id`` in the private scope ``target``: the same for every
    handoff of that memory to that agent, so two concurrent handoffs cannot both store one."""
    return str(uuid.uuid5(_HANDOFF, f"{source_id}|{json.dumps(target.fields(), sort_keys=True)}"))


def _earlier_copies(
    b: Backends, target: Scope, selected: Sequence[MemoryRecord]
) -> dict[str, MemoryRecord]:
    """The copies the private scope ``target`` holds of ``selected``, by source id: under their
    copy id, or (copies made before copies had one) by their ``handoff_source_id``."""
    by_copy_id = {_copy_id(r.id, target): r.id for r in selected}
    found = {by_copy_id[c.id]: c for c in b.store.get_many(list(by_copy_id)) if c.scope == target}
    rest = [r.id for r in selected if r.id not in found]
    for start in range(0, len(rest), 1000):
        chunk = rest[start : start + 1000]
        query = RecordQuery(
            scope=target,
            conditions=parse_filters({"handoff_source_id": {"$in": chunk}}),
            include_invalidated=True,
            limit=len(chunk) * 4,
        )
        for copy in b.store.query(query):
            found.setdefault(str(copy.metadata.get("handoff_source_id")), copy)
    return found


def _check_handoff(
    source: AgentMemory,
    target: AgentMemory,
    ids: Sequence[str] | None,
    query: str | None,
    note: str | None,
) -> None:
    """Refuse a handoff across tenants or Memories, to itself, or with bad arguments."""
    if not isinstance(target, AgentMemory):
        raise ValidationError(
            f"hand memories to an agent handle, got {type(target).__name__}; e.g. "
            "mem.for_agent('writer', user_id=...)"
        )
    if source._bundle is not target._bundle:
        raise ValidationError("both agents must be handles of the same Memory")
    if source.tenant != target.tenant:
        raise PermissionDenied(
            f"a handoff stays within one user / org: {source.tenant} cannot hand memories to "
            f"{target.tenant}"
        )
    if source.agent_id == target.agent_id:
        raise ValidationError(f"agent {source.agent_id!r} cannot hand memories to itself")
    if (ids is None) == (query is None):
        raise ValidationError("pass ids=[...] or query='...' (one of them) to choose memories")
    if note is not None and not isinstance(note, str):
        raise ValidationError(f"note must be a string, got {type(note).__name__}")
    if ids is not None and (isinstance(ids, str) or not isinstance(ids, Sequence)):
        raise ValidationError("ids must be a list of memory ids")


def _handoff_item(
    record: MemoryRecord, source: AgentMemory, target: AgentMemory, note: str | None, at: str
) -> dict[str, Any]:
    """The copy of ``record`` handed from ``source`` to ``target``, as an ``add_many`` item.

    A LangGraph store item's reserved ``lg_*`` keys stay behind (only the store writes them,
    and the copy is no item of any store): the copy is a plain memory of ``target`` whose
    metadata keeps the item's value, namespace, key and store under :data:`STORE_ITEM_KEY`."""
    metadata = {k: v for k, v in record.metadata.items() if not k.startswith(RESERVED_PREFIX)}
    item = _store_item(record.metadata)
    if item is not None:
        metadata[STORE_ITEM_KEY] = item
    return {
        "text": record.text,
        "kind": record.kind,
        "metadata": {
            **metadata,
            "handoff_from": source.agent_id,
            "handoff_source_id": record.id,
        },
        "event_time": record.event_time,
        "valid_from": record.valid_from,
        "valid_to": record.valid_to,
        "importance": record.importance,
        "provenance": {
            "extractor": "handoff",
            "source_ids": [record.id],
            "from_agent": source.agent_id,
            "from_scope": record.scope.fields(),
            "to_agent": target.agent_id,
            "at": at,
            **({"note": note} if note else {}),
        },
    }


def _store_item(metadata: Mapping[str, Any]) -> dict[str, Any] | None:
    """What a LangGraph store item's metadata says of it (its store, namespace, key and
    value), for the handoff copy of it; None for any other memory."""
    value, namespace = metadata.get("lg_value"), metadata.get("lg_ns")
    key, store = metadata.get("lg_key"), metadata.get("lg_store")
    if not (isinstance(value, dict) and isinstance(namespace, str) and isinstance(key, str)):
        return None
    return {"store": store, "namespace": namespace.split("."), "key": key, "value": value}


def _with_thread(scope: Scope, thread_id: str) -> Scope:
    return Scope.of(**{**scope.fields(), "thread_id": thread_id})


__all__ = ["STORE_ITEM_KEY", "TEAM_PREFIX", "AgentMemory", "handoff", "team_agent_id"]
