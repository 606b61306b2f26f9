"""What a record store may keep besides records: one small interface per capability.

:class:`~agentmem.stores.RecordStore` is the records core every store implements. The tables
other subsystems keep in the store are optional, each behind its own interface, which a store
implements or not:

- :class:`GraphRows`: knowledge graph partitions and items (the embedded graph backend);
- :class:`JobLedger`: consolidation's job ledger, watermarks and leases;
- :class:`UtilityLedger`: retrievals, feedback and learned utility;
- :class:`KeyStore`: the memory service's API keys, hashed (the server package);
- :class:`NoteStore`: links between notes and versioned profile fields;
- :class:`QuarantineStore`: memories from untrusted sources, held for review (trust);
- :class:`ForgetJournal`: the forget journal, tombstones and content scrubbing (erasure);
- :class:`MaintenanceLog`: maintenance under way (a vector index rebuild), so an interrupted
  one is noticed;
- :class:`SessionTexts`: the texts of conversation turns by session, without whole records,
  and a stamp of each session to check cached counts against (search's session prior;
  without it the prior reads whole records).

Whether a store has a capability is whether it implements the interface
(``isinstance(store, JobLedger)``); :func:`require` says so with a clear
:class:`~agentmem.errors.MissingCapability` when it does not. The SQLite and PostgreSQL stores
implement every interface with the same SQL (:mod:`agentmem.stores._relational`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from agentmem.errors import MissingCapability
from agentmem.models import MemoryRecord, Scope, ScopeSet
from agentmem.stores._forget_sql import ForgetJob, QuarantineRow
from agentmem.stores._graph_sql import GraphPartition, GraphRow
from agentmem.stores._jobs_sql import JobRow, Watermark
from agentmem.stores._keys_sql import KeyRow
from agentmem.stores._notes_sql import LinkRow, ProfileRow
from agentmem.stores._utility_sql import FeedbackWrite, RetrievalRow, UtilityChange, UtilityRow
from agentmem.stores.base import RecordQuery, RecordStore, SessionKey, SessionStamp, SessionTurn

C = TypeVar("C")


class GraphRows(ABC):
    """Knowledge graphs kept in the store (the embedded graph backend persists here)."""

    @abstractmethod
    def graph_partitions(self, scope: Scope | ScopeSet | None) -> list[GraphPartition]:
        """The stored graph partitions a scope may read (all of them for ``None``)."""

    @abstractmethod
    def graph_partitions_holding(self, kind: str, item_ids: Sequence[str]) -> list[GraphPartition]:
        """The partitions holding a graph item of ``kind`` with one of these ids."""

    @abstractmethod
    def graph_rows(self, key: str) -> list[GraphRow]:
        """Every stored item of one partition."""

    @abstractmethod
    def graph_write(
        self,
        *,
        key: str,
        scope: Scope,
        expected_version: int,
        generation: str,
        upserts: Sequence[GraphRow],
        deletes: Sequence[tuple[str, str]],
        replace: bool = False,
    ) -> int:
        """Apply one change to a partition in one transaction (``replace``: drop its items
        first); returns the new version, or raises :class:`~agentmem.errors.Conflict` when the
        partition is no longer ``generation`` at ``expected_version`` (0: it must not exist yet,
        and is created as ``generation``)."""

    @abstractmethod
    def graph_drop(self, scope: Scope | ScopeSet | None) -> int:
        """Delete the graph partitions a scope may read (all for ``None``); returns how many."""


class JobLedger(ABC):
    """Consolidation's bookkeeping: the job ledger, per-scope watermarks and leases."""

    @abstractmethod
    def job_write(self, row: JobRow) -> None:
        """Insert or replace the ledger row of ``(row.run_id, row.stage)``."""

    @abstractmethod
    def job_rows(
        self, *, scope: str | None = None, run_id: str | None = None, limit: int = 100
    ) -> list[JobRow]:
        """Ledger rows, newest first, optionally for one scope key or one run."""

    @abstractmethod
    def watermark(self, scope: str, stage: str) -> Watermark | None:
        """How far ``stage`` got for the scope key ``scope`` (None: never completed)."""

    @abstractmethod
    def watermarks(self, stage: str) -> list[Watermark]:
        """The watermarks of ``stage`` for every scope."""

    @abstractmethod
    def set_watermark(self, scope: str, stage: str, value: str) -> None:
        """Record how far ``stage`` got for ``scope`` (a JSON value the stage defines)."""

    @abstractmethod
    def lease(self, name: str, owner: str, ttl_s: float) -> bool:
        """Take or renew the lease ``name`` for ``owner``; False while another owner holds it."""

    @abstractmethod
    def lease_owner(self, name: str) -> str | None:
        """The owner of the unexpired lease ``name``, or None."""

    @abstractmethod
    def release(self, name: str, owner: str) -> bool:
        """Drop the lease ``name`` if ``owner`` holds it."""


class UtilityLedger(ABC):
    """Learned utility: what each retrieval showed, feedback, and each memory's estimate."""

    @abstractmethod
    def record_retrieval(self, rid: str, scope: str, ids: Sequence[str], at: float) -> None:
        """Remember which memory ids the retrieval ``rid`` showed to ``scope``."""

    def record_retrievals(self, rows: Sequence[RetrievalRow]) -> None:
        """Remember several retrievals at once (:class:`agentmem.recall_log.RecallLog` writes
        its batches here); stores that can do it in one transaction override this."""
        for row in rows:
            self.record_retrieval(row.retrieval_id, row.scope, row.memory_ids, row.created_at)

    @abstractmethod
    def retrieval(self, rid: str) -> RetrievalRow | None:
        """What the retrieval ``rid`` showed, or None when unknown."""

    @abstractmethod
    def utilities(self, ids: Sequence[str]) -> dict[str, UtilityRow]:
        """The learned utility of these memories (never-rewarded ones are absent)."""

    @abstractmethod
    def rated_utilities(self, min_count: int) -> list[UtilityRow]:
        """Every utility made by at least ``min_count`` rewards."""

    @abstractmethod
    def apply_feedback(self, feedback: FeedbackWrite) -> list[UtilityChange] | None:
        """Apply one feedback in one transaction (utility updates and their history entries);
        None when its feedback id was applied before (nothing changes)."""

    @abstractmethod
    def utility_forget(self, ids: Sequence[str]) -> int:
        """Erase forgotten memories from the ledger in one transaction: their utility rows,
        their ids in retrievals and feedback, and the task text of feedback that credited
        them (a row left naming nothing goes). Returns how many rows changed."""


class KeyStore(ABC):
    """The memory service's API keys, hashed at rest (written by the server package)."""

    @abstractmethod
    def key_write(self, row: KeyRow) -> None:
        """Insert a new API key (its id must be new)."""

    @abstractmethod
    def key_get(self, key_id: str) -> KeyRow | None:
        """The API key ``key_id`` (revoked or not), or None."""

    @abstractmethod
    def key_rows(self, org_id: str | None = None) -> list[KeyRow]:
        """Every API key (of one org, if given), oldest first."""

    @abstractmethod
    def key_revoke(self, key_id: str, at: float) -> bool:
        """Revoke the key ``key_id``; False when no unrevoked key has that id."""


class NoteStore(ABC):
    """Links between notes and versioned profile fields (agentmem.notes, agentmem.profiles)."""

    @abstractmethod
    def link_write(self, links: Sequence[LinkRow], deletes: Sequence[tuple[str, str]] = ()) -> None:
        """Insert or replace links and delete ``(source_id, target_id)`` pairs, atomically."""

    @abstractmethod
    def link_rows(self, ids: Sequence[str], scope: Scope | ScopeSet | None = None) -> list[LinkRow]:
        """Links touching any of ``ids`` (either end), limited to ``scope`` if given."""

    @abstractmethod
    def profile_write(
        self, rows: Sequence[ProfileRow], supersede: Sequence[tuple[str, float, float | None]] = ()
    ) -> None:
        """Close the rows ``(id, superseded_at, valid_to)`` and insert ``rows``, atomically."""

    @abstractmethod
    def profile_rows(
        self, profile_key: str, *, current_only: bool = True, field: str | None = None
    ) -> list[ProfileRow]:
        """A profile's current field values (or every version), oldest first."""

    @abstractmethod
    def profile_erase(
        self,
        *,
        ids: Sequence[str] = (),
        scope: Scope | None = None,
        keep: Callable[[ProfileRow], ProfileRow | None] | None = None,
    ) -> int:
        """Delete every version of the profile fields of ``scope`` (and the scopes under it),
        and those whose sources name one of ``ids`` (values derived from forgotten memories);
        in the same transaction, a current version deleted for ``ids`` (outside ``scope``) is
        replaced by ``keep(row)`` where that gives a row (the field without what they gave).
        Returns the rows deleted."""


class QuarantineStore(ABC):
    """Memories from untrusted sources, held out of the records table until reviewed."""

    @abstractmethod
    def quarantine_hold(self, records: Sequence[MemoryRecord], at: float) -> None:
        """Hold ``records`` (status ``pending``) in one transaction; each keeps the source and
        flags its provenance names."""

    @abstractmethod
    def quarantine_rows(
        self,
        *,
        scope: Scope | None = None,
        ids: Sequence[str] = (),
        limit: int = 1000,
        after: tuple[float, str] | None = None,
    ) -> list[QuarantineRow]:
        """Held memories, oldest first (by ``created_at``, then id): in ``scope`` (and the
        scopes under it) or with these ids (every held memory when neither is given). ``after``
        pages on: only the rows after that ``(created_at, id)``, the last row of a page."""

    @abstractmethod
    def quarantine_drop(self, ids: Sequence[str]) -> int:
        """Remove held memories (approved, rejected or forgotten); returns how many."""


class ForgetJournal(ABC):
    """The erasure bookkeeping: the forget journal, tombstones of forgotten ids, and the
    scrubbing of a forgotten record's copies in the store (history content, cached vectors).
    Journal rows and tombstones never hold memory content (a journal's ``probe`` texts only
    until the retrain probe ran)."""

    @abstractmethod
    def forget_begin(self, job: ForgetJob, tombstones: Sequence[tuple[str, Scope]]) -> None:
        """Journal ``job`` and tombstone its ``(memory id, scope)`` pairs in one transaction."""

    @abstractmethod
    def forget_job_write(self, job: ForgetJob) -> None:
        """Insert or replace the journal row of ``job.forget_id``."""

    @abstractmethod
    def forget_jobs(
        self, *, forget_id: str | None = None, statuses: Sequence[str] = (), limit: int = 100
    ) -> list[ForgetJob]:
        """Journal rows, newest first; of one forget, or in these statuses."""

    @abstractmethod
    def tombstone(self, forget_id: str, rows: Sequence[tuple[str, Scope]], at: float) -> None:
        """Tombstone these ``(memory id, scope)`` pairs; an id tombstoned before keeps its row."""

    @abstractmethod
    def tombstoned(self, ids: Sequence[str]) -> dict[str, Scope]:
        """The ids among ``ids`` that were forgotten, with the scope each lived in."""

    @abstractmethod
    def history_only(
        self, *, scope: Scope | None = None, ids: Sequence[str] = ()
    ) -> dict[str, tuple[Scope, list[str]]]:
        """Memories that have history but no stored record (deleted, or forgotten before) in
        ``scope`` (every scope it contains) or among ``ids``, each with the scope its history
        names and the texts its history holds (none once scrubbed)."""

    @abstractmethod
    def scrub(
        self, ids: Sequence[str], content_hashes: Sequence[str], *, purge: bool
    ) -> tuple[int, int]:
        """In one transaction: blank the content of these records' history (``purge``:
        delete the history rows) and drop the cached vectors of these content hashes. Returns
        (history rows touched, cached vectors dropped)."""

    @abstractmethod
    def history_metadata(
        self, ids: Sequence[str]
    ) -> list[tuple[int, str, dict[str, Any] | None, dict[str, Any] | None]]:
        """The metadata of these records' history entries, oldest first: ``(entry number,
        memory id, old metadata, new metadata)``."""

    @abstractmethod
    def history_metadata_write(
        self, rows: Sequence[tuple[int, dict[str, Any] | None, dict[str, Any] | None]]
    ) -> int:
        """Replace the old and new metadata of history entries ``(entry number, old, new)``
        in one transaction (a forget taking a forgotten note's words out of the history of a
        note it evolved). Returns the entries changed."""


class SessionTexts(ABC):
    """What search's session prior reads of the turns of the candidates' sessions."""

    @abstractmethod
    def session_turns(self, query: RecordQuery, key: str) -> list[SessionTurn]:
        """The records ``query`` selects, in its order (oldest first) and page, as their
        session under the metadata key ``key``, text and event time only: the same values
        as :meth:`~agentmem.stores.RecordStore.query`'s records, without the rest of each
        row."""

    @abstractmethod
    def session_stamps(self, query: RecordQuery, key: str) -> dict[SessionKey, SessionStamp]:
        """A stamp of each session (under the metadata key ``key``) among all the records
        ``query`` selects, its limit and page aside: one aggregate statement, no texts read."""


class MaintenanceLog(ABC):
    """Maintenance under way that leaves derived data incomplete until it finishes (a vector
    index rebuild): a row is written before it starts and deleted when it ends, so one that
    was interrupted is still named on the next open."""

    @abstractmethod
    def maintenance_begin(self, task: str, at: float) -> None:
        """Record, durably, that ``task`` started at ``at`` (epoch seconds)."""

    @abstractmethod
    def maintenance_end(self, task: str, started_by: float) -> None:
        """``task`` is done: forget it if it started by ``started_by`` (a run begun later, by
        another process, is still under way)."""

    @abstractmethod
    def maintenance_unfinished(self) -> dict[str, float]:
        """Every task begun and not ended, with when it started."""


CAPABILITIES: tuple[type, ...] = (
    GraphRows,
    JobLedger,
    UtilityLedger,
    KeyStore,
    NoteStore,
    QuarantineStore,
    ForgetJournal,
    SessionTexts,
    MaintenanceLog,
)
"""Every optional store interface, for listings and the contract suite."""


def require(store: RecordStore, capability: Callable[..., C], feature: str) -> C:
    """``store`` as ``capability`` (one of :data:`CAPABILITIES`), or
    :class:`~agentmem.errors.MissingCapability` naming the feature that needs it
    (e.g. ``require(store, JobLedger, "consolidation")``)."""
    # Typed as a Callable: mypy refuses an abstract class where ``type[C]`` is expected.
    interface = cast(type, capability)
    if isinstance(store, interface):
        return cast(C, store)
    raise MissingCapability(
        f"{feature} needs a store that keeps a {interface.__name__}, and "
        f"{type(store).__name__} does not; use the SQLite or PostgreSQL store "
        "(AGENTMEM_STORE_URL=sqlite:///... or postgresql://...)"
    )


__all__ = [
    "CAPABILITIES",
    "ForgetJob",
    "ForgetJournal",
    "GraphRows",
    "JobLedger",
    "KeyStore",
    "MaintenanceLog",
    "NoteStore",
    "QuarantineRow",
    "QuarantineStore",
    "SessionTexts",
    "UtilityLedger",
    "require",
]
