"""Concurrent small embedding calls run as one model call.

A server thread per request embeds one query or one memory at a time. Run side by side, those
calls split the CPU between many small forward passes, each paying the model's fixed cost; a
batch of them costs little more than one. :class:`CoalescedCalls` queues the calls that arrive
while the model is busy and runs them together when it is free: the caller that finds it free
runs the queue (its own call included) and hands every caller its rows. A lone caller runs its
call at once, so single-threaded use is unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np


class _Call:
    __slots__ = ("error", "texts", "vectors")

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.vectors: np.ndarray | None = None
        self.error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.vectors is not None or self.error is not None


class CoalescedCalls:
    """Run ``embed`` on the texts of concurrent calls together, up to ``max_texts`` per model
    call. A call of more than ``max_texts`` texts runs on its own, alongside, as before."""

    def __init__(self, embed: Callable[[list[str]], np.ndarray], max_texts: int = 64) -> None:
        if max_texts < 1:
            raise ValueError(f"max_texts must be at least 1, got {max_texts}")
        self._embed = embed
        self.max_texts = max_texts
        self._cv = threading.Condition()
        self._queue: list[_Call] = []
        self._busy = False
        self.model_calls = 0
        """How many times ``embed`` ran (for tests and benchmarks)."""

    @property
    def queued(self) -> int:
        """Calls waiting for the model now."""
        with self._cv:
            return len(self._queue)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) > self.max_texts:
            self.model_calls += 1
            return self._embed(list(texts))
        call = _Call(list(texts))
        with self._cv:
            self._queue.append(call)
            while self._busy and not call.done:
                self._cv.wait()
            if call.done:
                return self._result(call)
            self._busy = True
        try:
            while True:
                with self._cv:
                    if call.done:
                        break
                    batch = self._take()
                self._run(batch)
                with self._cv:
                    self._cv.notify_all()
        finally:
            with self._cv:
                self._busy = False
                self._cv.notify_all()
        return self._result(call)

    def _take(self) -> list[_Call]:
        """The oldest queued calls whose texts fit ``max_texts`` (at least one)."""
        batch: list[_Call] = []
        size = 0
        while self._queue and (not batch or size + len(self._queue[0].texts) <= self.max_texts):
            call = self._queue.pop(0)
            batch.append(call)
            size += len(call.texts)
        return batch

    def _run(self, batch: list[_Call]) -> None:
        try:
            self.model_calls += 1
            vectors = self._embed([t for call in batch for t in call.texts])
        except BaseException as exc:  # every caller of the batch gets the model's error
            for call in batch:
                call.error = exc
            return
        start = 0
        for call in batch:
            call.vectors = vectors[start : start + len(call.texts)]
            start += len(call.texts)

    @staticmethod
    def _result(call: _Call) -> np.ndarray:
        if call.error is not None:
            raise call.error
        assert call.vectors is not None
        return call.vectors


__all__ = ["CoalescedCalls"]
