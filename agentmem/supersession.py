"""Superseded memories: for a question about how things are, the newer value of a changed
attribute comes first, before the memory it replaces.

"Where does Maya live?" is answered by "I moved from Harbourside to Eastgate" (June), not by
"I live in Harbourside" (March), although the older turn matches the question's words better.
Facts written with ``infer=True`` already carry this: the newer fact invalidates the older
(:mod:`agentmem.semantic.decide`). Raw memories (conversation turns, notes added as they are)
are never rewritten, so search applies the same rule when it ranks them: among the first
``retrieval.supersede_depth`` candidates, each memory's single-valued attributes are read with
the extraction's own LLM-free rules (:func:`agentmem.semantic.slots.find_slot`: lives in, works
at, occupation, married to, favourite X, ...). Where a newer candidate sets an attribute of the
same subject to another value than an older candidate, the newer one takes the place of the
best-ranked memory it replaces, and the memories it replaces follow it. Every other candidate
keeps its order. A question about the past or about a time it names ("Where did Maya live?",
"... in March?": :func:`agentmem.timeparse.asks_about_past`) is left as fused.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache

from agentmem.models import MemoryRecord
from agentmem.semantic.episodes import default_speaker, episode_from
from agentmem.semantic.slots import find_slot, normalise_value
from agentmem.semantic.text import split_clauses, split_sentences

Slot = tuple[str, str]
"""(subject|attribute, normalised value) that a memory sets."""

READ_CHARS = 4_000
"""How much of a memory's text is read for attributes: a long document is not a statement of
where someone lives, and the rules cost time in proportion to the text (search-time work)."""

LONGEST_CLAUSE = 400
"""Longer clauses are skipped: no attribute statement is that long (and a run-on text without
sentence breaks would make every rule scan all of it)."""


def record_slots(record: MemoryRecord) -> frozenset[Slot]:
    """The single-valued attributes ``record`` sets: from a fact's metadata (``slot`` and
    ``value``, as extraction stores them), else read from each person's clauses of its text."""
    slot, value = record.metadata.get("slot"), record.metadata.get("value")
    if isinstance(slot, str) and slot and value is not None:
        return frozenset({(slot, normalise_value(str(value)))})
    return _text_slots(record.text[:READ_CHARS], default_speaker(record.metadata))


@lru_cache(maxsize=16_384)
def _text_slots(text: str, default_speaker: str) -> frozenset[Slot]:
    # Cached: the same memories come back search after search, and the rules cost ~0.1 ms.
    episode = episode_from(text, speaker=default_speaker)
    out: set[Slot] = set()
    for turn in episode.turns:
        if not turn.is_person:
            continue
        speaker = turn.speaker or episode.default_speaker
        for sentence in split_sentences(turn.text):
            for clause in split_clauses(sentence):
                if len(clause) > LONGEST_CLAUSE:
                    continue
                found = find_slot(clause, speaker)
                if found is not None and not found[3]:  # "I no longer live in X" sets nothing
                    subject, attribute, value, _ = found
                    out.add((f"{subject.lower()}|{attribute}", normalise_value(value)))
    return frozenset(out)


def _when(record: MemoryRecord) -> tuple[datetime, datetime]:
    # When it happened, then when it was written: turns of one session share its event time,
    # and the later turn is the newer word.
    return record.event_time or record.created_at, record.created_at


def supersede(
    order: Sequence[str], records: Mapping[str, MemoryRecord], depth: int
) -> tuple[list[str], dict[str, str]]:
    """``order`` with each newer value of a changed attribute moved up to the place of the
    best-ranked older memory it replaces (among the first ``depth`` ids; ``records`` holds at
    least those), and the memories it replaces right after it. Also returns, for each moved-up
    id, the id whose place it took."""
    head = [i for i in order[:depth] if i in records]
    members: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for i in head:
        for slot, value in record_slots(records[i]):
            members[slot].append((i, value))
    position = {i: n for n, i in enumerate(order)}
    replaced_by: dict[str, str] = {}
    for group in members.values():
        values = {value for _, value in group}
        if len(values) < 2:
            continue
        newest, newest_value = max(group, key=lambda m: (_when(records[m[0]]), -position[m[0]]))
        for i, value in group:
            if value != newest_value and _when(records[i]) < _when(records[newest]):
                replaced_by.setdefault(i, newest)
    # A memory replaced on one attribute is not moved up for another.
    anchor: dict[str, int] = {}
    for old, new in replaced_by.items():
        if new not in replaced_by:
            anchor[new] = min(anchor.get(new, position[new]), position[old])
    if not any(anchor[new] < position[new] for new in anchor):
        return list(order), {}

    def place(i: str) -> tuple[int, int, int]:
        if i in anchor:
            return anchor[i], 0, 0
        new = replaced_by.get(i)
        if new is not None and new in anchor:
            return anchor[new], 1, position[i]
        return position[i], 2, 0

    moved = {new: order[anchor[new]] for new in anchor if anchor[new] < position[new]}
    return sorted(order, key=place), moved


__all__ = ["record_slots", "supersede"]
