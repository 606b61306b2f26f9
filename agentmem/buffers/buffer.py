"""Thread buffers: the live turns of a conversation, and how they become episodic memory.

A :class:`ThreadBuffer` keeps a thread's turns in a buffer backend within a token budget.
Turns leave the buffer only by being *flushed*, as one segment:

- **overflow**: when the turns exceed ``max_tokens``, the oldest are flushed until what is
  left fits in half the budget (the newest turn is flushed too only if it alone is too big);
- **topic shift**: when a new turn's embedding is less similar than
  ``topic_shift_threshold`` (cosine) to each of the ``topic_shift_window`` turns before it,
  and at least ``min_segment_turns`` turns precede it, those turns are flushed as one segment
  (topic segmentation in the spirit of LightMem; HiAgent's subgoal chunks);
- **manual**: :meth:`ThreadBuffer.flush`; **close**: a Memory flushes its in-process
  buffers when it closes.

A flush writes one episodic record for the segment (its transcript, event time = earliest turn,
metadata with the thread id, time span, turn count and flush kind) and one episodic record per
turn (linked to the segment by ``segment_id``), in one transaction through the normal write
path. Only after that commit are the turns removed from the buffer, under the thread's lock.
Record ids are derived from the turn ids, so a flush repeated after a crash between the two
steps finds its records stored and only removes the turns: a crash can duplicate nothing and
lose nothing. Likewise a flush that meets the records of another flusher (whose lock expired)
stores the turns that one did not, and only turns whose records are stored leave the buffer.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, Field

from agentmem import trust, writing
from agentmem.backends import Backends
from agentmem.buffers.base import (
    BufferBackend,
    Turn,
    render_turns,
    scope_from_thread_key,
    thread_key,
)
from agentmem.errors import Conflict, InvalidScope, InvalidText, ValidationError
from agentmem.indexing import vectors_for_texts
from agentmem.models import MemoryKind, MemoryRecord, Scope, content_hash, utcnow
from agentmem.semantic import extractor as semantic
from agentmem.settings import BufferSettings
from agentmem.tokens import TokenCounter
from agentmem.twins import async_twin
from agentmem.validation import check_text

if TYPE_CHECKING:
    from agentmem.context import Context

log = logging.getLogger(__name__)

RECORD_NAMESPACE = uuid.UUID("6f0c1a52-4b1e-5d0e-9a57-0b5f2f6b1c11")
"""Namespace of the deterministic record ids a flush writes (uuid5 of the turn ids)."""
OVERFLOW_KEEP = 0.5
"""After an overflow flush, at most this fraction of the budget stays in the buffer."""
_ROLE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_VECTOR_CACHE = 4096
_FIRST_TAIL = 64
"""Turns a window reads first (then 4x as many, and so on)."""
_WRITE_TRIES = 3
"""Writes a flush tries when another flusher stores some of its turns first."""


class FlushKind(StrEnum):
    """Why a segment left the buffer."""

    OVERFLOW = "overflow"
    TOPIC_SHIFT = "topic_shift"
    MANUAL = "manual"
    CLOSE = "close"


class Flush(BaseModel):
    """What one flush wrote: the segment's episode and its turns, and what left the buffer.

    ``episode`` is None (and ``turns`` empty) when every turn was already stored by an earlier,
    interrupted flush; the turns were then only removed from the buffer.
    """

    kind: FlushKind
    episode: MemoryRecord | None = None
    turns: list[MemoryRecord] = Field(default_factory=list)
    removed: int = 0


def check_budget(value: Any, what: str = "max_tokens") -> int:
    """A token budget: a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(
            f"{what} must be a positive integer (a number of tokens), got {value!r}"
        )
    return value


class Buffers:
    """The short-term buffers of one :class:`~agentmem.Memory`: its backend, a token counter
    and a cache of turn vectors for topic segmentation. Built by the Memory; no I/O until a
    buffer is used."""

    def __init__(self, backends: Backends, backend: BufferBackend) -> None:
        self._bundle = backends
        self._call_gate = backends.calls
        self.backend = backend
        self.counter = TokenCounter(backends.settings.token_encoding)
        self._ready = False
        self._setup_lock = threading.Lock()
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._vectors_lock = threading.Lock()

    @property
    def settings(self) -> BufferSettings:
        """The buffer settings of the Memory."""
        return self._bundle.settings.buffer

    @property
    def backends(self) -> Backends:
        """The Memory's open bundle (MemoryClosed once the Memory is closed)."""
        return self._bundle.opened()

    def ready(self) -> BufferBackend:
        """The backend, connected on first use (MemoryClosed once the Memory is closed)."""
        self._bundle.opened()
        if not self._ready:
            with self._setup_lock:
                if not self._ready:
                    self.backend.setup()
                    self._ready = True
        return self.backend

    def thread(self, scope: Scope, max_tokens: int | None = None) -> ThreadBuffer:
        """The buffer of the thread ``scope`` names (it needs a ``thread_id``);
        :class:`~agentmem.errors.MemoryClosed` at once when the Memory is closed."""
        self._bundle.opened()
        return ThreadBuffer(self, scope, max_tokens=max_tokens)

    def live(self, scope: Scope) -> ThreadBuffer | None:
        """The buffer of ``scope``'s thread if it holds turns, else None."""
        if scope.thread_id is None:
            return None
        buffer = self.thread(scope)
        return buffer if len(buffer) else None

    def vectors(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Unit vectors of ``texts``: from this cache, the store's embedding cache, or the
        embedder (by content hash, so a turn is embedded once)."""
        hashes = [content_hash(t) for t in texts]
        with self._vectors_lock:
            known = {h: self._vectors[h] for h in hashes if h in self._vectors}
        missing = [t for t, h in zip(texts, hashes, strict=True) if h not in known]
        if missing:
            found, _ = vectors_for_texts(self.backends, missing)
            known.update(found)
            with self._vectors_lock:
                for h, v in found.items():
                    self._vectors[h] = v
                    self._vectors.move_to_end(h)
                while len(self._vectors) > _VECTOR_CACHE:
                    self._vectors.popitem(last=False)
        return [known[h] for h in hashes]

    def close(self) -> None:
        """Flush what only this process holds (in-process buffers) into episodic memory, then
        release the backend."""
        errors: list[Exception] = []
        try:
            if self._ready and not self.backend.durable:
                for key in self.backend.threads():
                    try:
                        self.thread(scope_from_thread_key(key)).flush(kind=FlushKind.CLOSE)
                    except Exception as exc:  # flush the other threads, then report it
                        errors.append(exc)
        finally:
            self.backend.close()
            self._ready = False
        if errors:
            raise errors[0]


class ThreadBuffer:
    """The live turns of one thread, bounded by a token budget; older turns become episodes.

    Get one with ``mem.buffer(thread_id=..., user_id=...)`` (or ``agent.buffer(...)``). The
    scope includes the thread; flushed episodes are written in that scope, so they are found
    by searches of the user (and agent), and of the thread.

    An unknown thread is an empty buffer: reads return nothing and ``flush()`` returns None.
    Reads never create a thread; the first ``append`` does.
    """

    def __init__(self, buffers: Buffers, scope: Scope, *, max_tokens: int | None = None) -> None:
        if scope.thread_id is None:
            raise InvalidScope(
                "a buffer belongs to a thread: pass thread_id=..., e.g. "
                "mem.buffer(thread_id='t-1', user_id='alice')"
            )
        self._buffers = buffers
        self._call_gate = buffers._call_gate
        self.scope = scope
        self.thread_id: str = scope.thread_id
        self.key = thread_key(scope)
        self.max_tokens = check_budget(
            buffers.settings.max_tokens if max_tokens is None else max_tokens
        )
        self.last_flush: Flush | None = None
        """The last flush this handle made (by an append, or flush())."""

    def __repr__(self) -> str:
        return f"ThreadBuffer({self.scope}, max_tokens={self.max_tokens})"

    @property
    def settings(self) -> BufferSettings:
        """The buffer settings in force."""
        return self._buffers.settings

    @property
    def _backend(self) -> BufferBackend:
        return self._buffers.ready()

    # writes --------------------------------------------------------------------------------

    def append(self, role: str, content: str, name: str | None = None) -> Turn:
        """Add a turn at the end of the thread and return it (stored when this returns).

        ``role`` is e.g. ``user``, ``assistant``, ``system`` or ``tool``; ``name`` optionally
        names the speaker. The append may then flush the oldest segment (overflow, or a topic
        shift); the turn itself is stored first, so an error from that flush loses nothing.
        """
        turn = self._new_turn(role, content, name)
        s = self.settings
        lookback = s.topic_shift_window if s.topic_shift_threshold is not None else 0
        appended = self._backend.append(self.key, turn, lookback=lookback)
        shifted = (
            lookback > 0
            and appended.length - 1 >= s.min_segment_turns
            and bool(appended.previous)
            and self._topic_shifted(turn, appended.previous)
        )
        if shifted or appended.tokens > self.max_tokens:
            try:
                self._auto_flush(turn, shifted)
            except Conflict:
                # Another caller is flushing this thread; it checks the budget again after.
                log.info("thread %s is being flushed elsewhere; not flushing now", self.key)
        return turn

    def flush(self, *, kind: FlushKind = FlushKind.MANUAL) -> Flush | None:
        """Flush every turn now as one segment; returns what was written (None if empty).
        Waits up to ``lock_timeout_s`` for a flush elsewhere to finish, else :class:`Conflict`."""
        with self._lock(wait=True):
            turns = self._backend.turns(self.key)
            if not turns:
                return None
            return self._flush(turns, kind)

    def clear(self) -> int:
        """Drop every turn **without** storing it; returns how many were dropped. Call
        :meth:`flush` first to keep them as episodic memory."""
        with self._lock(wait=True):
            return self._backend.delete(self.key)

    # reads ---------------------------------------------------------------------------------

    def messages(self) -> list[Turn]:
        """Every live turn, oldest first (``turn.as_message()`` gives chat-message dicts)."""
        return self._backend.turns(self.key)

    def window(self, max_tokens: int | None = None) -> list[Turn]:
        """The most recent turns whose transcript (:func:`render_turns`) fits in ``max_tokens``
        (default: the buffer's budget), oldest first. A turn that does not fit ends the window:
        it never skips one to reach older turns."""
        budget = check_budget(self.max_tokens if max_tokens is None else max_tokens)
        # Read from the end, a growing tail at a time, until the budget is spent or the
        # thread is read whole (a buffer may hold far more than one window).
        fetch = _FIRST_TAIL
        while True:
            recent = self._backend.tail(self.key, fetch)
            chosen = _fit_newest(recent, budget)
            if len(chosen) < len(recent) or len(recent) < fetch:
                break
            fetch *= 4
        # The per-turn counts are exact for each line; check the joined text itself.
        counter = self._buffers.counter
        while chosen and not counter.fits(render_turns(chosen), budget):
            chosen.pop(0)
        return chosen

    def tokens(self) -> int:
        """Tokens of every live turn, summed."""
        return sum(t.tokens for t in self.messages())

    def __len__(self) -> int:
        return self._backend.length(self.key)

    def context(
        self,
        query: str,
        *,
        max_tokens: int = 2000,
        kinds: Sequence[str | MemoryKind] | str | None = None,
        filters: dict[str, Any] | None = None,
        as_of: datetime | str | None = None,
        candidates: int = 50,
    ) -> Context:
        """``mem.context(...)`` for this conversation: this buffer's window first, then the
        long-term memories of the buffer's scope *without* the thread (every thread of the
        user and agent), within ``max_tokens``. The other keywords are ``Memory.context``'s."""
        # agentmem.context reads turns from agentmem.buffers.base, whose package imports this
        # module: imported here so that either can be imported first.
        from agentmem.context import build

        wide: dict[str, Any] = dict(self.scope.fields())
        wide.pop("thread_id")
        scope = Scope.of(**wide) if wide else Scope.of(thread_id=self.thread_id)
        return build(
            self._buffers.backends,
            query,
            scope,
            max_tokens=max_tokens,
            kinds=kinds,
            filters=filters,
            as_of=as_of,
            candidates=candidates,
            buffer=self,
        )

    # async twins: the same signatures, run in a worker thread (see agentmem.twins) ---------

    aappend = async_twin(append)
    aflush = async_twin(flush)
    aclear = async_twin(clear)
    amessages = async_twin(messages)
    awindow = async_twin(window)
    atokens = async_twin(tokens)
    acontext = async_twin(context)

    # internals -----------------------------------------------------------------------------

    def _new_turn(self, role: Any, content: Any, name: Any) -> Turn:
        if not isinstance(role, str) or not _ROLE.match(role):
            raise ValidationError(
                f"role must be 1-64 letters, digits, '_', '.' or '-' (e.g. 'user', 'assistant', "
                f"'tool'), got {role!r}"
            )
        if name is not None and (
            not isinstance(name, str)
            or not name.strip()
            or len(name) > 128
            or _CONTROL.search(name)
        ):
            raise ValidationError(
                f"name must be a non-empty string of at most 128 characters without control "
                f"characters, or None; got {name!r}"
            )
        max_chars = self._buffers.backends.settings.max_text_chars
        content = check_text(content, max_chars=max_chars, what="content")
        turn = Turn(role=role, content=content, name=name, at=utcnow())
        line = turn.line()
        if len(line) > max_chars:
            raise InvalidText(
                f"the turn is {len(line):,} characters with its speaker, over the limit of "
                f"{max_chars:,} (AGENTMEM_MAX_TEXT_CHARS); split it into several turns"
            )
        return turn.model_copy(update={"tokens": self._buffers.counter.count(line)})

    def _topic_shifted(self, turn: Turn, previous: Sequence[Turn]) -> bool:
        threshold = self.settings.topic_shift_threshold
        assert threshold is not None
        vectors = self._buffers.vectors([turn.content, *(p.content for p in previous)])
        new, *before = vectors
        return max(float(np.dot(new, v)) for v in before) < threshold

    def _lock(self, *, wait: bool) -> AbstractContextManager[None]:
        timeout = self.settings.lock_timeout_s
        return self._backend.lock(self.key, wait=timeout if wait else 0.0, hold=timeout)

    def _auto_flush(self, turn: Turn, shifted: bool) -> None:
        # One try at the lock (Conflict): a caller holding it is flushing this thread already,
        # and checks the budget again once it lets go, for the appends that met its lock.
        while True:
            with self._lock(wait=False):
                turns = self._backend.turns(self.key)
                if shifted:
                    position = next((i for i, t in enumerate(turns) if t.id == turn.id), None)
                    if position is not None and position >= self.settings.min_segment_turns:
                        self._flush(turns[:position], FlushKind.TOPIC_SHIFT)
                        turns = turns[position:]
                    shifted = False
                if sum(t.tokens for t in turns) > self.max_tokens:
                    flush = self._flush(
                        overflow_segment(turns, self.max_tokens), FlushKind.OVERFLOW
                    )
                    if not flush.removed:  # nothing could be stored: a later append retries
                        return
            if sum(t.tokens for t in self._backend.turns(self.key)) <= self.max_tokens:
                return

    def _flush(self, turns: Sequence[Turn], kind: FlushKind) -> Flush:
        """Store ``turns`` as a segment, then remove them from the buffer (lock held). Only
        turns whose records are stored leave the buffer."""
        store = self._buffers.backends.store
        ids = {t.id: self._record_id("turn", t.id) for t in turns}
        flush = Flush(kind=kind)
        done: set[str] = set()  # turns whose records are stored (or held in quarantine)
        for _ in range(_WRITE_TRIES):
            unknown = [ids[t.id] for t in turns if t.id not in done]
            stored = {r.id for r in store.get_many(unknown)}
            done.update(t.id for t in turns if ids[t.id] in stored)
            pending = [t for t in turns if t.id not in done]
            if not pending:
                break
            try:
                flush = self._store_segment(pending, kind, ids)
            except Conflict:
                # Another flusher (whose lock expired) stored some of them first; its turns
                # may not be all of these (a turn appended since): store the rest.
                log.warning("part of a segment of thread %s was already stored", self.key)
                continue
            done.update(t.id for t in pending)
            break
        flush.removed = self._backend.remove(self.key, [t.id for t in turns if t.id in done])
        self.last_flush = flush
        return flush

    def _store_segment(self, turns: Sequence[Turn], kind: FlushKind, ids: dict[str, str]) -> Flush:
        """Write ``turns`` (none of them stored yet) as one segment and its turn records, in one
        transaction; :class:`Conflict` if another flusher stored one of them meanwhile."""
        backends = self._buffers.backends
        records = self._segment_records(turns, kind, ids)
        # Turns are flagged like any write (a tool's output may carry instructions); the
        # segment carries the flags of its turns.
        for record in records[1:]:
            trust.flag_injection(backends.settings.trust, record)
        flags = sorted({f for r in records[1:] for f in r.provenance.get("flags", [])})
        if flags:
            records[0].provenance = {**records[0].provenance, "flags": flags}
        # Fact extraction follows the `infer` setting, for the segment only (its turns say
        # the same): marked pending for extract_pending / consolidation, and extracted at
        # once (infer=True) only on an explicit flush(), never inside an append.
        mode = semantic.infer_mode(None, backends.settings.infer, MemoryKind.EPISODIC)
        if mode is not semantic.InferMode.OFF:
            semantic.mark_pending(records[0])
        # The same trust pipeline as every write: source, trust level, quarantine.
        screened = trust.admit(backends, records, None, actor="buffer", label="buffer")
        flush = Flush(kind=kind, episode=records[0], turns=records[1:])
        held = {r.id for r in screened.held}
        if (
            mode is semantic.InferMode.INLINE
            and kind is FlushKind.MANUAL
            and records[0].id not in held
        ):
            flush.episode, _ = semantic.extract_episode(backends, records[0])
        return flush

    def _record_id(self, what: str, name: str) -> str:
        return str(uuid.uuid5(RECORD_NAMESPACE, f"{self.key}|{what}|{name}"))

    def _segment_records(
        self, turns: Sequence[Turn], kind: FlushKind, ids: dict[str, str]
    ) -> list[MemoryRecord]:
        backends = self._buffers.backends
        settings = backends.settings
        key = hashlib.sha256("|".join(t.id for t in turns).encode()).hexdigest()[:32]
        segment_id = self._record_id("segment", key)
        # The span of the turns' times: concurrent writers stamp a turn before it reaches the
        # list, so list order need not be time order.
        start, end = min(t.at for t in turns), max(t.at for t in turns)
        text = render_turns(turns)
        if len(text) > settings.max_text_chars:  # the turns keep the full text
            text = text[: settings.max_text_chars - 1] + "…"
        common = {"source": "buffer", "thread_id": self.thread_id, "segment_key": key}
        items: list[dict[str, Any]] = [
            {
                "text": text,
                "event_time": start,
                "metadata": {
                    **common,
                    "buffer_record": "segment",
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    "turns": len(turns),
                    "flush": kind.value,
                },
                # No list of its turns: each turn record names the segment (``segment_id``),
                # and a list would outgrow the metadata limit on a long buffer.
                "provenance": {
                    "source": "buffer",
                    "thread_id": self.thread_id,
                    "flush": kind.value,
                },
            }
        ]
        group = settings.retrieval.window_group_key
        for t in turns:
            metadata: dict[str, Any] = {
                **common,
                "buffer_record": "turn",
                "role": t.role,
                "turn_id": t.id,
                "segment_id": segment_id,
                group: self.thread_id,  # a thread is a session: windows span its turns
            }
            if t.name:
                metadata["name"] = t.name
                metadata["speaker"] = t.name  # who said it, for the speaker prior of search
            items.append(
                {
                    "text": t.line(),
                    "event_time": t.at,
                    "metadata": metadata,
                    "provenance": {
                        "source": "buffer",
                        "thread_id": self.thread_id,
                        "turn_id": t.id,
                        "segment_id": segment_id,
                    },
                }
            )
        records = writing.records_from_items(backends, self.scope, items)
        records[0].id = segment_id
        for record, turn in zip(records[1:], turns, strict=True):
            record.id = ids[turn.id]
        return records


def _fit_newest(turns: Sequence[Turn], budget: int) -> list[Turn]:
    """The newest turns whose token counts (plus a newline each) fit ``budget``, oldest first."""
    chosen: list[Turn] = []
    total = 0
    for turn in reversed(turns):
        cost = turn.tokens + (1 if chosen else 0)  # the newline between lines
        if total + cost > budget:
            break
        chosen.append(turn)
        total += cost
    chosen.reverse()
    return chosen


def overflow_segment(turns: Sequence[Turn], max_tokens: int) -> list[Turn]:
    """The oldest turns to flush so that what is left fits in ``OVERFLOW_KEEP`` of the budget."""
    keep = int(max_tokens * OVERFLOW_KEEP)
    total = sum(t.tokens for t in turns)
    cut = 0
    while cut < len(turns) and total > keep:
        total -= turns[cut].tokens
        cut += 1
    return list(turns[:cut])


__all__ = [
    "OVERFLOW_KEEP",
    "RECORD_NAMESPACE",
    "Buffers",
    "Flush",
    "FlushKind",
    "ThreadBuffer",
    "check_budget",
    "overflow_segment",
]
