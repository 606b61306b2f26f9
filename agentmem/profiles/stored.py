"""A profile read as stored, without its model: what ``context()`` shows.

``context()`` is not told which pydantic model a profile was kept with (the default
:class:`~agentmem.profiles.model.UserProfile` or one the user declared), so it renders the
stored values themselves (as JSON, as every version is stored), reads nothing through a model
and writes no migration: a profile kept with any model is shown, and a model changed between
runs never takes it out of the block.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from agentmem.profiles.model import UserProfile, render_lines
from agentmem.stores import NoteStore
from agentmem.stores._notes_sql import ProfileRow

_DEFAULT_ORDER = {name: i for i, name in enumerate(UserProfile.model_fields)}


def held_at(
    rows: Iterable[ProfileRow], at: float, accept: Callable[[ProfileRow], bool] = lambda _: True
) -> dict[str, ProfileRow]:
    """Per field, the version that held at ``at`` (from its ``valid_from``, or when it was
    recorded if that is unknown, up to its ``valid_to``) among those ``accept`` takes; where
    versions overlap, the latest recorded (``rows`` come oldest recorded first)."""
    held: dict[str, ProfileRow] = {}
    for row in rows:
        start = row.valid_from if row.valid_from is not None else row.recorded_at
        if start > at or (row.valid_to is not None and row.valid_to <= at):
            continue
        if accept(row):
            held[row.field] = row
    return held


def stored_lines(notes: NoteStore, key: str, *, as_of: datetime | None = None) -> str:
    """The profile ``key`` as prompt lines, from its stored values (current, or as they stood
    at ``as_of``): the default model's fields in its order, then the others by name."""
    if as_of is None:
        rows = {r.field: r for r in notes.profile_rows(key)}
    else:
        rows = held_at(notes.profile_rows(key, current_only=False), as_of.timestamp())
    names = sorted(rows, key=lambda n: (_DEFAULT_ORDER.get(n, len(_DEFAULT_ORDER)), n))
    return render_lines((name, rows[name].value) for name in names)


__all__ = ["held_at", "stored_lines"]
