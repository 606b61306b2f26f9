"""The memory controller: every read and write of memory goes through :class:`Memory`."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Unpack

from pydantic import BaseModel

from agentmem import (
    erasure,
    indexing,
    ingest,
    reading,
    retrieval,
    timeparse,
    transfer,
    trust,
    usefulness,
    writing,
)
from agentmem.agents import AgentMemory
from agentmem.answering import answer as recall_answer
from agentmem.backends import Backends, check_memory_arguments, open_backends
from agentmem.buffers import Buffers, ThreadBuffer, buffer_backend_from_url
from agentmem.context import Context
from agentmem.context import build as build_context
from agentmem.embedders import Embedder
from agentmem.erasure import ForgetReport
from agentmem.errors import InvalidSettings, MemoryClosed, ValidationError
from agentmem.experience import api as experience_api
from agentmem.experience.models import ExperienceAdvice, ExperienceResult, Outcome, Procedure, Step
from agentmem.graph import GraphAPI
from agentmem.models import (
    HistoryEntry,
    MemoryKind,
    MemoryRecord,
    MemoryStats,
    Scope,
    ScopeSummary,
    SearchHit,
)
from agentmem.notes import Link, NotesAPI
from agentmem.notes import api as notes
from agentmem.parametric import (
    QueryEncoderSource,
    RecallAnswer,
    RecallSource,
    discover_recall_models,
)
from agentmem.profiles import Profile
from agentmem.scoping import ScopeKwargs, optional_scope_of, scope_of
from agentmem.semantic import extractor as semantic_pipeline
from agentmem.semantic.episodes import render_messages
from agentmem.settings import Settings
from agentmem.trust import Quarantine
from agentmem.twins import CLOSED_MESSAGE, Closeable, async_iter_twin, async_twin
from agentmem.usefulness import FeedbackResult
from agentmem.validation import check_kinds


class Memory(Closeable):
    """Lifelong memory for agents, on embedded defaults or on servers, with one API.

    ``Memory()`` opens the embedded default under ``./.agentmem`` (SQLite + Qdrant Edge +
    all-MiniLM-L6-v2, no server, no network); ``Memory(home=path)`` puts it elsewhere;
    ``Memory(settings=Settings(store_url=..., vectors_url=...))`` uses servers.

    Every method takes the scope as keywords (``org_id``, ``user_id``, ``agent_id``,
    ``thread_id``; at least one) or as ``scope=Scope(...)`` (see :mod:`agentmem.scoping`).
    Each has an ``a``-prefixed async twin with the same signature (``aadd``, ``asearch``,
    ...). Use it as a context manager (``with`` or ``async with``), or call :meth:`close`.

    ``query_encoders`` hands out retriever adapters per scope (by default the adapter registry
    of the installed ``agentmem_gpu`` package, found through the ``agentmem.query_encoders`` entry
    point; ``AGENTMEM_ADAPTERS=off`` turns that off): searches in a scope with a promoted
    adapter embed their query through it. ``recall_models`` hands out recall adapters for
    :meth:`recall` the same way (the ``agentmem.recall_models`` entry point)."""

    def __init__(
        self,
        *,
        home: str | Path | None = None,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        query_encoders: QueryEncoderSource | None = None,
        recall_models: RecallSource | None = None,
    ) -> None:
        if settings is not None and home is not None:
            raise InvalidSettings("pass home= or settings=, not both (set Settings(home=...))")
        check_memory_arguments(home, settings, embedder)
        if settings is None:
            settings = Settings.load(**({"home": Path(home)} if home is not None else {}))
        self.settings = settings
        buffer_backend = buffer_backend_from_url(
            settings.resolved_buffer_url(), settings.buffer, timeout=settings.connect_timeout_s
        )
        self._backends: Backends | None = open_backends(settings, embedder, query_encoders)
        self._buffers = Buffers(self._backends, buffer_backend)
        self._call_gate = self._backends.calls  # counts the async calls running (see close)
        # Recall adapters (the gpu plugin's registry) are discovered on the first recall().
        self._recall_models = recall_models
        self._recall_discovered = recall_models is not None
        # A crash may have left index updates and a forget unfinished: finish both before reads.
        indexing.sync_on_open(self._backends)
        erasure.resume(self._backends, self._buffers)

    # lifecycle ---------------------------------------------------------------------------

    @property
    def backends(self) -> Backends:
        """The open store, index and embedder (for extensions; prefer the methods)."""
        if self._backends is None:
            raise MemoryClosed(CLOSED_MESSAGE)
        return self._backends

    @property
    def buffers(self) -> Buffers:
        """The short-term buffers (for extensions; prefer :meth:`buffer`)."""
        return self._buffers

    @property
    def graph(self) -> GraphAPI:
        """The knowledge graph built from facts: ``neighbors``, ``timeline``, ``path``,
        ``community``, ``export``, merges and ``rebuild``. See :class:`~agentmem.graph.GraphAPI`."""
        return GraphAPI(self.backends)

    def warm_up(self) -> None:
        """Load now what the first search would load: the embedding model and the date parser
        (a query naming a time imports it, ~0.3 s alone). A server calls this before it reports
        ready, so that a burst of first requests does not queue on those loads; everything
        works without it."""
        backends = self.backends
        backends.query_vector("warm up", Scope(user_id="warm-up"))
        timeparse.warm_up()

    def close(self) -> None:
        """Flush and close every backend, and release the embedded home. Safe to call twice.

        Refuses new async calls and waits first for running ones (``aadd``, ...: up to
        ``agentmem.twins.CLOSE_WAIT_S``, 30 s); then flushes in-process buffers into memory."""
        if self._backends is not None:
            self._call_gate.drain()
            try:
                self._buffers.close()
            finally:
                backends, self._backends = self._backends, None
                backends.close()

    # writes ------------------------------------------------------------------------------

    def add(
        self,
        text: str | Sequence[Mapping[str, Any]],
        *,
        scope: Scope | None = None,
        kind: str | MemoryKind = MemoryKind.EPISODIC,
        metadata: dict[str, Any] | None = None,
        event_time: datetime | str | None = None,
        importance: float | None = None,
        infer: bool | str | None = None,
        source: str | None = None,
        idempotency_key: str | None = None,
        **where: Unpack[ScopeKwargs],
    ) -> MemoryRecord:
        """Store one memory and return it. Durable and searchable when this returns.

        ``text`` may also be chat messages (``[{"role": "user", "content": "..."}]``), stored
        as one episode of ``"speaker: content"`` lines. ``infer`` (default: the ``infer``
        setting, off) extracts facts from an episode: ``True`` now, as semantic memories
        deduplicated and checked for contradictions against what is known (an LLM failure
        leaves the episode marked pending, never lost); ``"deferred"`` marks it for
        :func:`agentmem.semantic.extract_pending` / consolidation.

        ``source`` names who wrote it (``user``, ``agent``, ``tool``, ``import``; default
        ``Settings.trust.default_source``): a source trusted less than ``trusted`` sends the
        memory to :attr:`quarantine` (returned with ``provenance["quarantine"] ==
        "pending"``, not searchable until approved). See :mod:`agentmem.trust`.

        ``idempotency_key`` (any string the caller makes per write, e.g. a UUID; unique within
        the scope) makes retries safe: a repeat returns what the first call stored and writes
        nothing (:class:`~agentmem.errors.Conflict` for other text; once that memory is deleted
        or forgotten, :class:`~agentmem.errors.MemoryDeleted`: a retry never brings it back).
        """
        scope = scope_of(scope, where)
        if isinstance(text, Sequence) and not isinstance(text, str | bytes):
            text = render_messages(text, max_chars=self.settings.max_text_chars)
        record = writing.new_record(
            self.backends,
            scope,
            text,
            kind=kind,
            metadata=metadata,
            event_time=event_time,
            importance=importance,
        )
        mode = semantic_pipeline.infer_mode(infer, self.settings.infer, record.kind)
        (stored,) = ingest.admit(
            self.backends,
            [record],
            scope,
            mode=mode,
            source=source,
            idempotency_key=idempotency_key,
        )
        return stored

    def add_many(
        self,
        items: Sequence[Mapping[str, Any] | str],
        *,
        scope: Scope | None = None,
        infer: bool | str | None = None,
        source: str | None = None,
        idempotency_key: str | None = None,
        **where: Unpack[ScopeKwargs],
    ) -> list[MemoryRecord]:
        """Store many memories in one transaction with batched embedding.

        Each item is a string or a dict with ``text`` and optionally ``metadata``,
        ``event_time``, ``kind``, ``importance``, ``valid_from``, ``valid_to``. Every item is
        validated before anything is written: one bad item rejects the whole call. ``infer``
        is as for :meth:`add` and applies to the episodes among the items; ``source`` as for
        :meth:`add` (held items are returned too, marked ``provenance["quarantine"]``);
        ``idempotency_key`` as for :meth:`add`, for the whole batch."""
        scope = scope_of(scope, where)
        records = writing.records_from_items(self.backends, scope, items)
        mode = semantic_pipeline.infer_mode(infer, self.settings.infer, MemoryKind.EPISODIC)
        return ingest.admit(
            self.backends,
            records,
            scope,
            mode=mode,
            source=source,
            idempotency_key=idempotency_key,
        )

    def update(
        self,
        memory_id: str,
        *,
        text: str | None = None,
        metadata: dict[str, Any] | None = None,
        importance: float | None = None,
        scope: Scope | None = None,
        **where: Unpack[ScopeKwargs],
    ) -> MemoryRecord:
        """Write a new version of a memory (text, metadata or importance); the old version
        stays in :meth:`history`. With a scope, only a record in that scope can be changed."""
        scope = optional_scope_of(scope, where)
        return writing.update(self.backends, memory_id, scope, text=text, metadata=metadata,
                              importance=importance, by_hand=True)  # fmt: skip

    def invalidate(
        self,
        memory_id: str,
        *,
        valid_to: datetime | str | None = None,
        scope: Scope | None = None,
        **where: Unpack[ScopeKwargs],
    ) -> MemoryRecord:
        """Mark a memory as no longer true (kept, found by ``search(as_of=...)``); a profile value
        drawn from it is cleared at once. A ``valid_to`` ahead schedules it: valid until then."""
        scope = optional_scope_of(scope, where)
        return writing.invalidate(self.backends, memory_id, scope, valid_to=valid_to)

    def delete(
        self, memory_id: str, *, scope: Scope | None = None, **where: Unpack[ScopeKwargs]
    ) -> None:
        """Delete a memory from the store and the index; its history keeps a DELETE entry. A
        write of that id held in quarantine is dropped too (see :func:`trust.delete_with_held`)."""
        trust.delete_with_held(self.backends, memory_id, optional_scope_of(scope, where))

    def delete_all(self, *, scope: Scope | None = None, **where: Unpack[ScopeKwargs]) -> int:
        """Delete every memory in a scope (a scope is required); returns how many. Writes held
        in quarantine there are dropped too (see :func:`trust.delete_scope_with_held`)."""
        return trust.delete_scope_with_held(self.backends, scope_of(scope, where))

    def forget(
        self,
        ids: str | Sequence[str] | None = None,
        *,
        reason: str,
        purge: bool = False,
        scope: Scope | None = None,
        **where: Unpack[ScopeKwargs],
    ) -> ForgetReport:
        """Forget memories everywhere they were copied: ``ids`` (each inside the scope), or
        with no ids every memory of the scope. Removes them and everything derived only from
        them (computed from provenance) from the store (history keeps a content-free
        tombstone; ``purge=True`` erases the history too), the vector and BM25 indexes, the
        graph, caches, quarantine and live buffers, and taints every adapter trained on them
        (it stops serving at once; consolidation retrains a clean one and probes it).

        Idempotent; journaled (a crash is finished on the next open); memories outside the
        scope raise :class:`~agentmem.errors.PermissionDenied` and nothing is forgotten.
        Returns the :class:`~agentmem.erasure.ForgetReport` (also kept in the ledger)."""
        scope = scope_of(scope, where)
        wanted = [ids] if isinstance(ids, str) else ids
        return erasure.forget(
            self.backends, self._buffers, scope, wanted, reason=reason, purge=purge
        )

    @property
    def quarantine(self) -> Quarantine:
        """Memories from untrusted sources awaiting review: ``list``, ``approve``, ``reject``
        (see :mod:`agentmem.trust`)."""
        return Quarantine(self.backends)

    # reads -------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        scope: Scope | None = None,
        k: int = 10,
        kinds: Sequence[str | MemoryKind] | str | None = None,
        filters: dict[str, Any] | None = None,
        as_of: datetime | str | None = None,
        event_after: datetime | str | None = None,
        event_before: datetime | str | None = None,
        reference_time: datetime | str | None = None,
        include_quarantined: bool = False,
        expand_links: int = 0,
        **where: Unpack[ScopeKwargs],
    ) -> list[SearchHit]:
        """The ``k`` memories in scope most relevant to ``query``, best first (hybrid:
        dense + BM25 + conversational windows + time, fused by reciprocal rank fusion).

        ``filters`` match metadata (see :mod:`agentmem.filters`); ``as_of`` returns what was
        valid at that time, including memories invalidated since; ``event_after`` /
        ``event_before`` bound the event time; ``reference_time`` is "now" for relative times
        in the query ("last week"), default the current time, read in the calendar of its zone
        (a ``ZoneInfo`` or an offset; naive: UTC). Hits' ``channels``: each channel's rank, score.

        ``include_quarantined`` appends up to ``k`` held memories of untrusted sources that
        share words with the query and meet its other constraints (channel ``quarantine``).

        ``expand_links`` (0-3 hops) adds the notes linked to the top hits (see :meth:`links`)
        as one more ranked list, fused by the same reciprocal rank fusion (channel ``links``).
        """
        scope = scope_of(scope, where)
        return retrieval.search_with_validation(
            self.backends,
            query,
            scope,
            k=k,
            kinds=kinds,
            filters=filters,
            as_of=as_of,
            event_after=event_after,
            event_before=event_before,
            reference_time=reference_time,
            expand_links=expand_links,
            include_quarantined=include_quarantined,
        )

    def context(
        self,
        query: str,
        *,
        scope: Scope | None = None,
        max_tokens: int = 2000,
        kinds: Sequence[str | MemoryKind] | str | None = None,
        filters: dict[str, Any] | None = None,
        as_of: datetime | str | None = None,
        candidates: int = 50,
        buffer: ThreadBuffer | None = None,
        **where: Unpack[ScopeKwargs],
    ) -> Context:
        """A prompt-ready block of the memories most relevant to ``query``, grouped by kind
        (facts, procedures, experiences, a dated timeline), near-duplicates removed, that
        never exceeds ``max_tokens`` (counted with tiktoken, ``Settings.token_encoding``).

        A live conversation comes first: the most recent turns of ``buffer``, or, when the
        scope names a ``thread_id`` whose buffer holds turns, of that buffer (at most
        ``Settings.buffer.context_share`` of the budget). A ``buffer`` outside the scope
        (another user's, agent's or thread's) raises ``PermissionDenied``, reading nothing."""
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ValidationError(f"max_tokens must be a positive integer, got {max_tokens!r}")
        if buffer is not None and not isinstance(buffer, ThreadBuffer):
            raise ValidationError(f"buffer must be a mem.buffer(...), got {type(buffer).__name__}")
        scope = scope_of(scope, where)
        return build_context(
            self.backends,
            query,
            scope,
            max_tokens=max_tokens,
            kinds=kinds,
            filters=filters,
            as_of=as_of,
            candidates=candidates,
            buffer=buffer if buffer is not None else self._buffers.live(scope),
        )

    def recall(
        self,
        question: str,
        *,
        scope: Scope | None = None,
        k: int = 5,
        kinds: Sequence[str | MemoryKind] | str | None = None,
        gate_threshold: float | None = None,
        **where: Unpack[ScopeKwargs],
    ) -> RecallAnswer:
        """Answer ``question`` from the scope's memory: closed-book by the scope's promoted
        recall adapter (never another scope's) when its confidence passes its gate, else from
        retrieval (the best of ``k`` search hits). Without the ``gpu`` extra or a promoted
        recall adapter, the answer is always retrieved.

        ``gate_threshold`` overrides the adapter's gate (a mean answer-token log-probability,
        so a number <= 0; anything else raises ValidationError) for this call. See
        :class:`~agentmem.parametric.RecallAnswer`.
        """
        scope = scope_of(scope, where)
        if not self._recall_discovered:
            self._recall_models = discover_recall_models(self.settings)
            self._recall_discovered = True
        return recall_answer(
            self.backends,
            self._recall_models,
            question,
            scope,
            k=k,
            kinds=check_kinds(kinds),
            gate_threshold=gate_threshold,
        )

    # short-term buffers and agents -----------------------------------------------------

    def buffer(
        self,
        *,
        scope: Scope | None = None,
        max_tokens: int | None = None,
        **where: Unpack[ScopeKwargs],
    ) -> ThreadBuffer:
        """The live buffer of a conversation thread: ``append`` turns, read ``messages()`` or a
        ``window(max_tokens)``; past its token budget (``max_tokens``, default
        ``Settings.buffer.max_tokens``) or on a topic shift, the oldest segment is flushed into
        episodic memory in this scope. See :class:`~agentmem.buffers.ThreadBuffer`."""
        return self._buffers.thread(scope_of(scope, where), max_tokens=max_tokens)

    def for_agent(
        self,
        agent_id: str,
        *,
        user_id: str | None = None,
        team: str | None = None,
        org_id: str | None = None,
    ) -> AgentMemory:
        """A handle for one agent: it writes to its private scope (``shared=True``: its team's)
        and reads its private plus its team's scope, never another agent's private memory.
        See :class:`~agentmem.agents.AgentMemory`."""
        return AgentMemory(
            self.backends, self._buffers, agent_id, user_id=user_id, team=team, org_id=org_id
        )

    def get(
        self, memory_id: str, *, scope: Scope | None = None, **where: Unpack[ScopeKwargs]
    ) -> MemoryRecord:
        """One memory by id (:class:`NotFound` if absent or outside the given scope)."""
        scope = optional_scope_of(scope, where)
        return writing.get_one(self.backends, memory_id, scope)

    def links(
        self, memory_id: str, *, scope: Scope | None = None, **where: Unpack[ScopeKwargs]
    ) -> builtins.list[Link]:
        """A note's links, out and in, oldest first: typed (``related``, ``elaborates``,
        ``contradicts``, ``follows``), with who made each and why. Make or remove links and
        undo an evolution with :attr:`notes`."""
        return notes.links_of(self.backends, memory_id, optional_scope_of(scope, where))

    @property
    def notes(self) -> NotesAPI:
        """Linked notes: ``links``, ``link`` (by hand), ``unlink``, ``undo`` (an evolution).
        See :mod:`agentmem.notes`."""
        return NotesAPI(self.backends)

    def profile(
        self,
        *,
        org_id: str | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        model: type[BaseModel] | None = None,
    ) -> Profile:
        """The maintained profile of a user (or, without ``user_id``, an agent): ``get()``,
        ``set(...)``, ``history(field)``, ``refresh()``. ``model`` declares its typed fields
        (default :class:`~agentmem.profiles.UserProfile`)."""
        scope = Scope.of(org_id=org_id, user_id=user_id, agent_id=agent_id)
        return Profile(self.backends, scope, model)

    def history(
        self, memory_id: str, *, scope: Scope | None = None, **where: Unpack[ScopeKwargs]
    ) -> list[HistoryEntry]:
        """Every change to a memory, oldest first; kept after the memory is deleted."""
        return reading.history_of(self.backends, memory_id, optional_scope_of(scope, where))

    def list(
        self,
        *,
        scope: Scope | None = None,
        kinds: Sequence[str | MemoryKind] | str | None = None,
        filters: dict[str, Any] | None = None,
        include_invalidated: bool = False,
        event_after: datetime | str | None = None,
        event_before: datetime | str | None = None,
        limit: int = 100,
        offset: int = 0,
        **where: Unpack[ScopeKwargs],
    ) -> list[MemoryRecord]:
        """Memories in a scope, oldest first, paged by ``limit`` and ``offset``;
        ``event_after`` / ``event_before`` bound the event time (memories without one are
        left out when either is given)."""
        return reading.list_records(
            self.backends,
            scope_of(scope, where),
            kinds=kinds,
            filters=filters,
            include_invalidated=include_invalidated,
            event_after=event_after,
            event_before=event_before,
            limit=limit,
            offset=offset,
        )

    def scopes(
        self, *, scope: Scope | None = None, **where: Unpack[ScopeKwargs]
    ) -> builtins.list[ScopeSummary]:
        """Every scope holding memories inside the given one (``user_id="alice"``: each of
        Alice's agents and threads), with its counts by kind, in scope order."""
        scope = scope_of(scope, where)
        return self.backends.store.scope_summaries(scope)

    def stats(self) -> MemoryStats:
        """How many memories, history entries, indexed vectors and pending index updates."""
        return reading.stats(self.backends)

    def export(
        self, *, page: int = 500, include_quarantined: bool = False
    ) -> Iterator[MemoryRecord]:
        """Every memory in every scope, in id order; ``include_quarantined`` adds held ones."""
        return transfer.export_records(self.backends, page, include_quarantined)

    def import_records(self, records: Iterable[MemoryRecord | Mapping[str, Any]]) -> int:
        """Insert exported records verbatim (same ids, times, versions): see
        :func:`agentmem.transfer.import_records`. Returns how many were stored or held."""
        return transfer.import_records(self.backends, records)

    def reindex(
        self, *, rebuild: bool = False, progress: Callable[[int], None] | None = None
    ) -> int:
        """Make the vector index match the store (the store is the truth); with ``rebuild``
        empty it first. ``progress`` is called with the number of records done per page."""
        return indexing.reindex(self.backends, rebuild=rebuild, progress=progress)

    # learning from outcomes ------------------------------------------------------------

    def feedback(
        self,
        target: str | Sequence[str],
        reward: float,
        *,
        task: str | None = None,
        feedback_id: str | None = None,
        scope: Scope | None = None,
        **where: Unpack[ScopeKwargs],
    ) -> FeedbackResult:
        """Report how a task went to the memories that served it: ``target`` is a retrieval
        id (``hit.retrieval_id`` / ``context.retrieval_id``: credits exactly what was shown)
        or a list of memory ids; ``reward`` is within ``Settings.utility.reward_range``
        (default [-1, 1]). Each memory's learned utility moves toward the reward and search
        re-ranks by it (see :mod:`agentmem.usefulness`).

        Idempotent by ``feedback_id`` (default: the retrieval id): a repeat returns
        ``applied=False`` and changes nothing. Unknown ids, and those of another scope, raise
        :class:`~agentmem.errors.NotFound`; nothing changes on error."""
        scope = scope_of(scope, where)
        return usefulness.feedback(
            self.backends, scope, target, reward, task=task, feedback_id=feedback_id
        )

    # experience --------------------------------------------------------------------------

    def record_experience(
        self,
        task: str,
        steps: Sequence[Step | Mapping[str, Any]],
        outcome: str | Outcome,
        reward: float | None = None,
        feedback: str | None = None,
        *,
        scope: Scope | None = None,
        metadata: dict[str, Any] | None = None,
        used_procedures: Sequence[str] | Mapping[str, bool | str] | None = None,
        **where: Unpack[ScopeKwargs],
    ) -> ExperienceResult:
        """Store an attempt at a task: its trajectory (``steps``: dicts or :class:`Step` with
        ``action``, optional ``args``, ``observation``, ``thought``, ``ok``, ``error``), the
        ``outcome`` (success / failure / partial), a ``reward`` within
        ``Settings.experience.reward_range`` and ``feedback``. Stores a reflection (LLM when
        configured, else rules) and distils the trajectory into procedures.

        ``used_procedures`` reports the procedures the attempt followed: a list of ids (each
        counted with this outcome) or ``{id: True/False}`` (helped or not); their success
        rates and last use are updated, and ones that keep failing are demoted, then retired.
        ``metadata["task_family"]`` names the task family (else it is found by similarity).
        Bad input raises :class:`~agentmem.errors.InvalidExperience` (or another
        ``ValidationError``) and writes nothing."""
        scope = scope_of(scope, where)
        return experience_api.record_experience(
            self.backends,
            scope,
            task,
            steps,
            outcome,
            reward=reward,
            feedback=feedback,
            metadata=metadata,
            used_procedures=used_procedures,
        )

    def recall_experience(
        self,
        task: str,
        k: int = 5,
        *,
        scope: Scope | None = None,
        task_family: str | None = None,
        include_retired: bool = False,
        **where: Unpack[ScopeKwargs],
    ) -> ExperienceAdvice:
        """The ``k`` past experiences most like ``task`` (by similarity and success) and the
        procedures of its task family (by similarity, support and success rate), best first.
        Demoted procedures are included, ranked lower; retired ones only on request."""
        scope = scope_of(scope, where)
        return experience_api.recall_experience(
            self.backends,
            task,
            scope,
            k=k,
            task_family=task_family,
            include_retired=include_retired,
        )

    def procedures(
        self,
        *,
        scope: Scope | None = None,
        task_family: str | None = None,
        include_retired: bool = False,
        limit: int = 100,
        **where: Unpack[ScopeKwargs],
    ) -> builtins.list[Procedure]:
        """The procedures distilled in a scope (of one task family, if given), strongest
        first; retired ones only with ``include_retired``."""
        scope = scope_of(scope, where)
        return experience_api.list_procedures(
            self.backends,
            scope,
            task_family=task_family,
            include_retired=include_retired,
            limit=limit,
        )

    # async twins: the same signatures, run in a worker thread (see agentmem.twins) -------

    aadd = async_twin(add)
    aadd_many = async_twin(add_many)
    aupdate = async_twin(update)
    ainvalidate = async_twin(invalidate)
    adelete = async_twin(delete)
    adelete_all = async_twin(delete_all)
    aforget = async_twin(forget)
    asearch = async_twin(search)
    acontext = async_twin(context)
    arecall = async_twin(recall)
    aget = async_twin(get)
    alinks = async_twin(links)
    ahistory = async_twin(history)
    alist = async_twin(list)
    ascopes = async_twin(scopes)
    astats = async_twin(stats)
    aexport = async_iter_twin(export)
    aimport_records = async_twin(import_records)
    areindex = async_twin(reindex)
    afeedback = async_twin(feedback)
    arecord_experience = async_twin(record_experience)
    arecall_experience = async_twin(recall_experience)
    aprocedures = async_twin(procedures)
    awarm_up = async_twin(warm_up)


__all__ = ["Memory"]
