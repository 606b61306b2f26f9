"""Merge two entities by hand, and undo a merge (manual or automatic).

A merge folds one entity's names, relations and episode links into another and is recorded
as a :class:`~agentmem.graph.model.Merge`, which keeps what is needed to split it back out;
an undone merge keeps its names apart from that entity from then on.
"""

from __future__ import annotations

from agentmem.errors import NotFound, ValidationError
from agentmem.graph.model import (
    Entity,
    GraphChange,
    ItemKind,
    Merge,
    MergeMethod,
    NameUse,
    stable_id,
)
from agentmem.graph.resolve import GENERIC_TYPE
from agentmem.graph.state import GraphState
from agentmem.graph.working import Working
from agentmem.models import utcnow
from agentmem.settings import GraphSettings


def plan_merge(
    state: GraphState,
    settings: GraphSettings,
    keep_id: str,
    absorb_id: str,
    *,
    merge_id: str | None = None,
) -> GraphChange:
    """Fold entity ``absorb_id`` into ``keep_id`` (names, relations, episode links); the
    :class:`Merge` record remembers the absorbed entity so :func:`plan_undo` can restore it."""
    if keep_id == absorb_id:
        raise ValidationError("an entity cannot be merged with itself")
    working = Working(state, settings)
    keep = working.touch(keep_id)
    absorbed = working.touch(absorb_id)
    moved = set(absorbed.names)
    for name, use in absorbed.names.items():
        keep.names[name] = NameUse(surface=use.surface, facts=list(use.facts))
        working.resolver.owners[name] = keep_id
    if keep.type == GENERIC_TYPE:
        keep.type = absorbed.type
    working.drop(ItemKind.ENTITY, absorb_id)
    working.repoint(moved)
    working.put(
        Merge(
            id=merge_id or stable_id(state.key, "manual-merge", keep_id, absorb_id, str(utcnow())),
            scope=state.scope,
            entity_id=keep_id,
            names=sorted(moved),
            method=MergeMethod.MANUAL,
            absorbed_id=absorb_id,
            absorbed_name=absorbed.name,
            absorbed_type=absorbed.type,
        )
    )
    return working.change()


def plan_undo(state: GraphState, settings: GraphSettings, merge_id: str) -> GraphChange:
    """Split a merge's names back out into their own entity (a manual merge restores the
    absorbed entity with its id) and keep them apart from then on."""
    merge = state.merges.get(merge_id)
    if merge is None:
        raise NotFound(f"no merge {merge_id!r} in the graph of scope {state.scope}")
    if merge.undone_at is not None:
        raise ValidationError(f"merge {merge_id!r} was already undone at {merge.undone_at}")
    working = Working(state, settings)
    keep = working.entity(merge.entity_id)
    if keep is None:
        raise NotFound(
            f"entity {merge.entity_id!r} of merge {merge_id!r} is no longer in the graph"
        )
    keep = working.touch(keep.id)
    moved = {n: keep.names[n] for n in merge.names if n in keep.names}
    if not moved:
        raise ValidationError(
            f"the names of merge {merge_id!r} ({', '.join(merge.names)}) are no longer used; "
            "nothing to split"
        )
    if len(moved) == len(keep.names):
        raise ValidationError(f"undoing merge {merge_id!r} would leave {keep.name!r} with no name")
    for name in moved:
        del keep.names[name]
    first = next(iter(moved.values()))
    split_id = merge.absorbed_id or stable_id(state.key, "split", merge.id)
    split = Entity(
        id=split_id,
        scope=state.scope,
        name=merge.absorbed_name or first.surface,
        type=merge.absorbed_type or keep.type,
        names=dict(moved),
    )
    working.put(split)
    for name in moved:
        working.resolver.owners[name] = split_id
    working.repoint(set(moved))
    working.put(merge.model_copy(update={"undone_at": utcnow()}))
    return working.change()


__all__ = ["plan_merge", "plan_undo"]
