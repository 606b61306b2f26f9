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

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from agentmem.errors import ValidationError
from agentmem.models import MemoryKind, MemoryRecord, Scope
from agentmem.parametric import scope_key
from gpu.config import RECALL_KIND, RecallAdapterConfig
from gpu.pipeline import TrainOutcome, _work_dir
from gpu.questions import QuestionGenerator
from gpu.recall_data import RecallSetConfig, build_recallset, recallset_hash
from gpu.registry import AdapterRegistry

if TYPE_CHECKING:
    from agentmem import Memory

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
    base_model: str | Path,
    *,
    key: str | None = None,
    config: RecallAdapterConfig | None = None,
    recallset_config: RecallSetConfig | None = None,
    promote: bool = True,
    registry: AdapterRegistry | None = None,
) -> TrainOutcome:
    """Train a recall adapter over the local causal LM ``base_model`` on question-answer
    pairs generated from the facts and turns of ``scope``, register it under ``key`` (default:
    the scope's key) and promote it if its held-out exact match beats the incumbent's (or the
    base model's)."""
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

    from gpu.recall import train_recall_adapter

    work = Path(tempfile.mkdtemp(prefix="train-recall-", dir=_work_dir(registry)))
    try:
        result = train_recall_adapter(recallset, work / "adapter", base_model, config)
        version = registry.register(key, result.adapter_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    promotion = registry.promote(key, version.version) if promote else None
    return TrainOutcome(key, len(records), version, promotion, reused=False)


__all__ = ["fact_records", "train_scope_recall_adapter"]
