"""Decay and archiving, after MemoryBank's Ebbinghaus forgetting curve.

Decay here lowers a memory's strength and archives it; it never erases. Erasure (a user's
right to be forgotten, with its journal and adapter retraining) is ``mem.forget``.

A memory's retention is ``R = exp(-t / S)``: ``t`` is the time in days since it was last
recalled (or, never recalled, since it was stored), and its strength ``S`` grows with each
recall and with importance: ``S = stability_days * (1 + access_count) * (0.5 + importance)``
(a never-recalled memory of importance 0.5 has ``S = stability_days``). Searches count recalls
(``access_count``, ``last_accessed_at``).

Below ``archive_below`` a memory is **archived**, never silently deleted: it stays in the store
with ``metadata.archived = true``, search leaves it out unless the filters name ``archived``,
and :func:`restore` brings it back. Each cluster of archived episodes (same thread, in order,
at most ``summary_cluster_max``) is replaced in search by one extractive summary record, so
nothing is forgotten without a trace. Only a retention policy (``retention_days`` per kind)
deletes, and only archived memories, that many days after they were archived.

Items of the LangGraph store (``AgentMemStore``) are exempt from all of it, unless
``consolidation.decay_store_items`` opts them in: docs/langgraph.md promises a store item
changes only through the store.

Crash safety: an episode is archived together with the id of the summary that will replace
it (a UUID derived from the cluster), and summaries are created afterwards for every such id
still missing; a rerun completes what a crash interrupted and never makes a second summary.
An id a forget tombstoned (the summary held a forgotten memory) is never reused: the members
left point to a successor id instead, and its summary is made of them alone.
"""

from __future__ import annotations

import logging
import math
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agentmem import writing
from agentmem.models import MemoryKind, MemoryRecord, Scope, as_utc, utcnow
from agentmem.retrieval import ARCHIVED_KEY
from agentmem.settings import ConsolidationSettings
from agentmem.stores import ForgetJournal, RecordQuery

if TYPE_CHECKING:
    from agentmem import Memory

ARCHIVED_AT_KEY = "archived_at"
SUMMARIZED_BY_KEY = "summarized_by"
SUMMARY_OF_KEY = "summary_of"
STRENGTH_KEY = "retention"
STORE_ITEM_KEY = "lg_store"
"""Metadata key marking a LangGraph store item (``agentmem_graphs.store.STORE_KEY``): store items
change
only through the store, so decay leaves them alone unless ``decay_store_items`` is on."""
ACTOR = "consolidation"
_NAMESPACE = uuid.UUID("6b1d5c1e-3f4a-4d8e-9a57-0c0f3c6e2b91")
_PAGE = 1000
log = logging.getLogger(__name__)
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_STOP_WORDS = (
    "a an the and or but if of to in on at for with from by as is are was were be been it "
    "its this that these those i you he she we they me him her us them my your his our their "
    "so not no do does did have has had will would can could should just very really what "
    "when where who how yes oh ok okay well also too"
)
_STOP = frozenset(_STOP_WORDS.split())


@dataclass(frozen=True, slots=True)
class DecayReport:
    """What one decay pass did in a scope."""

    considered: int
    archived: int
    summaries: int
    deleted: int


def retention(record: MemoryRecord, now: datetime, config: ConsolidationSettings) -> float:
    """``exp(-t / S)`` for this record at ``now`` (1.0: just stored or recalled)."""
    since = record.last_accessed_at or record.created_at
    days = max(0.0, (as_utc(now) - as_utc(since)).total_seconds() / 86400.0)
    importance = min(1.0, max(0.0, record.importance))
    strength = config.stability_days * (1 + max(0, record.access_count)) * (0.5 + importance)
    return math.exp(-days / strength)


def is_archived(record: MemoryRecord) -> bool:
    """Whether decay archived this record (and it was not restored since)."""
    return record.metadata.get(ARCHIVED_KEY) is True


def _records(mem: Memory, scope: Scope, kinds: Sequence[MemoryKind]) -> Iterable[MemoryRecord]:
    offset = 0
    while True:
        page = mem.backends.store.query(
            RecordQuery(scope=scope, kinds=tuple(kinds), limit=_PAGE, offset=offset)
        )
        yield from page
        if len(page) < _PAGE:
            return
        offset += len(page)


def summary_id(scope: Scope, ids: Sequence[str]) -> str:
    """The id of the summary replacing these archived records (the same ids, the same id)."""
    return str(uuid.uuid5(_NAMESPACE, f"{scope}|{','.join(ids)}"))


def extractive_summary(texts: Sequence[str], sentences: int) -> str:
    """The ``sentences`` most central sentences of ``texts``, in their original order.

    LLM-free: a sentence scores the mean corpus frequency of its content words, so what the
    cluster keeps coming back to wins over one-off remarks."""
    parts = [s.strip() for t in texts for s in _SENTENCE.split(t) if s.strip()]
    if not parts:
        return ""
    words = [[w.lower() for w in _WORD.findall(p) if w.lower() not in _STOP] for p in parts]
    freq = Counter(w for ws in words for w in set(ws))
    scores = [(sum(freq[w] for w in ws) / (len(ws) + 1), -i) for i, ws in enumerate(words)]
    best = sorted(range(len(parts)), key=lambda i: scores[i], reverse=True)[:sentences]
    return " ".join(parts[i] for i in sorted(best))


def _summary_record(
    sid: str, members: Sequence[MemoryRecord], config: ConsolidationSettings
) -> MemoryRecord:
    # In the order of what they tell (event time, else when written), not of their writing: a
    # diary added newest first is still summarised from its first day to its last.
    members = sorted(members, key=lambda r: (r.event_time or r.created_at, r.created_at, r.id))
    first = members[0]
    start = first.event_time or first.created_at
    end = members[-1].event_time or members[-1].created_at
    body = extractive_summary([r.text for r in members], config.summary_sentences)
    span = f"{start.date().isoformat()} to {end.date().isoformat()}"
    text = f"Summary of {len(members)} archived memories ({span}): {body}"
    return MemoryRecord(
        id=sid,
        scope=first.scope,
        kind=first.kind,
        text=text,
        metadata={SUMMARY_OF_KEY: [r.id for r in members], "consolidation": "summary"},
        provenance={
            "sources": [r.id for r in members],
            "extractor": "consolidation.extractive",
        },
        event_time=min((r.event_time for r in members if r.event_time), default=None),
        importance=max(r.importance for r in members),
    )


def decay_scope(
    mem: Memory, scope: Scope, config: ConsolidationSettings, now: datetime | None = None
) -> DecayReport:
    """Archive what decayed in ``scope``, summarise it, and apply the retention policy."""
    now = as_utc(now or utcnow())
    decaying = {MemoryKind.parse(k) for k in config.decay_kinds}
    # Retention also covers kinds that do not decay: what another stage archived (prune).
    kinds = decaying | {MemoryKind.parse(k) for k in config.retention_days}
    backends = mem.backends
    backends.recalls.flush()  # this process's latest recalls count in the retention below
    considered = 0
    fading: dict[Scope, list[MemoryRecord]] = defaultdict(list)
    archived: list[MemoryRecord] = []
    for record in _records(mem, scope, sorted(kinds, key=lambda k: k.value)):
        if STORE_ITEM_KEY in record.metadata and not config.decay_store_items:
            continue  # neither archived, summarised nor expired (archived before: kept)
        if record.kind not in decaying and not is_archived(record):
            continue  # a kind named only by retention_days: it never decays
        considered += 1
        if is_archived(record):
            archived.append(record)
        elif SUMMARY_OF_KEY not in record.metadata and retention(record, now, config) < (
            config.archive_below
        ):
            fading[record.scope].append(record)

    # 1. archive, each record carrying the id of the summary that will replace it.
    newly = 0
    for member_scope, records in fading.items():
        records.sort(key=lambda r: (r.created_at, r.id))
        for start in range(0, len(records), config.summary_cluster_max):
            cluster = records[start : start + config.summary_cluster_max]
            sid = summary_id(member_scope, [r.id for r in cluster])
            for r in cluster:
                metadata: dict[str, Any] = {
                    **r.metadata,
                    ARCHIVED_KEY: True,
                    ARCHIVED_AT_KEY: now.isoformat(),
                    STRENGTH_KEY: round(retention(r, now, config), 6),
                    SUMMARIZED_BY_KEY: sid,
                }
                archived.append(
                    writing.update(backends, r.id, None, metadata=metadata, actor=ACTOR)
                )
                newly += 1

    # 2. every summary an archived record points to exists (created here if missing).
    groups: dict[str, list[MemoryRecord]] = defaultdict(list)
    for r in archived:
        member_of = r.metadata.get(SUMMARIZED_BY_KEY)
        if isinstance(member_of, str):
            groups[member_of].append(r)
    # A forget erased these summaries (each held a forgotten memory) and tombstoned their ids,
    # which stay erased: the members left move to a successor id and get a summary of their own.
    for sid in _tombstoned(mem, list(groups)):
        members = groups.pop(sid)
        new = _successor(mem, members[0].scope, sid)
        for r in members:
            metadata = {**r.metadata, SUMMARIZED_BY_KEY: new}
            groups[new].append(writing.update(backends, r.id, None, metadata=metadata, actor=ACTOR))
    existing = {r.id for r in backends.store.get_many(list(groups))}
    missing = [
        _summary_record(sid, rs, config) for sid, rs in groups.items() if sid not in existing
    ]
    writing.insert(backends, missing, actor=ACTOR)

    # 3. retention: only archived records, only where a policy names their kind.
    expired = []
    for r in archived:
        days = config.retention_days.get(r.kind.value)
        if days is None:
            continue
        at = _archived_at(r)
        if at is not None and (now - at).total_seconds() >= days * 86400:
            expired.append(r)
    deleted = writing.delete(backends, expired, actor=ACTOR) if expired else 0
    return DecayReport(considered, newly, len(missing), deleted)


def _tombstoned(mem: Memory, ids: Sequence[str]) -> set[str]:
    """The ids among ``ids`` a forget erased (none where the store keeps no forget journal)."""
    store = mem.backends.store
    return set(store.tombstoned(ids)) if isinstance(store, ForgetJournal) else set()


def _successor(mem: Memory, scope: Scope, sid: str) -> str:
    """The id of the summary replacing summary ``sid``, which a forget erased: derived from
    ``sid`` (so a rerun after a crash while re-pointing the members picks the same one), and
    past every id a forget tombstoned."""
    while _tombstoned(mem, [sid]):
        sid = summary_id(scope, [sid])
    return sid


def _archived_at(record: MemoryRecord) -> datetime | None:
    """When ``record`` was archived; None when its mark is missing or not an ISO time (user or
    imported metadata may carry anything there): retention then keeps it, with a warning."""
    at = record.metadata.get(ARCHIVED_AT_KEY)
    if not isinstance(at, str):
        return None
    try:
        return as_utc(datetime.fromisoformat(at))
    except ValueError:
        log.warning(
            "memory %s: %s=%r is not an ISO time, so retention keeps it; "
            "set it to an ISO time or restore the memory",
            record.id,
            ARCHIVED_AT_KEY,
            at,
        )
        return None


def restore(mem: Memory, memory_id: str) -> MemoryRecord:
    """Bring an archived memory back into search (its summary stays). Counts as a recall, so
    it does not decay again at once."""
    backends = mem.backends
    record = writing.get_one(backends, memory_id, None)
    metadata = {
        k: v
        for k, v in record.metadata.items()
        if k not in (ARCHIVED_KEY, ARCHIVED_AT_KEY, STRENGTH_KEY, SUMMARIZED_BY_KEY)
    }
    restored = writing.update(backends, memory_id, None, metadata=metadata, actor=ACTOR)
    backends.store.touch([memory_id], utcnow())
    return restored


__all__ = [
    "ARCHIVED_AT_KEY",
    "ARCHIVED_KEY",
    "SUMMARIZED_BY_KEY",
    "SUMMARY_OF_KEY",
    "DecayReport",
    "decay_scope",
    "extractive_summary",
    "is_archived",
    "restore",
    "retention",
    "summary_id",
]
