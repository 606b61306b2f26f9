"""Weighted reciprocal rank fusion and MMR."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentmem.fusion import fuse_scores, mmr, reciprocal_rank_fusion


def test_rrf_sums_weighted_reciprocal_ranks() -> None:
    fused = fuse_scores(
        {"a": [("x", 0.9), ("y", 0.8)], "b": [("y", 5.0), ("z", 1.0)]},
        {"a": 1.0, "b": 2.0},
        k=60,
    )
    scores = dict(fused)
    assert scores["x"] == pytest.approx(1 / 61)
    assert scores["y"] == pytest.approx(1 / 62 + 2 / 61)
    assert scores["z"] == pytest.approx(2 / 62)
    assert [i for i, _ in fused] == ["y", "z", "x"]


def test_zero_weight_channel_does_not_rank_but_explains() -> None:
    fused = reciprocal_rank_fusion(
        {"a": [("x", 0.9)], "b": [("y", 1.0), ("x", 0.5)]}, {"a": 1.0, "b": 0.0}
    )
    assert [i for i, _, _ in fused] == ["x"]
    _, _, explain = fused[0]
    assert explain["a"].rank == 1 and explain["b"].rank == 2 and explain["b"].score == 0.5


def test_ties_are_deterministic() -> None:
    channels = {"a": [("p", 1.0), ("q", 0.9)], "b": [("q", 1.0), ("p", 0.9)]}
    first = fuse_scores(channels, {"a": 1.0, "b": 1.0})
    assert first == fuse_scores(dict(reversed(list(channels.items()))), {"a": 1.0, "b": 1.0})
    assert [i for i, _ in first] == ["p", "q"]  # equal scores and best ranks: id order


def test_limit_caps_explained_results() -> None:
    ranked = [(str(i), 1.0) for i in range(50)]
    assert len(reciprocal_rank_fusion({"a": ranked}, {"a": 1.0}, limit=5)) == 5


@given(
    st.dictionaries(
        st.sampled_from(["a", "b", "c"]),
        st.lists(st.sampled_from("pqrstuvw"), unique=True, max_size=8),
        min_size=1,
    ),
    st.dictionaries(st.sampled_from(["a", "b", "c"]), st.floats(0, 5), min_size=1),
)
@settings(max_examples=50, deadline=None)
def test_fused_scores_are_sorted_and_only_from_weighted_channels(
    lists: dict[str, list[str]], weights: dict[str, float]
) -> None:
    channels = {name: [(i, 1.0) for i in ids] for name, ids in lists.items()}
    fused = fuse_scores(channels, weights)
    scores = [s for _, s in fused]
    assert scores == sorted(scores, reverse=True)
    allowed = {i for name, ids in lists.items() if weights.get(name, 0) > 0 for i in ids}
    assert {i for i, _ in fused} == allowed


def test_mmr_prefers_diverse_results() -> None:
    v = {
        "a": np.array([1.0, 0.0]),
        "a2": np.array([0.999, 0.045]),
        "b": np.array([0.0, 1.0]),
    }
    relevance = {"a": 1.0, "a2": 0.95, "b": 0.5}
    assert mmr(["a", "a2", "b"], relevance, v, k=2, lambda_=0.5) == ["a", "b"]
    assert mmr(["a", "a2", "b"], relevance, v, k=2, lambda_=1.0) == ["a", "a2"]
    assert mmr([], {}, {}, k=3) == []


def test_equal_scores_in_a_channel_share_a_rank() -> None:
    from agentmem.fusion import tie_ranks

    assert tie_ranks([("a", 0.9), ("b", 0.5), ("c", 0.5), ("d", 0.1)]) == [1, 2, 2, 4]
    assert tie_ranks([]) == []


def test_a_channel_that_ties_leaves_the_order_to_the_others() -> None:
    # Two records with one window tie in the window channel; whichever the index returned
    # first must not win: the dense channel, which tells them apart, decides.
    for window in ([("nurse", 0.64), ("dog", 0.64)], [("dog", 0.64), ("nurse", 0.64)]):
        fused = fuse_scores(
            {"dense": [("dog", 0.61), ("nurse", 0.53)], "window": window},
            {"dense": 1.0, "window": 2.0},
        )
        assert [i for i, _ in fused] == ["dog", "nurse"]
    explained = reciprocal_rank_fusion({"w": [("x", 0.5), ("y", 0.5)]}, {"w": 1.0})
    assert [e["w"].rank for _, _, e in explained] == [1, 1]


def test_gap_ranks_push_a_hit_down_by_its_score_gap_below_the_best() -> None:
    from agentmem.fusion import gap_ranks

    ranked = [("a", 0.80), ("b", 0.73), ("c", 0.72), ("d", 0.72)]
    assert gap_ranks(ranked, 100.0) == pytest.approx([1, 9, 11, 11])  # ties stay tied
    assert gap_ranks(ranked, 0.0) == [1, 2, 3, 3]  # 0: the plain (tie) ranks
    assert gap_ranks([], 80.0) == []


def test_a_clear_dense_first_place_is_not_outvoted_by_a_lexical_match() -> None:
    # A small scope: BM25 puts "coffee" (sharing the word "sleep" with the question) first and
    # the right memory eleventh, behind memories that only share the user's name; the dense
    # channel puts the right memory first, 0.067 of cosine ahead. Plain RRF ranks count that
    # lead as one rank and the lexical first place wins; score-aware, the lead counts.
    others = [(f"name-only-{n}", 1.7 - n / 100) for n in range(9)]
    channels = {
        "dense": [("meditates", 0.79), ("coffee", 0.723), *[(i, 0.6) for i, _ in others]],
        "bm25": [("coffee", 7.7), *others, ("meditates", 1.6)],
    }
    weights = {"dense": 1.0, "bm25": 0.5}
    assert fuse_scores(channels, weights, k=20)[0][0] == "coffee"
    aware = fuse_scores(channels, weights, k=20, score_aware={"dense": 80.0})
    assert aware[0][0] == "meditates"
    # a lead of a thousandth of cosine is no lead: the lexical match still decides
    close = {**channels, "dense": [("meditates", 0.724), ("coffee", 0.723)]}
    assert fuse_scores(close, weights, k=20, score_aware={"dense": 80.0})[0][0] == "coffee"


def test_score_aware_fusion_explains_positions_and_leaves_other_channels_plain() -> None:
    channels = {"dense": [("x", 0.9), ("y", 0.5)], "bm25": [("y", 9.0), ("x", 1.0)]}
    fused = reciprocal_rank_fusion(channels, {"dense": 1.0, "bm25": 1.0}, k=60,
                                   score_aware={"dense": 10.0})  # fmt: skip
    scores = {i: s for i, s, _ in fused}
    assert scores["x"] == pytest.approx(1 / 61 + 1 / 62)
    assert scores["y"] == pytest.approx(1 / (60 + 2 + 10 * 0.4) + 1 / 61)
    explain = {i: e for i, _, e in fused}
    assert explain["y"]["dense"].rank == 2  # the explanation keeps the channel's position


def test_score_aware_channels_follow_the_setting_but_not_present_state_questions() -> None:
    from agentmem.retrieval import NEWEST, score_aware
    from agentmem.settings import RetrievalSettings

    config = RetrievalSettings()
    assert score_aware(config, config.weights) == {"dense": config.dense_gap_ranks}
    assert config.dense_gap_ranks > 0
    assert score_aware(config, {**config.weights, NEWEST: 1.0}) == {}
    off = RetrievalSettings(dense_gap_ranks=0)
    assert score_aware(off, off.weights) == {}
    with pytest.raises(ValueError):
        RetrievalSettings(dense_gap_ranks=-1)


def test_add_rankings_adds_to_the_scores_as_they_stand() -> None:
    from agentmem.fusion import add_rankings
    from agentmem.models import ChannelScore

    dense = {"dense": ChannelScore(rank=1, score=0.9)}
    # Scores already moved by a prior (x2 on "b"), as search hands them on.
    candidates = [("b", 0.20, dense), ("a", 0.06, {})]
    out = add_rankings(candidates, {"newest": [("a", -1.0), ("new", -2.0)]}, {"newest": 1.0}, k=20)
    assert [i for i, _, _ in out] == ["b", "a", "new"]
    scores = {i: s for i, s, _ in out}
    assert scores["b"] == 0.20  # not ranked by the new list: untouched, prior kept
    assert scores["a"] == pytest.approx(0.06 + 1 / 21) and scores["new"] == pytest.approx(1 / 22)
    explain = {i: e for i, _, e in out}
    assert explain["b"] == dense and explain["a"]["newest"] == ChannelScore(rank=1, score=-1.0)
    # A zero-weight list explains but adds nothing, and brings in no newcomer.
    quiet = add_rankings(candidates, {"newest": [("a", -1.0), ("new", -2.0)]}, {}, k=20)
    assert [(i, s) for i, s, _ in quiet] == [("b", 0.20), ("a", 0.06)]
    assert "newest" in quiet[1][2]


def test_add_rankings_only_adds_to_the_memories_named_at_their_whole_list_ranks() -> None:
    from agentmem.fusion import add_rankings

    candidates = [("old", 0.10, {}), ("other", 0.09, {}), ("new", 0.08, {})]
    newest = [("other", -1.0), ("new", -2.0), ("old", -3.0)]
    out = add_rankings(
        candidates, {"newest": newest}, {"newest": 1.0}, k=20, only={"newest": {"new", "old"}}
    )
    scores = {i: s for i, s, e in out}
    assert scores["other"] == 0.09 and "newest" not in dict((i, e) for i, _, e in out)["other"]
    # The others keep the ranks they have among every memory (2 and 3, not 1 and 2).
    assert scores["new"] == pytest.approx(0.08 + 1 / 22)
    assert scores["old"] == pytest.approx(0.10 + 1 / 23)


def test_on_topic_keeps_the_candidates_near_the_best_cosine() -> None:
    from agentmem.models import ChannelScore
    from agentmem.retrieval import on_topic
    from agentmem.settings_sections import RetrievalSettings

    def dense(cosine: float) -> dict[str, ChannelScore]:
        return {"dense": ChannelScore(rank=1, score=cosine)}

    candidates = [
        ("gym", 0.2, dense(0.65)),
        ("gyms", 0.1, dense(0.45)),
        ("japan", 0.1, dense(0.22)),
    ]
    candidates.append(("linked", 0.05, {}))  # no dense cosine: not on the topic
    config = RetrievalSettings()  # rrf_k 20, dense_gap_ranks 80: within 0.25 of the best
    assert on_topic(config, candidates) == {"gym", "gyms"}
    assert on_topic(RetrievalSettings(dense_gap_ranks=0), candidates) is None  # every one


def test_gap_ranks_from_a_given_best() -> None:
    from agentmem.fusion import gap_ranks

    ranked = [("a", 0.80), ("b", 0.73), ("c", 0.72)]
    assert gap_ranks(ranked, 100) == pytest.approx([1, 9, 11])
    # From the whole scope's best (the time channel against the dense channel's first place).
    assert gap_ranks(ranked, 100, best=0.90) == pytest.approx([11, 19, 21])
    assert gap_ranks(ranked, 100, best=0.50) == pytest.approx([1, 9, 11])  # never above its own
