"""The system of record: the interface every record store implements.

The store is the truth; the vector and lexical indexes are derived from it. A write is one
:class:`WriteBatch` applied in one transaction: the records, their history entries, the
outbox entries that tell the indexer what is not yet indexed, and any new cached embeddings.
So a crash either keeps the whole batch or none of it, and what was kept is re-indexed from the
outbox on the next open.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import regex

from agentmem.filters import Condition
from agentmem.models import (
    SCOPE_FIELDS,
    HistoryEntry,
    MemoryKind,
    MemoryRecord,
    Scope,
    ScopeSet,
    ScopeSummary,
)

if TYPE_CHECKING:
    from agentmem.stores._utility_sql import UtilityRow

SessionKey = tuple[str | None, str | None, str | None, str | None, str | int]
"""A session: the exact scope of its turns (org, user, agent, thread) and the value they name
under the session key (``retrieval.window_group_key``)."""


def session_key(kind: str, scope: Sequence[str | None], value: Any) -> SessionKey | None:
    """The session of a record of ``kind`` whose scope fields are ``scope`` (org, user, agent,
    thread) and whose metadata holds ``value`` under the session key: an episode naming a
    string or an integer (a boolean names none)."""
    if kind != MemoryKind.EPISODIC or isinstance(value, bool) or not isinstance(value, str | int):
        return None
    org, user, agent, thread = scope
    return (org, user, agent, thread, value)


def record_session(record: MemoryRecord, key: str) -> SessionKey | None:
    """The session of a whole record under the metadata key ``key`` (see :func:`session_key`)."""
    scope = tuple(getattr(record.scope, f) for f in SCOPE_FIELDS)
    return session_key(record.kind, scope, record.metadata.get(key))


SPEAKER_PREFIX_CHARS = 80
"""How much of a text's start :func:`speaker_of` reads for a ``"Name: ..."`` prefix."""

_SPEAKER_PREFIX = regex.compile(
    r"^\s*([\p{Lu}\p{Lt}\p{Lo}][\w.'\-]*(?: [\p{Lu}\p{Lt}\p{Lo}][\w.'\-]*){0,3})\s*:\s"
)
"""A ``"Name: "`` prefix; a name opens with a capital of any script (Åsa, Émile) or a letter
of a script without case (李), as :mod:`agentmem.semantic.episodes` reads speakers."""


def speaker_of(text_start: str, metadata_speaker: Any, turn: bool = True) -> str | None:
    """Who said a record: its ``metadata["speaker"]`` (a string of at most 60 characters),
    else, for a ``turn`` of a conversation (:func:`is_turn`), the name its text opens with
    ("Caroline: I went ..."); None for neither. A note added on its own that opens with
    "Mom: call me when you land" or "Lisbon: flight TP 441" is a pasted message or a topic
    label, not a turn: its "Name:" names no speaker."""
    if isinstance(metadata_speaker, str) and 0 < len(metadata_speaker.strip()) <= 60:
        return metadata_speaker.strip()
    if not turn:
        return None
    m = _SPEAKER_PREFIX.match(text_start[:SPEAKER_PREFIX_CHARS])
    return m.group(1) if m else None


def is_turn(kind: Any, thread_id: str | None, session: SessionKey | None) -> bool:
    """Whether a record is a turn of a conversation, as the windows read conversations
    (:func:`agentmem.representation.in_conversation`): an episode of a session (``session``,
    under the session key) or of a thread scope."""
    return session is not None or (kind == MemoryKind.EPISODIC and thread_id is not None)


@dataclass(frozen=True, slots=True)
class RankFields:
    """The fields of a record that search ranks candidates by, read without the whole row."""

    id: str
    event_time: datetime | None
    created_at: datetime
    importance: float
    session: SessionKey | None = None
    """Its session, when :meth:`RecordStore.rank_fields` was given the session key."""
    speaker: str | None = None
    """Who said it (:func:`speaker_of`): its metadata speaker, else, read with the session key
    and the record a turn of a conversation (:func:`is_turn`), its "Name:" prefix."""

    @classmethod
    def of(cls, record: MemoryRecord, key: str | None = None) -> RankFields:
        """The rank fields of a whole record (its session under ``key``, if given)."""
        session = None if key is None else record_session(record, key)
        turn = key is not None and is_turn(record.kind, record.scope.thread_id, session)
        speaker = speaker_of(record.text, record.metadata.get("speaker"), turn)
        return cls(
            record.id, record.event_time, record.created_at, record.importance, session, speaker
        )


@dataclass(frozen=True, slots=True)
class SessionTurn:
    """What the session prior reads of a turn: its session, text and event time."""

    session: SessionKey | None
    text: str
    event_time: datetime | None


@dataclass(frozen=True, slots=True)
class SessionStamp:
    """What the session prior checks its cached counts of a session against, read without the
    turns' texts: how many turns a query selects of it and aggregates that any write, update,
    invalidation, expiry or delete of one of them changes (the latest update time and the sums
    of the versions, creation and event times: every update stores the next version)."""

    turns: int
    aggregates: tuple[float, int, float, float]

    def plus(self, other: SessionStamp) -> SessionStamp:
        """Both stamps' turns as one session's (a session value stored in two JSON forms)."""
        a, b = self.aggregates, other.aggregates
        return SessionStamp(
            self.turns + other.turns,
            (max(a[0], b[0]), a[1] + b[1], a[2] + b[2], a[3] + b[3]),
        )


class IndexOp(StrEnum):
    """What the indexer must do for a record named in the outbox."""

    UPSERT = "upsert"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A record whose index entries are not yet known to match the store."""

    seq: int
    memory_id: str
    op: IndexOp


@dataclass(slots=True)
class WriteBatch:
    """Everything one acknowledged write changes, applied atomically by :meth:`RecordStore.apply`.

    ``updates`` are checked against the version they replace (``record.version - 1``), and
    ``deletes`` against the version in ``delete_versions`` where it names one; a store raises
    :class:`~agentmem.errors.Conflict` when another writer got there first.
    """

    inserts: list[MemoryRecord] = field(default_factory=list)
    updates: list[MemoryRecord] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    delete_versions: dict[str, int] = field(default_factory=dict)
    """The version a delete's record was read at: it is deleted only at that version (a
    delete not named here, such as forgetting's, removes whatever version is stored)."""
    history: list[HistoryEntry] = field(default_factory=list)
    index: list[tuple[str, IndexOp]] = field(default_factory=list)
    embeddings: list[tuple[str, str, np.ndarray]] = field(default_factory=list)
    """(embedder name, content hash, vector) to cache."""


@dataclass(frozen=True, slots=True)
class RecordQuery:
    """Which records to read. ``scope`` is always required: isolation lives in the query.

    A :class:`~agentmem.models.ScopeSet` reads several scopes at once (any member matches).
    """

    scope: Scope | ScopeSet
    kinds: tuple[MemoryKind, ...] = ()
    conditions: tuple[Condition, ...] = ()
    include_invalidated: bool = False
    as_of: datetime | None = None
    event_after: datetime | None = None
    event_before: datetime | None = None
    limit: int = 100
    offset: int = 0
    newest_first: bool = False
    """Page from the newest record (by creation) instead of the oldest."""


@dataclass(frozen=True, slots=True)
class StoreCounts:
    """Sizes a store reports for ``stats()``."""

    records: int
    by_kind: dict[str, int]
    history_entries: int
    pending_index: int


@dataclass(frozen=True, slots=True)
class CandidateRows:
    """What search reads of its fused candidates at once (:meth:`RecordStore.read_candidates`)."""

    fields: list[RankFields]
    """The rank fields of the candidates still in scope (as :meth:`RecordStore.rank_fields`)."""
    records: list[MemoryRecord]
    """The whole records of the ids asked for whole, those in scope (as ``get_many``)."""
    utilities: dict[str, UtilityRow] | None
    """The learned-utility rows of the candidates in scope (those never rewarded absent),
    where asked for and the store keeps them; else None."""


class RecordStore(ABC):
    """A transactional system of record for memory records, their history and the outbox.

    This is the records core every store implements. What else a store keeps (knowledge
    graph rows, the job ledger, learned utility, API keys, notes and profiles, quarantine,
    the forget journal) is an optional interface of :mod:`agentmem.stores.capabilities`
    that a store implements or not.

    Lifecycle: the constructor does no I/O; :meth:`setup` connects and applies migrations
    (idempotent); :meth:`close` releases everything. Usable as a context manager.
    """

    url: str
    supports_concurrent_processes: bool = False
    """Whether several processes may write through this store at once."""

    def erase_free_space(self) -> bool:
        """Rewrite the store's files so that deleted rows leave no bytes behind (free pages,
        write-ahead log), after a forget with ``purge=True``. Returns whether it did (False:
        a server's storage is compacted by its operator, e.g. PostgreSQL's VACUUM FULL)."""
        return False

    @abstractmethod
    def setup(self) -> None:
        """Connect and apply any missing migrations. Safe to call again."""

    @abstractmethod
    def close(self) -> None:
        """Release connections. Safe to call again."""

    @abstractmethod
    def apply(self, batch: WriteBatch) -> None:
        """Apply a write batch in one transaction (all or nothing)."""

    @abstractmethod
    def get_many(
        self, ids: Sequence[str], scope: Scope | ScopeSet | None = None
    ) -> list[MemoryRecord]:
        """The records with these ids (in no particular order), limited to ``scope`` if given."""

    def rank_fields(
        self,
        ids: Sequence[str],
        scope: Scope | ScopeSet | None = None,
        session_key: str | None = None,
    ) -> list[RankFields]:
        """What search re-ranks its candidates by (event and creation time, importance, and
        with ``session_key`` each record's session under that metadata key), for the records
        with these ids in ``scope``: the same records as :meth:`get_many`, read without the
        rest of each row. SQL stores read only those columns; this default reads whole
        records."""
        return [RankFields.of(r, session_key) for r in self.get_many(ids, scope)]

    def read_candidates(
        self,
        ids: Sequence[str],
        scope: Scope | ScopeSet,
        session_key: str | None = None,
        *,
        whole: Sequence[str] = (),
        utilities: bool = False,
    ) -> CandidateRows:
        """Everything search reads of its candidates ``ids`` before re-ranking them: their
        :meth:`rank_fields`, the whole records of ``whole`` (the hits it expects, so they need
        no read of their own) and, with ``utilities``, the learned-utility rows of those in
        scope (where the store is a :class:`~agentmem.stores.capabilities.UtilityLedger`).
        This default makes one call of each; a server store answers in one round trip."""
        from agentmem.stores.capabilities import UtilityLedger  # it imports this module

        fields = self.rank_fields(ids, scope, session_key)
        records = self.get_many(whole, scope) if whole else []
        rows = None
        if utilities and isinstance(self, UtilityLedger):
            rows = self.utilities([f.id for f in fields])
        return CandidateRows(fields, records, rows)

    @abstractmethod
    def query(self, query: RecordQuery) -> list[MemoryRecord]:
        """Records in scope matching kinds and filters, oldest first (by creation, then id;
        ``newest_first``: the reverse), paged."""

    @abstractmethod
    def adjacent(
        self, record: MemoryRecord, group: Condition | None = None
    ) -> tuple[MemoryRecord | None, MemoryRecord | None]:
        """The records just before and just after ``record`` (same scope fields and kind, and
        matching ``group`` if given) in creation order: its neighbours in a conversation."""

    def adjacent_many(
        self, queries: Sequence[tuple[MemoryRecord, Condition | None]]
    ) -> list[tuple[MemoryRecord | None, MemoryRecord | None]]:
        """:meth:`adjacent` of several ``(record, group)`` pairs, in order; engines that can
        send every query in one round trip override this."""
        return [self.adjacent(record, group) for record, group in queries]

    @abstractmethod
    def ids_in_scope(self, scope: Scope | ScopeSet) -> list[str]:
        """Every record id visible to ``scope`` (for delete_all)."""

    @abstractmethod
    def scope_summaries(self, scope: Scope | ScopeSet) -> list[ScopeSummary]:
        """Each exact scope holding records that ``scope`` contains, with its counts by kind
        (invalidated records included), in scope order."""

    @abstractmethod
    def history(self, memory_id: str, scope: Scope | ScopeSet | None = None) -> list[HistoryEntry]:
        """The history of one record, oldest first (deleted records keep theirs)."""

    @abstractmethod
    def pending_index(self, limit: int = 1000) -> list[OutboxItem]:
        """Outbox entries not yet acknowledged by the indexer, oldest first."""

    @abstractmethod
    def ack_index(self, seqs: Sequence[int]) -> None:
        """Mark outbox entries as indexed."""

    @abstractmethod
    def cached_embeddings(self, embedder: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached vectors of ``embedder`` by content hash (missing hashes are absent)."""

    @abstractmethod
    def all_ids(self, after: str | None = None, limit: int = 1000) -> list[str]:
        """Every record id in id order, paged by ``after`` (for a full reindex)."""

    @abstractmethod
    def counts(self) -> StoreCounts:
        """Sizes for ``stats()``."""

    def pinned(self) -> AbstractContextManager[None]:
        """Serve the calls this thread makes inside the block from one connection, where the
        store pools connections (one checkout for the run of calls instead of one each);
        other stores do nothing. Hold it only for a run of store calls."""
        return nullcontext()

    def touch(self, ids: Sequence[str], at: datetime) -> None:  # noqa: B027 - optional
        """Count one recall of each record (``access_count``, ``last_accessed_at``) without a
        new version. Stores that cannot do it cheaply ignore it."""

    def count_recalls(self, counts: Mapping[str, tuple[int, datetime]]) -> None:
        """Count ``n`` recalls of each record, the last at ``at`` (``{id: (n, at)}``), as
        :meth:`touch` does for one; the batches of :class:`agentmem.recall_log.RecallLog`.
        Stores that can do it in one transaction override this."""
        for record_id, (times, at) in counts.items():
            for _ in range(times):
                self.touch([record_id], at)

    def __enter__(self) -> Self:
        self.setup()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


__all__ = [
    "CandidateRows",
    "IndexOp",
    "OutboxItem",
    "RankFields",
    "RecordQuery",
    "RecordStore",
    "SessionKey",
    "SessionStamp",
    "SessionTurn",
    "StoreCounts",
    "WriteBatch",
    "is_turn",
    "record_session",
    "session_key",
    "speaker_of",
]
