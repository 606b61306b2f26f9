"""Parametric memory: LoRA adapters trained from a scope's memories, and their registry.

The retriever adapter is a query-side LoRA on the embedding model, trained on LLM-free
(question -> memory) pairs generated from a scope's own episodic memories; memory vectors stay
as indexed, only queries pass through the adapter::

    from agentmem_gpu import AdapterRegistry, AdaptedQueryEmbedder
    from agentmem_gpu import build_trainset, train_retriever_adapter

    trainset = build_trainset(mem.list(user_id="alice", kinds="episodic", limit=100_000))
    result = train_retriever_adapter(trainset, "work/alice")
    registry = AdapterRegistry(mem.settings.home / "adapters")
    version = registry.register("user-alice", result.adapter_dir)
    registry.promote("user-alice", version.version)   # only if it beats the current one
    adapted = AdaptedQueryEmbedder(mem.backends.embedder, registry.current("user-alice").path)

The recall adapter is a LoRA on a local causal LM that answers a scope's questions closed-book;
``mem.recall(question, user_id=...)`` uses the promoted one when its confidence passes the gate::

    from agentmem_gpu.recall_adapter_pipeline import train_scope_recall_adapter
    train_scope_recall_adapter(mem, Scope(user_id="alice"))   # on SmolLM2-135M-Instruct

``agentmem_gpu.trainsets``, ``agentmem_gpu.recall_adapter_data``, ``agentmem_gpu.registry`` and
``agentmem_gpu.config`` need no torch; the names of ``agentmem_gpu.retriever`` and
``agentmem_gpu.recall_adapter`` load torch and peft (the ``gpu`` extra) on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentmem_gpu.config import (
    ADAPTER_KINDS,
    METADATA_FILE,
    RECALL_KIND,
    RETRIEVER_KIND,
    AdapterMetadata,
    RecallAdapterConfig,
    RetrieverAdapterConfig,
)
from agentmem_gpu.questions import LLMQuestions, QuestionGenerator
from agentmem_gpu.recall_adapter_data import QAPair, RecallSet, RecallSetConfig, build_recallset
from agentmem_gpu.registry import AdapterRegistry, AdapterVersion, Promotion
from agentmem_gpu.trainsets import (
    TrainPair,
    TrainSet,
    TrainSetConfig,
    build_trainset,
    trainset_hash,
)

if TYPE_CHECKING:
    from agentmem_gpu.recall_adapter import (
        RecallAdapter,
        RecallLM,
        RecallTrainResult,
        train_recall_adapter,
    )
    from agentmem_gpu.retriever import (
        AdaptedQueryEmbedder,
        QueryTower,
        TrainResult,
        get_lr,
        info_nce_loss,
        recall_at_k,
        train_retriever_adapter,
    )

_LAZY_RECALL = frozenset({"RecallAdapter", "RecallLM", "RecallTrainResult", "train_recall_adapter"})
_LAZY = frozenset(
    {
        "AdaptedQueryEmbedder",
        "QueryTower",
        "TrainResult",
        "get_lr",
        "info_nce_loss",
        "recall_at_k",
        "train_retriever_adapter",
    }
)


def __getattr__(name: str) -> Any:
    # torch and peft load only when a training or inference name is first used.
    if name in _LAZY:
        from agentmem_gpu import retriever

        return getattr(retriever, name)
    if name in _LAZY_RECALL:
        from agentmem_gpu import recall_adapter

        return getattr(recall_adapter, name)
    raise AttributeError(f"module 'agentmem_gpu' has no attribute {name!r}")


__all__ = [
    "ADAPTER_KINDS",
    "METADATA_FILE",
    "RECALL_KIND",
    "RETRIEVER_KIND",
    "AdaptedQueryEmbedder",
    "AdapterMetadata",
    "AdapterRegistry",
    "AdapterVersion",
    "LLMQuestions",
    "Promotion",
    "QAPair",
    "QueryTower",
    "QuestionGenerator",
    "RecallAdapter",
    "RecallAdapterConfig",
    "RecallLM",
    "RecallSet",
    "RecallSetConfig",
    "RecallTrainResult",
    "RetrieverAdapterConfig",
    "TrainPair",
    "TrainResult",
    "TrainSet",
    "TrainSetConfig",
    "build_recallset",
    "build_trainset",
    "get_lr",
    "info_nce_loss",
    "recall_at_k",
    "train_recall_adapter",
    "train_retriever_adapter",
    "trainset_hash",
]
