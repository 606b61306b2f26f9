"""Every code block of README.md runs as written (issue 27): the Python blocks, and the shell
blocks made only of ``agentmem`` commands that need no server, GPU or data file, in the order
the README shows them, in one fresh temporary home, offline, with no LLM configured.

A Python block runs on its own unless it starts with ``# continues the previous block``: then
it runs in the same process right after that block. A shell block runs in bash with
``agentmem`` meaning this checkout's command line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
CONTINUES = "# continues the previous block"
# Shell lines the test runs: agentmem commands (also inside $(...) and after &&) and printf.
_SAFE_LINE = re.compile(r"^(\w+=\$\()?(agentmem|printf) ")
# agentmem commands that need a server, a GPU, a broker or a data file not shipped here.
_UNSAFE = re.compile(r"agentmem (serve|mcp|adapters train|eval (locomo|longmemeval))\b")


@dataclass(frozen=True)
class Block:
    """One fenced code block of the README."""

    language: str
    code: str
    line: int


def readme_blocks(text: str) -> list[Block]:
    """The ```python and ```bash blocks, in order."""
    pattern = re.compile(r"^```(python|bash)\n(.*?)^```", re.MULTILINE | re.DOTALL)
    return [
        Block(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1)
        for m in pattern.finditer(text)
    ]


def runnable_shell(code: str) -> bool:
    """Whether every command of a shell block is one the test may run."""
    lines = [ln.split("  #")[0].strip() for ln in code.splitlines()]
    commands = [ln for ln in lines if ln and not ln.startswith("#")]
    return bool(commands) and all(
        _SAFE_LINE.match(ln) and not _UNSAFE.search(ln) for ln in commands
    )


def runs(blocks: list[Block]) -> list[tuple[str, list[Block]]]:
    """What the test runs, in order: ("python", blocks run in one process) or ("bash", [b])."""
    plan: list[tuple[str, list[Block]]] = []
    for block in blocks:
        if block.language == "python":
            if block.code.startswith(CONTINUES):
                assert plan and plan[-1][0] == "python", (
                    f"README line {block.line}: continues nothing"
                )
                plan[-1][1].append(block)
            else:
                plan.append(("python", [block]))
        elif runnable_shell(block.code):
            plan.append(("bash", [block]))
    return plan


def test_the_readme_plan_covers_every_python_block() -> None:
    blocks = readme_blocks(README.read_text(encoding="utf-8"))
    plan = runs(blocks)
    python = [b for b in blocks if b.language == "python"]
    assert sum(len(group) for kind, group in plan if kind == "python") == len(python) >= 8
    assert sum(1 for kind, _ in plan if kind == "bash") >= 2  # the CLI and graph blocks


def _env(tmp_path: Path) -> dict[str, str]:
    """Offline, no LLM, this checkout on the path, ``AGENTMEM_HOME`` fresh under tmp_path."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AGENTMEM_") and k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")
    }
    env.update(
        AGENTMEM_HOME=str(tmp_path / "home"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        PYTHONPATH=os.pathsep.join(
            [str(ROOT / p) for p in ("", "graphs", "consolidation", "gpu", "server")]
            + [env.get("PYTHONPATH", "")]
        ),
        COLUMNS="200",
    )
    return env


def _bash(code: str) -> list[str]:
    prelude = f'set -euo pipefail\nagentmem() {{ "{sys.executable}" -m agentmem "$@"; }}\n'
    return ["bash", "-c", prelude + code]


def _is_cli_block(block: Block) -> bool:
    """The README's command-line section (the block that also reads the graph)."""
    return "agentmem graph neighbors" in block.code


def test_every_readme_block_runs_as_written(tmp_path: Path) -> None:
    """The blocks in order in one home, except the command-line block: a reader may run it on
    its own, so it runs alone, in a fresh home and folder of its own."""
    env = _env(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    alone = tmp_path / "alone"
    (alone / "work").mkdir(parents=True)
    plan = runs(readme_blocks(README.read_text(encoding="utf-8")))
    assert sum(1 for kind, group in plan if kind == "bash" and _is_cli_block(group[0])) == 1
    for kind, group in plan:
        where = f"README.md line {group[0].line}"
        cwd, block_env = work, env
        if kind == "python":
            command = [sys.executable, "-c", "\n".join(b.code for b in group)]
        else:
            command = _bash(group[0].code)
            if _is_cli_block(group[0]):
                cwd, block_env = alone / "work", _env(alone)
        done = subprocess.run(
            command,
            cwd=cwd,
            env=block_env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"{where} ({kind}) failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
