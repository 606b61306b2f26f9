"""A vector index this user may not read or write is named as a permission problem.

Its files are fine, so the message must not call them damaged nor advise
``agentmem reindex --rebuild`` (which sets a good index aside). The engine's error is the one
observed with ``chattr +i`` on the shard's files; a real ``chmod`` is used where the tests run
as a user whom permissions bind (not root).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import qdrant_edge as qe

from agentmem import IndexUnreadable, Memory, Settings
from agentmem.embedders import Embedder

ENGINE_ERROR = (
    "Service runtime error: failed to load segment {path}/segments/0f: Service runtime error: "
    "Failed to open mmap payload storage: Operation not permitted (os error 1)"
)


def _assert_permission_message(message: str, vectors: Path) -> None:
    assert str(vectors) in message and "permission problem, not damage" in message
    assert "chmod" in message and "do not rebuild it" in message
    assert "reindex --rebuild" not in message and "damaged" not in message


def _refuse_to_load(monkeypatch: pytest.MonkeyPatch, vectors: Path) -> None:
    def load(path: str, config: Any) -> Any:
        raise RuntimeError(ENGINE_ERROR.format(path=vectors))

    monkeypatch.setattr(qe.EdgeShard, "load", load)


@pytest.mark.parametrize("how", ["engine error", "chmod"])
def test_an_index_without_permissions_is_not_called_damaged(
    home: Path, embedder: Embedder, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings.load(home=home)
    with Memory(settings=settings, embedder=embedder) as mem:
        mem.add("a memory", user_id="u")
    vectors = home / "vectors"
    if how == "chmod":
        if os.geteuid() == 0:
            pytest.skip("permissions do not bind root")
        subprocess.run(["chmod", "-R", "a-w", str(vectors)], check=True)
    else:
        _refuse_to_load(monkeypatch, vectors)
    try:
        with Memory(settings=settings, embedder=embedder) as mem:
            stats = mem.stats()
            assert stats.records == 1 and stats.index_error is not None
            _assert_permission_message(stats.index_error, vectors)
            with pytest.raises(IndexUnreadable) as info:
                mem.add("another memory", user_id="u")
            assert str(info.value).startswith("stored ")
            _assert_permission_message(str(info.value), vectors)
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(vectors)], check=True)


def test_a_write_the_engine_refuses_for_permissions_says_so(
    mem: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    index: Any = mem.backends.index
    shard = index._shard

    class Refusing:
        def __getattr__(self, name: str) -> Any:
            return getattr(shard, name)

        def update(self, operation: Any) -> None:
            raise RuntimeError("Service internal error: Permission denied (os error 13)")

    monkeypatch.setattr(index, "_shard", Refusing())
    with pytest.raises(IndexUnreadable) as info:
        mem.add("a memory", user_id="u")
    _assert_permission_message(str(info.value), index.path)
    monkeypatch.setattr(index, "_shard", shard)
