"""The session prior (agentmem.sessions): whole-session BM25 ranks up the turns of the best
matching session; memories without a session keep their score."""

from __future__ import annotations

from agentmem import Memory
from agentmem.lexical import Bm25Encoder
from agentmem.sessions import SessionDoc, session_scores

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
    encoder = Bm25Encoder(avg_len=72)
    docs = {
        key: SessionDoc(b"", counts, sum(counts.values()))
        for key, counts in (
            (("a", None, None, None, 1), encoder.term_counts("\n".join(HIKE))),
            (("a", None, None, None, 2), encoder.term_counts("\n".join(COOK))),
        )
    }
    terms = encoder.query("climb the mountain summit").indices
    scores = session_scores(terms, docs, encoder)
    assert scores[("a", None, None, None, 1)] > 0 == scores[("a", None, None, None, 2)]


def test_term_counts_and_weights_are_those_of_the_document_vector() -> None:
    # The session prior counts a session once and weighs its terms per search: the weights
    # must be the very values the encoder's document vector holds, at any average length.
    text = "\n".join(HIKE + COOK + ["the summit, the summit and the summit again"])
    for avg_len in (24.0, 72.0, 24.0 * 13.7, 1000.0 / 3):
        encoder = Bm25Encoder(avg_len=avg_len)
        counts = encoder.term_counts(text)
        vector = encoder.document(text)
        assert list(counts) == list(vector.indices) == sorted(vector.indices)
        length = sum(counts.values())
        assert [encoder.term_weight(n, length) for n in counts.values()] == list(vector.values)


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
