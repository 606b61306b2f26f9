"""The working copy of one graph update: what a change touches, over a partition's state.

:class:`Overlay` is the copy-on-write view (reads fall through to the stored state until an
item is changed; deletions are remembered); :class:`Working` adds what updates do with it:
resolve a fact's mentions to entities, add and remove its relations and episode links, and
re-point relations after a merge. Either ends in one :class:`~agentmem.graph.model.GraphChange`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import numpy as np

from agentmem.errors import NotFound
from agentmem.graph.fact_reading import Mention, read_fact
from agentmem.graph.model import (
    Entity,
    EpisodeLink,
    FactEntry,
    GraphChange,
    ItemKind,
    Merge,
    NameUse,
    Relation,
    stable_id,
)
from agentmem.graph.resolve import GENERIC_TYPE, Candidate, Resolver, normalise
from agentmem.graph.state import GraphState
from agentmem.models import MemoryRecord, utcnow
from agentmem.settings import GraphSettings

Item = Entity | Relation | EpisodeLink | FactEntry | Merge


def merge_keeping(merge: Merge, keep: Callable[[str], bool]) -> Merge | None:
    """``merge`` with only the names ``keep`` accepts (the absorbed name goes with its name),
    or None when none is left: a merge must not outlive the facts that gave it its names."""
    names = [n for n in merge.names if keep(n)]
    if not names:
        return None
    if names == merge.names:
        return merge
    update: dict[str, Any] = {"names": names}
    if merge.absorbed_name is not None and normalise(merge.absorbed_name) not in names:
        update["absorbed_name"] = None
    return merge.model_copy(update=update)


class Overlay:
    """The items one update touches, over a partition's state: copied on first change, then
    turned into one :class:`GraphChange`."""

    def __init__(self, state: GraphState) -> None:
        self.state = state
        self.entities: dict[str, Entity] = {}
        self.relations: dict[str, Relation] = {}
        self.links: dict[str, EpisodeLink] = {}
        self.facts: dict[str, FactEntry] = {}
        self.merges: dict[str, Merge] = {}
        self.deleted: set[tuple[ItemKind, str]] = set()

    # reads through the overlay

    def entity(self, entity_id: str) -> Entity | None:
        if (ItemKind.ENTITY, entity_id) in self.deleted:
            return None
        return self.entities.get(entity_id) or self.state.entities.get(entity_id)

    def fact(self, fact_id: str) -> FactEntry | None:
        if (ItemKind.FACT, fact_id) in self.deleted:
            return None
        return self.facts.get(fact_id) or self.state.facts.get(fact_id)

    def relation(self, relation_id: str) -> Relation | None:
        if (ItemKind.RELATION, relation_id) in self.deleted:
            return None
        return self.relations.get(relation_id) or self.state.relations.get(relation_id)

    def link(self, episode_id: str) -> EpisodeLink | None:
        if (ItemKind.LINK, episode_id) in self.deleted:
            return None
        return self.links.get(episode_id) or self.state.links.get(episode_id)

    def merge(self, merge_id: str) -> Merge | None:
        if (ItemKind.MERGE, merge_id) in self.deleted:
            return None
        return self.merges.get(merge_id) or self.state.merges.get(merge_id)

    def all_relations(self) -> Iterable[Relation]:
        for rid in {*self.state.relations, *self.relations}:
            rel = self.relation(rid)
            if rel is not None:
                yield rel

    def all_links(self) -> Iterable[EpisodeLink]:
        for eid in {*self.state.links, *self.links}:
            link = self.link(eid)
            if link is not None:
                yield link

    # writes to the overlay

    def touch(self, entity_id: str) -> Entity:
        """The entity as a copy this update may change (NotFound when it is not there)."""
        entity = self.entities.get(entity_id)
        if entity is not None:
            return entity
        stored = self.state.entities.get(entity_id)
        if stored is None or (ItemKind.ENTITY, entity_id) in self.deleted:
            raise NotFound(f"no entity {entity_id!r} in the graph of scope {self.state.scope}")
        names = {
            k: NameUse(surface=v.surface, facts=list(v.facts)) for k, v in stored.names.items()
        }
        copy = stored.model_copy(update={"names": names, "updated_at": utcnow()})
        self.entities[entity_id] = copy
        return copy

    def put(self, item: Item) -> None:
        self.deleted.discard((item.kind, item.id))
        self._tables()[item.kind][item.id] = item

    def _tables(self) -> dict[ItemKind, dict[str, Any]]:
        return {
            ItemKind.ENTITY: self.entities,
            ItemKind.RELATION: self.relations,
            ItemKind.LINK: self.links,
            ItemKind.FACT: self.facts,
            ItemKind.MERGE: self.merges,
        }

    def drop(self, kind: ItemKind, item_id: str) -> None:
        self._tables()[kind].pop(item_id, None)
        self.deleted.add((kind, item_id))

    def change(self) -> GraphChange:
        """Everything touched, as one change (canonical names refreshed)."""
        for entity in self.entities.values():
            if (ItemKind.ENTITY, entity.id) in self.deleted or not entity.names:
                continue
            surfaces = [(len(u.facts), u.surface) for u in entity.names.values()]
            if entity.name not in {s for _, s in surfaces}:
                entity.name = max(surfaces, key=lambda s: s[0])[1]
        change = GraphChange(deletes=sorted(self.deleted))
        for table in (self.entities, self.relations, self.links, self.facts, self.merges):
            for item_id, item in table.items():
                if (item.kind, item_id) not in self.deleted:
                    change.upsert(item)
        return change


def resolver_for(state: GraphState, settings: GraphSettings) -> Resolver:
    """A resolver that knows the partition's entities, names and undone merges."""
    resolver = Resolver(settings, owners=state.names())
    for entity in state.entities.values():
        resolver.candidates[entity.id] = Candidate(
            entity.id, entity.type, state.vectors.get(entity.id)
        )
    for merge in state.merges.values():
        if merge.undone_at is not None:
            resolver.keep_apart(merge.names, merge.entity_id)
    return resolver


class Working(Overlay):
    """An :class:`Overlay` that adds and removes facts, resolving their mentions as it goes."""

    def __init__(self, state: GraphState, settings: GraphSettings) -> None:
        super().__init__(state)
        self.settings = settings
        self.resolver = resolver_for(state, settings)
        self.unused: set[str] = set()
        """Names a removed fact was the last to use."""

    def drop(self, kind: ItemKind, item_id: str) -> None:
        super().drop(kind, item_id)
        if kind is ItemKind.ENTITY:
            self.resolver.drop_entity(item_id)

    def change(self) -> GraphChange:
        """Everything touched, merges rid of the names no fact uses any more."""
        gone = {n for n in self.unused if n not in self.resolver.owners}
        for merge_id in sorted({*self.state.merges, *self.merges} if gone else ()):
            merge = self.merge(merge_id)
            if merge is None:
                continue
            kept = merge_keeping(merge, lambda n: n not in gone)
            if kept is None:
                self.drop(ItemKind.MERGE, merge_id)
            elif kept is not merge:
                self.put(kept)
        return super().change()

    # facts

    def remove_fact(self, fact_id: str) -> None:
        """Take out everything a fact contributed (no-op for an unknown fact)."""
        entry = self.fact(fact_id)
        if entry is None:
            return
        for name in entry.names:
            owner = self.resolver.owners.get(name)
            entity = self.entity(owner) if owner else None
            if entity is None:
                continue
            entity = self.touch(entity.id)
            use = entity.names.get(name)
            if use is not None and fact_id in use.facts:
                use.facts.remove(fact_id)
            if use is not None and not use.facts:
                del entity.names[name]
                self.resolver.forget(name)
                self.unused.add(name)
            if not entity.names:
                self.drop(ItemKind.ENTITY, entity.id)
        for relation_id in entry.relation_ids:
            self.drop(ItemKind.RELATION, relation_id)
        self.drop(ItemKind.FACT, fact_id)
        for episode_id in entry.episode_ids:
            self._relink(episode_id, remove=fact_id)

    def remove_episode(self, episode_id: str) -> None:
        """Forget which entities a deleted episode mentioned."""
        if self.link(episode_id) is not None:
            self.drop(ItemKind.LINK, episode_id)

    def add_fact(self, record: MemoryRecord, vectors: dict[str, np.ndarray]) -> None:
        """Resolve a fact's mentions, add its relations and link its episodes."""
        reading = read_fact(record)
        names: list[str] = []
        for mention in reading.mentions:
            self._mention(record.id, mention, vectors.get(mention.name))
            names.append(mention.name)
        sources = [s for s in record.provenance.get("sources", []) if isinstance(s, str)]
        relation_ids = self._relate(record, reading.relations, sources)
        self.put(
            FactEntry(
                id=record.id,
                scope=self.state.scope,
                version=record.version,
                names=names,
                relation_ids=relation_ids,
                episode_ids=sources,
                concepts=list(reading.concepts),
            )
        )
        for episode_id in sources:
            self._relink(episode_id, add=record.id)

    def _relate(
        self,
        record: MemoryRecord,
        triples: Iterable[tuple[str, str, str]],
        sources: list[str],
    ) -> list[str]:
        """Put a relation for each triple whose names resolved to two entities; their ids."""
        valid_from: datetime = record.valid_from or record.event_time or record.created_at
        relation_ids = []
        related: set[tuple[str, str, str]] = set()
        for source_name, predicate, target_name in triples:
            source = self.resolver.owners.get(source_name)
            target = self.resolver.owners.get(target_name)
            if source is None or target is None or source == target:
                continue  # a name resolved to the entity it relates to: a mention, no edge
            if (source, predicate, target) in related:
                continue  # two names of one entity: one relation per fact, pair and predicate
            related.add((source, predicate, target))
            relation_id = stable_id(
                self.state.key, "relation", record.id, source_name, predicate, target_name
            )
            self.put(
                Relation(
                    id=relation_id,
                    scope=self.state.scope,
                    source=source,
                    target=target,
                    predicate=predicate,
                    source_name=source_name,
                    target_name=target_name,
                    fact_ids=[record.id],
                    episode_ids=sources,
                    fact=record.text[:1000],
                    valid_from=valid_from,
                    valid_to=record.valid_to,
                    created_at=record.created_at,
                    invalidated_at=record.invalidated_at,
                )
            )
            relation_ids.append(relation_id)
        return relation_ids

    def _mention(self, fact_id: str, mention: Mention, vector: np.ndarray | None) -> None:
        found = self.resolver.resolve(mention.name, mention.type, vector)
        if found.entity_id is None:
            self._new_entity(fact_id, mention, vector)
            return
        entity = self.touch(found.entity_id)
        use = entity.names.setdefault(mention.name, NameUse(surface=mention.surface))
        if fact_id not in use.facts:
            use.facts.append(fact_id)
        if entity.type == GENERIC_TYPE and mention.type != GENERIC_TYPE:
            entity.type = mention.type
            self.resolver.retype(entity.id, mention.type)
        if found.method is not None:
            merge_id = stable_id(self.state.key, "merge", mention.name, entity.id)
            if self.merge(merge_id) is None:
                self.put(
                    Merge(
                        id=merge_id,
                        scope=self.state.scope,
                        entity_id=entity.id,
                        names=[mention.name],
                        method=found.method,
                        score=found.score,
                    )
                )
            self.resolver.learn(mention.name, entity.id, entity.type, None)

    def _new_entity(self, fact_id: str, mention: Mention, vector: np.ndarray | None) -> None:
        entity_id = stable_id(self.state.key, "entity", mention.name)
        if self.entity(entity_id) is not None:
            entity_id = stable_id(self.state.key, "entity", mention.name, fact_id)
        self.put(
            Entity(
                id=entity_id,
                scope=self.state.scope,
                name=mention.surface,
                type=mention.type,
                names={mention.name: NameUse(surface=mention.surface, facts=[fact_id])},
                embedding=[float(x) for x in vector] if vector is not None else None,
            )
        )
        self.resolver.learn(mention.name, entity_id, mention.type, vector)

    def _relink(
        self, episode_id: str, *, add: str | None = None, remove: str | None = None
    ) -> None:
        current = self.link(episode_id)
        facts = list(current.fact_ids) if current is not None else []
        if add is not None and add not in facts:
            facts.append(add)
        if remove is not None and remove in facts:
            facts.remove(remove)
        entries = [e for f in facts if (e := self.fact(f)) is not None]
        if not entries:
            if current is not None:
                self.drop(ItemKind.LINK, episode_id)
            return
        names = list(dict.fromkeys(n for e in entries for n in e.names))
        self.put(
            EpisodeLink(
                id=episode_id,
                scope=self.state.scope,
                fact_ids=[e.id for e in entries],
                names=names,
                entity_ids=self._owners(names),
            )
        )

    def _owners(self, names: Iterable[str]) -> list[str]:
        owners = (self.resolver.owners.get(n) for n in names)
        return list(dict.fromkeys(o for o in owners if o is not None and self.entity(o)))

    # merges

    def repoint(self, names: set[str]) -> None:
        """Re-resolve the endpoints of relations and links that use any of ``names``."""
        for relation in list(self.all_relations()):
            if relation.source_name in names or relation.target_name in names:
                source = self.resolver.owners.get(relation.source_name, relation.source)
                target = self.resolver.owners.get(relation.target_name, relation.target)
                if (source, target) != (relation.source, relation.target):
                    self.put(relation.model_copy(update={"source": source, "target": target}))
        for link in list(self.all_links()):
            if names.intersection(link.names):
                owners = self._owners(link.names)
                if owners != link.entity_ids:
                    self.put(link.model_copy(update={"entity_ids": owners}))


__all__ = ["Overlay", "Working", "merge_keeping", "resolver_for"]
