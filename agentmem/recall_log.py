"""Recall counts and retrieval records, written behind the searches that make them.

Every ``search`` and ``context`` counts a recall of what it returned (``access_count``, which
consolidation's decay reads) and records which memories it showed (the retrieval a later
``feedback`` names). Neither changes what a memory says, so neither needs to be on the
search's path. Written there, they cost a round trip and a commit per search, and concurrent
searches of one scope queue on the row locks of the same memories' counts.

A :class:`RecallLog` gathers them and writes everything pending in one transaction from a
daemon thread, at most ``retrieval.recall_flush_s`` seconds after the search. Counts of the
same memory add up in between. :meth:`RecallLog.flush` writes at once. ``feedback``,
consolidation's decay and closing the Memory call it, so in one process a feedback always
finds its retrieval and decay always sees every count. With ``recall_flush_s`` 0 each search
writes on its own thread, as it did before.

A process that crashes loses at most the last ``recall_flush_s`` seconds of counts and
retrieval records. It never loses a memory: user writes do not pass through here.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

from agentmem.stores import RecordStore
from agentmem.stores._utility_sql import RetrievalRow
from agentmem.stores.capabilities import UtilityLedger

logger = logging.getLogger(__name__)


class RecallLog:
    """Recall counts and retrieval records of one store, written behind in batches."""

    def __init__(self, store: RecordStore, flush_s: float) -> None:
        self._store = store
        self._flush_s = flush_s
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one batch at a time, in order
        self._wake = threading.Event()
        self._recalls: dict[str, tuple[int, float]] = {}
        self._retrievals: list[RetrievalRow] = []
        self._thread: threading.Thread | None = None
        self._thread_pid = 0
        self._closed = False

    @property
    def pending(self) -> int:
        """How many counts and retrieval records wait to be written."""
        with self._lock:
            return len(self._recalls) + len(self._retrievals)

    def count_recalls(self, ids: Sequence[str], at: datetime) -> None:
        """Count one recall of each of ``ids`` at ``at``."""
        stamp = at.timestamp()
        with self._lock:
            for rid in dict.fromkeys(ids):
                count, last = self._recalls.get(rid, (0, stamp))
                self._recalls[rid] = (count + 1, max(last, stamp))
        self._after_add()

    def record_retrieval(self, rid: str, scope: str, ids: Sequence[str], at: float) -> None:
        """Remember that the retrieval ``rid`` showed ``ids`` to ``scope``."""
        with self._lock:
            self._retrievals.append(RetrievalRow(rid, scope, tuple(ids), at))
        self._after_add()

    def flush(self) -> None:
        """Write everything pending now, on the caller's thread."""
        with self._write_lock:
            with self._lock:
                recalls, self._recalls = self._recalls, {}
                retrievals, self._retrievals = self._retrievals, []
            try:
                if recalls:
                    self._store.count_recalls(
                        {i: (n, datetime.fromtimestamp(t, UTC)) for i, (n, t) in recalls.items()}
                    )
                    recalls = {}
                if retrievals and isinstance(self._store, UtilityLedger):
                    self._store.record_retrievals(retrievals)
            except BaseException:
                self._requeue(recalls, retrievals)  # kept for the next batch
                raise

    def _requeue(
        self, recalls: dict[str, tuple[int, float]], retrievals: list[RetrievalRow]
    ) -> None:
        with self._lock:
            for rid, (count, last) in recalls.items():
                now_count, now_last = self._recalls.get(rid, (0, last))
                self._recalls[rid] = (count + now_count, max(last, now_last))
            self._retrievals[:0] = retrievals

    def close(self) -> None:
        """Stop the writer thread and write what is pending."""
        self._closed = True
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
        self.flush()

    def _after_add(self) -> None:
        if self._flush_s <= 0 or self._closed:
            self.flush()
            return
        if self._thread is None or self._thread_pid != os.getpid():
            with self._lock:
                if self._thread is None or self._thread_pid != os.getpid():  # a forked child
                    self._thread_pid = os.getpid()  # has the attribute but not the thread
                    self._thread = threading.Thread(
                        target=self._run, name="agentmem-recall-log", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self._flush_s)
            try:
                self.flush()
            except Exception:  # a failed batch must not stop the writer
                logger.exception("writing recall counts and retrieval records failed")


__all__ = ["RecallLog"]
