"""Concurrent embedding calls share model calls (agentmem.embedders.coalesce); every caller
gets exactly its own rows, errors reach every caller of the batch, and a lone call runs at
once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from agentmem.embedders import Embedder
from agentmem.embedders.coalesce import CoalescedCalls


def _vectors(texts: list[str]) -> np.ndarray:
    """A vector per text that says which text it is."""
    return np.array([[float(len(t)), float(sum(map(ord, t)))] for t in texts], dtype=np.float32)


class GatedModel:
    """A fake model whose first call waits until the test opens the gate."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.batches: list[list[str]] = []
        self.fail_on = fail_on

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.batches.append(list(texts))
        if len(self.batches) == 1:
            self.entered.set()
            assert self.gate.wait(30)
        if self.fail_on is not None and self.fail_on in texts:
            raise RuntimeError(f"model failed on {self.fail_on!r}")
        return _vectors(texts)


def _wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_a_lone_call_runs_at_once() -> None:
    calls = CoalescedCalls(_vectors, max_texts=8)
    out = calls(["a", "bb"])
    np.testing.assert_array_equal(out, _vectors(["a", "bb"]))
    assert calls.model_calls == 1


def test_calls_that_arrive_while_the_model_runs_share_the_next_model_call() -> None:
    model = GatedModel()
    calls = CoalescedCalls(model, max_texts=64)
    texts = [[f"query {i}"] if i % 2 else [f"doc {i}", f"doc {i} b"] for i in range(10)]
    with ThreadPoolExecutor(max_workers=11) as pool:
        first = pool.submit(calls, ["first"])
        assert model.entered.wait(30)
        rest = [pool.submit(calls, t) for t in texts]
        _wait_until(lambda: calls.queued == len(texts))
        model.gate.set()
        np.testing.assert_array_equal(first.result(), _vectors(["first"]))
        for t, future in zip(texts, rest, strict=True):
            np.testing.assert_array_equal(future.result(), _vectors(t))
    assert calls.model_calls == 2  # the first alone, then the ten together
    assert sorted(model.batches[1]) == sorted(x for t in texts for x in t)


def test_a_batch_holds_at_most_max_texts_and_a_larger_call_runs_on_its_own() -> None:
    model = GatedModel()
    calls = CoalescedCalls(model, max_texts=4)
    with ThreadPoolExecutor(max_workers=8) as pool:
        first = pool.submit(calls, ["first"])
        assert model.entered.wait(30)
        small = [pool.submit(calls, [f"q{i}", f"q{i}'"]) for i in range(3)]
        _wait_until(lambda: calls.queued == 3)
        big = calls([f"d{i}" for i in range(5)])  # more than max_texts: not queued
        np.testing.assert_array_equal(big, _vectors([f"d{i}" for i in range(5)]))
        model.gate.set()
        first.result()
        for i, future in enumerate(small):
            np.testing.assert_array_equal(future.result(), _vectors([f"q{i}", f"q{i}'"]))
    assert all(len(b) <= 4 for b in model.batches if not b[0].startswith("d"))
    assert calls.model_calls == 4  # first, big, then the 6 queued texts in two batches


def test_a_model_error_reaches_every_caller_of_its_batch_and_the_next_call_works() -> None:
    model = GatedModel(fail_on="bad")
    calls = CoalescedCalls(model, max_texts=64)
    with ThreadPoolExecutor(max_workers=4) as pool:
        first = pool.submit(calls, ["first"])
        assert model.entered.wait(30)
        bad = pool.submit(calls, ["bad"])
        good = pool.submit(calls, ["good"])
        _wait_until(lambda: calls.queued == 2)
        model.gate.set()
        first.result()
        for future in (bad, good):
            with pytest.raises(RuntimeError, match="model failed on 'bad'"):
                future.result()
    np.testing.assert_array_equal(calls(["good"]), _vectors(["good"]))


def test_concurrent_queries_on_the_real_model_get_their_own_vectors(embedder: Embedder) -> None:
    texts = [f"Where did person {i} travel in {2000 + i}?" for i in range(24)]
    alone = [embedder.embed_query(t) for t in texts]
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(embedder.embed_query, texts))
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
