"""Smoke tests of the benchmark harness on tiny inputs it makes itself (never the real LoCoMo).

Both scripts run end to end through their ``main`` functions, with the session's embedder,
writing into ``tmp_path``: the outputs exist, each script keeps the other's section of
RESULTS.md, and every metric is a fraction.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Any

import pytest

from agentmem.embedders import Embedder
from benchmarks import locomo, scale
from benchmarks._common import CachingEmbedder, write_section
from benchmarks.peers import PEER_NAMES

PEER_MODULES = {"bm25": "bm25s", "dense": "numpy", "langgraph": "langgraph", "mem0": "mem0"}


def _turn(session: int, n: int, speaker: str, text: str, **extra: str) -> dict[str, str]:
    return {"speaker": speaker, "dia_id": f"D{session}:{n}", "text": text, **extra}


def _conversation(a: str, b: str, pet: str, city: str) -> dict[str, Any]:
    s1 = [
        _turn(1, 1, a, f"Hi {b}! I finally adopted a {pet} last week."),
        _turn(1, 2, b, "That's wonderful, what is it called?"),
        _turn(1, 3, a, "We called it Biscuit, it loves the park."),
        _turn(1, 4, b, "I started pottery classes on Tuesdays.", blip_caption="a clay bowl"),
        _turn(1, 5, a, "Show me your bowls sometime!"),
        _turn(1, 6, b, "Sure, I will bring one next time."),
    ]
    s2 = [
        _turn(2, 1, a, f"I am moving to {city} next month for a new job."),
        _turn(2, 2, b, "Big news! Are you taking the pet with you?"),
        _turn(2, 3, a, f"Of course, Biscuit comes to {city} too."),
        _turn(2, 4, b, "My pottery teacher said my glazing improved a lot."),
        _turn(2, 5, a, "You should sell your pottery at the market."),
        _turn(2, 6, b, "Maybe in spring, when the market opens again."),
    ]
    return {
        "sample_id": f"conv-{a}",
        "conversation": {
            "speaker_a": a,
            "speaker_b": b,
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": s1,
            "session_2_date_time": "10:04 am on 19 June, 2023",
            "session_2": s2,
        },
        "qa": [
            {"question": f"What pet did {a} adopt?", "answer": pet, "evidence": ["D1:1"],
             "category": 4},
            {"question": f"When is {a} moving to {city}?", "answer": "July 2023",
             "evidence": ["D2:1"], "category": 2},
            {"question": "Where will Biscuit live?", "answer": city,
             "evidence": ["D1:3; D2:3"], "category": 1},
            {"question": f"Would {b} sell pottery?", "answer": "Likely yes",
             "evidence": ["D1:4", "D2:05"], "category": 3},
            {"question": "No evidence here", "answer": "-", "evidence": [], "category": 3},
            {"question": f"What did {a} say about rockets?", "answer": "Not mentioned",
             "evidence": ["D1:1"], "category": 5},
        ],
    }  # fmt: skip


@pytest.fixture
def locomo_file(tmp_path: Path) -> Path:
    path = tmp_path / "locomo-tiny.json"
    data = [_conversation("Ana", "Ben", "puppy", "Porto"), _conversation("Cy", "Di", "cat", "Oslo")]
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _fractions(node: Any, path: str = "") -> list[tuple[str, float]]:
    """Every recall/hit/ndcg value in a results tree."""
    found: list[tuple[str, float]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, int | float) and key.split("@")[0] in ("recall", "hit", "ndcg"):
                found.append((f"{path}/{key}", float(value)))
            else:
                found += _fractions(value, f"{path}/{key}")
    return found


def test_metrics_score_ranked_keys() -> None:
    ranked = locomo.ranked_keys(["D1:1", "D1:1", None, "D2:3"])
    assert ranked == ["D1:1", None, None, "D2:3"]
    assert locomo.recall_at(ranked, ["D2:3", "D9:9"], 3) == 0.0
    assert locomo.recall_at(ranked, ["D2:3", "D9:9"], 4) == 0.5
    assert locomo.hit_at(ranked, ["D1:1"], 1) == 1.0
    assert locomo.ndcg_at(["D1:1", "x"], ["D1:1"], 10) == 1.0
    assert math.isclose(locomo.ndcg_at(["x", "D1:1"], ["D1:1"], 10), 1 / math.log2(3))


def test_evidence_is_split_repaired_and_checked() -> None:
    known = {"D8:6", "D9:17", "D11:26", "D30:5", "D1:2"}
    found, repaired, dropped = locomo.normalise_evidence(
        ["D8:6; D9:17", "D:11:26", "D30:05", "D", "D1:2"], known
    )
    assert found == ("D8:6", "D9:17", "D11:26", "D30:5", "D1:2")
    assert (repaired, dropped) == (3, 1)
    assert locomo.parse_conversations("0-2,5") == [0, 1, 2, 5]
    assert locomo.parse_session_time("1:56 pm on 8 May, 2023") is not None


def test_sections_are_replaced_independently(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    write_section(out, "scale", "scale one")
    write_section(out, "locomo", "locomo one")
    write_section(out, "scale", "scale two")
    text = out.read_text()
    assert "scale two" in text and "scale one" not in text and "locomo one" in text
    assert text.index("<!-- locomo:start -->") < text.index("<!-- scale:start -->")


def test_locomo_end_to_end(locomo_file: Path, tmp_path: Path, embedder: Embedder) -> None:
    out, js = tmp_path / "RESULTS.md", tmp_path / "locomo.json"
    write_section(out, "scale", "kept as it was")
    results = locomo.main(
        ["--data", str(locomo_file), "--conversations", "0-1", "--peers", "all",
         "--out", str(out), "--json", str(js)],
        embedder=embedder,
    )  # fmt: skip

    assert out.exists() and js.exists()
    text = out.read_text()
    assert "<!-- locomo:start -->" in text and "kept as it was" in text
    data = results["dataset"]
    assert (data["conversations"], data["turns"], data["questions"]) == (2, 24, 8)
    assert data["skipped_questions"] == 2  # no evidence; category 5 is not counted at all
    systems = results["systems"]
    assert systems["agentmem"]["status"] == "ok"
    for name in PEER_NAMES:
        if importlib.util.find_spec(PEER_MODULES[name]) is not None:
            assert systems[name]["status"] == "ok", systems[name]
        else:  # a peer that cannot run is reported with its error, not dropped
            assert systems[name]["error"] and systems[name]["why"]
    values = _fractions(json.loads(js.read_text())["systems"])
    assert values and all(0.0 <= v <= 1.0 for _, v in values), values
    # BM25 finds the pet question's turn by its words.
    bm25 = systems["bm25"]["metrics"]["by_category"]["single-hop"]
    assert bm25["recall@10"] == 1.0
    agent = systems["agentmem"]
    assert agent["add"]["records"] == 24
    assert agent["search"]["embedding_included"]["n"] == 8


def test_scale_end_to_end(tmp_path: Path, embedder: Embedder) -> None:
    out, js, plot = tmp_path / "RESULTS.md", tmp_path / "scale.json", tmp_path / "scale.png"
    results = scale.main(
        ["--sizes", "200", "--users", "5", "--queries", "4", "--unique-texts", "40",
         "--live-embedding-max", "0", "--out", str(out), "--json", str(js),
         "--plot", str(plot)],
        embedder=embedder,
    )  # fmt: skip

    assert out.exists() and js.exists() and plot.stat().st_size > 0
    assert "<!-- scale:start -->" in out.read_text()
    (size,) = results["sizes"]
    assert size["records"] == 200
    assert size["add"]["records_per_s_excluding_embedding"] > 0
    assert size["search"]["filtered_excluded"]["n"] == 4
    assert size["disk_bytes"] > 0 and size["peak_rss_bytes"] > 0


def test_scale_stream_is_deterministic_and_nested() -> None:
    pool = scale.sentence_pool(50, seed=3)
    assert pool == scale.sentence_pool(50, seed=3) and len({t for t, _ in pool}) == 50
    small, large = scale.memories(30, 4, pool, 3), scale.memories(60, 4, pool, 3)
    assert large[:30] == small


def test_caching_embedder_counts_model_work(embedder: Embedder) -> None:
    cache = CachingEmbedder(embedder)
    first = cache.embed_documents(["a cat", "a dog", "a cat"])
    assert first.shape == (3, embedder.dim) and cache.model_texts == 2
    cache.embed_documents(["a dog"])
    cache.embed_query("a cat?")
    cache.embed_query("a cat?")
    assert cache.model_texts == 3 and cache.requested_texts == 4
    cache.forget("a cat?")
    cache.embed_query("a cat?")
    assert cache.model_texts == 4


def test_tune_shapes_cross_validates_over_every_shape() -> None:
    # The cross-shape tuner's fusion and cross-validation on hand-made channel lists (no model,
    # no replay): every shape and fold is scored, and a configuration is chosen from the grid.
    from benchmarks import tune_shapes as ts

    rows = []
    for shape in ts.SHAPES:
        for fold in range(ts.FOLDS):
            for n in range(2):
                right, wrong = f"{shape}-{fold}-{n}-a", f"{shape}-{fold}-{n}-b"
                keys = {right: "yes", wrong: "no"}
                good, bad = [(right, 0.9), (wrong, 0.1)], [(wrong, 0.9), (right, 0.1)]
                ranked = {name: good for name in ts.INDEX_CHANNELS}
                ranked["bm25"] = bad  # one channel disagrees: fusion must outvote it
                ranked.update({f"window@{w}": bad for w in ts.SELF_WEIGHTS})
                rows.append(ts.prepare(ts.Row(shape, fold, "c", ("yes",), keys, ranked)))
    result = ts.cross_validate(rows)
    assert set(result["by_shape"]["cross-validated (held out)"]) == set(ts.SHAPES)
    assert result["by_shape"]["cross-validated (held out)"]["small"] == 1.0
    assert result["by_shape"]["bm25 alone"]["small"] == 0.0  # hit@1: the wrong one first
    assert len(result["folds"]) == ts.FOLDS and result["chosen"]["weights"]["dense"] > 0
