"""Experience and procedure records in the store: how they are encoded, found and changed.

Experiences are ``experience`` records (text: the task); procedures are ``procedural`` records
(text: the rule). Top-level metadata holds what filters need (``outcome``, ``reward``,
``task_family``, ``status``, ``procedure_type``, counters); the trajectory, reflection, spec and
evidence sit under one nested key. Every change to a procedure is a new version written through
:func:`agentmem.writing.update`, so its history shows how its support, success rate and status
moved; retiring a procedure invalidates it (kept, and listed with ``include_retired``).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np

from agentmem import writing
from agentmem.backends import Backends
from agentmem.errors import Conflict
from agentmem.experience.distil import (
    Lesson,
    counts_after_use,
    describe,
    failures_while_demoted_after,
    status_after,
)
from agentmem.experience.models import (
    EXPERIENCE_KEY,
    PROCEDURE_KEY,
    Outcome,
    Procedure,
    ProcedureStatus,
    Reflection,
    Step,
)
from agentmem.filters import Condition, FilterOp, parse_filters
from agentmem.indexing import vectors_for_texts
from agentmem.models import MemoryKind, MemoryRecord, Scope, ScopeSet, content_hash, utcnow
from agentmem.redaction import redact_json
from agentmem.stores import RecordQuery, WriteBatch
from agentmem.usefulness import ARCHIVED_KEY
from agentmem.vectors import VectorQuery
from agentmem.vectors.base import DENSE

ACTOR = "experience"
"""The actor named in the history of every change this module makes."""
MAX_EVIDENCE = 50
"""Experience ids kept as a procedure's evidence (the most recent; ``support`` counts all)."""
MAX_PROCEDURES_READ = 1000
MAX_REWRITES = 50
"""Attempts at one procedure's change under concurrent changes to it (see ``_rewrite``)."""
DISTILLED_KEY = "distilled_rules"
"""Key, in an experience's body, of the rule keys it was counted for: a procedure's evidence
keeps only the last ``MAX_EVIDENCE`` ids, so that alone cannot tell an older experience
counted already from a new one."""


# experiences ------------------------------------------------------------------------------


def experience_metadata(
    user_metadata: Mapping[str, Any],
    *,
    task_family: str,
    steps: Sequence[Step],
    outcome: Outcome,
    reward: float | None,
    feedback: str | None,
    reflection: Reflection,
    used: Mapping[str, Outcome],
    distilled: Sequence[str] = (),
) -> dict[str, Any]:
    """The metadata of an experience record (``distilled``: the rule keys of the lessons it
    was counted for, see :func:`learn`)."""
    meta: dict[str, Any] = {**user_metadata, "task_family": task_family, "outcome": outcome.value}
    if reward is not None:
        meta["reward"] = reward
    meta[EXPERIENCE_KEY] = {
        "steps": [s.model_dump(exclude_defaults=True) for s in steps],
        "feedback": feedback,
        "reflection": reflection.model_dump(),
        "used_procedures": {pid: v.value for pid, v in used.items()},
        DISTILLED_KEY: sorted(set(distilled)),
    }
    return meta


def distilled_rules(record: MemoryRecord) -> set[str]:
    """The rule keys an experience record was counted for already (see :func:`learn`)."""
    body = record.metadata.get(EXPERIENCE_KEY)
    keys = body.get(DISTILLED_KEY) if isinstance(body, dict) else None
    return {k for k in keys if isinstance(k, str)} if isinstance(keys, list) else set()


def mark_distilled(
    backends: Backends, record_id: str, keys: Collection[str]
) -> MemoryRecord | None:
    """Record on an experience that it was counted for the rules ``keys`` (its
    :func:`distilled_rules`); written only after :func:`learn` stored those counts, so a crash
    in between leaves the rules unmarked and ``distil_experiences`` counts them then (once: a
    procedure listing the experience in its evidence is not counted again). None: nothing new
    to mark."""

    def marked(record: MemoryRecord) -> tuple[dict[str, Any], bool] | None:
        done = distilled_rules(record)
        if set(keys) <= done:
            return None
        body = {**record.metadata[EXPERIENCE_KEY], DISTILLED_KEY: sorted(done | set(keys))}
        return {**record.metadata, EXPERIENCE_KEY: body}, False

    return _rewrite(backends, record_id, marked)


def task_vector(backends: Backends, task: str) -> np.ndarray:
    """The document vector of a task (from the embedding cache; cached when new), so a task
    is compared with stored tasks symmetrically, as document against document."""
    vectors, fresh = vectors_for_texts(backends, [task])
    if fresh:
        backends.store.apply(
            WriteBatch(embeddings=[(backends.embedder.name, h, v) for h, v in fresh])
        )
    return vectors[content_hash(task)]


def similar_experiences(
    backends: Backends,
    vector: np.ndarray,
    scope: Scope | ScopeSet,
    limit: int,
    *,
    include_archived: bool = True,
) -> list[tuple[MemoryRecord, float]]:
    """Stored experiences visible to ``scope``, most similar task first, with the cosine
    (without those archived, :data:`ARCHIVED_KEY`, unless ``include_archived``)."""
    conditions = () if include_archived else (Condition(ARCHIVED_KEY, FilterOp.NE, True),)
    query = VectorQuery(
        scope=scope,
        limit=limit,
        kinds=(MemoryKind.EXPERIENCE,),
        conditions=conditions,
        now=time.time(),
    )
    ranked = backends.index.search(vector, query, using=DENSE)
    records = {r.id: r for r in backends.store.get_many([i for i, _ in ranked], scope)}
    return [(records[i], float(score)) for i, score in ranked if i in records]


def assign_family(
    backends: Backends,
    similar: Sequence[tuple[MemoryRecord, float]],
    task: str,
    given: str | None,
) -> str:
    """The task family of a new experience: the one given, else that of the most similar
    stored experience at or above ``family_threshold``, else a new one named after the task."""
    if given:
        return given
    threshold = backends.settings.experience.family_threshold
    for record, similarity in similar:
        family = record.metadata.get("task_family")
        if similarity >= threshold and isinstance(family, str) and family:
            return family
    return f"auto:{content_hash(' '.join(task.lower().split()))[:12]}"


# procedures -------------------------------------------------------------------------------


def _query_procedures(
    backends: Backends,
    scope: Scope | ScopeSet,
    filters: dict[str, Any] | None = None,
    *,
    include_invalidated: bool = False,
    limit: int = MAX_PROCEDURES_READ,
) -> list[MemoryRecord]:
    records = backends.store.query(
        RecordQuery(
            scope=scope,
            kinds=(MemoryKind.PROCEDURAL,),
            conditions=parse_filters(filters),
            include_invalidated=include_invalidated,
            limit=limit,
        )
    )
    return [r for r in records if Procedure.is_procedure(r)]


def procedures_of(
    backends: Backends,
    scope: Scope | ScopeSet,
    families: Sequence[str] | None = None,
    *,
    include_retired: bool = False,
    limit: int = MAX_PROCEDURES_READ,
) -> list[Procedure]:
    """Distilled procedures visible to ``scope`` (of these task families, if given), without
    the archived ones (:func:`agentmem.usefulness.prune`) unless ``include_retired``, and
    without any whose metadata cannot be read (skipped with a logged warning)."""
    filters: dict[str, Any] = {} if include_retired else {ARCHIVED_KEY: {"$ne": True}}
    if families is not None:
        filters["task_family"] = {"$in": list(families)}
    if families is not None and not families:
        return []
    records = _query_procedures(
        backends, scope, filters or None, include_invalidated=include_retired, limit=limit
    )
    return [p for p in map(Procedure.read, records) if p is not None]


def has_procedures(backends: Backends, scope: Scope | ScopeSet) -> bool:
    """Whether any procedural record is visible to ``scope`` (a cheap check)."""
    records = backends.store.query(
        RecordQuery(scope=scope, kinds=(MemoryKind.PROCEDURAL,), limit=1)
    )
    return bool(records)


def _new_procedure(
    scope: Scope,
    lesson: Lesson,
    *,
    backends: Backends,
    family: str,
    example_task: str,
    experience_id: str,
    contradicts: list[str],
    revives: list[str],
) -> MemoryRecord:
    provenance: dict[str, Any] = {"source_ids": [experience_id], "extractor": "experience.distil"}
    if revives:
        provenance["revives"] = revives
    meta: dict[str, Any] = {
        "task_family": family,
        "procedure_type": lesson.type.value,
        "rule_key": lesson.key,
        "status": ProcedureStatus.ACTIVE.value,
        "support": 1,
        "successes": 0,
        "failures": 0,
        "partials": 0,
        PROCEDURE_KEY: {
            "spec": lesson.spec,
            # metadata is not redacted on write, the procedure's text (which quotes it) is
            "example_task": redact_json(example_task, backends.settings.redaction),
            "note": lesson.note,
            "evidence": [experience_id],
            "contradicts": contradicts,
        },
    }
    if lesson.action is not None:
        meta["action"] = lesson.action
    if lesson.conflict_key is not None:
        meta["conflict_key"] = lesson.conflict_key
    return writing.new_record(
        backends,
        scope,
        describe(lesson, example_task),
        kind=MemoryKind.PROCEDURAL,
        metadata=meta,
        provenance=provenance,
    )


def _rewrite(
    backends: Backends,
    record_id: str,
    change: Callable[[MemoryRecord], tuple[dict[str, Any], bool] | None],
) -> MemoryRecord | None:
    """Write a new version of a stored procedure (or experience) from its current one:
    ``change`` gives the new metadata and whether to invalidate it (None: nothing to write).
    The write is a compare-and-set on the version ``change`` was applied to, in the store
    itself (so it holds across processes sharing a PostgreSQL store): a concurrent change in
    between (:class:`Conflict`) makes it read the record again and apply ``change`` to that,
    so a change counts once and none is lost, and a caller never sees a Conflict after its
    experience was stored (a retry would store it twice)."""
    for attempt in range(MAX_REWRITES):
        current = writing.get_one(backends, record_id, None)
        new = change(current)
        if new is None:
            return None
        meta, retire = new
        try:
            return writing.update(
                backends,
                record_id,
                None,
                metadata=meta,
                invalidate=retire,
                actor=ACTOR,
                expected_version=current.version,  # compare-and-set on the version read
            )
        except Conflict:
            if attempt == MAX_REWRITES - 1:
                raise
            # Jittered backoff: contenders that lost together do not collide again in step.
            time.sleep(random.uniform(0, 0.002 * min(2**attempt, 64)))
    raise AssertionError("unreachable")


def _evidence(record: MemoryRecord) -> list[str]:
    body = record.metadata.get(PROCEDURE_KEY) or {}
    return list(body.get("evidence") or [])


def _with_body(record: MemoryRecord, **changes: Any) -> dict[str, Any]:
    meta = dict(record.metadata)
    body = dict(meta.get(PROCEDURE_KEY) or {})
    body.update(changes)
    meta[PROCEDURE_KEY] = body
    return meta


def learn(
    backends: Backends,
    scope: Scope,
    *,
    family: str,
    task: str,
    experience_id: str,
    lessons: Sequence[Lesson],
    counted: Collection[str] = (),
) -> list[Procedure]:
    """Store what one experience taught: a new procedure per new lesson, more support for a
    known one. A contradicting lesson is stored too, and both sides name each other. A retired
    procedure stays retired; a new experience that teaches the same rule again starts a new
    procedure (``provenance["revives"]`` names the retired one), with fresh use counters.
    Idempotent per experience: a lesson is skipped when a stored procedure of its rule lists
    the experience in its evidence, or when its rule key is in ``counted`` (the experience's
    :func:`distilled_rules`) and a procedure of that rule is stored (one forgotten since is
    learned again).

    One procedure per rule and scope, however many calls (threads, processes sharing a
    PostgreSQL store) learn it at once: a new procedure's id is derived from its scope, family,
    rule key and generation (:func:`procedure_id`), so the store's primary key refuses a
    second one (:class:`Conflict`); the loser reads again and supports the winner's."""
    touched: dict[str, Procedure] = {}
    for attempt in range(MAX_REWRITES):
        try:
            inserted = _learn_once(
                backends, scope, family, task, experience_id, lessons, counted, touched
            )
            return [*touched.values(), *inserted]
        except Conflict:
            if attempt == MAX_REWRITES - 1:
                raise
            time.sleep(random.uniform(0, 0.002 * min(2**attempt, 64)))
    raise AssertionError("unreachable")


_PROCEDURE_IDS = uuid.UUID("6d0b8e4a-2f6c-4c1e-9a57-3e8f1b2d7c90")


def procedure_id(scope: Scope, family: str, rule_key: str, generation: int) -> str:
    """The id of the procedure of a rule in a scope and task family: generation 0 is the
    first, each later one follows a retired, deleted or forgotten one (never reused)."""
    name = f"{sorted(scope.fields().items())}|{family}|{rule_key}|{generation}"
    return str(uuid.uuid5(_PROCEDURE_IDS, name))


def _free_id(backends: Backends, scope: Scope, family: str, rule_key: str) -> str:
    """The first id of the rule's procedure never stored; :class:`Conflict` when a live
    one turns up (another call created it since this one looked)."""
    for generation in range(10_000):
        pid = procedure_id(scope, family, rule_key, generation)
        found = backends.store.get_many([pid])
        if not found and writing.removed_ids(backends, [pid]):
            found = backends.store.get_many([pid])  # its history: deleted, or just written?
            if not found:
                continue  # deleted or forgotten: never brought back
        if not found:
            return pid
        if found[0].invalidated_at is None:
            raise Conflict(f"procedure {pid} of rule {rule_key} was created meanwhile; retry")
    raise Conflict(f"no free procedure id left for rule {rule_key}; retire fewer procedures")


def _learn_once(
    backends: Backends,
    scope: Scope,
    family: str,
    task: str,
    experience_id: str,
    lessons: Sequence[Lesson],
    counted: Collection[str],
    touched: dict[str, Procedure],
) -> list[Procedure]:
    """One attempt at :func:`learn`: the procedures it created (those it supported go into
    ``touched``); :class:`Conflict` when another call created one of them meanwhile."""
    inserts: list[MemoryRecord] = []
    links: dict[str, list[str]] = {}  # stored procedure id -> new procedures contradicting it
    same_family = {"task_family": family}
    for lesson in {lesson.key: lesson for lesson in lessons}.values():
        known = [
            r
            for r in _query_procedures(
                backends, scope, {**same_family, "rule_key": lesson.key}, include_invalidated=True
            )
            if r.scope == scope
        ]
        if (known and lesson.key in counted) or any(experience_id in _evidence(r) for r in known):
            continue  # this experience was counted already
        live = [r for r in known if r.invalidated_at is None]
        if live:
            updated = _rewrite(backends, live[0].id, lambda r: _supported(r, experience_id))
            if updated is not None:
                touched[updated.id] = Procedure.from_record(updated)
            continue
        rivals: list[MemoryRecord] = []
        if lesson.conflict_key is not None:
            stored = [
                r
                for key in lesson.conflict_keys
                for r in _query_procedures(backends, scope, {**same_family, "conflict_key": key})
            ]
            rivals = [r for r in stored if r.scope == scope]
            rivals += [r for r in inserts if r.metadata.get("conflict_key") == lesson.conflict_key]
        record = _new_procedure(
            scope,
            lesson,
            backends=backends,
            family=family,
            example_task=task,
            experience_id=experience_id,
            contradicts=[r.id for r in rivals],
            revives=[r.id for r in known],  # retired ones: learned again, it starts afresh
        )
        record.id = _free_id(backends, scope, family, lesson.key)
        for rival in rivals:
            if rival in inserts:  # not stored yet: link it in place
                rival.metadata[PROCEDURE_KEY]["contradicts"].append(record.id)
            else:
                links.setdefault(rival.id, []).append(record.id)
        inserts.append(record)
    # New procedures in one transaction (a duplicate id: Conflict, nothing stored); then the
    # stored ones they contradict name them back.
    writing.insert(backends, inserts, actor=ACTOR)
    for rival_id, new_ids in links.items():
        _rewrite(backends, rival_id, partial(_contradicted, new_ids=new_ids))
    return [Procedure.from_record(r) for r in inserts]


def _supported(record: MemoryRecord, experience_id: str) -> tuple[dict[str, Any], bool] | None:
    """One more experience of support (None: it was counted already)."""
    evidence = _evidence(record)
    if experience_id in evidence:
        return None
    meta = _with_body(record, evidence=[*evidence, experience_id][-MAX_EVIDENCE:])
    meta["support"] = int(meta.get("support", 1)) + 1
    return meta, False


def _contradicted(record: MemoryRecord, new_ids: Sequence[str]) -> tuple[dict[str, Any], bool]:
    body = record.metadata.get(PROCEDURE_KEY) or {}
    return _with_body(record, contradicts=[*(body.get("contradicts") or []), *new_ids]), False


def report_uses(
    backends: Backends, used: Mapping[str, tuple[MemoryRecord, Outcome]]
) -> list[Procedure]:
    """Count one use of each procedure with how it went, update last use and status; retire
    (invalidate) a demoted procedure that keeps failing."""
    config = backends.settings.experience
    now = utcnow().isoformat()

    def used_once(current: MemoryRecord, verdict: Outcome) -> tuple[dict[str, Any], bool]:
        proc = Procedure.from_record(current)
        successes, failures, partials = counts_after_use(
            proc.successes, proc.failures, proc.partials, verdict
        )
        demoted = failures_while_demoted_after(proc.status, proc.failures_while_demoted, verdict)
        status = status_after(
            proc.status, successes, failures, partials, config, failures_while_demoted=demoted
        )
        meta = dict(current.metadata)
        uses = successes + failures + partials
        meta.update(
            successes=successes,
            failures=failures,
            partials=partials,
            success_rate=round((successes + 0.5 * partials) / uses, 6),
            last_used=now,
            status=status.value,
            failures_while_demoted=demoted if status is not ProcedureStatus.ACTIVE else 0,
        )
        return meta, status is ProcedureStatus.RETIRED and current.invalidated_at is None

    updated: list[Procedure] = []
    for record, verdict in used.values():
        new = _rewrite(backends, record.id, partial(used_once, verdict=verdict))
        if new is not None:
            updated.append(Procedure.from_record(new))
    return updated


__all__ = [
    "ACTOR",
    "DISTILLED_KEY",
    "MAX_EVIDENCE",
    "assign_family",
    "distilled_rules",
    "experience_metadata",
    "has_procedures",
    "learn",
    "mark_distilled",
    "procedure_id",
    "procedures_of",
    "report_uses",
    "similar_experiences",
    "task_vector",
]
