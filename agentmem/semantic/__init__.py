"""Semantic memory: facts extracted from episodes, deduplicated, versioned and bitemporal.

>>> from agentmem import Memory                                  # doctest: +SKIP
>>> mem.add("Alice: I moved to Berlin last month.", user_id="a", infer=True)
>>> [r.text for r in mem.list(user_id="a", kinds="semantic")]
['Alice moved to Berlin in April 2023.']

- :mod:`~agentmem.semantic.episodes`: what an episode is (turns, speakers, when it was said).
- :mod:`~agentmem.semantic.rules`: the LLM-free extractor, built from
  :mod:`~agentmem.semantic.text`, :mod:`~agentmem.semantic.entities` and
  :mod:`~agentmem.semantic.slots`.
- :mod:`~agentmem.semantic.llm` and :mod:`~agentmem.semantic.prompts`: the LLM path.
- :mod:`~agentmem.semantic.decide`: ADD / UPDATE / INVALIDATE / NOOP, and applying them.
- :mod:`~agentmem.semantic.validity`: when a fact holds, and whether it is older than a
  known value.
- :mod:`~agentmem.semantic.extractor`: the pipeline and the pending queue.
"""

from __future__ import annotations

from agentmem.semantic.decide import FactContext, RulesDecider, apply_decisions, decide_fact
from agentmem.semantic.episodes import Episode, Turn, episode_from, render_messages
from agentmem.semantic.extractor import (
    EXTRACTION_KEY,
    Decider,
    Extractor,
    consolidate_episode,
    extract_episode,
    extract_pending,
    is_pending,
    pending_episodes,
    pipeline_for,
)
from agentmem.semantic.llm import LLMClient, LLMDecider, LLMExtractor, parse_answer
from agentmem.semantic.prompts import DECIDE, EXTRACT, PROMPTS, Prompt
from agentmem.semantic.rules import RULES_VERSION, RulesExtractor
from agentmem.semantic.schema import (
    AppliedDecision,
    Decision,
    DecisionBatch,
    DecisionOp,
    ExtractedFact,
    ExtractionOutcome,
    ExtractionResult,
    FactType,
)

__all__ = [
    "DECIDE",
    "EXTRACT",
    "EXTRACTION_KEY",
    "PROMPTS",
    "RULES_VERSION",
    "AppliedDecision",
    "Decider",
    "Decision",
    "DecisionBatch",
    "DecisionOp",
    "Episode",
    "ExtractedFact",
    "ExtractionOutcome",
    "ExtractionResult",
    "Extractor",
    "FactContext",
    "FactType",
    "LLMClient",
    "LLMDecider",
    "LLMExtractor",
    "Prompt",
    "RulesDecider",
    "RulesExtractor",
    "Turn",
    "apply_decisions",
    "consolidate_episode",
    "decide_fact",
    "episode_from",
    "extract_episode",
    "extract_pending",
    "is_pending",
    "parse_answer",
    "pending_episodes",
    "pipeline_for",
    "render_messages",
]
