"""Rank fusion and diversification: weighted reciprocal rank fusion and MMR.

Each retrieval channel returns a ranked list of (id, score). Reciprocal rank fusion scores a
record by the sum over channels of ``weight / (k + rank)``: it needs no score calibration
between channels (cosine and BM25 live on different scales), and a channel is a plug-in that
only has to rank.

Equal scores in a channel are ties: they share the best rank among them (competition
ranking), so a channel that cannot tell two memories apart (two records with one window) adds
the same to both, and the other channels decide; the order the index returned them in (often
insertion order) never does.

A channel whose scores mean the same across queries (the dense channel's cosine) can also be
fused *score-aware*: each hit's rank is pushed down by its score gap below the channel's best
hit, ``gap_ranks`` ranks per unit of score (:func:`gap_ranks`). RRF alone counts a first place
that leads the second by 0.07 of cosine exactly like one that leads by 0.001; in a small scope
the first is a confident answer, and a lexical match on another memory must not outvote it.
BM25 scores are not comparable across queries (IDF, query length), so sparse channels keep
plain ranks. A channel that is the dense one restricted (the time channel: dense search inside a
time window) is fused score-aware from the dense channel's best (``gap_from``), so its first
place counts only as much as its cosine against the whole scope earns.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np

from agentmem.models import ChannelScore

Ranked = Sequence[tuple[str, float]]

Candidate = tuple[str, float, dict[str, ChannelScore]]
"""A fused result: its id, fused score and each channel's rank and score
(:func:`reciprocal_rank_fusion`); the priors and re-rankers of search pass these on."""


def tie_ranks(ranked: Ranked, rel_tol: float = 1e-6) -> list[int]:
    """1-based ranks of a best-first list where equal scores (within ``rel_tol``) share the
    rank of the first of them: ``[0.9, 0.5, 0.5, 0.1]`` ranks ``[1, 2, 2, 4]``."""
    ranks: list[int] = []
    previous: float | None = None
    for position, (_, score) in enumerate(ranked, start=1):
        same = previous is not None and abs(score - previous) <= rel_tol * max(1.0, abs(score))
        ranks.append(ranks[-1] if same else position)
        previous = score
    return ranks


def gap_ranks(ranked: Ranked, per_unit: float, best: float | None = None) -> list[float]:
    """Score-aware ranks of a best-first list: each hit's :func:`tie_ranks` rank plus
    ``per_unit`` ranks per unit of score below ``best`` (the list's best where not given, or
    where the list's is higher), so a hit far behind the first counts as further down than its
    position. ``per_unit`` 0 gives the plain ranks. ``[0.80, 0.73, 0.72]`` with 100 ranks per
    unit ranks ``[1, 9, 11]``; from a best of 0.90, ``[11, 19, 21]``."""
    ranks = tie_ranks(ranked)
    if per_unit <= 0 or not ranked:
        return [float(r) for r in ranks]
    top = max(score for _, score in ranked)
    top = top if best is None else max(top, best)
    return [r + per_unit * (top - score) for r, (_, score) in zip(ranks, ranked, strict=True)]


def fuse_scores(
    channels: Mapping[str, Ranked],
    weights: Mapping[str, float],
    k: int = 60,
    score_aware: Mapping[str, float] | None = None,
    gap_from: Mapping[str, float] | None = None,
) -> list[tuple[str, float]]:
    """Weighted RRF without explanations: (id, fused score), best first.

    Equal scores within a channel share a rank (:func:`tie_ranks`). A channel named in
    ``score_aware`` ranks its hits by :func:`gap_ranks` with that many ranks per unit of score,
    below the score ``gap_from`` names for it (else its own best). Equal fused scores are
    broken by the best single-channel rank (its position), then by id, so results are
    deterministic.
    """
    fused: dict[str, float] = {}
    best_rank: dict[str, int] = {}
    per_unit = score_aware or {}
    for name, ranked in channels.items():
        weight = weights.get(name, 0.0)
        if weight <= 0:
            continue
        fusion_ranks = gap_ranks(ranked, per_unit.get(name, 0.0), (gap_from or {}).get(name))
        for rank, fusion_rank, (memory_id, _) in zip(
            tie_ranks(ranked), fusion_ranks, ranked, strict=True
        ):
            fused[memory_id] = fused.get(memory_id, 0.0) + weight / (k + fusion_rank)
            if rank < best_rank.get(memory_id, 1 << 30):
                best_rank[memory_id] = rank
    order = sorted(fused, key=lambda i: (-fused[i], best_rank[i], i))
    return [(i, fused[i]) for i in order]


def reciprocal_rank_fusion(
    channels: Mapping[str, Ranked],
    weights: Mapping[str, float],
    k: int = 60,
    limit: int | None = None,
    score_aware: Mapping[str, float] | None = None,
    gap_from: Mapping[str, float] | None = None,
) -> list[Candidate]:
    """Fuse ranked lists: (id, fused score, each channel's rank and score), best first.

    Only channels with a positive weight contribute; every channel that ranked a result (a
    zero-weight one too) appears in its explanation, with its position in that channel.
    ``limit`` caps how many are explained; ``score_aware`` and ``gap_from`` are
    :func:`fuse_scores`'.
    """
    fused = fuse_scores(channels, weights, k, score_aware, gap_from)
    if limit is not None:
        fused = fused[:limit]
    wanted = {i for i, _ in fused}
    explain: dict[str, dict[str, ChannelScore]] = {i: {} for i in wanted}
    for name, ranked in channels.items():
        for rank, (memory_id, score) in zip(tie_ranks(ranked), ranked, strict=True):
            if memory_id in wanted:
                explain[memory_id][name] = ChannelScore(rank=rank, score=score)
    return [(i, s, explain[i]) for i, s in fused]


def add_rankings(
    candidates: Sequence[Candidate],
    rankings: Mapping[str, Ranked],
    weights: Mapping[str, float],
    k: int = 60,
    only: Mapping[str, Collection[str]] | None = None,
) -> list[Candidate]:
    """``candidates`` with more ranked lists fused in: each adds ``weight / (k + rank)`` to the
    score of every memory it ranks (one that was no candidate joins with that alone), and its
    rank and score to the memory's explanation. Unlike fusing everything again, what was done
    to the scores since (the session and speaker priors, link expansion) is kept. A ranking
    named in ``only`` adds to those memories alone, at their ranks in the whole list. Best
    first; equal scores keep their order."""
    added: dict[str, float] = {}
    explain: dict[str, dict[str, ChannelScore]] = {}
    for name, ranked in rankings.items():
        weight = weights.get(name, 0.0)
        voters = (only or {}).get(name)
        for rank, (memory_id, score) in zip(tie_ranks(ranked), ranked, strict=True):
            if voters is not None and memory_id not in voters:
                continue
            explain.setdefault(memory_id, {})[name] = ChannelScore(rank=rank, score=score)
            if weight > 0:
                added[memory_id] = added.get(memory_id, 0.0) + weight / (k + rank)
    out = [
        (i, score + added.get(i, 0.0), {**channels, **explain.get(i, {})})
        for i, score, channels in candidates
    ]
    known = {i for i, _, _ in candidates}
    out += [(i, added[i], explain[i]) for i in added if i not in known]
    out.sort(key=lambda c: -c[1])  # stable: equal scores keep their order
    return out


def mmr(
    candidates: Sequence[str],
    relevance: Mapping[str, float],
    vectors: Mapping[str, np.ndarray],
    k: int,
    lambda_: float = 0.7,
) -> list[str]:
    """Maximal marginal relevance: pick ``k`` ids trading relevance against redundancy.

    ``relevance`` is rescaled to [0, 1] so it is comparable with cosine similarity. Candidates
    without a vector keep their place by relevance alone.
    """
    if not candidates:
        return []
    rel = np.array([relevance[c] for c in candidates], dtype=np.float64)
    span = rel.max() - rel.min()
    rel = (rel - rel.min()) / span if span > 0 else np.ones_like(rel)
    chosen: list[int] = []
    remaining = list(range(len(candidates)))
    while remaining and len(chosen) < k:
        best, best_score = remaining[0], -np.inf
        for i in remaining:
            redundancy = 0.0
            vi = vectors.get(candidates[i])
            if vi is not None and chosen:
                sims = [
                    float(np.dot(vi, vj))
                    for j in chosen
                    if (vj := vectors.get(candidates[j])) is not None
                ]
                redundancy = max(sims) if sims else 0.0
            score = lambda_ * rel[i] - (1 - lambda_) * redundancy
            if score > best_score:
                best, best_score = i, score
        chosen.append(best)
        remaining.remove(best)
    return [candidates[i] for i in chosen]


__all__ = [
    "Candidate",
    "Ranked",
    "add_rankings",
    "fuse_scores",
    "gap_ranks",
    "mmr",
    "reciprocal_rank_fusion",
    "tie_ranks",
]
