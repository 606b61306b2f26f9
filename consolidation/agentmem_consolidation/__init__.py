"""Consolidation: the pipeline that turns raw experience into durable knowledge.

Per scope, in order (each an idempotent stage with a watermark, under a per-scope lock, retried
with backoff, recorded in the job ledger): flush buffers -> extract facts from new episodes
(embeddings batched across episodes, :mod:`agentmem_consolidation.extract`) -> rebuild graph
communities -> decay and archive -> utility pruning -> distil experiences into procedures ->
hand adapter training to the ``gpu`` queue (the registered order is :data:`STAGES`). Inline
(``agentmem consolidate --now``, :func:`run_inline`) or on Celery workers
(``celery -A agentmem_consolidation worker``,
:func:`agentmem_consolidation.tasks.consolidate`), nightly by beat
(``celery -A agentmem_consolidation beat``).
"""

from __future__ import annotations

from agentmem_consolidation.app import app, celery_config, create_app
from agentmem_consolidation.decay import DecayReport, decay_scope, restore, retention
from agentmem_consolidation.ledger import JobRow, jobs
from agentmem_consolidation.pipeline import RunReport, ScopeBusy, active_scopes, run_inline
from agentmem_consolidation.stages import STAGES, RunContext, StageResult, stage

celery = app
"""Alias: ``celery -A agentmem_consolidation`` finds ``app``."""

__all__ = [
    "STAGES",
    "DecayReport",
    "JobRow",
    "RunContext",
    "RunReport",
    "ScopeBusy",
    "StageResult",
    "active_scopes",
    "app",
    "celery",
    "celery_config",
    "create_app",
    "decay_scope",
    "jobs",
    "restore",
    "retention",
    "run_inline",
    "stage",
]
