"""Replay a data set into scopes, ask its questions, and score the answers.

Three systems are scored in the same run, on the same stored memories and the same vectors:

- ``agentmem``: the public :meth:`Memory.search` with the settings in force (the product);
- ``dense``: exact cosine search of the query embedding against every memory's own vector in
  the scope (numpy; no fusion, no windows);
- ``bm25``: agentmem's BM25 channel alone over the same texts.

Metrics (binary relevance, a repeated answer key earns nothing twice): recall@k (share of the
answers in the top k), hit@k (any answer in the top k) and NDCG@10, overall and per category.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from agentmem.errors import Conflict, InvalidDataFile, ValidationError
from agentmem.evaluation.datasets import (
    EvalQuestion,
    EvalScope,
    EvalSet,
    check_texts,
    replay_user,
)
from agentmem.fusion import fuse_scores
from agentmem.models import Scope
from agentmem.validation import MAX_K, show

if TYPE_CHECKING:
    from agentmem.memory import Memory

EVAL_KEY = "eval_key"
"""Metadata key holding a replayed memory's key in its data set."""

SYSTEMS = ("agentmem", "dense", "bm25", "bm25+dense")
"""Systems scored by :func:`run_eval`: the product, then the same-run baselines: dense exact
search, BM25, and the two fused by plain reciprocal rank fusion (k=60, equal weights, each
list 100 deep, or as deep as the largest cut-off), the hybrid search most memory layers ship."""

BASELINE_DEPTH = 100
"""How deep each baseline list is read at least before it is cut or fused (deeper when a
cut-off is larger)."""

Progress = Callable[[str, int], None]
"""Called with a stage ("add" or "search") and how many items were just done."""


# metrics ---------------------------------------------------------------------------------------


def ranked_keys(keys: Iterable[str | None]) -> list[str | None]:
    """Keys best first, a repeated key blanked (it takes a rank but earns nothing twice)."""
    seen: set[str] = set()
    out: list[str | None] = []
    for key in keys:
        if key is None or key in seen:
            out.append(None)
        else:
            seen.add(key)
            out.append(key)
    return out


def score(
    ranked: Sequence[str | None], answers: Sequence[str], ks: Sequence[int]
) -> dict[str, float]:
    """recall@k and hit@k for each k, and NDCG@10, of one ranked list."""
    relevant = set(answers)
    out: dict[str, float] = {}
    for k in ks:
        found = len(set(ranked[:k]) & relevant)
        out[f"recall@{k}"] = found / len(relevant)
        out[f"hit@{k}"] = 1.0 if found else 0.0
    dcg = sum(1.0 / math.log2(i + 2) for i, key in enumerate(ranked[:10]) if key in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
    out["ndcg@10"] = dcg / ideal
    return out


def check_cutoffs(ks: Any) -> list[int]:
    """The cut-offs of recall@k and hit@k, distinct and sorted: one or more integers from 1
    to :data:`~agentmem.validation.MAX_K` (the most one search returns). Checked before
    anything is added: unchecked, ``()`` failed on a raw TypeError, ``-1`` scored
    ``ranked[:-1]`` as "recall@-1", and ``1.5`` or ``2000`` failed after a scope's replay."""
    try:
        values = list(ks)
    except TypeError:
        values = []
    if not values or any(
        isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K for k in values
    ):
        raise ValidationError(
            f"ks must be one or more integers from 1 to {MAX_K} (the most one search "
            f"returns), e.g. ks=(1, 5, 10); got {show(ks)}; nothing was added"
        )
    return sorted(set(values))


def metric_names(ks: Sequence[int]) -> list[str]:
    """The metric columns, in order."""
    return [f"recall@{k}" for k in ks] + [f"hit@{k}" for k in ks] + ["ndcg@10"]


# results -----------------------------------------------------------------------------------------


@dataclass
class EvalReport:
    """Every question's scores per system, and their means overall and per category."""

    kind: str
    source: str
    ks: list[int]
    scopes: int = 0
    memories: int = 0
    rows: dict[str, list[tuple[str, dict[str, float]]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def means(self, system: str) -> dict[str, dict[str, float]]:
        """``{"overall": {...}, category: {...}}`` with ``questions`` and each metric."""
        rows = self.rows.get(system, [])
        groups: dict[str, list[dict[str, float]]] = {"overall": [s for _, s in rows]}
        for category, s in rows:
            groups.setdefault(category, []).append(s)
        out: dict[str, dict[str, float]] = {}
        for name, group in groups.items():
            mean = {"questions": float(len(group))}
            for metric in metric_names(self.ks):
                mean[metric] = sum(s[metric] for s in group) / len(group) if group else math.nan
            out[name] = mean
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the JSON output."""
        return {
            "dataset": {
                "kind": self.kind,
                "source": self.source,
                "scopes": self.scopes,
                "memories": self.memories,
                "questions": len(self.rows.get("agentmem", [])),
            },
            "k": self.ks,
            "notes": self.notes,
            "systems": {name: self.means(name) for name in self.rows},
        }


# replay and search -----------------------------------------------------------------------------


def scope_user(scope: EvalScope) -> str:
    """The user id a data set's scope is replayed into (canonical, as a scope id is stored)."""
    return replay_user(scope.name)


def _refuse_replayed(mem: Memory, data: EvalSet) -> None:
    """Refuse a replay into scopes that already hold memories (an earlier ``--use-home``
    run): adding them again would store every memory twice and score the duplicates."""
    for scope in data.scopes:
        user = scope_user(scope)
        held = len(mem.backends.store.ids_in_scope(Scope(user_id=user)))
        if held:
            raise Conflict(
                f"{data.source}: scope user_id={user!r} already holds {held} memories (an "
                "earlier run with --use-home); replaying into it would add every memory twice. "
                f"Forget them first (agentmem forget --user {user} --reason eval --yes) or run "
                "without --use-home; nothing was added"
            )


def replay(mem: Memory, scope: EvalScope, add_mode: str, progress: Progress | None = None) -> None:
    """Add a scope's memories as the data set says: one ``add_many`` per batch, or one
    ``add`` per memory (independent memories, no session). Never with inference, whatever
    the ``infer`` setting: extracted facts carry no answer key, so they would take places in
    the top k and score nothing (and cost an LLM call per memory)."""
    user = scope_user(scope)
    items: list[dict[str, Any]] = [
        {
            "text": m.text,
            "event_time": m.event_time,
            "metadata": {**m.metadata, EVAL_KEY: m.key},
        }
        for m in scope.memories
    ]
    if add_mode == "batch":
        size = mem.settings.max_batch_items
        for start in range(0, len(items), size):
            mem.add_many(items[start : start + size], user_id=user, infer=False)
            if progress:
                progress("add", len(items[start : start + size]))
        return
    for item in items:
        mem.add(
            item["text"],
            user_id=user,
            event_time=item["event_time"],
            metadata=item["metadata"],
            infer=False,
        )
        if progress:
            progress("add", 1)


class _Baselines:
    """Dense exact search and BM25 alone over one replayed scope."""

    def __init__(self, mem: Memory, scope: EvalScope) -> None:
        from agentmem.indexing import vectors_for
        from agentmem.representation import indexed_text

        self.mem = mem
        self.scope = Scope(user_id=scope_user(scope))
        records = mem.backends.store.get_many(mem.backends.store.ids_in_scope(self.scope))
        self.keys = {r.id: str(r.metadata.get(EVAL_KEY)) for r in records}
        config = mem.settings.retrieval
        vectors, _ = vectors_for(mem.backends, records)
        from agentmem.models import content_hash

        self.ids = [r.id for r in records]
        self.matrix = (
            np.stack([vectors[content_hash(indexed_text(r, config))] for r in records])
            if records
            else np.zeros((0, 1), dtype=np.float32)
        )

    def dense_ids(self, question: EvalQuestion, k: int) -> list[tuple[str, float]]:
        """Record ids and cosines of exact dense search, best first."""
        if not self.ids:
            return []
        query = np.asarray(self.mem.backends.embedder.embed_query(question.text))
        sims = self.matrix @ query
        order = np.lexsort((np.arange(len(sims)), -sims))[:k]
        return [(self.ids[i], float(sims[i])) for i in order]

    def bm25_ids(self, question: EvalQuestion, k: int) -> list[tuple[str, float]]:
        """Record ids and scores of the product's BM25 channel alone, best first."""
        from agentmem.retrieval import CHANNELS, build_request

        request = build_request(
            self.mem.backends,
            question.text,
            self.scope,
            limit=k,
            reference_time=question.reference_time,
        )
        return list(CHANNELS["bm25"](self.mem.backends, request))[:k]

    def ranked(self, question: EvalQuestion, k: int) -> dict[str, list[str | None]]:
        """Each baseline's keys, best first, ``k`` of them (each list read at least ``k``
        deep: cut at 100, a baseline's recall@150 was its recall@100)."""
        depth = max(k, BASELINE_DEPTH)
        dense = self.dense_ids(question, depth)
        bm25 = self.bm25_ids(question, depth)
        fused = fuse_scores({"dense": dense, "bm25": bm25}, {"dense": 1.0, "bm25": 1.0}, k=60)
        return {
            name: [self.keys.get(i) for i, _ in ranked[:k]]
            for name, ranked in (("dense", dense), ("bm25", bm25), ("bm25+dense", fused))
        }


def run_eval(
    mem: Memory,
    data: EvalSet,
    *,
    ks: Sequence[int] = (1, 5, 10),
    baselines: bool = True,
    progress: Progress | None = None,
) -> EvalReport:
    """Replay every scope of ``data`` into ``mem``, ask every question, score every system.
    A data set with no question to score, a text ``mem`` would refuse, or a cut-off in ``ks``
    that is not an integer from 1 to 1000, is refused before anything is added."""
    ks = check_cutoffs(ks)
    if data.questions == 0:
        raise InvalidDataFile(
            f"{data.source}: no question can be scored (a question needs answers among the "
            "data set's memories, and LoCoMo questions a category 1-4 and evidence turns); "
            "nothing was added"
        )
    check_texts(data, mem.settings.max_text_chars)
    _refuse_replayed(mem, data)
    k = max(*ks, 10)
    systems = SYSTEMS if baselines else SYSTEMS[:1]
    report = EvalReport(data.kind, data.source, list(ks), notes=list(data.notes))
    report.rows = {name: [] for name in systems}
    for scope in data.scopes:
        replay(mem, scope, data.add_mode, progress)
        report.scopes += 1
        report.memories += len(scope.memories)
        base = _Baselines(mem, scope) if baselines else None
        for question in scope.questions:
            hits = mem.search(
                question.text,
                user_id=scope_user(scope),
                k=k,
                reference_time=question.reference_time,
            )
            found: dict[str, list[str | None]] = {
                "agentmem": [str(h.record.metadata.get(EVAL_KEY)) for h in hits]
            }
            if base is not None:
                found.update(base.ranked(question, k))
            for name, keys in found.items():
                report.rows[name].append(
                    (question.category, score(ranked_keys(keys), question.answers, ks))
                )
            if progress:
                progress("search", 1)
    return report


__all__ = [
    "EVAL_KEY",
    "SYSTEMS",
    "EvalReport",
    "check_cutoffs",
    "metric_names",
    "ranked_keys",
    "replay",
    "run_eval",
    "scope_user",
    "score",
]
