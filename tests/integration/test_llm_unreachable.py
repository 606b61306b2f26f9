"""A configured model that cannot be reached: litellm pointed at a closed port on this machine.
The run fails with one LLMUnavailable naming the model, not a client traceback, and litellm
never tries to fetch its model cost map over the network."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage

from agentmem import LLMUnavailable, Memory

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on (bound, then released): connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(code_or_script: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Python on ``-c code`` (or a script path) in a fresh process, with ``env`` added."""
    full = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    full.pop("LITELLM_LOCAL_MODEL_COST_MAP", None)  # what a new user's shell has
    full.pop("AGENTMEM_LLM_MODEL", None)
    full.update(env)
    script = code_or_script.endswith(".py")
    return subprocess.run(
        [sys.executable, *([code_or_script] if script else ["-c", code_or_script])],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        env=full,
        cwd=ROOT,
        check=False,
    )


def test_litellm_imported_after_agentmem_reads_its_local_cost_map() -> None:
    done = _run(
        "import os, agentmem, litellm; "
        "print(os.environ['LITELLM_LOCAL_MODEL_COST_MAP'], len(litellm.model_cost) > 100)"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "True"]
    assert "cost map" not in done.stderr  # no fetch attempted, so none failed
    kept = _run(
        "import os, agentmem; print(os.environ['LITELLM_LOCAL_MODEL_COST_MAP'])",
        LITELLM_LOCAL_MODEL_COST_MAP="False",
    )
    assert kept.stdout.strip() == "False"  # an explicit choice wins


@pytest.mark.slow
def test_an_agent_on_an_unreachable_model_raises_llm_unavailable(
    mem: Memory, closed_port: int
) -> None:
    from langchain_litellm import ChatLiteLLM

    from agentmem_graphs import create_memory_agent

    model = ChatLiteLLM(
        model="openai/gpt-4o-mini",
        api_base=f"http://127.0.0.1:{closed_port}/v1",
        api_key="sk-test",
        max_retries=0,
    )
    graph = create_memory_agent(model, mem)
    config = {"configurable": {"user_id": "maya", "thread_id": "t1"}}
    with pytest.raises(LLMUnavailable) as caught:
        graph.invoke({"messages": [HumanMessage("hello")]}, config)
    message = str(caught.value)
    assert "'openai/gpt-4o-mini'" in message and "reachable" in message
    assert "\n" not in message


@pytest.mark.slow
def test_the_langgraph_example_fails_with_one_line(closed_port: int) -> None:
    done = _run(
        str(ROOT / "examples" / "langgraph_agent.py"),
        AGENTMEM_LLM_MODEL="openai/gpt-4o-mini",
        OPENAI_API_BASE=f"http://127.0.0.1:{closed_port}/v1",
        OPENAI_API_KEY="sk-test",
        COLUMNS="200",
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    assert "cost map" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, done.stderr[-3000:]
    assert errors[0].startswith("error: LLMUnavailable: chat model 'openai/gpt-4o-mini' failed")
