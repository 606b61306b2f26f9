"""Train, register and (when it earns it) promote a retriever adapter for a scope of a Memory.

The one function that ties the pieces together, used by ``agentmem adapters train`` and by
consolidation's adapter stage::

    outcome = train_scope_adapter(mem, Scope.of(user_id="alice"))
    outcome.promotion.promoted   # True when it beat the base model (or the current adapter)

An unchanged scope is not retrained: the train set's data hash is looked up in the registry
first. Only torch-free modules are imported here; training loads torch and peft on first use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from agentmem.errors import AgentMemError, ValidationError
from agentmem.indexing import vectors_for_texts
from agentmem.models import MemoryKind, MemoryRecord, Scope, content_hash
from agentmem.parametric import SHARED_SCOPE_KEY, scope_key
from agentmem.scoping import scope_of
from agentmem.stores import ForgetJournal
from agentmem_gpu.config import AdapterMetadata, RetrieverAdapterConfig
from agentmem_gpu.questions import QuestionGenerator
from agentmem_gpu.registry import INCUMBENT_METRIC, AdapterRegistry, AdapterVersion, Promotion
from agentmem_gpu.trainsets import (
    TrainSet,
    TrainSetConfig,
    build_trainset,
    merged_hash,
    trainset_hash,
)

if TYPE_CHECKING:
    from agentmem import Memory

log = logging.getLogger(__name__)
_PAGE = 1000
TRAINED_SCOPES = "scopes"
"""Key of the training-set summary (``AdapterMetadata.trainset``) listing the scopes trained on."""


@dataclass(frozen=True)
class TrainOutcome:
    """What :func:`train_scope_adapter` did for one registry key."""

    key: str
    memories: int
    version: AdapterVersion
    promotion: Promotion | None
    reused: bool
    """True when an adapter trained on exactly this data already existed (nothing trained)."""


def episodic_records(mem: Memory, scope: Scope) -> list[MemoryRecord]:
    """Every valid episodic memory of ``scope`` (and the scopes under it), oldest first."""
    records: list[MemoryRecord] = []
    while True:
        page = mem.list(
            org_id=scope.org_id,
            user_id=scope.user_id,
            agent_id=scope.agent_id,
            thread_id=scope.thread_id,
            kinds=[MemoryKind.EPISODIC],
            limit=_PAGE,
            offset=len(records),
        )
        records.extend(page)
        if len(page) < _PAGE:
            return records


def train_scope_adapter(
    mem: Memory,
    scopes: Scope | Sequence[Scope],
    *,
    key: str | None = None,
    config: RetrieverAdapterConfig | None = None,
    trainset_config: TrainSetConfig | None = None,
    promote: bool = True,
    registry: AdapterRegistry | None = None,
) -> TrainOutcome:
    """Train a retriever adapter on generated questions about the episodic memories of
    ``scopes``, register it under ``key`` and promote it if its held-out score beats the
    incumbent's.

    One scope trains that scope's adapter (key: :func:`agentmem.parametric.scope_key`); several
    train one adapter over all of them, registered as the shared adapter by default (the one
    every scope without its own uses). Training data never leaves the given scopes.
    """
    given = list(scopes) if isinstance(scopes, Sequence) else [scopes]
    if not given:
        raise ValidationError("train_scope_adapter needs at least one scope")
    # The canonical form searches use (NFC, stripped ids), so the key is the one they ask for.
    many = list(dict.fromkeys(scope_of(scope, {}) for scope in given))
    key = key or (scope_key(many[0]) if len(many) == 1 else SHARED_SCOPE_KEY)
    registry = registry or AdapterRegistry.from_settings(mem.settings)
    trainset_config = trainset_config or TrainSetConfig()

    generator = QuestionGenerator.for_config(mem.settings, trainset_config)
    scoped = [_trainable_records(mem, scope) for scope in many]
    memories = sum(len(records) for records in scoped)

    # Look the data up before generating anything: an unchanged scope asks no LLM.
    name = generator.name if generator is not None else None
    hashes = [trainset_hash(records, trainset_config, generator=name) for records in scoped]
    expected = hashes[0] if len(hashes) == 1 else merged_hash(hashes)
    existing = registry.find(key, expected)
    if existing is not None:
        current = registry.current(key, existing.kind)
        promotion = None
        if promote and (current is None or current.version != existing.version):
            promotion = registry.promote(key, existing.version)
        return TrainOutcome(key, memories, existing, promotion, reused=True)

    parts: list[TrainSet] = []
    for records in scoped:
        questions = generator.generate(records) if generator is not None else None
        parts.append(build_trainset(records, trainset_config, questions))
    trainset = parts[0] if len(parts) == 1 else TrainSet.merge(parts)
    by_id = {r.id: r for records in scoped for r in records}
    texts = [by_id[i].text for i in trainset.memory_ids]
    vectors, _ = vectors_for_texts(mem.backends, texts)
    doc_vectors = np.stack([vectors[content_hash(t)] for t in texts])

    from agentmem_gpu.retriever import evaluate_adapter, train_retriever_adapter, trained_for

    previous = registry.current(key)
    with registry.training_dir("train-") as work:
        result = train_retriever_adapter(
            trainset,
            work / "adapter",
            config,
            # The embedder's own weights (a local sentence-transformers model), else MiniLM.
            base_model=getattr(mem.backends.embedder, "model_path", "minilm"),
            base_name=mem.backends.embedder.name,
            doc_vectors=doc_vectors,
        )
        record_scopes(result.adapter_dir, many)
        if previous is not None and trained_for(
            previous.metadata.base_name, mem.backends.embedder.name
        ):
            record_incumbent(
                result.adapter_dir,
                previous,
                partial(evaluate_adapter, previous.path, trainset, config, doc_vectors=doc_vectors),
                f"recall@{result.metadata.hyperparameters['eval_k']}",
            )
        version = register_checked(mem, registry, key, result.adapter_dir)
    promotion = registry.promote(key, version.version) if promote else None
    return TrainOutcome(key, memories, version, promotion, reused=False)


def _trainable_records(mem: Memory, scope: Scope) -> list[MemoryRecord]:
    """The episodic memories of ``scope`` a retriever adapter trains on (at least 2)."""
    records = episodic_records(mem, scope)
    if len(records) < 2:
        raise ValidationError(
            f"scope {scope} holds {len(records)} episodic memories; a retriever adapter "
            "needs at least 2 (add memories first)"
        )
    return records


def register_checked(
    mem: Memory, registry: AdapterRegistry, key: str, adapter_dir: Path
) -> AdapterVersion:
    """Register a trained adapter, tainted at once when a memory of its training data was
    forgotten while it trained: that forget tainted the versions registered then, not this
    one. Checked after registering, so a forget from now on finds this version itself."""
    version = registry.register(key, adapter_dir)
    store = mem.backends.store
    sources = list(version.metadata.source_ids)
    if sources and isinstance(store, ForgetJournal) and store.tombstoned(sources):
        version = registry.taint(key, version.version, "trained on a memory forgotten meanwhile")
    return version


def record_incumbent(
    adapter_dir: Path,
    incumbent: AdapterVersion,
    evaluate: Callable[[], dict[str, float]],
    metric: str,
) -> None:
    """Write into a new adapter's metrics the score (``metric`` of what ``evaluate`` returns)
    of the version it would replace on the new adapter's own evaluation questions, so that
    promotion compares the two on the same questions. An incumbent that cannot be evaluated
    is logged and left out (promotion then compares with the score it recorded itself)."""
    try:
        score = float(evaluate()[metric])
    except AgentMemError as exc:
        log.warning("could not evaluate the current adapter v%d: %s", incumbent.version, exc)
        return
    metadata = AdapterMetadata.load(adapter_dir)
    metadata.metrics[INCUMBENT_METRIC] = {"version": incumbent.version, "score": score}
    metadata.save(adapter_dir)


def record_scopes(adapter_dir: Path, scopes: Sequence[Scope]) -> None:
    """Write the scopes the data came from into the adapter's training-set summary, so that an
    adapter tainted by a forget can be retrained over the same scopes (its key need not be a
    scope's that consolidation runs: the shared one, a user's or org's, a thread's)."""
    metadata = AdapterMetadata.load(adapter_dir)
    metadata.trainset[TRAINED_SCOPES] = [s.model_dump(exclude_none=True) for s in scopes]
    metadata.save(adapter_dir)


def trained_scopes(metadata: AdapterMetadata) -> list[Scope]:
    """The scopes an adapter was trained on, as recorded at training time (empty for an
    adapter saved before they were recorded)."""
    return [Scope(**s) for s in metadata.trainset.get(TRAINED_SCOPES, [])]


__all__ = [
    "TrainOutcome",
    "episodic_records",
    "record_incumbent",
    "record_scopes",
    "train_scope_adapter",
    "trained_scopes",
]
