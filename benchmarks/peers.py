"""Peer systems measured in the same run as agentmem, on the same texts and the same vectors.

Each peer stores documents per scope (one LoCoMo conversation = one scope) and returns the keys
of the documents it ranks best for a query. All of them get their vectors from the run's
:class:`~benchmarks._common.CachingEmbedder` (all-MiniLM-L6-v2), so every text is embedded
once per run and the comparison is about retrieval, not about the embedding model.

- ``bm25``: `bm25s` with PyStemmer's English stemmer and bm25s's English stopword list.
- ``dense``: exact cosine similarity with numpy (the vectors are unit length: a dot product).
- ``langgraph``: LangGraph's ``InMemoryStore`` with a semantic index over the text.
- ``mem0``: Mem0 open source, ``Memory.from_config`` with an embedded Qdrant (local path), its
  Hugging Face embedder pointed at the packaged MiniLM, and ``add(..., infer=False)``.

A peer that cannot be built or run offline is reported with its error, never replaced.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import CachingEmbedder, package_versions

PEER_NAMES: tuple[str, ...] = ("bm25", "dense", "langgraph", "mem0")


@dataclass(frozen=True)
class Doc:
    """One document to store: ``key`` is what results are scored by (a LoCoMo ``dia_id``)."""

    key: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


class Peer(ABC):
    """A retrieval system under test: documents in per scope, ranked keys out."""

    name: str = ""
    #: Distributions whose versions are reported with the results.
    packages: tuple[str, ...] = ()

    def __init__(self) -> None:
        #: How this peer was configured, and anything that differs from its defaults.
        self.notes: list[str] = []

    @abstractmethod
    def add(self, scope: str, docs: Sequence[Doc]) -> None:
        """Store ``docs`` in ``scope`` (called once per scope)."""

    @abstractmethod
    def search(self, scope: str, query: str, k: int) -> list[str]:
        """Keys of the ``k`` best documents of ``scope`` for ``query``, best first."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""

    def versions(self) -> dict[str, str | None]:
        """Versions of the packages this peer runs on."""
        return package_versions(self.packages)


@dataclass
class PeerFailure:
    """A peer that could not run: where it failed, the error, and why (what it needs)."""

    name: str
    stage: str
    error: str
    why: str


def explain_failure(exc: BaseException) -> str:
    """A short reason for a peer's failure, for the results table."""
    text = f"{type(exc).__name__}: {exc}".lower()
    if isinstance(exc, ImportError):
        return "a package it needs is not installed (install the bench extra)"
    offline_markers = ("connect", "resolve", "network", "offline", "hub", "download", "timed out")
    if any(marker in text for marker in offline_markers):
        return "it needs the network (a download or a hosted service), and this run is offline"
    return "it raised an error while running offline with the configuration described"


# lexical -----------------------------------------------------------------------------------


class BM25Peer(Peer):
    """BM25 (bm25s, Lucene variant) over stemmed tokens, English stopwords removed."""

    name = "bm25"
    packages = ("bm25s", "PyStemmer")

    def __init__(self) -> None:
        super().__init__()
        import bm25s
        import Stemmer

        self._bm25s = bm25s
        self._stemmer = Stemmer.Stemmer("english")
        self._indexes: dict[str, tuple[Any, list[str]]] = {}
        self.notes.append(
            "bm25s defaults (Lucene BM25, k1=1.5, b=0.75), PyStemmer English stemmer, "
            "bm25s English stopwords; documents with score 0 are not returned"
        )

    def _tokens(self, texts: Sequence[str], *, ids: bool) -> Any:
        return self._bm25s.tokenize(
            list(texts),
            stopwords="en",
            stemmer=self._stemmer,
            return_ids=ids,
            show_progress=False,
        )

    def add(self, scope: str, docs: Sequence[Doc]) -> None:
        retriever = self._bm25s.BM25()
        retriever.index(self._tokens([d.text for d in docs], ids=True), show_progress=False)
        self._indexes[scope] = (retriever, [d.key for d in docs])

    def search(self, scope: str, query: str, k: int) -> list[str]:
        retriever, keys = self._indexes[scope]
        tokens = self._tokens([query], ids=False)
        if not tokens[0]:
            return []
        ids, scores = retriever.retrieve(tokens, k=min(k, len(keys)), show_progress=False)
        return [keys[i] for i, s in zip(ids[0], scores[0], strict=True) if s > 0]


# dense -------------------------------------------------------------------------------------


class DensePeer(Peer):
    """Exact cosine similarity over every document of the scope (numpy)."""

    name = "dense"
    packages = ("numpy",)

    def __init__(self, embedder: CachingEmbedder) -> None:
        super().__init__()
        self._embedder = embedder
        self._matrices: dict[str, tuple[np.ndarray, list[str]]] = {}
        self.notes.append("exact search: dot product of unit vectors, full sort")

    def add(self, scope: str, docs: Sequence[Doc]) -> None:
        matrix = self._embedder.embed_documents([d.text for d in docs])
        self._matrices[scope] = (np.ascontiguousarray(matrix), [d.key for d in docs])

    def search(self, scope: str, query: str, k: int) -> list[str]:
        matrix, keys = self._matrices[scope]
        scores = matrix @ self._embedder.embed_query(query)
        top = np.argsort(-scores, kind="stable")[:k]
        return [keys[i] for i in top]


# LangGraph ---------------------------------------------------------------------------------


def shared_vectors(embedder: CachingEmbedder) -> Callable[[Sequence[str]], list[list[float]]]:
    """An ``embed(texts) -> vectors`` function over the run's cache.

    Peers that embed queries and documents through one function (LangGraph, Mem0) get the
    query's cached vector when the text was searched before, else the document vector.
    """

    def embed(texts: Sequence[str]) -> list[list[float]]:
        vectors = [embedder.cached_query(t) for t in texts]
        missing = [t for t, v in zip(texts, vectors, strict=True) if v is None]
        found = dict(zip(missing, embedder.embed_documents(missing), strict=True))
        return [
            (v if v is not None else found[t]).tolist() for t, v in zip(texts, vectors, strict=True)
        ]

    return embed


class LangGraphPeer(Peer):
    """LangGraph's ``InMemoryStore`` with a semantic index on the ``text`` field."""

    name = "langgraph"
    packages = ("langgraph", "langgraph-checkpoint")

    def __init__(self, embedder: CachingEmbedder) -> None:
        super().__init__()
        from langgraph.store.memory import InMemoryStore

        self._store = InMemoryStore(
            index={"embed": shared_vectors(embedder), "dims": embedder.dim, "fields": ["text"]}
        )
        self.notes.append(
            "InMemoryStore(index={'embed': MiniLM, 'dims': 384, 'fields': ['text']}); one "
            "namespace per conversation; store.put per turn, store.search(namespace, query=...)"
        )

    def add(self, scope: str, docs: Sequence[Doc]) -> None:
        for doc in docs:
            self._store.put(("locomo", scope), doc.key, {"text": doc.text, **doc.metadata})

    def search(self, scope: str, query: str, k: int) -> list[str]:
        return [item.key for item in self._store.search(("locomo", scope), query=query, limit=k)]


# Mem0 --------------------------------------------------------------------------------------


class _NoLLM:
    """Stands in for Mem0's LLM: with ``infer=False`` nothing may call it."""

    calls = 0

    def generate_response(self, *args: Any, **kwargs: Any) -> str:
        type(self).calls += 1
        raise RuntimeError("the benchmark runs Mem0 with infer=False; its LLM must not be called")


class Mem0Peer(Peer):
    """Mem0 open source on an embedded Qdrant, raw messages stored with ``infer=False``."""

    name = "mem0"
    packages = ("mem0ai", "qdrant-client")

    def __init__(self, embedder: CachingEmbedder, workdir: Path) -> None:
        super().__init__()
        workdir.mkdir(parents=True, exist_ok=True)
        # Mem0 reads these when imported: no telemetry, and its files in the run's directory.
        os.environ.setdefault("MEM0_TELEMETRY", "False")
        os.environ.setdefault("MEM0_DIR", str(workdir / "mem0-dir"))
        from mem0 import Memory as Mem0Memory
        from mem0.embeddings.base import EmbeddingBase

        from agentmem.embedders import minilm_path

        config = {
            "vector_store": {
                "provider": "qdrant",
                "config": {
                    "collection_name": "locomo",
                    "path": str(workdir / "qdrant"),
                    "embedding_model_dims": embedder.dim,
                    "on_disk": True,
                },
            },
            "embedder": {
                "provider": "huggingface",
                "config": {"model": str(minilm_path()), "embedding_dims": embedder.dim},
            },
            # Required by the config; never called with infer=False (see _NoLLM).
            "llm": {
                "provider": "openai",
                "config": {"model": "gpt-4o-mini", "api_key": "sk-unused-by-benchmark"},
            },
            "history_db_path": str(workdir / "mem0-history.db"),
        }
        self._memory = Mem0Memory.from_config(config)
        self._memory.llm = _NoLLM()
        own = self._memory.embedding_model
        embed = shared_vectors(embedder)

        class SharedVectors(EmbeddingBase):
            """Mem0's embedder interface over the run's vectors (same model, same files)."""

            def embed(self, text: Any, memory_action: Any = None) -> list[float]:
                return embed([str(text)])[0]

            def embed_batch(self, texts: Any, memory_action: Any = "add") -> list[list[float]]:
                return embed([str(t) for t in texts])

        # Check that sharing vectors changes nothing: Mem0's own embedder on the same model.
        probe = ["Caroline: I went to a support group yesterday.", "What did Melanie paint?"]
        theirs = np.asarray([own.embed(t, "add") for t in probe], dtype=np.float32)
        ours = np.asarray(embed(probe), dtype=np.float32)
        cosines = (theirs * ours).sum(axis=1) / np.linalg.norm(theirs, axis=1)
        self._memory.embedding_model = SharedVectors(own.config)
        self.notes.append(
            "Memory.from_config: qdrant (embedded, local path, on_disk), huggingface embedder "
            "on the packaged all-MiniLM-L6-v2, openai LLM config with a dummy key that is "
            "never called; add(..., infer=False) per turn with metadata, "
            "search(filters={'user_id': ...}, top_k=k, threshold=0.0)"
        )
        self.notes.append(
            "vectors served from the run's cache through a Mem0 EmbeddingBase; Mem0's own "
            f"huggingface embedder gives the same vectors (cosine {min(cosines):.4f} on a probe)"
        )
        self.notes.append(
            "runs semantic-only: Mem0's BM25 keyword scoring needs fastembed's Qdrant/bm25 model "
            "and its entity boosts need spaCy's en_core_web_sm, both downloaded at run time "
            "(not installable offline)"
        )

    def add(self, scope: str, docs: Sequence[Doc]) -> None:
        for doc in docs:
            self._memory.add(
                [{"role": "user", "content": doc.text}],
                user_id=scope,
                metadata={"dia_id": doc.key, **doc.metadata},
                infer=False,
            )

    def search(self, scope: str, query: str, k: int) -> list[str]:
        found = self._memory.search(query, filters={"user_id": scope}, top_k=k, threshold=0.0)
        results = found["results"] if isinstance(found, dict) else found
        return [str((r.get("metadata") or {}).get("dia_id")) for r in results]

    def close(self) -> None:
        client = getattr(getattr(self._memory, "vector_store", None), "client", None)
        if client is not None:
            client.close()

    def llm_calls(self) -> int:
        """How many times Mem0 tried to call its LLM (must be 0)."""
        return _NoLLM.calls


def build_peer(name: str, embedder: CachingEmbedder, workdir: Path) -> Peer:
    """Construct one peer by name."""
    if name == "bm25":
        return BM25Peer()
    if name == "dense":
        return DensePeer(embedder)
    if name == "langgraph":
        return LangGraphPeer(embedder)
    if name == "mem0":
        return Mem0Peer(embedder, workdir / "mem0")
    raise ValueError(f"unknown peer {name!r}; choose from {', '.join(PEER_NAMES)}")


def parse_peers(value: str) -> list[str]:
    """``all``, ``none`` or a comma-separated list of peer names."""
    value = value.strip().lower()
    if value == "all":
        return list(PEER_NAMES)
    if value in ("none", ""):
        return []
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in PEER_NAMES]
    if unknown:
        raise ValueError(
            f"unknown peer(s) {unknown}; choose from all, none, {', '.join(PEER_NAMES)}"
        )
    return names


__all__ = [
    "PEER_NAMES",
    "BM25Peer",
    "DensePeer",
    "Doc",
    "LangGraphPeer",
    "Mem0Peer",
    "Peer",
    "PeerFailure",
    "build_peer",
    "explain_failure",
    "parse_peers",
    "shared_vectors",
]
