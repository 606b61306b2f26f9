"""Answering a question from memory: the scope's recall adapter when confident, else retrieval.

``Memory.recall`` is a thin wrapper of :func:`answer`. The recall model comes from a
:class:`~agentmem.parametric.RecallSource` (the ``agentmem_gpu`` package's adapter registry, found
through an entry point); without one, or when its confidence falls below its gate, the answer
is the best search hit. Nothing here imports torch.
"""

from __future__ import annotations

from agentmem import retrieval
from agentmem.backends import Backends
from agentmem.models import MemoryKind, Scope
from agentmem.parametric import RecallAnswer, RecallSource, scope_key
from agentmem.validation import check_k, check_text


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
    model = source.recall_model(scope_key(scope)) if source is not None else None
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


__all__ = ["answer"]
