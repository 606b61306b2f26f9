"""Two processes on one embedded home: the second fails fast with HomeLocked and writes nothing.

An embedded home (SQLite + Qdrant Edge) has one writer process at a time; processes share
memory through PostgreSQL + a Qdrant server. The second process must get
:class:`agentmem.HomeLocked` (a :class:`agentmem.BackendUnavailable`) at once, with a message
that says so, and the first process's writes must all be intact.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from agentmem import BackendUnavailable, HomeLocked, Memory, Settings
from agentmem.embedders import Embedder
from tests.integration._scripts.support import Child

OPEN_TIMEOUT_S = 120.0
FAIL_FAST_S = 3.0


def _assert_helpful(message: str, home: Path) -> None:
    lowered = message.lower()
    assert str(home.resolve()) in message, "the message names the home"
    assert "postgresql" in lowered and "qdrant" in lowered, "it says how to share memory"


def test_second_process_fails_fast_while_first_writes(home: Path, embedder: Embedder) -> None:
    with Memory(settings=Settings.load(home=home), embedder=embedder) as mem:
        first = mem.add("the first process was here", user_id="owner")
        written = [first.id]
        stop = threading.Event()
        errors: list[BaseException] = []

        def keep_writing() -> None:
            try:
                while not stop.is_set():
                    # Repeated text: a cache hit, so the loop is all store and index writes.
                    written.append(mem.add("the first process was here", user_id="owner").id)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        writer = threading.Thread(target=keep_writing)
        writer.start()
        try:
            child = Child("try_open.py", str(home))
            try:
                report = json.loads(child.readline(OPEN_TIMEOUT_S))
                assert child.proc.wait(timeout=30) == 3, "the second open must fail"
            finally:
                child.close()
        finally:
            stop.set()
            writer.join(timeout=60)
        assert not errors, f"the first process's writes failed: {errors!r}"

        assert "HomeLocked" in report["errors"] and "BackendUnavailable" in report["errors"]
        assert report["elapsed_s"] < FAIL_FAST_S, "the second process must not wait for the lock"
        _assert_helpful(report["message"], home)

        # Everything the first process wrote is there; the second wrote nothing.
        stats = mem.stats()
        assert stats.records == len(written) == stats.history_entries
        assert stats.indexed_vectors == stats.records and stats.pending_index == 0
        assert {r.id for r in mem.list(user_id="owner", limit=10_000)} == set(written)
        assert mem.list(user_id="intruder") == []

    # After the first process closes, the home opens again, with the same contents.
    with Memory(settings=Settings.load(home=home), embedder=embedder) as again:
        assert again.stats().records == len(written)


@pytest.mark.slow
def test_this_process_is_refused_while_a_child_holds_the_home(
    home: Path, embedder: Embedder
) -> None:
    child = Child("writer.py", str(home), "hold")
    try:
        child.wait_for("OPEN", OPEN_TIMEOUT_S)
        child.send("add\n")
        ids = [child.readline(60)]

        start = time.monotonic()
        with pytest.raises(HomeLocked) as info:
            Memory(settings=Settings.load(home=home), embedder=embedder)
        assert time.monotonic() - start < FAIL_FAST_S
        assert isinstance(info.value, BackendUnavailable)
        _assert_helpful(str(info.value), home)

        # The holder is unaffected by the refused open and keeps writing.
        child.send("add\nadd\n")
        ids += [child.readline(60), child.readline(60)]
        child.end_input()
        child.wait_for("CLOSED", 60)
        assert child.proc.wait(timeout=60) == 0
    finally:
        child.close()

    with Memory(settings=Settings.load(home=home), embedder=embedder) as mem:
        stats = mem.stats()
        assert stats.records == 3 == stats.history_entries == stats.indexed_vectors
        assert stats.pending_index == 0
        assert [r.id for r in mem.list(user_id="writer")] == ids
