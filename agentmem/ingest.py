"""The write path of ``add`` and ``add_many`` after the records are built: mark episodes for
fact extraction, screen the records through trust (quarantine, idempotency), then extract
facts inline when asked. One function for both calls and for agent handles' writes."""

from __future__ import annotations

from collections.abc import Sequence

from agentmem import trust
from agentmem.backends import Backends
from agentmem.models import MemoryKind, MemoryRecord, Scope
from agentmem.semantic import extractor as semantic
from agentmem.semantic.extractor import InferMode


def admit(
    backends: Backends,
    records: Sequence[MemoryRecord],
    scope: Scope,
    *,
    mode: InferMode = InferMode.OFF,
    source: str | None = None,
    idempotency_key: str | None = None,
) -> list[MemoryRecord]:
    """Store ``records`` (built in ``scope``) through the trust pipeline and return them:
    held ones marked ``provenance["quarantine"]``, episodes extracted when ``mode`` is
    ``INLINE`` (or marked pending for later unless it is ``OFF``). A retry under the same
    ``idempotency_key`` returns what the first call stored and writes nothing."""
    episodic = MemoryKind.EPISODIC
    if mode is not InferMode.OFF:
        for record in records:
            if record.kind is episodic:
                semantic.mark_pending(record)
    screened = trust.admit_once(backends, records, scope, source, idempotency_key)
    if isinstance(screened, list):  # a retry: what the first call stored
        return screened
    if mode is not InferMode.INLINE:
        return list(records)
    stored = {r.id for r in screened.store}
    return [
        semantic.extract_episode(backends, r)[0] if r.kind is episodic and r.id in stored else r
        for r in records
    ]


__all__ = ["admit"]
