"""The knowledge graph's data model: entities, temporal relations, episode links, communities.

A graph is kept per **partition**: the exact scope of the facts it was built from (user alice;
user alice + agent bot; ...). Entities are resolved only within a partition, so agents and
users never share (or leak) an entity; a query scope reads every partition it contains, as it
reads records.

Items, each with an ``id`` unique in its partition and the partition's ``scope``:

- :class:`Entity`: a node. ``names`` maps every normalised name it was mentioned by to the
  surface form and the facts that used it: the provenance that lets a merge be undone.
- :class:`Relation`: an edge ``source --predicate--> target`` stated by one fact, bitemporal as
  in Graphiti: valid time (``valid_from`` / ``valid_to``: when it held) and transaction time
  (``created_at`` / ``invalidated_at``: when the system learned it and when it stopped
  believing it).
- :class:`EpisodeLink`: which entities one episode mentions (through the facts drawn from it).
- :class:`Community`: a group of entities (level 0) or of communities (level 1 and up), with a
  summary; ``parent`` points one level up, so the hierarchy is a forest.
- :class:`FactEntry`: what one fact contributed (names, relations, episodes), so an updated or
  deleted fact is taken out exactly.
- :class:`Merge`: an entity-resolution decision (automatic or manual), kept so it can be undone.
- :class:`GraphMeta`: bookkeeping (when communities were last computed).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agentmem.models import Scope, as_utc, utcnow

MAX_NAME_CHARS = 300
"""Longest entity name kept (longer mentions are cut)."""
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_NAMESPACE = uuid.UUID("6f1c3d52-8e7a-4b8e-9a51-2f0e4c1d7b90")


class ItemKind(StrEnum):
    """What a stored graph item is."""

    ENTITY = "entity"
    RELATION = "relation"
    LINK = "link"
    COMMUNITY = "community"
    FACT = "fact"
    MERGE = "merge"
    META = "meta"


def partition_key(scope: Scope) -> str:
    """The stable key of a scope's partition: readable, and unambiguous through a hash of the
    exact scope fields (so ``a,b`` in one field never collides with two fields)."""
    fields = scope.fields()
    readable = ".".join(f"{k.removesuffix('_id')}-{v}" for k, v in fields.items())
    readable = re.sub(r"[^A-Za-z0-9_.@:-]", "-", readable)[:120]
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode("utf-8")).hexdigest()
    return f"{readable}.{digest[:16]}"


def stable_id(*parts: str) -> str:
    """A deterministic UUID from its parts (a rebuild gives every item the same id)."""
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))


def clean_name(value: str) -> str:
    """A mention as an entity name: control characters dropped, whitespace collapsed, cut to
    :data:`MAX_NAME_CHARS`. Quotes, brackets and Cypher-like text are kept verbatim: names
    are data, never code (parameterised everywhere)."""
    text = " ".join(_CONTROL.sub(" ", value).split())
    return text[:MAX_NAME_CHARS]


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False)

    kind: ClassVar[ItemKind]
    id: str = Field(min_length=1, max_length=400)
    scope: Scope

    @field_validator("*", mode="before")
    @classmethod
    def _aware(cls, value: Any) -> Any:
        return as_utc(value) if isinstance(value, datetime) else value


class NameUse(BaseModel):
    """One name an entity was mentioned by: its surface form and the facts that used it."""

    model_config = ConfigDict(extra="forbid")

    surface: str
    facts: list[str] = Field(default_factory=list)


class Entity(_Item):
    """An entity node: a person, place, organisation or thing the facts mention."""

    kind: ClassVar[ItemKind] = ItemKind.ENTITY
    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    type: str = "entity"
    names: dict[str, NameUse] = Field(default_factory=dict)
    """Normalised name -> how it was written and which facts used it."""
    summary: str = ""
    embedding: list[float] | None = Field(default=None, repr=False)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @field_validator("name")
    @classmethod
    def _clean(cls, value: str) -> str:
        cleaned = clean_name(value)
        if not cleaned:
            raise ValueError("an entity name must not be blank")
        return cleaned

    @property
    def aliases(self) -> list[str]:
        """Every other way it was written (surface forms besides ``name``), sorted."""
        return sorted({u.surface for u in self.names.values()} - {self.name})

    @property
    def fact_ids(self) -> list[str]:
        """The facts that mention it, in first-mention order."""
        return list(dict.fromkeys(f for use in self.names.values() for f in use.facts))


class Relation(_Item):
    """A directed, bitemporal edge ``source --predicate--> target`` stated by a fact."""

    kind: ClassVar[ItemKind] = ItemKind.RELATION
    source: str
    target: str
    predicate: str = Field(min_length=1, max_length=80)
    source_name: str
    """Normalised name the fact used for the source (re-resolved after a merge or split)."""
    target_name: str
    fact_ids: list[str] = Field(default_factory=list)
    episode_ids: list[str] = Field(default_factory=list)
    fact: str = ""
    """The text of the fact that states it."""
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    invalidated_at: datetime | None = None

    def holds(self, as_of: datetime | None = None, now: datetime | None = None) -> bool:
        """Whether it holds at ``as_of`` in valid time (any belief, as ``search(as_of=)``);
        without ``as_of``: not invalidated, already started and not expired at ``now`` (a
        relation whose ``valid_from`` is in the future does not hold yet)."""
        if as_of is not None:
            when = as_utc(as_of)
            start = self.valid_from or self.created_at
            return start <= when and (self.valid_to is None or self.valid_to > when)
        moment = now or utcnow()
        started = self.valid_from is None or self.valid_from <= moment
        return (
            self.invalidated_at is None
            and started
            and (self.valid_to is None or self.valid_to > moment)
        )


class EpisodeLink(_Item):
    """The entities an episode mentions (``id`` is the episode id)."""

    kind: ClassVar[ItemKind] = ItemKind.LINK
    entity_ids: list[str] = Field(default_factory=list)
    names: list[str] = Field(default_factory=list)
    """Normalised names behind ``entity_ids`` (re-resolved after a merge or split)."""
    fact_ids: list[str] = Field(default_factory=list)


class FactEntry(_Item):
    """What one fact (``id``: its record id) contributed, at which version."""

    kind: ClassVar[ItemKind] = ItemKind.FACT
    version: int = 1
    names: list[str] = Field(default_factory=list)
    relation_ids: list[str] = Field(default_factory=list)
    episode_ids: list[str] = Field(default_factory=list)
    concepts: list[str] = Field(default_factory=list)
    """Content words of the fact (not entity names): the concept nodes the graph channel's
    PageRank also walks through (``GraphSettings.concepts``)."""


class MergeMethod(StrEnum):
    """How two names were decided to be one entity."""

    FUZZY = "fuzzy"
    EMBEDDING = "embedding"
    MANUAL = "manual"


class Merge(_Item):
    """An entity-resolution decision: ``names`` were folded into ``entity_id``.

    Automatic merges (fuzzy or embedding match of a new name) and manual ones
    (``mem.graph.merge``) are both kept; undoing one splits the names back out (a manual merge
    restores the absorbed entity with its id) and keeps the two apart from then on.
    """

    kind: ClassVar[ItemKind] = ItemKind.MERGE
    entity_id: str
    names: list[str]
    method: MergeMethod
    score: float | None = None
    absorbed_id: str | None = None
    absorbed_name: str | None = None
    absorbed_type: str | None = None
    at: datetime = Field(default_factory=utcnow)
    undone_at: datetime | None = None


class Community(_Item):
    """A community: entities (level 0) or communities (level >= 1) found together, with a
    summary; ``parent`` is the community one level up that contains it."""

    kind: ClassVar[ItemKind] = ItemKind.COMMUNITY
    level: int = Field(ge=0, le=32)
    members: list[str] = Field(default_factory=list)
    parent: str | None = None
    size: int = 0
    """How many entities it holds (at every level)."""
    summary: str = ""
    top_entities: list[str] = Field(default_factory=list)
    top_predicates: list[str] = Field(default_factory=list)
    summarised_by: str = "rules"
    created_at: datetime = Field(default_factory=utcnow)


class GraphMeta(_Item):
    """Bookkeeping of a partition (``id`` is always ``"meta"``)."""

    kind: ClassVar[ItemKind] = ItemKind.META
    communities_version: int = 0
    """The partition version the communities were computed at (stale when it moved on)."""
    components: dict[str, list[str]] = Field(default_factory=dict)
    """Fingerprint of a connected component -> its level-0 community ids, so an unchanged
    component keeps its communities (and their summaries) when others are recomputed."""


GraphItem = Entity | Relation | EpisodeLink | FactEntry | Merge | Community | GraphMeta
ITEM_TYPES: dict[ItemKind, type[GraphItem]] = {
    ItemKind.ENTITY: Entity,
    ItemKind.RELATION: Relation,
    ItemKind.LINK: EpisodeLink,
    ItemKind.FACT: FactEntry,
    ItemKind.MERGE: Merge,
    ItemKind.COMMUNITY: Community,
    ItemKind.META: GraphMeta,
}
META_ID = "meta"


@dataclass
class GraphChange:
    """Everything one update changes in a partition, applied atomically by a graph store.

    ``replace`` empties the partition first (a rebuild). Deletes are applied before upserts.
    """

    upserts: list[GraphItem] = field(default_factory=list)
    deletes: list[tuple[ItemKind, str]] = field(default_factory=list)
    replace: bool = False

    def is_empty(self) -> bool:
        """Whether it changes nothing."""
        return not (self.upserts or self.deletes or self.replace)

    def upsert(self, *items: GraphItem) -> None:
        """Add or replace items."""
        self.upserts.extend(items)

    def delete(self, kind: ItemKind, item_id: str) -> None:
        """Remove an item (a missing one is ignored)."""
        self.deletes.append((kind, item_id))

    def compact(self) -> GraphChange:
        """The same change with one entry per item: the last upsert wins, and an item
        deleted and then upserted is just upserted."""
        last: dict[tuple[ItemKind, str], GraphItem] = {}
        for item in self.upserts:
            last[(item.kind, item.id)] = item
        deletes = [d for d in dict.fromkeys(self.deletes) if d not in last]
        return GraphChange(upserts=list(last.values()), deletes=deletes, replace=self.replace)


def dump_item(item: GraphItem) -> str:
    """An item as stored: JSON."""
    return item.model_dump_json()


def load_item(kind: str, data: str) -> GraphItem:
    """A stored item back (raises ``ValueError`` / pydantic's error on bad data)."""
    model = ITEM_TYPES[ItemKind(kind)]
    return model.model_validate_json(data)


__all__ = [
    "ITEM_TYPES",
    "MAX_NAME_CHARS",
    "META_ID",
    "Community",
    "Entity",
    "EpisodeLink",
    "FactEntry",
    "GraphChange",
    "GraphItem",
    "GraphMeta",
    "ItemKind",
    "Merge",
    "MergeMethod",
    "NameUse",
    "Relation",
    "clean_name",
    "dump_item",
    "load_item",
    "partition_key",
    "stable_id",
]
