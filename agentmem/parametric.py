"""The small protocol through which the core reaches parametric memory.

The core never imports torch or the ``agentmem_gpu`` package: it sees trained adapters only through
the protocols below, which ``agentmem_gpu`` implements.

- A :class:`QueryEncoder` embeds search queries into the vector space of a document embedder
  (a retriever adapter: a query-side LoRA on the embedding model). Documents keep the vectors
  the base embedder gave them, so adopting or dropping an encoder needs no re-indexing.
- A :class:`QueryEncoderSource` hands out the promoted encoder for a scope, if any (the adapter
  registry of ``agentmem_gpu``). :func:`scope_key` names a scope on disk and in the registry.
- A :class:`RecallModel` answers a question closed-book with a confidence (a recall adapter:
  a LoRA on a causal language model); a :class:`RecallSource` hands out the promoted one for a
  scope. ``Memory.recall`` uses it when its confidence passes the model's gate and falls back
  to retrieval otherwise, returning a :class:`RecallAnswer`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import numpy as np

from agentmem.errors import InvalidSettings
from agentmem.models import Scope, SearchHit, scope_text

if TYPE_CHECKING:
    from agentmem.embedders import Embedder
    from agentmem.settings import Settings

ENTRY_POINT_GROUP = "agentmem.query_encoders"
"""Entry-point group of plugins that hand out query encoders: each entry point is a callable
taking :class:`~agentmem.settings.Settings` and returning a :class:`QueryEncoderSource` (the
``agentmem_gpu`` package registers its adapter registry here)."""

RECALL_ENTRY_POINT_GROUP = "agentmem.recall_models"
"""Entry-point group of plugins that hand out recall models: each entry point is a callable
taking :class:`~agentmem.settings.Settings` and returning a :class:`RecallSource`
(the ``agentmem_gpu`` package registers its adapter registry here too)."""

SHARED_SCOPE_KEY = "shared"
"""The registry key of an adapter trained across every scope of a deployment."""

_SCOPE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,199}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]+")
_FIELD_TAGS = {"org_id": "org", "user_id": "user", "agent_id": "agent", "thread_id": "thread"}


@runtime_checkable
class QueryEncoder(Protocol):
    """Embeds queries into the vector space of the document embedder named ``name``.

    ``name`` is the name of the document embedder whose index the query vectors search (for
    a retriever adapter, the base embedder's name), so the core can refuse to pair an encoder
    with an index built by another model. ``embed_query`` returns a unit-length float32
    vector of that embedder's dimension.
    """

    name: str

    def embed_query(self, text: str) -> np.ndarray:
        """The vector of a search query, shape (dim,)."""
        ...


@runtime_checkable
class QueryEncoderSource(Protocol):
    """Where the core asks for the query encoder promoted for a scope (the adapter registry)."""

    def query_encoder(self, scope_key: str, base: Embedder) -> QueryEncoder | None:
        """The promoted encoder for ``scope_key`` on top of ``base``, or None (use ``base``)."""
        ...


@dataclass(frozen=True)
class ParametricAnswer:
    """A closed-book answer and its confidence: the mean log-probability of its tokens."""

    answer: str
    confidence: float


@runtime_checkable
class RecallModel(Protocol):
    """Answers questions about a scope's memories closed-book (a recall adapter).

    ``name`` identifies the model (adapter and base model); ``gate_threshold`` is the
    confidence (mean answer-token log-probability, <= 0) at or above which its answer is
    trusted; below it the core answers from retrieval.
    """

    name: str
    gate_threshold: float

    def answer(self, question: str) -> ParametricAnswer:
        """The model's answer to ``question`` and its confidence."""
        ...


@runtime_checkable
class RecallSource(Protocol):
    """Where the core asks for the recall model promoted for a scope (the adapter registry)."""

    def recall_model(self, scope_key: str) -> RecallModel | None:
        """The promoted recall model for ``scope_key``, or None (answer from retrieval)."""
        ...


@dataclass(frozen=True)
class RecallAnswer:
    """What ``Memory.recall`` answered, and from where.

    ``source`` is ``"parametric"`` when the scope's recall adapter answered and its confidence
    passed the gate (``hits`` is then empty: nothing was searched), else ``"retrieved"``: the
    answer is the text of the best search hit (empty when nothing matched) and ``hits`` are the
    search results. ``confidence`` is the recall model's confidence (mean answer-token
    log-probability) whenever one was asked, also when it fell below the gate, and None when
    the scope has no recall model. ``parametric_answer`` is the model's answer even when it was
    not used; ``model`` names the model asked.
    """

    answer: str
    source: Literal["parametric", "retrieved"]
    confidence: float | None = None
    hits: list[SearchHit] = field(default_factory=list)
    parametric_answer: str | None = None
    model: str | None = None


def scope_key(scope: Scope) -> str:
    """A stable, file-name-safe key for ``scope`` (e.g. ``user-alice.agent-bot.1a2b3c4d``).

    The readable part may collide after unsafe characters are replaced (or be cut at 150
    characters); the hash suffix of the exact scope (:func:`~agentmem.models.scope_text`:
    ``str(scope)`` unless an id holds a separator such as ``,agent_id=``) keeps keys distinct,
    and every other scope's key is the one it always had, so adapter directories keep names.
    """
    parts = [f"{_FIELD_TAGS[f]}-{_UNSAFE.sub('-', v)}" for f, v in scope.fields().items()]
    readable = ".".join(parts)[:150]
    digest = hashlib.sha256(scope_text(scope).encode("utf-8")).hexdigest()[:8]
    return f"{readable}.{digest}"


def check_scope_key(key: str) -> str:
    """Return ``key`` if it can name a directory of adapters, else raise InvalidSettings."""
    if not isinstance(key, str) or not _SCOPE_KEY.match(key):
        raise InvalidSettings(
            f"adapter scope key {key!r} is not usable as a directory name; use 1-200 letters, "
            f"digits, '.', '_', '@' or '-' (agentmem.parametric.scope_key(scope) builds one, "
            f"{SHARED_SCOPE_KEY!r} names the shared adapter)"
        )
    return key


def check_compatible(encoder: QueryEncoder, embedder: Embedder) -> None:
    """Raise InvalidSettings unless ``encoder`` queries the vector space of ``embedder``."""
    if encoder.name != embedder.name:
        raise InvalidSettings(
            f"query encoder for embedder {encoder.name!r} cannot search an index built by "
            f"{embedder.name!r}; train an adapter on {embedder.name!r} or drop the encoder"
        )


def discover_query_encoders(settings: Settings) -> QueryEncoderSource | None:
    """The query-encoder source of the first installed plugin, or None.

    None as well when ``settings.adapters`` is ``"off"``. Discovery goes through entry points so
    that the core never imports the ``agentmem_gpu`` package (or torch) itself.
    """
    if settings.adapters == "off":
        return None
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        factory = entry.load()
        source = factory(settings)
        if not isinstance(source, QueryEncoderSource):
            raise InvalidSettings(
                f"plugin {entry.name!r} ({entry.value}) in {ENTRY_POINT_GROUP!r} returned "
                f"{type(source).__name__}, not a QueryEncoderSource; fix or uninstall it, or set "
                "AGENTMEM_ADAPTERS=off"
            )
        return source
    return None


def discover_recall_models(settings: Settings, *, serving: bool = True) -> RecallSource | None:
    """The recall-model source of the first installed plugin, or None (answer from retrieval).

    None as well when ``settings.adapters`` is ``"off"``, unless ``serving`` is False: that
    setting only switches serving off, and a forget must still reach (taint) the adapters of
    the registry whatever it says. Like :func:`discover_query_encoders`, discovery goes through
    entry points and imports nothing of ``agentmem_gpu`` or torch here.
    """
    if serving and settings.adapters == "off":
        return None
    for entry in sorted(entry_points(group=RECALL_ENTRY_POINT_GROUP), key=lambda e: e.name):
        source = entry.load()(settings)
        if not isinstance(source, RecallSource):
            raise InvalidSettings(
                f"plugin {entry.name!r} ({entry.value}) in {RECALL_ENTRY_POINT_GROUP!r} returned "
                f"{type(source).__name__}, not a RecallSource; fix or uninstall it, or set "
                "AGENTMEM_ADAPTERS=off"
            )
        return source
    return None


__all__ = [
    "ENTRY_POINT_GROUP",
    "RECALL_ENTRY_POINT_GROUP",
    "SHARED_SCOPE_KEY",
    "ParametricAnswer",
    "QueryEncoder",
    "QueryEncoderSource",
    "RecallAnswer",
    "RecallModel",
    "RecallSource",
    "check_compatible",
    "check_scope_key",
    "discover_query_encoders",
    "discover_recall_models",
    "scope_key",
]
