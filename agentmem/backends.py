"""The bundle of backends one :class:`~agentmem.Memory` works through, built from settings."""

from __future__ import annotations

import importlib.util
import itertools
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from agentmem.embedders import Embedder, embedder_from_spec
from agentmem.embedders.base import (
    check_declared,
    checked_query_vector,
    declared_dim,
)
from agentmem.errors import EmbedderMismatch, InvalidSettings, MemoryClosed
from agentmem.home_lock import EmbeddedLock, lock_embedded
from agentmem.lexical import Bm25Encoder
from agentmem.models import Scope
from agentmem.parametric import (
    QueryEncoderSource,
    check_compatible,
    discover_query_encoders,
    scope_key,
)
from agentmem.recall_log import RecallLog
from agentmem.sessions import SessionDocs
from agentmem.settings import Settings
from agentmem.stores import RecordStore, store_from_url
from agentmem.twins import CLOSED_MESSAGE, CallGate
from agentmem.urls import redact
from agentmem.vectors import VectorIndex, vectors_from_url

if TYPE_CHECKING:
    from agentmem.graph.base import GraphStore

logger = logging.getLogger(__name__)


@dataclass
class Backends:
    """Store, vector index and embedder, plus the process lock of the embedded files (the
    SQLite store, the Edge index) and the source of retriever adapters (query encoders), if
    any."""

    settings: Settings
    store: RecordStore
    index: VectorIndex
    embedder: Embedder
    home_lock: EmbeddedLock | None = None
    index_lock: threading.Lock = field(default_factory=threading.Lock)
    outbox_tickets: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    """One ticket per :func:`agentmem.indexing.sync_outbox` call, taken after the caller's
    commit."""
    outbox_synced: int = 0
    """Every ticket up to this one has its outbox entries applied to the index."""
    bm25: Bm25Encoder = field(default_factory=Bm25Encoder)
    sessions: SessionDocs = field(default_factory=SessionDocs)
    """Term counts of whole sessions for the session prior, kept between searches."""
    query_encoders: QueryEncoderSource | None = None
    graph: GraphStore | None = None
    """The knowledge-graph backend (None when ``graph.enabled`` is off)."""
    calls: CallGate = field(default_factory=CallGate)
    """Counts the async calls running on this bundle: its Memory's close waits for them."""
    index_dim: int = 0
    """The size of the vectors the index was opened for."""
    embedder_fits: bool = True
    """Whether the embedder is known to make ``index_dim``-d vectors; False while an embedder
    that learns its size only by loading its model (or asking its provider) is unused:
    :meth:`check_embedder` asks it on the first use that needs vectors."""

    def check_embedder(self) -> None:
        """:class:`EmbedderMismatch` unless the embedder makes vectors of the size the index
        holds: called before its vectors are searched with or stored, it asks the embedder
        (loading its model) the first time only."""
        if not self.embedder_fits:
            self.check_size(declared_dim(self.embedder))
            self.embedder_fits = True

    def check_size(self, dim: int) -> None:
        """:class:`EmbedderMismatch`, before anything is written, unless vectors of ``dim``
        dimensions fit the index."""
        if dim != self.index_dim:
            raise EmbedderMismatch(
                f"the vector index at {redact(self.index.url)} holds {self.index_dim}-d "
                f"vectors but embedder {self.embedder.name!r} makes {dim}-d vectors (another "
                "embedding model?); nothing was written. Use the embedder it was built with "
                f"(AGENTMEM_EMBEDDER), or {self.index.reindex_elsewhere}"
            )

    def query_vector(self, text: str, scope: Scope) -> np.ndarray:
        """The dense vector of a search query in ``scope``: through the scope's promoted
        retriever adapter (or the shared one) when there is one, else the embedder's."""
        self.check_embedder()
        if self.query_encoders is not None:
            try:
                encoder = self.query_encoders.query_encoder(scope_key(scope), self.embedder)
            except ImportError as exc:  # a promoted adapter, but no torch in this process
                _adapter_unservable(exc)
                encoder = None
            if encoder is not None:
                check_compatible(encoder, self.embedder)
                return checked_query_vector(self.embedder, encoder.embed_query(text))
        return checked_query_vector(self.embedder, self.embedder.embed_query(text))

    closed: bool = False
    """Set by :meth:`close`: a handle still holding the bundle then refuses to use it."""
    recalls: RecallLog = field(init=False)
    """Recall counts and retrieval records of the store, written behind the searches."""

    def __post_init__(self) -> None:
        self.recalls = RecallLog(self.store, self.settings.retrieval.recall_flush_s)

    def opened(self) -> Backends:
        """This bundle, or :class:`MemoryClosed` once it is closed (its Memory was)."""
        if self.closed:
            raise MemoryClosed(CLOSED_MESSAGE)
        return self

    def close(self) -> None:
        """Close everything, the lock last."""
        self.closed = True
        try:
            self.recalls.close()
        except Exception:  # counts only: closing the rest matters more
            logger.exception("writing the last recall counts failed")
        try:
            if self.graph is not None:
                self.graph.close()
            self.index.close()
        finally:
            try:
                self.store.close()
            finally:
                self.embedder.close()
                if self.home_lock is not None:
                    self.home_lock.release()


class HasBackends(Protocol):
    """Anything that holds an open bundle (a :class:`~agentmem.Memory` does): what the public
    helpers of the subsystems accept beside the bundle itself, so ``extract_pending(mem)``
    works without the subsystem knowing the controller."""

    @property
    def backends(self) -> Backends:
        """The open bundle."""
        ...


def backends_of(source: Backends | HasBackends) -> Backends:
    """The bundle itself, or the open bundle ``source`` holds."""
    return source.opened() if isinstance(source, Backends) else source.backends


def check_memory_arguments(home: Any, settings: Any, embedder: Any) -> None:
    """Refuse :class:`~agentmem.Memory`'s arguments of the wrong kind with an
    :class:`InvalidSettings` saying what to pass."""
    if home is not None:
        if not isinstance(home, str | Path):
            raise InvalidSettings(
                f"home must be a folder path (str or Path), got {type(home).__name__}"
            )
        if not str(home).strip():
            raise InvalidSettings(
                "home is empty; pass a folder path, or leave it out for ./.agentmem"
            )
        if Path(home).exists() and not Path(home).is_dir():
            raise InvalidSettings(f"home {home} is a file, not a folder; pass a folder path")
    if settings is not None and not isinstance(settings, Settings):
        raise InvalidSettings(
            f"settings must be a Settings, got {type(settings).__name__}; e.g. "
            "settings=Settings.load(home=...) (Settings.load(**your_dict) reads a dict)"
        )
    if embedder is not None and not isinstance(embedder, Embedder):
        raise InvalidSettings(
            f"embedder must be an Embedder, got {type(embedder).__name__}; to pick one by name "
            "use Settings.load(embedder='minilm') (docs/configuration.md lists the names)"
        )
    if embedder is not None:
        check_declared(embedder)


def open_backends(
    settings: Settings,
    embedder: Embedder | None = None,
    query_encoders: QueryEncoderSource | None = None,
) -> Backends:
    """Lock the embedded files (if used), connect the store and open the index.

    One process at a time may open an embedded home (SQLite + Qdrant Edge): a second gets
    :class:`HomeLocked`. The lock covers the SQLite file and the Edge directory actually
    opened (:mod:`agentmem.home_lock`), so two Memories naming the same files by URL conflict
    whatever their homes. Several processes share memory through PostgreSQL + pgvector (or a
    Qdrant server).
    """
    if settings.llm_model and importlib.util.find_spec("litellm") is None:
        raise InvalidSettings(
            f"AGENTMEM_LLM_MODEL is {settings.llm_model!r}, but the LLM path needs litellm, "
            "which this install lacks: pip install 'agentmem[llm]' (or unset it for the "
            "LLM-free mode)"
        )
    lock = lock_embedded(settings)
    try:
        store = store_from_url(
            settings.resolved_store_url(),
            pool_min=settings.postgres_pool_min,
            pool_max=settings.postgres_pool_max,
            timeout=settings.connect_timeout_s,
        )
        index = vectors_from_url(
            settings.resolved_vectors_url(),
            collection=settings.vectors_collection,
            timeout=settings.connect_timeout_s,
            pool_min=settings.postgres_pool_min,
            pool_max=settings.postgres_pool_max,
        )
        embedder = embedder or embedder_from_spec(
            settings.embedder,
            batch_size=settings.embed_batch_size,
            precision=settings.embed_precision,
            threads=settings.embed_threads,
        )
        try:
            # The index first: its refusals (no pgvector, another dimension) are the likely
            # ones, and a refused open must leave no store tables behind.
            index_dim, fits = _open_index(index, embedder)
            store.setup()
            graph = _open_graph(settings, store)
        except BaseException:
            store.close()
            index.close()  # an embedded index holds its files until closed
            raise
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return Backends(
        settings=settings,
        store=store,
        index=index,
        embedder=embedder,
        home_lock=lock,
        bm25=Bm25Encoder(avg_len=settings.retrieval.bm25_avg_len),
        query_encoders=query_encoders
        if query_encoders is not None
        else discover_query_encoders(settings),
        graph=graph,
        index_dim=index_dim,
        embedder_fits=fits,
    )


def _open_index(index: VectorIndex, embedder: Embedder) -> tuple[int, bool]:
    """Open the index; returns its vector size and whether the embedder is known to fit it.

    An embedder that knows its size opens the index for it (refused there if the index holds
    another). One that learns it only by loading its model or asking its provider (``onnx:``,
    ``sentence-transformers:``, ``litellm:``) is not asked here: an existing index opens at its
    own size and :meth:`Backends.check_embedder` compares on first use, so a command that embeds
    nothing (stats, list, get, export) never loads the model, and works while it is broken or
    the provider is down. Only a new index needs the embedder's size at once.
    """
    dim = None if embedder.known_dim is None else declared_dim(embedder)
    fits = dim is not None
    if dim is None:
        dim = index.stored_dim()
    if dim is None:
        dim, fits = declared_dim(embedder), True
    index.setup(dim)
    return dim, fits


_unservable_warned: set[str] = set()


def _adapter_unservable(exc: ImportError) -> None:
    """Say once per process (and missing module) that promoted adapters are not served."""
    if str(exc) in _unservable_warned:
        return
    _unservable_warned.add(str(exc))
    logger.warning(
        "a promoted retriever adapter cannot be served in this process (%s): searching with "
        "the base embedder. Serving adapters needs the gpu extra: pip install 'agentmem[gpu]'",
        exc,
    )


def _open_graph(settings: Settings, store: RecordStore) -> GraphStore | None:
    """The knowledge-graph backend, set up (None when the graph is off)."""
    # Imported here: agentmem.graph reads facts with agentmem.semantic, which writes through
    # this module, so a module-level import would be circular.
    from agentmem.graph import graph_from_settings

    graph = graph_from_settings(settings, store)
    if graph is not None:
        graph.setup()
    return graph


__all__ = ["Backends", "HasBackends", "backends_of", "check_memory_arguments", "open_backends"]
