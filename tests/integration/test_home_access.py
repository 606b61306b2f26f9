"""Opening an embedded home that cannot be locked says why and what to do.

A home that cannot be written (a read-only mount, another user's folder) is simulated without
root: a home under a regular file (``mkdir`` fails) and a home whose ``agentmem.lock`` is a
folder (the lock's ``open`` fails), both real ``OSError`` from the same calls.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentmem import BackendUnavailable, HomeLocked, Memory, Settings, cli
from agentmem.embedders import Embedder


@pytest.mark.parametrize("how", ["under a file", "lock is a folder"])
def test_a_home_that_cannot_be_written_names_it_and_the_fix(
    tmp_path: Path, embedder: Embedder, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if how == "under a file":
        (tmp_path / "file").write_text("")
        home = tmp_path / "file" / "home"
    else:
        home = tmp_path / "home"
        (home / "agentmem.lock").mkdir(parents=True)

    with pytest.raises(BackendUnavailable) as info:
        Memory(settings=Settings.load(home=home), embedder=embedder)
    message = str(info.value)
    assert not isinstance(info.value, HomeLocked)
    assert f"the embedded home {home} cannot be written" in message
    assert "Errno" in message, "the OS error is kept"
    assert "copy it somewhere writable" in message
    assert isinstance(info.value.__cause__, OSError)

    monkeypatch.setattr(cli, "open_memory", lambda s: Memory(settings=s, embedder=embedder))
    result = CliRunner().invoke(cli.app, ["--home", str(home), "stats"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.startswith(f"error: the embedded home {home} cannot be written")
