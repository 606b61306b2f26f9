"""The semantic pipeline: episode -> facts -> decisions -> applied, and the pending queue.

:func:`consolidate_episode` runs one episode through an :class:`Extractor` and a
:class:`Decider` (LLM-free by default, the LLM's when ``AGENTMEM_LLM_MODEL`` is set) and
applies the decisions. :func:`extract_episode` wraps it for stored episodes: it records the
outcome on the episode (``metadata["extraction"]``: ``"done"``, or ``"pending"`` with the error
when the LLM failed, ``"failed"`` after ``semantic.max_attempts`` tries), so an episode is never
lost and never silently skipped. :func:`extract_pending` retries every pending episode; it is
what consolidation calls, and what ``add(..., infer="deferred")`` leaves work for.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any, Protocol, runtime_checkable

from agentmem import writing
from agentmem.backends import Backends, HasBackends, backends_of
from agentmem.errors import (
    AgentMemError,
    BackendUnavailable,
    ExtractionFailed,
    InvalidMetadata,
    LLMUnavailable,
    NotFound,
    ValidationError,
)
from agentmem.filters import Condition, FilterOp
from agentmem.models import MemoryKind, MemoryRecord, Scope
from agentmem.profiles.hooks import observe_applied
from agentmem.semantic.decide import FactContext, RulesDecider, Source, apply_decisions, gather
from agentmem.semantic.episodes import Episode, episode_from
from agentmem.semantic.llm import Completion, LLMClient, LLMDecider, LLMExtractor
from agentmem.semantic.rules import RulesExtractor
from agentmem.semantic.schema import AppliedDecision, Decision, ExtractedFact, ExtractionOutcome
from agentmem.semantic.scrub import scrub
from agentmem.settings import Settings
from agentmem.stores import RecordQuery

log = logging.getLogger(__name__)

EXTRACTION_KEY = "extraction"
"""Metadata key of an episode's extraction status: ``pending``, ``done`` or ``failed``
(filter with ``mem.list(filters={"extraction": "pending"})``)."""
PENDING, DONE, FAILED = "pending", "done", "failed"


@runtime_checkable
class Extractor(Protocol):
    """Turns an episode into facts. ``name`` (``"rules"``, ``"llm:<model>"``) and ``version``
    (``"rules-v5"``, ``"extract-v1"``) go into each fact's provenance."""

    name: str
    version: str

    def extract(self, episode: Episode) -> list[ExtractedFact]:
        """The facts the episode states."""
        ...


@runtime_checkable
class Decider(Protocol):
    """Decides ADD / UPDATE / INVALIDATE / NOOP for an episode's facts, given for each the
    known facts it could be about."""

    name: str

    def decide(
        self, backends: Backends, episode: Episode, contexts: Sequence[FactContext]
    ) -> list[Decision]:
        """Decisions (``Decision.fact`` indexes ``contexts``)."""
        ...


class InferMode(Enum):
    """What ``add`` does about facts: nothing, extract inline, or leave it for later."""

    OFF = "off"
    INLINE = "inline"
    DEFERRED = "deferred"


def infer_mode(value: Any, default: bool | str, kind: MemoryKind) -> InferMode:
    """The mode an ``add(..., infer=value)`` call runs in (``value`` None: the setting).

    Only episodes are extracted: asking for it on another kind is a :class:`ValidationError`;
    the setting's default simply does not apply to them.
    """
    explicit = value is not None
    chosen = default if value is None else value
    if chosen is True:
        mode = InferMode.INLINE
    elif chosen is False:
        mode = InferMode.OFF
    elif chosen == "deferred":
        mode = InferMode.DEFERRED
    else:
        raise ValidationError(f"infer must be True, False or 'deferred', got {value!r}")
    if mode is not InferMode.OFF and kind is not MemoryKind.EPISODIC:
        if explicit:
            raise ValidationError(
                f"infer={value!r} extracts facts from episodes; a {kind.value} memory is "
                "stored as it is (leave infer out)"
            )
        return InferMode.OFF
    return mode


def mark_pending(record: MemoryRecord) -> None:
    """Mark a not yet stored episode as waiting for extraction."""
    if EXTRACTION_KEY in record.metadata and record.metadata[EXTRACTION_KEY] != PENDING:
        raise InvalidMetadata(
            f"metadata key {EXTRACTION_KEY!r} is reserved for the extraction status; rename it"
        )
    record.metadata[EXTRACTION_KEY] = PENDING


def pipeline_for(
    settings: Settings, *, completion: Completion | None = None
) -> tuple[Extractor, Decider]:
    """The extractor and decider the settings ask for: the LLM's when ``llm_model`` is set,
    else the LLM-free rules."""
    if settings.llm_model:
        client = LLMClient.from_settings(settings, completion=completion)
        return (
            LLMExtractor(client, max_facts=settings.semantic.max_facts_per_episode),
            LLMDecider(client),
        )
    return (
        RulesExtractor(max_facts=settings.semantic.max_facts_per_episode),
        RulesDecider(settings.semantic),
    )


def consolidate_episode(
    mem: Backends | HasBackends,
    episode: MemoryRecord | Episode | str | Sequence[Mapping[str, Any]],
    *,
    scope: Scope | None = None,
    extractor: Extractor | None = None,
    decider: Decider | None = None,
) -> list[AppliedDecision]:
    """Extract facts from one episode, decide about each against what is known in its scope,
    and apply the decisions. Returns what was done, in order.

    ``episode`` is a stored episode (facts then point back to it in ``provenance.sources``), an
    :class:`Episode`, text (``"Name: words"`` lines, e.g. a flushed buffer segment) or chat
    messages; the last three need ``scope``. Raises :class:`~agentmem.errors.LLMUnavailable` or
    :class:`~agentmem.errors.ExtractionFailed` when the LLM fails; nothing is written then.
    """
    backends = backends_of(mem)
    settings = backends.settings
    if not isinstance(episode, Episode):
        episode = episode_from(episode, scope=scope)
    target_scope = scope or episode.scope
    if target_scope is None:
        raise ValidationError("consolidate_episode needs scope= for an episode that is not stored")
    if extractor is None or decider is None:
        default_extractor, default_decider = pipeline_for(settings)
        extractor = extractor or default_extractor
        decider = decider or default_decider
    facts = extractor.extract(episode)[: settings.semantic.max_facts_per_episode]
    if not facts:
        return []
    contexts = gather(backends, target_scope, facts, settings.semantic)
    decisions = decider.decide(backends, episode, contexts)
    source = Source(extractor.name, extractor.version, decider.name)
    applied = apply_decisions(backends, episode, target_scope, facts, decisions, source)
    observe_applied(backends, target_scope, applied)  # the owner's profile follows its facts
    return applied


def extract_episode(
    mem: Backends | HasBackends,
    record: MemoryRecord,
    *,
    extractor: Extractor | None = None,
    decider: Decider | None = None,
) -> tuple[MemoryRecord, ExtractionOutcome]:
    """Run a stored episode through the pipeline and record the outcome on it.

    Never raises for an LLM that failed or answered badly: the episode stays (``pending`` with
    the error and the number of attempts, or ``failed`` after ``semantic.max_attempts``).
    A storage, index or graph backend that is down is not the episode's fault: the episode
    stays ``pending`` with the reason, its attempts unchanged, and :class:`BackendUnavailable`
    is raised so the stage fails and consolidation retries it later with backoff.
    Returns the episode as now stored, and the outcome.
    """
    backends = backends_of(mem)
    if extractor is None or decider is None:
        default_extractor, default_decider = pipeline_for(backends.settings)
        extractor = extractor or default_extractor
        decider = decider or default_decider
    try:
        applied = consolidate_episode(backends, record, extractor=extractor, decider=decider)
    except BackendUnavailable as exc:
        if isinstance(exc, LLMUnavailable):
            return _kept_pending(backends, record, exc)
        log.warning("extraction of episode %s waits for a backend: %s", record.id, exc)
        metadata = {
            **record.metadata,
            EXTRACTION_KEY: PENDING,
            "extraction_error": f"{type(exc).__name__}: {exc}"[:1000],
        }
        # The store may be the backend that is down: the episode is pending anyway.
        with contextlib.suppress(AgentMemError):
            writing.update(backends, record.id, None, metadata=metadata, actor="semantic")
        raise
    except ValidationError as exc:
        llm = _llm_name(extractor, decider)
        if llm is not None:
            # The model's answer held a value the schema let through but the store refuses:
            # a formatting problem of that answer, which another try may not repeat.
            return _kept_pending(backends, record, _refused_answer(llm, exc))
        # The rules yield a fact that cannot be stored (e.g. dated before the calendar's
        # first day): the same on every try, so failed at once, with the reason.
        return _kept_pending(backends, record, exc, final=True)
    except AgentMemError as exc:
        return _kept_pending(backends, record, exc)
    except Exception as exc:
        # Something in this episode breaks the pipeline itself (a bug, or input no stage
        # foresaw): it would fail the same way on every try, so it is marked failed with the
        # reason and skipped, and the queue behind it goes on.
        log.exception("extraction of episode %s failed", record.id)
        return _kept_pending(backends, record, exc, final=True)
    ids = [i for a in applied for i in (a.memory_id, a.target_id) if i]
    metadata = {k: v for k, v in record.metadata.items() if not k.startswith("extraction_")}
    metadata[EXTRACTION_KEY] = DONE
    metadata["facts"] = list(dict.fromkeys(ids))
    outcome = ExtractionOutcome(episode_id=record.id, status=DONE, decisions=applied)
    try:
        updated = writing.update(backends, record.id, None, metadata=metadata, actor="semantic")
    except NotFound:  # forgotten while it was extracted (its facts were undone): nothing to mark
        return record, outcome
    return updated, outcome


def _llm_name(extractor: Extractor, decider: Decider) -> str | None:
    """``"llm:<model>"`` when the extractor or the decider is an LLM's, else None."""
    names = (str(getattr(s, "name", "")) for s in (extractor, decider))
    return next((n for n in names if n.startswith("llm:")), None)


def _refused_answer(llm: str, exc: ValidationError) -> ExtractionFailed:
    """The store's refusal of a value from the LLM's answer, told as a fault of that answer
    (the store's own advice, after its "; ", is for API callers and is left out)."""
    problem = str(exc).split("; ", 1)[0]
    return ExtractionFailed(f"the answer of {llm} held a value the store refuses ({problem})")


def _kept_pending(
    backends: Backends, record: MemoryRecord, exc: Exception, *, final: bool = False
) -> tuple[MemoryRecord, ExtractionOutcome]:
    """Record a failed extraction on the episode: pending, or failed after its attempts (at
    once when ``final``: retrying cannot help)."""
    attempts = int(record.metadata.get("extraction_attempts", 0) or 0) + 1
    exhausted = attempts >= backends.settings.semantic.max_attempts
    status = FAILED if final or exhausted else PENDING
    # Returned by get/list/export: never a key a provider's error echoed.
    error = scrub(str(exc), backends.settings.llm_kwargs)
    kept = "kept, marked pending for another try" if status == PENDING else "marked failed"
    log.warning("extraction of episode %s failed (%s); the episode is %s", record.id, error, kept)
    metadata = {
        **record.metadata,
        EXTRACTION_KEY: status,
        "extraction_error": f"{type(exc).__name__}: {error}"[:1000],
        "extraction_attempts": attempts,
    }
    updated = writing.update(backends, record.id, None, metadata=metadata, actor="semantic")
    return updated, ExtractionOutcome(episode_id=record.id, status=status, error=error)


def is_pending(record: MemoryRecord) -> bool:
    """Whether ``record`` is an episode waiting for extraction."""
    return record.kind is MemoryKind.EPISODIC and record.metadata.get(EXTRACTION_KEY) == PENDING


def pending_episodes(
    mem: Backends | HasBackends, scope: Scope | None = None, limit: int | None = None
) -> list[MemoryRecord]:
    """Episodes waiting for extraction, oldest first. With a scope this is one indexed query;
    without one, every scope: a scan of the whole store (fine for an embedded home; at scale,
    consolidation passes each scope)."""
    backends = backends_of(mem)
    wanted = limit if limit is not None else 100_000
    condition = (Condition(EXTRACTION_KEY, FilterOp.EQ, PENDING),)
    if scope is not None:
        return backends.store.query(
            RecordQuery(
                scope=scope, kinds=(MemoryKind.EPISODIC,), conditions=condition, limit=wanted
            )
        )
    found: list[MemoryRecord] = []
    after: str | None = None
    while len(found) < wanted:
        ids = backends.store.all_ids(after=after, limit=1000)
        if not ids:
            break
        for r in backends.store.get_many(ids):
            if is_pending(r):
                found.append(r)
        after = ids[-1]
    found.sort(key=lambda r: r.created_at)
    return found[:wanted]


def extract_pending(
    mem: Backends | HasBackends,
    scope: Scope | Mapping[str, str] | None = None,
    limit: int | None = None,
    *,
    extractor: Extractor | None = None,
    decider: Decider | None = None,
) -> list[ExtractionOutcome]:
    """Extract facts from every episode marked pending (``add(..., infer="deferred")``, or an
    inline extraction whose LLM failed), oldest first; at most ``limit`` episodes. Each is
    marked ``done``, or stays ``pending`` (``failed`` after too many attempts)."""
    if isinstance(scope, Mapping):
        scope = Scope.of(**scope)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValidationError(f"limit must be a positive integer, got {limit!r}")
    backends = backends_of(mem)
    if extractor is None or decider is None:
        default_extractor, default_decider = pipeline_for(backends.settings)
        extractor = extractor or default_extractor
        decider = decider or default_decider
    outcomes = []
    for record in pending_episodes(backends, scope, limit):
        _, outcome = extract_episode(backends, record, extractor=extractor, decider=decider)
        outcomes.append(outcome)
    return outcomes


__all__ = [
    "DONE",
    "EXTRACTION_KEY",
    "FAILED",
    "PENDING",
    "Decider",
    "Extractor",
    "InferMode",
    "consolidate_episode",
    "extract_episode",
    "extract_pending",
    "infer_mode",
    "is_pending",
    "mark_pending",
    "pending_episodes",
    "pipeline_for",
]
