"""Request and response bodies of the REST API that the library's models do not already give.

Responses reuse the library's pydantic models (:class:`~agentmem.models.MemoryRecord`,
:class:`~agentmem.models.SearchHit`, :class:`~agentmem.context.Context`, ...); requests are the
keyword arguments of the matching :class:`~agentmem.Memory` method, with the scope fields
(``org_id``, ``user_id``, ``agent_id``, ``thread_id``) at the top level. Numbers in request
bodies are strict (:class:`~pydantic.StrictInt`, :class:`~pydantic.StrictFloat`), as the
library's arguments are: ``"k": true`` or ``"k": "2"`` is a 422, never read as 1 or 2.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, WithJsonSchema

from agentmem.experience.models import Outcome, Step
from agentmem.models import MemoryKind, MemoryRecord
from agentmem.stores._jobs_sql import JobRow

T = TypeVar("T")

# The rules of agentmem.models.Scope, for the schema only: the server checks ids itself (its
# InvalidScope messages say what to change). Regex escapes both ECMA 262 and Python read;
# format characters beyond U+FFFF cannot be written in both dialects, so they are only named.
_SPACE = r"\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_REFUSED = (
    r"/\\\x00-\x1f\x7f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    r"\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
)
_ENDS = rf"[\t-\r\x1c-\x1f{_SPACE}]*"  # stripped first, control whitespace included
_KEPT = rf"[^{_REFUSED}{_SPACE}]"  # what the stripped id starts and ends with
SCOPE_ID_PATTERN = rf"^{_ENDS}(?!\.\.?{_ENDS}$){_KEPT}(?:[^{_REFUSED}]*{_KEPT})?{_ENDS}$"
"""What a scope id (``org_id``, ``user_id``, ``agent_id``, ``thread_id``) must match."""

SCOPE_ID_RULES = (
    "An id of at most 256 characters, not only whitespace (surrounding whitespace is "
    "stripped, Unicode is NFC-normalised), not '.' or '..', with no '/' or '\\', no control "
    "character (U+0000-U+001F, U+007F) and no invisible format character (Unicode category Cf: "
    "zero-width space and joiners, bidi marks, soft hyphen, BOM, and also those beyond U+FFFF, "
    "which the pattern does not list). Anything else is refused with a 422 InvalidScope."
)

ScopeId = Annotated[
    str,
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": 256,
            "pattern": SCOPE_ID_PATTERN,
            "description": SCOPE_ID_RULES,
        }
    ),
]
"""A scope id: validated by the server (:class:`~agentmem.models.Scope`), its rules stated in
the OpenAPI schema. Its length is not checked here: the server's check counts it after
stripping and refuses it with the documented ``InvalidScope``."""

Importance = Annotated[StrictFloat, Field(ge=0, le=1, allow_inf_nan=False)]
"""A memory's importance: a finite JSON number in [0, 1] (``NaN`` is refused as not finite)."""


class ScopeFields(BaseModel):
    """The scope of a request; ``org_id`` defaults to the API key's org."""

    model_config = ConfigDict(extra="forbid")

    org_id: ScopeId | None = None
    user_id: ScopeId | None = None
    agent_id: ScopeId | None = None
    thread_id: ScopeId | None = None

    def scope_kwargs(self) -> dict[str, str | None]:
        """The four scope fields as keyword arguments."""
        return {
            "org_id": self.org_id,
            "user_id": self.user_id,
            "agent_id": self.agent_id,
            "thread_id": self.thread_id,
        }


class Message(BaseModel):
    """One chat message of an episode."""

    model_config = ConfigDict(extra="forbid")

    role: str = Field(min_length=1, max_length=64)
    content: str
    name: str | None = Field(default=None, max_length=256)


class AddMemory(ScopeFields):
    """``POST /v1/memories``: one memory, as ``text`` or as chat ``messages``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "user_id": "alice",
                    "text": "Alice moved to Lisbon in May 2023",
                    "metadata": {"topic": "travel"},
                }
            ]
        },
    )

    text: str | None = None
    messages: list[Message] | None = Field(default=None, max_length=1000)
    kind: MemoryKind = MemoryKind.EPISODIC
    metadata: dict[str, Any] | None = None
    event_time: datetime | None = None
    importance: Importance | None = None
    infer: bool | Literal["deferred"] | None = None
    source: str | None = Field(
        default=None,
        max_length=64,
        description="who wrote it (user, agent, tool, import; default: the server's "
        "trust.default_source); an untrusted source's write waits in quarantine",
    )


class BatchItem(BaseModel):
    """One item of a batch add."""

    model_config = ConfigDict(extra="forbid")

    text: str
    kind: MemoryKind = MemoryKind.EPISODIC
    metadata: dict[str, Any] | None = None
    event_time: datetime | None = None
    importance: Importance | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None


class AddBatch(ScopeFields):
    """``POST /v1/memories/batch``: many memories in one transaction (all or none)."""

    items: list[BatchItem] = Field(min_length=1, max_length=1000)
    infer: bool | Literal["deferred"] | None = None


class UpdateMemory(ScopeFields):
    """``PATCH /v1/memories/{id}``: a new version of a memory."""

    text: str | None = None
    metadata: dict[str, Any] | None = None
    importance: Importance | None = None


class SearchRequest(ScopeFields):
    """``POST /v1/memories/search``: hybrid search in a scope."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"user_id": "alice", "query": "where does Alice live?"}]},
    )

    query: str
    k: StrictInt = Field(default=10, ge=1, le=1000)
    kinds: list[MemoryKind] | None = None
    filters: dict[str, Any] | None = None
    as_of: datetime | None = None
    event_after: datetime | None = None
    event_before: datetime | None = None
    reference_time: datetime | None = None
    expand_links: StrictInt = Field(
        default=0, ge=0, le=3, description="add notes linked to the top hits (the links channel)"
    )
    include_quarantined: bool = Field(
        default=False,
        description="append up to k held writes sharing words with the query (and meeting "
        "its kinds, filters, as_of and event-time bounds)",
    )


class ContextRequest(ScopeFields):
    """``POST /v1/context``: a prompt-ready block within a token budget."""

    query: str
    max_tokens: StrictInt = Field(default=2000, ge=1, le=200_000)
    kinds: list[MemoryKind] | None = None
    filters: dict[str, Any] | None = None
    as_of: datetime | None = None


class Page(BaseModel, Generic[T]):
    """One page of a listing; ``next_offset`` is None on the last page."""

    items: list[T]
    limit: int
    offset: int
    next_offset: int | None = None


class MemoryPage(Page[MemoryRecord]):
    """A page of memories."""


class AppendTurn(ScopeFields):
    """``POST /v1/buffers/append``: one turn into a thread's live buffer (``thread_id`` set)."""

    role: str = Field(min_length=1, max_length=64)
    content: str
    name: str | None = Field(default=None, max_length=256)


class FlushRequest(ScopeFields):
    """``POST /v1/buffers/flush``: store a thread's buffer as an episode now."""


class RecordExperience(ScopeFields):
    """``POST /v1/experiences``: an attempt at a task, its trajectory and outcome."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "agent_id": "bot",
                    "task": "book a table for two",
                    "steps": [{"action": "search", "args": {"q": "restaurants"}}],
                    "outcome": "success",
                    "reward": 1.0,
                }
            ]
        },
    )

    task: str
    steps: list[Step] = Field(min_length=1, max_length=1000)
    outcome: Outcome
    reward: StrictFloat | None = None
    feedback: str | None = None
    metadata: dict[str, Any] | None = None
    used_procedures: list[str] | None = None


class RecallExperience(ScopeFields):
    """``POST /v1/experiences/recall``: past attempts and procedures for a task."""

    task: str
    k: StrictInt = Field(default=5, ge=1, le=100)
    task_family: str | None = None
    include_retired: bool = False


class ConsolidationRequest(ScopeFields):
    """``POST /v1/consolidation/runs``: run the consolidation pipeline for a scope, inline."""

    stages: list[str] | None = None


class StageSummary(BaseModel):
    """What one stage of a run did."""

    stage: str
    count_in: int
    count_out: int


class RunSummary(BaseModel):
    """What one consolidation run did."""

    run_id: str
    scope: str
    skipped: bool
    duration_s: float
    stages: list[StageSummary]


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class JobInfo(BaseModel):
    """One ledger row of a consolidation run: one stage (or ``run``, the row summing up the
    whole run), with ISO-8601 times."""

    run_id: str
    stage: str
    scope: str
    status: str = Field(description="queued, running, done, failed, retrying or skipped")
    count_in: int
    count_out: int
    started_at: datetime
    finished_at: datetime | None = Field(default=None, description="null until it finishes")
    duration_s: float
    attempt: int = 1
    error: str | None = None
    note: str = ""

    @classmethod
    def of(cls, row: JobRow) -> JobInfo:
        """The ledger row as the API shows it."""
        running = row.status in ("queued", "running", "retrying")  # not finished yet
        return cls(
            run_id=row.run_id,
            stage=row.stage,
            scope=row.scope,
            status=row.status,
            count_in=row.count_in,
            count_out=row.count_out,
            started_at=_utc(row.started_at),
            finished_at=None if running else _utc(row.started_at + row.duration_s),
            duration_s=row.duration_s,
            attempt=row.attempt,
            error=row.error,
            note=row.note,
        )


class RunStatus(BaseModel):
    """Where a consolidation run stands: its status, and each stage that has started."""

    run_id: str
    status: Literal["queued", "running", "retrying", "done", "failed", "skipped"] = Field(
        description="queued until a worker takes the run; then the status of its summary row"
    )
    scope: str | None = Field(default=None, description="the scope key; null while queued")
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float | None = None
    error: str | None = None
    stages: list[JobInfo] = Field(description="the stages run so far, in the order they started")

    @classmethod
    def of(cls, run_id: str, rows: list[JobRow], summary_stage: str) -> RunStatus:
        """The status of ``run_id`` from its ledger rows (none yet: queued)."""
        infos = sorted((JobInfo.of(r) for r in rows), key=lambda i: (i.started_at, i.stage))
        summary = next((i for i in infos if i.stage == summary_stage), None)
        stages = [i for i in infos if i.stage != summary_stage]
        if summary is None:
            status = "running" if stages else "queued"
            return cls(run_id=run_id, status=status, stages=stages)  # type: ignore[arg-type]
        return cls(
            run_id=run_id,
            status=summary.status,  # type: ignore[arg-type]
            scope=summary.scope,
            started_at=summary.started_at,
            finished_at=summary.finished_at,
            duration_s=None if summary.finished_at is None else summary.duration_s,
            error=summary.error,
            stages=stages,
        )


class AdapterInfo(BaseModel):
    """One registered adapter version."""

    scope_key: str
    version: int
    kind: str
    promoted: bool
    score: float | None = None
    base_score: float | None = None
    tainted: bool = False
    """Trained on a memory since forgotten: never served or promoted again."""
    created: str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    """Held-out evaluation and training figures recorded with the adapter."""


class PromoteRequest(ScopeFields):
    """``POST /v1/adapters/promote``: promote a version of the scope's adapter."""

    version: StrictInt = Field(ge=1)
    force: bool = False


class PromotionInfo(BaseModel):
    """The outcome of a promotion."""

    promoted: bool
    reason: str
    adapter: AdapterInfo


class Health(BaseModel):
    """Liveness / readiness."""

    status: str
    detail: str = ""


class ErrorBody(BaseModel):
    """Every error response: ``{"error": {...}}``."""

    type: str
    message: str
    request_id: str | None = None


class ErrorResponse(BaseModel):
    """The body of every 4xx and 5xx response."""

    error: ErrorBody


__all__ = [
    "AdapterInfo",
    "AddBatch",
    "AddMemory",
    "AppendTurn",
    "BatchItem",
    "ConsolidationRequest",
    "ContextRequest",
    "ErrorResponse",
    "FlushRequest",
    "Health",
    "JobInfo",
    "MemoryPage",
    "Message",
    "Page",
    "PromoteRequest",
    "PromotionInfo",
    "RecallExperience",
    "RecordExperience",
    "RunSummary",
    "ScopeFields",
    "SearchRequest",
    "StageSummary",
    "UpdateMemory",
]
