"""Embedders old and new in one run: torch (sentence-transformers) against ONNX Runtime.

For all-MiniLM-L6-v2 run by torch (``minilm-torch``, the embedder before issue 24), by ONNX
Runtime with int8 weights (``minilm``, the default) and by ONNX Runtime in fp32
(``minilm-fp32``), on this machine, in this process, one after the other:

- embedding throughput on LoCoMo turns and on short synthetic texts (texts/s, model only);
- add with embedding: ``Memory.add_many`` of 1,000 short synthetic memories into a fresh home,
  every vector computed by the model (records/s);
- search with the query embedding at ``--memories`` memories (p50/p95, each query new to the
  embedder);
- the real command line: ``agentmem search`` end to end in a fresh process (median of
  ``--cli-runs``), and the first REST request after ``agentmem serve`` starts;
- with ``--dense-recall``: LoCoMo evidence recall@10 of each embedder's vectors alone;
- with ``--locomo``: LoCoMo evidence recall@10 and add throughput (benchmarks.locomo, no peers)
  per embedder, in the same run.

Timings are wall clock on a shared machine: the load average is written beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import (
    PROJECT_ROOT,
    RESULTS_DIR,
    RESULTS_MD,
    command_line,
    latency_summary,
    machine_info,
    machine_line,
    markdown_table,
    now_utc,
    offline,
    rate,
    report_console,
    rich_table,
    write_json,
    write_section,
)

DEFAULT_JSON = RESULTS_DIR / "embedding.json"
LOCOMO = Path("/work/shared/data/locomo/locomo10.json")
FIRST = 1000
SPECS = ("minilm-torch", "minilm", "minilm-int8-weights", "minilm-fp32")
LABELS = {
    "minilm-torch": "torch fp32 (sentence-transformers)",
    "minilm": "ONNX Runtime, int8 compute (default)",
    "minilm-int8-weights": "ONNX Runtime, int8 weights (default before)",
    "minilm-fp32": "ONNX Runtime, fp32",
}
_VOCABULARY = (
    "alice bob carol dave met moved to lisbon paris berlin tokyo likes hates coffee tea "
    "running chess music painting on monday tuesday in may june the project deadline is "
    "friday her sister adopted a dog named rex he bought a red bike yesterday"
)
_WORDS = _VOCABULARY.split(" ")


def _pythonpath() -> str:
    """This checkout first, then whatever PYTHONPATH already names (a worktree's packages)."""
    return os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def synthetic_texts(n: int, seed: int = 24) -> list[str]:
    """Short memory-like sentences (6-14 words), all distinct."""
    rng = random.Random(seed)
    return [
        f"{' '.join(rng.choice(_WORDS) for _ in range(rng.randint(6, 14)))} #{i}" for i in range(n)
    ]


def locomo_turns(path: Path, n: int) -> list[str]:
    """The first ``n`` LoCoMo turns as the benchmark stores them (speaker: text)."""
    turns: list[str] = []
    for conversation in json.loads(path.read_text()):
        sessions = conversation["conversation"]
        for key in sorted(k for k in sessions if k.startswith("session_") and "date" not in k):
            turns += [f"{t['speaker']}: {t['text']}" for t in sessions[key]]
    return turns[:n]


def _embedder(spec: str) -> Any:
    from agentmem.embedders import embedder_from_spec

    return embedder_from_spec(spec, precision="fp32")


def throughput(spec: str, texts: Sequence[str]) -> dict[str, float]:
    """Texts/s of the model alone (after one warm-up call that loads it)."""
    embedder = _embedder(spec)
    started = time.perf_counter()
    embedder.embed_query("warm up")
    load_s = time.perf_counter() - started
    started, cpu = time.perf_counter(), time.process_time()
    embedder.embed_documents(list(texts))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "load_s": load_s,
        "texts_per_s": rate(len(texts), seconds),
        # CPU seconds of every thread: the work done, which the machine's load does not inflate
        "texts_per_cpu_s": rate(len(texts), cpu),
        "load": _load(),
    }


def add_and_search(spec: str, texts: Sequence[str], queries: Sequence[str]) -> dict[str, Any]:
    """records/s of add_many with embedding into a fresh home, then search latency with the
    query embedding (every query new to the embedder)."""
    from agentmem import Memory, Settings

    embedder = _embedder(spec)
    embedder.embed_query("warm up")
    with (
        tempfile.TemporaryDirectory(prefix="agentmem-embed-") as home,
        Memory(settings=Settings.load(home=home), embedder=embedder) as mem,
    ):
        started, cpu = time.perf_counter(), time.process_time()
        first_s = 0.0  # the first 1,000 memories: the add target is set at 1,000
        for start in range(0, len(texts), 100):
            batch = [{"text": t} for t in texts[start : start + 100]]
            mem.add_many(batch, user_id=f"u{start // 100 % 10}")
            if start + 100 == FIRST:
                first_s = time.perf_counter() - started
        add_s, add_cpu = time.perf_counter() - started, time.process_time() - cpu
        samples = []
        for i, query in enumerate(queries):
            started = time.perf_counter()
            mem.search(query, user_id=f"u{i % 10}", k=10)
            samples.append(time.perf_counter() - started)
    return {
        "records": len(texts),
        "records_per_s": rate(len(texts), add_s),
        "records_per_cpu_s": rate(len(texts), add_cpu),
        "first_1000_records_per_s": rate(FIRST, first_s) if first_s else None,
        "search": latency_summary(samples),
        "load": _load(),
    }


def cli_search(spec: str, runs: int) -> dict[str, Any]:
    """Wall seconds of ``agentmem search`` in a fresh process, on a home of 200 memories."""
    env = {**os.environ, "AGENTMEM_EMBEDDER": spec, "PYTHONPATH": _pythonpath()}
    agentmem = [sys.executable, "-m", "agentmem"]
    with tempfile.TemporaryDirectory(prefix="agentmem-cli-") as home:
        _seed_home(home, spec)
        seconds, cpu = [], []
        for i in range(runs):
            query = f"who moved to lisbon in week {i}?"  # new to every cache
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            done = subprocess.run(
                [*agentmem, "--home", home, "search", query, "--user", "u0"],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            seconds.append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            if done.returncode != 0:
                raise RuntimeError(f"agentmem search failed: {done.stderr}")
    return {
        "median_s": statistics.median(seconds),
        "median_cpu_s": statistics.median(cpu),
        "runs": seconds,
        "load": _load(),
    }


def _seed_home(home: str, spec: str) -> None:
    from agentmem import Memory, Settings

    with Memory(settings=Settings.load(home=home, embedder=spec)) as mem:
        mem.add_many([{"text": t} for t in synthetic_texts(200)], user_id="u0")


def first_rest_request(spec: str) -> dict[str, Any]:
    """Seconds from starting ``agentmem serve`` to its port accepting connections, and of the
    first search request after that (the model loads on it)."""
    from agentmem import Memory, Settings

    with tempfile.TemporaryDirectory(prefix="agentmem-rest-") as home:
        _seed_home(home, spec)
        with Memory(settings=Settings.load(home=home, embedder=spec)) as mem:
            from agentmem_server import create_key

            token = create_key(mem.backends.store, org_id="bench", user_ids=("u0",)).token
        port = _free_port()
        env = {**os.environ, "AGENTMEM_EMBEDDER": spec, "PYTHONPATH": _pythonpath()}
        started = time.perf_counter()
        server = subprocess.Popen(
            [sys.executable, "-m", "agentmem", "--home", home, "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if server.poll() is not None or time.perf_counter() - started > 120:
                        raise RuntimeError("agentmem serve did not start") from None
                    time.sleep(0.05)
            listening_s = time.perf_counter() - started
            body = json.dumps({"user_id": "u0", "query": "who moved to lisbon?"}).encode()
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/memories/search",
                data=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            before = time.perf_counter()
            with urllib.request.urlopen(request, timeout=120) as response:
                response.read()
            first_s = time.perf_counter() - before
            before = time.perf_counter()
            with urllib.request.urlopen(request, timeout=120) as response:
                response.read()
            second_s = time.perf_counter() - before
        finally:
            server.terminate()
            server.wait(timeout=30)
    return {
        "listening_s": listening_s,
        "first_request_s": first_s,
        "second_request_s": second_s,
        "load": _load(),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def locomo_recall(spec: str, conversations: str) -> dict[str, Any]:
    """LoCoMo evidence recall@10 and add throughput of agentmem with this embedder."""
    from benchmarks import locomo

    with tempfile.TemporaryDirectory(prefix="agentmem-locomo-embed-") as tmp:
        out = Path(tmp)
        results = locomo.main(
            [
                "--peers",
                "none",
                "--no-context",
                "--k",
                "10",
                "--conversations",
                conversations,
                "--out",
                str(out / "r.md"),
                "--json",
                str(out / "r.json"),
            ],
            embedder=_embedder(spec),
        )
    run = results["systems"]["agentmem"]
    return {
        "recall@10": run["metrics"]["overall"]["recall@10"],
        "add_records_per_s": run["add"]["records_per_s"],
        "load": _load(),
    }


def dense_recall(spec: str, conversations: str) -> dict[str, Any]:
    """LoCoMo evidence recall@10 of the dense vectors alone (turns as ``speaker: text``,
    exact cosine top-10 per question): the embedder's own share of recall, no fusion."""
    import numpy as np

    from benchmarks import locomo

    embedder = _embedder(spec)
    scores: list[float] = []
    for conversation in locomo.load_locomo(LOCOMO, locomo.parse_conversations(conversations)):
        ids = [t.dia_id for t in conversation.turns]
        docs = embedder.embed_documents([f"{t.speaker}: {t.text}" for t in conversation.turns])
        queries = embedder.embed_documents([q.text for q in conversation.questions])
        top = np.argsort(-(queries @ docs.T), axis=1)[:, :10]
        for question, row in zip(conversation.questions, top, strict=True):
            scores.append(locomo.recall_at([ids[i] for i in row], question.evidence, 10))
    return {"recall@10": float(np.mean(scores)), "questions": len(scores), "load": _load()}


def _each(specs: Sequence[str], what: str, fn: Callable[[str], Any]) -> dict[str, Any]:
    console = report_console()
    out: dict[str, Any] = {}
    for spec in specs:
        console.print(f"{what}: {spec} (load {_load()})")
        out[spec] = fn(spec)
        console.print(f"  {spec}: {out[spec]}")  # in the log, should a later stage fail
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.embedding", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--specs", nargs="+", default=list(SPECS))
    parser.add_argument("--texts", type=int, default=1000, help="texts per throughput run")
    parser.add_argument("--memories", type=int, default=1000, help="memories added per embedder")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--cli-runs", type=int, default=5)
    parser.add_argument("--locomo", default=None, help="conversations for recall, e.g. 0-9")
    parser.add_argument(
        "--dense-recall", default=None, help="conversations for dense-only recall, e.g. 0-1"
    )
    parser.add_argument("--skip", nargs="*", default=[], help="throughput add cli rest")
    parser.add_argument("--out", type=Path, default=RESULTS_MD)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the comparison and write its section of RESULTS.md and its JSON."""
    offline()
    args = build_parser().parse_args(argv)
    specs = list(args.specs)
    results: dict[str, Any] = {
        "benchmark": "embedding",
        "date": now_utc(),
        "command": command_line("benchmarks.embedding", argv),
        "machine": machine_info(),
        "load_at_start": _load(),
    }
    synthetic = synthetic_texts(args.texts)
    if "throughput" not in args.skip:
        turns = locomo_turns(LOCOMO, args.texts) if LOCOMO.exists() else synthetic
        results["throughput_locomo"] = _each(specs, "embed LoCoMo", lambda s: throughput(s, turns))
        results["throughput_short"] = _each(
            specs, "embed short", lambda s: throughput(s, synthetic)
        )
    if "add" not in args.skip:
        texts = synthetic_texts(args.memories, seed=25)
        queries = [f"{q} ?" for q in synthetic_texts(args.queries, seed=26)]
        results["add_search"] = _each(
            specs, "add + search", lambda s: add_and_search(s, texts, queries)
        )
    if "cli" not in args.skip:
        results["cli_search"] = _each(
            specs, "agentmem search", lambda s: cli_search(s, args.cli_runs)
        )
    if "rest" not in args.skip:
        results["rest_first_request"] = _each(specs, "first REST request", first_rest_request)
    if args.locomo:
        results["locomo"] = _each(specs, "LoCoMo", lambda s: locomo_recall(s, args.locomo))
    if args.dense_recall:
        results["dense_recall"] = _each(
            specs, "dense recall", lambda s: dense_recall(s, args.dense_recall)
        )
    results["load_at_end"] = _load()
    write_json(args.json, results)
    write_section(args.out, "embedding", render(results))
    report_console().print(rich_table("embedders", *_table(results)))
    return results


def _table(results: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    rows: list[list[Any]] = []
    specs = [s for s in SPECS if any(s in v for v in results.values() if isinstance(v, dict))]
    headers = ["measure"] + [LABELS.get(s, s) for s in specs]

    def row(name: str, key: str, pick: Callable[[dict[str, Any]], Any]) -> None:
        section = results.get(key)
        if section:
            rows.append([name] + [_fmt(pick(section[s])) if s in section else "-" for s in specs])

    row("model load, s", "throughput_short", lambda r: r["load_s"])
    row("embed LoCoMo turns, texts/s", "throughput_locomo", lambda r: r["texts_per_s"])
    row("embed LoCoMo turns, texts per CPU-s", "throughput_locomo", lambda r: r["texts_per_cpu_s"])
    row("embed short texts, texts/s", "throughput_short", lambda r: r["texts_per_s"])
    row("embed short texts, texts per CPU-s", "throughput_short", lambda r: r["texts_per_cpu_s"])
    row(
        "add_many with embedding, all memories, records/s",
        "add_search",
        lambda r: r["records_per_s"],
    )
    row("add_many, records per CPU-s", "add_search", lambda r: r["records_per_cpu_s"])
    row(
        "add_many, first 1,000 memories, records/s",
        "add_search",
        lambda r: r.get("first_1000_records_per_s") or "-",
    )
    row("search with query embedding, p50 ms", "add_search", lambda r: r["search"]["p50_ms"])
    row("search with query embedding, p95 ms", "add_search", lambda r: r["search"]["p95_ms"])
    row("`agentmem search` end to end, median s", "cli_search", lambda r: r["median_s"])
    row("`agentmem search` CPU (user+sys), median s", "cli_search", lambda r: r["median_cpu_s"])
    row("`agentmem serve`: port open, s", "rest_first_request", lambda r: r["listening_s"])
    row("first REST search, s", "rest_first_request", lambda r: r["first_request_s"])
    row("second REST search, s", "rest_first_request", lambda r: r["second_request_s"])
    row("LoCoMo dense-only recall@10", "dense_recall", lambda r: r["recall@10"])
    row("LoCoMo recall@10", "locomo", lambda r: r["recall@10"])
    row("LoCoMo add, records/s", "locomo", lambda r: r["add_records_per_s"])
    return headers, rows


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if value < 10 else f"{value:.0f}"
    return str(value)


def render(results: dict[str, Any]) -> str:
    """The Markdown section."""
    headers, rows = _table(results)
    loads = []
    for key, section in results.items():
        if isinstance(section, dict) and key not in ("machine",):
            for spec, value in section.items():
                if isinstance(value, dict) and "load" in value:
                    loads.append(f"{key}/{spec}: {value['load']}")
    return "\n".join(
        [
            "## Embedders: torch against ONNX Runtime (same run)",
            "",
            f"`{results['command']}` on {results['date']}; {machine_line(results['machine'])}.",
            f"Load average (1/5/15 min) at start {results['load_at_start']}, "
            f"at end {results['load_at_end']}: the machine is shared, so read the timings "
            "with the load beside them. Rates per CPU-second count the work done (the CPU "
            "time of every thread of the process, or of the `agentmem` child process), which "
            "waiting for a busy CPU does not inflate; on an idle 2-core machine the wall-clock "
            "rate of a model call is up to twice its rate per CPU-second.",
            "",
            markdown_table(headers, rows),
            "",
            "Load average when each measurement ended: " + "; ".join(loads) + ".",
            "",
        ]
    )


if __name__ == "__main__":
    main()
