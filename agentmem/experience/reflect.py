"""Reflection: what an attempt teaches, by rules or, when configured, by an LLM.

The rules read the trajectory: each failing step and its error, what fixed it (the step that
succeeded at the same action afterwards), and the sequence of steps that worked. With
``Settings.llm_model`` set, the LLM is asked for the same in JSON (validated with
:class:`ReflectionAnswer`); any failure of that call (no answer, malformed JSON, wrong shape)
falls back to the rules' reflection, with the reason kept in ``fallback_reason``. A reflection
never stops an experience from being recorded.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from agentmem.errors import first_message
from agentmem.experience.distil import successful_sequence
from agentmem.experience.models import Outcome, Reflection, Step
from agentmem.semantic.llm import LLMClient
from agentmem.semantic.scrub import scrub
from agentmem.settings import Settings

log = logging.getLogger(__name__)

Completion = Callable[..., Any]
"""A function with ``litellm.completion``'s signature."""

PROMPT_ID = "experience.reflect.v1"
_FENCE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$", re.IGNORECASE)
_MAX_STEP_CHARS = 300
_MAX_STEPS_IN_PROMPT = 60


# rules ------------------------------------------------------------------------------------


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _problem(step: Step) -> str:
    return _short(step.error or step.observation or "no detail recorded")


def rules_reflection(
    task: str,
    steps: Sequence[Step],
    outcome: Outcome,
    *,
    feedback: str | None = None,
    reward: float | None = None,
) -> Reflection:
    """The reflection the rules give: the failing steps and their errors, what fixed each
    (a later step of the same action that worked), and the successful sequence."""
    failed: list[str] = []
    lessons: list[str] = []
    for i, step in enumerate(steps):
        if not step.failed:
            continue
        failed.append(f"step {i + 1} {step.call()} failed: {_problem(step)}")
        # The next attempt at the same action, if it worked, is what fixed this failure.
        fix = next((j for j in range(i + 1, len(steps)) if steps[j].action == step.action), None)
        if fix is not None and not steps[fix].failed:
            between = [s.action for s in steps[i + 1 : fix] if not s.failed]
            how = f" after {', '.join(dict.fromkeys(between))}" if between else ""
            changed = " with other arguments" if steps[fix].args != step.args else ""
            lessons.append(
                f"`{step.action}` worked at step {fix + 1}{how}{changed}: {steps[fix].call()}"
            )
    sequence = successful_sequence(steps)
    worked = [" → ".join(sequence)] if sequence and outcome is not Outcome.FAILURE else []
    n = len(steps)
    if outcome is Outcome.SUCCESS:
        summary = f"Succeeded in {n} step{'s' * (n != 1)}"
        summary += f" after {len(failed)} failed step{'s' * (len(failed) != 1)}" if failed else ""
        summary += f": {' → '.join(sequence)}" if sequence else ""
    else:
        last = next((s for s in reversed(steps) if s.failed), None)
        verb = "Partly succeeded" if outcome is Outcome.PARTIAL else "Failed"
        if last is not None:
            summary = f"{verb}; `{last.action}` failed: {_problem(last)}"
        else:
            summary = f"{verb} although no step reported an error"
    why = None
    if outcome is not Outcome.SUCCESS:
        why = feedback or (failed[-1] if failed else None)
    if reward is not None:
        summary += f" (reward {reward:g})"
    return Reflection(
        summary=summary,
        worked=worked,
        failed=failed,
        why=why,
        lessons=lessons,
        successful_sequence=sequence if outcome is not Outcome.FAILURE else [],
        source="rules",
    )


# LLM --------------------------------------------------------------------------------------


MAX_REFLECTION_CHARS = 2000
"""The longest summary, reason or list item an LLM reflection may give."""
MAX_REFLECTION_ITEMS = 20
"""The most items of each list (worked, failed, lessons) an LLM reflection may give."""

_Text = Annotated[str, Field(max_length=MAX_REFLECTION_CHARS)]


class ReflectionAnswer(BaseModel):
    """The JSON the LLM is asked to answer with. Bounded (a reflection is a few sentences) and
    free of text a store refuses, so an answer the experience's metadata could not hold falls
    back to the rules' reflection instead of failing the record."""

    model_config = ConfigDict(extra="ignore")

    summary: _Text = Field(min_length=1)
    worked: list[_Text] = Field(default_factory=list, max_length=MAX_REFLECTION_ITEMS)
    failed: list[_Text] = Field(default_factory=list, max_length=MAX_REFLECTION_ITEMS)
    why: _Text | None = None
    lessons: list[_Text] = Field(default_factory=list, max_length=MAX_REFLECTION_ITEMS)

    @field_validator("summary", "why", "worked", "failed", "lessons")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        for text in value if isinstance(value, list) else [value]:
            if text is None:
                continue
            if "\x00" in text:
                raise ValueError("the reflection contains a NUL character")
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("the reflection is not valid Unicode (a lone surrogate)") from None
        return value


def reflection_messages(
    task: str,
    steps: Sequence[Step],
    outcome: Outcome,
    *,
    feedback: str | None = None,
    reward: float | None = None,
) -> list[dict[str, str]]:
    """The prompt: a system message with the answer's JSON shape and the attempt itself."""
    lines = []
    for i, step in enumerate(steps[:_MAX_STEPS_IN_PROMPT]):
        status = "FAILED" if step.failed else "ok"
        detail = _short(step.error or step.observation or "", _MAX_STEP_CHARS)
        thought = f" (thought: {_short(step.thought, 120)})" if step.thought else ""
        lines.append(f"{i + 1}. {step.call()} -> {status}: {detail}{thought}")
    if len(steps) > _MAX_STEPS_IN_PROMPT:
        lines.append(f"... {len(steps) - _MAX_STEPS_IN_PROMPT} more steps")
    extra = ""
    if reward is not None:
        extra += f"\nReward: {reward:g}"
    if feedback:
        extra += f"\nFeedback: {_short(feedback, 600)}"
    system = (
        "You review an agent's attempt at a task and say what it should remember for next "
        "time. Answer with one JSON object only: "
        '{"summary": "<one sentence>", "worked": ["<what worked>"], '
        '"failed": ["<what failed and the error>"], "why": "<why it failed, or null>", '
        '"lessons": ["<an actionable rule such as: when X, do Y first>"]}'
    )
    user = f"Task: {task}\nOutcome: {outcome.value}{extra}\nSteps:\n" + "\n".join(lines)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def parse_reflection(text: Any) -> ReflectionAnswer:
    """Validate the LLM's answer (JSON, optionally fenced); ``ValueError`` when it is not."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the answer was empty")
    body = _FENCE.sub("", text.strip())
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        start, end = body.find("{"), body.rfind("}")
        if start < 0 or end <= start:
            raise ValueError("the answer is not JSON") from None
        try:
            data = json.loads(body[start : end + 1])
        except json.JSONDecodeError as exc:
            raise ValueError(f"the answer is not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ValueError(f"the answer is JSON {type(data).__name__}, not an object")
    try:
        return ReflectionAnswer.model_validate(data)
    except PydanticValidationError as exc:
        raise ValueError(f"the JSON has the wrong shape: {first_message(exc)}") from None


def llm_reflection(
    settings: Settings,
    task: str,
    steps: Sequence[Step],
    outcome: Outcome,
    *,
    feedback: str | None = None,
    reward: float | None = None,
    completion: Completion | None = None,
) -> Reflection:
    """Ask ``settings.llm_model`` for a reflection, through the client every LLM call uses
    (:class:`~agentmem.semantic.llm.LLMClient`: ``llm_retries`` retries of transient errors
    with backoff from ``llm_backoff_s``). Raises on any failure (the caller falls back to the
    rules); the successful sequence is always the rules' one."""
    assert settings.llm_model, "llm_reflection needs settings.llm_model"
    client = LLMClient.from_settings(settings, completion)
    messages = reflection_messages(task, steps, outcome, feedback=feedback, reward=reward)
    answer = parse_reflection(client.complete(messages, prompt_id=PROMPT_ID))
    return Reflection(
        summary=answer.summary,
        worked=answer.worked,
        failed=answer.failed,
        why=answer.why,
        lessons=answer.lessons,
        successful_sequence=successful_sequence(steps) if outcome is not Outcome.FAILURE else [],
        source=f"llm:{settings.llm_model}",
    )


def reflect(
    settings: Settings,
    task: str,
    steps: Sequence[Step],
    outcome: Outcome,
    *,
    feedback: str | None = None,
    reward: float | None = None,
    completion: Completion | None = None,
) -> Reflection:
    """The reflection on an attempt: the LLM's when one is configured and answers well, else
    the rules' (never raises for an LLM problem)."""
    rules = rules_reflection(task, steps, outcome, feedback=feedback, reward=reward)
    if not settings.llm_model:
        return rules
    try:
        return llm_reflection(
            settings, task, steps, outcome, feedback=feedback, reward=reward, completion=completion
        )
    except Exception as exc:  # any LLM failure: keep the rules' reflection, never the task
        # Stored in the experience's metadata: a provider error may echo the key.
        reason = f"{type(exc).__name__}: {_short(scrub(str(exc), settings.llm_kwargs), 200)}"
        log.warning("LLM reflection failed (%s); kept the rules' reflection", reason)
        return rules.model_copy(update={"fallback_reason": reason})


__all__ = [
    "MAX_REFLECTION_CHARS",
    "MAX_REFLECTION_ITEMS",
    "PROMPT_ID",
    "ReflectionAnswer",
    "llm_reflection",
    "parse_reflection",
    "reflect",
    "reflection_messages",
    "rules_reflection",
]
