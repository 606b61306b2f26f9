"""Helpers shared by the integration tests: a counting embedder and child-process plumbing."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from agentmem.embedders import Embedder

SCRIPTS = Path(__file__).resolve().parent
REPO_ROOT = SCRIPTS.parents[2]


class CountingEmbedder(Embedder):
    """Wraps an embedder, counting document embeddings and remembering query vectors.

    It keeps the wrapped embedder's ``name``, so it shares the store's embedding cache with it.
    Query vectors are memoised by text (``prime`` embeds many in one batch): tests that search
    the same few queries again and again then pay for each query once. With
    ``remember_documents`` document vectors are memoised too (the same vectors, computed once
    per test module instead of once per test); they are still counted.
    """

    def __init__(self, inner: Embedder, *, remember_documents: bool = False) -> None:
        self.inner = inner
        self.name = inner.name
        self.documents_embedded: list[str] = []
        self._queries: dict[str, np.ndarray] = {}
        self._documents: dict[str, np.ndarray] | None = {} if remember_documents else None

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.documents_embedded.extend(texts)
        if self._documents is None:
            return self.inner.embed_documents(texts)
        todo = [t for t in dict.fromkeys(texts) if t not in self._documents]
        if todo:
            self._documents.update(zip(todo, self.inner.embed_documents(todo), strict=True))
        return (
            np.stack([self._documents[t] for t in texts])
            if texts
            else self.inner.embed_documents(texts)
        )

    def embed_query(self, text: str) -> np.ndarray:
        if text not in self._queries:
            self._queries[text] = self.inner.embed_query(text)
        return self._queries[text]

    def prime(self, queries: Sequence[str]) -> None:
        """Embed these queries now, in one batch (not counted as document embeddings)."""
        todo = [q for q in dict.fromkeys(queries) if q not in self._queries]
        if todo:
            self._queries.update(zip(todo, self.inner.embed_documents(todo), strict=True))


class Child:
    """A Python child process running a script from this folder, its stdout read by a thread."""

    def __init__(self, script: str, *args: str) -> None:
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, str(SCRIPTS / script), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
            env=env,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._errors: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        # Drain stderr too, so a chatty child never blocks on a full pipe.
        self._err_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._err_reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._errors.append(line)

    def readline(self, timeout: float) -> str:
        """The next line the child printed; fails the test if none comes in time."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"child printed nothing for {timeout} s{self._stderr()}") from None
        if line is None:
            raise AssertionError(f"child exited ({self.proc.wait()}) early{self._stderr()}")
        return line

    def wait_for(self, expected: str, timeout: float) -> None:
        """Read until a line equal to ``expected``."""
        deadline = time.monotonic() + timeout
        while (line := self.readline(max(deadline - time.monotonic(), 0.01))) != expected:
            pass
        assert line == expected

    def remaining_lines(self, timeout: float = 30.0) -> list[str]:
        """Every line still unread, once the child has exited (after a kill, say)."""
        self.proc.wait(timeout=timeout)
        self._reader.join(timeout=timeout)
        lines = []
        while (line := self._lines.get(timeout=timeout)) is not None:
            lines.append(line)
        return lines

    def _stderr(self) -> str:
        if self.proc.poll() is None:
            return ""
        self._err_reader.join(timeout=5)
        return f"; its stderr:\n{''.join(self._errors)[-4000:]}"

    def send(self, text: str) -> None:
        """Write to the child's stdin."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def end_input(self) -> None:
        """Close the child's stdin (it reads end of file)."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def kill(self) -> None:
        """SIGKILL the child (no cleanup of any kind runs in it) and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)

    def close(self) -> None:
        """Kill the child if it still runs and close its pipes."""
        self.kill()
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
