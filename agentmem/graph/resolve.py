"""Entity resolution: is a name a new entity, or one the graph already holds?

In order, within one partition (one scope: entities of different users or agents are never
merged, so nothing leaks between them):

1. **normalise**: case-folded, possessive and punctuation dropped, a leading article dropped
   ("The Acme Corp." -> "acme corp"); the same normalised name is the same entity (exact).
2. **fuzzy**: rapidfuzz's ratio against every known name, at or above
   ``GraphSettings.fuzzy_threshold`` (90), for names of ``fuzzy_min_length`` characters or more
   whose digits agree ("Carolinne" -> "Caroline"; "Room 101" is never "Room 102").
3. **embedding**: cosine of the names' embeddings at or above ``embedding_threshold`` (0.9),
   which catches abbreviations ("NYC" -> "New York City"), again only where the digits agree
   with one of the entity's names (names that differ only in a number embed close together).

A name matched by 2 or 3 joins the entity as another name, and the decision is recorded as a
:class:`~agentmem.graph.model.Merge` with the method and score, so it can be undone; an undone
merge keeps that name and entity apart from then on. Two known types that differ (a person and
a place) never merge.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from agentmem.graph.model import MergeMethod
from agentmem.semantic.text import fold
from agentmem.settings import GraphSettings

_POSSESSIVE = re.compile(r"(?<=\w)['\u2019]s?\b")
_NOT_WORD = re.compile(r"[^\w&+#@]+")
_ARTICLE = re.compile(r"^(?:the|a|an)\s+")
_DIGITS = re.compile(r"\d+")

GENERIC_TYPE = "entity"
"""The type of an entity nothing more is known about; it is compatible with every type."""


def normalise(name: str) -> str:
    """The key names are compared by: NFKC, case-folded, possessives and punctuation dropped,
    whitespace collapsed, a leading article dropped. Empty when nothing word-like is left."""
    text = _POSSESSIVE.sub("", fold(name))  # "İstanbul", "istanbul", "ISTANBUL": one key
    text = _NOT_WORD.sub(" ", text).replace("_", " ")
    text = " ".join(text.split())
    return _ARTICLE.sub("", text)


def compatible(a: str, b: str) -> bool:
    """Whether entities of these types may be one entity."""
    return a == b or GENERIC_TYPE in (a, b)


@dataclass(frozen=True)
class Resolution:
    """What a name resolved to: a known entity (with how, and how sure) or a new one."""

    name: str
    entity_id: str | None
    method: MergeMethod | None = None
    """None for an exact match or a new entity."""
    score: float | None = None


@dataclass
class Candidate:
    """A known entity as the resolver sees it."""

    entity_id: str
    type: str
    embedding: np.ndarray | None = None


@dataclass
class Resolver:
    """Resolves names against one partition's entities, learning the new ones as it goes.

    ``owners`` maps normalised names to entity ids; ``candidates`` describes the entities;
    ``apart`` holds (name, entity id) pairs an undone merge separated.
    """

    settings: GraphSettings
    owners: dict[str, str] = field(default_factory=dict)
    candidates: dict[str, Candidate] = field(default_factory=dict)
    apart: set[tuple[str, str]] = field(default_factory=set)
    _choices: list[str] | None = None
    _matrix: tuple[list[str], np.ndarray] | None = None

    def learn(self, name: str, entity_id: str, type_: str, embedding: np.ndarray | None) -> None:
        """Record that ``name`` belongs to ``entity_id``."""
        self.owners[name] = entity_id
        known = self.candidates.get(entity_id)
        if known is None:
            self.candidates[entity_id] = Candidate(entity_id, type_, embedding)
            self._matrix = None
        elif known.embedding is None and embedding is not None:
            known.embedding = embedding
            self._matrix = None
        self._choices = None

    def forget(self, name: str) -> None:
        """A name no longer used by any entity."""
        if self.owners.pop(name, None) is not None:
            self._choices = None

    def drop_entity(self, entity_id: str) -> None:
        """An entity that left the graph: no longer a candidate for any name."""
        if self.candidates.pop(entity_id, None) is not None:
            self._matrix = None

    def retype(self, entity_id: str, type_: str) -> None:
        """An entity whose type became known (a generic entity found to be a person)."""
        candidate = self.candidates.get(entity_id)
        if candidate is not None:
            candidate.type = type_

    def keep_apart(self, names: Iterable[str], entity_id: str) -> None:
        """Never resolve these names to ``entity_id`` again (an undone merge)."""
        self.apart.update((name, entity_id) for name in names)

    def resolve(
        self, name: str, type_: str = GENERIC_TYPE, embedding: np.ndarray | None = None
    ) -> Resolution:
        """The entity ``name`` (normalised) is, or ``entity_id=None`` for a new one."""
        owner = self.owners.get(name)
        if owner is not None:
            return Resolution(name, owner)
        fuzzy = self._fuzzy(name, type_)
        if fuzzy is not None:
            return fuzzy
        if embedding is not None and self.settings.embedding_threshold is not None:
            by_vector = self._by_embedding(name, type_, embedding)
            if by_vector is not None:
                return by_vector
        return Resolution(name, None)

    def _allowed(self, name: str, entity_id: str, type_: str) -> bool:
        if (name, entity_id) in self.apart:
            return False
        candidate = self.candidates.get(entity_id)
        return candidate is None or compatible(candidate.type, type_)

    def _fuzzy(self, name: str, type_: str) -> Resolution | None:
        from rapidfuzz import fuzz, process

        if len(name) < self.settings.fuzzy_min_length or not self.owners:
            return None
        if self._choices is None:
            self._choices = [n for n in self.owners if len(n) >= self.settings.fuzzy_min_length]
        digits = _DIGITS.findall(name)
        for match, score, _ in process.extract(
            name,
            self._choices,
            scorer=fuzz.ratio,
            score_cutoff=self.settings.fuzzy_threshold,
            limit=5,
        ):
            entity_id = self.owners[match]
            if _DIGITS.findall(match) == digits and self._allowed(name, entity_id, type_):
                return Resolution(name, entity_id, MergeMethod.FUZZY, round(float(score), 2))
        return None

    def _by_embedding(self, name: str, type_: str, vector: np.ndarray) -> Resolution | None:
        if self._matrix is None:
            ids = [c.entity_id for c in self.candidates.values() if c.embedding is not None]
            if not ids:
                return None
            self._matrix = (
                ids,
                np.stack([np.asarray(self.candidates[i].embedding, dtype=np.float32) for i in ids]),
            )
        ids, matrix = self._matrix
        if not ids:
            return None
        sims = matrix @ np.asarray(vector, dtype=np.float32)
        threshold = self.settings.embedding_threshold or 1.0
        for index in np.argsort(-sims)[:5]:
            score = float(sims[index])
            if score < threshold:
                break
            entity_id = ids[int(index)]
            if self._allowed(name, entity_id, type_) and self._digits_agree(name, entity_id):
                return Resolution(name, entity_id, MergeMethod.EMBEDDING, round(score, 4))
        return None

    def _digits_agree(self, name: str, entity_id: str) -> bool:
        # Scanned only for the few candidates above the threshold.
        digits = _DIGITS.findall(name)
        return any(
            owner == entity_id and _DIGITS.findall(known) == digits
            for known, owner in self.owners.items()
        )


def best_match(name: str, names: Iterable[str], *, threshold: float = 70.0) -> str | None:
    """The known name closest to ``name`` (for "did you mean ...?" messages)."""
    from rapidfuzz import fuzz, process

    choices = list(names)
    if not choices:
        return None
    found = process.extractOne(normalise(name), choices, scorer=fuzz.WRatio, score_cutoff=threshold)
    return found[0] if found else None


def embed_names(
    embed: Callable[[Sequence[str]], np.ndarray] | None, names: Sequence[str]
) -> dict[str, np.ndarray]:
    """Unit vectors of ``names`` (empty when there is no embedder)."""
    if embed is None or not names:
        return {}
    vectors: np.ndarray = np.asarray(embed(list(names)), dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)
    return dict(zip(names, vectors, strict=True))


__all__ = [
    "GENERIC_TYPE",
    "Candidate",
    "Resolution",
    "Resolver",
    "best_match",
    "compatible",
    "embed_names",
    "normalise",
]
