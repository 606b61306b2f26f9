"""A trajectory's steps: what one step holds, and how a list of steps is checked and truncated.

Re-exported by :mod:`agentmem.experience.models`, which stores steps in experience records.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from agentmem.errors import InvalidExperience, first_message
from agentmem.models import nesting_exceeds

MAX_ACTION_CHARS = 200
MAX_STEP_DEPTH = 32
"""Most levels of nested dicts/lists in a step's ``args`` or a structured ``observation``;
measured without recursion, so a deeper value is refused instead of overflowing the stack."""


class Step(BaseModel):
    """One step of a trajectory: the action taken (a tool name, say), its arguments, what was
    observed, and optionally the thought behind it and whether it worked.

    A step *failed* when ``ok`` is False or it carries an ``error``; a step with neither is taken
    to have worked. Arguments are a dict (keyword arguments) or a list (positional ones) of JSON
    values. A non-string observation is stored as JSON text.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: str
    args: dict[str, Any] | list[Any] = Field(default_factory=dict)
    observation: str = ""
    thought: str | None = None
    ok: bool | None = None
    error: str | None = None

    @field_validator("action")
    @classmethod
    def _action(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("action is empty; name the action or tool, e.g. 'open'")
        if len(value) > MAX_ACTION_CHARS:
            raise ValueError(f"action is over {MAX_ACTION_CHARS} characters; use a short name")
        return value

    @field_validator("observation", mode="before")
    @classmethod
    def _observation(cls, value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        if isinstance(value, dict | list | tuple) and nesting_exceeds(value, MAX_STEP_DEPTH):
            raise ValueError(
                f"observation is nested more than {MAX_STEP_DEPTH} levels deep; pass it as "
                "text (e.g. json.dumps of the part that matters) or flatten it"
            )
        try:
            return json.dumps(value, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError):
            raise ValueError(
                f"observation must be text or JSON, got {type(value).__name__}"
            ) from None

    @field_validator("args", mode="before")
    @classmethod
    def _ordered_args(cls, value: Any) -> Any:
        if isinstance(value, set | frozenset):
            raise ValueError(
                f"args must be a dict (keyword arguments) or a list (positional ones), got a "
                f"{type(value).__name__}, which has no order; pass a list or a dict"
            )
        return value

    @field_validator("args")
    @classmethod
    def _json_args(cls, value: dict[str, Any] | list[Any]) -> dict[str, Any] | list[Any]:
        if nesting_exceeds(value, MAX_STEP_DEPTH):
            raise ValueError(
                f"args are nested more than {MAX_STEP_DEPTH} levels deep; flatten them (e.g. "
                "keys like 'a.b.c') or pass the deep part as JSON text"
            )
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"args must be JSON values (strings, numbers, ...): {exc}") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Step:
        if self.ok is True and self.error:
            raise ValueError("a step with ok=True cannot carry an error; set ok=False or drop it")
        return self

    @property
    def failed(self) -> bool:
        """Whether this step did not work (``ok`` is False, or an error was recorded)."""
        return self.ok is False or (self.ok is None and bool(self.error))

    def call(self) -> str:
        """The step as a call: ``read(path='a.txt')`` or ``copy('a', 'b')``."""
        return format_call(self.action, self.args)


def format_call(action: str, args: Mapping[str, Any] | Sequence[Any]) -> str:
    """``action(k=v, ...)`` for keyword arguments, ``action(v, ...)`` for positional ones."""
    if isinstance(args, Mapping):
        inner = ", ".join(f"{k}={v!r}" for k, v in args.items())
    else:
        inner = ", ".join(repr(v) for v in args)
    return f"{action}({inner})"


def parse_steps(steps: Any, *, max_steps: int, max_chars: int) -> list[Step]:
    """Validate a trajectory: a non-empty list of :class:`Step` or dicts with ``action`` (and
    optionally ``args``, ``observation``, ``thought``, ``ok``, ``error``). Long observations and
    errors are truncated to ``max_chars`` with a marker. Raises :class:`InvalidExperience`."""
    example = "e.g. [{'action': 'open', 'args': {'path': 'a.txt'}, 'observation': 'opened'}]"
    if isinstance(steps, str | bytes | Mapping) or not isinstance(steps, Sequence):
        raise InvalidExperience(
            f"steps must be a list of steps, got {type(steps).__name__}; {example}"
        )
    if not steps:
        raise InvalidExperience(f"the trajectory is empty; record at least one step ({example})")
    if len(steps) > max_steps:
        raise InvalidExperience(
            f"{len(steps)} steps, over the limit of {max_steps} "
            "(AGENTMEM_EXPERIENCE__MAX_STEPS); record the relevant part of the trajectory"
        )
    parsed: list[Step] = []
    allowed = sorted(Step.model_fields)
    for position, step in enumerate(steps):
        if isinstance(step, Step):
            item = step
        elif isinstance(step, Mapping):
            unknown = set(step) - set(allowed)
            if unknown:
                raise InvalidExperience(
                    f"step {position} has unknown keys {sorted(map(str, unknown))}; "
                    f"allowed: {allowed}"
                )
            try:
                item = Step.model_validate(dict(step))
            except PydanticValidationError as exc:
                raise InvalidExperience(f"step {position}: {first_message(exc)}") from None
        else:
            raise InvalidExperience(
                f"step {position} is a {type(step).__name__}; each step is a dict with at "
                f"least 'action' (or an agentmem.Step), {example}"
            )
        parsed.append(truncate_step(item, max_chars))
    return parsed


def truncate_step(step: Step, max_chars: int) -> Step:
    """``step`` with its observation, error and thought cut to ``max_chars`` (ending in ``…``)."""
    changes: dict[str, str] = {}
    for name in ("observation", "error", "thought"):
        value = getattr(step, name)
        if isinstance(value, str) and len(value) > max_chars:
            changes[name] = value[: max_chars - 1] + "…"
    return step.model_copy(update=changes) if changes else step


__all__ = [
    "MAX_ACTION_CHARS",
    "MAX_STEP_DEPTH",
    "Step",
    "format_call",
    "parse_steps",
    "truncate_step",
]
