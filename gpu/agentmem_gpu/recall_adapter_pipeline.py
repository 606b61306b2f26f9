"""Train, register and (when it earns it) promote a recall adapter for a scope of a Memory.

::

    outcome = train_scope_recall_adapter(mem, Scope.of(user_id="alice"), "models/qwen2.5-0.5b")
    outcome.promotion.promoted   # True when it beat the base model (or the current adapter)
    mem.recall("Fill in the blank: Alice adopted a puppy named ___", user_id="alice")

The scope's semantic facts and episodic turns are the training data; an unchanged scope is not
retrained (its data hash is looked up in the registry first). Only torch-free modules are
imported here; training loads torch and peft on first use.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentmem.errors import ModelUnavailable, ValidationError
from agentmem.models import MemoryKind, MemoryRecord, Scope
from agentmem.parametric import SHARED_SCOPE_KEY, scope_key
from agentmem.scoping import scope_of
from agentmem_gpu.config import RECALL_KIND, RecallAdapterConfig, RetrieverAdapterConfig
from agentmem_gpu.pipeline import (
    TrainOutcome,
    record_incumbent,
    record_scopes,
    register_checked,
)
from agentmem_gpu.questions import QuestionGenerator
from agentmem_gpu.recall_adapter_data import RecallSetConfig, build_recallset, recallset_hash
from agentmem_gpu.registry import AdapterRegistry
from agentmem_gpu.smollm import SMOLLM2

if TYPE_CHECKING:
    from agentmem import Memory

log = logging.getLogger(__name__)
_PAGE = 1000


def fact_records(mem: Memory, scope: Scope) -> list[MemoryRecord]:
    """Every valid semantic and episodic memory of ``scope`` (and the scopes under it)."""
    records: list[MemoryRecord] = []
    while True:
        page = mem.list(
            org_id=scope.org_id,
            user_id=scope.user_id,
            agent_id=scope.agent_id,
            thread_id=scope.thread_id,
            kinds=[MemoryKind.SEMANTIC, MemoryKind.EPISODIC],
            limit=_PAGE,
            offset=len(records),
        )
        records.extend(page)
        if len(page) < _PAGE:
            return records


def train_scope_recall_adapter(
    mem: Memory,
    scope: Scope,
    base_model: str | Path = SMOLLM2,
    *,
    key: str | None = None,
    config: RecallAdapterConfig | None = None,
    recallset_config: RecallSetConfig | None = None,
    promote: bool = True,
    registry: AdapterRegistry | None = None,
) -> TrainOutcome:
    """Train a recall adapter over the causal LM ``base_model`` (SmolLM2-135M-Instruct by
    default; a .gguf file or a local model directory otherwise) on question-answer
    pairs generated from the facts and turns of ``scope``, register it under ``key`` (default:
    the scope's key) and promote it if its held-out exact match beats the incumbent's (or the
    base model's). A recall adapter answers with the text it learned, so it is never shared:
    ``key`` may not be the shared key."""
    scope = scope_of(scope, {})  # the canonical form recalls use, so they find its key
    if key == SHARED_SCOPE_KEY:
        raise ValidationError(
            f"a recall adapter cannot be registered as {SHARED_SCOPE_KEY!r}: it answers with the "
            f"memories of the scope it was trained on ({scope}), which other scopes must not "
            "read; train it under the scope's own key (leave key out)"
        )
    key = key or scope_key(scope)
    registry = registry or AdapterRegistry.from_settings(mem.settings)
    records = fact_records(mem, scope)
    if len(records) < 2:
        raise ValidationError(
            f"scope {scope} holds {len(records)} semantic or episodic memories; a recall adapter "
            "needs at least 2 (add memories first)"
        )
    recallset_config = recallset_config or RecallSetConfig()
    generator = QuestionGenerator.for_config(mem.settings, recallset_config)
    # Look the data up before generating anything: an unchanged scope asks no LLM.
    name = generator.name if generator is not None else None
    expected = recallset_hash(records, recallset_config, generator=name)
    existing = registry.find(key, expected, RECALL_KIND)
    if existing is not None:
        current = registry.current(key, RECALL_KIND)
        promotion = None
        if promote and (current is None or current.version != existing.version):
            promotion = registry.promote(key, existing.version)
        return TrainOutcome(key, len(records), existing, promotion, reused=True)

    questions = generator.generate(records) if generator is not None else None
    recallset = build_recallset(records, recallset_config, questions)

    from agentmem_gpu.recall_adapter import evaluate_recall_adapter, train_recall_adapter

    previous = registry.current(key, RECALL_KIND)
    with registry.training_dir("train-recall-") as work:
        result = train_recall_adapter(recallset, work / "adapter", base_model, config)
        record_scopes(result.adapter_dir, [scope])
        if previous is not None:
            record_incumbent(
                result.adapter_dir,
                previous,
                partial(evaluate_recall_adapter, previous.path, recallset, config),
                "exact_match",
            )
        version = register_checked(mem, registry, key, result.adapter_dir)
    promotion = registry.promote(key, version.version) if promote else None
    return TrainOutcome(key, len(records), version, promotion, reused=False)


def train_scope_adapters(
    mem: Memory,
    scope: Scope,
    *,
    retriever_config: RetrieverAdapterConfig | None = None,
    recall_config: RecallAdapterConfig | None = None,
) -> dict[str, Any]:
    """Consolidation's adapter training for one scope (the ``gpu`` queue's task, or inline):
    the retriever adapter, then the recall adapter on
    ``settings.consolidation.recall_adapter_base`` (unless it is None), each reused when its
    data did not change and promoted only when it beats the incumbent.

    A recall base model that is not installed (:class:`~agentmem.errors.ModelUnavailable`)
    or a scope too small to train on does not fail the retriever adapter: the summary
    returned says why the recall adapter was skipped, and the warning is logged. The configs
    default to each trainer's own (the recall one with the consolidation's time budget)."""
    from agentmem_gpu.pipeline import train_scope_adapter

    scope = scope_of(scope, {})
    summary: dict[str, Any] = {"key": scope_key(scope)}
    retriever = train_scope_adapter(mem, scope, config=retriever_config)
    summary.update(memories=retriever.memories, reused=retriever.reused)
    base = mem.settings.consolidation.recall_adapter_base
    if base is None:
        summary["recall"] = "off"
        return summary
    config = recall_config or RecallAdapterConfig(
        time_budget_s=mem.settings.consolidation.recall_adapter_budget_s, progress=False
    )
    try:
        recall = train_scope_recall_adapter(mem, scope, base, config=config)
    except (ModelUnavailable, ValidationError) as exc:
        log.warning("recall adapter of %s not trained: %s", scope, exc)
        summary["recall"] = f"skipped: {exc}"
        return summary
    promoted = recall.promotion is not None and recall.promotion.promoted
    summary["recall"] = {
        "version": recall.version.version,
        "reused": recall.reused,
        "promoted": promoted,
    }
    return summary


__all__ = ["fact_records", "train_scope_adapters", "train_scope_recall_adapter"]
