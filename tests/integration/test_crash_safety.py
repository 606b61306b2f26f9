"""Nothing acknowledged is ever lost: a writer killed with SIGKILL mid-run loses no write.

A child process opens an embedded home and adds memories in a loop, printing each id once the
call that stored it has returned. The test kills it with SIGKILL while it keeps writing, then
reopens the home: every printed id must be readable and found by a search for its own text,
the outbox must be drained on open, and the index must hold exactly the store's records.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentmem import Memory, Settings
from agentmem.embedders import Embedder
from tests.integration._scripts.support import Child, CountingEmbedder

pytestmark = pytest.mark.slow

# The child loads all-MiniLM-L6-v2 itself; on a busy 2-core machine that takes a while.
OPEN_TIMEOUT_S = 120.0
WRITE_TIMEOUT_S = 60.0


def _run_and_kill(home: Path, mode: str, n: str, at_least: int) -> list[list[str]]:
    """Start a writer, let it print ``at_least`` ids, SIGKILL it; return every printed line
    (each a list of ids), including lines still in the pipe when it died."""
    child = Child("writer.py", str(home), mode, n)
    try:
        child.wait_for("OPEN", OPEN_TIMEOUT_S)
        lines: list[list[str]] = []
        while sum(map(len, lines)) < at_least:
            lines.append(child.readline(WRITE_TIMEOUT_S).split())
        child.kill()  # while it is in the middle of its next write
        assert child.proc.returncode == -9
        lines.extend(line.split() for line in child.remaining_lines() if line)
    finally:
        child.close()
    return lines


def _check_reopened(home: Path, embedder: Embedder, printed: list[str]) -> Memory:
    mem = Memory(settings=Settings.load(home=home), embedder=CountingEmbedder(embedder))
    stats = mem.stats()
    assert stats.pending_index == 0, "the outbox must be applied when the home opens"
    assert stats.indexed_vectors == stats.records, "index and store must hold the same records"
    assert stats.history_entries == stats.records, "each stored record has exactly its ADD"
    stored = {r.id: r for r in mem.list(user_id="writer", limit=10_000)}
    assert len(stored) == stats.records
    missing = [i for i in printed if i not in stored]
    assert not missing, f"{len(missing)} acknowledged writes were lost: {missing[:5]}"
    return mem


def _assert_found_by_own_text(mem: Memory, ids: list[str]) -> None:
    records = [mem.get(i) for i in ids]
    counting = mem.backends.embedder
    assert isinstance(counting, CountingEmbedder)
    counting.prime([r.text for r in records])  # one batch instead of one call per search
    total = mem.stats().records
    for record in records:
        # k = every record: texts may repeat, and all copies of a text tie on it.
        hits = mem.search(record.text, user_id="writer", k=min(total, 1000))
        assert record.id in [h.record.id for h in hits], f"search lost {record.id}"


def test_sigkill_during_add_loses_no_acknowledged_write(home: Path, embedder: Embedder) -> None:
    # Texts alternate between 2 sentences: after a handful of embeddings (each text, each
    # neighbour window) every vector is a cache hit and the loop is all store and index work,
    # where a kill hurts most.
    lines = _run_and_kill(home, "add", "2", at_least=20)
    printed = [i for line in lines for i in line]
    assert all(len(line) == 1 for line in lines)
    with _check_reopened(home, embedder, printed) as mem:
        unprinted = mem.stats().records - len(printed)
        assert unprinted in (0, 1), "at most the write in flight is stored without an ack"
        _assert_found_by_own_text(mem, printed)
        # The reopened home takes new writes normally.
        mem.add("written after the crash", user_id="writer")
        assert mem.stats().pending_index == 0


def test_sigkill_during_add_many_keeps_whole_batches(home: Path, embedder: Embedder) -> None:
    batch = 8
    lines = _run_and_kill(home, "add_many", str(batch), at_least=3 * batch)
    printed = [i for line in lines for i in line]
    assert all(len(line) == batch for line in lines), "a batch is acknowledged whole"
    with _check_reopened(home, embedder, printed) as mem:
        unprinted = mem.stats().records - len(printed)
        assert unprinted in (0, batch), "a batch in flight is stored whole or not at all"
        _assert_found_by_own_text(mem, printed)
