"""Iterative retrieval (agentmem.feedback): a second round seeded by the first round's top hits
finds a memory that shares no word with the query, only with the top hit; scope and the stop
rule hold; off by default changes nothing."""

from __future__ import annotations

from agentmem import Memory
from agentmem.feedback import Feedback, confident, expansion_terms, fuse_second_round
from agentmem.models import ChannelScore

TOP = "Melanie adopted a rescue greyhound named Biscotti from the Riverside shelter."
LINKED = "Biscotti chewed through the garden fence again yesterday."
NOISE = [
    "The weather was rainy all week.",
    "I am reading a novel about sailors.",
    "We had pasta with tomato sauce for dinner.",
    "My sister moved to a new apartment downtown.",
    "The train was late again this morning.",
]
QUERY = "what pet did Melanie adopt from the shelter"


def _fill(mem: Memory, user: str = "u") -> None:
    for text in [TOP, *NOISE, LINKED]:
        mem.add(text, user_id=user)


def _ranked(mem: Memory, weight: float, user: str = "u") -> list[str]:
    mem.backends.settings.retrieval.feedback_weight = weight
    mem.backends.settings.retrieval.feedback_hits = 1
    return [h.record.text for h in mem.search(QUERY, user_id=user, k=8)]


def test_expansion_terms_are_new_weighted_and_capped(mem: Memory) -> None:
    query = mem.backends.bm25.query(QUERY).indices
    texts = [TOP, LINKED]
    every = expansion_terms(mem.backends, query, texts, Feedback(terms=100))
    assert every and not set(every.indices) & set(query)
    biscotti = mem.backends.bm25.query("Biscotti").indices[0]
    weight = dict(zip(every.indices, every.values, strict=True))
    assert weight[biscotti] == 1.0  # in both texts
    assert max(weight.values()) == 1.0 and min(weight.values()) == 0.5
    capped = expansion_terms(mem.backends, query, texts, Feedback(terms=1))
    assert capped.indices == (biscotti,)
    boosted = expansion_terms(mem.backends, query, texts, Feedback(terms=100, name_boost=2.0))
    # a name mid-sentence in TOP (x2), a sentence's first word in LINKED (x1): (2 + 1) / 2
    assert dict(zip(boosted.indices, boosted.values, strict=True))[biscotti] == 1.5
    assert not expansion_terms(mem.backends, query, texts, Feedback(terms=0))


def test_stop_rule_and_fusion() -> None:
    none: dict[str, ChannelScore] = {}
    first = [("a", 1.0, none), ("b", 0.5, none)]
    assert confident(first, 0.3) and not confident(first, 0.6) and not confident(first, None)
    fused = fuse_second_round(first, {"feedback_bm25": [("c", 9.0), ("b", 8.0)]}, 20.0, 20)
    assert [i for i, _, _ in fused] == ["b", "a", "c"]  # b: 0.5 + 20/22; c: 20/21 < a
    assert fused[0][1] == 0.5 + 20.0 / 22 and fused[2][1] == 20.0 / 21
    assert fused[2][2]["feedback_bm25"] == ChannelScore(rank=1, score=9.0)


def test_second_round_finds_what_only_the_top_hit_names(mem: Memory) -> None:
    _fill(mem)
    _fill(mem, user="other")
    off = _ranked(mem, 0.0)
    assert off[0] == TOP
    on = _ranked(mem, 1.0)
    assert on[0] == TOP
    assert on.index(LINKED) == 1 < off.index(LINKED)
    # the second round reads only the searching scope
    mem.backends.settings.retrieval.feedback_weight = 1.0
    hits = mem.search(QUERY, user_id="u", k=8)
    assert {h.record.scope.user_id for h in hits} == {"u"}
    assert any("feedback_bm25" in h.channels for h in hits)


def test_a_confident_first_round_skips_the_second(mem: Memory) -> None:
    _fill(mem)
    mem.backends.settings.retrieval.feedback_weight = 1.0
    assert any(
        ch.startswith("feedback") for h in mem.search(QUERY, user_id="u", k=8) for ch in h.channels
    )
    # the best first-round score leads the next by more than 0% of itself: stop
    mem.backends.settings.retrieval.feedback_stop_margin = 0.0
    skipped = mem.search(QUERY, user_id="u", k=8)
    assert not any(ch.startswith("feedback") for h in skipped for ch in h.channels)
