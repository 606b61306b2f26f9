"""Forgetting that reaches every copy: ``mem.forget(ids | scope, reason=...)``.

What to forget is computed, not guessed: the requested memories, plus every record derived from
them (a record's sources are in its provenance: ``sources`` of facts and summaries,
``source_ids`` and evidence of procedures, ``summary_of`` of consolidation summaries), to a
fixpoint. A derived record with other live sources is kept (its forgotten sources are pruned)
unless its current text came from a forgotten one (its last source).

A forget runs in journaled steps (``forget_jobs``), each idempotent, so a crash anywhere is
finished when the memory is next opened:

1. journal the targets and tombstone their ids (no content) in one transaction; from here on
   any write derived from a tombstoned id is undone by the writer (:func:`guard`), so a
   consolidation run racing the forget cannot resurrect it;
2. taint every adapter trained on a target (the registry stops serving it at once; recall
   falls back to retrieval) and keep the texts the retrain probe asks about;
3. delete the records with a content-free DELETE history entry, blank the content of their
   history (``purge=True``: delete it), drop their cached vectors, quarantine rows, note
   links and the profile field values derived from them; the outbox removes their vector and
   BM25 entries and graph items (edges stated by other facts keep those); a forgotten scope's
   live buffers are cleared;
4. sweep for records derived from tombstoned ids that appeared meanwhile;
5. write the report (counts per place, tainted adapters; no content) to the journal and the
   job ledger. Consolidation's ``retrain_forgotten`` stage retrains tainted adapters without
   the items, promotes the clean ones through the registry, probes them with generated
   questions about the forgotten texts and completes the report (:func:`finish_retrain`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from agentmem import writing
from agentmem.backends import Backends, HasBackends, backends_of
from agentmem.errors import NotFound, PermissionDenied, ValidationError
from agentmem.experience.models import PROCEDURE_KEY
from agentmem.indexing import sync_outbox
from agentmem.models import (
    HistoryEntry,
    HistoryEvent,
    MemoryKind,
    MemoryRecord,
    Scope,
    content_hash,
    new_id,
    utcnow,
)
from agentmem.parametric import SHARED_SCOPE_KEY, discover_recall_models, scope_key
from agentmem.representation import (
    in_conversation,
    indexed_text,
    neighbours_to_refresh,
    note_text,
    window_text,
    windows_for,
)
from agentmem.stores import IndexOp, RecordQuery, RecordStore, WriteBatch
from agentmem.stores import _forget_sql as sql
from agentmem.stores._jobs_sql import JobRow

if TYPE_CHECKING:
    from agentmem.buffers import Buffers
    from agentmem.settings import RetrievalSettings

STARTED = "started"
RETRAIN_PENDING = "retrain_pending"
DONE = "done"
LEDGER_STAGE = "forget"
_SUMMARY_OF = (
    "summary_of"  # agentmem_consolidation.decay.SUMMARY_OF_KEY (the core never imports it)
)
_PAGE = 5000


class ForgetReport(BaseModel):
    """What one forget removed from where, which adapters it tainted, what retraining and the
    probe found. Holds ids and counts, never the forgotten content."""

    forget_id: str
    reason: str
    scope: str
    purge: bool
    status: str
    requested: int = 0
    already_forgotten: int = 0
    forgotten_ids: list[str] = Field(default_factory=list)
    derived: int = 0
    """Records forgotten because they were derived from a forgotten one."""
    kept_with_other_sources: int = 0
    removed: dict[str, int] = Field(default_factory=dict)
    """Per place: records, history_entries, index_points (vector and BM25), cached_vectors,
    graph_partitions, quarantine, note_links, profile_fields, buffer_turns, raced_writes."""
    adapters_tainted: list[dict[str, Any]] = Field(default_factory=list)
    retrained: list[dict[str, Any]] = Field(default_factory=list)
    probe: dict[str, Any] | None = None
    started_at: float = 0.0
    finished_at: float | None = None
    duration_s: float = 0.0
    resumed: bool = False


@runtime_checkable
class TaintableAdapters(Protocol):
    """An adapter registry that can mark adapters trained on forgotten memories as tainted
    (the ``gpu`` registry implements it)."""

    def taint_trained_on(
        self, ids: set[str], scope_keys: Sequence[str], reason: str
    ) -> list[dict[str, Any]]:
        """Taint every adapter whose training data included one of ``ids`` (adapters that
        do not record their sources: every adapter under ``scope_keys``); returns each tainted
        adapter as ``{"scope_key", "version", "kind"}``. Tainted adapters never serve."""
        ...


# provenance ----------------------------------------------------------------------------------


def sources_of(record: MemoryRecord) -> list[str]:
    """The ids a record was derived from, oldest first (empty: a primary record)."""
    prov = record.provenance
    found: list[str] = [*(prov.get("sources") or []), *(prov.get("source_ids") or [])]
    body = record.metadata.get(PROCEDURE_KEY)
    if isinstance(body, dict):
        found.extend(body.get("evidence") or [])
    found.extend(record.metadata.get(_SUMMARY_OF) or [])
    return [s for s in dict.fromkeys(found) if isinstance(s, str)]


def _outer(scope: Scope) -> Scope:
    """Where records derived from a scope's memories may live: the owner's whole scope (the
    user with all their agents and threads, e.g. a handoff copy to another agent), else the
    scope without its thread."""
    fields = scope.fields()
    keep = ("org_id", "user_id") if "user_id" in fields else ("org_id", "agent_id")
    narrowed = {k: v for k, v in fields.items() if k in keep}
    return Scope.of(**narrowed) if narrowed else scope


def _records_in(backends: Backends, scopes: Iterable[Scope]) -> list[MemoryRecord]:
    seen: dict[str, MemoryRecord] = {}
    for scope in scopes:
        offset = 0
        while True:
            page = backends.store.query(
                RecordQuery(scope=scope, include_invalidated=True, limit=_PAGE, offset=offset)
            )
            for r in page:
                seen.setdefault(r.id, r)
            if len(page) < _PAGE:
                break
            offset += len(page)
    return list(seen.values())


def derived_closure(
    candidates: Sequence[MemoryRecord], forgotten: set[str]
) -> tuple[list[MemoryRecord], list[MemoryRecord]]:
    """Records among ``candidates`` to forget because of ``forgotten`` (to a fixpoint), and the
    derived records to keep with their forgotten sources pruned."""
    derived = [(r, sources_of(r)) for r in candidates]
    derived = [(r, s) for r, s in derived if s]
    gone = set(forgotten)
    out: dict[str, MemoryRecord] = {}
    changed = True
    while changed:
        changed = False
        for record, sources in derived:
            if record.id in gone:
                continue
            if set(sources) <= gone or sources[-1] in gone:
                gone.add(record.id)
                out[record.id] = record
                changed = True
    pruned = [r for r, s in derived if r.id not in gone and gone.intersection(s)]
    return list(out.values()), pruned


# entry points --------------------------------------------------------------------------------


def forget(
    backends: Backends,
    buffers: Buffers,
    scope: Scope,
    ids: Sequence[str] | None,
    *,
    reason: str,
    purge: bool = False,
) -> ForgetReport:
    """Forget the memories ``ids`` (all within ``scope``), or with ``ids=None`` every memory
    of ``scope``, everywhere they were copied. See the module docstring."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError("forget needs a reason, e.g. reason='user erasure request'")
    if not isinstance(purge, bool):
        raise ValidationError(f"purge must be True or False, got {purge!r}")
    requested: list[str]
    if ids is None:
        targets = _records_in(backends, [scope])
        requested = [r.id for r in targets]
        held = backends.store.transact(
            lambda cur, ph: sql.read_quarantine(cur, ph, scope=scope, limit=10_000_000)
        )
        quarantined = [r.id for r in held]
        already: dict[str, Scope] = {}
    else:
        if isinstance(ids, str) or not isinstance(ids, Sequence) or not ids:
            raise ValidationError("forget needs a non-empty list of memory ids, or no ids (scope)")
        requested = list(dict.fromkeys(ids))
        for i in requested:
            if not isinstance(i, str) or not i:
                raise ValidationError(f"memory ids are non-empty strings, got {i!r}")
        targets, quarantined, already = _resolve(backends, scope, requested)
    outside = [r.id for r in targets if not scope.contains(r.scope)]
    outside += [i for i, s in already.items() if not scope.contains(s)]
    if outside:
        raise PermissionDenied(
            f"memories {sorted(outside)[:5]} are outside scope {scope}; forget them with a "
            "scope that contains them (nothing was forgotten)"
        )
    neighbourhood = {_outer(r.scope) for r in targets} or {_outer(scope)}
    candidates = _records_in(backends, neighbourhood)
    target_ids = {r.id for r in targets}
    derived, pruned = derived_closure(candidates, target_ids)
    foreign = [r.id for r in derived if not scope.contains(r.scope)]
    if foreign:
        raise PermissionDenied(
            f"records {foreign[:5]} derived from these memories lie outside scope {scope}; "
            "forget with a scope that contains them (nothing was forgotten)"
        )
    everything = [*targets, *derived]
    all_ids = [r.id for r in everything] + quarantined
    now = time.time()
    report = ForgetReport(
        forget_id=new_id(),
        reason=reason.strip(),
        scope=str(scope),
        purge=purge,
        status=STARTED,
        requested=len(requested),
        already_forgotten=len(already),
        forgotten_ids=all_ids,
        derived=len(derived),
        kept_with_other_sources=len(pruned),
        started_at=now,
    )
    if not all_ids:
        report.status = DONE
        report.finished_at = time.time()
        return report
    tainted = _taint(backends, set(all_ids), everything)
    report.adapters_tainted = tainted
    job = sql.ForgetJob(
        forget_id=report.forget_id,
        scope=str(scope),
        reason=report.reason,
        purge=purge,
        status=STARTED,
        targets=all_ids,
        report={
            **report.model_dump(mode="json"),
            "prune": [r.id for r in pruned],
            "whole_scope": ids is None,
        },
        # What the retrain probe asks about, only while a tainted adapter awaits retraining.
        probe=[r.text for r in everything] if tainted else None,
        created_at=now,
        updated_at=now,
    )
    tomb = [(r.id, r.scope) for r in everything]
    held_rows = [(i, scope) for i in quarantined]

    def begin(cur: sql.Cursor, ph: str) -> None:
        sql.write_job(cur, ph, job)
        sql.add_tombstones(cur, ph, job.forget_id, [*tomb, *held_rows], now)

    backends.store.transact(begin)
    return _execute(backends, buffers, job, clear_buffers=scope if ids is None else None)


def resume(backends: Backends, buffers: Buffers) -> list[ForgetReport]:
    """Finish every forget a crash interrupted (called when a Memory opens)."""
    store = backends.store
    if not store.supports_transact:
        return []
    jobs = store.transact(lambda cur, ph: sql.read_jobs(cur, ph, statuses=[STARTED]))
    out = []
    for job in jobs:
        scope = _scope_from_str(job.scope)
        whole = bool(job.report.get("whole_scope"))
        clear = scope if whole else None
        out.append(_execute(backends, buffers, job, clear_buffers=clear, resumed=True))
    return out


def reports(
    mem: Backends | HasBackends,
    *,
    forget_id: str | None = None,
    scope: Scope | None = None,
    limit: int = 20,
) -> list[ForgetReport]:
    """Stored forget reports, newest first (of one forget, if given; with ``scope`` only the
    forgets asked for within that scope)."""
    fetch = limit if scope is None else 10_000_000
    jobs = backends_of(mem).store.transact(
        lambda cur, ph: sql.read_jobs(cur, ph, forget_id=forget_id, limit=fetch)
    )
    if forget_id is not None and not jobs:
        raise NotFound(f"no forget {forget_id!r}; list them with `agentmem forget --report`")
    found = [_report(job) for job in jobs]
    if scope is not None:
        found = [r for r in found if _within(scope, r.scope)]
    return found[:limit]


def _within(scope: Scope, text: str) -> bool:
    asked = _scope_from_str(text)
    return asked is not None and scope.contains(asked)


def pending_retrain(mem: Backends | HasBackends) -> list[tuple[ForgetReport, list[str]]]:
    """Forgets whose tainted adapters await a clean retrain, with their probe texts."""
    store = backends_of(mem).store
    if not store.supports_transact:
        return []
    jobs = store.transact(lambda cur, ph: sql.read_jobs(cur, ph, statuses=[RETRAIN_PENDING]))
    return [(_report(job), list(job.probe or [])) for job in jobs]


def finish_retrain(
    mem: Backends | HasBackends,
    forget_id: str,
    retrained: list[dict[str, Any]],
    probe: dict[str, Any],
    *,
    complete: bool = True,
) -> ForgetReport:
    """Record clean retrains and the probe's result in a forget's report. With ``complete``
    (every tainted adapter handled) erase the probe texts and close the forget; else keep it
    pending for the scopes still to retrain."""
    store = backends_of(mem).store
    jobs = store.transact(lambda cur, ph: sql.read_jobs(cur, ph, forget_id=forget_id))
    if not jobs:
        raise NotFound(f"no forget {forget_id!r}")
    job = jobs[0]
    report = _report(job)
    report.retrained = [*report.retrained, *retrained]
    report.probe = _merge_probe(report.probe, probe)
    report.status = DONE if complete else RETRAIN_PENDING
    report.finished_at = time.time()
    final = sql.ForgetJob(
        **{
            **_job_fields(job),
            "status": report.status,
            "report": {**job.report, **report.model_dump(mode="json")},
            "probe": None if complete else job.probe,
            "updated_at": time.time(),
        }
    )
    store.transact(lambda cur, ph: sql.write_job(cur, ph, final))
    _ledger(store, report)
    return report


def guard(backends: Backends, records: Sequence[MemoryRecord]) -> list[str]:
    """Undo just-committed records derived from a forgotten memory (a write racing a forget):
    each is tombstoned and removed like the forget's own targets. Returns the undone ids.

    Called by the writer after its commit; the forget tombstones before it sweeps, so one of
    the two always sees the other's write."""
    store = backends.store
    if not store.supports_transact or not records:
        return []
    by_source = {r.id: sources_of(r) for r in records}
    wanted = sorted({s for sources in by_source.values() for s in sources})
    if not wanted:
        return []
    dead = store.transact(lambda cur, ph: sql.tombstoned(cur, ph, wanted))
    if not dead:
        return []
    gone = set(dead)
    undo = [r for r in records if (s := by_source[r.id]) and (set(s) <= gone or s[-1] in gone)]
    if not undo:
        return []
    now = time.time()
    store.transact(
        lambda cur, ph: sql.add_tombstones(cur, ph, "race", [(r.id, r.scope) for r in undo], now)
    )
    current = store.get_many([r.id for r in undo])
    _remove(backends, current, forget_id="race", purge=True)
    sync_outbox(backends)
    return [r.id for r in undo]


# the steps -----------------------------------------------------------------------------------


def _resolve(
    backends: Backends, scope: Scope, ids: list[str]
) -> tuple[list[MemoryRecord], list[str], dict[str, Scope]]:
    """Stored records, quarantined ids and already forgotten ids among ``ids``."""
    found = backends.store.get_many(ids)
    missing = [i for i in ids if i not in {r.id for r in found}]
    held: list[str] = []
    already: dict[str, Scope] = {}
    if missing:
        rows = backends.store.transact(
            lambda cur, ph: sql.read_quarantine(cur, ph, ids=missing, limit=len(missing))
        )
        for row in rows:
            if not scope.contains(Scope.model_validate(row.record["scope"])):
                raise PermissionDenied(
                    f"quarantined memory {row.id} is outside scope {scope} (nothing forgotten)"
                )
            held.append(row.id)
        rest = [i for i in missing if i not in set(held)]
        already = backends.store.transact(lambda cur, ph: sql.tombstoned(cur, ph, rest))
        unknown = [i for i in rest if i not in already]
        if unknown:
            raise NotFound(
                f"no memory with id {unknown[:5]} (never stored, or not visible here); "
                "nothing was forgotten"
            )
    return found, held, already


def _taint(
    backends: Backends, ids: set[str], records: Sequence[MemoryRecord]
) -> list[dict[str, Any]]:
    source = discover_recall_models(backends.settings)
    if not isinstance(source, TaintableAdapters):
        return []
    keys = sorted(
        {scope_key(s) for r in records for s in (r.scope, _outer(r.scope))} | {SHARED_SCOPE_KEY}
    )
    return source.taint_trained_on(ids, keys, "forgotten")


def _execute(
    backends: Backends,
    buffers: Buffers,
    job: sql.ForgetJob,
    *,
    clear_buffers: Scope | None,
    resumed: bool = False,
) -> ForgetReport:
    report = _report(job)
    report.resumed = resumed
    if resumed:  # a crash may have come before the taint: taint again (idempotent)
        report.adapters_tainted = _merge(
            report.adapters_tainted,
            _taint(backends, set(job.targets), backends.store.get_many(job.targets)),
        )
    present = backends.store.get_many(job.targets)
    removed = _remove(
        backends, present, forget_id=job.forget_id, purge=job.purge, whole=clear_buffers is not None
    )
    removed["quarantine"] = backends.store.transact(
        lambda cur, ph: sql.drop_quarantine(cur, ph, job.targets)
    )
    removed["note_links"] = _drop_links(backends, job.targets)
    removed["profile_fields"] = _drop_profile(backends, job, clear_buffers)
    prune = set(job.report.get("prune", []))
    if prune:
        _prune_sources(backends, [r for r in backends.store.get_many(list(prune))], job)
    if clear_buffers is not None:
        removed["buffer_turns"] = _clear_buffers(buffers, clear_buffers)
    sync_outbox(backends)
    removed["raced_writes"] = _sweep(backends, job)
    removed["communities_refreshed"] = _refresh_communities(backends, job)
    if job.purge:
        removed["files_rewritten"] = _erase_files(backends)
    for key, value in removed.items():
        report.removed[key] = report.removed.get(key, 0) + value
    report.status = RETRAIN_PENDING if report.adapters_tainted else DONE
    report.finished_at = time.time()
    report.duration_s = report.finished_at - report.started_at
    final = sql.ForgetJob(
        **{
            **_job_fields(job),
            "status": report.status,
            "report": {
                **report.model_dump(mode="json"),
                "prune": sorted(prune),
                "whole_scope": bool(job.report.get("whole_scope")),
            },
            "probe": job.probe if report.adapters_tainted else None,
            "updated_at": time.time(),
        }
    )
    backends.store.transact(lambda cur, ph: sql.write_job(cur, ph, final))
    _ledger(backends.store, report)
    return report


def _remove(
    backends: Backends,
    records: Sequence[MemoryRecord],
    *,
    forget_id: str,
    purge: bool,
    whole: bool = False,
) -> dict[str, int]:
    """Delete records with content-free history, scrub their history and cached vectors.

    ``whole``: the records are a whole scope, so every neighbour of theirs goes too (nothing to
    re-index) and their windows are built in memory instead of two queries per record."""
    counts = {"records": 0, "history_entries": 0, "index_points": 0, "cached_vectors": 0}
    if not records:
        return counts
    config = backends.settings.retrieval
    size = backends.settings.forget.batch_size
    gone = {r.id for r in records}
    graph_before = _graph_partitions(backends, list(gone))
    now = utcnow()
    for start in range(0, len(records), size):
        chunk = list(records[start : start + size])
        hashes = {r.content_hash for r in chunk} | {
            content_hash(indexed_text(r, config)) for r in chunk
        }
        if whole:
            refresh: list[str] = []
            hashes |= {content_hash(t) for t in _windows_in_memory(chunk, records, config)}
        else:
            hashes |= {content_hash(t) for t in windows_for(backends.store, chunk, config).values()}
            refresh = neighbours_to_refresh(backends.store, chunk, config, exclude=gone)
            hashes |= {
                content_hash(t)
                for t in windows_for(
                    backends.store, backends.store.get_many(refresh), config
                ).values()
            }
        backends.store.apply(
            WriteBatch(
                deletes=[r.id for r in chunk],
                history=[
                    HistoryEntry(
                        memory_id=r.id,
                        scope=r.scope,
                        event=HistoryEvent.DELETE,
                        version=r.version + 1,
                        actor=f"forget:{forget_id}",
                        at=now,
                    )
                    for r in chunk
                ],
                index=[(r.id, IndexOp.DELETE) for r in chunk]
                + [(i, IndexOp.UPSERT) for i in refresh],
            )
        )
        ids = [r.id for r in chunk]

        def scrub(
            cur: sql.Cursor, ph: str, ids: list[str] = ids, hashes: set[str] = hashes
        ) -> tuple[int, int]:
            touched = sql.scrub_history(cur, ph, ids, purge=purge)
            return touched, sql.drop_cached_vectors(cur, ph, sorted(hashes))

        touched, dropped = backends.store.transact(scrub)
        counts["records"] += len(chunk)
        counts["history_entries"] += touched
        counts["index_points"] += len(chunk)
        counts["cached_vectors"] += dropped
    counts["graph_partitions"] = graph_before
    return counts


def _windows_in_memory(
    chunk: Sequence[MemoryRecord], everything: Sequence[MemoryRecord], config: RetrievalSettings
) -> list[str]:
    """The window texts of ``chunk`` among ``everything`` (records of one exact scope, kind and
    session are neighbours in creation order, as the store's ``adjacent`` orders them)."""
    groups: dict[tuple[Any, ...], list[MemoryRecord]] = {}
    for r in everything:
        if in_conversation(r, config):
            key = (tuple(sorted(r.scope.fields().items())), _group(r, config))
            groups.setdefault(key, []).append(r)
    position: dict[tuple[Any, ...], dict[str, int]] = {}
    for key, members in groups.items():
        members.sort(key=lambda m: (m.created_at, m.id))
        position[key] = {m.id: i for i, m in enumerate(members)}
    out = []
    for r in chunk:
        if r.kind is not MemoryKind.EPISODIC:
            out.append(note_text(r, config))
            continue
        if not in_conversation(r, config):  # outside any conversation: windowed alone
            out.append(indexed_text(r, config))
            continue
        key = (tuple(sorted(r.scope.fields().items())), _group(r, config))
        members = groups.get(key, [r])
        i = position.get(key, {}).get(r.id, 0)
        prev = members[i - 1] if i > 0 else None
        nxt = members[i + 1] if i + 1 < len(members) else None
        out.append(window_text(r, prev, nxt, config))
    return out


def _group(record: MemoryRecord, config: RetrievalSettings) -> Any:
    value = record.metadata.get(config.window_group_key)
    return value if isinstance(value, str | int) and not isinstance(value, bool) else None


def _graph_partitions(backends: Backends, ids: list[str]) -> int:
    graph = getattr(backends, "graph", None)
    if graph is None or not backends.settings.graph.enabled:
        return 0
    from agentmem.graph.model import ItemKind

    keys = {
        p.key
        for kind in (ItemKind.FACT, ItemKind.LINK)
        for p in graph.partitions_holding(kind, ids)
    }
    return len(keys)


def _refresh_communities(backends: Backends, job: sql.ForgetJob) -> int:
    """Recompute the communities of the forget's scope: their summaries name entities, and a
    partition whose entities are all gone drops them (they are derived, rebuilt on demand)."""
    graph = getattr(backends, "graph", None)
    scope = _scope_from_str(job.scope)
    if graph is None or not backends.settings.graph.enabled or scope is None:
        return 0
    from agentmem.graph.communities import ensure_communities, llm_summariser

    refreshed = 0
    graph.forget_cache()
    for partition in graph.partitions(scope):
        state = graph.state(partition)
        ensure_communities(graph, state, backends.settings.graph, llm_summariser(backends.settings))
        refreshed += 1
    return refreshed


def _erase_files(backends: Backends) -> int:
    """Erasure down to the bytes (``purge=True``): an embedded vector index is rewritten from
    the store (its write-ahead log and payload pages kept deleted points), and the store's
    files are compacted (free pages, write-ahead log). Returns how many were rewritten."""
    from agentmem.indexing import reindex

    rewritten = 0
    with backends.index_lock:
        if backends.index.erases_files and backends.index.erase_files():
            rewritten += 1
    if rewritten:
        reindex(backends)
    if backends.store.erase_free_space():
        rewritten += 1
    return rewritten


def _drop_links(backends: Backends, ids: Sequence[str]) -> int:
    store = backends.store
    if not getattr(store, "supports_notes", False):
        return 0
    links = store.link_rows(list(ids))
    if links:
        store.link_write([], [(link.source_id, link.target_id) for link in links])
    return len(links)


def _drop_profile(backends: Backends, job: sql.ForgetJob, whole: Scope | None) -> int:
    if not getattr(backends.store, "supports_notes", False):
        return 0
    return int(
        backends.store.transact(
            lambda cur, ph: sql.drop_profile_fields(cur, ph, ids=job.targets, scope=whole)
        )
    )


def _prune_sources(backends: Backends, records: Sequence[MemoryRecord], job: sql.ForgetJob) -> None:
    gone = set(job.targets)
    for record in records:
        provenance = dict(record.provenance)
        for key in ("sources", "source_ids"):
            if isinstance(provenance.get(key), list):
                provenance[key] = [s for s in provenance[key] if s not in gone]
        if provenance != record.provenance:
            writing.update(
                backends, record.id, None, provenance=provenance, actor=f"forget:{job.forget_id}"
            )


def _clear_buffers(buffers: Buffers, scope: Scope) -> int:
    from agentmem.buffers import scope_from_thread_key

    backend = buffers.ready()
    cleared = 0
    for key in backend.threads():
        if scope.contains(scope_from_thread_key(key)):
            cleared += backend.delete(key)
    return cleared


def _sweep(backends: Backends, job: sql.ForgetJob) -> int:
    """Records derived from this forget's targets that a racing writer committed meanwhile."""
    scopes = {_outer(s) for s in _target_scopes(backends, job.targets)}
    total = 0
    for _ in range(10):
        candidates = _records_in(backends, scopes)
        late, _pruned = derived_closure(candidates, set(job.targets))
        if not late:
            return total
        _tombstone(backends, job.forget_id, [(r.id, r.scope) for r in late])
        _remove(backends, late, forget_id=job.forget_id, purge=job.purge)
        sync_outbox(backends)
        total += len(late)
    return total


def _tombstone(backends: Backends, forget_id: str, rows: list[tuple[str, Scope]]) -> None:
    now = time.time()
    backends.store.transact(lambda cur, ph: sql.add_tombstones(cur, ph, forget_id, rows, now))


def _target_scopes(backends: Backends, ids: Sequence[str]) -> set[Scope]:
    found = backends.store.transact(lambda cur, ph: sql.tombstoned(cur, ph, list(ids)))
    return set(found.values())


def _ledger(store: RecordStore, report: ForgetReport) -> None:
    if not store.supports_jobs:
        return
    summary = report.model_dump(mode="json", exclude={"forgotten_ids"})
    store.job_write(
        JobRow(
            run_id=report.forget_id,
            stage=LEDGER_STAGE,
            scope=report.scope,
            status=report.status,
            count_in=report.requested,
            count_out=len(report.forgotten_ids),
            started_at=report.started_at,
            duration_s=report.duration_s,
            note=json.dumps(summary, sort_keys=True)[:4000],
        )
    )


def _report(job: sql.ForgetJob) -> ForgetReport:
    data = {k: v for k, v in job.report.items() if k in ForgetReport.model_fields}
    return ForgetReport.model_validate(data)


def _job_fields(job: sql.ForgetJob) -> dict[str, Any]:
    return {name: getattr(job, name) for name in sql.ForgetJob.__slots__}


def _merge(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen = {(x["scope_key"], x["version"]) for x in a}
    return [*a, *(x for x in b if (x["scope_key"], x["version"]) not in seen)]


def _merge_probe(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    if not old:
        return new
    merged = {k: old.get(k, 0) + new.get(k, 0) for k in ("questions", "leaks")}
    merged["passed"] = bool(old.get("passed")) and bool(new.get("passed"))
    merged["adapters"] = [*old.get("adapters", []), *new.get("adapters", [])]
    return merged


def _scope_from_str(text: str) -> Scope | None:
    try:
        return Scope.of(**dict(part.split("=", 1) for part in text.split(",") if "=" in part))
    except (ValidationError, TypeError):
        return None


__all__ = [
    "DONE",
    "RETRAIN_PENDING",
    "ForgetReport",
    "TaintableAdapters",
    "derived_closure",
    "finish_retrain",
    "forget",
    "guard",
    "pending_retrain",
    "reports",
    "resume",
    "sources_of",
]
