"""The command line and the library start without the heavy optional packages."""

from __future__ import annotations

import subprocess
import sys

from tests.integration.test_examples import ROOT


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(done.stdout.split())


def test_the_cli_loads_plugins_only_when_called() -> None:
    loaded = _modules_after("import agentmem.cli")
    heavy = {"torch", "sentence_transformers", "onnxruntime", "celery", "fastapi", "litellm"}
    assert not heavy & loaded, heavy & loaded
    plugins = {"agentmem_server", "agentmem_consolidation", "agentmem_gpu", "agentmem_graphs"}
    assert not plugins & loaded, plugins & loaded


def test_plugin_commands_still_answer() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agentmem", "jobs", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "consolidation job ledger" in done.stdout


def test_import_agentmem_loads_no_heavy_package() -> None:
    """The graph, fuzzy matching, training and LLM packages load where they are used."""
    loaded = _modules_after("import agentmem")
    heavy = {"networkx", "scipy", "rapidfuzz", "torch", "litellm"}
    assert not heavy & loaded, heavy & loaded
