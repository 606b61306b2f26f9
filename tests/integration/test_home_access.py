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


def test_the_lock_covers_the_files_named_by_url_whatever_the_home(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two Memories whose URLs name one SQLite file or one Edge directory conflict even with
    different homes: the second gets HomeLocked before it writes anything (it was let in, wrote
    to the store, and then called the live index damaged)."""
    shared = tmp_path / "shared"
    store, vectors = f"sqlite:///{shared}/agentmem.db", f"edge://{shared}/vectors"
    monkeypatch.chdir(tmp_path)  # the default home would be ./.agentmem
    with Memory(
        settings=Settings.load(store_url=store, vectors_url=vectors), embedder=embedder
    ) as first:
        first.add("the first memory", user_id="u")
        assert not (tmp_path / ".agentmem").exists(), "no lock in an unused home"
        for other in (
            Settings.load(home=tmp_path / "b", store_url=store, vectors_url=vectors),
            Settings.load(home=shared),  # the same files as the home's defaults
            Settings.load(store_url=store, vectors_url="postgresql://nowhere/db"),
            Settings.load(store_url=f"sqlite:///{tmp_path}/c.db", vectors_url=vectors),
        ):
            with pytest.raises(HomeLocked) as info:
                Memory(settings=other, embedder=embedder)
            message = str(info.value)
            assert "already open in this process" in message and str(shared) in message
        assert first.stats().records == 1
    # Other files, even in the same folder, do not lock each other.
    apart = {"store_url": f"sqlite:///{shared}/a.db", "vectors_url": f"edge://{shared}/a-vectors"}
    with Memory(settings=Settings.load(home=tmp_path / "d", **apart), embedder=embedder):
        with Memory(settings=Settings.load(home=shared), embedder=embedder) as home_memory:
            assert home_memory.stats().records == 1
        with pytest.raises(HomeLocked, match=r"SQLite store .*a\.db is already open"):
            Memory(settings=Settings.load(store_url=apart["store_url"]), embedder=embedder)
    assert sorted(p.name for p in shared.iterdir() if p.suffix == ".lock") == [
        "a-vectors.lock",
        "a.db.lock",
        "agentmem.lock",
    ]
