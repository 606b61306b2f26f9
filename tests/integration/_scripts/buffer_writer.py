"""A child process appending turns to one Redis-backed thread, for the concurrent-writers test.

Usage: ``python buffer_writer.py HOME REDIS_URL KEY_PREFIX WRITER N``

Opens a Memory in HOME whose buffers live in Redis under KEY_PREFIX, prints ``READY``, reads
a start time (epoch seconds) from stdin and sleeps until then (so every writer starts at once),
appends N turns ``writer W turn I`` to the thread ``shared`` of user ``team`` through the public
API, pausing half a millisecond between appends so the writers overlap even on a busy machine,
and prints ``DONE``. Topic
segmentation is off and the budget is huge, so nothing is flushed and no embedding model is
needed: the tiny hashing embedder below only satisfies the vector index's dimension.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Sequence

import numpy as np

from agentmem import Memory, Settings
from agentmem.embedders import Embedder, normalise

THREAD = {"thread_id": "shared", "user_id": "team"}


class HashEmbedder(Embedder):
    """16-d vectors from a hash of the text (never called here; the index needs a size)."""

    name = "test-hash-16"

    @property
    def dim(self) -> int:
        return 16

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[:16], np.uint8) for t in texts]
        return normalise(np.asarray(rows, dtype=np.float32).reshape(len(texts), 16) + 1)


def main() -> int:
    """Append N turns as writer W once told to start."""
    home, url, prefix, writer, n = sys.argv[1:6]
    settings = Settings.load(
        home=home,
        vectors_url="qdrant-local://:memory:",
        buffer_url=url,
        buffer={"key_prefix": prefix, "topic_shift_threshold": None, "max_tokens": 10_000_000},
    )
    with Memory(settings=settings, embedder=HashEmbedder()) as mem:
        buf = mem.buffer(**THREAD)
        print("READY", flush=True)
        start = float(sys.stdin.readline())
        time.sleep(max(start - time.time(), 0))
        for i in range(int(n)):
            buf.append("assistant", f"writer {writer} turn {i}", name=f"w{writer}")
            time.sleep(0.0005)
        print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
