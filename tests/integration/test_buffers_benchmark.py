"""The buffer benchmark runs end to end on tiny counts and writes only its own section."""

from __future__ import annotations

import json
from pathlib import Path

from agentmem.embedders import Embedder
from benchmarks import buffers
from benchmarks._common import write_section


def test_buffer_benchmark_writes_its_section(tmp_path: Path, embedder: Embedder) -> None:
    out, data = tmp_path / "RESULTS.md", tmp_path / "buffers.json"
    write_section(out, "scale", "the scale section stays")
    argv = ["--appends", "20", "--windows", "5", "--topic-appends", "3"]
    results = buffers.main([*argv, "--out", str(out), "--json", str(data)], embedder=embedder)

    operations = {(r["backend"], r["operation"].split(",")[0]) for r in results["rows"]}
    backends = {"in-process"} | ({"redis"} if results["redis_skipped"] is None else set())
    for backend in backends:
        assert (backend, "append") in operations and (backend, "window(2000)") in operations
    for row in results["rows"]:
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["max_ms"]
    text = out.read_text()
    assert "<!-- buffers:start -->" in text and "<!-- buffers:end -->" in text
    assert "the scale section stays" in text
    assert json.loads(data.read_text())["rows"] == json.loads(json.dumps(results["rows"]))
