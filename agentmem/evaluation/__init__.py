"""Evaluate search on your data and on public data sets (``agentmem eval``).

:func:`load_dataset` reads a data set (LoCoMo turns, LoCoMo observations, LongMemEval's JSON, or
the small-scope set shipped here); :func:`run_eval` replays it into a :class:`~agentmem.Memory`
(a fresh home unless you pass one), asks its questions through the public ``search``, and
scores recall@k, hit@k and NDCG@10 per category beside two same-run baselines (dense-only exact
search and BM25 over the same texts).
"""

from agentmem.evaluation.datasets import (
    KINDS,
    EvalMemory,
    EvalQuestion,
    EvalScope,
    EvalSet,
    load_dataset,
    load_locomo,
    load_locomo_observations,
    load_longmemeval,
    load_small,
    small_scope_path,
)
from agentmem.evaluation.runner import SYSTEMS, EvalReport, metric_names, replay, run_eval

__all__ = [
    "KINDS",
    "SYSTEMS",
    "EvalMemory",
    "EvalQuestion",
    "EvalReport",
    "EvalScope",
    "EvalSet",
    "load_dataset",
    "load_locomo",
    "load_locomo_observations",
    "load_longmemeval",
    "load_small",
    "metric_names",
    "replay",
    "run_eval",
    "small_scope_path",
]
