"""Short-term buffer latency: append and window, in-process and on Redis.

For each backend, in a fresh Memory (temporary home):

- **append**: ``--appends`` turns (default 2,000) appended to one thread through
  ``ThreadBuffer.append``, one at a time, with topic segmentation off and a budget no append
  reaches, so no flush runs: validation, token counting (tiktoken) and the backend's atomic
  append (on Redis one ``MULTI``: ``RPUSH``, ``INCRBY``, ``EXPIRE`` x2);
- **append + topic check**: ``--topic-appends`` turns (default 300) with topic segmentation on
  (threshold -1, so the similarity is computed but never flushes): adds embedding each new turn
  with the configured model (all-MiniLM-L6-v2) and comparing it with the turns before;
- **window**: ``--windows`` calls (default 500) of ``window(2000)`` on a thread filled to the
  default budget (2,000 tokens), as ``context()`` reads it.

Each operation is timed on its own (``perf_counter``); p50 / p95 / mean / max in milliseconds.
Redis is the server at ``--redis-url`` (default ``AGENTMEM_TEST_REDIS_URL`` or
redis://127.0.0.1:6379/0) under a fresh key prefix, deleted afterwards; it is skipped, and
said so, when unreachable. Writes its section of RESULTS.md and ``results/buffers.json``.

Run: ``python -m benchmarks.buffers``
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agentmem import BackendUnavailable, Memory, Settings
from agentmem.embedders import Embedder
from benchmarks._common import (
    PROJECT_ROOT,
    RESULTS_DIR,
    RESULTS_MD,
    command_line,
    default_embedder,
    latency_summary,
    machine_info,
    machine_line,
    markdown_table,
    now_utc,
    offline,
    project_path,
    report_console,
    rich_table,
    write_json,
    write_section,
)

DEFAULT_JSON = RESULTS_DIR / "buffers.json"
CONVERSATION = PROJECT_ROOT / "examples" / "data" / "conversation.json"
HEADERS = ["backend", "operation", "n", "p50 ms", "p95 ms", "mean ms", "max ms"]


def sample_turns(n: int) -> list[tuple[str, str]]:
    """``n`` (role, content) pairs: the demo conversation's turns, numbered, cycled."""
    sessions = json.loads(CONVERSATION.read_text(encoding="utf-8"))["sessions"]
    base = [
        ("user" if t["speaker"] != "Assistant" else "assistant", t["text"])
        for s in sessions
        for t in s["turns"]
    ]
    return [(base[i % len(base)][0], f"({i}) {base[i % len(base)][1]}") for i in range(n)]


def timed(calls: int, fn: Callable[[int], object]) -> list[float]:
    """Seconds each of ``calls`` calls of ``fn(i)`` took."""
    samples = []
    for i in range(calls):
        start = time.perf_counter()
        fn(i)
        samples.append(time.perf_counter() - start)
    return samples


def open_memory(home: Path, url: str, prefix: str, embedder: Embedder | None, **buf: Any) -> Memory:
    """A Memory whose buffers live at ``url`` (the index in memory: only buffers are timed)."""
    settings = Settings.load(
        home=home,
        vectors_url="qdrant-local://:memory:",
        buffer_url=url,
        buffer={"key_prefix": prefix, **buf},
    )
    return Memory(settings=settings, embedder=embedder)


def measure(
    backend: str, url: str, args: argparse.Namespace, embedder: Embedder | None
) -> list[dict[str, Any]]:
    """Every operation's latency summary on one backend."""
    prefix = f"agentmem-bench:{uuid.uuid4().hex[:8]}:"
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        plain = open_memory(Path(tmp) / "plain", url, prefix, embedder, topic_shift_threshold=None)
        try:
            turns = sample_turns(args.appends)
            buf = plain.buffer(thread_id="append", user_id="bench", max_tokens=10**9)
            buf.append("user", "warm-up")  # connects, loads the tokenizer
            samples = timed(len(turns), lambda i: buf.append(*turns[i]))
            rows.append({"backend": backend, "operation": "append", **latency_summary(samples)})

            full = plain.buffer(thread_id="window", user_id="bench", max_tokens=10**9)
            for role, content in sample_turns(10_000):
                if full.tokens() >= 2000:
                    break
                full.append(role, content)
            samples = timed(args.windows, lambda i: full.window(2000))
            rows.append(
                {
                    "backend": backend,
                    "operation": f"window(2000), {len(full)} turns live",
                    **latency_summary(samples),
                }
            )
            for b in (buf, full):
                b.clear()
        finally:
            plain.close()

        topical = open_memory(
            Path(tmp) / "topic", url, prefix, embedder, topic_shift_threshold=-1.0
        )
        try:
            turns = sample_turns(args.topic_appends)
            buf = topical.buffer(thread_id="topic", user_id="bench", max_tokens=10**9)
            for n in range(topical.settings.buffer.min_segment_turns + 1):
                buf.append("user", f"warm-up turn {n}")  # loads the model
            samples = timed(len(turns), lambda i: buf.append(*turns[i]))
            rows.append(
                {
                    "backend": backend,
                    "operation": "append + topic check (embeds the turn)",
                    **latency_summary(samples),
                }
            )
            buf.clear()
        finally:
            topical.close()
    return rows


def redis_reachable(url: str) -> str | None:
    """None when Redis answers at ``url``, else why not."""
    from agentmem.buffers.redis import RedisBufferBackend

    backend = RedisBufferBackend(url, timeout=2.0, retries=0)
    try:
        backend.setup()
    except BackendUnavailable as exc:
        return str(exc)
    finally:
        backend.close()
    return None


def render_markdown(results: dict[str, Any]) -> str:
    """The RESULTS.md section."""
    rows = [
        [r["backend"], r["operation"], r["n"], r["p50_ms"], r["p95_ms"], r["mean_ms"], r["max_ms"]]
        for r in results["rows"]
    ]
    skipped = results.get("redis_skipped")
    note = f"\n\nRedis was not measured: {skipped}" if skipped else ""
    return (
        "## Short-term buffers: append and window latency\n\n"
        f"Run {results['run_at']} with `{results['command']}` in {results['seconds']:.0f} s.\n"
        f"Machine: {machine_line(results['machine'])}.\n\n"
        "One thread per operation, one Memory per backend (Redis: "
        f"{results['redis_url']}, on this machine, over loopback). `append` has topic "
        "segmentation off and no flush (validation, token count, the atomic append); "
        "`append + topic check` also embeds the new turn with all-MiniLM-L6-v2 and compares "
        "it with the turns before it (never flushing); `window(2000)` reads the most recent "
        "turns that fit 2,000 tokens from a thread filled to the default budget.\n\n"
        + markdown_table(HEADERS, rows)
        + note
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.buffers", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--windows", type=int, default=500)
    parser.add_argument("--topic-appends", type=int, default=300)
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("AGENTMEM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    parser.add_argument("--out", type=Path, default=RESULTS_MD, help="Markdown results file")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="JSON results file")
    return parser


def main(argv: Sequence[str] | None = None, *, embedder: Embedder | None = None) -> dict[str, Any]:
    """Measure, print the table, write RESULTS.md's section and the JSON; return the results."""
    offline()
    args = build_parser().parse_args(argv)
    console = report_console()
    info = machine_info()
    started = time.perf_counter()
    embedder = default_embedder(embedder)
    rows = measure("in-process", "memory://", args, embedder)
    skipped = redis_reachable(args.redis_url)
    if skipped is None:
        rows += measure("redis", args.redis_url, args, embedder)
    else:
        console.print(f"[yellow]Redis skipped[/]: {skipped}")
    results: dict[str, Any] = {
        "run_at": now_utc(),
        "command": command_line("benchmarks.buffers", argv),
        "seconds": time.perf_counter() - started,
        "machine": info,
        "redis_url": args.redis_url,
        "redis_skipped": skipped,
        "rows": rows,
    }
    table = [
        [r["backend"], r["operation"], r["n"], r["p50_ms"], r["p95_ms"], r["mean_ms"], r["max_ms"]]
        for r in rows
    ]
    console.print(rich_table("buffer latency (ms)", HEADERS, table))
    write_section(project_path(args.out), "buffers", render_markdown(results))
    write_json(project_path(args.json), results)
    console.print(f"wrote {project_path(args.out)} and {project_path(args.json)}")
    return results


if __name__ == "__main__":
    main()
