"""The one-writer lock of the embedded backends (a SQLite store, a Qdrant Edge index).

The lock covers the files actually opened, not the ``home`` setting: two Memories whose
``store_url`` / ``vectors_url`` name the same SQLite file or Edge directory conflict even when
their homes differ. Each embedded file has a lock file beside it, a function of its resolved
path alone, so every opener of one file finds the same lock:

- a store file named ``agentmem.db`` and an index directory named ``vectors`` (the layout of a
  home) are locked by ``agentmem.lock`` in their folder, the home's lock;
- any other name ``X`` is locked by ``X.lock`` beside it.

The default layout thus takes exactly one lock, ``<home>/agentmem.lock``, as it always has.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from agentmem.errors import BackendUnavailable, HomeLocked
from agentmem.settings import Settings

HOME_LOCK_NAME = "agentmem.lock"
"""The lock file of a home (of an ``agentmem.db`` and a ``vectors/`` in one folder)."""

_HOME_NAMES = {"sqlite": "agentmem.db", "edge": "vectors"}
_KINDS = {"sqlite": "SQLite store", "edge": "Qdrant Edge index"}

_SHARING = (
    "an embedded home (SQLite + Qdrant Edge) has one writer at a time; share memory between "
    "processes with AGENTMEM_STORE_URL=postgresql://... and AGENTMEM_VECTORS_URL=postgresql://... "
    "(pgvector) or http://qdrant:6333"
)

_held: weakref.WeakValueDictionary[str, FileLock] = weakref.WeakValueDictionary()
"""Each lock this process holds, by path, so that a second Memory on the same files is told it
is this process that holds them (a lock goes with its collected Memory)."""


@dataclass(frozen=True)
class _Target:
    """One lock file, and what it covers."""

    lock: Path
    what: str
    """``the embedded home <folder>``, or ``the embedded SQLite store <file>`` and the like."""
    from_home: bool
    """Whether the files it covers are the home's defaults (no store or vectors URL set)."""


@dataclass
class EmbeddedLock:
    """The locks held on the embedded files of one Memory, released together."""

    locks: list[FileLock]

    def release(self) -> None:
        """Release every lock (the last one taken first)."""
        for lock in reversed(self.locks):
            lock.release()


def _embedded_files(settings: Settings) -> list[tuple[str, Path, bool]]:
    """The embedded files ``settings`` open, as (scheme, resolved path, whether it is the
    home's default): the SQLite file and the Edge directory, parsed as the store and the index
    parse their URLs."""
    files = []
    store, vectors = settings.resolved_store_url(), settings.resolved_vectors_url()
    if store.startswith("sqlite:///") and len(store) > len("sqlite:///"):
        path = Path(store.removeprefix("sqlite:///")).resolve()
        files.append(("sqlite", path, settings.store_url is None))
    if vectors.startswith("edge://") and len(vectors) > len("edge://"):
        path = Path(vectors.removeprefix("edge://")).resolve()
        files.append(("edge", path, settings.vectors_url is None))
    return files


def _targets(settings: Settings) -> list[_Target]:
    """The lock files covering the embedded files of ``settings``: one per file, the same one
    for the two files of a home layout; sorted, so that every opener takes them in one order."""
    targets: dict[Path, _Target] = {}
    for scheme, path, from_home in _embedded_files(settings):
        if path.name == _HOME_NAMES[scheme]:
            lock = path.parent / HOME_LOCK_NAME
            what = f"the embedded home {path.parent}"
        else:
            lock = path.with_name(f"{path.name}.lock")
            what = f"the embedded {_KINDS[scheme]} {path}"
        known = targets.get(lock)
        targets[lock] = _Target(lock, what, from_home and (known is None or known.from_home))
    return [targets[key] for key in sorted(targets)]


def lock_embedded(settings: Settings) -> EmbeddedLock | None:
    """Lock the embedded files ``settings`` open (None when there are none), or raise
    :class:`HomeLocked` when another Memory, of this process or another, holds any of them."""
    held: list[FileLock] = []
    try:
        for target in _targets(settings):
            held.append(_acquire(target))
    except BaseException:
        EmbeddedLock(held).release()
        raise
    return EmbeddedLock(held) if held else None


def _acquire(target: _Target) -> FileLock:
    folder = target.lock.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(target.lock), thread_local=False)
        lock.acquire(timeout=0)
    except Timeout:  # an OSError too: first
        raise HomeLocked(_held_message(target)) from None
    except OSError as exc:
        raise BackendUnavailable(
            f"the embedded home {folder} cannot be written ({exc}): agentmem creates "
            f"{target.lock.name} there and writes the database and the index beside it, even to "
            "read them. Make it writable by this user (its owner, permissions, a read-only "
            "mount), or copy it somewhere writable (cp -a) and open the copy with --home or "
            "AGENTMEM_HOME"
        ) from exc
    _held[str(target.lock)] = lock
    return lock


def _held_message(target: _Target) -> str:
    """Why ``target`` is locked: by another Memory of this process, or by another process."""
    mine = _held.get(str(target.lock))
    if mine is not None and mine.is_locked:
        return (
            f"{target.what} is already open in this process: another Memory on it "
            "was not closed (a notebook cell run twice, two Memory objects in one program). "
            f"Reuse that Memory, or close() it (leave its with block) first; {_SHARING}"
        )
    own = (
        "its own AGENTMEM_HOME"
        if target.from_home
        else "its own files (AGENTMEM_HOME, AGENTMEM_STORE_URL, AGENTMEM_VECTORS_URL)"
    )
    return (
        f"{target.what} is open in another process; {_SHARING}. Close the other "
        f"Memory or give each process {own}"
    )


__all__ = ["HOME_LOCK_NAME", "EmbeddedLock", "lock_embedded"]
