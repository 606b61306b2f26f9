"""Request and response bodies of the inspection routes (:mod:`agentmem_server.routes_inspect`):
what a
person (or the ``/ui`` page) needs to see, explain, correct and forget memory."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, StrictFloat

from agentmem_server.schemas import ScopeFields

_IDS = Field(min_length=1, max_length=1000)


class KeyInfo(BaseModel):
    """The calling API key as the service sees it (never its secret)."""

    key_id: str
    name: str
    org_id: str
    user_ids: list[str]
    agent_ids: list[str]


class UtilityInfo(BaseModel):
    """A memory's learned utility; ``utility`` is None until a reward reached it."""

    memory_id: str
    utility: float | None = None
    count: int = 0


class RankingInfo(BaseModel):
    """How search fuses its channels: a hit's fused score is the sum over channels of
    ``weights[channel] / (rrf_k + rank)``, then mixed with learned utility when enabled. The
    dense channel's rank also counts ``dense_gap_ranks`` ranks per unit of cosine the hit
    trails that channel's best hit (score-aware fusion; not for a question about the present
    state)."""

    weights: dict[str, float]
    rrf_k: int
    dense_gap_ranks: float = 0.0
    candidates: int
    mmr_lambda: float | None = None
    utility_enabled: bool
    utility_weight: float
    utility_confidence_k: float


class InvalidateRequest(ScopeFields):
    """``POST /v1/memories/{id}/invalidate``: the fact stopped being true (kept, not deleted)."""

    valid_to: datetime | None = None


class ForgetRequest(ScopeFields):
    """``POST /v1/forget``: forget ``ids``, or with ``whole_scope`` every memory of the scope
    (a user, an agent); a reason is required and kept in the forget report."""

    ids: list[str] | None = Field(default=None, min_length=1, max_length=1000)
    whole_scope: bool = False
    reason: str = Field(min_length=1, max_length=2000)
    purge: bool = False


class FeedbackRequest(ScopeFields):
    """``POST /v1/feedback``: how a task went, credited to the memories that served it: a
    search's or context's ``retrieval_id`` (exactly what was shown), or memory ``ids``."""

    retrieval_id: str | None = Field(default=None, min_length=1, max_length=255)
    ids: list[str] | None = Field(default=None, min_length=1, max_length=1000)
    reward: StrictFloat
    task: str | None = Field(default=None, max_length=2000)
    feedback_id: str | None = Field(default=None, min_length=1, max_length=255)


class QuarantineDecision(ScopeFields):
    """``POST /v1/quarantine/approve`` or ``/reject``: held memory ids of the scope."""

    ids: list[str] = _IDS


class Rejected(BaseModel):
    """How many held memories were dropped."""

    rejected: int


__all__ = [
    "ForgetRequest",
    "InvalidateRequest",
    "KeyInfo",
    "QuarantineDecision",
    "RankingInfo",
    "Rejected",
    "UtilityInfo",
]
