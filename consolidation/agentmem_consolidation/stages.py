"""The consolidation stages: each a plain function ``(mem, scope, run) -> StageResult``.

A stage is registered with :func:`stage` in pipeline order; the pipeline (inline or as chained
Celery tasks) runs :data:`STAGES` in that order. Each stage is idempotent: rerun after a crash
it neither repeats committed work nor skips uncommitted work, by its own watermark or by the
state it leaves on the records (an extracted episode is marked ``done``; an archived one
carries its summary's id; a flushed turn has a deterministic record id).

Adding a stage (the knowledge graph's, when it lands) is one function and one decorator.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from agentmem.buffers import FlushKind, scope_from_thread_key
from agentmem.experience import distil_experiences
from agentmem.models import MemoryKind, Scope, utcnow
from agentmem.semantic.schema import DecisionOp
from agentmem.settings import ConsolidationSettings
from agentmem.stores import RecordQuery
from agentmem.usefulness import prune
from agentmem_consolidation import decay, ledger
from agentmem_consolidation.extract import extract_scope

if TYPE_CHECKING:
    from agentmem import Memory

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StageResult:
    """What a stage did: how many items it looked at, and how many it produced or changed."""

    count_in: int = 0
    count_out: int = 0
    note: str = ""


@dataclass(slots=True)
class RunContext:
    """One run of the pipeline for one scope, as every stage sees it."""

    run_id: str
    config: ConsolidationSettings
    now: datetime = field(default_factory=utcnow)
    train_adapter: Callable[[Scope], None] | None = None
    """How the adapter stage hands a scope to training: a task on the ``gpu`` queue under
    Celery, a direct call inline; None: no adapter training in this run."""


Stage = Callable[["Memory", Scope, RunContext], StageResult]
STAGES: dict[str, Stage] = {}
"""The registered stages, in pipeline order."""


def stage(name: str) -> Callable[[Stage], Stage]:
    """Register a stage under ``name`` (appended to the pipeline order)."""

    def register(fn: Stage) -> Stage:
        STAGES[name] = fn
        return fn

    return register


@stage("flush")
def flush_buffers(mem: Memory, scope: Scope, run: RunContext) -> StageResult:
    """Flush every live buffer thread under ``scope`` into episodic memory. Idempotent: a
    flushed turn's record id is derived from the turn, so a crash between storing and removing
    it stores nothing twice."""
    backend = mem.buffers.ready()
    turns = episodes = 0
    for key in backend.threads():
        thread_scope = scope_from_thread_key(key)
        if not scope.contains(thread_scope):
            continue
        flushed = mem.buffers.thread(thread_scope).flush(kind=FlushKind.CLOSE)
        if flushed is not None:
            turns += flushed.removed
            episodes += 1 if flushed.episode is not None else 0
    return StageResult(turns, episodes)


@stage("extract")
def extract_facts(mem: Memory, scope: Scope, run: RunContext) -> StageResult:
    """Extract facts from every episode waiting for it (marked ``extraction: pending``).
    The mark is the watermark: an episode is marked ``done`` after its facts are written, and
    one whose facts were written just before a crash is decided again as NOOPs (duplicates of
    known facts), so no fact is stored twice. The embeddings are computed in batches across
    episodes (:mod:`agentmem_consolidation.extract`); the decisions are the same as one at a
    time."""
    outcomes = extract_scope(mem.backends, scope)
    written = sum(
        1
        for o in outcomes
        for d in o.decisions
        if d.op in (DecisionOp.ADD, DecisionOp.UPDATE, DecisionOp.INVALIDATE)
    )
    if outcomes:
        ledger.set_watermark(
            mem, scope, "extract", json.dumps({"last_episode": outcomes[-1].episode_id})
        )
    return StageResult(len(outcomes), written)


@stage("communities")
def rebuild_communities(mem: Memory, scope: Scope, run: RunContext) -> StageResult:
    """Recompute the knowledge graph's community hierarchy of every graph partition under
    ``scope`` that changed since its communities were computed. (Entity resolution and the
    graph update itself run as facts are written, from the outbox, so the extract stage
    already brought the graph up to date.) Idempotent: a current partition is left alone."""
    backends = mem.backends
    graph = getattr(backends, "graph", None)
    if graph is None or not backends.settings.graph.enabled:
        return StageResult(0, 0, "no knowledge graph")
    from agentmem.graph.communities import ensure_communities, is_current, llm_summariser

    summarise = llm_summariser(backends.settings)
    partitions = graph.partitions(scope)
    rebuilt = 0
    for partition in partitions:
        state = graph.state_of(partition.scope)
        if is_current(state):
            continue
        ensure_communities(graph, state, backends.settings.graph, summarise)
        rebuilt += 1
    return StageResult(len(partitions), rebuilt)


@stage("decay")
def decay_and_archive(mem: Memory, scope: Scope, run: RunContext) -> StageResult:
    """Archive what decayed, summarise archived clusters, apply retention (see
    :mod:`agentmem_consolidation.decay`)."""
    report = decay.decay_scope(mem, scope, run.config, run.now)
    return StageResult(
        report.considered,
        report.archived + report.summaries + report.deleted,
        f"archived {report.archived}, summaries {report.summaries}, deleted {report.deleted}",
    )


@stage("utility")
def prune_by_utility(mem: Memory, scope: Scope, run: RunContext) -> StageResult:
    """Archive memories that keep being retrieved without helping and raise procedures and
    experiences that keep helping (:func:`agentmem.usefulness.prune`); each change and its
    evidence (utility, reward count) goes into the ledger note. Idempotent: an archived memory
    is skipped, and a promotion needs new evidence."""
    report = prune(mem, scope)
    evidence = "; ".join(
        f"{c.action} {c.memory_id[:8]} ({c.kind.value}, utility {c.utility:.2f} after "
        f"{c.count} rewards)"
        for c in report.changes
    )
    return StageResult(report.examined, len(report.changes), evidence[:2000])


def _count(mem: Memory, scope: Scope, kind: MemoryKind) -> tuple[int, float]:
    """How many records of ``kind`` the scope holds, and the newest creation time."""
    total, newest, offset = 0, 0.0, 0
    while True:
        page = mem.backends.store.query(
            RecordQuery(scope=scope, kinds=(kind,), limit=5000, offset=offset)
        )
        total += len(page)
        newest = max([newest, *(r.created_at.timestamp() for r in page)])
        if len(page) < 5000:
            return total, newest
        offset += len(page)


@stage("distil")
def distil_procedures(mem: Memory, scope: Scope, run: RunContext) -> StageResult:
    """Distil the scope's experiences into procedures, when experiences were recorded since
    the last distillation (the watermark). Distillation itself is idempotent: an experience
    already in a procedure's evidence does not count twice."""
    count, newest = _count(mem, scope, MemoryKind.EXPERIENCE)
    mark = ledger.watermark(mem, scope, "distil")
    seen = json.loads(mark.value) if mark else {}
    if count == 0 or (seen.get("count") == count and seen.get("newest") == newest):
        return StageResult(count, 0, "no new experiences")
    procedures = distil_experiences(mem.backends, scope)
    ledger.set_watermark(mem, scope, "distil", json.dumps({"count": count, "newest": newest}))
    return StageResult(count, len(procedures))


def gpu_available() -> bool:
    """Whether the ``gpu`` package (adapter training) is installed."""
    return importlib.util.find_spec("agentmem_gpu") is not None


@stage("adapters")
def hand_off_adapter(mem: Memory, scope: Scope, run: RunContext) -> StageResult:
    """Hand the scope to adapter training (its retriever adapter, and its recall adapter on
    ``recall_adapter_base``:
    :func:`agentmem_gpu.recall_adapter_pipeline.train_scope_adapters`) when it gained
    at least ``adapter_min_new_episodes`` episodic memories since the last hand-off.
    The training set is built by the trainer (``agentmem_gpu.trainsets``) from the scope's memories;
    an unchanged scope is never retrained (the registry knows the data hash)."""
    threshold = run.config.adapter_min_new_episodes
    if threshold is None or run.train_adapter is None or not gpu_available():
        return StageResult(0, 0, "adapter training off")
    count, _ = _count(mem, scope, MemoryKind.EPISODIC)
    mark = ledger.watermark(mem, scope, "adapters")
    before = int(json.loads(mark.value).get("episodes", 0)) if mark else 0
    new = count - before
    if new < threshold or count < 2:
        return StageResult(new, 0, f"{new} new episodes < {threshold}")
    run.train_adapter(scope)
    ledger.set_watermark(mem, scope, "adapters", json.dumps({"episodes": count}))
    return StageResult(new, 1, "handed to adapter training")


@stage("retrain_forgotten")
def retrain_forgotten(mem: Memory, scope: Scope, run: RunContext) -> StageResult:
    """Retrain the scope's adapters that a forget tainted, without the forgotten memories;
    promote the clean ones and probe them (:mod:`agentmem_gpu.clean`), completing the forget's
    report.
    Idempotent: a forget whose adapters were retrained is no longer pending."""
    if not gpu_available():
        return StageResult(0, 0, "adapter training off")
    from agentmem_gpu.clean import retrain_forgotten as retrain

    reports = retrain(mem, scope)
    return StageResult(
        len(reports),
        sum(1 for r in reports for x in r.retrained if x.get("promoted")),
        "; ".join(f"forget {r.forget_id[:8]}: {r.status}" for r in reports),
    )


__all__ = [
    "STAGES",
    "RunContext",
    "Stage",
    "StageResult",
    "decay_and_archive",
    "distil_procedures",
    "extract_facts",
    "flush_buffers",
    "gpu_available",
    "hand_off_adapter",
    "rebuild_communities",
    "retrain_forgotten",
    "stage",
]
