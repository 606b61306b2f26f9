"""A child process that tries to open an embedded home another process holds.

Usage: ``python try_open.py HOME``. Prints one JSON line: the error's class names (its MRO),
its message and how long the attempt took; exits 3 when the open failed with an agentmem
error, 0 when it (wrongly) succeeded.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from agentmem import AgentMemError, Memory


def main() -> int:
    """Try to open the home and add one memory; report what happened as JSON."""
    start = time.monotonic()
    try:
        with Memory(home=sys.argv[1]) as mem:
            mem.add("written by the second process", user_id="intruder")
    except AgentMemError as exc:
        report = {
            "errors": [cls.__name__ for cls in type(exc).__mro__],
            "message": str(exc),
            "elapsed_s": time.monotonic() - start,
        }
        print(json.dumps(report), flush=True)
        return 3
    print(json.dumps({"errors": [], "message": "", "elapsed_s": time.monotonic() - start}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
