"""The TextWorldExpress benchmark's report from given runs: means and spread over seeds,
learning curves, the RESULTS.md section (which says the games are an outside benchmark) and
the plot. No game runs here (tests/integration/test_twx_env.py plays the real one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.self_evolving_twx import CONDITIONS, Run, render_markdown, summarise, write_plot


def _run(successes: list[bool], test: list[bool]) -> Run:
    def episode(ok: bool) -> dict[str, object]:
        return {"seed": 0, "success": ok, "score": 1.0 if ok else 0.5, "moves": 10 if ok else 50}

    return Run(train=[episode(s) for s in successes], test=[episode(s) for s in test])


def test_summary_section_and_plot(tmp_path: Path) -> None:
    runs = {
        "twc": {
            "off": [_run([False] * 4, [False, False]), _run([False] * 4, [True, False])],
            "raw": [_run([False, True, True, True], [True, False])] * 2,
            "procedures": [_run([False, False, True, True], [True, True])] * 2,
            "utility": [_run([True] * 4, [True, True]), _run([True] * 4, [True, False])],
        }
    }
    results = summarise(runs, window=2, episodes=4)
    twc = results["games"]["twc"]
    assert twc["off"]["success"]["mean"] == pytest.approx(0.25)
    assert twc["off"]["success"]["sd"] == pytest.approx(0.25)
    assert twc["procedures"]["curve"] == [0.0, 1.0]
    assert twc["procedures"]["moves"]["mean"] == 10
    assert results["windows"] == ["1-2", "3-4"]

    results.update(
        seeds=[0, 1],
        test_games=2,
        conditions=list(CONDITIONS),
        settings={"twc": {"params": "numLocations=1", "max_moves": 50}},
        date="2026-12-06",
        command="python -m benchmarks.self_evolving_twx",
        wall_seconds=1.0,
        machine={"cpu": "x", "cores": 2, "ram_gib": 8, "os": "Linux", "python": "3.11"},
        versions={"textworld-express": "1.1.0"},
        jobs=1,
    )
    text = render_markdown(results, tmp_path / "twx.png")
    assert "outside benchmark" in text and "ToolWorld" in text
    assert "| twc | procedures | 1.00 ± 0.00 |" in text
    assert "twc: procedures +75.0 points over memory off, utility -25.0 over procedures" in text
    write_plot(results, tmp_path / "twx.png")
    assert (tmp_path / "twx.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
