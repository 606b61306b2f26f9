"""The session prior (agentmem.sessions): whole-session BM25 ranks up the turns of the best
matching session; memories without a session keep their score."""

from __future__ import annotations

from agentmem import Memory
from agentmem.lexical import Bm25Encoder
from agentmem.sessions import session_scores

HIKE = [
    "We finally climbed the mountain trail to the summit.",
    "The view from the summit over the valley was amazing.",
    "Yes, last Tuesday!",
]
COOK = [
    "I baked sourdough bread this weekend.",
    "The crust came out perfect after a long proof.",
    "Yes, last Tuesday too!",
]


def _fill(mem: Memory) -> None:
    items = [{"text": t, "metadata": {"session": 1}} for t in HIKE]
    items += [{"text": t, "metadata": {"session": 2}} for t in COOK]
    mem.add_many(items, user_id="u")
    mem.add("Alice climbed a mountain once, years ago.", user_id="u")


def _scores(mem: Memory, prior: float) -> dict[str, float]:
    mem.backends.settings.retrieval.session_prior = prior
    hits = mem.search("when did they climb the mountain trail to the summit", user_id="u", k=10)
    return {h.record.text: h.score for h in hits}


def test_session_scores_prefer_the_session_that_matches_as_a_whole() -> None:
    scores = session_scores(
        "climb the mountain summit",
        {("a", 1): "\n".join(HIKE), ("a", 2): "\n".join(COOK)},  # type: ignore[dict-item]
        Bm25Encoder(avg_len=72),
    )
    assert scores[("a", 1)] > 0 == scores[("a", 2)]  # type: ignore[index]


def test_session_prior_ranks_up_the_best_session_and_leaves_the_rest(mem: Memory) -> None:
    _fill(mem)
    off, on = _scores(mem, 0.0), _scores(mem, 1.0)
    independent = "Alice climbed a mountain once, years ago."
    assert on[independent] == off[independent]  # no session: untouched
    # the best session's turns gain (its best turn is doubled), the other session's do not
    assert on[HIKE[2]] > off[HIKE[2]]
    assert on[HIKE[0]] == 2 * off[HIKE[0]] or on[HIKE[1]] == 2 * off[HIKE[1]]
    assert on[COOK[2]] == off[COOK[2]]
    ranked = sorted(on, key=lambda t: -on[t])
    assert ranked.index(HIKE[2]) < ranked.index(COOK[2])
