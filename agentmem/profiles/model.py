"""Profile models: the named, typed fields a profile keeps, and what a profile read returns.

:class:`UserProfile` is the default for users and agents; declare your own pydantic model
(every field with a default, e.g. ``city: str | None = None``: a profile starts empty, and a
model with a required field is refused with :class:`~agentmem.errors.InvalidProfile`) and pass
it as ``mem.profile(user_id=..., model=M)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class UserProfile(BaseModel):
    """The default profile: who someone is, and what they like, do, know and want."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    location: str | None = None
    occupation: str | None = None
    employer: str | None = None
    age: int | None = None
    preferences: list[str] = Field(default_factory=list)
    dislikes: list[str] = Field(default_factory=list)
    routines: list[str] = Field(default_factory=list)
    relationships: list[str] = Field(default_factory=list)
    goals: list[str] = Field(default_factory=list)


class FieldValue(BaseModel):
    """One version of one profile field, with where it came from and when it held."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: Any
    sources: list[str] = Field(default_factory=list)
    """Ids of the facts it was built from (empty when set by hand)."""
    actor: str
    """``"api"`` (``set``), ``"facts:rules"``, ``"facts:llm:<model>"`` or ``"migrate"``."""
    reason: str = ""
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    recorded_at: datetime
    superseded_at: datetime | None = None


class ProfileView(BaseModel):
    """What ``profile.get()`` returns: the typed model and each set field's provenance."""

    key: str
    model: Any
    """An instance of the profile's model (``UserProfile`` or the one you declared)."""
    fields: dict[str, FieldValue] = Field(default_factory=dict)

    def render(self) -> str:
        """The profile as prompt lines (set fields only), in the model's field order."""
        return render_lines(
            (name, getattr(self.model, name))
            for name in type(self.model).model_fields
            if name in self.fields
        )


def render_lines(values: Iterable[tuple[str, Any]]) -> str:
    """Field values as prompt lines (``- favourite food: bacalhau``), empty values left out;
    a list's items joined by ``; ``."""
    lines = []
    for name, value in values:
        if value in (None, [], {}, ""):
            continue
        shown = "; ".join(str(v) for v in value) if isinstance(value, list) else str(value)
        lines.append(f"- {name.replace('_', ' ')}: {shown}")
    return "\n".join(lines)


__all__ = ["FieldValue", "ProfileView", "UserProfile", "render_lines"]
