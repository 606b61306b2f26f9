"""The sections of :class:`agentmem.Settings`: one pydantic model per nested group
(``AGENTMEM_RETRIEVAL__*``, ``AGENTMEM_GRAPH__*``, ...), each rejecting unknown keys and
any number that is not finite (NaN or infinity would silently corrupt ranking and schedules).

Import them from :mod:`agentmem.settings`; they live here so that module stays short (the
consolidation section lives in :mod:`agentmem.consolidation_settings`, the security ones in
:mod:`agentmem.security_settings`).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

NONE_WORDS = ("", "none", "null", "off")
"""What an optional setting given as text (an environment variable) reads as None: TOML has no
null, so a value from the settings file is switched back off with ``AGENTMEM_...=none``."""


def none_words(value: Any) -> Any:
    """``value``, or None when it is one of :data:`NONE_WORDS` (a ``mode="before"`` validator
    of every optional setting)."""
    if isinstance(value, str) and value.strip().lower() in NONE_WORDS:
        return None
    return value


# Chosen by 5-fold cross-validation over three shapes of memory at once (benchmarks/tune_shapes.py,
# section "shapes" of benchmarks/RESULTS.md): LoCoMo turns (conversations with sessions), LoCoMo
# observations (independent facts, one add each) and the small-scope set shipped with
# agentmem.evaluation; each fold's weights maximise the mean over the shapes, never one
# benchmark. Held out (with retrieval.dense_gap_ranks in the grid): LoCoMo turns recall@10 0.732,
# observations recall@10 0.642, small scopes hit@1 0.898 (dense alone 0.482 / 0.591 / 0.881).
# The dense window channel (window vectors built from the neighbours' vectors) was chosen off in
# 3 of 5 folds and on all questions: the lexical window carries the conversational context; 0
# also saves its query.
DEFAULT_WEIGHTS: dict[str, float] = {
    "dense": 1.0,
    "window": 0.0,
    "bm25": 0.5,
    "window_bm25": 2.0,
    "time": 1.0,
    "recency": 0.0,
    "importance": 0.0,
    # Knowledge-graph recall (Personalized PageRank from the entities a query names): chosen
    # by the same cross-validation on LoCoMo (benchmarks/locomo_graph.py, section graph of
    # RESULTS.md), where with LLM-free facts it is neutral (held-out recall@10 0.734 against
    # 0.735 off); 0 saves its ~10 ms per search.
    "graph": 0.1,
    # Link expansion (search(..., expand_links=n)): the notes linked to the fused hits, as one
    # more ranked list. It only runs when a search asks for it (benchmarks/notes.py).
    "links": 1.0,
}


class RetrievalSettings(BaseModel):
    """How ``search`` finds and ranks memories (see docs/configuration.md for the channels)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    weights: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_WEIGHTS),
        description="RRF weight per channel; 0 switches a channel off",
    )
    rrf_k: int = Field(default=20, ge=1, description="reciprocal rank fusion constant")
    # Chosen by cross-validation over the three shapes with the weights (benchmarks/tune_shapes.py,
    # sections "shapes" and "eval-small" of RESULTS.md): 80 in every fold of five; held out,
    # against plain ranks in the same run, LoCoMo turns recall@10 0.731 -> 0.732, observations
    # 0.639 -> 0.642, small-scope hit@1 0.847 -> 0.898. Not applied to present-state questions
    # (agentmem.retrieval.score_aware).
    dense_gap_ranks: float = Field(
        default=80.0,
        ge=0,
        description="score-aware fusion of the dense channel: each dense hit counts this many "
        "ranks further down per unit of cosine it trails the channel's best hit (0.05 behind "
        "at 80: 4 ranks), so a clear first place is not outvoted by a lexical match on "
        "another memory; 0 = plain RRF ranks",
    )
    candidates: int = Field(default=100, ge=1, le=10_000, description="results per channel")
    windows: bool = Field(
        default=True,
        description="index each episode with its neighbours in the same session "
        "(window and window_bm25 channels)",
    )
    # 2 gave LoCoMo turns recall@10 +0.4 but hit@1 -1.0 (RESULTS.md, notes of "shapes").
    window_turns: int = Field(
        default=1, ge=1, le=8, description="turns on each side of an episode in its window"
    )
    window_self_weight: float = Field(
        default=1.0,
        ge=0,
        description="weight of an episode's own vector in its window vector, against 1 for "
        "each neighbour's (the window vector is their normalised sum: no model call)",
    )
    window_group_key: str = Field(
        default="session", description="metadata key that groups episodes into a session"
    )
    # Chosen held out (benchmarks/session_channel.py, section "session-channel" of RESULTS.md):
    # 4 in every fold of leave-one-conversation-out; LoCoMo turns recall@10 0.733 -> 0.753,
    # observations and small scopes unchanged (no sessions there). The default since its reads
    # became narrow and its sessions' term counts cached (agentmem.sessions): on LoCoMo
    # conversations 0-1 search p50 without the query embedding is 10.0 ms with it, 7.3 without.
    session_prior: float = Field(
        default=4.0,
        ge=0,
        description="session prior: a candidate of a session (window_group_key) has its fused "
        "score multiplied by 1 + session_prior * s / s_max, s its session's whole-session BM25 "
        "against the query (agentmem.sessions); 0 = off; records without a session unaffected",
    )
    speaker_prior: float = Field(
        default=1.0,
        ge=0,
        description="speaker prior: where a query names some of the candidates' speakers "
        "(metadata 'speaker', else the 'Name:' prefix of a conversation turn), each candidate "
        "of a named speaker has its fused score multiplied by 1 + speaker_prior "
        "(agentmem.speaker_prior); 0 = off",
    )
    # Measured held out (benchmarks/iterative_retrieval.py, section "iterative" of RESULTS.md):
    # LoCoMo turns recall@10 0.753 -> 0.754, observations 0.641 -> 0.638, small scopes hit@1
    # 0.873 -> 0.890; it does not win LoCoMo without losing observations, so it is opt-in.
    feedback_weight: float = Field(
        default=0.0,
        ge=0,
        description="iterative retrieval (agentmem.feedback): RRF weight of a second round "
        "seeded by the first round's top hits (their new terms as a BM25 query, their mean "
        "vector blended into the query vector); 0 = off",
    )
    feedback_hits: int = Field(
        default=3, ge=1, le=50, description="top hits of the first round that seed the second"
    )
    feedback_terms: int = Field(
        default=10, ge=0, le=200, description="most new terms in the second round's BM25 query"
    )
    feedback_blend: float = Field(
        default=0.5,
        ge=0,
        description="weight of the top hits' mean vector against the query's in the second "
        "round's dense query; 0 = no dense second round",
    )
    feedback_stop_margin: float | None = Field(
        default=None,
        ge=0,
        description="skip the second round when the best fused score leads the second by more "
        "than this share of itself; None = never skip",
    )
    # Chosen by cross-validation over the three shapes (1 in every fold of five; section
    # "eval-small" of RESULTS.md): small-scope hit@1 0.873 -> 0.915 held out, the 9 LoCoMo
    # questions with such a word lose one evidence turn (-0.0002 recall@10 over 1,536).
    present_recency: float = Field(
        default=1.0,
        ge=0,
        description="RRF weight of the recency ranking for a query about the present state "
        "('... now?', 'current ...', 'still ...': agentmem.timeparse.asks_about_present), "
        "added to the recency weight for that query only, so the newer of two memories of a "
        "changed fact comes first; it adds to the candidates on the query's topic only (dense "
        "cosine within rrf_k / dense_gap_ranks of the best: agentmem.retrieval.on_topic); "
        "0 = off",
    )
    supersede_depth: int = Field(
        default=20,
        ge=0,
        le=1_000,
        description="for a query not about the past (agentmem.timeparse.asks_about_past), how "
        "many of the first candidates are read for single-valued attributes (lives in, works "
        "at, ...): a newer memory that sets one to another value takes the place of the older "
        "memory it replaces (agentmem.supersession); 0 = off",
    )
    recall_flush_s: float = Field(
        default=0.25,
        ge=0,
        le=60,
        description="seconds within which a search's recall counts and retrieval record are "
        "written, in one batch from a background thread (agentmem.recall_log); 0 writes them "
        "on the search's own thread",
    )
    date_prefix: bool = Field(
        default=True, description="index an episode's text with its event date in front"
    )
    mmr_lambda: float | None = Field(
        default=None, ge=0.0, le=1.0, description="MMR diversity trade-off; None = off"
    )
    recency_half_life_days: float = Field(default=30.0, gt=0)
    bm25_avg_len: float = Field(default=24.0, gt=0, description="BM25 expected length")
    duplicate_threshold: float = Field(
        default=0.95, gt=0, le=1, description="cosine at which context() drops a near-duplicate"
    )

    @field_validator("feedback_stop_margin", "mmr_lambda", mode="before")
    @classmethod
    def _none_words(cls, value: Any) -> Any:
        return none_words(value)

    @field_validator("weights")
    @classmethod
    def _known_channels(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = set(value) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise ValueError(
                f"unknown retrieval channels {sorted(unknown)}; known: {sorted(DEFAULT_WEIGHTS)}"
            )
        if any(w < 0 for w in value.values()):
            raise ValueError("retrieval weights must be >= 0")
        return {**DEFAULT_WEIGHTS, **value}


class SemanticSettings(BaseModel):
    """How facts are extracted from episodes and checked against what is already known (see
    docs/architecture.md, "Semantic memory", for the decision rules these thresholds feed)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    candidates: int = Field(
        default=5, ge=1, le=100, description="similar facts retrieved per new fact to decide on"
    )
    duplicate_threshold: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="cosine at or above which a new fact restates a known one (NOOP, or UPDATE "
        "when it adds detail)",
    )
    update_threshold: float = Field(
        default=0.75,
        gt=0,
        le=1,
        description="cosine at or above which a new fact that contains a known one and adds "
        "detail updates it (a new version) instead of being added",
    )
    max_facts_per_episode: int = Field(
        default=20, ge=1, le=500, description="facts kept from one episode, first first"
    )
    max_attempts: int = Field(
        default=5,
        ge=1,
        description="failed extractions of one episode before it is marked 'failed' instead of "
        "'pending'",
    )


class BufferSettings(BaseModel):
    """Short-term buffers: the live turns of each thread, and when they become episodes (see
    docs/configuration.md, "Buffers")."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    max_tokens: int = Field(
        default=2000,
        ge=1,
        description="token budget of a thread's live turns; over it, the oldest turns are "
        "flushed into episodic memory until half the budget is left",
    )
    topic_shift_threshold: float | None = Field(
        default=0.1,
        ge=-1,
        le=1,
        description="cosine below which a new turn starts a new topic and the turns before it "
        "are flushed as one episode; None switches topic segmentation off",
    )
    topic_shift_window: int = Field(
        default=3,
        ge=1,
        le=32,
        description="a turn shifts the topic when it is below the threshold against each of "
        "this many turns before it (1: consecutive turns only)",
    )
    min_segment_turns: int = Field(
        default=4, ge=1, description="fewest turns a topic shift flushes as one episode"
    )
    context_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="most of context()'s max_tokens the live window may take; long-term "
        "memories get the rest",
    )
    ttl_seconds: int | None = Field(
        default=7 * 24 * 3600,
        ge=1,
        description="Redis: a thread idle this long expires (refreshed by every append); "
        "None keeps threads until flushed or cleared",
    )
    key_prefix: str = Field(
        default="agentmem:buffer:", min_length=1, description="Redis key prefix of buffers"
    )
    lock_timeout_s: float = Field(
        default=30.0, gt=0, description="longest a flush holds, or waits for, a thread's lock"
    )

    @field_validator("topic_shift_threshold", "ttl_seconds", mode="before")
    @classmethod
    def _none_words(cls, value: Any) -> Any:
        # Environment variables are strings: let AGENTMEM_BUFFER__TTL_SECONDS=none mean None.
        return none_words(value)


class ExperienceSettings(BaseModel):
    """Experience memory: how trajectories are checked, grouped into task families, distilled
    into procedures, and how procedures are demoted and retired (see docs/configuration.md,
    "Experience", and docs/architecture.md, "Experience lifecycle")."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    reward_range: tuple[float, float] = Field(
        default=(-1.0, 1.0),
        description="declared range of rewards (inclusive); a reward outside it is rejected",
    )
    family_threshold: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="cosine of two tasks at or above which they belong to one task family "
        "(when no task_family metadata names it)",
    )
    success_weight: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="weight of success (outcome and reward) against task similarity when "
        "recall_experience ranks past experiences",
    )
    candidates: int = Field(
        default=20, ge=1, le=1000, description="past experiences compared with a new task"
    )
    distil: bool = Field(
        default=True,
        description="distil each recorded experience into procedures at once; False keeps "
        "raw trajectories only",
    )
    demote_min_uses: int = Field(
        default=3, ge=1, description="uses before a procedure's success rate can demote it"
    )
    demote_below: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="success rate under which a procedure used demote_min_uses times is demoted",
    )
    retire_after_failures: int = Field(
        default=5,
        ge=1,
        description="failures while demoted (after the use that demoted it, from 0 again if it "
        "recovers) at which a procedure is retired (invalidated, kept)",
    )
    max_steps: int = Field(default=200, ge=1, description="most steps one trajectory may have")
    max_observation_chars: int = Field(
        default=2000,
        ge=16,
        description="longer observations, errors and thoughts are stored truncated (with a "
        "marker); shorter still (at least 100 characters) where the trajectory would take its "
        "experience's metadata over max_metadata_bytes",
    )
    context_procedures: int = Field(
        default=5, ge=0, le=100, description="most procedures context() puts first; 0: none"
    )

    @field_validator("reward_range")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
            raise ValueError(f"reward_range must be two finite numbers, low < high; got {value}")
        return value


class GraphSettings(BaseModel):
    """The knowledge graph: how entities are resolved, how the graph channel spreads, how
    communities are found (see docs/configuration.md, "Knowledge graph")."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    enabled: bool = Field(
        default=True,
        description="keep a knowledge graph of the entities facts mention (updated with every "
        "write of a fact); False leaves the graph alone and the graph channel empty",
    )
    fuzzy_threshold: float = Field(
        default=90.0,
        ge=50,
        le=100,
        description="rapidfuzz ratio (0-100) of two normalised names at or above which a new "
        "name is the same entity as a known one",
    )
    fuzzy_min_length: int = Field(
        default=5, ge=1, description="names shorter than this are only matched exactly"
    )
    embedding_threshold: float | None = Field(
        default=0.9,
        gt=0,
        le=1,
        description="cosine of two names' embeddings at or above which they are one entity "
        "(e.g. 'NYC' / 'New York City'); None switches embedding matching off",
    )
    ppr_damping: float = Field(
        default=0.5,
        gt=0,
        lt=1,
        description="PageRank damping of the graph channel (HippoRAG uses 0.5): the chance of "
        "following an edge instead of returning to the query's entities",
    )
    max_seeds: int = Field(
        default=8, ge=1, le=100, description="most query entities that seed the PageRank"
    )
    whole_partition_max_entities: int = Field(
        default=20_000,
        ge=0,
        description="on a graph server, a partition with more entities than this is not loaded "
        "whole for the graph channel: its PageRank runs on the k-hop neighbourhood of the "
        "query's entities, fetched with indexed reads (benchmarks/RESULTS.md, graph-server)",
    )
    subgraph_hops: int = Field(
        default=2, ge=1, le=5, description="hops of that neighbourhood from the query's entities"
    )
    subgraph_max_entities: int = Field(
        default=2000, ge=1, le=1_000_000, description="most entities of that neighbourhood"
    )
    concepts: bool = Field(
        default=True,
        description="the graph channel's PageRank also walks through concept nodes (the "
        "content words of facts) and is seeded by the query's content words, as HippoRAG 2 "
        "walks through phrase and passage nodes; False: entities only",
    )
    concept_weight: float = Field(
        default=0.5,
        ge=0,
        description="share of the PageRank restart mass given to the query's content words, "
        "against 1 for the entities it names (within each, by specificity)",
    )
    dense_seeds: int = Field(
        default=0,
        ge=0,
        le=100,
        description="also seed the PageRank with the facts and episodes of this many top "
        "dense hits (HippoRAG 2's passage seeds; one more vector query); 0: off",
    )
    dense_seed_weight: float = Field(
        default=1.0, ge=0, description="share of the restart mass of the dense seeds"
    )
    community_resolution: float = Field(
        default=1.0, gt=0, description="Louvain resolution: above 1 gives smaller communities"
    )
    community_levels: int = Field(
        default=3, ge=1, le=10, description="most levels of communities of communities"
    )
    seed: int = Field(default=7, description="random seed of community detection")

    @field_validator("embedding_threshold", mode="before")
    @classmethod
    def _none_words(cls, value: Any) -> Any:
        return none_words(value)


class UtilitySettings(BaseModel):
    """Learning from outcomes (:mod:`agentmem.usefulness`): feedback, the learned utility of each
    memory, how retrieval mixes it in, and what pruning archives or promotes
    (``AGENTMEM_UTILITY__*``). Every number is finite (NaN or infinity is refused)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    enabled: bool = Field(
        default=True,
        description="re-rank search candidates by learned utility where feedback exists",
    )
    record_retrievals: bool = Field(
        default=True,
        description="remember what each search / context call showed, under its retrieval id",
    )
    reward_range: tuple[float, float] = Field(
        default=(-1.0, 1.0),
        description="declared range of feedback rewards (inclusive); outside it is rejected",
    )
    learning_rate: float = Field(
        default=0.2, gt=0, le=1, description="alpha of the update Q <- Q + alpha * (r - Q)"
    )
    prior: float = Field(default=0.0, description="utility of a memory never rewarded")
    weight: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="share of utility in the re-ranking score: (1 - w) * relevance + "
        "w * confidence * utility, relevance scaled to [0, 1] by the best candidate",
    )
    confidence_k: float = Field(
        default=2.0,
        gt=0,
        description="confidence of a utility made by n rewards is n / (n + confidence_k)",
    )
    min_count: int = Field(
        default=5, ge=1, description="rewards a memory needs before pruning or promotion"
    )
    archive_below: float = Field(
        default=-0.3,
        description="pruning archives a memory whose utility, after min_count rewards, is below",
    )
    promote_above: float = Field(
        default=0.5,
        description="pruning raises the importance of a procedure or experience whose utility, "
        "after min_count rewards, is above",
    )
    importance_step: float = Field(
        default=0.1, gt=0, le=1, description="how much one pruning pass moves importance"
    )

    @field_validator("reward_range")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value  # a finite width too: Q + a * (r - Q) must stay finite
        if not low < high or not math.isfinite(high - low):
            raise ValueError(f"reward_range must be finite (low, high), low < high; got {value}")
        return value


class NotesSettings(BaseModel):
    """Linked notes (:mod:`agentmem.notes`): how a new semantic memory is linked to the notes
    it relates to, and how far it may update them (``AGENTMEM_NOTES__*``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    enabled: bool = Field(
        default=True, description="link every new semantic memory to its related notes on add"
    )
    candidates: int = Field(
        default=10, ge=1, le=200, description="nearest notes in scope examined per new note"
    )
    link_threshold: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="cosine at or above which a neighbour is linked (lower with shared "
        "entities/keywords, see docs/architecture.md)",
    )
    max_links: int = Field(default=5, ge=0, le=50, description="most links one new note makes")
    evolve: bool = Field(
        default=False,
        description="a new note may update the context and tags of the notes it links to "
        "(off by default: it re-embeds each updated note, see benchmarks/RESULTS.md, notes)",
    )
    max_evolve_per_add: int = Field(
        default=2,
        ge=0,
        le=50,
        description="most neighbours one new note may update (caps runaway evolution)",
    )
    max_context_chars: int = Field(
        default=240, ge=40, le=4000, description="longest context line evolution may grow"
    )
    max_keywords: int = Field(default=12, ge=1, le=100, description="keywords kept per note")


class ProfileSettings(BaseModel):
    """User and agent profiles (:mod:`agentmem.profiles`, ``AGENTMEM_PROFILE__*``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    from_facts: bool = Field(
        default=True,
        description="revise profiles from the facts each extraction applies (and so in "
        "consolidation)",
    )
    max_items: int = Field(
        default=20, ge=1, le=500, description="most items a list field keeps (newest kept)"
    )


class ContextSettings(BaseModel):
    """How ``context()`` chooses between the whole history and retrieval
    (``AGENTMEM_CONTEXT__*``; see docs/architecture.md, "Context strategy")."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    strategy: Literal["auto", "full_history", "retrieval"] = Field(
        default="auto",
        description="auto: the whole history when it fits the budget, else retrieval; or force one",
    )
    full_history_share: float = Field(
        default=1.0,
        gt=0.0,
        le=1.0,
        description="share of the budget (after profile and live turns) the whole history "
        "must fit in for auto to choose it",
    )
    profile_share: float = Field(
        default=0.25, ge=0.0, le=1.0, description="most of the budget the profile may take"
    )
    max_history_records: int = Field(
        default=2000, ge=1, le=100_000, description="most records auto reads to decide"
    )


__all__ = [
    "DEFAULT_WEIGHTS",
    "BufferSettings",
    "ContextSettings",
    "ExperienceSettings",
    "GraphSettings",
    "NotesSettings",
    "ProfileSettings",
    "RetrievalSettings",
    "SemanticSettings",
    "UtilitySettings",
]
