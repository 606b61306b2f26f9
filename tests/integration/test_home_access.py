"""Opening an embedded home that cannot be locked says why and what to do.

A home that cannot be written (a read-only mount, another user's folder) is simulated without
root: a home under a regular file (``mkdir`` fails) and a home whose ``agentmem.lock`` is a
folder (the lock's ``open`` fails), both real ``OSError`` from the same calls.
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentmem import BackendUnavailable, HomeLocked, Memory, Settings, cli
from agentmem.embedders import Embedder


def test_a_second_memory_in_this_process_is_told_to_reuse_or_close_the_first(
    home: Path, embedder: Embedder
) -> None:
    first = Memory(settings=Settings.load(home=home), embedder=embedder)
    with pytest.raises(HomeLocked) as info:
        Memory(settings=Settings.load(home=home), embedder=embedder)
    message = str(info.value)
    assert "already open in this process" in message and "another process" not in message
    assert str(home.resolve()) in message and "close()" in message and "Reuse" in message

    first.close()
    with Memory(settings=Settings.load(home=home), embedder=embedder):
        pass
    # A Memory left unclosed and collected releases the home, and is not blamed afterwards.
    Memory(settings=Settings.load(home=home), embedder=embedder)
    gc.collect()
    Memory(settings=Settings.load(home=home), embedder=embedder).close()


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
