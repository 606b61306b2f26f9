"""Erasure: forgetting that reaches every copy, ``mem.forget(ids | scope, reason=...)``.

(Erasure on request; the gradual decay of unused memories is consolidation's ``decay`` stage.)

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
   history (``purge=True``: delete it), drop their cached vectors
   (:mod:`agentmem.erasure_removal`), quarantine rows, note links and the profile field
   values derived from them (a list field keeps its other facts' items), and take what their
   evolution added out of the notes they evolved (keywords, tags, context, and those notes'
   history); the outbox removes their vector and BM25 entries and graph items (edges stated
   by other facts keep those); a forgotten scope's live buffers are cleared;
4. sweep for records derived from tombstoned ids that appeared meanwhile;
5. write the report (counts per place, tainted adapters; no content) to the journal and the
   job ledger. Consolidation's ``retrain_forgotten`` stage retrains tainted adapters without
   the items, promotes the clean ones through the registry, probes them with generated
   questions about the forgotten texts and completes the report (:func:`finish_retrain`).

The journal, the tombstones and the quarantine are store interfaces
(:class:`~agentmem.stores.ForgetJournal`, :class:`~agentmem.stores.QuarantineStore`): a store
without them refuses a forget with :class:`~agentmem.errors.MissingCapability`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from agentmem import erasure_removal, writing
from agentmem.backends import Backends, HasBackends, backends_of
from agentmem.buffers.base import thread_key
from agentmem.erasure_scope import journal_scope_text, scope_from_journal
from agentmem.errors import NotFound, PermissionDenied, ValidationError
from agentmem.indexing import sync_outbox
from agentmem.lineage import derived_closure, evolved_by, sources_of, without_sources
from agentmem.models import (
    MemoryRecord,
    Scope,
    new_id,
)
from agentmem.parametric import SHARED_SCOPE_KEY, discover_recall_models, scope_key
from agentmem.stores import (
    ForgetJob,
    ForgetJournal,
    JobLedger,
    QuarantineStore,
    RecordQuery,
    RecordStore,
    require,
)
from agentmem.stores._jobs_sql import JobRow

if TYPE_CHECKING:
    from agentmem.buffers import Buffers

STARTED = "started"
RETRAIN_PENDING = "retrain_pending"
DONE = "done"
LEDGER_STAGE = "forget"
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
    graph_partitions, quarantine, note_links, evolved_notes (notes a forgotten note's evolution
    had added to), profile_fields, buffer_turns, raced_writes."""
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
    (the ``agentmem_gpu`` registry implements it)."""

    def taint_trained_on(
        self, ids: set[str], scope_keys: Sequence[str], reason: str
    ) -> list[dict[str, Any]]:
        """Taint every adapter whose training data included one of ``ids`` (adapters that
        do not record their sources: every adapter under ``scope_keys``); returns each tainted
        adapter as ``{"scope_key", "version", "kind"}``. Tainted adapters never serve."""
        ...


# provenance ----------------------------------------------------------------------------------


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
    of ``scope``, everywhere they were copied. See the module docstring.

    Three steps: check the request (nothing read yet), plan what to forget (nothing changed
    yet; a target or derived record outside ``scope`` refuses the whole forget), then journal
    and tombstone the plan and execute it."""
    journal, requested = _check_request(backends.store, ids, reason, purge)
    plan = _plan(backends, scope, requested)
    report = ForgetReport(
        forget_id=new_id(),
        reason=reason.strip(),
        scope=str(scope),
        purge=purge,
        status=STARTED,
        requested=len(plan.requested),
        already_forgotten=len(plan.already),
        forgotten_ids=plan.all_ids,
        derived=len(plan.derived),
        kept_with_other_sources=len(plan.pruned),
        started_at=time.time(),
    )
    if not plan.all_ids and not plan.whole_scope:
        report.status = DONE
        report.finished_at = time.time()
        return report
    erasure_removal.check_graph_server(backends)  # a graph server it cannot reach refuses
    report.adapters_tainted = _taint(backends, set(plan.all_ids), plan.everything)
    job = _begin(journal, plan, report)
    return _execute(backends, buffers, job, clear_buffers=scope if plan.whole_scope else None)


@dataclass(frozen=True)
class _Plan:
    """What one forget removes, computed before anything changes."""

    scope: Scope
    whole_scope: bool
    requested: list[str]
    targets: list[MemoryRecord]
    """Stored records asked for (every record of the scope for a whole-scope forget)."""
    quarantined: list[str]
    deleted: dict[str, Scope]
    """Memories deleted before (no stored record) whose history still holds their content."""
    already: dict[str, Scope]
    """Requested ids forgotten before, with their scopes."""
    derived: list[MemoryRecord]
    pruned: list[MemoryRecord]
    """Derived records kept, with their forgotten sources to prune."""
    evolved: list[MemoryRecord]
    """Notes kept that a forgotten note's evolution added to (its additions go)."""

    @property
    def everything(self) -> list[MemoryRecord]:
        return [*self.targets, *self.derived]

    @property
    def all_ids(self) -> list[str]:
        return [r.id for r in self.everything] + self.quarantined + list(self.deleted)


def _check_request(
    store: RecordStore, ids: Sequence[str] | None, reason: str, purge: bool
) -> tuple[ForgetJournal, list[str] | None]:
    """Refuse a bad request before anything is read: the store's journal, and the requested
    ids without repeats (None: the whole scope)."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError("forget needs a reason, e.g. reason='user erasure request'")
    if not isinstance(purge, bool):
        raise ValidationError(f"purge must be True or False, got {purge!r}")
    requested: list[str] | None = None
    if ids is not None:
        if isinstance(ids, str) or not isinstance(ids, Sequence) or not ids:
            raise ValidationError("forget needs a non-empty list of memory ids, or no ids (scope)")
        requested = list(dict.fromkeys(ids))
        for i in requested:
            if not isinstance(i, str) or not i:
                raise ValidationError(f"memory ids are non-empty strings, got {i!r}")
    return _journal(store), requested


def _plan(backends: Backends, scope: Scope, requested: list[str] | None) -> _Plan:
    """The targets, quarantined ids and derived records of a forget (nothing changed yet):
    NotFound when a requested id lies outside ``scope``, PermissionDenied when a record
    derived from them does."""
    if requested is None:
        targets = _records_in(backends, [scope])
        held = _quarantine(backends.store).quarantine_rows(scope=scope, limit=10_000_000)
        quarantined = [r.id for r in held]
        deleted = erasure_removal.deleted_before(backends.store, scope=scope, skip=set(quarantined))
        already: dict[str, Scope] = {}
    else:
        targets, quarantined, deleted, already = _resolve(backends, scope, requested)
    outside = [r.id for r in targets if not scope.contains(r.scope)]
    outside += [i for i, s in [*already.items(), *deleted.items()] if not scope.contains(s)]
    if outside:  # as unknown ids: a scope never learns that another scope's ids exist
        raise _not_in(scope, sorted(outside))
    neighbourhood = {_outer(r.scope) for r in targets} or {_outer(scope)}
    gone = {r.id for r in targets} | set(deleted)
    candidates = _records_in(backends, neighbourhood)
    derived, pruned = derived_closure(candidates, gone)
    evolved = evolved_by(candidates, gone | {r.id for r in derived})
    foreign = [r.id for r in derived if not scope.contains(r.scope)]
    if foreign:
        raise PermissionDenied(
            f"records {foreign[:5]} derived from these memories lie outside scope {scope}; "
            "forget with a scope that contains them (nothing was forgotten)"
        )
    return _Plan(
        scope=scope,
        whole_scope=requested is None,
        requested=[r.id for r in targets] if requested is None else requested,
        targets=targets,
        quarantined=quarantined,
        deleted=deleted,
        already=already,
        derived=derived,
        pruned=pruned,
        evolved=evolved,
    )


def _begin(journal: ForgetJournal, plan: _Plan, report: ForgetReport) -> ForgetJob:
    """Journal the forget and tombstone its ids in one transaction (step 1)."""
    job = ForgetJob(
        forget_id=report.forget_id,
        scope=journal_scope_text(plan.scope),
        reason=report.reason,
        purge=report.purge,
        status=STARTED,
        targets=plan.all_ids,
        report={
            **report.model_dump(mode="json"),
            "prune": [r.id for r in plan.pruned],
            "withdraw": [r.id for r in plan.evolved],
            "whole_scope": plan.whole_scope,
            # What was asked for (not derived): a buffer segment's turns follow only these.
            "asked": [r.id for r in plan.targets],
        },
        # What the retrain probe asks about, only while a tainted adapter awaits retraining.
        probe=[r.text for r in plan.everything] if report.adapters_tainted else None,
        created_at=report.started_at,
        updated_at=report.started_at,
    )
    tombstones = [(r.id, r.scope) for r in plan.everything]
    tombstones += [(i, plan.scope) for i in plan.quarantined]
    tombstones += list(plan.deleted.items())
    journal.forget_begin(job, tombstones)
    return job


def resume(backends: Backends, buffers: Buffers) -> list[ForgetReport]:
    """Finish every forget a crash interrupted (called when a Memory opens)."""
    store = backends.store
    if not isinstance(store, ForgetJournal):
        return []
    jobs = store.forget_jobs(statuses=[STARTED])
    out = []
    for job in jobs:
        scope = scope_from_journal(job.scope)
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
    jobs = _journal(backends_of(mem).store).forget_jobs(forget_id=forget_id, limit=fetch)
    if forget_id is not None and not jobs:
        raise NotFound(f"no forget {forget_id!r}; list them with `agentmem forget --report`")
    if scope is not None:
        jobs = [job for job in jobs if _within(scope, job.scope)]
    return [_report(job) for job in jobs[:limit]]


def _within(scope: Scope, text: str) -> bool:
    asked = scope_from_journal(text)
    return asked is not None and scope.contains(asked)


def pending_retrain(mem: Backends | HasBackends) -> list[tuple[ForgetReport, list[str]]]:
    """Forgets whose tainted adapters await a clean retrain, with their probe texts."""
    store = backends_of(mem).store
    if not isinstance(store, ForgetJournal):
        return []
    jobs = store.forget_jobs(statuses=[RETRAIN_PENDING])
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
    store = _journal(backends_of(mem).store)
    jobs = store.forget_jobs(forget_id=forget_id)
    if not jobs:
        raise NotFound(f"no forget {forget_id!r}")
    job = jobs[0]
    report = _report(job)
    report.retrained = [*report.retrained, *retrained]
    report.probe = _merge_probe(report.probe, probe)
    report.status = DONE if complete else RETRAIN_PENDING
    report.finished_at = time.time()
    final = ForgetJob(
        **{
            **_job_fields(job),
            "status": report.status,
            "report": {**job.report, **report.model_dump(mode="json")},
            "probe": None if complete else job.probe,
            "updated_at": time.time(),
        }
    )
    store.forget_job_write(final)
    _ledger(backends_of(mem).store, final, report)
    return report


def guard(backends: Backends, records: Sequence[MemoryRecord]) -> list[str]:
    """Undo just-committed records derived from a forgotten memory (a write racing a forget):
    each is tombstoned and removed like the forget's own targets. Returns the undone ids.

    Called by the writer after its commit; the forget tombstones before it sweeps, so one of
    the two always sees the other's write."""
    store = backends.store
    undo = derived_from_forgotten(store, records)
    if not undo or not isinstance(store, ForgetJournal):
        return []
    now = time.time()
    store.tombstone("race", [(r.id, r.scope) for r in undo], now)
    current = store.get_many([r.id for r in undo])
    erasure_removal.remove(backends, current, forget_id="race", purge=True)
    sync_outbox(backends)
    return [r.id for r in undo]


def derived_from_forgotten(
    store: RecordStore, records: Sequence[MemoryRecord]
) -> list[MemoryRecord]:
    """Those of ``records`` derived from memories a forget erased here: every source, or the
    latest, tombstoned (what :func:`guard` undoes; an import leaves them out)."""
    if not isinstance(store, ForgetJournal) or not records:
        return []
    by_source = {r.id: sources_of(r) for r in records}
    wanted = sorted({s for sources in by_source.values() for s in sources})
    gone = set(store.tombstoned(wanted)) if wanted else set()
    return [r for r in records if (s := by_source[r.id]) and (set(s) <= gone or s[-1] in gone)]


# the steps -----------------------------------------------------------------------------------


def _resolve(
    backends: Backends, scope: Scope, ids: list[str]
) -> tuple[list[MemoryRecord], list[str], dict[str, Scope], dict[str, Scope]]:
    """Stored records, quarantined ids, ids deleted before and already forgotten ids among
    ``ids``."""
    found = backends.store.get_many(ids)
    missing = [i for i in ids if i not in {r.id for r in found}]
    held: list[str] = []
    deleted: dict[str, Scope] = {}
    already: dict[str, Scope] = {}
    if missing:
        rows = _quarantine(backends.store).quarantine_rows(ids=missing, limit=len(missing))
        for row in rows:
            if not scope.contains(Scope.model_validate(row.record["scope"])):
                raise _not_in(scope, [row.id])
            held.append(row.id)
        rest = [i for i in missing if i not in set(held)]
        already = _journal(backends.store).tombstoned(rest)
        deleted = erasure_removal.deleted_before(
            backends.store, ids=[i for i in rest if i not in already], skip=set()
        )
        unknown = [i for i in rest if i not in already and i not in deleted]
        if unknown:
            raise NotFound(
                f"no memory with id {unknown[:5]} (never stored, or not visible here); "
                "nothing was forgotten"
            )
    return found, held, deleted, already


def _not_in(scope: Scope, ids: list[str]) -> NotFound:
    """The error for requested ids another scope holds: worded as for unknown ids."""
    return NotFound(
        f"no memory with id {ids[:5]} in scope {scope} (never stored, or not visible here); "
        "forget with the scope that holds it: nothing was forgotten"
    )


def _taint(
    backends: Backends, ids: set[str], records: Sequence[MemoryRecord]
) -> list[dict[str, Any]]:
    # Whatever AGENTMEM_ADAPTERS says: "off" stops serving adapters, and one turned back on
    # must not serve weights trained on what was forgotten.
    source = discover_recall_models(backends.settings, serving=False)
    if not isinstance(source, TaintableAdapters):
        return []
    keys = sorted(
        {scope_key(s) for r in records for s in (r.scope, _outer(r.scope))} | {SHARED_SCOPE_KEY}
    )
    return source.taint_trained_on(ids, keys, "forgotten")


def _execute(
    backends: Backends,
    buffers: Buffers,
    job: ForgetJob,
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
    removed = erasure_removal.remove(
        backends, present, forget_id=job.forget_id, purge=job.purge, whole=clear_buffers is not None
    )
    touched, dropped = erasure_removal.scrub_absent(
        backends, job.targets, {r.id for r in present}, purge=job.purge
    )
    removed["history_entries"] = removed.get("history_entries", 0) + touched
    removed["cached_vectors"] = removed.get("cached_vectors", 0) + dropped
    removed["quarantine"] = _quarantine(backends.store).quarantine_drop(job.targets)
    removed["note_links"] = erasure_removal.drop_links(backends, job.targets)
    _withdraw(backends, job, job.report.get("withdraw", []), removed)
    removed["profile_fields"] = erasure_removal.drop_profile(backends, job.targets, clear_buffers)
    removed["utility_rows"] = erasure_removal.drop_utility(backends, job.targets)
    prune = set(job.report.get("prune", []))
    if prune:
        _prune_sources(backends, [r for r in backends.store.get_many(list(prune))], job)
    if clear_buffers is not None:
        removed["buffer_turns"] = erasure_removal.clear_buffers(buffers, clear_buffers)
    sync_outbox(backends)
    removed["graph_partitions"] = removed.get("graph_partitions", 0) + (
        erasure_removal.drop_store_copy(backends, job.targets, clear_buffers)
    )
    removed["raced_writes"] = _sweep(backends, job, removed)
    backends.sessions.clear()  # the session prior's term counts of the forgotten turns
    removed["communities_refreshed"] = _refresh_communities(backends, job)
    if job.purge:
        removed["files_rewritten"] = erasure_removal.erase_files(backends)
    for key, value in removed.items():
        report.removed[key] = report.removed.get(key, 0) + value
    report.status = RETRAIN_PENDING if report.adapters_tainted else DONE
    report.finished_at = time.time()
    report.duration_s = report.finished_at - report.started_at
    final = ForgetJob(
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
    _journal(backends.store).forget_job_write(final)
    _ledger(backends.store, final, report)
    return report


def _refresh_communities(backends: Backends, job: ForgetJob) -> int:
    """Recompute the communities of the forget's scope: their summaries name entities, and a
    partition whose entities are all gone drops them (they are derived, rebuilt on demand)."""
    graph = getattr(backends, "graph", None)
    scope = scope_from_journal(job.scope)
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


def _prune_sources(backends: Backends, records: Sequence[MemoryRecord], job: ForgetJob) -> None:
    gone = set(job.targets)
    for record in records:
        provenance, metadata = without_sources(record, gone)
        if provenance != record.provenance or metadata != record.metadata:
            writing.update(
                backends,
                record.id,
                None,
                provenance=provenance,
                metadata=metadata if metadata != record.metadata else None,
                actor=f"forget:{job.forget_id}",
            )


def _withdraw(
    backends: Backends, job: ForgetJob, ids: Sequence[str], removed: dict[str, int]
) -> None:
    """Take what the forgotten notes' evolution added out of the notes ``ids`` (counted in
    ``removed``)."""
    if not ids:
        return
    counts = erasure_removal.withdraw_evolutions(
        backends, ids, set(job.targets), forget_id=job.forget_id
    )
    for key, value in counts.items():
        removed[key] = removed.get(key, 0) + value


def _sweep(backends: Backends, job: ForgetJob, removed: dict[str, int]) -> int:
    """Records derived from this forget's targets that a racing writer committed meanwhile
    (and notes a racing evolution gave their words, which are withdrawn)."""
    scopes = {_outer(s) for s in _target_scopes(backends, job.targets)}
    total = 0
    asked = set(job.report.get("asked", job.targets))
    for _ in range(10):
        candidates = _records_in(backends, scopes)
        late, _pruned = derived_closure(candidates, set(job.targets), asked=asked)
        evolved = [r.id for r in evolved_by(candidates, set(job.targets))]
        if evolved:
            _withdraw(backends, job, evolved, removed)
            sync_outbox(backends)
        if not late:
            return total
        _tombstone(backends, job.forget_id, [(r.id, r.scope) for r in late])
        erasure_removal.remove(backends, late, forget_id=job.forget_id, purge=job.purge)
        sync_outbox(backends)
        total += len(late)
    return total


def _tombstone(backends: Backends, forget_id: str, rows: list[tuple[str, Scope]]) -> None:
    _journal(backends.store).tombstone(forget_id, rows, time.time())


def _target_scopes(backends: Backends, ids: Sequence[str]) -> set[Scope]:
    found = _journal(backends.store).tombstoned(list(ids))
    return set(found.values())


def _ledger(store: RecordStore, job: ForgetJob, report: ForgetReport) -> None:
    if not isinstance(store, JobLedger):
        return
    scope = scope_from_journal(job.scope)
    summary = report.model_dump(mode="json", exclude={"forgotten_ids"})
    store.job_write(
        JobRow(
            run_id=report.forget_id,
            stage=LEDGER_STAGE,
            scope=report.scope if scope is None else thread_key(scope),
            status=report.status,
            count_in=report.requested,
            count_out=len(report.forgotten_ids),
            started_at=report.started_at,
            duration_s=report.duration_s,
            note=json.dumps(summary, sort_keys=True)[:4000],
        )
    )


def _report(job: ForgetJob) -> ForgetReport:
    data = {k: v for k, v in job.report.items() if k in ForgetReport.model_fields}
    return ForgetReport.model_validate(data)


def _job_fields(job: ForgetJob) -> dict[str, Any]:
    return {name: getattr(job, name) for name in ForgetJob.__slots__}


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


def _journal(store: RecordStore) -> ForgetJournal:
    return require(store, ForgetJournal, "forgetting")


def _quarantine(store: RecordStore) -> QuarantineStore:
    return require(store, QuarantineStore, "forgetting")


__all__ = [
    "DONE",
    "RETRAIN_PENDING",
    "ForgetReport",
    "TaintableAdapters",
    "derived_closure",
    "derived_from_forgotten",
    "finish_retrain",
    "forget",
    "guard",
    "pending_retrain",
    "reports",
    "resume",
    "sources_of",
]
