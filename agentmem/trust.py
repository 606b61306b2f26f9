"""Trusted writes: every write names its source, each source has a trust level in settings,
and memories from untrusted sources wait in a quarantine until approved.

A quarantined memory is not in the store's memory table, so no index, graph, consolidation
stage or adapter training set can see it; ``mem.search(..., include_quarantined=True)`` and
``mem.quarantine.list(...)`` show it; ``approve`` stores it as any write would, ``reject``
drops it. Text that looks like instructions to the agent (prompt injection) is flagged on
write (``provenance["flags"]``), or quarantined when ``trust.injection`` says so.
"""

from __future__ import annotations

import builtins
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agentmem.errors import NotFound, ValidationError
from agentmem.filters import parse_filters
from agentmem.fusion import tie_ranks
from agentmem.models import (
    ChannelScore,
    MemoryKind,
    MemoryRecord,
    Scope,
    ScopeSet,
    SearchHit,
    scope_members,
)
from agentmem.scoping import ScopeKwargs, optional_scope_of
from agentmem.security_settings import InjectionAction, TrustLevel, TrustSettings
from agentmem.stores import QuarantineRow, QuarantineStore, RecordStore, require
from agentmem.twins import async_twin
from agentmem.validation import check_k, check_kinds, check_time

if TYPE_CHECKING:
    from agentmem.backends import Backends

INJECTION_FLAG = "prompt_injection"
PENDING = "pending"
HELD_PAGE = 500
"""How many held memories :meth:`Quarantine.search` reads at a time (a scope may hold any
number: each page is scored and dropped but for the best ``k``)."""

# Phrases that address the agent rather than record something about the world. A flag, not a
# verdict: the memory is kept (or quarantined, by setting) and the flag travels with it.
_INJECTION_PATTERNS: dict[str, re.Pattern[str]] = {
    name: re.compile(pattern, re.IGNORECASE)
    for name, pattern in {
        "ignore_instructions": r"\b(?:ignore|disregard|forget|override)\b[^.\n]{0,40}"
        r"\b(?:previous|prior|above|earlier|all|your|the)\b[^.\n]{0,20}"
        r"\b(?:instructions?|prompts?|rules|guidelines|directions)\b",
        "role_override": r"\byou are now\b|\bfrom now on,? you\b|\bact as (?:an? )?"
        r"(?:unrestricted|jailbroken|different)\b|\bdeveloper mode\b|\bjailbreak",
        "system_prompt": r"\b(?:reveal|print|show|repeat|leak)\b[^.\n]{0,30}"
        r"\b(?:system prompt|hidden prompt|instructions)\b|\bnew (?:system )?instructions?:",
        "chat_markup": r"<\|im_start\|>|<\|system\|>|\[/?INST\]|<</?SYS>>|^\s*system\s*:",
        "exfiltration": r"\b(?:send|post|upload|email|forward)\b[^.\n]{0,40}"
        r"\b(?:password|credentials|api key|secrets?|tokens?)\b",
        "concealment": r"\bdo not (?:tell|inform|mention|reveal)\b[^.\n]{0,20}\b(?:the )?user\b",
    }.items()
}


def injection_flags(text: str) -> list[str]:
    """The prompt-injection patterns ``text`` matches (empty: none)."""
    return [name for name, pattern in _INJECTION_PATTERNS.items() if pattern.search(text)]


def trust_level(settings: TrustSettings, source: str | None) -> tuple[str, TrustLevel]:
    """The source of a write (the default when None) and its trust level; an unknown source
    is refused with the configured ones."""
    name = settings.default_source if source is None else source
    if not isinstance(name, str) or name not in settings.levels:
        known = ", ".join(sorted(settings.levels))
        raise ValidationError(
            f"unknown write source {name!r}; use one of: {known} "
            "(or declare it in AGENTMEM_TRUST__LEVELS)"
        )
    return name, settings.levels[name]


def flag_injection(settings: TrustSettings, record: MemoryRecord) -> list[str]:
    """Add the prompt-injection patterns ``record``'s text matches to its provenance flags
    (unless ``settings.injection`` is off); returns them (empty: none)."""
    if settings.injection is InjectionAction.OFF:
        return []
    flags = injection_flags(record.text)
    if flags:
        known = record.provenance.get("flags", [])
        record.provenance = {
            **record.provenance,
            "flags": sorted({*known, INJECTION_FLAG, *flags}),
        }
    return flags


@dataclass(frozen=True)
class Screened:
    """Records of one write, split into those to store and those to hold in quarantine."""

    store: list[MemoryRecord]
    held: list[MemoryRecord]


def screen(
    settings: TrustSettings,
    records: Sequence[MemoryRecord],
    source: str | None,
    *,
    label: str | None = None,
) -> Screened:
    """Stamp each record's provenance with its source (``label`` when given, e.g.
    ``"buffer"``), trust level and injection flags, and decide which go to quarantine."""
    name, level = trust_level(settings, source)
    name = label or name
    store: list[MemoryRecord] = []
    held: list[MemoryRecord] = []
    for record in records:
        flags = flag_injection(settings, record)
        provenance: dict[str, Any] = {**record.provenance, "source": name, "trust": level.value}
        quarantine = level is TrustLevel.UNTRUSTED or (
            bool(flags) and settings.injection is InjectionAction.QUARANTINE
        )
        if quarantine:
            provenance["quarantine"] = PENDING
        record.provenance = provenance
        (held if quarantine else store).append(record)
    return Screened(store, held)


def hold(backends: Backends, records: Sequence[MemoryRecord]) -> None:
    """Put records in quarantine (one transaction)."""
    if not records:
        return
    _held(backends.store).quarantine_hold(records, time.time())


def drop_held(backends: Backends, ids: Sequence[str], scope: Scope | ScopeSet | None = None) -> int:
    """Drop the held writes with these ids (those in ``scope`` and the scopes under it; any
    for None): a delete of a memory, or a newer write under its id, supersedes what is still
    waiting for review, so no later ``approve`` brings it back. Returns how many."""
    store = backends.store
    wanted = list(dict.fromkeys(ids))
    if not wanted or not isinstance(store, QuarantineStore):
        return 0
    rows = store.quarantine_rows(ids=wanted, limit=len(wanted))
    if scope is not None:
        rows = [r for r in rows if scope.contains(Scope.model_validate(r.record["scope"]))]
    return store.quarantine_drop([r.id for r in rows]) if rows else 0


def delete_with_held(
    backends: Backends,
    memory_id: str,
    scope: Scope | ScopeSet | None,
    *,
    read: Callable[[str], MemoryRecord] | None = None,
    actor: str = "api",
) -> None:
    """Delete the memory ``memory_id`` (read in ``scope`` by ``read``, else by
    ``writing.get_one``) and drop a write of that id held in quarantine in ``scope``, so no
    later approve brings the memory back. A memory that is only held is dropped, as
    ``reject`` would; one that is neither stored nor held raises what ``read`` raised
    (:class:`NotFound`, or ``PermissionDenied`` for an agent)."""
    from agentmem import writing  # writing is below trust

    try:
        if read is not None:
            record = read(memory_id)
        else:
            record = writing.get_one(backends, memory_id, scope)
    except NotFound:
        if drop_held(backends, [memory_id], scope):
            return
        raise
    drop_held(backends, [memory_id], scope)
    writing.delete(backends, [record], actor=actor)


def delete_scope_with_held(backends: Backends, scope: Scope, *, actor: str = "api") -> int:
    """Delete every stored memory of ``scope`` (and the scopes under it) and drop every write
    held in quarantine there, so no later ``approve`` stores a memory of the deleted scope.
    Returns how many stored memories were deleted (the held writes dropped are not counted)."""
    from agentmem import writing  # writing is below trust

    store = backends.store
    if isinstance(store, QuarantineStore):  # first: so none is approved once it ran
        for rows in _held_pages(store, scope):
            store.quarantine_drop([r.id for r in rows])
    records = store.get_many(store.ids_in_scope(scope), scope)
    return writing.delete(backends, records, actor=actor)


def admit(
    backends: Backends,
    records: Sequence[MemoryRecord],
    source: str | None,
    *,
    actor: str = "api",
    link: bool = True,
    label: str | None = None,
) -> Screened:
    """The one trust pipeline every new memory goes through (``Memory.add``/``add_many``,
    agent handles, flushed buffers, the LangGraph store, and through them REST and MCP):
    stamp each record's source, trust level and injection flags (:func:`screen`), hold the
    untrusted and, under ``trust.injection = "quarantine"``, the flagged ones in quarantine,
    and store the rest (indexed, and linked as notes unless ``link`` is False: the LangGraph
    store's items change only through the store); ``label`` names the source in provenance
    where it differs from the trust source (flushed buffers: ``"buffer"``). Returns the
    split."""
    from agentmem import writing  # writing is below trust
    from agentmem.notes import api as notes  # notes write through agentmem.writing

    screened = screen(backends.settings.trust, records, source, label=label)
    if link:
        notes.insert(backends, screened.store, actor=actor)
    else:
        writing.insert(backends, screened.store, actor=actor)
    hold(backends, screened.held)
    return screened


def admit_once(
    backends: Backends,
    records: Sequence[MemoryRecord],
    scope: Scope,
    source: str | None,
    idempotency_key: str | None,
    *,
    actor: str = "api",
) -> Screened | list[MemoryRecord]:
    """:func:`admit` under an optional idempotency key: the records get ids derived from the
    key, and a repeat (a client retrying after a lost acknowledgement, even concurrently)
    returns what the first write stored (a list) instead of writing again. Without a key, or
    on the first write, returns the :class:`Screened` split of this write."""
    from agentmem import writing  # writing is below trust
    from agentmem.errors import Conflict

    if idempotency_key is None:
        return admit(backends, records, source, actor=actor)
    writing.idempotent_ids(records, scope, idempotency_key)
    earlier = writing.replay(backends, records)
    if earlier is not None:
        return earlier
    try:
        return admit(backends, records, source, actor=actor)
    except Conflict:  # a concurrent retry won the race: answer with what it stored
        earlier = writing.replay(backends, records)
        if earlier is None:
            raise
        return earlier


class Quarantine:
    """What untrusted sources wrote, waiting for review: ``mem.quarantine``."""

    def __init__(self, backends: Backends) -> None:
        self._backends = backends
        self._call_gate = backends.calls

    def list(
        self,
        scope: Scope | None = None,
        limit: int = 1000,
        *,
        org_id: str | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        thread_id: str | None = None,
    ) -> list[MemoryRecord]:
        """Held memories (in ``scope`` and the scopes under it; all for None), oldest first.
        The scope may also be given as keywords, as everywhere else (``user_id="alice"``)."""
        scope = _scope_of(scope, org_id, user_id, agent_id, thread_id)
        limit = check_k(limit, limit=100_000, what="limit")
        rows = _held(self._backends.store).quarantine_rows(scope=scope, limit=limit)
        return [MemoryRecord.model_validate(r.record) for r in rows]

    def approve(
        self,
        ids: Sequence[str],
        scope: Scope | None = None,
        *,
        org_id: str | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        thread_id: str | None = None,
    ) -> builtins.list[MemoryRecord]:
        """Store held memories as trusted writes (indexed, in the graph, consolidated,
        trainable from now on). Returns the stored records. With a scope (or its keywords,
        as for :meth:`list`) each id must be held in it or the scopes under it: another
        scope's id raises :class:`NotFound` and nothing is approved.

        A held id already stored (an approve that stopped before it dropped the held write, or
        a concurrent one) is approved already when the stored text is the held text: its held
        write is dropped and the stored record returned as it is. Stored with other text, it
        raises :class:`~agentmem.errors.Conflict` naming the ids, and nothing is approved or
        dropped: the reviewer rejects the held write, or updates the stored memory."""
        from agentmem.notes import api as notes  # approved facts are linked like any write

        rows = self._rows(ids, _scope_of(scope, org_id, user_id, agent_id, thread_id))
        held = [MemoryRecord.model_validate(row.record) for row in rows]
        stored = {r.id: r for r in self._backends.store.get_many([r.id for r in held])}
        _refuse_other_text(held, stored)
        records = []
        for record in held:
            if record.id not in stored:
                record.provenance = {**record.provenance, "quarantine": "approved"}
            records.append(stored.get(record.id, record))
        notes.insert(self._backends, [r for r in records if r.id not in stored], "quarantine")
        _held(self._backends.store).quarantine_drop(list(ids))
        return records

    def reject(
        self,
        ids: Sequence[str],
        scope: Scope | None = None,
        *,
        org_id: str | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        thread_id: str | None = None,
    ) -> int:
        """Drop held memories; returns how many. The scope is checked as by :meth:`approve`."""
        rows = self._rows(ids, _scope_of(scope, org_id, user_id, agent_id, thread_id))
        return _held(self._backends.store).quarantine_drop([r.id for r in rows])

    def search(
        self,
        query: str,
        scope: Scope | ScopeSet,
        k: int = 10,
        *,
        kinds: Sequence[str | MemoryKind] | str | None = None,
        filters: dict[str, Any] | None = None,
        as_of: datetime | str | None = None,
        event_after: datetime | str | None = None,
        event_before: datetime | str | None = None,
    ) -> builtins.list[SearchHit]:
        """At most ``k`` held memories of ``scope`` (each member of a :class:`ScopeSet`)
        sharing words with ``query``, best first (a plain word overlap: held memories are never
        embedded). Every held memory of the scope is a candidate, however many: they are read
        in pages of :data:`HELD_PAGE`, and only the best ``k`` so far are kept between pages.
        The search's other constraints apply as they do to stored memories: ``kinds``,
        ``filters`` (and what every search leaves out, such as archived memories), validity
        (at ``as_of``, else now) and the event-time bounds. Equal scores share a rank
        (:func:`agentmem.fusion.tie_ranks`) and are ordered, and cut at ``k``, by id as the
        fused search breaks its ties (:func:`agentmem.fusion.fuse_scores`): never by when
        they were written."""
        from agentmem.graph.pagerank import admits
        from agentmem.retrieval import default_conditions
        from agentmem.vectors import VectorQuery

        after = check_time(event_after, what="event_after")
        before = check_time(event_before, what="event_before")
        wanted = VectorQuery(
            scope=scope,
            limit=check_k(k),
            kinds=check_kinds(kinds),
            conditions=parse_filters(filters) + default_conditions(filters),
            as_of=check_time(as_of, what="as_of"),
            now=time.time(),
            event_after=after.timestamp() if after else None,
            event_before=before.timestamp() if before else None,
        )
        words = set(re.findall(r"\w+", query.lower()))
        scored: builtins.list[tuple[float, MemoryRecord]] = []
        for page in self._pages(scope):
            kept = {r.id for _, r in scored}  # a scope set's members may overlap
            for record in page:
                overlap = words & set(re.findall(r"\w+", record.text.lower()))
                if overlap and record.id not in kept and admits(record, wanted):
                    scored.append((len(overlap) / max(len(words), 1), record))
            scored.sort(key=lambda pair: (-pair[0], pair[1].id))  # ties: as fuse_scores
            del scored[k:]
        ranks = tie_ranks([(r.id, s) for s, r in scored])
        return [
            SearchHit(record=r, score=s, channels={"quarantine": ChannelScore(rank=i, score=s)})
            for i, (s, r) in zip(ranks, scored, strict=True)
        ]

    # async twins: the same signatures, run in a worker thread (see agentmem.twins) ---------

    alist = async_twin(list)
    aapprove = async_twin(approve)
    areject = async_twin(reject)
    asearch = async_twin(search)

    def _pages(self, scope: Scope | ScopeSet) -> Iterator[builtins.list[MemoryRecord]]:
        """Every held memory of each member of ``scope``, a page at a time, oldest first."""
        store = _held(self._backends.store)
        for member in scope_members(scope):
            for rows in _held_pages(store, member):
                yield [MemoryRecord.model_validate(r.record) for r in rows]

    def _rows(self, ids: Sequence[str], scope: Scope | None) -> builtins.list[QuarantineRow]:
        if isinstance(ids, str) or not ids:
            raise ValidationError("pass a non-empty list of quarantined memory ids")
        wanted = list(dict.fromkeys(ids))
        rows = _held(self._backends.store).quarantine_rows(ids=wanted, limit=len(wanted))
        if scope is not None:  # another scope's held ids are unknown here, not forbidden
            rows = [r for r in rows if scope.contains(Scope.model_validate(r.record["scope"]))]
        missing = set(wanted) - {r.id for r in rows}
        if missing:
            where = "" if scope is None else f" of scope {scope}"
            raise NotFound(
                f"not in quarantine{where}: {sorted(missing)}; list held ids with "
                "mem.quarantine.list() or `agentmem quarantine list`"
            )
        return rows


def _refuse_other_text(held: Sequence[MemoryRecord], stored: dict[str, MemoryRecord]) -> None:
    """Raise :class:`Conflict` when a held write's id is stored with another text."""
    from agentmem.errors import Conflict

    clash = sorted(r.id for r in held if r.id in stored and stored[r.id].text != r.text)
    if clash:
        raise Conflict(
            f"held memories already stored with other text: {clash}; nothing was approved. "
            "Compare with mem.get(id), then drop the held write (mem.quarantine.reject, "
            "`agentmem quarantine reject`) and, if its text should win, mem.update the memory"
        )


def _held_pages(store: QuarantineStore, scope: Scope) -> Iterator[list[QuarantineRow]]:
    """The writes held in ``scope`` and the scopes under it, a page of :data:`HELD_PAGE` at a
    time, oldest first (the caller may drop a page's rows before it asks for the next)."""
    after: tuple[float, str] | None = None
    while True:
        rows = store.quarantine_rows(scope=scope, limit=HELD_PAGE, after=after)
        if rows:
            yield rows
        if len(rows) < HELD_PAGE:
            return
        after = (rows[-1].created_at, rows[-1].id)


def _held(store: RecordStore) -> QuarantineStore:
    return require(store, QuarantineStore, "the quarantine of untrusted writes")


def _scope_of(
    scope: Scope | None,
    org_id: str | None,
    user_id: str | None,
    agent_id: str | None,
    thread_id: str | None,
) -> Scope | None:
    given: ScopeKwargs = {
        "org_id": org_id,
        "user_id": user_id,
        "agent_id": agent_id,
        "thread_id": thread_id,
    }
    return optional_scope_of(scope, given)


__all__ = [
    "HELD_PAGE",
    "INJECTION_FLAG",
    "Quarantine",
    "Screened",
    "admit",
    "admit_once",
    "delete_scope_with_held",
    "delete_with_held",
    "drop_held",
    "flag_injection",
    "hold",
    "injection_flags",
    "screen",
    "trust_level",
]
