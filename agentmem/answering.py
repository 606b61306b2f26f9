"""Answering a question from memory: the scope's recall adapter when confident, else retrieval.

``Memory.recall`` is a thin wrapper of :func:`answer`. The recall model comes from a
:class:`~agentmem.parametric.RecallSource` (the ``agentmem_gpu`` package's adapter registry, found
through an entry point); without one, or when its confidence falls below its gate, the answer
is the best search hit. Nothing here imports torch.
"""

from __future__ import annotations

import logging

from agentmem import retrieval
from agentmem.backends import Backends
from agentmem.models import MemoryKind, Scope
from agentmem.parametric import RecallAnswer, RecallModel, RecallSource, scope_key
from agentmem.validation import check_gate, check_k, check_text

logger = logging.getLogger(__name__)
_unservable_warned: set[str] = set()


def answer(
    backends: Backends,
    source: RecallSource | None,
    question: str,
    scope: Scope,
    *,
    k: int = 5,
    kinds: tuple[MemoryKind, ...] = (),
    gate_threshold: float | None = None,
) -> RecallAnswer:
    """Answer ``question`` in ``scope``: parametric when the scope's own recall model is
    confident enough, else from retrieval (the top of ``k`` search hits).

    ``gate_threshold`` overrides the model's own gate for this call (a mean answer-token
    log-probability; ``0.0`` effectively forces retrieval, a very negative value forces the
    parametric answer whenever a model exists).
    """
    question = check_text(question, max_chars=backends.settings.max_text_chars, what="question")
    check_k(k)
    gate_threshold = check_gate(gate_threshold)
    model = _recall_model(source, scope)
    confidence: float | None = None
    parametric: str | None = None
    name: str | None = None
    if model is not None:
        name = model.name
        result = model.answer(question)
        confidence, parametric = result.confidence, result.answer
        threshold = model.gate_threshold if gate_threshold is None else gate_threshold
        if parametric.strip() and confidence >= threshold:
            return RecallAnswer(
                parametric, "parametric", confidence, [], parametric_answer=parametric, model=name
            )
    hits = retrieval.search(backends, question, scope, k=k, kinds=kinds)
    retrieved = hits[0].record.text if hits else ""
    return RecallAnswer(
        retrieved, "retrieved", confidence, hits, parametric_answer=parametric, model=name
    )


def _recall_model(source: RecallSource | None, scope: Scope) -> RecallModel | None:
    """The scope's recall model, or None; also None (said once per process and missing
    module) when one is promoted but this process cannot load it (no torch: the ``gpu`` extra
    is not installed), so recall answers from retrieval as without the extra."""
    if source is None:
        return None
    try:
        return source.recall_model(scope_key(scope))
    except ImportError as exc:
        if str(exc) not in _unservable_warned:
            _unservable_warned.add(str(exc))
            logger.warning(
                "a promoted recall adapter cannot be served in this process (%s): answering "
                "from retrieval. Serving adapters needs the gpu extra: pip install "
                "'agentmem[gpu]'",
                exc,
            )
        return None


__all__ = ["answer"]
