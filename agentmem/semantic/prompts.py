"""Versioned prompt templates of the LLM path: pure functions from a context to chat messages.

Each :class:`Prompt` names the pydantic model its answer must validate against. A prompt's
``id`` (``"extract-v1"``) is recorded in the provenance of every fact it produced, so a change
of wording is a new version, never an edit in place: add ``EXTRACT_V2`` next to ``EXTRACT_V1``,
register it in :data:`PROMPTS` and point :data:`EXTRACT` at it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from agentmem.semantic.schema import SINGLE_VALUED, DecisionBatch, ExtractionResult

Messages = list[dict[str, str]]


@dataclass(frozen=True, slots=True)
class Prompt:
    """A versioned prompt: ``render(**context)`` gives the messages; ``answer`` is the model of
    the JSON the LLM must return."""

    name: str
    version: int
    render: Callable[..., Messages]
    answer: type[BaseModel]

    @property
    def id(self) -> str:
        """``"<name>-v<version>"``, as recorded in provenance."""
        return f"{self.name}-v{self.version}"


_EXTRACT_SYSTEM_V1 = f"""You extract durable facts from a conversation for a long-term memory.

Rules:
- A fact is one atomic, self-contained statement about a person, their life, preferences,
  plans, relationships, possessions, work, places or events. Skip greetings, questions,
  small talk, reactions and anything said only to be polite.
- Write every fact in the third person with the person's name, never "I", "me" or "my"
  (use the speaker's name; "User" if the speaker is not named).
- Resolve relative dates against the conversation date ("yesterday" said on 2023-05-08 is
  2023-05-07) and write the absolute date into the fact text; put it in "event_time" as
  YYYY-MM-DD (the first day of the month or year when only those are known).
- "entities": the people, places, organisations and things the fact names.
- When the fact sets a single-valued attribute, give "subject", "attribute" and "value".
  Attributes: {", ".join(SINGLE_VALUED)}, favourite_<thing>, or likes:<thing> with value
  "positive" or "negative". Set "negated": true when the fact ends a value without giving a
  new one ("quit the job at Acme": attribute works_at, value Acme, negated true).
- "fact_type": one of attribute, preference, plan, event, statement.

Answer with only a JSON object, no prose and no code fences:
{{"facts": [{{"text": "...", "subject": "...", "entities": ["..."], "event_time": "YYYY-MM-DD"
or null, "attribute": "..." or null, "value": "..." or null, "negated": false,
"fact_type": "..."}}]}}
Return {{"facts": []}} when the conversation states no fact."""


def _extract_v1(*, text: str, said_at: datetime, speakers: Sequence[str]) -> Messages:
    who = ", ".join(speakers) if speakers else "User"
    user = (
        f"Conversation date: {said_at.date().isoformat()} ({said_at:%A})\n"
        f"Speakers: {who}\n\n"
        f"Conversation:\n{text}\n\n"
        'Return {"facts": [...]} as JSON.'
    )
    return [
        {"role": "system", "content": _EXTRACT_SYSTEM_V1},
        {"role": "user", "content": user},
    ]


EXTRACT_V1 = Prompt("extract", 1, _extract_v1, ExtractionResult)


_DECIDE_SYSTEM_V1 = """You keep a memory of facts up to date. For each new fact, compare it
with the existing facts and choose one operation:

- ADD: the fact is new information.
- UPDATE: the fact restates an existing fact with more or corrected detail; give "target"
  (the existing fact's id) and "text" (the merged fact).
- INVALIDATE: the fact contradicts an existing fact that is no longer true (a new home, job,
  partner, age, favourite; a reversed preference); give "target". The old fact is kept as
  history and the new fact is added.
- NOOP: the fact is already known (same meaning); give "target".

Facts about different people, or different attributes, never contradict each other.
Answer with only a JSON object, no prose and no code fences:
{"decisions": [{"fact": 0, "op": "ADD", "target": null, "text": null, "reason": "..."}]}
with one decision per new fact (two when one fact invalidates two existing facts)."""


def _decide_v1(*, existing: Sequence[dict[str, Any]], new: Sequence[dict[str, Any]]) -> Messages:
    user = (
        "Existing facts:\n"
        f"{json.dumps(list(existing), ensure_ascii=False, indent=1)}\n\n"
        "New facts:\n"
        f"{json.dumps(list(new), ensure_ascii=False, indent=1)}\n\n"
        'Return {"decisions": [...]} as JSON.'
    )
    return [
        {"role": "system", "content": _DECIDE_SYSTEM_V1},
        {"role": "user", "content": user},
    ]


DECIDE_V1 = Prompt("decide", 1, _decide_v1, DecisionBatch)


def _repair_v1(*, messages: Messages, answer: str, error: str) -> Messages:
    return [
        *messages,
        {"role": "assistant", "content": answer[:4000]},
        {
            "role": "user",
            "content": f"That answer could not be used: {error[:500]}\n"
            "Reply again with only the JSON object in the requested shape: no prose, no code "
            "fences.",
        },
    ]


REPAIR_V1 = Prompt("repair", 1, _repair_v1, BaseModel)
"""Asks once more after an answer that was not valid JSON of the expected shape."""

PROMPTS: dict[str, Prompt] = {p.id: p for p in (EXTRACT_V1, DECIDE_V1, REPAIR_V1)}
"""Every prompt version, by id."""

EXTRACT = EXTRACT_V1
"""The extraction prompt in use."""
DECIDE = DECIDE_V1
"""The decision prompt in use."""
REPAIR = REPAIR_V1
"""The repair prompt in use."""

__all__ = [
    "DECIDE",
    "DECIDE_V1",
    "EXTRACT",
    "EXTRACT_V1",
    "PROMPTS",
    "REPAIR",
    "REPAIR_V1",
    "Messages",
    "Prompt",
]
