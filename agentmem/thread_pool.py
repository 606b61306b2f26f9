"""A thread pool made on first use in each process, so a fork never inherits a dead one.

A ``ThreadPoolExecutor`` copied into a forked child (a Celery prefork pool process, a
``multiprocessing`` fork) keeps its queue but not its threads: work submitted there would wait
forever. :class:`ProcessLocalPool` hands out a pool made in the calling process.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor


class ProcessLocalPool:
    """A lazily made ``ThreadPoolExecutor`` of ``workers`` threads, one per process."""

    def __init__(self, workers: int, name: str) -> None:
        self.workers = workers
        self.name = name
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def get(self) -> ThreadPoolExecutor:
        """This process's pool, made on the first call in it."""
        pid = os.getpid()
        if self._pool is None or self._pid != pid:
            with self._lock:
                if self._pool is None or self._pid != pid:
                    self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix=self.name)
                    self._pid = pid
        return self._pool

    def shutdown(self) -> None:
        """Stop this process's pool (queued work still runs); the next :meth:`get` makes one."""
        with self._lock:
            if self._pool is not None and self._pid == os.getpid():
                self._pool.shutdown(wait=False)
            self._pool = None


__all__ = ["ProcessLocalPool"]
