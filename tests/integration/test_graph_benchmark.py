"""The knowledge-graph LoCoMo benchmark runs end to end on a tiny conversation."""

from __future__ import annotations

import json
from pathlib import Path

from agentmem.embedders import Embedder
from benchmarks import locomo_graph
from benchmarks._common import write_section


def _turn(session: int, n: int, speaker: str, text: str) -> dict[str, str]:
    return {"speaker": speaker, "dia_id": f"D{session}:{n}", "text": text}


def test_locomo_graph_end_to_end(tmp_path: Path, embedder: Embedder) -> None:
    conversation = {
        "sample_id": "tiny",
        "conversation": {
            "speaker_a": "Ana",
            "speaker_b": "Ben",
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": [
                _turn(1, 1, "Ana", "I adopted a puppy yesterday with my sister Clara."),
                _turn(1, 2, "Ben", "Wow! What is it called?"),
                _turn(1, 3, "Ana", "We called her Biscuit. Clara walks Biscuit every day."),
                _turn(1, 4, "Ben", "I started pottery classes at Clayworks last week."),
            ],
            "session_2_date_time": "10:04 am on 19 June, 2023",
            "session_2": [
                _turn(2, 1, "Ana", "I moved to Porto last month for a job at Northwind."),
                _turn(2, 2, "Ana", "I love Porto, the river is beautiful."),
            ],
        },
        "qa": [
            {"question": "When did Ana adopt a puppy?", "evidence": ["D1:1"], "category": 2},
            {"question": "Who walks Biscuit?", "evidence": ["D1:3"], "category": 1},
            {"question": "Where does Ana work?", "evidence": ["D2:1"], "category": 4},
        ],
    }
    data = tmp_path / "locomo-tiny.json"
    data.write_text(json.dumps([conversation]), encoding="utf-8")
    out, js = tmp_path / "RESULTS.md", tmp_path / "graph.json"
    write_section(out, "locomo", "kept as it was")
    results = locomo_graph.main(
        ["--data", str(data), "--conversations", "0", "--out", str(out), "--json", str(js)],
        embedder=embedder,
    )
    text = out.read_text()
    assert "<!-- graph:start -->" in text and "kept as it was" in text
    assert "graph channel alone" in text
    summary = results["summary"]
    (graph,) = summary["graphs"]
    assert graph["facts"] >= 4 and graph["entities"] >= 3 and graph["relations"] >= 1
    assert set(summary["variants"]) == set(locomo_graph.VARIANTS)
    for variant in summary["variants"].values():
        for weight in variant["cross_validation"]["by_weight"].values():
            assert 0.0 <= weight["overall"]["recall@10"] <= 1.0
        assert variant["latency_ms"]["p50"] >= 0
    assert json.loads(js.read_text())["benchmark"] == "locomo_graph"
