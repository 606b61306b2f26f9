"""The checks a profile value passes before it is stored, and the validators of a profile
model's fields (built once per model)."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, cast

from pydantic import BaseModel, TypeAdapter

from agentmem.errors import InvalidProfile
from agentmem.semantic.schema import MAX_FACT_CHARS

log = logging.getLogger("agentmem.profiles.api")

_ADAPTERS: weakref.WeakKeyDictionary[
    type[BaseModel], tuple[list[tuple[str, Any]], Mapping[str, TypeAdapter[Any]]]
] = weakref.WeakKeyDictionary()


def field_adapters(model: type[BaseModel]) -> Mapping[str, TypeAdapter[Any]]:
    """A validator per field of ``model``, built once per model and its fields' annotations
    (building them cost more than reading a profile, on every ``context`` call)."""
    fields = [(name, f.annotation) for name, f in model.model_fields.items()]
    cached = _ADAPTERS.get(model)
    if cached is not None and _same_fields(cached[0], fields):
        return cached[1]
    adapters = MappingProxyType(
        {name: TypeAdapter(cast(Any, annotation)) for name, annotation in fields}
    )
    _ADAPTERS[model] = (fields, adapters)
    return adapters


def _same_fields(old: list[tuple[str, Any]], new: list[tuple[str, Any]]) -> bool:
    """The same field names, in order, with the very same annotations."""
    return len(old) == len(new) and all(
        a == b and x is y for (a, x), (b, y) in zip(old, new, strict=True)
    )


def llm_value(name: str, value: Any, max_items: int) -> Any:
    """An LLM's value held to the checks of ``set()`` and to what facts can say (no text
    longer than a fact; a list keeps its newest ``max_items``, as the rules' lists do)."""
    check_strings(name, value)
    items = value if isinstance(value, list) else [value]
    if any(isinstance(item, str) and len(item) > MAX_FACT_CHARS for item in items):
        raise InvalidProfile(f"over {MAX_FACT_CHARS:,} characters, longer than any fact")
    if isinstance(value, list) and len(value) > max_items:
        log.warning("LLM gave %d items for profile field %r; kept the last %d", len(value),
                    name, max_items)  # fmt: skip
        return value[-max_items:]
    return value


def check_strings(name: str, value: Any) -> None:
    """Refuse text no store keeps as it is: a NUL character or a lone surrogate."""
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidProfile(f"profile field {name!r} contains a NUL character; remove it")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidProfile(
                f"profile field {name!r} is not valid Unicode (a lone surrogate)"
            ) from None
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            check_strings(name, item)
    elif isinstance(value, dict):
        for item in (*value.keys(), *value.values()):
            check_strings(name, item)


__all__ = ["check_strings", "field_adapters", "llm_value"]
