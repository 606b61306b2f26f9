"""The experience data model: steps, outcomes, reflections, and the views of stored records.

An experience is stored as one :class:`~agentmem.models.MemoryRecord` of kind ``experience``
whose text is the task (so hybrid search over tasks finds it) and whose metadata holds the
trajectory, outcome, reward, feedback and reflection. A procedure is one record of kind
``procedural`` whose text is the rule and whose metadata holds its spec and its statistics.
:class:`Experience` and :class:`Procedure` are read-only views of those records.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from agentmem.errors import InvalidExperience, InvalidMetadata, ValidationError, first_message
from agentmem.experience.steps import (
    MAX_ACTION_CHARS,
    MAX_STEP_DEPTH,
    Step,
    format_call,
    parse_steps,
    truncate_step,
)
from agentmem.models import MemoryKind, MemoryRecord
from agentmem.validation import show

log = logging.getLogger(__name__)

EXPERIENCE_KEY = "experience"
"""Metadata key of an experience record holding the trajectory, feedback and reflection."""
PROCEDURE_KEY = "procedure"
"""Metadata key of a procedure record holding its spec, evidence and contradictions."""
RESERVED_EXPERIENCE_KEYS = frozenset({"outcome", "reward", EXPERIENCE_KEY})
"""Top-level metadata keys an experience record owns; user metadata may not set them."""
PROCEDURE_TYPE_KEY = "procedure_type"
RULE_KEY = "rule_key"
RESERVED_PROCEDURE_KEYS = frozenset(
    {
        PROCEDURE_KEY,
        PROCEDURE_TYPE_KEY,
        RULE_KEY,
        "action",
        "status",
        "support",
        "successes",
        "failures",
        "partials",
        "failures_while_demoted",
        "last_used",
    }
)
"""Top-level metadata keys a distilled procedure owns (an update keeps them readable)."""


def check_reward(value: Any, reward_range: tuple[float, float]) -> float | None:
    """None, or a finite number within the declared (inclusive) range."""
    if value is None:
        return None
    low, high = reward_range
    hint = "(AGENTMEM_EXPERIENCE__REWARD_RANGE); rescale the reward or declare another range"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidExperience(
            f"reward must be a finite number in [{low:g}, {high:g}], got {show(value)} {hint}"
        )
    try:
        number = float(value)
    except OverflowError:  # an int past the float range
        number = math.inf
    if not math.isfinite(number):
        raise InvalidExperience(
            f"reward must be a finite number in [{low:g}, {high:g}], got {show(value)} {hint}"
        )
    if not low <= number <= high:
        raise InvalidExperience(
            f"reward {number:g} is outside the declared range [{low:g}, {high:g}] {hint}"
        )
    return number


MAX_FAMILY_CHARS = 200
"""Longest task family name (``metadata["task_family"]``)."""


def check_family(value: Any) -> str:
    """A task family name: a non-empty string of at most :data:`MAX_FAMILY_CHARS`
    characters, else :class:`InvalidMetadata`."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_FAMILY_CHARS:
        raise InvalidMetadata(
            f"task_family must be a non-empty string of at most {MAX_FAMILY_CHARS} characters, "
            f"got {value!r:.80}"
        )
    return value


class Outcome(StrEnum):
    """How an attempt at a task ended."""

    SUCCESS = "success"
    FAILURE = "failure"
    PARTIAL = "partial"

    @classmethod
    def parse(cls, value: Any) -> Outcome:
        """Parse an outcome, raising :class:`InvalidExperience` with the allowed values."""
        if isinstance(value, Outcome):
            return value
        if isinstance(value, str):
            try:
                return cls(value.strip().lower())
            except ValueError:
                pass
        allowed = ", ".join(repr(o.value) for o in cls)
        raise InvalidExperience(
            f"unknown outcome {value!r}; pass one of {allowed} (or agentmem.Outcome.SUCCESS)"
        )

    @property
    def value_score(self) -> float:
        """1 for success, 0.5 for partial, 0 for failure (used in ranking)."""
        return {"success": 1.0, "partial": 0.5, "failure": 0.0}[self.value]


class Reflection(BaseModel):
    """What an attempt teaches: a summary, what worked, what failed and why, and lessons.

    ``source`` is ``"rules"`` or ``"llm:<model>"``; ``fallback_reason`` says why an LLM
    reflection was asked for but the rules' one was kept (the LLM failed or answered badly).
    """

    model_config = ConfigDict(extra="forbid")

    summary: str
    worked: list[str] = Field(default_factory=list)
    failed: list[str] = Field(default_factory=list)
    why: str | None = None
    lessons: list[str] = Field(default_factory=list)
    successful_sequence: list[str] = Field(default_factory=list)
    source: str = "rules"
    fallback_reason: str | None = None


class ProcedureType(StrEnum):
    """What a procedure prescribes."""

    PRECONDITION = "precondition"
    """Before ``action``, do ``requires`` first."""
    ARGUMENT_ORDER = "argument_order"
    """Pass ``action``'s arguments in another order (a permutation of positions or keys)."""
    ARGUMENT_SCALE = "argument_scale"
    """Multiply one numeric argument of ``action`` by a factor (a unit conversion)."""
    ARGUMENT_VALUE = "argument_value"
    """Give one argument of ``action`` a fixed value (a missing or wrong flag)."""
    SEQUENCE = "sequence"
    """The sequence of actions that succeeded for the task family."""


class ProcedureStatus(StrEnum):
    """Where a procedure is in its life: used, ranked lower, or no longer used."""

    ACTIVE = "active"
    DEMOTED = "demoted"
    RETIRED = "retired"


class Experience(BaseModel):
    """A recorded attempt at a task (a view of an ``experience`` record)."""

    model_config = ConfigDict(frozen=True)

    id: str
    task: str
    steps: list[Step]
    outcome: Outcome
    reward: float | None = None
    feedback: str | None = None
    reflection: Reflection | None = None
    task_family: str
    used_procedures: dict[str, str] = Field(default_factory=dict)
    """Procedure id -> how it went when used in this attempt (an :class:`Outcome` value)."""
    created_at: datetime
    record: MemoryRecord

    @classmethod
    def from_record(cls, record: MemoryRecord) -> Experience:
        """The view of a stored experience record; raises :class:`InvalidMetadata` naming the
        metadata key that cannot be read."""
        meta = record.metadata
        with _reading(record, EXPERIENCE_KEY):
            body = _mapping(meta.get(EXPERIENCE_KEY) or {})
            reflection = body.get("reflection")
            steps = [Step.model_validate(s) for s in body.get("steps", [])]
            parsed = Reflection.model_validate(reflection) if reflection else None
            used = dict(body.get("used_procedures") or {})
        outcome = _read(record, "outcome", Outcome.parse, "failure")
        with _reading(record, EXPERIENCE_KEY, {"reward": "reward"}):
            return cls(
                id=record.id,
                task=record.text,
                steps=steps,
                outcome=outcome,
                reward=meta.get("reward"),
                feedback=body.get("feedback"),
                reflection=parsed,
                task_family=str(meta.get("task_family", "")),
                used_procedures=used,
                created_at=record.created_at,
                record=record,
            )

    @classmethod
    def read(cls, record: MemoryRecord) -> Experience | None:
        """The view of a stored experience record, or None (with a logged warning) for one
        whose metadata cannot be read, so one such record does not fail a whole recall."""
        return _or_skip(cls.from_record, record)

    @property
    def succeeded(self) -> bool:
        """Whether the attempt succeeded."""
        return self.outcome is Outcome.SUCCESS


class Procedure(BaseModel):
    """A rule or skill distilled from experiences (a view of a ``procedural`` record).

    ``support`` counts the experiences it was learned from; ``successes``, ``failures`` and
    ``partials`` count reported uses (``record_experience(..., used_procedures=...)``).
    """

    model_config = ConfigDict(frozen=True)

    id: str
    text: str
    type: ProcedureType
    action: str | None = None
    spec: dict[str, Any] = Field(default_factory=dict)
    task_family: str
    example_task: str = ""
    support: int = 1
    successes: int = 0
    failures: int = 0
    partials: int = 0
    failures_while_demoted: int = 0
    """Failures reported since it was last demoted (0 while active); it is retired at
    ``retire_after_failures``."""
    status: ProcedureStatus = ProcedureStatus.ACTIVE
    last_used: datetime | None = None
    evidence: list[str] = Field(default_factory=list)
    """Ids of the experiences it was learned from (the most recent ones)."""
    contradicts: list[str] = Field(default_factory=list)
    """Ids of procedures that prescribe something else for the same thing."""
    record: MemoryRecord

    @classmethod
    def is_procedure(cls, record: MemoryRecord) -> bool:
        """Whether a record was written by distillation: a procedural record with a procedure
        body, a procedure type and a rule key (a procedural memory a user wrote is not, even
        when its metadata uses some of these keys)."""
        meta = record.metadata
        return (
            record.kind is MemoryKind.PROCEDURAL
            and isinstance(meta.get(PROCEDURE_KEY), dict)
            and isinstance(meta.get(PROCEDURE_TYPE_KEY), str)
            and isinstance(meta.get(RULE_KEY), str)
        )

    @classmethod
    def from_record(cls, record: MemoryRecord) -> Procedure:
        """The view of a stored procedure record; raises :class:`InvalidMetadata` naming the
        metadata key that cannot be read."""
        meta = record.metadata
        with _reading(record, PROCEDURE_KEY):
            body = _mapping(meta.get(PROCEDURE_KEY) or {})
            spec = dict(body.get("spec") or {})
            evidence = _ids(body.get("evidence"))
            contradicts = _ids(body.get("contradicts"))
        last_used = meta.get("last_used")
        counted = ("successes", "failures", "partials", "failures_while_demoted")
        counts = {k: _read(record, k, _count, 0) for k in counted}
        with _reading(record, PROCEDURE_KEY, {"type": PROCEDURE_TYPE_KEY, "action": "action"}):
            return cls(
                id=record.id,
                text=record.text,
                type=_read(record, PROCEDURE_TYPE_KEY, _member(ProcedureType), None),
                action=meta.get("action"),
                spec=spec,
                task_family=str(meta.get("task_family", "")),
                example_task=str(body.get("example_task", "")),
                support=_read(record, "support", _count, 1),
                **counts,
                status=_read(
                    record, "status", _member(ProcedureStatus), ProcedureStatus.ACTIVE.value
                ),
                last_used=_read(record, "last_used", _timestamp, None) if last_used else None,
                evidence=evidence,
                contradicts=contradicts,
                record=record,
            )

    @classmethod
    def read(cls, record: MemoryRecord) -> Procedure | None:
        """The view of a stored procedure record, or None (with a logged warning) for one
        whose metadata cannot be read, so one such record does not fail a whole recall."""
        return _or_skip(cls.from_record, record)

    @property
    def uses(self) -> int:
        """How many times its use was reported."""
        return self.successes + self.failures + self.partials

    @property
    def success_rate(self) -> float | None:
        """Share of reported uses that succeeded (a partial counts half); None when unused."""
        if not self.uses:
            return None
        return (self.successes + 0.5 * self.partials) / self.uses


def _mapping(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


def _ids(value: Any) -> list[str]:
    """A list of ids (a string is no list of its characters)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
        raise TypeError(f"expected a list of ids, got {show(value)}")
    return list(value)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"expected a whole number, got {type(value).__name__}")
    number = int(value)
    if number < 0 or number != float(value):
        raise ValueError("expected a whole number of at least 0")
    return number


def _member(enum: type[StrEnum]) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        try:
            return enum(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in enum)
            raise ValueError(f"expected one of {allowed}") from None

    return parse


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO 8601 time, got {type(value).__name__}")
    return datetime.fromisoformat(value)


@contextmanager
def _reading(
    record: MemoryRecord, key: str, fields: Mapping[str, str] | None = None
) -> Iterator[None]:
    """Turn a failure to read ``record``'s metadata into :class:`InvalidMetadata` naming the
    key: ``key``, or for a view field that failed validation, its key in ``fields``."""
    try:
        yield
    except InvalidMetadata:
        raise  # an inner key's own error
    except (TypeError, ValueError, OverflowError, ValidationError) as exc:
        if isinstance(exc, PydanticValidationError) and fields:
            errors = exc.errors()
            field = str(errors[0]["loc"][0]) if errors and errors[0]["loc"] else ""
            key = fields.get(field, key)
        what = "an experience" if record.kind is MemoryKind.EXPERIENCE else "a procedure"
        shown = repr(record.metadata.get(key, "<missing>"))
        shown = shown if len(shown) <= 80 else shown[:79] + "…"
        raise InvalidMetadata(
            f"metadata key {key!r} of memory {record.id!r} holds {shown}, which {what} cannot "
            f"hold ({first_message(exc)}); keep the value it was stored with"
        ) from None


def _read(record: MemoryRecord, key: str, convert: Callable[[Any], Any], default: Any) -> Any:
    """``convert`` of ``record``'s metadata value at ``key`` (``default`` when missing)."""
    with _reading(record, key):
        return convert(record.metadata.get(key, default))


def check_readable(
    current: MemoryRecord,
    metadata: Mapping[str, Any],
    reward_range: tuple[float, float] | None = None,
) -> None:
    """Refuse (:class:`InvalidMetadata` naming the key) new metadata for an experience or a
    distilled procedure that could not be read back, or that drops a key the record owns, or
    whose task family or reward (within ``reward_range``, when given) ``record_experience``
    would refuse, so an update cannot make recall fail or lose it for its scope. Other
    memories pass unchecked."""
    view: Callable[[MemoryRecord], Any]
    keys: tuple[str, ...]
    if current.kind is MemoryKind.EXPERIENCE:
        keys = ("outcome", "task_family", EXPERIENCE_KEY)
        view, what = Experience.from_record, "an experience"
    elif Procedure.is_procedure(current):
        keys = (PROCEDURE_KEY, PROCEDURE_TYPE_KEY, RULE_KEY, "task_family")
        view, what = Procedure.from_record, "a distilled procedure"
    else:
        return
    owned = {k for k in keys if k in current.metadata}
    missing = sorted(owned - set(metadata))
    if missing:
        raise InvalidMetadata(
            f"metadata keys {missing} of memory {current.id!r} belong to {what}; pass its "
            "metadata with your changes, e.g. {**record.metadata, 'note': ...}"
        )
    changed = {k for k in ("task_family", "reward") if metadata.get(k) != current.metadata.get(k)}
    try:  # only a new value: one stored before (e.g. under another reward range) stays
        if "task_family" in changed & owned:
            check_family(metadata["task_family"])
        if "reward" in changed and current.kind is MemoryKind.EXPERIENCE and reward_range:
            check_reward(metadata.get("reward"), reward_range)
    except ValidationError as exc:
        raise InvalidMetadata(
            f"memory {current.id!r}: {exc}; keep the stored value or pass a valid one"
        ) from None
    view(current.model_copy(update={"metadata": dict(metadata)}))


def _or_skip(view: Callable[[MemoryRecord], Any], record: MemoryRecord) -> Any:
    try:
        return view(record)
    except InvalidMetadata as exc:
        log.warning("skipping memory %s, whose metadata cannot be read: %s", record.id, exc)
        return None


class ExperienceMatch(BaseModel):
    """A past experience recalled for a task: its cosine ``similarity`` to the task and the
    ``score`` it was ranked by (similarity blended with success)."""

    experience: Experience
    similarity: float
    score: float


class ProcedureMatch(BaseModel):
    """A procedure recalled for a task: ``similarity`` of the task to the procedure's task
    family and the ``score`` it was ranked by (similarity x support and success rate)."""

    procedure: Procedure
    similarity: float
    score: float


class ExperienceAdvice(BaseModel):
    """What :meth:`Memory.recall_experience` returns: similar past experiences and the
    procedures that apply to the task, each best first."""

    task: str
    experiences: list[ExperienceMatch] = Field(default_factory=list)
    procedures: list[ProcedureMatch] = Field(default_factory=list)
    task_families: dict[str, float] = Field(default_factory=dict)
    """The task families the task was matched to, with their similarity."""
    retrieval_id: str | None = None
    """What this recall showed, for ``Memory.feedback`` (None when not recorded)."""

    def render(self, max_procedures: int = 5, max_experiences: int = 3) -> str:
        """A short text block (procedures, then past attempts) to put in a prompt."""
        lines: list[str] = []
        procedures = [
            m for m in self.procedures if m.procedure.status is not ProcedureStatus.RETIRED
        ][:max_procedures]
        if procedures:
            lines.append("## Procedures")
            lines += [f"- {m.procedure.text}" for m in procedures]
        if self.experiences:
            lines.append("## Past experiences")
            for m in self.experiences[:max_experiences]:
                e = m.experience
                summary = f": {e.reflection.summary}" if e.reflection else ""
                lines.append(f"- {e.task} → {e.outcome.value}{summary}")
        return "\n".join(lines)


class ExperienceResult(BaseModel):
    """What :meth:`Memory.record_experience` returns: the stored experience, its reflection,
    the procedures it taught (new or reinforced) and the used procedures it updated."""

    experience: Experience
    reflection: Reflection
    learned: list[Procedure] = Field(default_factory=list)
    updated: list[Procedure] = Field(default_factory=list)

    @property
    def record(self) -> MemoryRecord:
        """The stored ``experience`` record."""
        return self.experience.record

    @property
    def procedures(self) -> list[Procedure]:
        """Every procedure this experience touched: learned or reinforced, then updated."""
        seen: dict[str, Procedure] = {}
        for p in [*self.learned, *self.updated]:
            seen[p.id] = p
        return list(seen.values())


class PlannedCall(BaseModel):
    """One call of a plan that :func:`~agentmem.experience.plan_call` built from procedures,
    with the ids of the procedures that shaped it."""

    model_config = ConfigDict(frozen=True)

    action: str
    args: dict[str, Any] | list[Any] = Field(default_factory=dict)
    procedures: tuple[str, ...] = ()


def outcome_note(record: MemoryRecord) -> str:
    """What a context line adds after an experience's task: `` → outcome: summary`` (empty
    for a record that is not a recorded experience)."""
    outcome = record.metadata.get("outcome")
    body = record.metadata.get(EXPERIENCE_KEY)
    if not isinstance(outcome, str) or not isinstance(body, dict):
        return ""
    reflection = body.get("reflection")
    summary = reflection.get("summary") if isinstance(reflection, dict) else None
    if isinstance(summary, str) and summary.strip():
        summary = " ".join(summary.split())
        return f" → {outcome}: {summary[:199] + '…' if len(summary) > 200 else summary}"
    return f" → {outcome}"


__all__ = [
    "EXPERIENCE_KEY",
    "MAX_ACTION_CHARS",
    "MAX_FAMILY_CHARS",
    "MAX_STEP_DEPTH",
    "PROCEDURE_KEY",
    "PROCEDURE_TYPE_KEY",
    "RESERVED_EXPERIENCE_KEYS",
    "RESERVED_PROCEDURE_KEYS",
    "RULE_KEY",
    "Experience",
    "ExperienceAdvice",
    "ExperienceMatch",
    "ExperienceResult",
    "Outcome",
    "PlannedCall",
    "Procedure",
    "ProcedureMatch",
    "ProcedureStatus",
    "ProcedureType",
    "Reflection",
    "Step",
    "check_family",
    "check_readable",
    "check_reward",
    "format_call",
    "outcome_note",
    "parse_steps",
    "truncate_step",
]
