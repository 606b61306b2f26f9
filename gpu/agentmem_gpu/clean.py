"""Retrain adapters tainted by a forget without the forgotten memories, promote the clean ones
through the registry, and probe them with generated questions about what was forgotten.

Consolidation's ``retrain_forgotten`` stage calls :func:`retrain_forgotten` for each scope; the
result goes into the forget's report (:func:`agentmem.erasure.finish_retrain`)::

    report.retrained  # [{"scope_key", "kind", "version", "promoted", "reason"}]
    report.probe      # {"questions": 12, "leaks": 0, "passed": True, "adapters": [...]}

A retriever adapter passes the probe when its training sources exclude every forgotten id and
no search through it, for a question generated about a forgotten text, returns that text; a
recall adapter when, besides, its closed-book answer to each question is not the forgotten
answer. The probe texts are erased from the forget journal once every tainted adapter is done.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from filelock import FileLock

from agentmem import erasure
from agentmem.errors import InvalidSettings, NotFound, ValidationError
from agentmem.models import MemoryRecord, Scope
from agentmem.parametric import SHARED_SCOPE_KEY, scope_key
from agentmem_gpu.config import RECALL_KIND, RecallAdapterConfig, RetrieverAdapterConfig
from agentmem_gpu.registry import AdapterRegistry, AdapterVersion
from agentmem_gpu.trainsets import TrainSetConfig

if TYPE_CHECKING:
    from agentmem import Memory
    from agentmem_gpu.recall_adapter_data import RecallSetConfig


@dataclass(frozen=True)
class CleanConfigs:
    """Training configs of clean retrains (defaults: each trainer's own)."""

    retriever: RetrieverAdapterConfig | None = None
    trainset: TrainSetConfig | None = None
    recall: RecallAdapterConfig | None = None
    recallset: RecallSetConfig | None = None
    force_promote: bool = False
    """Promote the clean adapter even when it does not beat the base model (by default it
    must, like any adapter; until one is promoted, recall and search use the base model)."""


def retrain_forgotten(
    mem: Memory,
    scope: Scope,
    *,
    registry: AdapterRegistry | None = None,
    configs: CleanConfigs | None = None,
    max_questions: int | None = None,
) -> list[erasure.ForgetReport]:
    """Retrain the adapters tainted by pending forgets that this scope's run meets; returns
    the reports updated.

    A tainted adapter that records the scopes it was trained on (the shared one, one trained on
    a user or org above the forgotten memory's scope, a thread's) is retrained by the first
    scope's run that meets it, over those scopes; one that does not, by its own scope's run."""
    registry = registry or AdapterRegistry.from_settings(mem.settings)
    configs = configs or CleanConfigs()
    per_text = max_questions or mem.settings.forget.probe_questions
    updated = []
    registry.root.mkdir(parents=True, exist_ok=True)
    for report, texts in erasure.pending_retrain(mem):
        # Runs of several scopes can meet one tainted adapter: the first retrains it while
        # the others wait here, then find it retrained in the report.
        with FileLock(str(registry.root / ".retrain.lock")):
            report = erasure.reports(mem, forget_id=report.forget_id)[0]
            done = (
                _retrain_report(mem, scope, report, texts, registry, configs, per_text)
                if report.status == erasure.RETRAIN_PENDING
                else None
            )
        if done is not None:
            updated.append(done)
    return updated


def _retrain_report(
    mem: Memory,
    scope: Scope,
    report: erasure.ForgetReport,
    texts: list[str],
    registry: AdapterRegistry,
    configs: CleanConfigs,
    per_text: int,
) -> erasure.ForgetReport | None:
    """Retrain what one forget tainted that this scope's run owns (:func:`_owned`), probe the
    clean adapters and record them; None when nothing is its to do."""
    done_keys = {(r["scope_key"], r["kind"]) for r in report.retrained}
    pending = {(t["scope_key"], t["kind"]) for t in report.adapters_tainted} - done_keys
    mine = {p: s for p in sorted(pending) if (s := _owned(scope, report, *p, registry))}
    if not mine:
        return None
    retrained: list[dict[str, Any]] = []
    probes: list[dict[str, Any]] = []
    for (adapter_key, kind), scopes in mine.items():
        if adapter_key == SHARED_SCOPE_KEY:
            result, version = _retrain_shared(mem, kind, report, registry, configs)
            asked = scope
        else:
            result, version = _retrain(mem, scopes, adapter_key, kind, registry, configs)
            asked = scopes[0]  # the scope whose searches and recalls the adapter serves
        retrained.append(result)
        if version is not None:
            probes.append(
                probe(mem, asked, version, registry, texts, report.forgotten_ids, per_text)
            )
    summary = {
        "questions": sum(p["questions"] for p in probes),
        "leaks": sum(p["leaks"] for p in probes),
        "passed": all(p["passed"] for p in probes),
        "adapters": probes,
    }
    return erasure.finish_retrain(
        mem, report.forget_id, retrained, summary, complete=not pending - mine.keys()
    )


def _owned(
    scope: Scope,
    report: erasure.ForgetReport,
    adapter_key: str,
    kind: str,
    registry: AdapterRegistry,
) -> list[Scope]:
    """The scopes this run retrains a tainted adapter over; empty when it is not its to do.

    The shared adapter is any run's (its scopes are read when it is retrained). A per-scope
    adapter is retrained over the scopes its tainted version records, by any run: its key need
    not be the key of a scope consolidation runs (a user-wide adapter trained on memories that
    also carry an agent, an org-wide one, a thread's). One saved before its scopes were recorded
    is left to the run of its own scope."""
    if adapter_key == SHARED_SCOPE_KEY:
        return [scope]
    from agentmem_gpu.pipeline import trained_scopes

    numbers = [
        t["version"]
        for t in report.adapters_tainted
        if t["scope_key"] == adapter_key and t["kind"] == kind
    ]
    try:
        recorded = trained_scopes(registry.get(adapter_key, max(numbers)).metadata)
    except (InvalidSettings, NotFound):  # unreadable: left to its own scope's run
        recorded = []
    if recorded:
        return recorded
    return [scope] if adapter_key == scope_key(scope) else []


def _retrain_shared(
    mem: Memory,
    kind: str,
    report: erasure.ForgetReport,
    registry: AdapterRegistry,
    configs: CleanConfigs,
) -> tuple[dict[str, Any], AdapterVersion | None]:
    """Retrain the shared adapter over the scopes its tainted version was trained on (recorded
    in its metadata), whose memories no longer include the forgotten ones."""
    not_retrained: dict[str, Any] = {
        "scope_key": SHARED_SCOPE_KEY,
        "kind": kind,
        "version": None,
        "promoted": False,
    }
    if kind == RECALL_KIND:
        reason = (
            "a shared recall adapter is not retrained automatically (recall adapters train on "
            "one scope): train one with `agentmem adapters train --kind recall` and register it"
        )
        return {**not_retrained, "reason": reason}, None
    numbers = [
        t["version"]
        for t in report.adapters_tainted
        if t["scope_key"] == SHARED_SCOPE_KEY and t["kind"] == kind
    ]
    from agentmem_gpu.pipeline import trained_scopes

    tainted = registry.get(SHARED_SCOPE_KEY, max(numbers))
    scopes = trained_scopes(tainted.metadata)
    if not scopes:
        reason = (
            f"shared v{tainted.version} does not record the scopes it was trained on (saved "
            "before they were recorded): retrain it with "
            "`agentmem adapters train --shared --user ID --user ID ...`"
        )
        return {**not_retrained, "reason": reason}, None
    return _retrain(mem, scopes, SHARED_SCOPE_KEY, kind, registry, configs)


def _retrain(
    mem: Memory,
    scopes: list[Scope],
    key: str,
    kind: str,
    registry: AdapterRegistry,
    configs: CleanConfigs,
) -> tuple[dict[str, Any], AdapterVersion | None]:
    result: dict[str, Any] = {"scope_key": key, "kind": kind}
    try:
        if kind == RECALL_KIND:
            from agentmem_gpu.recall_adapter_pipeline import train_scope_recall_adapter

            tainted = [v for v in registry.list(key, RECALL_KIND) if v.tainted]
            outcome = train_scope_recall_adapter(
                mem,
                scopes[0],
                tainted[-1].metadata.base_model,
                key=key,
                config=configs.recall,
                recallset_config=configs.recallset,
                registry=registry,
            )
        else:
            from agentmem_gpu.pipeline import train_scope_adapter

            outcome = train_scope_adapter(
                mem,
                scopes,
                key=key,
                config=configs.retriever,
                trainset_config=configs.trainset,
                registry=registry,
            )
    except ValidationError as exc:  # e.g. too few memories left to train on
        result.update(version=None, promoted=False, reason=str(exc))
        return result, None
    version = outcome.version
    promotion = outcome.promotion
    if configs.force_promote and (promotion is None or not promotion.promoted):
        promotion = registry.promote(key, version.version, force=True)
    promoted = bool(promotion is not None and promotion.promoted)
    reason = promotion.reason if promotion is not None else "not promoted"
    result.update(version=version.version, promoted=promoted, reason=reason)
    return result, version


def _norm(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def probe(
    mem: Memory,
    scope: Scope,
    version: AdapterVersion,
    registry: AdapterRegistry,
    texts: list[str],
    forgotten_ids: list[str],
    per_text: int,
) -> dict[str, Any]:
    """Ask the clean adapter generated questions about the forgotten ``texts``; count leaks
    (a forgotten text returned by search through it, or its answer produced closed-book). An
    answer that a kept memory of the scope also holds ("Rex" of a forgotten "I adopted a puppy
    named Rex" in a kept "Rex sounds adorable!") is no leak: the clean adapter may have learnt
    it from that memory."""
    clean_sources = not set(version.metadata.source_ids) & set(forgotten_ids)
    forgotten = [_norm(t) for t in texts if _norm(t)]
    records = [MemoryRecord(scope=scope, text=t) for t in texts if t.strip()]
    questions: list[tuple[str, str | None]] = []
    if records and version.kind == RECALL_KIND:
        from agentmem_gpu.recall_adapter_data import build_recallset

        pairs = build_recallset(records)
        for pair in (*pairs.train, *pairs.eval)[: per_text * len(records)]:
            questions.append((pair.question, pair.answer))
    elif records:
        from agentmem_gpu.trainsets import build_trainset

        trainset = build_trainset(records, TrainSetConfig(eval_fraction=0.0))
        for train_pair in trainset.train[: per_text * len(records)]:
            questions.append((train_pair.query, None))
    leaks = 0
    model = registry.recall_model(version.scope_key) if version.kind == RECALL_KIND else None
    kept: dict[str, bool] = {}  # answer -> a kept memory of the scope holds it
    for question, answer in questions:
        hits = mem.search(question, k=10, scope=scope)
        leaked = any(_norm(h.record.text) in forgotten for h in hits)
        if model is not None and answer:
            if answer not in kept:
                found = mem.search(answer, k=5, scope=scope)
                kept[answer] = any(_norm(answer) in _norm(h.record.text) for h in found)
            said = "" if kept[answer] else _norm(model.answer(question).answer)
            leaked = leaked or (bool(said) and _norm(answer) in said)
        leaks += int(leaked)
    return {
        "scope_key": version.scope_key,
        "kind": version.kind,
        "version": version.version,
        "questions": len(questions),
        "leaks": leaks,
        "clean_sources": clean_sources,
        "passed": clean_sources and leaks == 0,
    }


__all__ = ["CleanConfigs", "probe", "retrain_forgotten"]
