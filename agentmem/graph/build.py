"""Keep the knowledge graph in step with the facts: incremental updates, rebuilds, merges.

The graph is derived from the store, like the vector index. Every acknowledged write passes
through the outbox (:func:`agentmem.indexing.sync_outbox`), which calls :func:`on_sync` with
the records it indexed and the ids it removed; each semantic fact is read into entity
mentions and relations and applied to its scope's partition. An update is idempotent (a fact
already applied at its version is skipped), so the crash repair of the outbox repairs the
graph too. :func:`rebuild` derives a scope's graph (or every graph) from the store again:
what ``agentmem reindex --graph`` runs, e.g. after :class:`~agentmem.errors.GraphCorrupt`.

Reading a fact (LLM-free, from what extraction stored in its metadata):

- **mentions**: ``metadata["entities"]`` (people, places, things the extractor found), else the
  capitalised names of its text; the subject is typed ``person`` for attributes only people
  have, a ``lives_in`` value a ``place``, a ``works_at`` value an ``organization``;
- **relations**: ``subject --attribute--> value`` when the value is one of the entities
  (``Maya --lives_in--> Berlin``); ``Y --sister_of--> X`` for "X's sister Y"; otherwise a
  simple verb pattern between the subject and each entity after it (first verb + last
  preposition: "Caroline went to the LGBTQ group" gives ``went_to``); entities before the
  subject, or without a subject, are ``mentioned_with``;
- **validity**: each relation carries its fact's ``valid_from`` / ``valid_to`` (valid time)
  and ``created_at`` / ``invalidated_at`` (transaction time), so an invalidated fact leaves a
  relation that held until then;
- **episodes**: the fact's ``provenance["sources"]`` link its episodes to its entities.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np

from agentmem.embedders.base import checked_vectors
from agentmem.errors import Conflict, GraphCorrupt, NotFound, ValidationError
from agentmem.graph.base import GraphStore
from agentmem.graph.model import (
    Entity,
    EpisodeLink,
    FactEntry,
    GraphChange,
    ItemKind,
    Merge,
    MergeMethod,
    NameUse,
    Relation,
    clean_name,
    load_item,
    partition_key,
    stable_id,
)
from agentmem.graph.relations import text_relations
from agentmem.graph.resolve import GENERIC_TYPE, Candidate, Resolver, embed_names, normalise
from agentmem.graph.state import GraphState
from agentmem.models import MemoryKind, MemoryRecord, Scope, ScopeSet, content_hash, utcnow
from agentmem.semantic.rules import FILLER, STOPWORDS, content_words, entities_in
from agentmem.settings import GraphSettings
from agentmem.stores import RecordQuery, WriteBatch

if TYPE_CHECKING:
    from agentmem.backends import Backends

log = logging.getLogger(__name__)

Embed = Callable[[Sequence[str]], np.ndarray]

_PERSON_ATTRIBUTES = frozenset(
    {"lives_in", "works_at", "occupation", "married_to", "relationship_status", "age", "name"}
)
_VALUE_TYPES = {"lives_in": "place", "works_at": "organization", "married_to": "person"}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_AUXILIARIES = _words(
    """is was are were am be been being has have had do does did will would can could shall
    should may might must also really just still even already always never often finally
    recently actually definitely probably not now then there here very so too"""
)
_PREPOSITIONS = _words(
    """to in at on with for from about into onto by of near under over after before during
    through across around toward towards against among between"""
)
_NOT_NAMES = (
    STOPWORDS
    | FILLER
    | _words(
        """monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur
        thurs fri sat sun everyone everybody someone somebody anyone nobody stuff thing things
        something nothing everything"""
    )
)
_WORD = re.compile(r"[A-Za-z][A-Za-z'\u2019-]*")
_PREDICATE = re.compile(r"[^a-z0-9_]+")
MAX_SPAN_WORDS = 12
"""Farthest (in words) an entity may sit after the subject to get a verb predicate."""
RETRIES = 3
"""Times an update is retried after another writer moved the partition's version."""


# reading facts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mention:
    """One entity a fact mentions: how it was written, its normalised name, a type hint."""

    surface: str
    name: str
    type: str = GENERIC_TYPE


@dataclass(frozen=True)
class FactReading:
    """What a fact says for the graph: its mentions and relations (by normalised name)."""

    mentions: tuple[Mention, ...]
    relations: tuple[tuple[str, str, str], ...]
    concepts: tuple[str, ...] = ()


def concept_words(text: str, names: Iterable[str] = ()) -> list[str]:
    """Content words of ``text`` as concept keys: lower-cased, stopwords and chat filler
    dropped, a plural ``s`` cut, words of entity ``names`` left out (they are entities)."""
    skip = {w for n in names for w in n.split()}
    out = []
    for word in sorted(content_words(text)):
        key = concept_key(word)
        if key and key not in skip and not key.isdigit():
            out.append(key)
    return list(dict.fromkeys(out))


def concept_key(word: str) -> str:
    """One word as a concept key ("walks" and "walk" are one concept)."""
    word = normalise(word)
    if len(word) <= 4 or not word.endswith("s") or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies") and len(word) > 5:
        return word[:-3] + "y"  # hobbies -> hobby
    if word.endswith(("sses", "xes", "zes", "ches", "shes")):
        return word[:-2]  # classes -> class, boxes -> box, churches -> church
    return word[:-1]  # walks -> walk


def read_fact(record: MemoryRecord) -> FactReading:
    """Mentions and relations of a fact record (see the module docstring)."""
    meta = record.metadata
    raw = meta.get("entities")
    surfaces = [e for e in raw if isinstance(e, str)] if isinstance(raw, list) else []
    if not surfaces:
        surfaces = entities_in(record.text)
    subject_raw = meta.get("subject")
    subject_name = normalise(subject_raw) if isinstance(subject_raw, str) else ""
    mentions: dict[str, Mention] = {}
    for surface in surfaces:
        cleaned = clean_name(surface)
        name = _mention_name(normalise(cleaned), subject_name)
        if name and name not in mentions:
            mentions[name] = Mention(cleaned if name == normalise(cleaned) else name, name)
    if subject_name in mentions:
        for surface in surfaces:  # the subject as it was written, not a collapsed variant
            if normalise(clean_name(surface)) == subject_name:
                mentions[subject_name] = Mention(clean_name(surface), subject_name)
                break
    attribute = meta.get("attribute") if isinstance(meta.get("attribute"), str) else None
    subject = _subject(meta.get("subject"), mentions)
    value = _value(meta.get("value"), mentions) if attribute else None
    if subject is not None:
        kind = "person" if attribute in _PERSON_ATTRIBUTES or attribute is None else GENERIC_TYPE
        if attribute and attribute.startswith(("likes:", "favourite_")):
            kind = "person"
        mentions[subject] = Mention(mentions[subject].surface, subject, kind)
    if value is not None and attribute in _VALUE_TYPES and value != subject:
        mentions[value] = Mention(mentions[value].surface, value, _VALUE_TYPES[attribute])
    attributes: list[tuple[str, str, str]] = []
    if subject is not None and value is not None and attribute is not None and value != subject:
        prefix = "ended_" if meta.get("negated") else ""
        attributes.append((subject, _predicate(prefix + attribute), value))
    relations = _relations(record.text, mentions, subject, attributes)
    concepts = concept_words(record.text, mentions)
    return FactReading(tuple(mentions.values()), tuple(relations), tuple(concepts))


def _relations(
    text: str,
    mentions: dict[str, Mention],
    subject: str | None,
    attributes: list[tuple[str, str, str]],
) -> list[tuple[str, str, str]]:
    """The attribute relation, then what the clause parser reads from the text (a pair the
    attribute already relates keeps the attribute alone), then ``mentioned_with`` for the
    entities the text names that no relation reached: from the subject when there is one,
    else between neighbours in reading order."""
    surfaces = {name: [m.surface, name] for name, m in mentions.items()}
    covered = {frozenset((s, t)) for s, _, t in attributes}
    out = list(attributes)
    for source, predicate, target in text_relations(text, surfaces):
        triple = (source, predicate, target)
        if source == target or frozenset((source, target)) in covered or triple in out:
            continue
        out.append(triple)
    related = {n for s, _, t in out for n in (s, t)}
    spots = [name for _, _, name in _positions(text, mentions)]
    loose = [n for n in spots if n not in related]
    if subject is not None and subject in spots:
        out.extend((subject, "mentioned_with", n) for n in loose if n != subject)
    elif not out:
        out.extend((a, "mentioned_with", b) for a, b in pairwise(spots))
    elif loose:
        anchor = out[0][0]
        out.extend((anchor, "mentioned_with", n) for n in loose if n != anchor)
    return out


def _mention_name(name: str, subject: str) -> str:
    """A mention's name after the clean-up rule-based extraction needs, or "" to drop it:
    a capitalised word before the subject's name is a sentence start, not part of a name
    ("Since Caroline", "Blue's Caroline" -> "caroline"); a lone stopword, chat word,
    weekday or gerund is no entity ("Everyone", "Fri", "Bringing")."""
    words = name.split()
    if not words:
        return ""
    if subject and len(words) > 1 and name.endswith(" " + subject):
        prefix = name[: -len(subject) - 1].split()
        if len(prefix) <= 2:
            return subject
    if len(words) == 1:
        word = words[0]
        if word in _NOT_NAMES or (word.endswith("ing") and len(word) > 5):
            return ""
    return name


def _subject(raw: Any, mentions: dict[str, Mention]) -> str | None:
    if not isinstance(raw, str) or not raw.strip():
        return None
    name = normalise(raw)
    if name in mentions:
        return name
    # "John's sister Anna": the last entity named in the subject phrase is the subject.
    inside = [m for m in mentions if re.search(rf"(?<!\w){re.escape(m)}(?!\w)", name)]
    if not inside:
        return None
    last = max(inside, key=lambda m: name.rfind(m))
    return last if name.endswith(last) else None


def _value(raw: Any, mentions: dict[str, Mention]) -> str | None:
    if not isinstance(raw, str):
        return None
    name = normalise(raw)
    if name in mentions:
        return name
    return next((m for m in mentions if name.startswith(m) or m.startswith(name)), None)


def _predicate(text: str) -> str:
    cleaned = _PREDICATE.sub("_", text.lower().replace(":", "_")).strip("_")
    return cleaned[:60] or "related_to"


def _positions(text: str, mentions: dict[str, Mention]) -> list[tuple[int, int, str]]:
    """(start, end, name) of the first occurrence of each mention in ``text``."""
    found: list[tuple[int, int, str]] = []
    lowered = text.casefold()
    for name, mention in mentions.items():
        for needle in (mention.surface.casefold(), name):
            at = lowered.find(needle) if needle else -1
            if at >= 0:
                found.append((at, at + len(needle), name))
                break
    return sorted(found)


# the working copy of one update ----------------------------------------------------------------


@dataclass
class Working:
    """The items one update touches, over a partition's state: copied on first change, then
    turned into one :class:`GraphChange`."""

    state: GraphState
    settings: GraphSettings
    embed: Embed | None = None
    entities: dict[str, Entity] = field(default_factory=dict)
    relations: dict[str, Relation] = field(default_factory=dict)
    links: dict[str, EpisodeLink] = field(default_factory=dict)
    facts: dict[str, FactEntry] = field(default_factory=dict)
    merges: dict[str, Merge] = field(default_factory=dict)
    deleted: set[tuple[ItemKind, str]] = field(default_factory=set)
    resolver: Resolver = field(init=False)

    def __post_init__(self) -> None:
        self.resolver = Resolver(self.settings, owners=self.state.names())
        vectors = self.state.vectors
        for entity in self.state.entities.values():
            self.resolver.candidates[entity.id] = Candidate(
                entity.id, entity.type, vectors.get(entity.id)
            )
        for merge in self.state.merges.values():
            if merge.undone_at is not None:
                self.resolver.apart.update((n, merge.entity_id) for n in merge.names)

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

    def put(self, item: Entity | Relation | EpisodeLink | FactEntry | Merge) -> None:
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
        if kind is ItemKind.ENTITY:
            self.resolver.candidates.pop(item_id, None)
            self.resolver._matrix = None

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
        key, scope = self.state.key, self.state.scope
        names: list[str] = []
        for mention in reading.mentions:
            self._mention(record.id, mention, vectors.get(mention.name))
            names.append(mention.name)
        sources = [s for s in record.provenance.get("sources", []) if isinstance(s, str)]
        valid_from = record.valid_from or record.event_time or record.created_at
        relation_ids = []
        for source_name, predicate, target_name in reading.relations:
            source = self.resolver.owners.get(source_name)
            target = self.resolver.owners.get(target_name)
            if source is None or target is None or source == target:
                continue  # a name resolved to the entity it relates to: a mention, no edge
            relation_id = stable_id(key, "relation", record.id, source_name, predicate, target_name)
            self.put(
                Relation(
                    id=relation_id,
                    scope=scope,
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
        self.put(
            FactEntry(
                id=record.id,
                scope=scope,
                version=record.version,
                names=names,
                relation_ids=relation_ids,
                episode_ids=sources,
                concepts=list(reading.concepts),
            )
        )
        for episode_id in sources:
            self._relink(episode_id, add=record.id)

    def _mention(self, fact_id: str, mention: Mention, vector: np.ndarray | None) -> None:
        found = self.resolver.resolve(mention.name, mention.type, vector)
        if found.entity_id is None:
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
            return
        entity = self.touch(found.entity_id)
        use = entity.names.setdefault(mention.name, NameUse(surface=mention.surface))
        if fact_id not in use.facts:
            use.facts.append(fact_id)
        if entity.type == GENERIC_TYPE and mention.type != GENERIC_TYPE:
            entity.type = mention.type
            candidate = self.resolver.candidates.get(entity.id)
            if candidate is not None:
                candidate.type = mention.type
        if found.method is not None:
            merge_id = stable_id(self.state.key, "merge", mention.name, entity.id)
            if self.state.merges.get(merge_id) is None and merge_id not in self.merges:
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


# updates from the outbox ---------------------------------------------------------------------


def name_embedder(backends: Backends) -> Embed | None:
    """Embeds entity names through the store's embedding cache (None: matching by embedding
    is switched off)."""
    if backends.settings.graph.embedding_threshold is None:
        return None

    def embed(names: Sequence[str]) -> np.ndarray:
        model = backends.embedder.name
        by_hash = {content_hash(n): n for n in names}
        cached = backends.store.cached_embeddings(model, list(by_hash))
        missing = [h for h in by_hash if h not in cached]
        if missing:
            vectors = checked_vectors(
                backends.embedder,
                backends.embedder.embed_documents([by_hash[h] for h in missing]),
                len(missing),
            )
            fresh = list(zip(missing, vectors, strict=True))
            cached.update(fresh)
            backends.store.apply(WriteBatch(embeddings=[(model, h, v) for h, v in fresh]))
        return np.stack([cached[content_hash(n)] for n in names])

    return embed


def _new_names(working: Working, records: Sequence[MemoryRecord]) -> list[str]:
    names: list[str] = []
    for record in records:
        for mention in read_fact(record).mentions:
            if mention.name not in working.resolver.owners:
                names.append(mention.name)
    return list(dict.fromkeys(names))


def plan_update(
    state: GraphState,
    settings: GraphSettings,
    facts: Sequence[MemoryRecord],
    removed: Iterable[str] = (),
    embed: Embed | None = None,
) -> GraphChange:
    """The change that brings a partition up to date with these facts (new, or at a new
    version) and removed record ids (facts or episodes)."""
    working = Working(state, settings, embed)
    for record_id in removed:
        working.remove_fact(record_id)
        working.remove_episode(record_id)
    todo = []
    for record in facts:
        entry = state.facts.get(record.id)
        if entry is not None and entry.version == record.version:
            continue  # already applied: updates are idempotent
        todo.append(record)
    if not todo and not working.deleted:
        return GraphChange()
    vectors = embed_names(embed, _new_names(working, todo))
    for record in todo:
        working.remove_fact(record.id)
        working.add_fact(record, vectors)
    return working.change()


def on_sync(backends: Backends, records: Sequence[MemoryRecord], removed: Sequence[str]) -> None:
    """The graph step of the outbox: apply indexed facts and removed records to their
    partitions. A partition whose stored graph is corrupt is skipped with a warning (writes
    never fail for a derived index; reads say what to do)."""
    graph = backends.graph
    if graph is None or not backends.settings.graph.enabled:
        return
    facts = [r for r in records if r.kind is MemoryKind.SEMANTIC]
    work: dict[str, tuple[Scope, list[MemoryRecord], list[str]]] = {}
    for record in facts:
        key = partition_key(record.scope)
        work.setdefault(key, (record.scope, [], []))[1].append(record)
    if removed:
        for kind in (ItemKind.FACT, ItemKind.LINK):
            for partition in graph.partitions_holding(kind, removed):
                entry = work.setdefault(partition.key, (partition.scope, [], []))
                entry[2].extend(removed)
    for scope, scoped_facts, scoped_removed in work.values():
        try:
            update_partition(backends, graph, scope, scoped_facts, dict.fromkeys(scoped_removed))
        except GraphCorrupt as exc:
            log.warning("knowledge graph not updated: %s", exc)


def update_partition(
    backends: Backends,
    graph: GraphStore,
    scope: Scope,
    facts: Sequence[MemoryRecord],
    removed: Iterable[str] = (),
) -> None:
    """Bring one partition up to date, retrying when another writer got there first."""
    removed = list(removed)
    embed = name_embedder(backends)
    for attempt in range(RETRIES + 1):
        state = graph.state_of(scope)
        change = plan_update(state, backends.settings.graph, facts, removed, embed)
        try:
            graph.write(state, change)
            return
        except Conflict:
            if attempt == RETRIES:
                raise
            graph.forget_cache()


# rebuilds ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RebuildReport:
    """What :func:`rebuild` did."""

    partitions: int
    facts: int
    entities: int
    relations: int
    seconds: float


def _saved_merges(graph: GraphStore, scope: Scope | ScopeSet | None) -> dict[str, list[Merge]]:
    """Manual and undone merges of the partitions about to be rebuilt (unreadable rows of a
    corrupt partition are skipped): user decisions survive a rebuild."""
    saved: dict[str, list[Merge]] = {}
    for partition in graph.partitions(scope):
        for kind, _, data in graph.read_rows(partition):
            if kind != ItemKind.MERGE.value:
                continue
            try:
                merge = load_item(kind, data)
            except Exception:  # a corrupt row is exactly what a rebuild repairs
                continue
            if isinstance(merge, Merge) and (
                merge.method is MergeMethod.MANUAL or merge.undone_at is not None
            ):
                saved.setdefault(partition.key, []).append(merge)
    return saved


def _facts_by_partition(
    backends: Backends, scope: Scope | ScopeSet | None, page: int = 1000
) -> dict[str, tuple[Scope, list[MemoryRecord]]]:
    out: dict[str, tuple[Scope, list[MemoryRecord]]] = {}

    def keep(record: MemoryRecord) -> None:
        if record.kind is MemoryKind.SEMANTIC:
            out.setdefault(partition_key(record.scope), (record.scope, []))[1].append(record)

    if scope is None:
        after: str | None = None
        while ids := backends.store.all_ids(after=after, limit=page):
            for record in backends.store.get_many(ids):
                keep(record)
            after = ids[-1]
    else:
        offset = 0
        while True:
            batch = backends.store.query(
                RecordQuery(
                    scope=scope,
                    kinds=(MemoryKind.SEMANTIC,),
                    include_invalidated=True,
                    limit=page,
                    offset=offset,
                )
            )
            for record in batch:
                keep(record)
            if len(batch) < page:
                break
            offset += page
    for _, records in out.values():
        records.sort(key=lambda r: (r.created_at, r.id))
    return out


def rebuild(backends: Backends, scope: Scope | ScopeSet | None = None) -> RebuildReport:
    """Derive the graphs a scope may read (every graph for ``None``) from the store again.

    The stored partitions are dropped without being read (a corrupt one included), then each
    scope's facts are applied in the order they were stored. Manual merges and undone merges
    are kept. Communities are recomputed on next use.
    """
    import time

    started = time.perf_counter()
    graph = backends.graph
    if graph is None:
        raise ValidationError("this Memory keeps no knowledge graph (graph.enabled is off)")
    saved = _saved_merges(graph, scope)
    graph.drop(scope)
    settings = backends.settings.graph
    embed = name_embedder(backends)
    totals = [0, 0, 0, 0]
    existing_episodes: set[str] = set()
    groups = _facts_by_partition(backends, scope)
    all_sources = {
        s for _, rs in groups.values() for r in rs for s in r.provenance.get("sources", [])
    }
    sources = [s for s in all_sources if isinstance(s, str)]
    for start in range(0, len(sources), 500):
        existing_episodes.update(
            r.id for r in backends.store.get_many(sources[start : start + 500])
        )
    for key, (part_scope, records) in sorted(groups.items()):
        state = GraphState(part_scope, key, 0)
        working = Working(state, settings, embed)
        merges = saved.get(key, [])
        for merge in merges:
            if merge.undone_at is not None:
                working.resolver.apart.update((n, merge.entity_id) for n in merge.names)
        vectors = embed_names(embed, _new_names(working, records))
        for record in records:
            sources_of = record.provenance.get("sources", [])
            if isinstance(sources_of, list):
                kept = [s for s in sources_of if s in existing_episodes]
                if kept != sources_of:
                    record = record.model_copy(
                        update={"provenance": {**record.provenance, "sources": kept}}
                    )
            working.add_fact(record, vectors)
        change = working.change()
        change.replace = True
        graph.write(state, change)
        for merge in merges:
            _replay(backends, graph, state, merge)
        totals[0] += 1
        totals[1] += len(records)
        totals[2] += len(state.entities)
        totals[3] += len(state.relations)
    return RebuildReport(
        partitions=totals[0],
        facts=totals[1],
        entities=totals[2],
        relations=totals[3],
        seconds=time.perf_counter() - started,
    )


def _replay(backends: Backends, graph: GraphStore, state: GraphState, merge: Merge) -> None:
    """Keep a user's merge decision across a rebuild (as far as the entities still exist)."""
    active = merge.method is MergeMethod.MANUAL and merge.undone_at is None
    if active and merge.absorbed_id and {merge.entity_id, merge.absorbed_id} <= set(state.entities):
        change = plan_merge(
            state, backends.settings.graph, merge.entity_id, merge.absorbed_id, merge_id=merge.id
        )
        graph.write(state, change)
        return
    graph.write(state, GraphChange(upserts=[merge]))


# merges ----------------------------------------------------------------------------------------


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


__all__ = [
    "FactReading",
    "Mention",
    "RebuildReport",
    "Working",
    "name_embedder",
    "on_sync",
    "plan_merge",
    "plan_undo",
    "plan_update",
    "read_fact",
    "rebuild",
    "update_partition",
]
