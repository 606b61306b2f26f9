"""A child process that writes to an embedded home, for the crash and two-process tests.

Usage: ``python writer.py HOME MODE [N]``

- ``add``: add one memory at a time forever, printing each returned id on its own line. With
  ``N`` > 0 the texts cycle through ``N`` sentences: after the first ``N`` every embedding is a
  cache hit, so the loop spends its time in the store and the index, where a kill hurts most.
- ``add_many``: add batches of ``N`` (default 8) distinct memories forever, printing each
  batch's ids on one line (one short write, so a batch is printed whole or not at all).
- ``hold``: print ``OPEN``, then add one memory per line read from stdin (printing its id);
  on end of input close the Memory and print ``CLOSED``.

An id is printed only after the call that stored it has returned: every printed id is a write
agentmem acknowledged, and must survive a SIGKILL.
"""

from __future__ import annotations

import itertools
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from agentmem import Memory

USER = "writer"
_WORDS = [
    "apple",
    "harbour",
    "violin",
    "glacier",
    "lantern",
    "meadow",
    "copper",
    "falcon",
    "orchid",
    "canyon",
    "pepper",
    "tunnel",
    "saddle",
    "comet",
    "walnut",
    "ribbon",
    "marble",
    "thunder",
    "cactus",
    "velvet",
]


def text_for(i: int) -> str:
    """A distinct sentence for record ``i``, so a search for it finds it first."""
    n = len(_WORDS)
    return (
        f"Entry {i}: the {_WORDS[i % n]} near the {_WORDS[(i * 7 + 3) % n]} "
        f"reminded us of a {_WORDS[(i * 13 + 5) % n]} ({i * 31 % 997})"
    )


def _emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> int:
    """Run the mode named on the command line."""
    home, mode = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    counter = itertools.count()
    with Memory(home=home) as mem:
        _emit("OPEN")
        if mode == "add":
            for i in counter:
                _emit(mem.add(text_for(i % n if n else i), user_id=USER, metadata={"i": i}).id)
        elif mode == "add_many":
            batch = n or 8
            while True:
                items = [
                    {"text": text_for(i), "metadata": {"i": i}}
                    for i in (next(counter) for _ in range(batch))
                ]
                _emit(" ".join(r.id for r in mem.add_many(items, user_id=USER)))
        elif mode == "hold":
            for _line in sys.stdin:
                i = next(counter)
                _emit(mem.add(text_for(i), user_id=USER, metadata={"i": i}).id)
        else:
            raise SystemExit(f"unknown mode {mode!r}")
    _emit("CLOSED")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
