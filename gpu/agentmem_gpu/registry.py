"""The adapter registry: adapters versioned per scope on disk, promoted only when better.

Layout under the registry root (by default ``<home>/adapters``)::

    <scope-key>/v1/  adapter_model.safetensors  adapter_config.json  agentmem_adapter.json
    <scope-key>/v2/  ...
    <scope-key>/state.json   promoted version per kind, the promotion stack, an event log
    .work/train-<id>/        one training run's checkpoints, removed when the run ends

A version is immutable once registered. :meth:`AdapterRegistry.promote` makes a version the
current one for its kind only if its held-out evaluation beats the current one's (measured on
the same questions when the candidate was trained, see :data:`INCUMBENT_METRIC`) or, with none
promoted yet, the base model's on the same questions, unless forced;
:meth:`AdapterRegistry.rollback` returns to the previously promoted version. Writers take a
per-scope file lock, so concurrent consolidation workers cannot interleave.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout

from agentmem.errors import InvalidSettings, NotFound, ValidationError
from agentmem.parametric import SHARED_SCOPE_KEY, QueryEncoder, RecallModel, check_scope_key
from agentmem_gpu.config import (
    ADAPTER_KINDS,
    METADATA_FILE,
    RECALL_KIND,
    RETRIEVER_KIND,
    AdapterMetadata,
)

if TYPE_CHECKING:
    from agentmem.embedders import Embedder
    from agentmem.settings import Settings

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
INCUMBENT_METRIC = "incumbent"
"""Metrics key of the score of the version a new adapter would replace, measured on the new
adapter's evaluation questions when it was trained: ``{"version": n, "score": x}``."""
WORK_DIR = ".work"
"""Directory under the registry root holding the work directories of running trainings."""
_VERSION_DIR = re.compile(r"^v(\d+)$")
# Training leftovers that do not belong in a registered version.
_NOT_COPIED = ("checkpoint.pt", "*.tmp", ".*")


@dataclass(frozen=True)
class AdapterVersion:
    """One registered adapter: where it is, what it is, whether it is the promoted one."""

    scope_key: str
    version: int
    path: Path
    metadata: AdapterMetadata
    promoted: bool = False
    tainted: bool = False
    """Trained on a memory that was since forgotten: never served or promoted again."""

    @property
    def kind(self) -> str:
        """``retriever`` or ``recall``."""
        return self.metadata.kind

    def score(self) -> float | None:
        """The held-out metric promotion compares (``eval_recall@k`` for retrievers,
        ``eval_exact_match`` on paraphrased questions for recall adapters)."""
        value = self.metadata.metrics.get(_metric_key(self.metadata))
        return float(value) if isinstance(value, int | float) else None

    def base_score(self) -> float | None:
        """The same metric for the base model on the same questions, if recorded."""
        key = _metric_key(self.metadata).replace("eval_", "base_", 1)
        value = self.metadata.metrics.get(key)
        return float(value) if isinstance(value, int | float) else None

    def incumbent_score(self, version: int) -> float | None:
        """The same metric for version ``version`` (the one this adapter would replace) on the
        same questions, if that version was measured when this adapter was trained."""
        measured = self.metadata.metrics.get(INCUMBENT_METRIC)
        if not isinstance(measured, dict) or measured.get("version") != version:
            return None
        value = measured.get("score")
        return float(value) if isinstance(value, int | float) else None


@dataclass(frozen=True)
class Promotion:
    """The outcome of :meth:`AdapterRegistry.promote`: promoted or not, and why."""

    promoted: bool
    candidate: AdapterVersion
    previous: AdapterVersion | None
    reason: str
    candidate_score: float | None = None
    incumbent_score: float | None = None


class AdapterRegistry:
    """Adapters versioned per scope key under ``root``. The constructor touches no disk."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        # Loaded query towers by (adapter directory, base embedder): a search must not reload
        # the model; a promotion or rollback changes the directory, so the cache never serves
        # a demoted adapter.
        self._encoders: dict[tuple[Path, int], QueryEncoder] = {}
        self._encoders_lock = threading.Lock()
        self._recallers: dict[Path, RecallModel] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> AdapterRegistry:
        """The registry of an agentmem home: ``<home>/adapters``."""
        return cls(Path(settings.home) / "adapters")

    # reads ----------------------------------------------------------------------------------

    def scopes(self) -> builtins.list[str]:
        """Scope keys that have at least one registered adapter."""
        if not self.root.is_dir():
            return []
        return sorted(d.name for d in self.root.iterdir() if d.is_dir() and self._versions(d))

    def list(self, scope_key: str, kind: str | None = None) -> builtins.list[AdapterVersion]:
        """The registered versions of a scope (of one kind, if given), oldest first."""
        directory = self._scope_dir(scope_key)
        state = self._state(directory)
        out = []
        for number in self._versions(directory):
            version = self._version(scope_key, directory, number, state)
            if kind is None or version.kind == kind:
                out.append(version)
        return out

    def get(self, scope_key: str, version: int) -> AdapterVersion:
        """One registered version (NotFound if absent)."""
        directory = self._scope_dir(scope_key)
        if version not in self._versions(directory):
            raise NotFound(
                f"no adapter v{version} for scope {scope_key!r}; "
                f"registered: {[v.version for v in self.list(scope_key)]}"
            )
        return self._version(scope_key, directory, version, self._state(directory))

    def current(self, scope_key: str, kind: str = RETRIEVER_KIND) -> AdapterVersion | None:
        """The promoted version of ``kind`` for a scope, or None (use the base model).

        A promoted version whose directory or metadata file is gone (a bad copy) raises
        InvalidSettings naming it and the rollback to run: what it serves must not fall back
        silently, nor answer NotFound (a 404 for a search)."""
        _check_kind(kind)
        directory = self._scope_dir(scope_key)
        state = self._state(directory)
        # A tainted adapter stops serving at once: the newest untainted promoted one serves.
        serving = _serving(state, kind)
        if serving is None:
            return None
        path = directory / f"v{serving}"
        if not path.is_dir():
            raise InvalidSettings(
                f"the current {kind} adapter of {scope_key!r}, {path}, is missing (a bad copy "
                f"or a full disk?); {_fix(scope_key, kind, path, serving=True)}"
            )
        return self._version(scope_key, directory, serving, state)

    def find(
        self, scope_key: str, data_hash: str, kind: str = RETRIEVER_KIND
    ) -> AdapterVersion | None:
        """The newest version trained on exactly this data, if any: no need to retrain."""
        matches = [
            v
            for v in self.list(scope_key, kind)
            if v.metadata.data_hash == data_hash and not v.tainted
        ]
        return matches[-1] if matches else None

    def query_encoder(self, scope_key: str, base: Embedder) -> QueryEncoder | None:
        """The promoted retriever adapter of the scope, else the promoted shared one, as a
        query encoder over ``base``; None when neither exists (implements
        :class:`agentmem.parametric.QueryEncoderSource`)."""
        version = self.current(scope_key) or (
            self.current(SHARED_SCOPE_KEY) if scope_key != SHARED_SCOPE_KEY else None
        )
        if version is None:
            return None
        key = (version.path, id(base))
        with self._encoders_lock:
            encoder = self._encoders.get(key)
            if encoder is None:
                from agentmem_gpu.retriever import AdaptedQueryEmbedder

                encoder = AdaptedQueryEmbedder(base, version.path)
                self._encoders[key] = encoder
        return encoder

    def recall_model(self, scope_key: str) -> RecallModel | None:
        """The promoted recall adapter of the scope itself, or None (implements
        :class:`agentmem.parametric.RecallSource`).

        Never a shared one, unlike :meth:`query_encoder`: a recall adapter answers with the
        text it learned, so one trained on a scope's memories must not answer another's."""
        version = self.current(scope_key, RECALL_KIND)
        if version is None:
            return None
        with self._encoders_lock:
            model = self._recallers.get(version.path)
            if model is None:
                from agentmem_gpu.recall_adapter import RecallAdapter

                model = RecallAdapter(version.path)
                self._recallers[version.path] = model
        return model

    # writes ---------------------------------------------------------------------------------

    def register(self, scope_key: str, adapter_dir: str | Path) -> AdapterVersion:
        """Copy a trained adapter into the next version of ``scope_key`` (not promoted)."""
        source = Path(adapter_dir)
        metadata = AdapterMetadata.load(source)  # NotFound when it is not an adapter
        directory = self._scope_dir(scope_key)
        directory.mkdir(parents=True, exist_ok=True)
        with self._lock(directory):
            number = max(self._versions(directory), default=0) + 1
            staging = directory / f".v{number}.{uuid.uuid4().hex}.tmp"
            shutil.copytree(source, staging, ignore=shutil.ignore_patterns(*_NOT_COPIED))
            staging.rename(directory / f"v{number}")  # readers never see a half-copied version
            self._log(directory, "register", number, kind=metadata.kind)
        return self.get(scope_key, number)

    def promote(self, scope_key: str, version: int, *, force: bool = False) -> Promotion:
        """Make ``version`` the current adapter of its kind if its held-out score beats the
        current one's (or the base model's, when none is promoted); ``force`` skips the
        comparison. Returns what happened; a refusal changes nothing."""
        directory = self._scope_dir(scope_key)
        with self._lock(directory):
            candidate = self.get(scope_key, version)
            previous = self.current(scope_key, candidate.kind)
            if candidate.tainted:
                return Promotion(
                    False, candidate, previous, "tainted: trained on a forgotten memory"
                )
            if previous is not None and previous.version == candidate.version:
                return Promotion(False, candidate, previous, "already the current version")
            score = candidate.score()
            if previous is None:
                incumbent, against = candidate.base_score(), "the base model"
            elif (same := candidate.incumbent_score(previous.version)) is not None:
                incumbent, against = same, f"v{previous.version} on the same questions"
            else:  # trained before that version was promoted: only its own score is known
                incumbent, against = previous.score(), f"v{previous.version}"
            if not force:
                if score is None:
                    return Promotion(
                        False, candidate, previous, "the candidate has no held-out score", None
                    )
                if incumbent is not None and score <= incumbent:
                    reason = f"held-out score {score:.4f} does not beat {against} ({incumbent:.4f})"
                    return Promotion(False, candidate, previous, reason, score, incumbent)
            state = self._state(directory)
            state["promoted"].setdefault(candidate.kind, []).append(candidate.version)
            self._write_state(directory, state)
            self._log(directory, "promote", version, kind=candidate.kind, forced=force)
        reason = "forced" if force else f"beats {against}"
        return Promotion(True, self.get(scope_key, version), previous, reason, score, incumbent)

    def rollback(self, scope_key: str, kind: str = RETRIEVER_KIND) -> AdapterVersion | None:
        """Demote the current version of ``kind`` (the one :meth:`current` serves); the
        previously promoted one (or none: the base model) becomes current again. Returns the
        new current version."""
        _check_kind(kind)
        directory = self._scope_dir(scope_key)
        with self._lock(directory):
            state = self._state(directory)
            stack = state["promoted"].get(kind, [])
            serving = [v for v in stack if str(v) not in state["tainted"]]
            if not serving:
                raise ValidationError(
                    f"scope {scope_key!r} has no promoted {kind} adapter to roll back"
                )
            demoted = serving[-1]
            # Tainted versions promoted after it never serve again: they go off the stack too.
            while stack.pop() != demoted:
                pass
            self._write_state(directory, state)
            self._log(directory, "rollback", demoted, kind=kind)
        return self.current(scope_key, kind)

    def taint(self, scope_key: str, version: int, reason: str) -> AdapterVersion:
        """Mark a version as trained on forgotten memory: from this call on it is never served
        (:meth:`current` skips it) nor promoted, and its weights are erased (its metadata
        stays). Idempotent."""
        directory = self._scope_dir(scope_key)
        with self._lock(directory):
            target = self.get(scope_key, version)
            state = self._state(directory)
            if str(version) not in state["tainted"]:
                at = datetime.now(UTC).isoformat(timespec="seconds")
                state["tainted"][str(version)] = {"reason": reason, "at": at}
                self._write_state(directory, state)
                self._log(directory, "taint", version, kind=target.kind, reason=reason)
            _erase_weights(target.path)
        return self.get(scope_key, version)

    def taint_trained_on(
        self, ids: set[str], scope_keys: Sequence[str], reason: str
    ) -> builtins.list[dict[str, Any]]:
        """Taint every version whose training data came from one of ``ids`` (its metadata's
        ``source_ids``; a version saved without them is tainted when its key is one of
        ``scope_keys``). Returns ``{"scope_key", "version", "kind", "was_serving"}`` for each
        (implements :class:`agentmem.erasure.TaintableAdapters`).

        The checkpoints that dead training runs left behind go too (:meth:`sweep_work`); a
        run still training is checked when it registers its adapter."""
        self.sweep_work()
        out: builtins.list[dict[str, Any]] = []
        for key in self.scopes():
            for number in self._versions(self._scope_dir(key)):
                try:
                    version = self.get(key, number)
                except (InvalidSettings, NotFound) as exc:  # a damaged state or metadata file
                    self._taint_unreadable(key, number, key in scope_keys, reason, exc)
                    continue
                sources = version.metadata.source_ids
                hit = bool(ids.intersection(sources)) if sources else key in scope_keys
                if not hit:
                    continue
                try:
                    serving = self.current(key, version.kind)
                except InvalidSettings:  # the one promoted is damaged, so it is not this one
                    serving = None
                was_serving = serving is not None and serving.version == version.version
                self.taint(key, version.version, reason)
                out.append(
                    {
                        "scope_key": key,
                        "version": version.version,
                        "kind": version.kind,
                        "was_serving": was_serving,
                    }
                )
        return out

    def _taint_unreadable(
        self, scope_key: str, version: int, in_scope: bool, reason: str, error: Exception
    ) -> None:
        """A forget meets a version whose files it cannot read, so it cannot tell what the
        version was trained on. Under a key of the forgotten scopes (or the shared one) it may
        hold the forgotten memories: its weights are erased and it is marked tainted where the
        state can still be written. Under another key it is left and logged: one scope's
        damaged file must not stop another scope's forget."""
        directory = self._scope_dir(scope_key)
        if not in_scope:
            log.warning(
                "this forget cannot check what adapter %s v%d was trained on: %s",
                scope_key,
                version,
                error,
            )
            return
        with self._lock(directory):
            _erase_weights(directory / f"v{version}")
            try:
                state = self._state(directory)
                at = datetime.now(UTC).isoformat(timespec="seconds")
                state["tainted"].setdefault(str(version), {"reason": reason, "at": at})
                self._write_state(directory, state)
            except InvalidSettings:
                pass  # nothing of this key serves until its state file is repaired anyway
        log.warning(
            "adapter %s v%d may hold the forgotten memories and cannot be checked, so its "
            "weights were erased (train the scope's adapter again): %s",
            scope_key,
            version,
            error,
        )

    # training work directories -------------------------------------------------------------

    @contextmanager
    def training_dir(self, prefix: str = "train-") -> Iterator[Path]:
        """A fresh directory under ``<root>/.work`` for one training run's files, removed when
        the run ends. The run holds a lock file beside it meanwhile, so a run killed before
        its cleanup leaves a directory that :meth:`sweep_work` knows to be dead (the lock is
        free once its process is gone); dead ones are swept first."""
        work = self.root / WORK_DIR
        work.mkdir(parents=True, exist_ok=True)
        self.sweep_work()
        path = work / f"{prefix}{uuid.uuid4().hex}"
        lock_file = work / f"{path.name}.lock"
        with FileLock(str(lock_file)):  # taken before the directory exists: never seen unlocked
            path.mkdir()
            try:
                yield path
            finally:
                shutil.rmtree(path, ignore_errors=True)
                lock_file.unlink(missing_ok=True)

    def sweep_work(self) -> builtins.list[Path]:
        """Remove the work directories of training runs that died before cleaning up (their
        lock is free): their checkpoints hold weights trained on a scope's memories and are
        never resumed (every run starts in a fresh directory). Returns those removed; one that
        cannot be removed is logged and left."""
        work = self.root / WORK_DIR
        if not work.is_dir():
            return []
        removed: builtins.list[Path] = []
        for path in sorted(p for p in work.iterdir() if p.is_dir()):
            lock_file = work / f"{path.name}.lock"
            lock = FileLock(str(lock_file), timeout=0)
            try:
                lock.acquire()
            except Timeout:
                continue  # a live run: it removes its own directory when it ends
            try:
                shutil.rmtree(path)
                lock_file.unlink(missing_ok=True)
                removed.append(path)
            except OSError as exc:
                log.warning("cannot remove the dead training run's files %s: %s", path, exc)
            finally:
                lock.release()
        return removed

    # internals ------------------------------------------------------------------------------

    def _scope_dir(self, scope_key: str) -> Path:
        return self.root / check_scope_key(scope_key)

    @staticmethod
    def _versions(directory: Path) -> builtins.list[int]:
        if not directory.is_dir():
            return []
        return sorted(
            int(m.group(1)) for d in directory.iterdir() if (m := _VERSION_DIR.match(d.name))
        )

    @staticmethod
    def _version(
        scope_key: str, directory: Path, number: int, state: dict[str, Any]
    ) -> AdapterVersion:
        path = directory / f"v{number}"
        try:
            metadata = AdapterMetadata.load(path)
        except NotFound as exc:  # a registered version lost it: not the caller's mistake
            kind = next((k for k in state["promoted"] if _serving(state, k) == number), None)
            fix = _fix(scope_key, kind or RETRIEVER_KIND, path, serving=kind is not None)
            raise InvalidSettings(
                f"registered adapter {path} has no {METADATA_FILE} (a bad copy or a full "
                f"disk?); {fix}"
            ) from exc
        promoted = _serving(state, metadata.kind) == number
        tainted = str(number) in state["tainted"]
        return AdapterVersion(scope_key, number, path, metadata, promoted, tainted)

    @staticmethod
    def _state(directory: Path) -> dict[str, Any]:
        path = directory / STATE_FILE
        if not path.is_file():
            return {"promoted": {}, "log": [], "tainted": {}}
        fix = (
            f"restore it from a backup, or remove {directory} and train the scope's adapters "
            "again (`agentmem adapters train`)"
        )
        try:
            state = json.loads(path.read_text())
        except ValueError as exc:
            raise InvalidSettings(
                f"adapter registry state {path} is unreadable: {exc}; {fix}"
            ) from exc
        if not isinstance(state, dict):
            raise InvalidSettings(
                f"adapter registry state {path} holds {type(state).__name__}, not a JSON object; "
                f"{fix}"
            )
        state.setdefault("promoted", {})
        state.setdefault("log", [])
        state.setdefault("tainted", {})
        promoted = state["promoted"]
        well_formed = (
            isinstance(promoted, dict)
            and all(
                isinstance(stack, builtins.list)
                and all(isinstance(v, int) and not isinstance(v, bool) for v in stack)
                for stack in promoted.values()
            )
            and isinstance(state["log"], builtins.list)
            and isinstance(state["tainted"], dict)
        )
        if not well_formed:
            raise InvalidSettings(
                f"adapter registry state {path} is damaged (expected 'promoted': kind -> list "
                f"of version numbers, 'tainted': an object, 'log': a list); {fix}"
            )
        return state

    @staticmethod
    def _write_state(directory: Path, state: dict[str, Any]) -> None:
        tmp = directory / f".{STATE_FILE}.{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        os.replace(tmp, directory / STATE_FILE)

    def _log(self, directory: Path, event: str, version: int, **details: Any) -> None:
        state = self._state(directory)
        at = datetime.now(UTC).isoformat(timespec="seconds")
        state["log"].append({"event": event, "version": version, "at": at, **details})
        self._write_state(directory, state)

    @staticmethod
    def _lock(directory: Path) -> FileLock:
        directory.mkdir(parents=True, exist_ok=True)
        return FileLock(str(directory / ".lock"))


def _erase_weights(path: Path) -> None:
    """Erase an adapter version's weights (every file but its metadata): they hold what was
    forgotten; the metadata (what it was, what it was trained on) stays for the record."""
    if not path.is_dir():
        return
    for item in path.iterdir():
        if item.is_dir():
            shutil.rmtree(item)
        elif item.name != METADATA_FILE:
            item.unlink()


def _serving(state: dict[str, Any], kind: str) -> int | None:
    """The version of ``kind`` that serves: the newest promoted one not tainted (a tainted
    adapter stops serving at once), or None."""
    stack = [v for v in state["promoted"].get(kind, []) if str(v) not in state["tainted"]]
    return stack[-1] if stack else None


def _fix(scope_key: str, kind: str, path: Path, *, serving: bool) -> str:
    """How to stop using the damaged registered version in ``path`` (a rollback only when it
    is the one serving: rolling back another would demote a sound one)."""
    flag = f" --kind {kind}" if kind != RETRIEVER_KIND else ""
    steps = [f"roll it back (`agentmem adapters rollback {scope_key}{flag}`)"] if serving else []
    steps += [f"remove {path}"] if path.exists() else []
    steps.append("train the scope's adapter again")
    return f"restore its files, or {', '.join(steps[:-1])}{' and ' if steps[1:] else ''}{steps[-1]}"


def _metric_key(metadata: AdapterMetadata) -> str:
    if metadata.kind == RECALL_KIND:
        return "eval_exact_match"
    k = metadata.hyperparameters.get("eval_k", 10)
    return f"eval_recall@{k}"


def _check_kind(kind: str) -> None:
    if kind not in ADAPTER_KINDS:
        raise ValidationError(
            f"unknown adapter kind {kind!r}; use one of {', '.join(ADAPTER_KINDS)}"
        )


__all__ = [
    "INCUMBENT_METRIC",
    "STATE_FILE",
    "WORK_DIR",
    "AdapterRegistry",
    "AdapterVersion",
    "Promotion",
]
