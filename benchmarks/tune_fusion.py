"""Choose hybrid-retrieval weights by cross-validation across LoCoMo conversations.

For each representation (episodes indexed with or without their date in front), every
conversation is ingested once and each retrieval channel's top-100 list is recorded for every
question of categories 1-4. Fusion weights are then chosen on a grid by leave-two-
conversations-out cross-validation: for each fold, the weights with the best mean recall@10 on
the other eight conversations are scored on the held-out two. The held-out mean over folds is
the honest estimate; the weights chosen most often (and on all ten) are reported. No question
is ever tuned on individually.

    python -m benchmarks.tune_fusion [--data PATH] [--out benchmarks/results/tune_fusion.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import pickle
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from agentmem import Memory, Settings
from agentmem.embedders import SentenceTransformerEmbedder
from agentmem.fusion import fuse_scores
from agentmem.models import Scope
from agentmem.retrieval import CHANNELS, build_request
from benchmarks._common import (
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
from benchmarks.locomo import DEFAULT_DATA, load_locomo, recall_at

console = report_console()
GRID = (0.0, 0.5, 1.0, 2.0)
TUNED = ("dense", "window", "bm25", "window_bm25")
RRF_KS = (20, 60)
FOLDS = [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]


def channel_runs(data: Path, *, date_prefix: bool, embedder: Any) -> list[dict[str, Any]]:
    """Per question: conversation index, evidence, and each channel's ranked dia_ids."""
    conversations = load_locomo(data)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.load(
            home=Path(tmp),
            retrieval={"date_prefix": date_prefix, "weights": dict.fromkeys(CHANNELS, 1.0)},
        )
        with Memory(settings=settings, embedder=embedder) as mem:
            for conv in conversations:
                started = time.perf_counter()
                records = mem.add_many(
                    [
                        {
                            "text": t.memory_text,
                            "event_time": t.event_time,
                            "metadata": {"dia_id": t.dia_id, "session": t.session},
                        }
                        for t in conv.turns
                    ],
                    user_id=conv.user_id,
                )
                dia = {r.id: r.metadata["dia_id"] for r in records}
                last = max((t.event_time for t in conv.turns if t.event_time), default=None)
                for q in conv.questions:
                    request = build_request(
                        mem.backends,
                        q.text,
                        Scope(user_id=conv.user_id),
                        limit=100,
                        reference_time=last,
                    )
                    ranked = {
                        name: [(dia[i], s) for i, s in fn(mem.backends, request)]
                        for name, fn in CHANNELS.items()
                    }
                    rows.append(
                        {
                            "conv": conv.index,
                            "category": q.category,
                            "evidence": q.evidence,
                            "ranked": ranked,
                        }
                    )
                console.print(
                    f"date_prefix={date_prefix} conv {conv.index}: {len(conv.turns)} turns, "
                    f"{len(conv.questions)} questions, {time.perf_counter() - started:.0f} s"
                )
    return rows


def recall10(row: dict[str, Any], weights: dict[str, float], rrf_k: int) -> float:
    fused = fuse_scores(row["ranked"], weights, k=rrf_k)
    return recall_at([i for i, _ in fused[:10]], row["evidence"], 10)


def configs() -> list[tuple[dict[str, float], int]]:
    out = []
    for values in itertools.product(GRID, repeat=len(TUNED)):
        if not any(values):
            continue
        for time_w in (0.0, 1.0):
            for rrf_k in RRF_KS:
                out.append(({**dict(zip(TUNED, values, strict=True)), "time": time_w}, rrf_k))
    return out


def cross_validate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Leave-two-conversations-out choice of weights; returns held-out and reference scores."""
    grid = configs()
    scores = [[recall10(r, w, k) for r in rows] for w, k in grid]
    by_conv = [r["conv"] for r in rows]
    all_convs = set(by_conv)

    def mean_over(i: int, convs: set[int]) -> float:
        values = [s for s, c in zip(scores[i], by_conv, strict=True) if c in convs]
        return sum(values) / len(values)

    def index_of(weights: dict[str, float], rrf_k: int) -> int:
        return grid.index((weights, rrf_k))

    held_out_scores: list[float] = []
    folds, chosen = [], []
    for fold in FOLDS:
        best = max(range(len(grid)), key=lambda i: (mean_over(i, all_convs - set(fold)), -i))
        chosen.append(best)
        held_out_scores += [s for s, c in zip(scores[best], by_conv, strict=True) if c in fold]
        folds.append(
            {
                "held_out": list(fold),
                "recall_at_10": mean_over(best, set(fold)),
                "weights": grid[best][0],
                "rrf_k": grid[best][1],
            }
        )
    best_all = max(range(len(grid)), key=lambda i: (mean_over(i, all_convs), -i))
    zero = dict.fromkeys(TUNED, 0.0)
    return {
        "cv_recall_at_10": sum(held_out_scores) / len(held_out_scores),
        "folds": folds,
        "chosen_on_all": {
            "weights": grid[best_all][0],
            "rrf_k": grid[best_all][1],
            "recall_at_10": mean_over(best_all, all_convs),
        },
        "equal_weights": mean_over(
            index_of({**dict.fromkeys(TUNED, 1.0), "time": 1.0}, 60), all_convs
        ),
        "single_channels": {
            name: mean_over(index_of({**zero, name: 1.0, "time": 0.0}, 60), all_convs)
            for name in TUNED
        },
        "most_chosen": [
            {"weights": grid[i][0], "rrf_k": grid[i][1], "folds": n}
            for i, n in Counter(chosen).most_common(3)
        ],
    }


def render_markdown(report: dict[str, Any]) -> str:
    """The ``fusion`` section of RESULTS.md."""
    parts = ["## Fusion weights: chosen by cross-validation across LoCoMo conversations"]
    when = report.get("_run", {})
    if when:
        parts.append(
            f"Run {when['started']} with `{when['command']}`.\n"
            f"Machine: {machine_line(when['machine'])}."
        )
    else:
        parts.append(
            "From `benchmarks/results/tune_fusion.json` of a run that predates run records "
            "(2026-11-23, this machine's kind, fp32 embeddings); rerun `python -m "
            "benchmarks.tune_fusion --date-prefix true` to refresh."
        )
    parts.append(
        "Each conversation is ingested once (embedded defaults, all-MiniLM-L6-v2) and every "
        "channel's top-100 list is recorded for each question of categories 1-4; weights are "
        "then chosen on a grid (dense, window, bm25, window_bm25 each in 0, 0.5, 1, 2; time 0 "
        "or 1; rrf_k 20 or 60) by leave-two-conversations-out cross-validation: each fold's "
        "weights are the best on the other eight conversations and are scored on the two held "
        "out. No question is tuned on individually. The held-out mean is the honest estimate; "
        "the weights chosen on all ten are the shipped defaults."
    )
    for name, result in report.items():
        if name.startswith("_"):
            continue
        chosen = result["chosen_on_all"]
        rows = [
            ["fused, cross-validated (held-out)", result["cv_recall_at_10"]],
            ["fused, weights chosen on all ten (in-sample)", chosen["recall_at_10"]],
            ["fused, equal weights, rrf_k 60", result["equal_weights"]],
            *[[f"{c} alone", v] for c, v in result["single_channels"].items()],
        ]
        weights = ", ".join(f"{k} {v:g}" for k, v in chosen["weights"].items())
        parts.append(f"### {name}\n\nShipped weights: {weights}; rrf_k {chosen['rrf_k']}.")
        parts.append(markdown_table(["ranking", "recall@10"], rows))
        parts.append(
            markdown_table(
                ["held-out conversations", "recall@10", "weights chosen on the others", "rrf_k"],
                [
                    [
                        ", ".join(map(str, f["held_out"])),
                        f["recall_at_10"],
                        ", ".join(f"{k} {v:g}" for k, v in f["weights"].items()),
                        f["rrf_k"],
                    ]
                    for f in result["folds"]
                ],
            )
        )
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/tune_fusion.json"))
    parser.add_argument(
        "--date-prefix",
        nargs="+",
        type=lambda v: v.lower() in ("1", "true", "yes"),
        default=[True, False],
        help="representations to compare (true: episodes indexed with their date in front)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS_MD, help="Markdown results file")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="only rewrite the RESULTS.md section from the JSON of an earlier run",
    )
    args = parser.parse_args(argv)
    if args.render_only:
        report = json.loads(project_path(args.out).read_text(encoding="utf-8"))
        write_section(project_path(args.results), "fusion", render_markdown(report))
        return 0
    offline()
    started = now_utc()
    embedder = SentenceTransformerEmbedder.minilm()
    report: dict[str, Any] = {}
    for date_prefix in args.date_prefix:
        cache = project_path(args.out).with_suffix(f".rows-{date_prefix}.pkl")
        if cache.exists():
            rows = pickle.loads(cache.read_bytes())
        else:
            rows = channel_runs(project_path(args.data), date_prefix=date_prefix, embedder=embedder)
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_bytes(pickle.dumps(rows))
        result = cross_validate(rows)
        report[f"date_prefix={date_prefix}"] = result
        console.print(f"date_prefix={date_prefix}: {result}")
    report["_run"] = {
        "started": started,
        "command": command_line("benchmarks.tune_fusion", argv),
        "machine": machine_info(),
    }
    write_json(project_path(args.out), report)
    write_section(project_path(args.results), "fusion", render_markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
