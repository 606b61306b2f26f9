"""Profile fields from facts, bottom-up: which fact feeds which field (LLM-free rules, or one
structured LLM call).

Rules, for facts whose subject is the profile's owner (its id, its ``name`` field, or
``"user"``):

- single-valued attributes: ``lives_in`` -> ``location``, ``works_at`` -> ``employer``,
  ``occupation`` -> ``occupation``, ``age`` -> ``age``, ``name`` -> ``name``, ``married_to`` -> a
  ``relationships`` item;
- preferences -> ``preferences`` (a negated or "dislike/hate/can't stand" one -> ``dislikes``);
- plans -> ``goals``; facts saying "every / usually / always / each ..." -> ``routines``;
- kinship words (wife, sister, friend, ...) -> ``relationships``.

A field the model does not declare, or a value its type rejects, is skipped: facts only fill
fields that exist.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from agentmem.models import MemoryRecord
from agentmem.semantic.llm import LLMClient
from agentmem.semantic.prompts import Messages, Prompt

_ROUTINE = re.compile(r"\b(every|usually|always|each (?:morning|day|week|night|evening))\b", re.I)
_DISLIKE = re.compile(
    r"\b(dislikes?|hates?|can't stand|cannot stand|doesn't like|does not like)\b", re.I
)
_KIN = re.compile(
    r"\b(wife|husband|partner|sister|brother|mother|father|mom|dad|son|daughter|friend|"
    r"girlfriend|boyfriend|cousin|aunt|uncle|grandma|grandmother|grandfather|kids?|children)\b",
    re.I,
)
_SINGLE = {"lives_in": "location", "works_at": "employer", "occupation": "occupation",
           "age": "age", "name": "name"}  # fmt: skip


def owner_names(owner_id: str, current_name: Any) -> set[str]:
    """Subjects that are the profile's owner."""
    names = {"user", owner_id.lower()}
    if isinstance(current_name, str) and current_name:
        names.add(current_name.lower())
    return names


def field_for(fact: MemoryRecord) -> tuple[str, Any] | None:
    """The (field, value) a fact feeds by the rules, or None. List fields get the fact text."""
    meta = fact.metadata
    attribute = str(meta.get("attribute") or "")
    fact_type = str(meta.get("fact_type") or "")
    value = meta.get("value")
    if attribute in _SINGLE and value not in (None, "") and not meta.get("negated"):
        return _SINGLE[attribute], value
    if attribute == "married_to" and value:
        return "relationships", fact.text
    if fact_type == "preference":
        negated = bool(meta.get("negated")) or bool(_DISLIKE.search(fact.text))
        return ("dislikes" if negated else "preferences"), fact.text
    if fact_type == "plan":
        return "goals", fact.text
    if _ROUTINE.search(fact.text):
        return "routines", fact.text
    if _KIN.search(fact.text):
        return "relationships", fact.text
    return None


class ProfileUpdate(BaseModel):
    """One field the LLM fills from the facts: ``sources`` are fact numbers."""

    field: str
    value: Any
    sources: list[str] = Field(default_factory=list)
    reason: str = ""


class ProfileAnswer(BaseModel):
    """The answer of the ``profile`` prompt. ``updates`` is required (``[]`` when nothing
    changes): an object without it (``{"location": "Paris"}``) is malformed, so it gets the
    repair request and then the rules, as an extraction answer without ``facts`` does."""

    updates: list[ProfileUpdate]


_SYSTEM_V1 = """You maintain a profile of one person from facts about them. Given the profile's
fields (name, type and current value) and new facts, answer with one JSON object:
{"updates": [{"field": "<field name>", "value": <new value of the field's type>,
              "sources": ["<fact number>", ...], "reason": "..."}]}
A list field's value is the whole new list. Use only the fields given. Change a field only
when a fact states it; a newer fact that contradicts a field replaces its value."""


def _profile_v1(
    *, owner: str, fields: dict[str, dict[str, Any]], facts: Sequence[MemoryRecord]
) -> Messages:
    body = {
        "owner": owner,
        "fields": fields,
        "facts": [{"number": str(i + 1), "text": f.text} for i, f in enumerate(facts)],
    }
    return [
        {"role": "system", "content": _SYSTEM_V1},
        {"role": "user", "content": json.dumps(body, ensure_ascii=False, default=str)},
    ]


PROFILE_V1 = Prompt("profile", 1, _profile_v1, ProfileAnswer)
"""The profile-building prompt."""
PROFILE = PROFILE_V1


def ask_llm(
    client: LLMClient,
    owner: str,
    fields: dict[str, dict[str, Any]],
    facts: Sequence[MemoryRecord],
) -> list[tuple[str, Any, list[str], str]]:
    """(field, value, source fact ids, reason) the LLM chose; unknown fact numbers dropped."""
    answer = client.ask(PROFILE, owner=owner, fields=fields, facts=facts)
    assert isinstance(answer, ProfileAnswer)
    by_number = {str(i + 1): f.id for i, f in enumerate(facts)}
    return [
        (u.field, u.value, [by_number[s] for s in u.sources if s in by_number], u.reason)
        for u in answer.updates
    ]


__all__ = ["PROFILE", "PROFILE_V1", "ProfileAnswer", "ProfileUpdate", "ask_llm", "field_for",
           "owner_names"]  # fmt: skip
