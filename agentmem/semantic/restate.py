"""A fact's structured fields after its text is rewritten by hand (``Memory.update(text=...)``).

A fact record keeps what extraction read from its text in metadata: its subject, entities,
and for a single-valued attribute the attribute, value and slot that contradictions, profiles
and the graph go by. New text with old fields would say "Alice lives in Rome" while the
profile and the next contradiction still read Paris, so the fields are read again from the
new text by the LLM-free rules; where the rules do not find exactly one fact in it, they are
dropped rather than left to contradict the text.
"""

from __future__ import annotations

from typing import Any

from agentmem.models import MemoryRecord
from agentmem.semantic.decide import fact_metadata
from agentmem.semantic.episodes import episode_from
from agentmem.semantic.rules import RulesExtractor

STRUCTURED_FIELDS = (
    "entities",
    "subject",
    "attribute",
    "value",
    "slot",
    "fact_type",
    "time_phrase",
    "time_granularity",
    "negated",
)
"""The metadata keys extraction derives from a fact's text (:func:`fact_metadata`)."""


def has_structure(record: MemoryRecord) -> bool:
    """Whether a record keeps fields derived from its text."""
    return any(key in record.metadata for key in STRUCTURED_FIELDS)


def restated_metadata(record: MemoryRecord, text: str) -> dict[str, Any]:
    """``record``'s metadata for ``text``: its own keys kept, the derived ones read again from
    ``text`` (a first-person text is read as said by the fact's subject)."""
    kept = {k: v for k, v in record.metadata.items() if k not in STRUCTURED_FIELDS}
    subject = record.metadata.get("subject")
    speaker = subject if isinstance(subject, str) and subject.strip() else None
    episode = episode_from(
        text, said_at=record.event_time or record.created_at, speaker=speaker, scope=record.scope
    )
    facts = RulesExtractor().extract(episode)
    if len(facts) == 1:
        kept.update(fact_metadata(facts[0]))
    return kept


__all__ = ["STRUCTURED_FIELDS", "has_structure", "restated_metadata"]
