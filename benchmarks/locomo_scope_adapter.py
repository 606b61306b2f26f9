"""agentmem's search on LoCoMo with each conversation's own retriever adapter.

The deployed path for a scope with an adapter: every conversation's turns go into one Memory
(one user scope each, exactly as ``benchmarks.locomo`` adds them); for each conversation,
``agentmem_gpu.pipeline.train_scope_adapter`` trains that scope's query-side LoRA on LLM-free
questions
generated from the scope's own turns (never on LoCoMo's questions), and its questions
(categories 1-4) are searched with ``mem.search``'s channels with and without the adapter.
Each channel's top-100 list is recorded once, then fused with the default weights (hybrid),
the dense channel alone (dense), or, for "re-weighted", weights chosen on the grid of
``benchmarks.tune_fusion`` from the adapted questions of the *other* half of the
conversations only (two folds), so no conversation's questions choose its own weights.

    python -m benchmarks.locomo_scope_adapter                      # 90 s of training each
    python -m benchmarks.locomo_scope_adapter --time-budget 20 --conversations 0-1

Writes ``benchmarks/results/locomo_scope_adapter.json`` and the ``scope-adapter`` section
of RESULTS.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from statistics import median
from typing import Any

from rich.console import Console

from agentmem import Memory, Scope, Settings
from agentmem.embedders import SentenceTransformerEmbedder
from agentmem.parametric import scope_key
from agentmem_gpu import AdapterRegistry, RetrieverAdapterConfig
from agentmem_gpu.pipeline import train_scope_adapter
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
from benchmarks.locomo import DEFAULT_DATA, Conversation, load_locomo, parse_conversations
from benchmarks.locomo_adapter import ORDER, _best_weights, _channel_rows, _summary

DEFAULT_JSON = RESULTS_DIR / "locomo_scope_adapter.json"
_TWO_FOLDS = "from the adapted questions of the other half of the conversations (two folds)"
_LEAVE_ONE_OUT = (
    "from the other nine conversations' adapted questions (leave one conversation out, as the "
    "script did before it switched to two folds, a tenth of the scoring time)"
)
SYSTEMS = (
    "dense",
    "dense + adapter",
    "hybrid",
    "hybrid + adapter",
    "hybrid + adapter, re-weighted",
)


def run(
    conversations: list[Conversation], config: RetrieverAdapterConfig, console: Console
) -> dict[str, Any]:
    """Per conversation: train its adapter, record channel lists with and without it."""
    cache = CachingEmbedder(SentenceTransformerEmbedder.minilm())
    results: dict[str, Any] = {"conversations": [], "embedder": cache.name}
    rows: dict[int, dict[str, list[dict[str, Any]]]] = {}
    with tempfile.TemporaryDirectory(prefix="agentmem-scope-adapter-") as tmp:
        settings = Settings.load(home=Path(tmp), store_url=None, vectors_url=None)
        with Memory(settings=settings, embedder=cache) as mem:
            weights, rrf_k = dict(mem.settings.retrieval.weights), mem.settings.retrieval.rrf_k
            results["default_weights"] = {"weights": weights, "rrf_k": rrf_k}
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
            results["add_seconds"] = round(time.perf_counter() - started, 1)
            registry = AdapterRegistry.from_settings(settings)
            source = mem.backends.query_encoders
            for conv in conversations:
                scope = Scope(user_id=conv.user_id)
                started = time.perf_counter()
                outcome = train_scope_adapter(mem, scope, config=config)
                train_s = time.perf_counter() - started
                promoted = outcome.promotion is not None and outcome.promotion.promoted
                key = scope_key(scope)
                if not promoted:  # measure it anyway, and say it would not have been served
                    registry.promote(key, outcome.version.version, force=True)
                mem.backends.query_encoders = None
                base = _channel_rows(mem, [conv])
                mem.backends.query_encoders = source
                adapted = _channel_rows(mem, [conv])
                rows[conv.index] = {"base": base, "adapted": adapted}
                results["conversations"].append(
                    {
                        "conversation": conv.index,
                        "memories": len(conv.turns),
                        "train_seconds": round(train_s, 1),
                        "promoted_on_held_out": promoted,
                        "adapter_metrics": outcome.version.metadata.metrics,
                    }
                )
                console.log(
                    f"conversation {conv.index}: trained {train_s:.0f} s, promoted: {promoted}"
                )
    return score(results, rows)


def score(results: dict[str, Any], rows: dict[int, dict[str, list[dict[str, Any]]]]) -> dict:
    """Recall of each system, per conversation and overall, from the recorded channel lists."""
    weights = results["default_weights"]["weights"]
    rrf_k = results["default_weights"]["rrf_k"]
    dense_only = {"dense": 1.0}
    every: dict[str, list[dict[str, Any]]] = defaultdict(list)
    # Two folds (first and second half of the conversations), as benchmarks.locomo_adapter:
    # each half's weights are chosen on the other half's adapted questions.
    order = [e["conversation"] for e in results["conversations"]]
    halves = [order[: len(order) // 2], order[len(order) // 2 :]]
    chosen: dict[int, tuple[dict[str, float], int]] = {}
    for half, other in (halves, halves[::-1]):
        others = [r for i in other for r in rows[i]["adapted"]]
        picked = _best_weights(others) if others else (weights, rrf_k)
        chosen.update({i: picked for i in half})
    for entry in results["conversations"]:
        index = entry["conversation"]
        base, adapted = rows[index]["base"], rows[index]["adapted"]
        chosen_w, chosen_k = chosen[index]
        entry["reweighted"] = {"weights": chosen_w, "rrf_k": chosen_k}
        systems = {
            "dense": _summary(base, dense_only, rrf_k),
            "dense + adapter": _summary(adapted, dense_only, rrf_k),
            "hybrid": _summary(base, weights, rrf_k),
            "hybrid + adapter": _summary(adapted, weights, rrf_k),
            "hybrid + adapter, re-weighted": _summary(adapted, chosen_w, chosen_k),
        }
        entry["systems"] = systems
        for name in SYSTEMS:
            every[name].append(systems[name])
    results["overall"] = {name: _merge(every[name]) for name in SYSTEMS}
    results["reweighting"] = _TWO_FOLDS
    return results


def _merge(summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Question-weighted mean over conversations, overall and per category."""
    n = sum(s["questions"] for s in summaries)
    cats: dict[str, float] = {}
    for cat in ORDER:
        weighted = [
            (s["by_category"][cat], s["category_questions"][cat])
            for s in summaries
            if cat in s["by_category"]
        ]
        if weighted:
            cats[cat] = sum(v * c for v, c in weighted) / sum(c for _, c in weighted)
    return {
        "questions": n,
        "recall@10": sum(s["recall@10"] * s["questions"] for s in summaries) / n,
        "by_category": cats,
    }


def render_markdown(results: dict[str, Any]) -> str:
    """The RESULTS.md section."""
    overall = results["overall"]
    cats = [c for c in ORDER if c in overall["hybrid"]["by_category"]]
    rows = [
        [name, s["questions"], s["recall@10"], *[s["by_category"].get(c) for c in cats]]
        for name, s in overall.items()
    ]
    per_conv = [
        [
            str(e["conversation"]),
            e["memories"],
            e["systems"]["dense"]["questions"],
            e["systems"]["dense"]["recall@10"],
            e["systems"]["dense + adapter"]["recall@10"],
            e["systems"]["hybrid"]["recall@10"],
            e["systems"]["hybrid + adapter"]["recall@10"],
            e["systems"]["hybrid + adapter, re-weighted"]["recall@10"],
            e["train_seconds"],
            "yes" if e["promoted_on_held_out"] else "no (forced for the measurement)",
        ]
        for e in results["conversations"]
    ]
    cfg = results["config"]
    train_s = [e["train_seconds"] for e in results["conversations"]]
    return "\n\n".join(
        [
            "## LoCoMo: each conversation's own retriever adapter (the per-scope path)",
            f"Run {results['started']} with `{results['command']}` in {results['seconds']:.0f} s "
            f"(adding the turns: {results['add_seconds']:.0f} s).\n"
            f"Machine: {machine_line(results['machine'])}. Embedder: {results['embedder']}. "
            f"Device: {results['device']}.",
            "Method: every turn added to one Memory (embedded defaults, one user scope per "
            "conversation); for each conversation "
            "`agentmem_gpu.pipeline.train_scope_adapter` trains "
            f"that scope's query-side LoRA (r={cfg['lora_r']}, {cfg['time_budget_s']:.0f} s "
            "budget) on LLM-free questions generated from the conversation's own turns, never "
            "on LoCoMo's questions; then its LoCoMo questions (categories 1-4) are searched "
            "with and without the adapter. Each channel's top-100 list is recorded as "
            "`mem.search` computes it and fused with the default weights (hybrid), the dense "
            "channel alone (dense), or weights chosen on the `benchmarks.tune_fusion` grid "
            f"{results.get('reweighting', _LEAVE_ONE_OUT)} (re-weighted). Documents keep their "
            "indexed vectors.",
            markdown_table(["system", "questions", "recall@10", *cats], rows),
            f"Training time per conversation: median {median(train_s):.0f} s, "
            f"total {sum(train_s):.0f} s.",
            markdown_table(
                [
                    "conversation",
                    "memories",
                    "questions",
                    "dense",
                    "+ adapter",
                    "hybrid",
                    "+ adapter",
                    "re-weighted",
                    "train s",
                    "promoted",
                ],
                per_conv,
            ),
            results.get("note", ""),
        ]
    )


def _device() -> str:
    import torch

    if torch.cuda.is_available():
        return f"CUDA ({torch.cuda.get_device_name(0)})"
    return "CPU (no GPU on this machine)"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run and write the results."""
    offline()
    parser = argparse.ArgumentParser(prog="python -m benchmarks.locomo_scope_adapter")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--conversations", default="0-9")
    parser.add_argument("--time-budget", type=float, default=90.0, help="training s per scope")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--out", type=Path, default=RESULTS_MD)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument(
        "--render-only", action="store_true", help="rewrite the RESULTS.md section from --json"
    )
    parser.add_argument("--note", default="", help="a line added under the tables")
    args = parser.parse_args(argv)
    if args.render_only:
        import json

        saved = json.loads(project_path(args.json).read_text(encoding="utf-8"))
        if args.note:
            saved["note"] = args.note
        write_section(project_path(args.out), "scope-adapter", render_markdown(saved))
        return saved
    conversations = load_locomo(project_path(args.data), parse_conversations(args.conversations))
    config = RetrieverAdapterConfig(
        time_budget_s=args.time_budget, threads=args.threads, progress=False
    )
    console = report_console()
    started_at, started = now_utc(), time.perf_counter()
    results = run(conversations, config, console)
    results.update(
        started=started_at,
        seconds=time.perf_counter() - started,
        command=command_line("benchmarks.locomo_scope_adapter", argv),
        machine=machine_info(),
        device=_device(),
        config={**config.__dict__, "target_modules": list(config.target_modules)},
    )
    write_json(project_path(args.json), results)
    write_section(project_path(args.out), "scope-adapter", render_markdown(results))
    console.print(render_markdown(results))
    return results


if __name__ == "__main__":
    main()
