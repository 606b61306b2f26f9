"""What a link is: a typed, directed edge between two notes of one scope, with who made it
and why."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from agentmem.errors import InvalidLink
from agentmem.models import Scope
from agentmem.stores._notes_sql import LinkRow


class LinkType(StrEnum):
    """How the source note relates to the target note."""

    RELATED = "related"
    """About the same thing (similar, or sharing entities / keywords)."""
    ELABORATES = "elaborates"
    """Says what the target says, and more."""
    CONTRADICTS = "contradicts"
    """Sets a different value of the same attribute (the target was superseded)."""
    FOLLOWS = "follows"
    """A later event or plan of the same subject."""

    @classmethod
    def parse(cls, value: str | LinkType) -> LinkType:
        """The link type named ``value``, or :class:`InvalidLink` listing the known ones."""
        try:
            return cls(value)
        except ValueError:
            known = ", ".join(t.value for t in cls)
            raise InvalidLink(f"unknown link type {value!r}; use one of: {known}") from None


class Link(BaseModel):
    """One link as :meth:`Memory.links` lists it. ``direction`` is ``"out"`` when the note
    asked about is the source, ``"in"`` when it is the target; ``other_id`` is the far end."""

    model_config = ConfigDict(frozen=True)

    source_id: str
    target_id: str
    type: LinkType
    made_by: str
    """``"rules"``, ``"llm:<model>"`` or ``"api"``."""
    reason: str
    score: float
    scope: Scope
    created_at: datetime
    direction: str = "out"
    other_id: str = ""

    @classmethod
    def from_row(cls, row: LinkRow, about: str | None = None) -> Link:
        """The link of a stored row, seen from the note ``about`` (default: its source)."""
        incoming = about is not None and row.target_id == about and row.source_id != about
        return cls(
            source_id=row.source_id,
            target_id=row.target_id,
            type=LinkType.parse(row.link_type),
            made_by=row.made_by,
            reason=row.reason,
            score=row.score,
            scope=row.scope,
            created_at=datetime.fromtimestamp(row.created_at, UTC),
            direction="in" if incoming else "out",
            other_id=row.source_id if incoming else row.target_id,
        )


class LinkReport(BaseModel):
    """What linking new notes did: the counted work of one add (for tests and benchmarks)."""

    notes: int = 0
    """New notes linked."""
    candidates: int = 0
    """Neighbours examined, over all new notes."""
    links: int = 0
    """Links written."""
    evolved: int = 0
    """Neighbour notes updated (each a new version in its history)."""
    llm_calls: int = 0
    fallbacks: int = 0
    """LLM answers that could not be used, replaced by the rules."""


__all__ = ["Link", "LinkReport", "LinkType"]
