"""examples/textworld_langgraph.py runs the LangGraph episode loop against the real game."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services import require_textworld

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_textworld_langgraph_example_trains_then_plays_unseen_games() -> None:
    require_textworld()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "textworld_langgraph.py")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "episodes played through LangGraph: 24 on the train fold" in out
    assert "procedures (read-only)" in out and "memory off" in out
    assert "procedures learned:" in out and "procedures learned: 0" not in out
    assert "textworld langgraph agent finished" in out
