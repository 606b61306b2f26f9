"""Every example a new user copies from runs, offline, and shows what it promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quickstart_runs_offline_end_to_end() -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "120"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "her name is Pepper" in out  # recall found the dog
    # "Where does Maya live now?": the Eastgate turn took the Harbourside turn's first place
    assert "#1 took the place of the memory fused at rank 1, which it supersedes" in out
    assert "tokens (max 150)" in out  # context respected its budget
    assert "INVALIDATE" in out  # history shows the invalidation
    assert "the same question in another user's scope finds 0 memories" in out
    assert "records before and after: 25" in out  # bad input changed nothing
    assert "where Maya lives, as of 2024-04-01: Maya lives in Harbourside." in out
    assert "where Maya lives, as of now: Maya moved to Eastgate" in out
    assert "procedure recalled for a new task: For tasks like" in out  # experience memory
    assert "Maya's community: " in out and "Northwind Logistics" in out  # knowledge graph
    assert "Tomas -manager_of-> Maya" in out and "Ines -sister_of-> Maya" in out
    assert "mem.search in Maya's scope finds the same memory: 'Maya prefers a window" in out
    assert "trained v1 on " in out  # a retriever adapter trained and registered
    assert "another user with Maya's key -> 403" in out and "no key -> 401" in out  # REST API
    assert "GET /v1/scopes -> 1 in maya; GET /ui -> 200" in out  # what the inspector shows
    assert "search 'locker code' now: nothing" in out  # forget reached every copy
    assert "a tool write -> quarantine" in out and "plain search sees it: False" in out
    assert "demo finished" in out


@pytest.mark.slow
def test_multi_agent_team_shows_what_each_agent_can_see() -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "multi_agent_team.py")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") == 5}
    cells = {k: [c.strip() for c in v.split("│")[3:5]] for k, v in rows.items()}
    assert cells["raw-blog"] == ["yes", "no"]  # private to the researcher
    assert cells["style"] == ["no", "yes"]  # private to the writer
    assert cells["lanes"] == cells["outline"] == ["yes", "yes"]  # the team's
    assert "researcher searches and finds 5 memories" in out
    assert "writer searches and finds 4 memories" in out
    assert "writer cannot see the researcher's raw notes" in out
    assert "'from_agent': 'researcher'" in out and "'source_ids':" in out
    assert "writer can read it? False" in out
    assert "team finished" in out
    assert not (ROOT / "examples" / ".agentmem").exists(), "it works in a temporary home"


@pytest.mark.slow
def test_self_evolving_agent_runs_offline_and_learns() -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "120"}
    env.pop("AGENTMEM_LLM_MODEL", None)
    args = ["--episodes", "12", "--window", "6", "--held-out", "6"]  # learning: test_self_evolving
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "self_evolving_agent.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "hidden rules" in out and "deploy_service" in out  # the world is shown
    assert "reflection (rules): Failed" in out  # a failed attempt, reflected on
    assert "call `test`" in out and "E_PRECONDITION" in out  # a procedure distilled from it
    assert "planned build(service=" in out  # ... and used to plan the next attempt
    assert "training episodes 7-12" in out and "held-out (6 new instances" in out
    assert "held-out success: procedures" in out
    assert "self-evolving demo finished" in out
