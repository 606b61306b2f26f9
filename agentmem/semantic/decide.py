"""Update decisions: each new fact against what is already known, and applying them.

For each new fact the known facts it could be about are gathered (:func:`gather`): the most
similar valid semantic facts in the episode's scope by hybrid search, plus every valid fact
with the same slot (subject + single-valued attribute). Then a decider chooses, per fact:

========== =================================================================================
ADD        new information: stored as a new semantic record
UPDATE     the same fact with more detail: a new version of the known record (the old text
           stays in its history)
INVALIDATE a new value of a single-valued attribute: the known record gets ``valid_to`` (when
           the new value started) and ``invalidated_at`` (now), and is kept; the new fact is
           added. ``search(as_of=t)`` still finds the old value for times before the change
NOOP       already known: no fact is written; the episode joins the known fact's sources
           (it states it too, so forgetting the first one keeps the fact)
========== =================================================================================

:class:`RulesDecider` is the LLM-free decider (rules in :func:`decide_fact`); the LLM decider
in :mod:`agentmem.semantic.llm` makes one batched call per episode. Both feed
:func:`apply_decisions`, so the effects (versions, validity, provenance) are the same.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from agentmem import retrieval, writing
from agentmem.backends import Backends
from agentmem.errors import NotFound
from agentmem.filters import Condition, FilterOp
from agentmem.indexing import vectors_for, vectors_for_texts
from agentmem.lineage import TEXT_SOURCES, text_sources
from agentmem.models import MemoryKind, MemoryRecord, Scope, as_utc, content_hash, utcnow
from agentmem.notes import api as notes
from agentmem.representation import indexed_text
from agentmem.semantic.episodes import Episode
from agentmem.semantic.schema import AppliedDecision, Decision, DecisionOp, ExtractedFact
from agentmem.semantic.slots import find_slot, normalise_value
from agentmem.semantic.text import content_words
from agentmem.semantic.validity import end_of, fact_start, is_older, record_start
from agentmem.settings import SemanticSettings
from agentmem.stores import RecordQuery, WriteBatch


@dataclass
class FactContext:
    """A new fact and the known facts it could be about."""

    fact: ExtractedFact
    similar: list[tuple[MemoryRecord, float]] = field(default_factory=list)
    """Valid semantic facts in scope, most similar first, with their cosine similarity."""
    same_slot: list[MemoryRecord] = field(default_factory=list)
    """Valid facts that set the same attribute of the same subject."""

    @property
    def known(self) -> list[MemoryRecord]:
        """Every known fact of this context, once (slot matches first)."""
        out = {r.id: r for r in self.same_slot}
        for r, _ in self.similar:
            out.setdefault(r.id, r)
        return list(out.values())


def record_slot(record: MemoryRecord) -> tuple[str | None, str | None, str | None]:
    """(slot, subject, value) of a known fact: from its metadata, else read from its text by
    the same rules as extraction (so facts stored without metadata still contradict)."""
    slot = record.metadata.get("slot")
    if isinstance(slot, str) and slot:
        value = record.metadata.get("value")
        subject = record.metadata.get("subject")
        return slot, subject if isinstance(subject, str) else None, str(value or "")
    found = find_slot(record.text, speaker=str(record.metadata.get("subject") or "User"))
    if found is None:
        subject = record.metadata.get("subject")
        return None, subject if isinstance(subject, str) else None, None
    subject, attribute, value, _ = found
    return f"{subject.lower()}|{attribute}", subject, value


def gather(
    backends: Backends,
    scope: Scope,
    facts: Sequence[ExtractedFact],
    settings: SemanticSettings,
) -> list[FactContext]:
    """The known facts each new fact is decided against (see the module docstring)."""
    if not facts:
        return []
    texts = [f.text for f in facts]
    vectors, fresh = vectors_for_texts(backends, texts)
    if fresh:  # cache them now: the facts that are added will need them again
        backends.store.apply(
            WriteBatch(embeddings=[(backends.embedder.name, h, v) for h, v in fresh])
        )
    contexts: list[FactContext] = []
    for fact in facts:
        ctx = FactContext(fact)
        mine = vectors[content_hash(fact.text)]
        # Facts are compared with facts by their document vectors (symmetric similarity), so
        # the search needs no query embedding (nor a retriever adapter made for questions).
        hits = retrieval.search(
            backends,
            fact.text,
            scope,
            k=settings.candidates,
            kinds=(MemoryKind.SEMANTIC,),
            vector=mine,
            remember=False,  # an internal comparison, not something shown to an agent,
            count_recall=False,  # nor a recall that should keep these facts from decaying
        )
        records = [h.record for h in hits]
        if records:
            known, _ = vectors_for(backends, records)
            config = backends.settings.retrieval
            for r in records:
                other = known.get(content_hash(indexed_text(r, config)))
                sim = float(np.dot(mine, other)) if other is not None else 0.0
                ctx.similar.append((r, sim))
            ctx.similar.sort(key=lambda pair: -pair[1])
        if fact.slot:
            ctx.same_slot = _slot_matches(backends, scope, fact.slot)
            seen = {r.id for r in ctx.same_slot}
            for r, _ in ctx.similar:
                if r.id not in seen and record_slot(r)[0] == fact.slot:
                    ctx.same_slot.append(r)
        contexts.append(ctx)
    return contexts


def _slot_matches(backends: Backends, scope: Scope, slot: str) -> list[MemoryRecord]:
    now = utcnow()
    found = backends.store.query(
        RecordQuery(
            scope=scope,
            kinds=(MemoryKind.SEMANTIC,),
            conditions=(Condition("slot", FilterOp.EQ, slot),),
            limit=50,
        )
    )
    return [r for r in found if r.valid_to is None or r.valid_to > now]


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _words(text: str) -> set[str]:
    return {_stem(w) for w in content_words(text)}


def adds_detail(new: str, old: str) -> bool:
    """Whether ``new`` says what ``old`` says (most of its content words) and more."""
    n, o = _words(new), _words(old)
    if not o:
        return bool(n)
    return len(n & o) / len(o) >= 0.7 and len(n - o) >= 1


_ENDING = re.compile(
    r"\b(?:no longer|not|never|anymore|any more|stopped|quit|gave up|left)\b|n't\b",
    re.IGNORECASE,
)
"""Words that end or deny what a fact says: "no longer", "doesn't ... anymore", "left"."""


def ends_or_denies(new: str, old: str) -> bool:
    """Whether ``new`` says ``old`` with its polarity flipped ("Sam no longer eats meat"
    against "Sam eats meat", or the reverse): the same content words, give or take the
    ending words, and an ending word in one of them only."""
    if bool(_ENDING.search(new)) == bool(_ENDING.search(old)):
        return False
    n, o = _words(_ENDING.sub(" ", new)), _words(_ENDING.sub(" ", old))
    if not o or any(not _covered(w, o) for w in n):
        return False
    return sum(_covered(w, n) for w in o) / len(o) >= 0.5


def _covered(word: str, words: set[str]) -> bool:
    """``word`` or a form of it ("eat" / "eats") is among ``words``."""
    for w in words:
        short, long_ = sorted((w, word), key=len)
        if w == word or (
            len(short) >= 3 and long_.startswith(short) and len(long_) - len(short) <= 2
        ):
            return True
    return False


def _record_negated(record: MemoryRecord) -> bool:
    if "slot" in record.metadata:
        return bool(record.metadata.get("negated"))
    found = find_slot(record.text, speaker=str(record.metadata.get("subject") or "User"))
    return found is not None and found[3]


def is_contained(new: str, old: str) -> bool:
    """Whether ``old`` already says everything ``new`` says."""
    n, o = _words(new), _words(old)
    return not n or len(n & o) / len(n) >= 0.8


def decide_fact(
    index: int, ctx: FactContext, said_at: datetime, settings: SemanticSettings
) -> list[Decision]:
    """The LLM-free decision about one new fact, in this order:

    1. A single-valued attribute (slot) with the same value known: UPDATE if the new fact adds
       detail, else NOOP. A negated fact ("quit the job at Acme") INVALIDATEs that value.
    2. The same slot with a different value: INVALIDATE it (and add the new fact), unless the
       new fact is older than the known value; then it is added as history, valid until the
       known value started.
    3. Otherwise the most similar known fact about the same subject and slot: cosine at or
       above ``duplicate_threshold`` is a NOOP (UPDATE if it adds detail); at or above
       ``update_threshold``, UPDATE when the new fact contains the old and adds detail, NOOP
       when the old one already says it all.
    4. Else ADD.
    """
    fact = ctx.fact
    if fact.slot and fact.value is not None:
        by_slot = _decide_by_slot(index, ctx, fact.value, said_at)
        if by_slot is not None:
            return by_slot
    by_similarity = _decide_by_similarity(index, ctx, settings)
    if by_similarity is not None:
        return by_similarity
    return [Decision(op=DecisionOp.ADD, fact=index, reason="new information")]


def _decide_by_slot(
    index: int, ctx: FactContext, value: str, said_at: datetime
) -> list[Decision] | None:
    """Steps 1 and 2 of :func:`decide_fact` for the fact's ``value`` (None: no known value of
    the slot)."""
    fact = ctx.fact
    wanted = normalise_value(value)
    same: list[MemoryRecord] = []
    different: list[MemoryRecord] = []
    for r in ctx.same_slot:
        known = record_slot(r)[2]
        agrees = known is not None and normalise_value(known) == wanted
        # A known ending ("no longer lives in Paris") of the value a fact states again is
        # over; of another value it is no value at all.
        if agrees and _record_negated(r) != fact.negated:
            different.append(r)
        elif agrees:
            same.append(r)
        elif not _record_negated(r):
            different.append(r)
    if fact.negated:
        if same:
            return [_d(DecisionOp.NOOP, index, same[0], f"end of {fact.attribute} already known")]
        ended = [r for r in different if normalise_value(record_slot(r)[2] or "") == wanted]
        if ended:
            return [
                _d(
                    DecisionOp.INVALIDATE,
                    index,
                    ended[0],
                    f"ends {fact.attribute} = {fact.value}",
                )
            ]
        return [Decision(op=DecisionOp.ADD, fact=index, reason="ends a value not on record")]
    if same:
        target = same[0]
        # The value is the same: what else the new fact says is detail.
        if len(_words(fact.text) - _words(target.text)) >= 2:
            return [_d(DecisionOp.UPDATE, index, target, f"same {fact.attribute}, more detail")]
        return [_d(DecisionOp.NOOP, index, target, f"same {fact.attribute} already known")]
    if different:
        current = [r for r in different if not is_older(fact, said_at, record_start(r))]
        if not current:
            older_than = min(record_start(r) for r in different)
            return [
                Decision(
                    op=DecisionOp.ADD,
                    fact=index,
                    reason=f"older {fact.attribute} than the one on record; kept as history",
                    valid_to=older_than,
                )
            ]
        return [
            _d(DecisionOp.INVALIDATE, index, r, f"new {fact.attribute}: {fact.value}")
            for r in current
        ]
    return None


def _decide_by_similarity(
    index: int, ctx: FactContext, settings: SemanticSettings
) -> list[Decision] | None:
    """Step 3 of :func:`decide_fact` (None: no similar fact settles it)."""
    fact = ctx.fact
    for record, sim in ctx.similar:
        if not _same_topic(fact, record):
            continue
        if sim >= settings.update_threshold and ends_or_denies(fact.text, record.text):
            return [_d(DecisionOp.INVALIDATE, index, record, f"ends (cosine {sim:.2f})")]
        if sim >= settings.duplicate_threshold:
            if adds_detail(fact.text, record.text) and not is_contained(fact.text, record.text):
                return [
                    _d(
                        DecisionOp.UPDATE,
                        index,
                        record,
                        f"restates (cosine {sim:.2f}) with more detail",
                    )
                ]
            return [_d(DecisionOp.NOOP, index, record, f"duplicate (cosine {sim:.2f})")]
        if sim >= settings.update_threshold:
            if adds_detail(fact.text, record.text):
                return [
                    _d(DecisionOp.UPDATE, index, record, f"similar (cosine {sim:.2f}), more detail")
                ]
            if is_contained(fact.text, record.text):
                return [_d(DecisionOp.NOOP, index, record, f"already said (cosine {sim:.2f})")]
        break  # only the most similar usable fact is compared
    return None


def _same_topic(fact: ExtractedFact, record: MemoryRecord) -> bool:
    """Facts about different subjects, or setting different attributes, are never the same."""
    slot, subject, _ = record_slot(record)
    if fact.slot and slot and fact.slot != slot:
        return False
    return not (fact.subject and subject and fact.subject.lower() != subject.lower())


def _d(op: DecisionOp, index: int, target: MemoryRecord, reason: str) -> Decision:
    return Decision(op=op, fact=index, target_id=target.id, reason=reason)


class RulesDecider:
    """The LLM-free decider: similarity thresholds and contradiction rules
    (:func:`decide_fact`)."""

    name = "rules"
    version = "decide-rules-v1"

    def __init__(self, settings: SemanticSettings | None = None) -> None:
        self.settings = settings or SemanticSettings()

    def decide(
        self, backends: Backends, episode: Episode, contexts: Sequence[FactContext]
    ) -> list[Decision]:
        """One or more decisions per fact."""
        del backends
        out: list[Decision] = []
        for i, ctx in enumerate(contexts):
            out.extend(decide_fact(i, ctx, episode.said_at, self.settings))
        return out


def fact_metadata(fact: ExtractedFact) -> dict[str, Any]:
    """What a fact record keeps in metadata (for filters, contradiction and the graph)."""
    meta: dict[str, Any] = {
        "entities": fact.entities,
        "subject": fact.subject,
        "attribute": fact.attribute,
        "value": fact.value,
        "slot": fact.slot,
        "fact_type": fact.fact_type.value,
        "time_phrase": fact.time_phrase,
        "time_granularity": fact.time_granularity,
    }
    if fact.negated:
        meta["negated"] = True
    return {k: v for k, v in meta.items() if v is not None and v != []}


@dataclass(frozen=True)
class Source:
    """Who produced the facts and decisions, for provenance and history."""

    extractor: str
    extractor_version: str
    decider: str

    @property
    def actor(self) -> str:
        """The history actor of every write."""
        return f"semantic:{self.extractor}"

    def provenance(self, episode: Episode, decision: Decision) -> dict[str, Any]:
        """The provenance of a fact record written for ``episode``."""
        prov: dict[str, Any] = {
            "sources": [episode.id] if episode.id else [],
            "extractor": self.extractor,
            "extractor_version": self.extractor_version,
            "decided_by": self.decider,
            "decision": decision.op.value,
            "reason": decision.reason,
        }
        if self.extractor.startswith("llm:"):
            prov["prompt_version"] = self.extractor_version
        return prov


def apply_decisions(
    backends: Backends,
    episode: Episode,
    scope: Scope,
    facts: Sequence[ExtractedFact],
    decisions: Sequence[Decision],
    source: Source,
) -> list[AppliedDecision]:
    """Carry out decisions: invalidations and updates first, then one insert of every new fact.

    A decision whose target changed meanwhile (already invalidated by an earlier decision of
    the same episode, or gone) falls back to ADD, so no fact is lost.
    """
    applied: list[AppliedDecision] = []
    new_records: dict[int, MemoryRecord] = {}
    touched: set[str] = set()

    def add(index: int, decision: Decision, supersedes: str | None = None) -> MemoryRecord:
        if index in new_records:
            return new_records[index]
        fact = facts[index]
        record = _fact_record(backends, episode, scope, fact, decision, source)
        if supersedes:
            record.metadata["supersedes"] = supersedes
        new_records[index] = record
        return record

    for decision in decisions:
        if decision.fact >= len(facts):
            continue
        fact = facts[decision.fact]
        target = _current(backends, decision.target_id, scope)
        stale = target is None or target.id in touched
        if decision.op in (DecisionOp.UPDATE, DecisionOp.INVALIDATE) and stale:
            decision = decision.model_copy(
                update={
                    "op": DecisionOp.ADD,
                    "reason": f"{decision.reason}; target no longer current",
                }
            )
        elif decision.op is DecisionOp.UPDATE and target is not None:
            decision = _update_keeping_history(decision, fact, target, episode.said_at)
        op = decision.op
        if op is DecisionOp.NOOP:
            if target is not None:
                _confirm(backends, episode, scope, fact, target, source)
            applied.append(_applied(op, fact, None, target, decision, source))
        elif op is DecisionOp.ADD:
            record = add(decision.fact, decision)
            if decision.valid_to is not None:
                _fit_into_history(backends, scope, fact, record, source)
            applied.append(_applied(op, fact, record.id, None, decision, source))
        elif op is DecisionOp.INVALIDATE:
            assert target is not None
            record = add(decision.fact, decision, supersedes=target.id)
            ended = end_of(target, fact, episode.said_at)
            _invalidate(backends, scope, target, ended, record.id, source)
            _hold_from(record, ended)
            touched.add(target.id)
            applied.append(_applied(op, fact, record.id, target, decision, source))
        else:  # UPDATE
            assert target is not None
            _update(backends, episode, scope, fact, target, decision, source)
            touched.add(target.id)
            applied.append(_applied(op, fact, target.id, target, decision, source))
    # New facts are notes: linked to related ones, which they may evolve (agentmem.notes).
    notes.insert(backends, list(new_records.values()), actor=source.actor)
    return applied


def _hold_from(record: MemoryRecord, ended: datetime) -> None:
    """A new value holds from where the value it replaces ends (a change told later than its
    date, "moved to Berlin today" after "I live in Paris" at 15:00), so no time has both."""
    start = record.valid_from
    if start is not None and start < ended and (record.valid_to is None or ended < record.valid_to):
        record.valid_from = as_utc(ended)  # said_at may be in the speaker's zone


def _update_keeping_history(
    decision: Decision, fact: ExtractedFact, target: MemoryRecord, said_at: datetime
) -> Decision:
    """An UPDATE that gives a single-valued attribute another value (Mem0's convention for a
    changed value) ends the known value instead of rewriting it: INVALIDATE and add, or, for
    a value older than the known one, add it as history."""
    slot, _, known = record_slot(target)
    if not fact.slot or fact.value is None or slot != fact.slot or known is None:
        return decision
    old, new = set(normalise_value(known).split()), set(normalise_value(fact.value).split())
    if (old <= new or new <= old) and not fact.negated:
        return decision  # the same value, or the same told more precisely ("maths teacher")
    reason = f"{decision.reason}; a new {fact.attribute} ends the old one, never rewrites it"
    if is_older(fact, said_at, record_start(target)):
        return Decision(
            op=DecisionOp.ADD, fact=decision.fact, reason=reason, valid_to=record_start(target)
        )
    return decision.model_copy(update={"op": DecisionOp.INVALIDATE, "reason": reason})


def _fit_into_history(
    backends: Backends,
    scope: Scope,
    fact: ExtractedFact,
    record: MemoryRecord,
    source: Source,
) -> None:
    """A value that arrived late for an earlier period (added as history) ends the value that
    held before it where it starts, and ends itself where the next known value starts, so no
    two values of a slot hold at once."""
    start = record.valid_from
    if not fact.slot or fact.value is None or start is None:
        return
    found = backends.store.query(
        RecordQuery(
            scope=scope,
            kinds=(MemoryKind.SEMANTIC,),
            conditions=(Condition("slot", FilterOp.EQ, fact.slot),),
            include_invalidated=True,
            limit=50,
        )
    )
    value = normalise_value(fact.value)
    for r in found:
        if r.id == record.id or _record_negated(r):
            continue
        if normalise_value(record_slot(r)[2] or "") == value:
            continue
        began = record_start(r)
        if began > start and (record.valid_to is None or began < record.valid_to):
            record.valid_to = began
        elif began < start and r.valid_to is not None and r.valid_to > start:
            writing.update(
                backends,
                r.id,
                scope,
                valid_to=start,
                invalidate=True,
                metadata={**r.metadata, "superseded_by": record.id},
                actor=source.actor,
            )
            record.metadata.setdefault("supersedes", r.id)


def _invalidate(
    backends: Backends,
    scope: Scope,
    target: MemoryRecord,
    ended: datetime,
    superseded_by: str,
    source: Source,
) -> None:
    """End ``target`` at ``ended``, pointing at the record that supersedes it."""
    writing.update(
        backends,
        target.id,
        scope,
        valid_to=ended,
        invalidate=True,
        metadata={**target.metadata, "superseded_by": superseded_by},
        actor=source.actor,
    )


def _update(
    backends: Backends,
    episode: Episode,
    scope: Scope,
    fact: ExtractedFact,
    target: MemoryRecord,
    decision: Decision,
    source: Source,
) -> None:
    """Rewrite ``target`` with the new fact: its text, merged metadata, entities and sources."""
    metadata = {**target.metadata, **fact_metadata(fact)}
    metadata["entities"] = list(
        dict.fromkeys([*target.metadata.get("entities", []), *fact.entities])
    )
    sources = list(target.provenance.get("sources", []))
    if episode.id and episode.id not in sources:
        sources.append(episode.id)
    provenance = {**target.provenance, **source.provenance(episode, decision)}
    provenance["sources"] = sources
    provenance.pop(TEXT_SOURCES, None)  # the new text is this episode's
    if episode.id and sources[-1] != episode.id:
        provenance[TEXT_SOURCES] = [episode.id]
    writing.update(
        backends,
        target.id,
        scope,
        text=decision.text or fact.text,
        metadata=metadata,
        provenance=provenance,
        actor=source.actor,
    )


def _confirm(
    backends: Backends,
    episode: Episode,
    scope: Scope,
    fact: ExtractedFact,
    target: MemoryRecord,
    source: Source,
) -> None:
    """A NOOP: ``episode`` states ``fact``, which ``target`` already says. The episode joins
    the target's sources (its graph links follow them), so forgetting an earlier source keeps
    the fact; when the fact says all the target's text says, the episode states that text
    too (``text_sources``), else the text still goes with the sources it came from. A fact
    stored without sources (by hand) is nobody's derivation and stays so."""
    sources = list(target.provenance.get("sources") or [])
    if not episode.id or not sources or episode.id in sources:
        return
    stated = text_sources(target)
    if _words(target.text) <= _words(fact.text):
        stated.append(episode.id)
    provenance = {**target.provenance, "sources": [*sources, episode.id], TEXT_SOURCES: stated}
    writing.update(backends, target.id, scope, provenance=provenance, actor=source.actor)


def _applied(
    op: DecisionOp,
    fact: ExtractedFact,
    memory_id: str | None,
    target: MemoryRecord | None,
    decision: Decision,
    source: Source,
) -> AppliedDecision:
    return AppliedDecision(
        op=op,
        fact=fact,
        memory_id=memory_id,
        target_id=target.id if target is not None else None,
        reason=decision.reason,
        decided_by=source.decider,
    )


def _current(backends: Backends, memory_id: str | None, scope: Scope) -> MemoryRecord | None:
    if not memory_id:
        return None
    try:
        record = writing.get_one(backends, memory_id, scope)
    except NotFound:
        return None
    if record.invalidated_at is not None or record.kind is not MemoryKind.SEMANTIC:
        return None
    return record


def _fact_record(
    backends: Backends,
    episode: Episode,
    scope: Scope,
    fact: ExtractedFact,
    decision: Decision,
    source: Source,
) -> MemoryRecord:
    event_time = fact.event_time or episode.said_at
    valid_from = fact_start(fact, episode.said_at)
    valid_to = decision.valid_to if decision.valid_to and decision.valid_to > valid_from else None
    return writing.new_record(
        backends,
        scope,
        fact.text,
        kind=MemoryKind.SEMANTIC,
        metadata=fact_metadata(fact),
        provenance=source.provenance(episode, decision),
        event_time=event_time,
        valid_from=valid_from,
        valid_to=valid_to,
    )


__all__ = [
    "FactContext",
    "RulesDecider",
    "Source",
    "adds_detail",
    "apply_decisions",
    "decide_fact",
    "fact_metadata",
    "gather",
    "is_contained",
    "record_slot",
]
