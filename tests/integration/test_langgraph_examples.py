"""The LangGraph examples run offline, with scripted models, and show what they promise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


EXAMPLES = ("langgraph_agent.py", "langgraph_team.py")


@pytest.fixture(scope="module")
def outputs() -> dict[str, str]:
    """Both examples' output; they run side by side (each spends most of its time alone,
    loading the embedder)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "200"}
    env.pop("AGENTMEM_LLM_MODEL", None)  # the scripted models, whatever the shell has set
    env["OMP_NUM_THREADS"] = "1"  # two processes side by side: one core each, no contention
    running = {
        name: subprocess.Popen(
            [sys.executable, str(ROOT / "examples" / name)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for name in EXAMPLES
    }
    done: dict[str, str] = {}
    for name, process in running.items():
        try:
            stdout, stderr = process.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        assert process.returncode == 0, f"{name} failed: {stderr[-2000:]}"
        done[name] = stdout
    return done


@pytest.mark.slow
def test_langgraph_agent_learns_a_procedure_and_recalls_it_in_a_new_thread(
    outputs: dict[str, str],
) -> None:
    out = outputs["langgraph_agent.py"]
    assert "model: scripted (offline)" in out
    assert "Error: E_AUTH: not logged in" in out  # Monday's failed call
    assert "call `login` before `book_table`" in out  # the procedure learned from it
    assert "procedure recalled for a new task: True" in out  # in Tuesday's prompt
    assert "- Maya is vegetarian." in out  # a fact recalled into the prompt
    assert "messages in thread 'tuesday': 10" in out  # the checkpointer kept the thread
    assert "turns in the thread's short-term buffer: 4" in out
    assert "langgraph agent finished" in out


@pytest.mark.slow
def test_langgraph_team_shares_the_team_scope_and_keeps_private_notes(
    outputs: dict[str, str],
) -> None:
    out = outputs["langgraph_team.py"]
    rows = {
        line.split("│")[1].strip()[:30]: [c.strip() for c in line.split("│")[3:5]]
        for line in out.splitlines()
        if line.count("│") == 5
    }
    assert rows["A blog claims 300 km of lanes;"] == ["yes", "no"]  # the researcher's own
    assert rows["Style: short paragraphs, one f"] == ["no", "yes"]  # the writer's own
    assert rows["Verified: the city has 142 km "] == ["yes", "yes"]  # shared with the team
    assert "The team verified 142 km of protected lanes." in out
    assert "the writer sees the researcher's unverified lead? False" in out
    assert "langgraph team finished" in out
