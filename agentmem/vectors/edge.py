"""Qdrant Edge vector index: Qdrant's embedded engine, the default under ``AGENTMEM_HOME``."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agentmem.errors import (
    BackendUnavailable,
    EmbedderMismatch,
    IndexRefused,
    IndexUnreadable,
    InvalidSettings,
)
from agentmem.lexical import SparseVector
from agentmem.vectors._qdrant_filter import (
    FLOAT_PAYLOAD_FIELDS,
    KEYWORD_PAYLOAD_FIELDS,
    FilterModels,
    build_filter,
)
from agentmem.vectors.base import (
    BM25,
    DENSE,
    DENSE_SPACES,
    SPARSE_SPACES,
    VectorIndex,
    VectorPoint,
    VectorQuery,
)

logger = logging.getLogger(__name__)

_NAMES_KEPT = 200_000
"""Point ids whose string form :class:`EdgeVectorIndex` keeps (~30 MB at most)."""


class EdgeVectorIndex(VectorIndex):
    """A Qdrant Edge shard in a local directory (one process at a time)."""

    supports_concurrent_processes = False
    erases_files = True
    reindex_elsewhere = (
        "move its directory aside (or point AGENTMEM_VECTORS_URL at a new path) and run "
        "`agentmem reindex`"
    )

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.url = f"edge://{self.path}"
        self._shard: Any = None
        self._dim: int | None = None
        self._lock = threading.RLock()
        self._qe: Any = None
        self._names: dict[Any, str] = {}
        self._unusable: str | None = None
        """Why the shard could not be opened (damaged files, permissions, a full disk): then
        every use raises :class:`IndexUnreadable` saying so, while the store's own reads go on
        working."""
        self._short_of_space = False
        """Not opened for want of free space: opened on the first use after space is freed."""

    @classmethod
    def from_url(cls, url: str) -> EdgeVectorIndex:
        """``edge:///absolute/path`` or ``edge://relative/path``."""
        prefix = "edge://"
        if not url.startswith(prefix) or len(url) == len(prefix):
            raise InvalidSettings(f"{url!r} is not a Qdrant Edge URL like edge:///path/vectors")
        return cls(url[len(prefix) :])

    def stored_dim(self) -> int | None:
        """The dense size in ``edge_config.json`` (None: no shard, or a config it cannot read:
        :meth:`setup` then reports what is wrong with the files)."""
        try:
            config = json.loads((self.path / "edge_config.json").read_text(encoding="utf-8"))
            size = config["vectors"][DENSE]["size"]
        except (OSError, ValueError, TypeError, KeyError):
            return None
        return size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None

    def setup(self, dim: int) -> None:
        if self._shard is not None:
            return
        self._dim = dim
        # A crash inside erase_files() may have left the old shard aside: finish deleting it.
        shutil.rmtree(self.path.with_name(f"{self.path.name}.erasing"), ignore_errors=True)
        import qdrant_edge as qe

        self._qe = qe
        self._models = FilterModels(qe.Filter, qe.FieldCondition, qe.MatchValue, qe.RangeFloat)
        config = qe.EdgeConfig(
            vectors={
                name: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)
                for name in DENSE_SPACES
            },
            sparse_vectors={
                name: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf) for name in SPARSE_SPACES
            },
        )
        short = _short_of_space(self.path)
        if short is not None:  # the engine would grow its files and die of SIGBUS
            if not self._short_of_space:  # said once, not on every retry
                logger.warning("%s", short)
            self._unusable, self._short_of_space = short, True
            return
        self._unusable, self._short_of_space = None, False
        try:
            if (self.path / "edge_config.json").exists() or _has_segments(self.path):
                self._shard = qe.EdgeShard.load(str(self.path), config)
            else:
                self.path.mkdir(parents=True, exist_ok=True)
                self._shard = qe.EdgeShard.create(str(self.path), config)
            self._index_payload()
        except Exception as exc:
            if "vector size" in str(exc):  # built by an embedder of another dimension
                raise EmbedderMismatch(
                    f"the Qdrant Edge index at {self.path} holds vectors of another size than "
                    f"this embedder's {dim} ({exc}); nothing was written. Use the embedder it "
                    "was built with, or move that directory aside (or point "
                    "AGENTMEM_VECTORS_URL at a new path) and run `agentmem reindex`"
                ) from exc
            # Opened without a shard, so that export, list and get still read the store and
            # `agentmem reindex --rebuild` can set the directory aside (see set_aside).
            self._close_quietly()
            self._unusable = _unreadable(self.path, f"cannot open it for {dim}-d vectors: {exc}")
            logger.warning("%s", self._unusable)

    def _index_payload(self) -> None:
        """Create the payload indexes the shard lacks (all of them for a new shard; those added
        since an older agentmem created it, once, on opening it)."""
        qe = self._qe
        have = set(self._shard.info().payload_schema)
        wanted = [(n, qe.PayloadSchemaType.Keyword) for n in KEYWORD_PAYLOAD_FIELDS]
        wanted += [(n, qe.PayloadSchemaType.Float) for n in FLOAT_PAYLOAD_FIELDS]
        for name, schema in wanted:
            if name not in have:
                self._shard.update(qe.UpdateOperation.create_field_index(name, schema))

    def close(self) -> None:
        with self._lock:
            if self._shard is not None:
                try:
                    self._shard.flush()
                    self._shard.close()
                except Exception as exc:  # damaged files: closing must not hide the first error
                    logger.warning("%s", _unreadable(self.path, f"closing it failed: {exc}"))
                self._shard = None

    def _close_quietly(self) -> None:
        shard, self._shard = self._shard, None
        if shard is not None:
            try:
                shard.close()
            except Exception:  # already failing; the caller reports the first error
                logger.debug("closing a damaged Qdrant Edge shard failed", exc_info=True)

    def set_aside(self) -> Path | None:
        """Move the index directory aside (kept, named with the time) and open a new, empty
        one; the caller re-indexes from the store. Returns where the old directory went."""
        with self._lock:
            dim = self._dim
            if dim is None:
                raise BackendUnavailable(f"Qdrant Edge index {self.path} is not open")
            short = _short_of_space(self.path)
            if short is not None:  # the index is not damaged: keep it where it is
                raise IndexUnreadable(short)
            self.close()
            aside = None
            if self.path.exists():
                aside = self.path.with_name(
                    f"{self.path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
                )
                n = 1
                while aside.exists():
                    n += 1
                    aside = aside.with_name(f"{aside.name.split('~')[0]}~{n}")
                os.replace(self.path, aside)
            self._unusable = None
            self.setup(dim)
            self._require()
            self.damaged_copy = str(aside) if aside is not None else None
            return aside

    def erase_files(self) -> bool:
        """Close the shard, delete its directory (segments, payload pages, write-ahead log:
        deleted points linger in them until Qdrant compacts), and create it empty."""
        with self._lock:
            dim = self._dim
            if dim is None:
                raise BackendUnavailable(f"Qdrant Edge index {self.path} is not open")
            self.close()
            if self.path.exists():
                aside = self.path.with_name(f"{self.path.name}.erasing")
                shutil.rmtree(aside, ignore_errors=True)
                os.replace(self.path, aside)
                shutil.rmtree(aside)
            self.setup(dim)
        return True

    def _require(self) -> Any:
        if self._shard is None:
            if self._short_of_space and self._dim is not None:
                self.setup(self._dim)  # opens it if space was freed meanwhile
                if self._shard is not None:
                    return self._shard
            if self._unusable is not None:
                raise IndexUnreadable(self._unusable)
            raise BackendUnavailable(f"Qdrant Edge index {self.path} is not open; call setup()")
        return self._shard

    def _call(self, method: str, *args: Any) -> Any:
        """``shard.method(*args)``; a failure of the engine (damaged files, permissions) as
        :class:`IndexUnreadable` naming the directory and the repair."""
        with self._lock:
            shard = self._require()
            # Every update appends to the write-ahead log and may grow the segments: on a full
            # disk the engine would kill the process, so a nearly full one refuses it first.
            short = _short_of_space(self.path) if method == "update" else None
            if short is not None:
                raise IndexUnreadable(short)
            try:
                return getattr(shard, method)(*args)
            except Exception as exc:
                raise IndexUnreadable(_unreadable(self.path, f"{method} failed: {exc}")) from exc

    def upsert(self, points: Sequence[VectorPoint]) -> None:
        if not points:
            return
        qe = self._qe
        batch = []
        for p in points:
            try:
                batch.append(qe.Point(p.id, self._named_vectors(p), p.payload))
            except (TypeError, ValueError, OverflowError) as exc:
                # The engine cannot hold a value (a lone surrogate in the payload's text):
                # no retry cures that, so it is refused like pgvector's refused values.
                reason = " ".join(str(exc).split())[:300]
                raise IndexRefused(
                    f"the Qdrant Edge index at {self.path} refused point {p.id}: {reason}; "
                    "nothing was written to the index"
                ) from exc
        self._call("update", qe.UpdateOperation.upsert_points(batch))

    def _named_vectors(self, p: VectorPoint) -> dict[str, Any]:
        qe = self._qe
        named: dict[str, Any] = {DENSE: np.asarray(p.vector, dtype=np.float32).tolist()}
        for name, v in p.dense.items():
            named[name] = np.asarray(v, dtype=np.float32).tolist()
        for name, sv in p.sparse.items():
            if sv:
                named[name] = qe.SparseVector(list(sv.indices), list(sv.values))
        return named

    def delete(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        self._call("update", self._qe.UpdateOperation.delete_points(list(ids)))

    def search(
        self, vector: np.ndarray, query: VectorQuery, using: str = DENSE
    ) -> list[tuple[str, float]]:
        as_list = np.asarray(vector, dtype=np.float32).tolist()
        return self._query(self._qe.Query.Nearest(as_list, using=using), query)

    def search_sparse(
        self, vector: SparseVector, query: VectorQuery, using: str = BM25
    ) -> list[tuple[str, float]]:
        if not vector:
            return []
        sparse = self._qe.SparseVector(list(vector.indices), list(vector.values))
        return self._query(self._qe.Query.Nearest(sparse, using=using), query)

    def _query(self, scoring: Any, query: VectorQuery) -> list[tuple[str, float]]:
        q = query if query.now else _with_now(query)
        request = self._qe.QueryRequest(
            limit=q.limit, query=scoring, filter=build_filter(q, self._models), with_payload=False
        )
        hits = self._call("query", request)
        return [(self._name(h.id), float(h.score)) for h in hits]

    def _name(self, point_id: Any) -> str:
        # Edge returns ids as uuid.UUID; str() of one costs more than the query's own work per
        # hit, and a search asks for the same few hundred ids channel after channel.
        name = self._names.get(point_id)
        if name is None:
            if len(self._names) >= _NAMES_KEPT:
                self._names.clear()
            name = self._names[point_id] = str(point_id)
        return name

    def count(self) -> int:
        return int(self._call("count", self._qe.CountRequest(exact=True)))

    def ids(self, limit: int = 10_000, offset: str | None = None) -> list[str]:
        request = self._qe.ScrollRequest(
            offset=offset, limit=limit, with_payload=False, with_vector=False
        )
        records, _next = self._call("scroll", request)
        return [str(r.id) for r in records]


def _with_now(query: VectorQuery) -> VectorQuery:
    from dataclasses import replace

    return replace(query, now=time.time())


_PERMISSION = re.compile(r"permission denied|operation not permitted|os error (1|13)\b", re.I)
"""How the engine (or the OS) reports a file this user may not read or write."""


def _unreadable(path: Path, problem: str) -> str:
    """Why the index at ``path`` cannot be used, and the repair: a permission problem (whose
    files are fine, so a rebuild would only set a good index aside) or damaged files."""
    if _PERMISSION.search(problem):
        return (
            f"the Qdrant Edge vector index at {path} cannot be accessed ({problem}): a "
            "permission problem, not damage. Give this user read and write access to that "
            "directory and every file in it (chown -R, chmod -R u+rw; lsattr shows files made "
            "immutable with chattr +i), then open the home again; do not rebuild it. The store "
            "is intact (export, list and get still work)"
        )
    return (
        f"the Qdrant Edge vector index at {path} is unreadable ({problem}); its files are "
        "probably damaged. The store is intact (export, list and get still work). Repair the "
        "index with `agentmem reindex --rebuild` (mem.reindex(rebuild=True)): it moves that "
        "directory aside and rebuilds the index from the store"
    )


MIN_FREE_BYTES = 256 * 2**20
"""Free space the index's disk must have before the shard opens or grows. Qdrant Edge writes
memory-mapped files, and a write to a page the full disk cannot hold kills the process with
SIGBUS instead of failing. Measured on a tmpfs: creating a shard took 26 MiB; reopening one,
even of ten points, grew it to 142 MiB (a 32 MiB chunk per dense vector space, 2-4 MiB per
payload index); 1,000 upserts took about 14 MiB. 256 MiB is about twice the largest step."""


def _free_bytes(path: Path) -> int | None:
    """Free bytes on the disk of ``path`` (or of its nearest existing parent); None if unknown."""
    for where in (path, *path.parents):
        if where.exists():
            try:
                return shutil.disk_usage(where).free
            except OSError:
                return None
    return None


def _short_of_space(path: Path) -> str | None:
    """Why the disk of the index at ``path`` is too full to open or grow it, or None."""
    free = _free_bytes(path)
    if free is None or free >= MIN_FREE_BYTES:
        return None
    return (
        f"the disk that holds the Qdrant Edge vector index at {path} is almost full: "
        f"{free // 2**20} MiB free, and the index needs {MIN_FREE_BYTES // 2**20} MiB to open "
        "and grow its memory-mapped files (on a full disk the engine would kill the process). "
        "Nothing is damaged and the store is intact (export, list and get still work). Free "
        "space on that disk, or move the home to a larger one; the index opens again by itself"
    )


def _has_segments(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


__all__ = ["EdgeVectorIndex"]
