"""The checks a profile value passes before it is stored, and the validators of a profile
model's fields (built once per model)."""

from __future__ import annotations

import logging
import math
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


def check_exact(name: str, given: Any, checked: Any, expected: str, *, whole: Any = None) -> None:
    """Refuse what lax validation would turn into another value: a bool given for a number
    (``age=True`` stored as 1), and a NaN or an infinity (no fact holds one); ``given`` is
    the value passed, ``checked`` what the field's validator made of it (``whole``: the
    value passed, where these are items of it)."""
    whole = given if whole is None else whole
    bool_given = isinstance(given, bool) and not isinstance(checked, bool)
    if bool_given or (isinstance(checked, float) and not math.isfinite(checked)):
        why = "a bool is not a number" if bool_given else "a profile keeps finite numbers only"
        raise InvalidProfile(f"profile field {name!r} expects {expected}, got {whole!r} ({why})")
    if isinstance(checked, BaseModel):
        checked = dict(checked)
        given = dict(given) if isinstance(given, BaseModel) else given
    if isinstance(checked, dict):
        for key, item in checked.items():
            check_exact(name, given.get(key) if isinstance(given, Mapping) else None, item,
                        expected, whole=whole)  # fmt: skip
    elif isinstance(checked, list | tuple | set | frozenset):
        items = list(given) if isinstance(given, list | tuple | set | frozenset) else []
        if isinstance(checked, list | tuple) and len(items) == len(checked):
            for given_item, item in zip(items, checked, strict=True):
                check_exact(name, given_item, item, expected, whole=whole)
            return
        if any(isinstance(i, bool) for i in items) and not any(
            isinstance(i, bool) for i in checked
        ):  # unordered: a bool given, none kept
            raise InvalidProfile(
                f"profile field {name!r} expects {expected}, got {whole!r} (a bool is not a number)"
            )
        for item in checked:
            check_exact(name, None, item, expected, whole=whole)


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


__all__ = ["check_exact", "check_strings", "field_adapters", "llm_value"]
