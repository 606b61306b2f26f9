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
    assert "tokens (max 150)" in out  # context respected its budget
    assert "INVALIDATE" in out  # history shows the invalidation
    assert "the same question in another user's scope finds 0 memories" in out
    assert "records before and after: 25" in out  # bad input changed nothing
    assert "demo finished" in out
