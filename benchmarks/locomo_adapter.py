"""agentmem's hybrid search on LoCoMo with and without a shared retriever adapter.

The product path, end to end: every conversation's turns go into one Memory (one user scope
each, exactly as ``benchmarks.locomo`` adds them); ``agentmem_gpu.pipeline.train_scope_adapter``
trains
one shared adapter on LLM-free questions generated from the turns of half the conversations
(never on LoCoMo's questions), registers it and promotes it if its held-out score beats the
base model; then LoCoMo's questions (categories 1-4) about the *other* half are searched with
``mem.search`` (dense + BM25 + windows + time, fused), once with the adapter and once
without. Two folds (0-4 -> 5-9, 5-9 -> 0-4) cover every conversation with an adapter that
never saw it.

    python -m benchmarks.locomo_adapter                       # 90 s of training per fold
    python -m benchmarks.locomo_adapter --time-budget 30 --conversations 0-3

Writes ``benchmarks/results/locomo_adapter.json`` and the ``adapter`` section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from agentmem import Memory, Scope, Settings
from agentmem.embedders import SentenceTransformerEmbedder
from agentmem.fusion import fuse_scores
from agentmem.parametric import SHARED_SCOPE_KEY
from agentmem.retrieval import CHANNELS, build_request
from agentmem_gpu import AdapterRegistry, RetrieverAdapterConfig
from agentmem_gpu.pipeline import episodic_records, train_scope_adapter
from benchmarks._common import (
    RESULTS_DIR,
    RESULTS_MD,
    CachingEmbedder,
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
from benchmarks.locomo import (
    CATEGORIES,
    DEFAULT_DATA,
    Conversation,
    load_locomo,
    parse_conversations,
    recall_at,
)
from benchmarks.tune_fusion import configs

DEFAULT_JSON = RESULTS_DIR / "locomo_adapter.json"
K = 10
ORDER = ["multi-hop", "temporal", "open-domain", "single-hop"]


def _channel_rows(mem: Memory, conversations: Sequence[Conversation]) -> list[dict[str, Any]]:
    """Per question: its category, evidence and every channel's top-100 dia_ids, ranked as
    ``mem.search`` ranks them before fusion (so any weights can be fused afterwards)."""
    rows = []
    for conv in conversations:
        scope = Scope(user_id=conv.user_id)
        dia = {r.id: r.metadata["dia_id"] for r in episodic_records(mem, scope)}
        for question in conv.questions:
            request = build_request(mem.backends, question.text, scope, limit=100)
            ranked = {
                name: [(dia[i], score) for i, score in channel(mem.backends, request)]
                for name, channel in CHANNELS.items()
            }
            rows.append(
                {
                    "conv": conv.index,
                    "category": CATEGORIES[question.category],
                    "evidence": question.evidence,
                    "ranked": ranked,
                }
            )
    return rows


def _recall(row: dict[str, Any], weights: dict[str, float], rrf_k: int) -> float:
    fused = fuse_scores(row["ranked"], weights, k=rrf_k)
    return recall_at([i for i, _ in fused[:K]], row["evidence"], K)


def _summary(rows: Sequence[dict[str, Any]], weights: dict[str, float], rrf_k: int) -> dict:
    values = [(r["category"], _recall(r, weights, rrf_k)) for r in rows]
    by: defaultdict[str, list[float]] = defaultdict(list)
    for category, value in values:
        by[category].append(value)
    return {
        "questions": len(values),
        "recall@10": float(np.mean([v for _, v in values])) if values else float("nan"),
        "by_category": {c: float(np.mean(by[c])) for c in ORDER if by[c]},
        "category_questions": {c: len(by[c]) for c in ORDER if by[c]},
    }


def _best_weights(rows: Sequence[dict[str, Any]]) -> tuple[dict[str, float], int]:
    """The grid point of benchmarks.tune_fusion with the best mean recall@10 on ``rows``."""
    grid = configs()
    scores = [float(np.mean([_recall(r, w, k) for r in rows])) for w, k in grid]
    best = max(range(len(grid)), key=lambda i: (scores[i], -i))
    return grid[best]


def run(
    conversations: list[Conversation], config: RetrieverAdapterConfig, console: Console
) -> dict[str, Any]:
    """Both folds; per-question channel lists with and without the fold's adapter."""
    cache = CachingEmbedder(SentenceTransformerEmbedder.minilm())
    half = len(conversations) // 2
    folds = [
        (conversations[:half], conversations[half:]),
        (conversations[half:], conversations[:half]),
    ]
    results: dict[str, Any] = {"folds": [], "embedder": cache.name}
    with tempfile.TemporaryDirectory(prefix="agentmem-locomo-adapter-") as tmp:
        settings = Settings.load(home=Path(tmp), store_url=None, vectors_url=None)
        with Memory(settings=settings, embedder=cache) as mem:
            defaults = (dict(mem.settings.retrieval.weights), mem.settings.retrieval.rrf_k)
            results["default_weights"] = {"weights": defaults[0], "rrf_k": defaults[1]}
            started = time.perf_counter()
            for conv in conversations:
                mem.add_many(
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
            console.log(
                f"added {sum(len(c.turns) for c in conversations):,} turns "
                f"in {time.perf_counter() - started:.0f} s"
            )
            registry = AdapterRegistry.from_settings(settings)
            source = mem.backends.query_encoders
            for train_on, test_on in folds:
                started = time.perf_counter()
                outcome = train_scope_adapter(
                    mem,
                    [Scope(user_id=c.user_id) for c in train_on],
                    key=SHARED_SCOPE_KEY,
                    config=config,
                )
                train_s = time.perf_counter() - started
                promoted = outcome.promotion is not None and outcome.promotion.promoted
                if not promoted:  # measure it anyway, and say it would not have been used
                    registry.promote(SHARED_SCOPE_KEY, outcome.version.version, force=True)
                mem.backends.query_encoders = None
                base = _channel_rows(mem, test_on)
                mem.backends.query_encoders = source
                adapted = _channel_rows(mem, test_on)
                registry.rollback(SHARED_SCOPE_KEY)
                results["folds"].append(
                    {
                        "trained_on": [c.index for c in train_on],
                        "evaluated_on": [c.index for c in test_on],
                        "train_seconds": round(train_s, 1),
                        "promoted_on_held_out": promoted,
                        "adapter_metrics": outcome.version.metadata.metrics,
                        "rows_base": base,
                        "rows_adapted": adapted,
                    }
                )
                console.log(
                    f"fold {[c.index for c in train_on]} -> {[c.index for c in test_on]}: "
                    f"trained {train_s:.0f} s, promoted: {promoted}"
                )
    return score(results)


def score(results: dict[str, Any]) -> dict[str, Any]:
    """Recall of each system from the recorded channel lists (drops the lists)."""
    weights, rrf_k = results["default_weights"]["weights"], results["default_weights"]["rrf_k"]
    dense_only = {"dense": 1.0}
    folds = results["folds"]
    # Weights for "hybrid + adapter, re-weighted": chosen on the *other* fold's questions with
    # that fold's adapter, so no conversation's questions choose its own weights.
    chosen = [_best_weights(folds[1 - i]["rows_adapted"]) for i in range(len(folds))]
    every: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for fold, (fold_weights, fold_k) in zip(folds, chosen, strict=True):
        base, adapted = fold.pop("rows_base"), fold.pop("rows_adapted")
        fold["reweighted"] = {"weights": fold_weights, "rrf_k": fold_k}
        fold["systems"] = {
            "dense": _summary(base, dense_only, rrf_k),
            "dense + adapter": _summary(adapted, dense_only, rrf_k),
            "hybrid": _summary(base, weights, rrf_k),
            "hybrid + adapter": _summary(adapted, weights, rrf_k),
            "hybrid + adapter, re-weighted": _summary(adapted, fold_weights, fold_k),
        }
        every["base"] += base
        every["adapted"] += adapted
    results["overall"] = {
        "dense": _summary(every["base"], dense_only, rrf_k),
        "dense + adapter": _summary(every["adapted"], dense_only, rrf_k),
        "hybrid": _summary(every["base"], weights, rrf_k),
        "hybrid + adapter": _summary(every["adapted"], weights, rrf_k),
        "hybrid + adapter, re-weighted": _merge(
            [f["systems"]["hybrid + adapter, re-weighted"] for f in folds]
        ),
    }
    return results


def _merge(summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Question-weighted mean of per-fold summaries."""
    n = sum(s["questions"] for s in summaries)
    cats = {c for s in summaries for c in s["by_category"]}
    return {
        "questions": n,
        "recall@10": sum(s["recall@10"] * s["questions"] for s in summaries) / n,
        "by_category": {
            c: float(np.mean([s["by_category"][c] for s in summaries if c in s["by_category"]]))
            for c in ORDER
            if c in cats
        },
    }


def render_markdown(results: dict[str, Any]) -> str:
    """The RESULTS.md section."""
    overall = results["overall"]
    cats = [c for c in ORDER if c in overall["hybrid"]["by_category"]]
    rows = [
        [name, s["questions"], s["recall@10"], *[s["by_category"].get(c) for c in cats]]
        for name, s in overall.items()
    ]
    fold_rows = [
        [
            f"{f['trained_on'][0]}-{f['trained_on'][-1]}",
            f"{f['evaluated_on'][0]}-{f['evaluated_on'][-1]}",
            f["systems"]["dense"]["recall@10"],
            f["systems"]["dense + adapter"]["recall@10"],
            f["systems"]["hybrid"]["recall@10"],
            f["systems"]["hybrid + adapter"]["recall@10"],
            f["systems"]["hybrid + adapter, re-weighted"]["recall@10"],
            ", ".join(f"{k} {v:g}" for k, v in f["reweighted"]["weights"].items() if v)
            + f"; rrf_k {f['reweighted']['rrf_k']}",
            f["train_seconds"],
            "yes" if f["promoted_on_held_out"] else "no (forced for the measurement)",
        ]
        for f in results["folds"]
    ]
    cfg = results["config"]
    return "\n\n".join(
        [
            "## LoCoMo: retriever adapter in hybrid search (shared adapter, cross-validated)",
            f"Run {results['started']} with `{results['command']}` in {results['seconds']:.0f} s.\n"
            f"Machine: {machine_line(results['machine'])}. Embedder: {results['embedder']}.",
            "Method: every turn added to one Memory (embedded defaults, one user scope per "
            "conversation, as in the LoCoMo section above); "
            "`agentmem_gpu.pipeline.train_scope_adapter` "
            f"trains one shared query-side LoRA (r={cfg['lora_r']}, {cfg['time_budget_s']:.0f} s "
            f"budget on CPU, {cfg['threads'] or 'default'} torch threads) on LLM-free questions "
            "generated from the turns of half the conversations, never on LoCoMo's questions, "
            "and promotes it when its held-out recall beats the base model's. The questions "
            "(categories 1-4) about the *other* half are then searched with and without the "
            "adapter; two folds cover every conversation with an adapter that never saw it. "
            "Each channel's top-100 list is recorded as `mem.search` computes it and fused "
            "with the default weights (hybrid), the dense channel alone (dense), or weights "
            "re-chosen for the adapter on the grid of `benchmarks.tune_fusion` using only the "
            "*other* fold's questions (re-weighted). Documents keep their indexed vectors.",
            markdown_table(["system", "questions", "recall@10", *cats], rows),
            markdown_table(
                [
                    "trained on",
                    "evaluated on",
                    "dense",
                    "+ adapter",
                    "hybrid",
                    "+ adapter",
                    "re-weighted",
                    "re-chosen weights",
                    "train s",
                    "promoted",
                ],
                fold_rows,
            ),
        ]
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run and write the results."""
    offline()
    parser = argparse.ArgumentParser(prog="python -m benchmarks.locomo_adapter")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--conversations", default="0-9")
    parser.add_argument("--time-budget", type=float, default=90.0, help="training s per fold")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--out", type=Path, default=RESULTS_MD)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    conversations = load_locomo(project_path(args.data), parse_conversations(args.conversations))
    if len(conversations) < 2:
        raise SystemExit("need at least two conversations (one per fold)")
    config = RetrieverAdapterConfig(
        time_budget_s=args.time_budget, threads=args.threads, progress=False
    )
    console = report_console()
    started_at, started = now_utc(), time.perf_counter()
    results = run(conversations, config, console)
    results.update(
        started=started_at,
        seconds=time.perf_counter() - started,
        command=command_line("benchmarks.locomo_adapter", argv),
        machine=machine_info(),
        config={**config.__dict__, "target_modules": list(config.target_modules)},
    )
    write_json(project_path(args.json), results)
    write_section(project_path(args.out), "adapter", render_markdown(results))
    console.print(render_markdown(results))
    return results


if __name__ == "__main__":
    main()
