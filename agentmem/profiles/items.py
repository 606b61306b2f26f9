"""Which fact each item of a list profile field came from, so that an item goes with its fact
(rewritten, ended, deleted or forgotten) and the other items stay.

The rules append one item per fact, its text, and keep the item's fact id at the same place
from the end of ``sources`` (a list capped at ``profile.max_items`` loses its oldest items and
ids alike): a field's first items without an id were set by hand. An LLM's list names the facts
it drew on, not one per item, so its items are paired with their facts only where there are as
many ids as items.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from agentmem.models import new_id
from agentmem.stores._notes_sql import ProfileRow

RULES = "facts:rules"
"""The actor of values the LLM-free rules drew from facts."""

Pair = tuple[Any, str | None]
"""One item of a list field and the id of the fact it came from (None: set by hand)."""


def item_sources(row: ProfileRow) -> tuple[list[Pair], bool] | None:
    """Each item of a list field's value with its fact, and whether each item is exactly what
    its fact gives by the rules (its text); None where the items cannot be paired with facts
    (more ids than items, or an LLM's list with fewer)."""
    value, sources = row.value, list(row.sources)
    if not isinstance(value, list):
        return None
    if row.actor == RULES and len(sources) <= len(value):
        hand = len(value) - len(sources)
        pairs: list[Pair] = [(item, None) for item in value[:hand]]
        return [*pairs, *zip(value[hand:], sources, strict=True)], True
    if row.actor.startswith("facts:") and len(sources) == len(value):
        return list(zip(value, sources, strict=True)), False
    return None


def kept_items(
    row: ProfileRow, keeps: Callable[[Any, str, bool], bool]
) -> tuple[list[Any], list[str], list[str]] | None:
    """``row``'s items and fact ids without the items ``keeps(item, fact_id, exact)`` refuses
    (hand-set items always stay), and the ids of the facts whose items went; None when every
    item stays or the items cannot be paired with facts."""
    paired = item_sources(row)
    if paired is None:
        return None
    pairs, exact = paired
    kept = [(item, i) for item, i in pairs if i is None or keeps(item, i, exact)]
    if len(kept) == len(pairs):
        return None
    gone = sorted({i for _, i in pairs if i is not None} - {i for _, i in kept if i is not None})
    return [item for item, _ in kept], [i for _, i in kept if i is not None], gone


def without_forgotten(row: ProfileRow, ids: Collection[str], now: float) -> ProfileRow | None:
    """The version that replaces a list field's current one when facts among ``ids`` it drew
    on are forgotten (that one is erased with every version naming them): the items of its
    other facts and those set by hand, recorded ``now``. None (the field goes) for a single
    value, for items not paired with their facts, or when no item is left."""
    paired = item_sources(row)
    if paired is None:
        return None
    kept = [(item, i) for item, i in paired[0] if i is None or i not in ids]
    if not kept:
        return None
    return ProfileRow(
        id=new_id(),
        profile_key=row.profile_key,
        scope=row.scope,
        field=row.field,
        value=[item for item, _ in kept],
        value_type=row.value_type,
        sources=tuple(i for _, i in kept if i is not None),
        actor=row.actor,
        reason="a fact it was drawn from was forgotten",
        valid_from=row.valid_from,
        valid_to=None,
        recorded_at=now,
    )


__all__ = ["RULES", "item_sources", "kept_items", "without_forgotten"]
