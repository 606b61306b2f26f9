"""The retriever adapter: a query-side LoRA on the embedding model, trained contrastively.

Documents keep the vectors the base model gave them when they were indexed; only queries pass
through the adapter, so adopting, replacing or dropping an adapter never re-indexes anything.
The query tower is the base BERT with LoRA on its attention projections, followed by exactly
the pooling of the base sentence-transformers model (mean over tokens, then L2 norm): with the
LoRA's B matrices at zero (a fresh adapter) it returns the base model's vectors.

Training (:func:`train_retriever_adapter`) minimises InfoNCE between generated queries and
their memories, with the other positives of the batch and the pairs' hard negatives as
negatives. The document side is frozen, so its vectors are computed once.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agentmem.embedders import MINILM_NAME, Embedder, minilm_path
from agentmem.errors import InvalidSettings, ValidationError
from agentmem_gpu.config import (
    RETRIEVER_KIND,
    AdapterMetadata,
    RetrieverAdapterConfig,
)
from agentmem_gpu.training import (
    CHECKPOINT_FILE,
    LoraWeights,
    RunIdentity,
    attach_lora,
    batch_indices,
    device_of,
    get_lr,
    torch_threads,
    train,
)
from agentmem_gpu.trainsets import TrainPair, TrainSet

# --- the model -------------------------------------------------------------------------------


def resolve_base_model(base_model: str | Path) -> tuple[str, Path]:
    """``(recorded name, local directory)`` of a base model: the packaged all-MiniLM-L6-v2
    (``"minilm"`` or its name) or a local sentence-transformers / transformers directory."""
    if str(base_model) in ("minilm", MINILM_NAME, f"sentence-transformers/{MINILM_NAME}"):
        return MINILM_NAME, minilm_path()
    path = Path(base_model).expanduser()
    if not path.is_dir():
        raise InvalidSettings(
            f"base model {base_model!r} is neither 'minilm' nor a local model directory; "
            "models are never downloaded at run time"
        )
    return str(path.resolve()), path


class QueryTower(LoraWeights, nn.Module):
    """The query encoder: BERT with LoRA, pooled like the base sentence-transformers model.

    Only the LoRA weights are trainable. ``pooling`` is ``"mean"`` (masked mean over tokens)
    or ``"cls"``; the output is always L2-normalised.
    """

    def __init__(
        self, model: nn.Module, tokenizer: Any, *, pooling: str = "mean", max_seq_len: int = 256
    ) -> None:
        super().__init__()
        if pooling not in ("mean", "cls"):
            raise InvalidSettings(f"pooling {pooling!r} is not supported; use 'mean' or 'cls'")
        self.model: Any = model  # a peft model over a transformers BERT
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.max_seq_len = max_seq_len

    @classmethod
    def from_base(
        cls,
        base_model: str | Path,
        config: RetrieverAdapterConfig | None = None,
        *,
        adapter_dir: str | Path | None = None,
        device: str | torch.device = "cpu",
    ) -> QueryTower:
        """Load the base model and add a fresh LoRA (``config``) or a saved one
        (``adapter_dir``); the base weights are frozen."""
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        _, path = resolve_base_model(base_model)
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        bert = AutoModel.from_pretrained(str(path))
        config = config or RetrieverAdapterConfig()
        model = attach_lora(
            bert, config, target_modules=list(config.target_modules), adapter_dir=adapter_dir
        )
        pooling, max_len = _pooling_of(path, tokenizer)
        max_len = min(max_len, int(getattr(bert.config, "max_position_embeddings", max_len)))
        return cls(model, tokenizer, pooling=pooling, max_seq_len=max_len).to(device)

    @property
    def device(self) -> torch.device:
        """Where the weights live."""
        return next(self.model.parameters()).device

    def forward(self, input_ids: Tensor, attention_mask: Tensor, **extra: Tensor) -> Tensor:
        """Unit-length sentence vectors of a tokenised batch, shape (batch, dim)."""
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, **extra)
        tokens = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        if self.pooling == "cls":
            pooled = tokens[:, 0]
        else:
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, p=2, dim=-1)

    def tokenize(self, texts: Sequence[str], max_len: int | None = None) -> dict[str, Tensor]:
        """Tokenise ``texts`` (padded to the longest, truncated) onto the tower's device."""
        batch = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=min(max_len or self.max_seq_len, self.max_seq_len),
            return_tensors="pt",
        )
        return {k: v.to(self.device) for k, v in batch.items()}

    @torch.no_grad()
    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, adapter: bool = True
    ) -> np.ndarray:
        """Vectors of ``texts`` as float32 numpy, in eval mode; ``adapter=False`` gives the
        base model's vectors (the document side)."""
        was_training = self.training
        self.eval()
        rows = []
        try:
            with self._adapter(adapter):
                for start in range(0, len(texts), batch_size):
                    batch = self.tokenize(texts[start : start + batch_size])
                    rows.append(self(**batch).float().cpu().numpy())
        finally:
            self.train(was_training)
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(rows).astype(np.float32)

    @property
    def dim(self) -> int:
        """Vector size."""
        return int(self.model.config.hidden_size)

    def _adapter(self, enabled: bool) -> contextlib.AbstractContextManager[Any]:
        if enabled or not hasattr(self.model, "disable_adapter"):
            return contextlib.nullcontext()
        context: contextlib.AbstractContextManager[Any] = self.model.disable_adapter()
        return context


def _pooling_of(path: Path, tokenizer: Any) -> tuple[str, int]:
    """Pooling mode and max sequence length, as the sentence-transformers config says."""
    pooling = "mean"
    pooling_file = path / "1_Pooling" / "config.json"
    if pooling_file.is_file():
        data = json.loads(pooling_file.read_text())
        if data.get("pooling_mode_cls_token"):
            pooling = "cls"
        elif not data.get("pooling_mode_mean_tokens", True):
            raise InvalidSettings(
                f"{pooling_file}: only mean or CLS pooling is supported for retriever adapters"
            )
    max_len = min(int(getattr(tokenizer, "model_max_length", 512) or 512), 512)
    st_file = path / "sentence_bert_config.json"
    if st_file.is_file():
        max_len = int(json.loads(st_file.read_text()).get("max_seq_length", max_len))
    return pooling, max_len


# --- objective, schedule, evaluation ---------------------------------------------------------


def info_nce_loss(
    queries: Tensor,
    doc_vectors: Tensor,
    positives: Tensor,
    negatives: Tensor,
    temperature: float,
) -> Tensor:
    """InfoNCE of unit ``queries`` (B, d) against frozen ``doc_vectors`` (N, d).

    Each query's candidates are every positive of the batch (in-batch negatives) and every
    hard negative (``negatives``: (B, h) document indices, -1 for none), each document once:
    a memory that answers two queries of a batch is never a negative for either.
    """
    flat = negatives.reshape(-1)
    candidates = torch.unique(torch.cat([positives, flat[flat >= 0]]))  # sorted
    logits = queries.float() @ doc_vectors[candidates].T / temperature
    target = torch.searchsorted(candidates, positives)
    return F.cross_entropy(logits, target)


def recall_at_k(
    query_vectors: np.ndarray, doc_vectors: np.ndarray, positives: Sequence[int], k: int
) -> float:
    """Share of queries whose positive is among the ``k`` documents nearest to them."""
    if len(positives) == 0:
        return 0.0
    scores = query_vectors @ doc_vectors.T
    k = min(k, doc_vectors.shape[0])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    hits = (top == np.asarray(positives)[:, None]).any(axis=1)
    return float(hits.mean())


@torch.no_grad()
def estimate_metrics(
    tower: QueryTower,
    pairs: Sequence[TrainPair],
    doc_vectors: Tensor,
    config: RetrieverAdapterConfig,
) -> dict[str, float]:
    """Held-out recall@k over every memory of the scope, and the InfoNCE loss of ``pairs``."""
    queries = tower.encode([p.query for p in pairs], batch_size=max(64, config.batch_size))
    docs = doc_vectors.float().cpu().numpy()
    recall = recall_at_k(queries, docs, [p.positive for p in pairs], config.eval_k)
    q = torch.from_numpy(queries).to(doc_vectors.device)
    pos, neg = _indices(pairs, config.hard_negatives, doc_vectors.device)
    loss = info_nce_loss(q, doc_vectors, pos, neg, config.temperature)
    return {f"recall@{config.eval_k}": recall, "loss": float(loss)}


def _indices(
    pairs: Sequence[TrainPair], hard_negatives: int, device: torch.device
) -> tuple[Tensor, Tensor]:
    pos = torch.tensor([p.positive for p in pairs], dtype=torch.long, device=device)
    neg = torch.full((len(pairs), max(hard_negatives, 1)), -1, dtype=torch.long, device=device)
    for i, p in enumerate(pairs):
        chosen = p.hard_negatives[:hard_negatives]
        if chosen:
            neg[i, : len(chosen)] = torch.tensor(chosen, dtype=torch.long)
    return pos, neg


# --- training --------------------------------------------------------------------------------


@dataclass
class TrainResult:
    """What a training run produced: the adapter directory, its metadata and its eval log."""

    adapter_dir: Path
    metadata: AdapterMetadata
    stopped: str
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def metrics(self) -> dict[str, Any]:
        """The metrics saved in the adapter's metadata."""
        return self.metadata.metrics


def trained_for(recorded: str, name: str) -> bool:
    """Whether an adapter whose metadata records the document embedder ``recorded`` fits the
    embedder named ``name``. Models kept in a folder were named after the folder alone before
    their names carried a digest of their files (``e5`` -> ``e5#1f0c3a9b2d4e``); an adapter
    recorded under the folder's name still fits, so upgrading a home does not turn its
    adapters away."""
    return recorded == name or recorded == re.sub(r"#[0-9a-f]{12}(?=@|$)", "", name)


def train_retriever_adapter(
    trainset: TrainSet,
    out_dir: str | Path,
    config: RetrieverAdapterConfig | None = None,
    *,
    base_model: str | Path = MINILM_NAME,
    base_name: str | None = None,
    doc_vectors: np.ndarray | None = None,
    resume: bool = False,
) -> TrainResult:
    """Train a retriever adapter on ``trainset`` and save it (with its metadata) in ``out_dir``.

    ``base_model`` is ``"minilm"`` (the packaged all-MiniLM-L6-v2) or a local model directory;
    ``base_name`` is the name of the document embedder whose index the adapter will query
    (default: the model's name, as :class:`~agentmem.embedders.SentenceTransformerEmbedder`
    names it). ``doc_vectors`` are the memories' indexed vectors, if at hand; otherwise the
    base model computes them. With ``resume``, a checkpoint left in ``out_dir`` by an
    interrupted run of the same train set and config is continued.

    The adapter saved is the best one seen by the periodic evaluation on held-out generated
    questions (recall@k against all the scope's memories).
    """
    config = config or RetrieverAdapterConfig()
    if not trainset.train:
        raise ValidationError(
            "the train set has no training pairs; the scope needs episodic memories with some "
            "content words (see agentmem_gpu.trainsets.build_trainset)"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    recorded, _ = resolve_base_model(base_model)
    base_name = base_name or (recorded if recorded == MINILM_NAME else Path(recorded).name)
    device = device_of(config.device)
    with torch_threads(config.threads):
        tower = QueryTower.from_base(base_model, config, device=device)
        task = _RetrieverTask(tower, trainset, config, doc_vectors)
        identity = RunIdentity(trainset.data_hash, config.to_dict(), recorded)
        state = train(task, config, out_dir, identity, device=device, resume=resume)
    tower.save_adapter(out_dir)
    k = config.eval_k
    metadata = AdapterMetadata(
        kind=RETRIEVER_KIND,
        base_model=recorded,
        base_name=base_name,
        dim=tower.dim,
        data_hash=trainset.data_hash,
        hyperparameters=config.to_dict(),
        metrics={
            f"eval_recall@{k}": state.best.get(f"recall@{k}", 0.0),
            f"base_recall@{k}": (state.base or {}).get(f"recall@{k}"),
            "eval_on": "held_out" if trainset.eval else "train",
            "eval_pairs": len(task.eval_pairs),
            "best_step": state.best_step,
            "steps": state.step,
            "train_loss": state.train_loss,
            "train_seconds": round(state.elapsed_s, 2),
            "stopped": state.stopped,
            "device": str(device),
        },
        trainset=trainset.summary(),
        source_ids=list(trainset.memory_ids),
    )
    metadata.save(out_dir)
    return TrainResult(out_dir, metadata, state.stopped, state.history)


def evaluate_adapter(
    adapter_dir: str | Path,
    trainset: TrainSet,
    config: RetrieverAdapterConfig | None = None,
    *,
    doc_vectors: np.ndarray | None = None,
) -> dict[str, float]:
    """Recall@k (and loss) of the saved retriever adapter in ``adapter_dir`` on the questions
    that training on ``trainset`` with ``config`` evaluates on: how a new adapter is compared
    with the one it would replace, on the same questions. ``doc_vectors`` as in training."""
    config = config or RetrieverAdapterConfig()
    metadata = AdapterMetadata.load(Path(adapter_dir))
    device = device_of(config.device)
    with torch_threads(config.threads):
        tower = QueryTower.from_base(metadata.base_model, adapter_dir=adapter_dir, device=device)
        tower.eval()
        if doc_vectors is None:
            doc_vectors = tower.encode(list(trainset.texts), adapter=False)
        docs = torch.from_numpy(np.ascontiguousarray(doc_vectors, dtype=np.float32)).to(device)
        return estimate_metrics(tower, _eval_pairs(trainset), docs, config)


def _eval_pairs(trainset: TrainSet) -> list[TrainPair]:
    # Without held-out turns (a tiny scope), evaluate on training questions: still a sanity
    # check, and the metadata says so.
    return list(trainset.eval) or list(trainset.train[:200])


class _RetrieverTask:
    """The retriever adapter as the loop's :class:`~agentmem_gpu.training.Task`: InfoNCE of
    generated queries against the memories' frozen vectors, scored by held-out recall@k."""

    name = "retriever adapter"

    def __init__(
        self,
        tower: QueryTower,
        trainset: TrainSet,
        config: RetrieverAdapterConfig,
        doc_vectors: np.ndarray | None,
    ) -> None:
        if doc_vectors is None:
            doc_vectors = tower.encode(list(trainset.texts), adapter=False)
        if doc_vectors.shape != (len(trainset.memory_ids), tower.dim):
            raise ValidationError(
                f"doc_vectors has shape {doc_vectors.shape}; expected "
                f"({len(trainset.memory_ids)}, {tower.dim}), one row per memory of the train set"
            )
        self.tower, self.config = tower, config
        self.docs = torch.from_numpy(np.ascontiguousarray(doc_vectors, dtype=np.float32)).to(
            tower.device
        )
        self.eval_pairs = _eval_pairs(trainset)
        self.train_pairs = list(trainset.train)
        self._trainable = tower.trainable()

    def parameters(self) -> list[Tensor]:
        return self._trainable

    def loss(self, step: int, autocast: contextlib.AbstractContextManager[Any]) -> Tensor:
        config = self.config
        self.tower.train()
        order = batch_indices(len(self.train_pairs), config.batch_size, config.seed, step)
        batch = [self.train_pairs[i] for i in order]
        tokens = self.tower.tokenize([p.query for p in batch], max_len=config.max_seq_len)
        pos, neg = _indices(batch, config.hard_negatives, self.docs.device)
        with autocast:
            queries = self.tower(**tokens)
        return info_nce_loss(queries, self.docs, pos, neg, config.temperature)

    def evaluate(self) -> dict[str, float]:
        return estimate_metrics(self.tower, self.eval_pairs, self.docs, self.config)

    def score(self, metrics: dict[str, float]) -> tuple[float, ...]:
        return (metrics[f"recall@{self.config.eval_k}"],)

    def lora_state(self) -> dict[str, Tensor]:
        return self.tower.lora_state()

    def load_lora_state(self, state: dict[str, Tensor]) -> None:
        self.tower.load_lora_state(state)


# --- using an adapter ------------------------------------------------------------------------


class AdaptedQueryEmbedder(Embedder):
    """An embedder whose queries go through a retriever adapter and documents do not.

    ``embed_documents`` is the base embedder's, and ``name`` is the base's name, so stored
    vectors and the embedding cache are exactly those of the base model: switching an adapter
    on or off needs no re-indexing. ``embed_query`` runs the LoRA-adapted query tower.

    >>> mem = Memory(embedder=AdaptedQueryEmbedder(base, adapter_dir))  # doctest: +SKIP
    """

    def __init__(
        self,
        base: Embedder,
        adapter_path: str | Path,
        *,
        device: str = "auto",
        batch_size: int = 64,
    ) -> None:
        self.base = base
        self.adapter_path = Path(adapter_path)
        self.metadata = AdapterMetadata.load(self.adapter_path)
        if self.metadata.kind != RETRIEVER_KIND:
            raise InvalidSettings(
                f"{self.adapter_path} is a {self.metadata.kind!r} adapter; a query embedder needs "
                f"a {RETRIEVER_KIND!r} adapter"
            )
        if not trained_for(self.metadata.base_name, base.name):
            raise InvalidSettings(
                f"adapter {self.adapter_path} was trained for embedder {self.metadata.base_name!r} "
                f"but the base embedder is {base.name!r}; use the matching embedder or retrain"
            )
        self.name = base.name
        self.query_name = f"{base.name}+lora:{self.metadata.data_hash[:12]}"
        self.batch_size = batch_size
        self._device_name = device
        self._tower: QueryTower | None = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return self.base.dim

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """The base embedder's vectors (documents never pass through the adapter)."""
        return self.base.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        """The adapted vector of a search query, shape (dim,)."""
        return self.embed_queries([text])[0]

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Adapted vectors of many queries, shape (len(texts), dim)."""
        return self._load().encode(list(texts), batch_size=self.batch_size)

    def close(self) -> None:
        """Release the query tower and close the base embedder."""
        self._tower = None
        self.base.close()

    def _load(self) -> QueryTower:
        if self._tower is None:
            with self._lock:
                if self._tower is None:
                    tower = QueryTower.from_base(
                        self.metadata.base_model,
                        adapter_dir=self.adapter_path,
                        device=device_of(self._device_name),
                    )
                    if tower.dim != self.base.dim:
                        raise InvalidSettings(
                            f"adapter {self.adapter_path} gives {tower.dim}-d vectors but the "
                            f"base embedder {self.base.name!r} gives {self.base.dim}-d"
                        )
                    tower.eval()
                    self._tower = tower
        return self._tower


__all__ = [
    "CHECKPOINT_FILE",
    "AdaptedQueryEmbedder",
    "QueryTower",
    "TrainResult",
    "batch_indices",
    "estimate_metrics",
    "evaluate_adapter",
    "get_lr",
    "info_nce_loss",
    "recall_at_k",
    "resolve_base_model",
    "train_retriever_adapter",
]
