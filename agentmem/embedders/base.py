"""Embedders turn text into unit-length vectors."""

from __future__ import annotations

import hashlib
import inspect
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from agentmem.errors import EmbedderMismatch, InvalidSettings


class Embedder(ABC):
    """Text to L2-normalised float32 vectors.

    ``name`` identifies the model (and its version) for the embedding cache: two embedders
    with the same name must return the same vectors. A subclass sets ``name`` (a non-empty
    str) and ``dim`` (a positive int), as attributes or as properties that learn them from
    the model on first use; :class:`~agentmem.Memory` refuses one without them.
    """

    name: str

    @property
    @abstractmethod
    def dim(self) -> int:
        """Vector size."""

    @property
    def known_dim(self) -> int | None:
        """The vector size if known without loading a model or calling a provider, else None
        (only :attr:`dim` can tell). Opening a home compares a known size with its index at
        once; an unknown one is compared on the first use that needs vectors, so commands that
        embed nothing never pay for it. By default :attr:`dim` itself."""
        return self.dim

    @abstractmethod
    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for texts to be stored, shape (len(texts), dim)."""

    def embed_query(self, text: str) -> np.ndarray:
        """The vector of a search query, shape (dim,)."""
        return checked_vectors(self, self.embed_documents([text]), 1)[0]

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release model resources."""


def checked_vectors(embedder: Embedder, vectors: np.ndarray, count: int) -> np.ndarray:
    """``vectors`` if they are ``count`` finite rows of the embedder's declared ``dim`` (the
    size the vector index was opened for), else :class:`EmbedderMismatch`, before anything is
    written or cached."""
    array = _as_floats(embedder, vectors)
    if array.ndim != 2 or array.shape != (count, declared_dim(embedder)):
        raise EmbedderMismatch(
            f"embedder {embedder.name!r} returned vectors of shape {tuple(array.shape)} for "
            f"{count} texts, but declares {embedder.dim} dimensions (the size the vector index "
            "holds); nothing was written. Use the embedder the index was built with, or point "
            "AGENTMEM_VECTORS_URL at a new index and run `agentmem reindex`"
        )
    broken = np.flatnonzero(~np.isfinite(array).all(axis=1))
    if broken.size:
        # A NaN or infinite vector matches nothing in dense search, and once cached it
        # would come back on every reindex: refused before the index or the cache sees it.
        raise EmbedderMismatch(
            f"embedder {embedder.name!r} returned NaN or infinite values for {broken.size} of "
            f"{count} texts (text #{int(broken[0]) + 1} first); nothing was written or "
            "cached. The model or its output is broken (a damaged model file, or values out "
            "of float32 range): fix or replace the embedder and try again"
        )
    return array


def checked_query_vector(embedder: Embedder, vector: object) -> np.ndarray:
    """``vector`` if it is one finite vector of the embedder's declared ``dim`` (what a search
    query is embedded to), else :class:`EmbedderMismatch` naming the embedder."""
    array = _as_floats(embedder, vector)
    if array.shape != (declared_dim(embedder),):
        raise EmbedderMismatch(
            f"embedder {embedder.name!r} returned a query vector of shape {tuple(array.shape)}, "
            f"but declares {embedder.dim} dimensions (the size the vector index holds); its "
            "embed_query must return one vector of shape (dim,). Fix the embedder, or use the "
            "one the index was built with"
        )
    return checked_vectors(embedder, array[None, :], 1)[0]


def check_declared(embedder: Embedder) -> None:
    """Refuse, with :class:`InvalidSettings`, an embedder without a ``name`` (a non-empty str)
    or a ``dim`` (a positive int). A property is left to be checked where it is read
    (:func:`declared_dim`): it may load the model, which opening a Memory never does."""
    kind = type(embedder).__name__
    try:
        name = inspect.getattr_static(embedder, "name")
    except AttributeError:
        name = None
    if not _lazy(name) and not (isinstance(name, str) and name.strip()):
        raise InvalidSettings(
            f"embedder {kind} has name {name!r}; an Embedder must set `name`, a non-empty str "
            "naming its model and version (the embedding cache keeps vectors under it)"
        )
    dim = inspect.getattr_static(embedder, "dim")
    if not _lazy(dim):
        _positive_dim(embedder, dim)


def declared_dim(embedder: Embedder) -> int:
    """The embedder's ``dim``, or :class:`InvalidSettings` unless it is a positive int."""
    return _positive_dim(embedder, embedder.dim)


def _positive_dim(embedder: Embedder, dim: object) -> int:
    if isinstance(dim, int | np.integer) and not isinstance(dim, bool) and dim > 0:
        return int(dim)
    raise InvalidSettings(
        f"embedder {type(embedder).__name__} declares dim {dim!r}; an Embedder must provide "
        "`dim`, the size of its vectors, as a positive int (an attribute, or a property that "
        "learns it from the model on first use)"
    )


def _lazy(value: object) -> bool:
    """Whether a class attribute is computed when read (a property)."""
    return hasattr(type(value), "__get__")


def _as_floats(embedder: Embedder, vectors: object) -> np.ndarray:
    """``vectors`` as a float32 array, or :class:`EmbedderMismatch` when they are not numbers
    in rows of one length (a ragged list, text, an object)."""
    try:
        return np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise EmbedderMismatch(
            f"embedder {embedder.name!r} returned {type(vectors).__name__}, not an array of "
            f"float vectors ({exc}); nothing was written. Fix the embedder: it must return "
            "numbers, one row per text"
        ) from exc


def content_name(folder: Path, files: Iterable[Path]) -> str:
    """The name of a model kept in ``folder``: the folder's name and a digest of the contents
    of ``files`` (``e5#1f0c3a9b2d4e``). Two models in folders of one name get two names, so
    they never share cached vectors; one model copied elsewhere keeps its name (and its cache
    and adapters), wherever it lies."""
    digest = hashlib.sha256()
    for path in sorted(files):
        label = path.relative_to(folder).as_posix() if path.is_relative_to(folder) else path.name
        digest.update(f"{label}\0{path.stat().st_size}\0".encode())
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return f"{folder.name}#{digest.hexdigest()[:12]}"


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Scale rows to unit length (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


__all__ = [
    "Embedder",
    "check_declared",
    "checked_query_vector",
    "checked_vectors",
    "content_name",
    "declared_dim",
    "normalise",
]
