"""Learning from outcomes: feedback on memories, learned utility in recall, and pruning.

Every ``search`` / ``context`` call remembers what it showed under a **retrieval id** (on each
:class:`~agentmem.models.SearchHit` and on the :class:`~agentmem.context.Context`). An agent
that finishes a task reports how it went with ``mem.feedback(retrieval_id, reward)`` (or with
the memory ids it used), and each memory credited moves its **utility** ``Q`` toward the reward:

    Q <- Q + alpha * (r - Q),   n <- n + 1

one atomic SQL update per memory in the system of record, logged in the memory's history
(event ``FEEDBACK``). Feedback is idempotent by its id (the retrieval id by default).

Retrieval stays relevance-first: candidates come from the channels and RRF as before; then,
where any candidate has been rewarded, they are re-ranked by

    (1 - w) * relevance / best relevance + w * n / (n + k) * Q

(``Settings.utility``). With no feedback on any candidate nothing changes, scores included.

:func:`prune` (called by consolidation, or by hand) archives memories that keep being retrieved
without helping (never deletes; :func:`restore` brings one back) and raises the importance of
procedures and experiences that keep helping, returning each change with its evidence.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol

from pydantic import BaseModel, Field

from agentmem import writing
from agentmem.backends import Backends
from agentmem.errors import LIST_IDS, NotFound, ValidationError
from agentmem.fusion import Candidate
from agentmem.models import (
    ChannelScore,
    MemoryKind,
    MemoryRecord,
    Scope,
    ScopeSet,
    new_id,
    scope_members,
    scope_text,
    utcnow,
)
from agentmem.redaction import redact
from agentmem.stores import UtilityLedger, require
from agentmem.stores._utility_sql import FeedbackWrite, RetrievalRow, UtilityRow, ledger_key
from agentmem.validation import check_text, show

ARCHIVED_KEY = "archived"
"""Metadata key of an archived memory (by ``prune`` here, or by consolidation's decay): search,
context and experience recall leave such memories out unless the filters name the key."""
ARCHIVED_AT_KEY = "archived_at"
"""Metadata key: when the memory was archived (ISO time), as consolidation writes it."""
ARCHIVED_BY_KEY = "archived_by"
"""Metadata key: what archived the memory (``"utility"`` for :func:`prune`)."""
PROMOTED_AT_N_KEY = "utility_promoted_at_n"
"""Metadata key: the reward count at the last promotion, so a pass never promotes twice on the
same evidence."""
UTILITY_CHANNEL = "utility"
"""Name of the utility signal in a hit's ``channels`` (rank among rewarded candidates, Q)."""

_MAX_ID = 256


class HasBackends(Protocol):
    """Anything holding backends (a :class:`~agentmem.Memory`)."""

    @property
    def backends(self) -> Backends: ...


class UtilityUpdate(BaseModel):
    """How one reward moved one memory's utility."""

    memory_id: str
    old_utility: float
    new_utility: float
    count: int


class FeedbackResult(BaseModel):
    """What :meth:`Memory.feedback` did: ``applied`` is False for a duplicate (nothing
    changed); ``updates`` lists each memory credited."""

    feedback_id: str
    retrieval_id: str | None = None
    reward: float
    applied: bool
    updates: list[UtilityUpdate] = Field(default_factory=list)


class MemoryUtility(BaseModel):
    """A memory's learned utility: the estimate and how many rewards made it."""

    memory_id: str
    utility: float
    count: int


class PruneChange(BaseModel):
    """One change :func:`prune` made (or would make, dry run), with its evidence."""

    memory_id: str
    kind: MemoryKind
    action: str
    """``archive`` or ``promote``."""
    old_importance: float
    new_importance: float
    utility: float
    count: int
    reason: str


class PruneReport(BaseModel):
    """Everything one :func:`prune` pass changed, for the consolidation ledger."""

    archived: list[PruneChange] = Field(default_factory=list)
    promoted: list[PruneChange] = Field(default_factory=list)
    examined: int = 0
    dry_run: bool = False

    @property
    def changes(self) -> list[PruneChange]:
        """Archived then promoted."""
        return [*self.archived, *self.promoted]


def _backends(target: Backends | HasBackends) -> Backends:
    return target if isinstance(target, Backends) else target.backends


def _enabled_store(backends: Backends) -> bool:
    return isinstance(backends.store, UtilityLedger)


def _ledger(backends: Backends) -> UtilityLedger:
    return require(backends.store, UtilityLedger, "learned utility")


# retrieval side ----------------------------------------------------------------------------


def remember(backends: Backends, scope: Scope | ScopeSet, ids: Sequence[str]) -> str | None:
    """Record that a retrieval showed ``ids`` to ``scope``; returns its new retrieval id (None
    when retrievals are not recorded: ``Settings.utility.record_retrievals`` off, or a store
    without utility)."""
    if not backends.settings.utility.record_retrievals or not _enabled_store(backends):
        return None
    rid = new_id()
    backends.recalls.record_retrieval(rid, scope_text(scope), list(ids), time.time())
    return rid


def mix(
    backends: Backends,
    scores: Mapping[str, float],
    rows: Mapping[str, UtilityRow] | None = None,
) -> dict[str, float] | None:
    """Relevance ``scores`` (higher is better) mixed with learned utility:
    ``(1 - w) * score / best + w * n / (n + k) * Q`` (a memory never rewarded adds nothing).
    None when utility is off or no memory named has been rewarded: keep the scores as they
    are. ``rows``: the utilities, when the caller has read them already."""
    config = backends.settings.utility
    if not scores or not config.enabled or not _enabled_store(backends):
        return None
    if rows is None:
        rows = _ledger(backends).utilities(list(scores))
    if not any(r.count > 0 for r in rows.values()):
        return None
    best = max(scores.values())
    best = best if best > 0 else 1.0
    w = config.weight
    out: dict[str, float] = {}
    for mid, score in scores.items():
        row = rows.get(mid)
        bonus = 0.0
        if row is not None and row.count > 0:
            bonus = row.count / (row.count + config.confidence_k) * row.utility
        out[mid] = (1 - w) * score / best + w * bonus
    return out


def wants_utilities(backends: Backends) -> bool:
    """Whether :func:`rerank` reads utility rows (utility on, in a store that keeps them)."""
    return backends.settings.utility.enabled and _enabled_store(backends)


def rerank(
    backends: Backends,
    candidates: Sequence[Candidate],
    read: tuple[Collection[str], Mapping[str, UtilityRow]] | None = None,
) -> list[Candidate]:
    """Candidates (best first) re-ranked by :func:`mix`, each rewarded one explained by a
    ``utility`` channel (its rank among the rewarded, and Q); the same list, unchanged, when
    utility is off or no candidate has been rewarded. ``read``: ids whose utility rows the
    caller has read already, and those rows (the others are read here)."""
    if not candidates or not wants_utilities(backends):
        return list(candidates)
    rows = _utilities(backends, [c[0] for c in candidates], read)
    mixed = mix(backends, {c[0]: c[1] for c in candidates}, rows)
    if mixed is None:
        return list(candidates)
    rated = sorted(rows.values(), key=lambda r: (-r.utility, r.memory_id))
    rank = {r.memory_id: i for i, r in enumerate(rated, start=1)}
    order = {c[0]: i for i, c in enumerate(candidates)}
    out: list[Candidate] = []
    for mid, _, channels in candidates:
        row = rows.get(mid)
        if row is not None and row.count > 0:
            channels = {
                **channels,
                UTILITY_CHANNEL: ChannelScore(rank=rank[mid], score=row.utility),
            }
        out.append((mid, mixed[mid], channels))
    out.sort(key=lambda c: (-c[1], order[c[0]]))
    return out


def _utilities(
    backends: Backends,
    ids: Sequence[str],
    read: tuple[Collection[str], Mapping[str, UtilityRow]] | None,
) -> dict[str, UtilityRow]:
    """The utility rows of ``ids``: from ``read`` where it covers them, the rest from the
    ledger."""
    if read is None:
        return _ledger(backends).utilities(ids)
    covered, known = read
    rows = {i: known[i] for i in ids if i in known}
    missing = [i for i in ids if i not in covered]
    if missing:
        rows.update(_ledger(backends).utilities(missing))
    return rows


# feedback ----------------------------------------------------------------------------------


def check_reward(backends: Backends, reward: Any) -> float:
    """A reward within ``Settings.utility.reward_range``, as a float."""
    low, high = backends.settings.utility.reward_range
    if isinstance(reward, bool) or not isinstance(reward, int | float):
        raise ValidationError(
            f"reward must be a number in [{low}, {high}], got {type(reward).__name__}"
        )
    try:
        value = float(reward)
    except OverflowError:  # an int past the float range is outside any declared range
        value = math.inf
    if not math.isfinite(value) or not low <= value <= high:
        raise ValidationError(
            f"reward {show(reward)} is outside the declared range [{low}, {high}] "
            "(Settings.utility.reward_range); e.g. 1.0 for success, -1.0 for failure"
        )
    return value


def _check_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_ID:
        raise ValidationError(f"{what} must be a non-empty string of at most {_MAX_ID} characters")
    return value


def _task_text(backends: Backends, task: Any) -> str | None:
    """A feedback's checked ``task=`` text, redacted like every other text a write stores (it
    goes into the feedback table and the FEEDBACK history entry)."""
    if task is None:
        return None
    text = check_text(task, max_chars=backends.settings.max_text_chars)
    return redact(text, backends.settings.redaction).text


def feedback(
    backends: Backends,
    scope: Scope | ScopeSet,
    target: str | Sequence[str],
    reward: Any,
    *,
    task: Any = None,
    feedback_id: Any = None,
) -> FeedbackResult:
    """Credit ``reward`` to what a retrieval showed (``target`` a retrieval id) or to the
    memories named (``target`` a list of memory ids), as seen from ``scope``.

    Idempotent by ``feedback_id`` (default: the retrieval id; a new id for a list of memory
    ids): a repeat changes nothing and returns ``applied=False``. An unknown retrieval id or
    memory id raises :class:`~agentmem.errors.NotFound`, and so does one of another scope (a
    memory outside ``scope``, a retrieval another scope made), a reward outside the declared
    range :class:`~agentmem.errors.ValidationError`; none of them changes anything."""
    if not _enabled_store(backends):
        raise ValidationError(
            f"{type(backends.store).__name__} keeps no learned utility; use the SQLite or "
            "PostgreSQL store"
        )
    config = backends.settings.utility
    value = check_reward(backends, reward)
    task_text = _task_text(backends, task)
    retrieval_id: str | None = None
    if isinstance(target, str):
        retrieval_id = _check_id(target, "retrieval_id")
        shown = _shown(backends, retrieval_id)
        if shown is None:
            raise NotFound(
                f"no retrieval with id {retrieval_id!r}; pass the retrieval_id of a search hit "
                "or context, or a list of memory ids"
            )
        if not _made_by(scope, shown.scope):
            raise NotFound(_foreign(retrieval_id, scope))
        ids = list(shown.memory_ids)
    else:
        if not isinstance(target, Sequence) or not target:
            raise ValidationError(
                "feedback needs a retrieval id (str) or a non-empty list of memory ids"
            )
        ids = list(dict.fromkeys(_check_id(i, "memory id") for i in target))
    fid = _check_id(feedback_id, "feedback_id") if feedback_id is not None else None
    records = _visible(backends, scope, ids, retrieval_id=retrieval_id)
    reader = scope_text(scope)  # never str(scope): two scopes can print the same
    fb = FeedbackWrite(
        feedback_id=fid or retrieval_id or new_id(),
        # A caller's id is theirs within their scope: another scope using the same id neither
        # blocks their feedback nor learns that it was used. Retrieval ids are unique already.
        ledger_key=None if fid is None else ledger_key(reader, fid),
        retrieval_id=retrieval_id,
        scope=reader,
        records=tuple(records),
        reward=value,
        task=task_text,
        learning_rate=config.learning_rate,
        prior=config.prior,
        at=time.time(),
    )
    changes = _ledger(backends).apply_feedback(fb)
    return FeedbackResult(
        feedback_id=fb.feedback_id,
        retrieval_id=retrieval_id,
        reward=value,
        applied=changes is not None,
        updates=[
            UtilityUpdate(
                memory_id=c.memory_id,
                old_utility=c.old_utility,
                new_utility=c.new_utility,
                count=c.count,
            )
            for c in changes or ()
        ],
    )


def _shown(backends: Backends, retrieval_id: str) -> RetrievalRow | None:
    """The retrieval ``retrieval_id``. This process's pending retrieval records are written
    first; one another process may still hold (written behind within its
    ``retrieval.recall_flush_s``) is waited for once before it counts as unknown."""
    backends.recalls.flush()
    ledger = _ledger(backends)
    shown = ledger.retrieval(retrieval_id)
    wait = backends.settings.retrieval.recall_flush_s
    if shown is None and wait > 0:
        time.sleep(wait + _FLUSH_MARGIN_S)
        shown = ledger.retrieval(retrieval_id)
    return shown


_FLUSH_MARGIN_S = 0.1
"""Beyond another process's flush interval: its batch's own transaction time."""


def _visible(
    backends: Backends, scope: Scope | ScopeSet, ids: list[str], *, retrieval_id: str | None
) -> list[MemoryRecord]:
    """The records ``ids`` as ``scope`` sees them. A memory in another scope is as unknown
    (a scope never learns that another scope's ids exist): refused when the caller named it,
    and a retrieval that showed one is another scope's retrieval; a memory deleted since the
    retrieval showed it is skipped."""
    visible = {r.id: r for r in backends.store.get_many(ids, scope)}
    missing = [i for i in ids if i not in visible]
    if missing and retrieval_id is None:
        raise NotFound(f"no memory with id {missing[0]!r} in scope {scope}; {LIST_IDS}")
    if missing and backends.store.get_many(missing):
        raise NotFound(_foreign(retrieval_id, scope))
    return [visible[i] for i in ids if i in visible]


def _foreign(retrieval_id: str | None, scope: Scope | ScopeSet) -> str:
    return (
        f"no retrieval with id {retrieval_id!r} in scope {scope}; pass the retrieval_id "
        "of a search hit or context made in this scope, or a list of memory ids"
    )


def _made_by(scope: Scope | ScopeSet, shown: str) -> bool:
    """Whether a retrieval read in scope ``shown`` (its :func:`~agentmem.models.scope_text`)
    was made by the caller reading in ``scope``: the same scope, or (for a caller that names
    no thread) that scope in one of its threads. Another agent, a team mate or the user above
    an agent made it otherwise, even where the memories it showed are visible to the
    caller."""
    if shown == scope_text(scope):
        return True
    members = scope_members(scope)
    if any(m.thread_id is not None for m in members):
        return False
    is_set = isinstance(scope, ScopeSet)
    for thread in _threads_named(scope, shown):
        threaded = [m.model_copy(update={"thread_id": thread}) for m in members]
        if scope_text(ScopeSet.of(*threaded) if is_set else threaded[0]) == shown:
            return True
    return False


def _threads_named(scope: Scope | ScopeSet, shown: str) -> list[str]:
    """The thread ids ``shown`` may name for ``scope`` in a thread (candidates: the caller
    checks each by writing the threaded scope's text again)."""
    if shown.startswith(("{", "[")):  # scope_text's JSON form
        try:
            parsed = json.loads(shown)
        except ValueError:
            return []
        first = parsed[0] if isinstance(parsed, list) and parsed else parsed
        thread = first.get("thread_id") if isinstance(first, dict) else None
        return [thread] if isinstance(thread, str) else []
    is_set = isinstance(scope, ScopeSet)
    prefix = f"{'(' if is_set else ''}{scope_members(scope)[0]},thread_id="
    if not shown.startswith(prefix):
        return []
    rest = shown[len(prefix) :]
    return [rest[:i] for i, c in enumerate(rest) if c == ")"] if is_set else [rest]


def utilities(
    target: Backends | HasBackends, ids: Sequence[str], scope: Scope | ScopeSet | None = None
) -> dict[str, MemoryUtility]:
    """The learned utility of these memories (those never rewarded are absent), limited to
    the memories ``scope`` may read when given."""
    backends = _backends(target)
    if not _enabled_store(backends):
        return {}
    wanted = list(ids)
    if scope is not None:
        wanted = [r.id for r in backends.store.get_many(wanted, scope)]
    return {
        mid: MemoryUtility(memory_id=mid, utility=row.utility, count=row.count)
        for mid, row in _ledger(backends).utilities(wanted).items()
    }


# pruning and promotion ---------------------------------------------------------------------


def prune(
    target: Backends | HasBackends,
    scope: Scope | ScopeSet | None = None,
    *,
    dry_run: bool = False,
) -> PruneReport:
    """Archive memories retrieved at least ``min_count`` times whose utility stayed below
    ``archive_below`` (metadata ``archived``; excluded from search; importance lowered), and
    raise the importance of procedures and experiences whose utility is above
    ``promote_above``. Every change is a new version with history (actor ``utility``);
    nothing is deleted. ``scope`` limits the pass (None: every scope)."""
    backends = _backends(target)
    report = PruneReport(dry_run=dry_run)
    if not _enabled_store(backends):
        return report
    config = backends.settings.utility
    rows = {r.memory_id: r for r in _ledger(backends).rated_utilities(config.min_count)}
    if not rows:
        return report
    records = backends.store.get_many(list(rows), scope)
    report.examined = len(records)
    for record in sorted(records, key=lambda r: r.id):
        if record.invalidated_at is not None or record.metadata.get(ARCHIVED_KEY) is True:
            continue
        change = _decide(record, rows[record.id], config)
        if change is None:
            continue
        (report.archived if change.action == "archive" else report.promoted).append(change)
        if not dry_run:
            _apply(backends, record, change)
    return report


def _decide(record: MemoryRecord, row: UtilityRow, config: Any) -> PruneChange | None:
    step = config.importance_step
    if row.utility < config.archive_below:
        return PruneChange(
            memory_id=record.id,
            kind=record.kind,
            action="archive",
            old_importance=record.importance,
            new_importance=max(0.0, record.importance - step),
            utility=row.utility,
            count=row.count,
            reason=f"retrieved and rewarded {row.count} times, utility {row.utility:.3f} "
            f"below {config.archive_below}",
        )
    promotable = record.kind in (MemoryKind.PROCEDURAL, MemoryKind.EXPERIENCE)
    last = record.metadata.get(PROMOTED_AT_N_KEY)
    fresh = not isinstance(last, int) or row.count > last
    if promotable and fresh and row.utility > config.promote_above and record.importance < 1:
        return PruneChange(
            memory_id=record.id,
            kind=record.kind,
            action="promote",
            old_importance=record.importance,
            new_importance=min(1.0, record.importance + step),
            utility=row.utility,
            count=row.count,
            reason=f"rewarded {row.count} times, utility {row.utility:.3f} above "
            f"{config.promote_above}",
        )
    return None


def _apply(backends: Backends, record: MemoryRecord, change: PruneChange) -> None:
    metadata = dict(record.metadata)
    if change.action == "archive":
        metadata.update(
            {
                ARCHIVED_KEY: True,
                ARCHIVED_AT_KEY: utcnow().isoformat(),
                ARCHIVED_BY_KEY: "utility",
            }
        )
    else:
        metadata[PROMOTED_AT_N_KEY] = change.count
    writing.update(
        backends,
        record.id,
        record.scope,
        metadata=metadata,
        importance=change.new_importance,
        actor="utility",
    )


def restore(
    target: Backends | HasBackends, memory_id: str, scope: Scope | None = None
) -> MemoryRecord:
    """Bring back a memory :func:`prune` (or consolidation) archived: a new version without
    the archive marks, found by search again."""
    backends = _backends(target)
    record = writing.get_one(backends, memory_id, scope)
    if record.metadata.get(ARCHIVED_KEY) is not True:
        return record
    metadata = {
        k: v
        for k, v in record.metadata.items()
        if k not in (ARCHIVED_KEY, ARCHIVED_AT_KEY, ARCHIVED_BY_KEY)
    }
    return writing.update(backends, memory_id, scope, metadata=metadata, actor="utility")


__all__ = [
    "ARCHIVED_AT_KEY",
    "ARCHIVED_BY_KEY",
    "ARCHIVED_KEY",
    "PROMOTED_AT_N_KEY",
    "UTILITY_CHANNEL",
    "FeedbackResult",
    "MemoryUtility",
    "PruneChange",
    "PruneReport",
    "UtilityUpdate",
    "check_reward",
    "feedback",
    "mix",
    "prune",
    "remember",
    "rerank",
    "restore",
    "utilities",
]
