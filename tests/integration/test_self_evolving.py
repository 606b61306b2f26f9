"""The self-evolving agent benchmark end to end, small: it writes its RESULTS.md section, the
learning-curve PNG and JSON, keeps the other sections, and the memory-on agent is ahead of the
memory-off one on held-out task instances."""

from __future__ import annotations

import json
from pathlib import Path

from agentmem.embedders import Embedder
from benchmarks import self_evolving
from benchmarks._common import write_section


def test_benchmark_writes_results_and_memory_on_beats_memory_off(
    tmp_path: Path, embedder: Embedder
) -> None:
    results_md = tmp_path / "RESULTS.md"
    write_section(results_md, "locomo", "## LoCoMo\n\nkept as it was")
    argv = [
        *("--seeds", "0", "--episodes", "36", "--window", "12", "--held-out", "18"),
        *("--out", str(results_md), "--json", str(tmp_path / "r.json")),
        *("--plot", str(tmp_path / "curve.png")),
    ]
    results = self_evolving.main(argv, embedder=embedder)

    held = results["held_out_success"]
    assert held["procedures"] > held["off"] + 0.2  # procedures learned on training instances
    assert held["procedures"] >= held["raw"]
    # Utility learning (task outcomes passed as feedback) runs for both memory-on agents.
    assert set(held) == {"off", "raw", "raw_utility", "procedures", "utility"}
    assert held["utility"] > held["off"] and held["raw_utility"] > held["off"]
    curve = results["curves"]["procedures"]
    assert len(curve) == 3 and curve[-1] > curve[0]
    for values in results["curves"].values():
        assert all(0.0 <= v <= 1.0 for v in values)
    text = results_md.read_text()
    assert "kept as it was" in text
    assert "<!-- experience:start -->" in text and "<!-- experience:end -->" in text
    assert "| training episodes 1-12 |" in text and "held-out (18 new instances" in text
    assert "![ToolWorld learning curve](" in text
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["held_out_success"] == held and saved["benchmark"] == "self_evolving"
    assert results["procedures"]["count"] > 0
