"""The experience lifecycle behind :class:`~agentmem.Memory`: record, recall, list, and the
procedures :func:`agentmem.context.build` puts in a prompt.

``record_experience`` validates everything first (a bad trajectory, outcome, reward or
procedure id raises and writes nothing), stores the experience with the rules' reflection
(so it is durable before any LLM is called), replaces the reflection with the LLM's when one is
configured, counts the reported uses of procedures, distils the trajectory into procedures,
and only then marks the experience as counted for those rules (so ``distil_experiences``
repairs a distillation a crash interrupted).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from agentmem import usefulness, writing
from agentmem.backends import Backends
from agentmem.errors import InvalidExperience, InvalidMetadata, NotFound, ValidationError
from agentmem.experience import store
from agentmem.experience.distil import extract_lessons, procedure_score, rank_key, winners
from agentmem.experience.models import (
    RESERVED_EXPERIENCE_KEYS,
    Experience,
    ExperienceAdvice,
    ExperienceMatch,
    ExperienceResult,
    Outcome,
    Procedure,
    ProcedureMatch,
    ProcedureStatus,
    Reflection,
    Step,
    check_family,
    check_reward,
    parse_steps,
    truncate_step,
)
from agentmem.experience.reflect import Completion, reflect, rules_reflection
from agentmem.indexing import vectors_for_texts
from agentmem.models import (
    ChannelScore,
    MemoryKind,
    MemoryRecord,
    Scope,
    ScopeSet,
    SearchHit,
    content_hash,
    nesting_exceeds,
    utcnow,
)
from agentmem.redaction import redact_json
from agentmem.settings import Settings
from agentmem.stores import RecordQuery
from agentmem.validation import check_k, check_metadata, check_text

log = logging.getLogger(__name__)

CONTEXT_CHANNEL = "procedures"
"""Channel name on the context hits of applicable procedures."""


# input checks -----------------------------------------------------------------------------


def check_used(used: Any, outcome: Outcome) -> dict[str, Outcome]:
    """Reported procedure uses as ``{id: how it went}``: a list of ids (each went as the
    experience's outcome) or a dict of id to True (helped), False (did not) or an outcome."""
    if used is None:
        return {}
    example = "e.g. used_procedures=[p.id] or {p.id: True}"
    if isinstance(used, str | bytes) or not isinstance(used, Sequence | Mapping | set):
        raise InvalidExperience(
            f"used_procedures must be a list of procedure ids or a dict of id to True/False, "
            f"got {type(used).__name__}; {example}"
        )
    items = used.items() if isinstance(used, Mapping) else ((i, None) for i in used)
    verdicts: dict[str, Outcome] = {}
    for pid, verdict in items:
        if not isinstance(pid, str) or not pid:
            raise InvalidExperience(f"procedure ids are non-empty strings, got {pid!r}; {example}")
        if verdict is None:
            verdicts[pid] = outcome
        elif isinstance(verdict, bool):
            verdicts[pid] = Outcome.SUCCESS if verdict else Outcome.FAILURE
        else:
            verdicts[pid] = Outcome.parse(verdict)
    return verdicts


def _user_metadata(metadata: Any) -> dict[str, Any]:
    meta = check_metadata(metadata)
    reserved = sorted(RESERVED_EXPERIENCE_KEYS & set(meta))
    if reserved:
        raise InvalidMetadata(
            f"metadata keys {reserved} are reserved for experiences; pass the outcome and "
            "reward as arguments and rename the other keys"
        )
    if meta.get("task_family") is not None:  # None: found by similarity
        check_family(meta["task_family"])
    return meta


def _load_used(
    backends: Backends, scope: Scope, verdicts: Mapping[str, Outcome]
) -> dict[str, tuple[MemoryRecord, Outcome]]:
    found = {r.id: r for r in backends.store.get_many(list(verdicts), scope)}
    used: dict[str, tuple[MemoryRecord, Outcome]] = {}
    for pid, verdict in verdicts.items():
        record = found.get(pid)
        if record is None:
            raise NotFound(
                f"no procedure with id {pid!r} in scope {scope}; pass ids from "
                "recall_experience(...).procedures or procedures(...)"
            )
        if record.kind is not MemoryKind.PROCEDURAL or not Procedure.is_procedure(record):
            raise InvalidExperience(
                f"memory {pid!r} is a {record.kind.value} memory, not a distilled procedure; "
                "used_procedures takes ids of procedures from recall_experience(...)"
            )
        used[pid] = (record, verdict)
    return used


# record -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Attempt:
    """A validated ``record_experience`` call, ready to store."""

    task: str
    steps: list[Step]
    outcome: Outcome
    reward: float | None
    feedback: str | None
    metadata: dict[str, Any]
    used: dict[str, tuple[MemoryRecord, Outcome]]

    def record_metadata(
        self, family: str, reflection: Reflection, distilled: Sequence[str]
    ) -> dict[str, Any]:
        return store.experience_metadata(
            self.metadata,
            task_family=family,
            steps=self.steps,
            outcome=self.outcome,
            reward=self.reward,
            feedback=self.feedback,
            reflection=reflection,
            used={pid: verdict for pid, (_, verdict) in self.used.items()},
            distilled=distilled,
        )


def _check_attempt(
    backends: Backends,
    scope: Scope,
    task: Any,
    steps: Any,
    outcome: Any,
    reward: Any,
    feedback: Any,
    metadata: Any,
    used_procedures: Any,
) -> _Attempt:
    settings = backends.settings
    config = settings.experience
    result = Outcome.parse(outcome)
    parsed = parse_steps(steps, max_steps=config.max_steps, max_chars=config.max_observation_chars)
    # The task is redacted as every memory's text is; the steps and the feedback are kept in the
    # record's metadata, so they are redacted here (a no-op when redaction is off).
    private = settings.redaction
    return _Attempt(
        task=check_text(task, max_chars=settings.max_text_chars, what="task"),
        steps=[Step.model_validate(redact_json(s.model_dump(), private)) for s in parsed]
        if private.enabled
        else parsed,
        outcome=result,
        reward=check_reward(reward, config.reward_range),
        feedback=None
        if feedback is None
        else redact_json(
            check_text(feedback, max_chars=settings.max_text_chars, what="feedback"), private
        ),
        metadata=_user_metadata(metadata),
        used=_load_used(backends, scope, check_used(used_procedures, result)),
    )


MIN_KEPT_CHARS = 100
"""Shortest an observation, thought or error is cut to so that a trajectory fits its record."""
_LEVELS_ABOVE_ARGS = 4
"""Levels of an experience's metadata around a step's args: metadata, experience, steps, step."""


def _json_size(meta: Mapping[str, Any]) -> int:
    """Bytes of ``meta`` as UTF-8 JSON, as the store's metadata check counts them (0 for a
    value it refuses for another reason, which it then reports itself)."""
    try:
        return len(json.dumps(meta, allow_nan=False, ensure_ascii=False).encode("utf-8"))
    except (TypeError, ValueError):
        return 0


def _fitted(settings: Settings, attempt: _Attempt, family: str) -> _Attempt:
    """``attempt`` with its steps' observations, thoughts and errors cut to the longest length
    (at most ``max_observation_chars``, at least :data:`MIN_KEPT_CHARS`) at which the
    experience's metadata fits ``max_metadata_bytes``; :class:`InvalidExperience` saying what
    to change when args nest too deeply or the trajectory does not fit even so."""
    depth = max(settings.max_metadata_depth - _LEVELS_ABOVE_ARGS, 1)
    for i, step in enumerate(attempt.steps):
        if nesting_exceeds(step.args, depth):
            raise InvalidExperience(
                f"step {i}'s args are nested more than {depth} levels deep, the most a "
                f"trajectory holds (AGENTMEM_MAX_METADATA_DEPTH {settings.max_metadata_depth} "
                f"less the {_LEVELS_ABOVE_ARGS} levels around args); flatten them (e.g. keys "
                "like 'a.b.c') or pass the deep part as JSON text"
            )
    limit = settings.max_metadata_bytes

    def cut(chars: int) -> _Attempt:
        return replace(attempt, steps=[truncate_step(s, chars) for s in attempt.steps])

    def size(chars: int) -> int:  # of the record's metadata, as record_experience writes it
        candidate = cut(chars)
        lessons = extract_lessons(candidate.steps, candidate.outcome)
        distilled = [lesson.key for lesson in lessons] if settings.experience.distil else []
        meta = candidate.record_metadata(family, _rules_reflection(candidate), distilled)
        return _json_size(meta)

    high = settings.experience.max_observation_chars
    if size(high) <= limit:
        return attempt
    low = min(MIN_KEPT_CHARS, high)
    if size(low) > limit:
        raise InvalidExperience(
            f"the trajectory of {len(attempt.steps)} steps does not fit in one experience: "
            f"with observations, thoughts and errors cut to {low} characters its record is "
            f"{size(low):,} bytes as JSON (steps, reflection, feedback and metadata), over "
            f"{limit:,} (AGENTMEM_MAX_METADATA_BYTES); record fewer steps (the part that "
            "matters) or smaller args, or raise the limit"
        )
    while low < high:  # the longest cut that fits
        middle = (low + high + 1) // 2
        low, high = (middle, high) if size(middle) <= limit else (low, middle - 1)
    return cut(low)


def _llm_reflected(
    settings: Settings,
    attempt: _Attempt,
    family: str,
    rules: Reflection,
    completion: Completion | None,
) -> tuple[Reflection, dict[str, Any]]:
    """The LLM's reflection and the metadata holding it; the rules' one (with its
    ``fallback_reason``) when the LLM failed, or when its answer would make metadata the store
    refuses: checked before the write, since the experience is stored already and
    ``record_experience`` must not fail after that."""
    reflection = reflect(
        settings,
        attempt.task,
        attempt.steps,
        attempt.outcome,
        feedback=attempt.feedback,
        reward=attempt.reward,
        completion=completion,
    )
    meta = attempt.record_metadata(family, reflection, ())
    try:
        writing.metadata_of(settings, meta)
    except ValidationError as exc:
        reason = f"the LLM's reflection cannot be stored ({str(exc).split('; ', 1)[0]})"
        log.warning("%s; kept the rules' reflection", reason)
        reflection = rules.model_copy(update={"fallback_reason": reason})
        meta = attempt.record_metadata(family, reflection, ())
    return reflection, meta


def _rules_reflection(attempt: _Attempt) -> Reflection:
    return rules_reflection(
        attempt.task,
        attempt.steps,
        attempt.outcome,
        feedback=attempt.feedback,
        reward=attempt.reward,
    )


def record_experience(
    backends: Backends,
    scope: Scope,
    task: Any,
    steps: Any,
    outcome: Any,
    *,
    reward: Any = None,
    feedback: Any = None,
    metadata: Any = None,
    used_procedures: Any = None,
    completion: Completion | None = None,
) -> ExperienceResult:
    """Store an attempt at a task with its reflection, count the uses of the procedures it
    followed, and distil it into procedures. Validates everything before writing anything."""
    settings = backends.settings
    attempt = _check_attempt(
        backends, scope, task, steps, outcome, reward, feedback, metadata, used_procedures
    )
    vector = store.task_vector(backends, attempt.task)
    similar = store.similar_experiences(backends, vector, scope, settings.experience.candidates)
    family = store.assign_family(
        backends, similar, attempt.task, attempt.metadata.get("task_family")
    )
    # Stored first with the rules' reflection, so an LLM failure or a crash loses nothing.
    attempt = _fitted(settings, attempt, family)
    reflection = _rules_reflection(attempt)
    lessons = extract_lessons(attempt.steps, attempt.outcome) if settings.experience.distil else []
    record = writing.new_record(
        backends,
        scope,
        attempt.task,
        kind=MemoryKind.EXPERIENCE,
        metadata=attempt.record_metadata(family, reflection, ()),
        event_time=utcnow(),
    )
    writing.insert(backends, [record], actor=store.ACTOR)
    if settings.llm_model:
        reflection, meta = _llm_reflected(settings, attempt, family, reflection, completion)
        record = writing.update(backends, record.id, None, metadata=meta, actor=store.ACTOR)
    updated = store.report_uses(backends, attempt.used)
    learned: list[Procedure] = []
    if settings.experience.distil:
        learned = store.learn(
            backends,
            scope,
            family=family,
            task=attempt.task,
            experience_id=record.id,
            lessons=lessons,
        )
        # Marked only now that the counts are stored: a crash before leaves it for the repair.
        keys = [lesson.key for lesson in lessons]
        record = store.mark_distilled(backends, record.id, keys) or record
    return ExperienceResult(
        experience=Experience.from_record(record),
        reflection=reflection,
        learned=learned,
        updated=updated,
    )


def distil_experiences(backends: Backends, scope: Scope, *, page: int = 500) -> list[Procedure]:
    """Distil again every stored experience in ``scope`` and the scopes within it (its
    threads, its agents), each into the experience's own scope (for experiences recorded with
    ``distil`` off, or after a crash between the two writes). Idempotent: an experience
    already counted for a rule (its ``distilled_rules``, or a procedure's evidence) does not
    count twice; each experience then records the rules it was counted for."""
    touched: dict[str, Procedure] = {}
    offset = 0
    while True:
        records = backends.store.query(
            RecordQuery(scope=scope, kinds=(MemoryKind.EXPERIENCE,), limit=page, offset=offset)
        )
        if not records:
            break
        offset += len(records)
        for record in records:  # each into its own scope, as record_experience would have
            for p in _distil_one(backends, record.scope, record):
                touched[p.id] = p
    return list(touched.values())


def _distil_one(backends: Backends, scope: Scope, record: MemoryRecord) -> list[Procedure]:
    """Distil one stored experience, then record on it the rules it was counted for."""
    experience = Experience.read(record)
    if experience is None:
        return []
    lessons = extract_lessons(experience.steps, experience.outcome)
    counted = store.distilled_rules(record)
    learned = store.learn(
        backends,
        scope,
        family=experience.task_family,
        task=experience.task,
        experience_id=experience.id,
        lessons=lessons,
        counted=counted,
    )
    store.mark_distilled(backends, record.id, [lesson.key for lesson in lessons])
    return learned


# recall -----------------------------------------------------------------------------------


def _experience_value(experience: Experience, reward_range: tuple[float, float]) -> float:
    value = experience.outcome.value_score
    if experience.reward is not None:
        low, high = reward_range
        value = 0.5 * value + 0.5 * (experience.reward - low) / (high - low)
    return value


def recall_experience(
    backends: Backends,
    task: Any,
    scope: Scope | ScopeSet,
    *,
    k: int = 5,
    task_family: str | None = None,
    include_retired: bool = False,
) -> ExperienceAdvice:
    """The ``k`` past experiences most like ``task`` (ranked by cosine similarity weighted by
    success: ``similarity * ((1 - w) + w * success)``, ``w = success_weight``, success 1 / 0.5 /
    0 for success / partial / failure, averaged with the reward scaled to [0, 1]) and every
    procedure of the task families the task belongs to (the families of stored experiences at
    or above ``family_threshold``, plus ``task_family`` if given), ranked by
    :func:`~agentmem.experience.distil.procedure_score`. Where any of them has learned utility
    (feedback), both lists are re-ranked by :func:`agentmem.usefulness.mix`; ``retrieval_id``
    records everything returned, for ``Memory.feedback``."""
    settings = backends.settings
    config = settings.experience
    task = check_text(task, max_chars=settings.max_text_chars, what="task")
    k = check_k(k, limit=1000)
    _check_family(task_family)
    vectors, _ = vectors_for_texts(backends, [task])  # a read: nothing is cached here
    similar = store.similar_experiences(
        backends,
        vectors[content_hash(task)],
        scope,
        max(config.candidates, k),
        include_archived=include_retired,
    )
    families: dict[str, float] = {}
    for record, similarity in similar:
        family = record.metadata.get("task_family")
        if isinstance(family, str) and similarity >= config.family_threshold:
            families[family] = max(families.get(family, 0.0), similarity)
    if task_family:
        families[task_family] = 1.0
    w = config.success_weight
    experiences = []
    for record, similarity in similar:
        experience = Experience.read(record)
        if experience is None:
            continue
        value = _experience_value(experience, config.reward_range)
        score = similarity * ((1 - w) + w * value)
        experiences.append(
            ExperienceMatch(experience=experience, similarity=similarity, score=score)
        )
    experiences.sort(key=lambda m: (-m.score, -m.similarity, m.experience.id))
    procedures = [
        ProcedureMatch(
            procedure=p,
            similarity=families[p.task_family],
            score=procedure_score(p, families[p.task_family]),
        )
        for p in store.procedures_of(
            backends, scope, list(families), include_retired=include_retired
        )
    ]
    # Learned utility (feedback on earlier recalls) re-ranks both lists where it exists.
    mixed = usefulness.mix(backends, {m.experience.id: m.score for m in experiences})
    if mixed is not None:
        experiences = [m.model_copy(update={"score": mixed[m.experience.id]}) for m in experiences]
        experiences.sort(key=lambda m: (-m.score, -m.similarity, m.experience.id))
    mixed = usefulness.mix(backends, {m.procedure.id: m.score for m in procedures})
    if mixed is not None:
        procedures = [m.model_copy(update={"score": mixed[m.procedure.id]}) for m in procedures]
    procedures.sort(key=lambda m: rank_key(m.procedure, m.score))
    shown = [m.experience.id for m in experiences[:k]] + [m.procedure.id for m in procedures]
    return ExperienceAdvice(
        task=task,
        experiences=experiences[:k],
        procedures=procedures,
        task_families=dict(sorted(families.items(), key=lambda item: -item[1])),
        retrieval_id=usefulness.remember(backends, scope, shown) if shown else None,
    )


def _check_family(task_family: Any) -> None:
    """A task family filter: None, or a non-empty string."""
    if task_family is not None and (not isinstance(task_family, str) or not task_family.strip()):
        raise InvalidMetadata(f"task_family must be a non-empty string, got {task_family!r}")


def list_procedures(
    backends: Backends,
    scope: Scope | ScopeSet,
    *,
    task_family: str | None = None,
    include_retired: bool = False,
    limit: int = 100,
) -> list[Procedure]:
    """Distilled procedures visible to ``scope``, strongest first (see ``procedure_score``)."""
    limit = check_k(limit, limit=100_000, what="limit")
    _check_family(task_family)
    families = [task_family] if task_family is not None else None
    procedures = store.procedures_of(
        backends, scope, families, include_retired=include_retired, limit=100_000
    )
    procedures.sort(key=lambda p: rank_key(p, procedure_score(p, 1.0)))
    return procedures[:limit]


def context_hits(
    backends: Backends, query: str, scope: Scope | ScopeSet, *, limit: int
) -> list[SearchHit]:
    """The active procedures that apply to ``query`` taken as a task, best first and at most
    ``limit`` (of contradicting ones only the best), as search hits for context assembly."""
    if limit <= 0 or not store.has_procedures(backends, scope):
        return []
    recall = recall_experience(backends, query, scope, k=1)
    active = [m for m in recall.procedures if m.procedure.status is ProcedureStatus.ACTIVE]
    keep = {p.id for p in winners([m.procedure for m in active])}
    chosen = [m for m in active if m.procedure.id in keep][:limit]
    return [
        SearchHit(
            record=m.procedure.record,
            score=m.score,
            channels={CONTEXT_CHANNEL: ChannelScore(rank=rank, score=m.score)},
        )
        for rank, m in enumerate(chosen, start=1)
    ]


def with_procedures(
    backends: Backends, query: str, scope: Scope | ScopeSet, hits: Sequence[SearchHit]
) -> list[SearchHit]:
    """Context candidates with the procedures that apply to ``query`` first (at most
    ``Settings.experience.context_procedures``), and without distilled procedures that are
    demoted, retired, or contradicted by one of those put first."""
    applicable = context_hits(
        backends, query, scope, limit=backends.settings.experience.context_procedures
    )
    chosen = {h.record.id for h in applicable}
    losers = {pid for h in applicable for pid in Procedure.from_record(h.record).contradicts}

    def keep(hit: SearchHit) -> bool:
        record = hit.record
        if record.id in chosen:
            return False
        if record.kind is MemoryKind.PROCEDURAL and Procedure.is_procedure(record):
            active = record.metadata.get("status") == ProcedureStatus.ACTIVE.value
            return active and record.id not in losers
        return True

    return [*applicable, *(h for h in hits if keep(h))]


__all__ = [
    "CONTEXT_CHANNEL",
    "check_reward",
    "check_used",
    "context_hits",
    "distil_experiences",
    "list_procedures",
    "recall_experience",
    "record_experience",
    "with_procedures",
]
