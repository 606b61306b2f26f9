"""Using procedures: the calls to make for an intended call, following distilled rules.

Pure functions over :class:`~agentmem.experience.models.Procedure` views (no I/O): argument
rules rewrite a call, preconditions add the calls that must come first, and of contradicting
procedures only the best ranked is followed (:func:`~agentmem.experience.distil.winners`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from agentmem.errors import ValidationError
from agentmem.experience.distil import Args, _is_number, winners
from agentmem.experience.models import PlannedCall, Procedure, ProcedureType

_MAX_PLAN_DEPTH = 8


def plan_call(
    procedures: Sequence[Procedure], action: str, args: Mapping[str, Any] | Sequence[Any]
) -> list[PlannedCall]:
    """The calls to make for an intended call of ``action``, following ``procedures`` (best
    first; see :func:`winners`): argument rules rewrite the call, and preconditions add the
    calls that must come first (their own rules and preconditions applied too). Each planned
    call names the procedures that shaped it. Without applicable procedures the plan is the
    call itself. Arguments of the wrong kind raise :class:`~agentmem.errors.ValidationError`
    naming the argument."""
    start = _checked_plan_input(procedures, action, args)
    chosen = winners(procedures)
    planned: list[PlannedCall] = []
    _plan(chosen, action, start, planned, stack=(), origin=())
    return planned


_PLAN_EXAMPLE = (
    "e.g. plan_call(mem.recall_experience(task, user_id='u').procedures, 'book_table', "
    "{'place': 'Sora'})"
)


def _checked_plan_input(procedures: Any, action: Any, args: Any) -> Args:
    """A copy of ``args`` to plan with, once ``plan_call``'s arguments are the kinds it takes."""
    if isinstance(procedures, str | bytes | Mapping) or not isinstance(procedures, Sequence):
        raise ValidationError(
            f"procedures must be a list of Procedure, got {type(procedures).__name__}; "
            f"{_PLAN_EXAMPLE}"
        )
    for i, p in enumerate(procedures):
        if not isinstance(p, Procedure):
            raise ValidationError(
                f"procedures[{i}] is a {type(p).__name__}, not a Procedure; pass what "
                "recall_experience(...).procedures or mem.procedures(...) return (a procedure "
                "read as JSON, e.g. from the REST API, is Procedure.model_validate(item))"
            )
    if not isinstance(action, str) or not action.strip():
        raise ValidationError(f"action must be a non-empty action name, got {action!r:.80}")
    if isinstance(args, Mapping) and all(isinstance(k, str) for k in args):
        return dict(args)
    if isinstance(args, Sequence) and not isinstance(args, str | bytes):
        return list(args)
    raise ValidationError(
        "args must be a dict of named arguments (string keys) or a list of positional ones, "
        f"got {type(args).__name__}; {_PLAN_EXAMPLE}"
    )


def _plan(
    chosen: Sequence[Procedure],
    action: str,
    args: Args,
    planned: list[PlannedCall],
    *,
    stack: tuple[str, ...],
    origin: tuple[str, ...],
) -> None:
    if len(stack) >= _MAX_PLAN_DEPTH:
        return
    rewritten, used = rewrite_args(chosen, action, args)
    for pre in chosen:
        if pre.type is not ProcedureType.PRECONDITION or pre.action != action:
            continue
        requires = str(pre.spec.get("requires", ""))
        if not requires or requires in stack or requires == action:
            continue
        pre_args = fill_template(pre.spec.get("args", {}), rewritten)
        if pre_args is None:
            continue
        if any(c.action == requires and c.args == pre_args for c in planned):
            continue  # already planned (a precondition shared by several calls)
        _plan(chosen, requires, pre_args, planned, stack=(*stack, action), origin=(pre.id,))
    planned.append(PlannedCall(action=action, args=rewritten, procedures=(*origin, *used)))


def rewrite_args(
    procedures: Sequence[Procedure], action: str, args: Args
) -> tuple[Args, tuple[str, ...]]:
    """``args`` rewritten by the argument rules for ``action`` (order first, then values and
    scales), with the ids of the rules that applied."""
    used: list[str] = []
    result: Args = list(args) if isinstance(args, list) else dict(args)
    rules = [p for p in procedures if p.action == action]
    for p in rules:
        if p.type is ProcedureType.ARGUMENT_ORDER:
            reordered = _reorder(result, p.spec.get("order"))
            if reordered is not None:
                result = reordered
                used.append(p.id)
    for p in rules:
        if p.type is ProcedureType.ARGUMENT_SCALE:
            slot, factor = p.spec.get("slot"), p.spec.get("factor")
            current = _get(result, slot)
            if _is_number(current) and _is_number(factor):
                value = current * factor
                if not math.isfinite(value):
                    continue  # scaled past the float range: the call keeps its value
                if p.spec.get("integer"):
                    value = round(value)
                result = _set(result, slot, value)
                used.append(p.id)
        elif p.type is ProcedureType.ARGUMENT_VALUE:
            slot = p.spec.get("slot")
            if p.spec.get("drop"):
                if isinstance(result, dict) and isinstance(slot, str) and slot in result:
                    result = {k: v for k, v in result.items() if k != slot}
                    used.append(p.id)
            elif _settable(result, slot):
                result = _set(result, slot, p.spec.get("value"))
                used.append(p.id)
    return result, tuple(used)


def fill_template(template: Any, target: Args) -> Args | None:
    """A precondition's arguments from its template and the target call's arguments; None
    when the template refers to an argument the call does not have."""

    def value(entry: Any) -> tuple[bool, Any]:
        if isinstance(entry, dict) and "from" in entry:
            slot = entry["from"]
            if isinstance(target, dict) and isinstance(slot, str) and slot in target:
                return True, target[slot]
            if isinstance(target, list) and isinstance(slot, int) and 0 <= slot < len(target):
                return True, target[slot]
            return False, None
        if isinstance(entry, dict) and "value" in entry:
            return True, entry["value"]
        return False, None

    if isinstance(template, dict):
        out: dict[str, Any] = {}
        for key, entry in template.items():
            ok, v = value(entry)
            if not ok:
                return None
            out[key] = v
        return out
    if isinstance(template, list):
        items: list[Any] = []
        for entry in template:
            ok, v = value(entry)
            if not ok:
                return None
            items.append(v)
        return items
    return None


def _reorder(args: Args, order: Any) -> Args | None:
    if isinstance(args, list) and isinstance(order, list):
        if len(order) != len(args) or sorted(order) != list(range(len(args))):
            return None
        return [args[i] for i in order]
    if isinstance(args, dict) and isinstance(order, dict):
        if not all(k in args and v in args for k, v in order.items()):
            return None
        return {k: args[order[k]] if k in order else v for k, v in args.items()}
    return None


def _get(args: Args, slot: Any) -> Any:
    if isinstance(args, dict) and isinstance(slot, str):
        return args.get(slot)
    if isinstance(args, list) and isinstance(slot, int) and 0 <= slot < len(args):
        return args[slot]
    return None


def _settable(args: Args, slot: Any) -> bool:
    if isinstance(args, dict):
        return isinstance(slot, str)
    return isinstance(slot, int) and 0 <= slot < len(args)


def _set(args: Args, slot: Any, value: Any) -> Args:
    if isinstance(args, dict):
        return {**args, slot: value}
    out = list(args)
    out[slot] = value
    return out


__all__ = ["fill_template", "plan_call", "rewrite_args"]
