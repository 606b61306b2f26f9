"""What learned utility costs in search latency.

One embedded memory (SQLite + Qdrant Edge + MiniLM) holds ``--memories`` short synthetic
memories; the same queries run, interleaved query by query so load drifts hit every mode alike,
in four modes:

- ``baseline``: utility off and retrievals not recorded (search as before issue 16);
- ``no feedback``: utility on, no memory rewarded (one extra read, order unchanged);
- ``feedback``: utility on, a share of the memories rewarded (the re-ranking step runs);
- ``feedback + retrieval ids``: as above, and each search records its retrieval id (one write).

``python -m benchmarks.utility_rerank`` writes the ``utility`` section of RESULTS.md and a JSON
file.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentmem import Memory, Scope, Settings, retrieval, usefulness
from agentmem.embedders import Embedder
from benchmarks._common import (
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

DEFAULT_JSON = RESULTS_DIR / "utility_rerank.json"
SCOPE = {"user_id": "latency"}
MODES: dict[str, dict[str, bool]] = {
    "baseline": {"enabled": False, "record_retrievals": False},
    "no feedback": {"enabled": True, "record_retrievals": False},
    "baseline (after feedback)": {"enabled": False, "record_retrievals": False},
    "feedback": {"enabled": True, "record_retrievals": False},
    "feedback + retrieval ids": {"enabled": True, "record_retrievals": True},
}
"""Mode -> Settings.utility switches."""
PHASES: tuple[tuple[str, ...], ...] = (
    ("baseline", "no feedback"),
    ("baseline (after feedback)", "feedback", "feedback + retrieval ids"),
)
"""Modes measured together (interleaved), before and after the feedback is given; each is
compared with its own phase's baseline."""
_SUBJECTS = ["deploy", "invoice", "parcel", "meeting", "report", "backup", "login", "refund"]
_VERBS = ["needs", "fails without", "is faster with", "was fixed by", "depends on"]
_OBJECTS = ["a token", "the staging flag", "two reviewers", "cents", "a retry", "the VPN"]


def corpus(n: int, seed: int = 0) -> list[str]:
    """``n`` short synthetic memories, deterministic for a seed."""
    rng = random.Random(seed)
    return [
        f"Note {i}: the {rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}."
        for i in range(n)
    ]


def run(
    *, memories: int, queries: int, rated_share: float, k: int, embedder: Embedder | None
) -> dict[str, Any]:
    """Latency per mode (p50 / p95 / mean ms) over the same queries."""
    offline()
    embedder = default_embedder(embedder)
    rng = random.Random(1)
    qs = [f"why does the {rng.choice(_SUBJECTS)} fail" for _ in range(queries)]
    samples: dict[str, list[float]] = {m: [] for m in MODES}
    step: list[float] = []
    with tempfile.TemporaryDirectory(prefix="agentmem-utility-") as tmp:
        settings = Settings.load(home=Path(tmp) / "home", adapters="off")
        with Memory(settings=settings, embedder=embedder) as mem:
            records = mem.add_many(corpus(memories), **SCOPE)
            backends = mem.backends
            if "graph" in mem.settings.retrieval.weights:
                # No entities to rank here; keep the knowledge-graph channel out of the timings.
                mem.settings.retrieval.weights["graph"] = 0.0
            scope = Scope(**SCOPE)
            # Queries embedded once up front: the embedder's time (and its noise on a busy
            # machine) is the same in every mode and would hide the step measured here.
            vectors = {q: backends.query_vector(q, scope) for q in dict.fromkeys(qs)}
            for q in qs[:3]:  # warm up: index, SQLite caches
                retrieval.search(backends, q, scope, k=k, vector=vectors[q])
            rated = records[: int(len(records) * rated_share)]
            # Before any feedback, then after it; within each phase the two modes alternate
            # query by query, so a load spike on this shared machine hits both alike.
            for phase in PHASES:
                if phase is PHASES[1]:
                    for j, r in enumerate(rated):
                        mem.feedback([r.id], 1.0 if j % 2 else -1.0, **SCOPE)
                for q in qs:
                    for mode in phase:
                        for key, value in MODES[mode].items():
                            setattr(mem.settings.utility, key, value)
                        started = time.perf_counter()
                        retrieval.search(backends, q, scope, k=k, vector=vectors[q])
                        samples[mode].append(time.perf_counter() - started)
            # The re-ranking step alone, on a full candidate list with feedback present.
            candidates = [
                (r.id, 1.0 / (60 + i), {})
                for i, r in enumerate(records[: backends.settings.retrieval.candidates])
            ]
            for _ in range(len(qs)):
                started = time.perf_counter()
                usefulness.rerank(backends, candidates)
                step.append(time.perf_counter() - started)
    return {
        "memories": memories,
        "queries": queries,
        "rated": int(memories * rated_share),
        "k": k,
        "latency": {m: latency_summary(s) for m, s in samples.items()},
        "rerank_step": latency_summary(step),
        "candidates": Settings().retrieval.candidates,
    }


def table_rows(results: dict[str, Any]) -> list[list[Any]]:
    """One row per mode: p50, p95, mean (ms) and the p50 change from its phase's baseline."""
    lat = results["latency"]
    rows = []
    for phase in PHASES:
        base = lat[phase[0]]["p50_ms"]
        for mode in phase:
            v = lat[mode]
            rows.append([mode, v["p50_ms"], v["p95_ms"], v["mean_ms"], v["p50_ms"] - base])
    return rows


HEADERS = ["mode", "p50 ms", "p95 ms", "mean ms", "p50 vs its baseline ms"]


def render_markdown(results: dict[str, Any]) -> str:
    """The ``utility`` section of RESULTS.md."""
    return "\n".join(
        [
            "## Learned utility: cost of the re-ranking step in search latency",
            "",
            f"Run {results['date']} with `{results['command']}` in "
            f"{results['wall_seconds']:.0f} s.",
            f"Machine: {machine_line(results['machine'])}.",
            "",
            f"One embedded memory (SQLite + Qdrant Edge + MiniLM) with {results['memories']} "
            f"short memories; {results['queries']} queries (embedded once up front), "
            f"k={results['k']}, each run in every "
            "mode of its phase, interleaved query by query (before feedback: baseline, no "
            "feedback; after it: baseline, feedback, + retrieval ids). `baseline`: utility "
            "off, retrievals not recorded (search as before); `no feedback`: utility on, "
            "nothing rewarded (one extra read of the "
            "candidates' utility; order and scores unchanged); `feedback`: "
            f"{results['rated']} memories rewarded, so the re-ranking runs; `+ retrieval ids`: "
            "each search also records what it showed (one small write).",
            "",
            markdown_table(HEADERS, table_rows(results)),
            "",
            f"The re-ranking step alone (read the utility of {results['candidates']} "
            "candidates, half of them rewarded, mix and sort): p50 "
            f"{results['rerank_step']['p50_ms']:.2f} ms, p95 "
            f"{results['rerank_step']['p95_ms']:.2f} ms. Query embedding is excluded from the "
            "search timings above (queries are embedded once up front), so the table shows "
            "retrieval itself: channels, fusion, store reads and the utility step.",
        ]
    )


def main(argv: Sequence[str] | None = None, *, embedder: Embedder | None = None) -> dict[str, Any]:
    """Run the measurement and write RESULTS.md's ``utility`` section and the JSON file."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.utility_rerank", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--memories", type=int, default=600)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--rated-share", type=float, default=0.5)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS_MD)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    info = machine_info()
    results = run(
        memories=args.memories,
        queries=args.queries,
        rated_share=args.rated_share,
        k=args.k,
        embedder=embedder,
    )
    results.update(
        benchmark="utility_rerank",
        date=now_utc(),
        command=command_line("benchmarks.utility_rerank", argv),
        machine=info,
        wall_seconds=time.perf_counter() - started,
    )
    write_section(project_path(args.out), "utility", render_markdown(results))
    write_json(project_path(args.json), results)
    report_console().print(
        rich_table("search latency by utility mode", HEADERS, table_rows(results))
    )
    return results


if __name__ == "__main__":
    main()
