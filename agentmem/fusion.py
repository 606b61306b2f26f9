"""Rank fusion and diversification: weighted reciprocal rank fusion and MMR.

Each retrieval channel returns a ranked list of (id, score). Reciprocal rank fusion scores a
record by the sum over channels of ``weight / (k + rank)``: it needs no score calibration
between channels (cosine and BM25 live on different scales), and a channel is a plug-in that
only has to rank.

Equal scores in a channel are ties: they share the best rank among them (competition
ranking), so a channel that cannot tell two memories apart (two records with one window) adds
the same to both, and the other channels decide; the order the index returned them in (often
insertion order) never does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from agentmem.models import ChannelScore

Ranked = Sequence[tuple[str, float]]


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


def fuse_scores(
    channels: Mapping[str, Ranked], weights: Mapping[str, float], k: int = 60
) -> list[tuple[str, float]]:
    """Weighted RRF without explanations: (id, fused score), best first.

    Equal scores within a channel share a rank (:func:`tie_ranks`). Equal fused scores are
    broken by the best single-channel rank, then by id, so results are deterministic.
    """
    fused: dict[str, float] = {}
    best_rank: dict[str, int] = {}
    for name, ranked in channels.items():
        weight = weights.get(name, 0.0)
        if weight <= 0:
            continue
        for rank, (memory_id, _) in zip(tie_ranks(ranked), ranked, strict=True):
            fused[memory_id] = fused.get(memory_id, 0.0) + weight / (k + rank)
            if rank < best_rank.get(memory_id, 1 << 30):
                best_rank[memory_id] = rank
    order = sorted(fused, key=lambda i: (-fused[i], best_rank[i], i))
    return [(i, fused[i]) for i in order]


def reciprocal_rank_fusion(
    channels: Mapping[str, Ranked],
    weights: Mapping[str, float],
    k: int = 60,
    limit: int | None = None,
) -> list[tuple[str, float, dict[str, ChannelScore]]]:
    """Fuse ranked lists: (id, fused score, each channel's rank and score), best first.

    Only channels with a positive weight contribute; every channel that ranked a result (a
    zero-weight one too) appears in its explanation. ``limit`` caps how many are explained.
    """
    fused = fuse_scores(channels, weights, k)
    if limit is not None:
        fused = fused[:limit]
    wanted = {i for i, _ in fused}
    explain: dict[str, dict[str, ChannelScore]] = {i: {} for i in wanted}
    for name, ranked in channels.items():
        for rank, (memory_id, score) in zip(tie_ranks(ranked), ranked, strict=True):
            if memory_id in wanted:
                explain[memory_id][name] = ChannelScore(rank=rank, score=score)
    return [(i, s, explain[i]) for i, s in fused]


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


__all__ = ["Ranked", "fuse_scores", "mmr", "reciprocal_rank_fusion", "tie_ranks"]
