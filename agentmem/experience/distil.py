"""Distillation: from trajectories to procedures, and from reported uses to a procedure's status.

Everything here is pure (no I/O); :mod:`agentmem.experience.store` stores what it decides.

**Lessons from one trajectory.** A *repair* is a step that worked at an action that had failed
since that action last worked: the failed attempts, then the success. From each repair:

- the arguments of the first failed attempt against those of the success give argument rules:
  a permutation (``argument_order``), a constant factor on a number (``argument_scale``, a unit
  conversion), or a fixed value (``argument_value``, a missing or wrong flag);
- each action that worked between the attempts, and after which the next attempt worked or
  failed differently with the same arguments, is a precondition ("before X, do Y first"),
  unless it was itself the fix of an inner repair (``build`` fixing ``test`` inside the repair
  of ``deploy``). This also holds between attempts that all failed: ``login`` turning
  ``pay``'s "E_AUTH" into "E_VALUE" teaches "login before pay" even if ``pay`` never worked;
- a successful attempt also gives its sequence of working actions (``sequence``), a skill for
  the task family.

**Identity and contradiction.** Lessons with the same :attr:`Lesson.key` in a family reinforce
one procedure (its support grows). Lessons with the same :attr:`Lesson.conflict_key` but a
different key prescribe different things for the same thing (two factors for one argument, a
factor and a fixed value for one argument, two orders, two sequences): both are kept, each with
its evidence, marked as contradicting each other, and ranking puts the better-supported one
first; :func:`~agentmem.experience.plan.plan_call` follows only that one.

**Status.** Each reported use counts a success, failure or partial. A procedure used at least
``demote_min_uses`` times whose success rate falls under ``demote_below`` is demoted (ranked
lower, still recalled); it is active again when its rate recovers (its count of failures while
demoted starts again from 0), and retired (invalidated, kept in history) once it has
``retire_after_failures`` failures while demoted (the failure that demoted it not counted).
Retirement is final for that procedure; only new evidence (a repair that teaches the same rule
again) starts a new one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agentmem.experience.models import (
    Outcome,
    Procedure,
    ProcedureStatus,
    ProcedureType,
    Step,
)
from agentmem.settings import ExperienceSettings

Args = dict[str, Any] | list[Any]
MIN_SEQUENCE = 2
"""Shortest successful sequence kept as a skill (one action alone teaches nothing)."""
_STATUS_FACTOR = {
    ProcedureStatus.ACTIVE: 1.0,
    ProcedureStatus.DEMOTED: 0.5,
    ProcedureStatus.RETIRED: 0.1,
}


@dataclass(frozen=True)
class Lesson:
    """A procedure as learned from one trajectory (before it is stored)."""

    type: ProcedureType
    action: str | None
    spec: dict[str, Any]
    note: str = ""
    """The evidence in words: the error the fix addressed."""
    identity: tuple[Any, ...] = field(default=())
    conflict: tuple[Any, ...] | None = None

    @property
    def key(self) -> str:
        """What makes two lessons the same procedure (within a task family)."""
        return _canonical([self.type.value, self.action, *self.identity])

    @property
    def conflict_key(self) -> str | None:
        """What two contradicting lessons share (None: this kind never contradicts)."""
        return (
            None if self.conflict is None else _canonical([_rule_kind(self.type), *self.conflict])
        )

    @property
    def conflict_keys(self) -> tuple[str, ...]:
        """Its :attr:`conflict_key`, then the ones procedures stored before a scale and a
        value rule for one argument contradicted each other carry (their own type's)."""
        if self.conflict is None:
            return ()
        if _rule_kind(self.type) != _ARGUMENT_SLOT:
            return (_canonical([self.type.value, *self.conflict]),)
        legacy = [_canonical([t.value, *self.conflict]) for t in _SLOT_RULES]
        return (_canonical([_ARGUMENT_SLOT, *self.conflict]), *legacy)


_ARGUMENT_SLOT = "argument_slot"
_SLOT_RULES = (ProcedureType.ARGUMENT_SCALE, ProcedureType.ARGUMENT_VALUE)


def _rule_kind(ptype: ProcedureType) -> str:
    """What a rule decides, for contradiction: a scale and a value rule both decide one
    argument's value, so for one argument they contradict each other."""
    return _ARGUMENT_SLOT if ptype in _SLOT_RULES else ptype.value


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _is_number(value: Any) -> bool:
    """A finite int or float (an int past the float range is not one: it cannot be scaled)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _slots(args: Args) -> list[tuple[str | int, Any]]:
    return list(args.items()) if isinstance(args, dict) else list(enumerate(args))


def _problem(step: Step) -> str:
    text = " ".join((step.error or step.observation or "").split())
    return text[:157] + "…" if len(text) > 160 else text


# lessons from one trajectory --------------------------------------------------------------


@dataclass(frozen=True)
class Repair:
    """An action that failed (``attempts``, step indexes) and then worked (``success``), or,
    with ``success`` None, kept failing (what happened between its attempts may still have
    made progress: the error changed)."""

    action: str
    attempts: tuple[int, ...]
    success: int | None

    @property
    def end(self) -> int:
        """The step that closes it: the success, else the last attempt."""
        return self.success if self.success is not None else self.attempts[-1]

    def spans(self, k: int) -> bool:
        """Whether step ``k`` lies between the first attempt and the end."""
        return self.attempts[0] < k < self.end


def find_repairs(steps: Sequence[Step]) -> list[Repair]:
    """Every action that failed and later worked, with the attempts since it last worked; and
    every action whose last attempts all failed (``success`` None), when there are two or more
    of them (between two attempts, something may have made progress)."""
    repairs: list[Repair] = []
    last_ok: dict[str, int] = {}
    for j, step in enumerate(steps):
        if step.failed:
            continue
        start = last_ok.get(step.action, -1)
        attempts = tuple(
            k for k in range(start + 1, j) if steps[k].action == step.action and steps[k].failed
        )
        last_ok[step.action] = j
        if attempts:
            repairs.append(Repair(step.action, attempts, j))
    for action in dict.fromkeys(s.action for s in steps):
        start = last_ok.get(action, -1)
        attempts = tuple(
            k for k in range(start + 1, len(steps)) if steps[k].action == action and steps[k].failed
        )
        if len(attempts) >= 2:
            repairs.append(Repair(action, attempts, None))
    return repairs


def _credited(steps: Sequence[Step], repair: Repair) -> dict[int, str]:
    """Steps that worked inside a repair and made a difference: the next attempt after them
    worked, or failed with another error although called with the same arguments as the one
    before them. Returns step index -> action."""
    points = [*repair.attempts, *([repair.success] if repair.success is not None else [])]
    credited: dict[int, str] = {}
    for k in range(repair.attempts[0] + 1, repair.end):
        step = steps[k]
        if step.failed or step.action == repair.action:
            continue
        nxt = min(p for p in points if p > k)
        prev = max(p for p in repair.attempts if p < k)
        worked = nxt == repair.success
        same_call = steps[nxt].args == steps[prev].args
        if worked or (same_call and _problem(steps[nxt]) != _problem(steps[prev])):
            credited[k] = step.action
    return credited


def _template(pre_args: Args, target_args: Args) -> Args:
    """A precondition's arguments, as references to the target call's arguments where the
    values are equal (``{"from": slot}``) and constants otherwise (``{"value": v}``)."""
    targets = _slots(target_args)

    def source(value: Any) -> dict[str, Any]:
        for slot, candidate in targets:
            if _same(candidate, value):
                return {"from": slot}
        return {"value": value}

    if isinstance(pre_args, dict):
        return {k: source(v) for k, v in pre_args.items()}
    return [source(v) for v in pre_args]


def _argument_lessons(action: str, before: Args, after: Args, note: str) -> list[Lesson]:
    """Argument rules that turn the failed call's arguments into the successful ones."""
    if before == after or type(before) is not type(after):
        return []
    order = _permutation(before, after)
    if order is not None:
        return [
            Lesson(
                ProcedureType.ARGUMENT_ORDER,
                action,
                {"order": order},
                note,
                identity=(_canonical(order),),
                conflict=(action,),
            )
        ]
    if isinstance(before, list) and isinstance(after, list) and len(before) != len(after):
        return []  # positional arguments added or removed: nothing general to learn
    lessons: list[Lesson] = []
    old = dict(_slots(before))
    new = dict(_slots(after))
    for slot, value in new.items():
        if slot in old and _same(old[slot], value):
            continue
        if slot in old and _is_number(old[slot]) and _is_number(value) and old[slot] != 0:
            factor = float(f"{value / old[slot]:.6g}")
            if not math.isfinite(factor):
                continue  # a ratio past the float range (5e-324 to 10): no usable scale
            integer = isinstance(value, int) or float(value).is_integer()
            spec = {"slot": slot, "factor": factor, "integer": integer}
            lessons.append(
                Lesson(
                    ProcedureType.ARGUMENT_SCALE,
                    action,
                    spec,
                    f"{old[slot]!r} failed ({note}), {value!r} worked" if note else "",
                    identity=(slot, factor),
                    conflict=(action, slot),
                )
            )
        else:
            lessons.append(
                Lesson(
                    ProcedureType.ARGUMENT_VALUE,
                    action,
                    {"slot": slot, "value": value},
                    note,
                    identity=(slot, _canonical(value)),
                    conflict=(action, slot),
                )
            )
    for slot in old.keys() - new.keys():
        lessons.append(
            Lesson(
                ProcedureType.ARGUMENT_VALUE,
                action,
                {"slot": slot, "drop": True},
                note,
                identity=(slot, "drop"),
                conflict=(action, slot),
            )
        )
    return lessons


def _permutation(before: Args, after: Args) -> list[int] | dict[str, str] | None:
    """How ``after`` reorders ``before``'s values: for lists ``order[i]`` is the position in
    ``before`` of ``after[i]``; for dicts ``{key: key it takes its value from}`` for the keys
    that changed. None when it is not a pure reordering of distinct values."""
    keys = [slot for slot, _ in _slots(before)]
    values = [_canonical(v) for _, v in _slots(before)]
    if len(set(values)) != len(values):
        return None
    if isinstance(before, list) and isinstance(after, list):
        if len(after) != len(before):
            return None
        try:
            order = [values.index(_canonical(v)) for v in after]
        except ValueError:
            return None
        return order if order != list(range(len(before))) else None
    if isinstance(before, dict) and isinstance(after, dict):
        if set(after) != set(before):
            return None
        mapping: dict[str, str] = {}
        for key, value in after.items():
            try:
                source = keys[values.index(_canonical(value))]
            except ValueError:
                return None
            if source != key:
                mapping[key] = str(source)
        return mapping or None
    return None


def successful_sequence(steps: Sequence[Step]) -> list[str]:
    """The actions that made an attempt work, in order, repeats of one action merged: every
    step that worked, except those tried while repairing a failure that made no difference
    (a distractor such as ``stat`` called before the ``open`` that fixed ``read``)."""
    repairs = find_repairs(steps)
    credited = {k for r in repairs for k in _credited(steps, r)}
    idle = {
        k
        for r in repairs
        for k in range(r.attempts[0] + 1, r.end)
        if k not in credited and steps[k].action != r.action
    }
    sequence: list[str] = []
    for k, step in enumerate(steps):
        if step.failed or k in idle:
            continue
        if not sequence or sequence[-1] != step.action:
            sequence.append(step.action)
    return sequence


def extract_lessons(steps: Sequence[Step], outcome: Outcome) -> list[Lesson]:
    """Every lesson one trajectory teaches (see the module docstring), in step order."""
    repairs = find_repairs(steps)
    credits = {id(r): _credited(steps, r) for r in repairs}
    lessons: list[Lesson] = []
    for repair in repairs:
        first, target = steps[repair.attempts[0]], steps[repair.end]
        if repair.success is not None:
            note = _problem(steps[repair.attempts[-1]])
            lessons += _argument_lessons(repair.action, first.args, target.args, note)
        own = credits[id(repair)]
        inner = {
            k
            for other in repairs
            if other is not repair and repair.spans(other.attempts[0]) and repair.spans(other.end)
            for k in credits[id(other)]
        }
        required: dict[str, int] = {}
        for k, action in own.items():
            if k not in inner:
                required[action] = k  # the nearest call of it wins
        for action, k in sorted(required.items(), key=lambda item: item[1]):
            before = max(a for a in repair.attempts if a < k)  # the failure it fixed
            lessons.append(
                Lesson(
                    ProcedureType.PRECONDITION,
                    repair.action,
                    {"requires": action, "args": _template(steps[k].args, target.args)},
                    _problem(steps[before]),
                    identity=(action,),
                )
            )
    if outcome is Outcome.SUCCESS:
        sequence = successful_sequence(steps)
        if len(sequence) >= MIN_SEQUENCE:
            lessons.append(
                Lesson(
                    ProcedureType.SEQUENCE,
                    None,
                    {"actions": sequence},
                    identity=(_canonical(sequence),),
                    conflict=(),
                )
            )
    return lessons


def describe(lesson: Lesson, example_task: str) -> str:
    """The procedure's text: the rule in words, with the kind of task it was learned on."""
    where = f'For tasks like "{_clip(example_task, 120)}": '
    why = f" (without it, `{lesson.action}` failed: {lesson.note})" if lesson.note else ""
    spec, action = lesson.spec, lesson.action
    if lesson.type is ProcedureType.PRECONDITION:
        return f"{where}call `{spec['requires']}` before `{action}`{why}."
    if lesson.type is ProcedureType.ARGUMENT_ORDER:
        order = spec["order"]
        if isinstance(order, list):
            words = ", ".join(f"#{i + 1}" for i in order)
            rule = f"pass `{action}`'s arguments in the order ({words}) of the documented call"
        else:
            pairs = ", ".join(f"{k}=<{v}>" for k, v in order.items())
            rule = f"call `{action}` with its arguments swapped: {pairs}"
        return f"{where}{rule}{_failed_note(lesson)}."
    if lesson.type is ProcedureType.ARGUMENT_SCALE:
        rule = f"multiply `{action}`'s argument `{spec['slot']}` by {spec['factor']:g}"
        detail = f" (a unit conversion: {lesson.note})" if lesson.note else " (a unit conversion)"
        return f"{where}{rule}{detail}."
    if lesson.type is ProcedureType.ARGUMENT_VALUE:
        if spec.get("drop"):
            rule = f"call `{action}` without the argument `{spec['slot']}`"
        else:
            rule = f"call `{action}` with `{spec['slot']}`={spec['value']!r}"
        return f"{where}{rule}{_failed_note(lesson)}."
    return f"{where}{' → '.join(spec['actions'])} worked."


def _failed_note(lesson: Lesson) -> str:
    return f" (the documented call failed: {lesson.note})" if lesson.note else ""


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# statistics and status --------------------------------------------------------------------


def counts_after_use(
    successes: int, failures: int, partials: int, verdict: Outcome
) -> tuple[int, int, int]:
    """The use counters after one more use that went as ``verdict``."""
    if verdict is Outcome.SUCCESS:
        return successes + 1, failures, partials
    if verdict is Outcome.FAILURE:
        return successes, failures + 1, partials
    return successes, failures, partials + 1


def failures_while_demoted_after(status: ProcedureStatus, count: int, verdict: Outcome) -> int:
    """The failures counted since a procedure was demoted, after one more use that went as
    ``verdict`` while it had ``status``: one more for a failure while demoted; none while it
    was active (the failure that demotes it happened while it was active)."""
    if status is not ProcedureStatus.DEMOTED:
        return 0
    return count + 1 if verdict is Outcome.FAILURE else count


def status_after(
    status: ProcedureStatus,
    successes: int,
    failures: int,
    partials: int,
    config: ExperienceSettings,
    *,
    failures_while_demoted: int,
) -> ProcedureStatus:
    """A procedure's status given its counters: demoted below the success-rate threshold after
    enough uses, active again when it recovers, retired once ``failures_while_demoted`` (see
    :func:`failures_while_demoted_after`) reaches ``retire_after_failures``. Retirement is
    final."""
    if status is ProcedureStatus.RETIRED:
        return status
    uses = successes + failures + partials
    rate = (successes + 0.5 * partials) / uses if uses else 1.0
    low = uses >= config.demote_min_uses and rate < config.demote_below
    if not low:
        return ProcedureStatus.ACTIVE
    if status is ProcedureStatus.DEMOTED and failures_while_demoted >= config.retire_after_failures:
        return ProcedureStatus.RETIRED
    return ProcedureStatus.DEMOTED


def procedure_score(procedure: Procedure, similarity: float) -> float:
    """How strongly a procedure applies to a task whose family it matches with ``similarity``:
    similarity x (half smoothed success rate, half support strength) x a status factor.

    The smoothed success rate is ``(successes + partials / 2 + 1) / (uses + 2)`` (0.5 when
    unused); support strength is ``support / (support + 1)``. So between two contradicting
    procedures of one family, the one backed by more experiences and more successful uses
    ranks first; a demoted procedure counts half."""
    reliability = (procedure.successes + 0.5 * procedure.partials + 1) / (procedure.uses + 2)
    strength = procedure.support / (procedure.support + 1)
    return similarity * (0.5 * reliability + 0.5 * strength) * _STATUS_FACTOR[procedure.status]


# using procedures -------------------------------------------------------------------------


_TYPE_RANK = {
    ProcedureType.PRECONDITION: 0,
    ProcedureType.ARGUMENT_ORDER: 1,
    ProcedureType.ARGUMENT_SCALE: 1,
    ProcedureType.ARGUMENT_VALUE: 1,
    ProcedureType.SEQUENCE: 2,
}


def rank_key(procedure: Procedure, score: float) -> tuple[float, int, int, str]:
    """Sort key of ranked procedures: score, then rules before sequences (a rule says what to
    do at a given call), then support, then id (so the order is deterministic)."""
    return (-score, _TYPE_RANK[procedure.type], -procedure.support, procedure.id)


def winners(procedures: Sequence[Procedure]) -> list[Procedure]:
    """The procedures an agent should follow, in the order given (best first): retired ones
    left out, and of contradicting ones (same rule slot) only the first."""
    chosen: list[Procedure] = []
    taken: set[str] = set()
    for p in procedures:
        if p.status is ProcedureStatus.RETIRED:
            continue
        slot = _conflict_of(p)
        if slot is not None:
            if slot in taken:
                continue
            taken.add(slot)
        chosen.append(p)
    return chosen


def _conflict_of(p: Procedure) -> str | None:
    if p.type is ProcedureType.PRECONDITION:
        return None
    if p.type is ProcedureType.SEQUENCE:
        return _canonical([p.task_family, p.type.value])
    slot = p.spec.get("slot")
    return _canonical([p.task_family, _rule_kind(p.type), p.action, slot])


__all__ = [
    "Lesson",
    "Repair",
    "counts_after_use",
    "describe",
    "extract_lessons",
    "failures_while_demoted_after",
    "find_repairs",
    "procedure_score",
    "rank_key",
    "status_after",
    "successful_sequence",
    "winners",
]
