"""LoCoMo evidence recall with the knowledge-graph channel on and off.

Built on :mod:`benchmarks.locomo_facts`: every turn is stored as an episode and run through
the LLM-free semantic pipeline, so facts sit beside the turns; the knowledge graph is built
from those facts as they are written (the outbox path every user gets). Then, per
conversation, the graph is rebuilt from the store once more to time a batch build, and its
communities are computed.

Each question of categories 1-4 is prepared once (:func:`agentmem.retrieval.build_request`,
with the conversation's last session date as "now") and every retrieval channel's top-100
list is recorded: ``dense``, ``window``, ``bm25``, ``window_bm25``, ``time`` and ``graph``
(Personalized PageRank from the entities the question names). The lists are fused offline
by the same weighted reciprocal rank fusion ``mem.search`` uses, with the default weights
and a graph weight from a grid; retrieved facts count as the turn they came from and the
first 10 distinct turns are scored ("facts point to turns", as in ``locomo-facts``).
Weight 0 is "graph off". The graph weight is chosen by leave-two-conversations-out
cross-validation (5 folds): for each fold the weight with the best mean recall@10 on the
other eight conversations is scored on the held-out two; no question is ever tuned on.

Measured besides recall: the graph's incremental update time (inside the writes), a batch
rebuild and the community computation per conversation, and the graph channel's latency per
question (entity matching, PageRank, reading and filtering the records), p50 and p95.

    python -m benchmarks.locomo_graph [--data PATH] [--conversations 0-9]
                                      [--out benchmarks/RESULTS.md] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from benchmarks._common import (
    RESULTS_DIR,
    RESULTS_MD,
    CachingEmbedder,
    command_line,
    default_embedder,
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
from benchmarks.locomo import (
    CATEGORIES,
    DEFAULT_DATA,
    Conversation,
    aggregate,
    load_locomo,
    parse_conversations,
    require_data,
    score_question,
)

DEFAULT_JSON = RESULTS_DIR / "locomo_graph.json"
GRID = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)
"""Graph channel weights tried (0: graph off); the other channels keep their defaults."""
FOLDS = ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9))
DEPTH = 100
"""Results each channel contributes before fusion (the retrieval default)."""
KS = (5, 10, 20)
ENTITIES_ONLY = "graph_entities"
DENSE_SEEDS = "graph_dense"
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "graph": ("the default settings", {}),
    ENTITIES_ONLY: ("entities only (no concept nodes)", {"concepts": False, "dense_seeds": 0}),
    DENSE_SEEDS: ("also seeded by the top 10 dense hits", {"dense_seeds": 10}),
}
"""Graph channel variants measured in the same run: name -> (label, GraphSettings changes)."""


def _timed_sync(fn: Callable[..., Any], bucket: list[float]) -> Callable[..., Any]:
    """``build.on_sync``, timed when it has facts to apply (an outbox batch of episodes
    only costs nothing and is not counted)."""

    def wrapper(backends: Any, records: Sequence[Any], removed: Sequence[str]) -> Any:
        if not any(r.kind.value == "semantic" for r in records) and not removed:
            return fn(backends, records, removed)
        started = time.perf_counter()
        try:
            return fn(backends, records, removed)
        finally:
            bucket.append(time.perf_counter() - started)

    return wrapper


def run(
    conversations: Sequence[Conversation], embedder: CachingEmbedder, home: Path, console: Console
) -> dict[str, Any]:
    """Ingest, extract, build graphs, and record every channel's list for every question
    (the graph step of every write is timed meanwhile)."""
    from agentmem import Settings
    from agentmem.graph import build
    from agentmem.retrieval import CHANNELS

    weights = {name: 1.0 for name in CHANNELS}  # every channel runs; fusion weights come later
    settings = Settings.load(home=home, store_url=None, vectors_url=None, llm_model=None,
                             retrieval={"weights": weights})  # fmt: skip
    incremental: list[float] = []
    original = build.on_sync
    build.on_sync = _timed_sync(original, incremental)  # type: ignore[method-assign]
    try:
        return _measure(conversations, embedder, settings, incremental, console)
    finally:
        build.on_sync = original  # type: ignore[method-assign]


def _measure(
    conversations: Sequence[Conversation],
    embedder: CachingEmbedder,
    settings: Any,
    incremental: list[float],
    console: Console,
) -> dict[str, Any]:
    from agentmem import Memory, consolidate_episode
    from agentmem.graph.communities import ensure_communities
    from agentmem.models import Scope
    from agentmem.retrieval import CHANNELS, build_request
    from agentmem.semantic import RulesExtractor, episode_from

    extractor = RulesExtractor()
    rows: list[dict[str, Any]] = []
    per_conversation: list[dict[str, Any]] = []
    latencies: dict[str, list[float]] = {name: [] for name in VARIANTS}
    others = {
        name: settings.model_copy(update={"graph": settings.graph.model_copy(update=changes)})
        for name, (_, changes) in VARIANTS.items()
        if name != "graph"
    }
    with Memory(settings=settings, embedder=embedder) as mem:
        graph = mem.backends.graph
        assert graph is not None
        for conv in conversations:
            records = mem.add_many(
                [{"text": t.memory_text, "event_time": t.event_time,
                  "metadata": {"dia_id": t.dia_id, "session": t.session}} for t in conv.turns],
                user_id=conv.user_id,
            )  # fmt: skip
            dia = {r.id: r.metadata["dia_id"] for r in records}
            texts = [f.text for r in records for f in extractor.extract(episode_from(r))]
            embedder.embed_documents(texts)  # batched up front; the pipeline finds them cached
            before = len(incremental), sum(incremental)
            started = time.perf_counter()
            for record in records:
                consolidate_episode(mem, record)
            extract_seconds = time.perf_counter() - started
            updates = len(incremental) - before[0]
            update_seconds = sum(incremental) - before[1]
            report = mem.graph.rebuild(user_id=conv.user_id)
            scope = Scope(user_id=conv.user_id)
            state = graph.state_of(scope)
            started = time.perf_counter()
            state = ensure_communities(graph, state, settings.graph)
            community_seconds = time.perf_counter() - started
            levels: dict[int, int] = {}
            for c in state.communities.values():
                levels[c.level] = levels.get(c.level, 0) + 1
            for fact in mem.list(user_id=conv.user_id, kinds="semantic", limit=100_000,
                                 include_invalidated=True):  # fmt: skip
                sources = fact.provenance.get("sources") or []
                if sources and sources[0] in dia:
                    dia[fact.id] = dia[sources[0]]
            last = max((t.event_time for t in conv.turns if t.event_time), default=None)
            for q in conv.questions:
                request = build_request(mem.backends, q.text, scope, limit=DEPTH,
                                        reference_time=last)  # fmt: skip
                ranked: dict[str, list[str]] = {}
                for name, channel in CHANNELS.items():
                    started = time.perf_counter()
                    found = channel(mem.backends, request)
                    if name == "graph":
                        latencies["graph"].append(time.perf_counter() - started)
                    # fused per memory, scored per turn: "<dia_id>#<record id>"
                    ranked[name] = [f"{dia[i]}#{i}" for i, _ in found if i in dia]
                # the same channel with other settings, for comparison
                for variant, variant_settings in others.items():
                    mem.backends.settings = variant_settings
                    started = time.perf_counter()
                    found = CHANNELS["graph"](mem.backends, request)
                    latencies[variant].append(time.perf_counter() - started)
                    mem.backends.settings = settings
                    ranked[variant] = [f"{dia[i]}#{i}" for i, _ in found if i in dia]
                rows.append({"conv": conv.index, "category": q.category,
                             "evidence": list(q.evidence), "ranked": ranked})  # fmt: skip
            info = {
                "conversation": conv.index,
                "turns": len(conv.turns),
                "facts": report.facts,
                "entities": report.entities,
                "relations": report.relations,
                "communities_by_level": {str(k): v for k, v in sorted(levels.items())},
                "incremental_updates": updates,
                "incremental_seconds": update_seconds,
                "extract_seconds": extract_seconds,
                "rebuild_seconds": report.seconds,
                "community_seconds": community_seconds,
            }
            per_conversation.append(info)
            console.log(
                f"conversation {conv.index}: {len(conv.turns)} turns, {report.facts} facts, "
                f"{report.entities} entities, {report.relations} relations; rebuild "
                f"{report.seconds:.2f} s, communities {community_seconds:.2f} s, graph updates "
                f"in writes {update_seconds:.1f} s"
            )
    return {"rows": rows, "graphs": per_conversation, "latency_seconds": latencies}


def _turns(keys: Sequence[str]) -> list[str]:
    """Fused keys (``dia_id#record``) mapped to distinct turns, best first."""
    return list(dict.fromkeys(k.split("#", 1)[0] for k in keys))


def fused_turns(row: dict[str, Any], weights: dict[str, float], rrf_k: int) -> list[str]:
    """The question's turns, best first, after weighted RRF of its channel lists."""
    from agentmem.fusion import fuse_scores

    ranked = {n: [(key, 0.0) for key in keys] for n, keys in row["ranked"].items()}
    return _turns([key for key, _ in fuse_scores(ranked, weights, k=rrf_k)])


def evaluate(
    rows: Sequence[dict[str, Any]], weights: dict[str, float], rrf_k: int
) -> list[tuple[int, dict[str, float]]]:
    """(category, metrics) per question for one set of weights."""
    return [
        (r["category"], score_question(fused_turns(r, weights, rrf_k), r["evidence"], KS))
        for r in rows
    ]


def cross_validate(
    rows: Sequence[dict[str, Any]], base: dict[str, float], rrf_k: int, channel: str = "graph"
) -> dict[str, Any]:
    """Leave-two-conversations-out choice of the weight of ``channel``."""
    convs = sorted({r["conv"] for r in rows})
    by_weight = {w: evaluate(rows, {**base, channel: w}, rrf_k) for w in GRID}

    def mean(w: float, keep: set[int]) -> float:
        scores = [m["recall@10"] for (c, m), r in zip(by_weight[w], rows, strict=True)
                  if r["conv"] in keep]  # fmt: skip
        return float(np.mean(scores)) if scores else float("nan")

    folds = []
    for held in FOLDS:
        test = {c for c in held if c in convs}
        train = set(convs) - test
        if not test or not train:
            continue
        chosen = max(GRID, key=lambda w: (round(mean(w, train), 6), -w))
        folds.append(
            {
                "held_out": sorted(test),
                "chosen": chosen,
                "held_out_recall@10": mean(chosen, test),
                "held_out_recall@10_graph_off": mean(0.0, test),
            }
        )
    all_convs = set(convs)
    chosen_all = max(GRID, key=lambda w: (round(mean(w, all_convs), 6), -w))
    return {
        "folds": folds,
        "held_out_mean": float(np.mean([f["held_out_recall@10"] for f in folds]))
        if folds
        else float("nan"),
        "held_out_mean_graph_off": float(
            np.mean([f["held_out_recall@10_graph_off"] for f in folds])
        )
        if folds
        else float("nan"),
        "chosen_on_all": chosen_all,
        "by_weight": {str(w): aggregate(by_weight[w], KS) for w in GRID},
    }


def summarise(measured: dict[str, Any]) -> dict[str, Any]:
    """Recall by category for every graph weight, graph alone, and the cross-validation."""
    from agentmem.settings import DEFAULT_WEIGHTS, RetrievalSettings

    rows = measured["rows"]
    rrf_k = RetrievalSettings().rrf_k
    base = {**DEFAULT_WEIGHTS, **dict.fromkeys(VARIANTS, 0.0)}
    out: dict[str, Any] = {"graphs": measured["graphs"], "rrf_k": rrf_k, "variants": {}}
    for channel in VARIANTS:
        latencies = sorted(measured["latency_seconds"][channel])
        alone = {name: 0.0 for name in base} | {channel: 1.0}
        out["variants"][channel] = {
            "cross_validation": cross_validate(rows, base, rrf_k, channel),
            "alone": aggregate(evaluate(rows, alone, rrf_k), KS),
            "nonempty": sum(1 for r in rows if r["ranked"].get(channel)) / max(1, len(rows)),
            "latency_ms": {
                "p50": 1000 * float(np.percentile(latencies, 50)) if latencies else float("nan"),
                "p95": 1000 * float(np.percentile(latencies, 95)) if latencies else float("nan"),
                "mean": 1000 * statistics.fmean(latencies) if latencies else float("nan"),
            },
        }
    return out


def _row(name: str, metrics: dict[str, Any], k: int = 10) -> list[Any]:
    cats = metrics["by_category"]
    return [name, *(cats[c][f"recall@{k}"] for c in CATEGORIES.values()),
            metrics["overall"][f"recall@{k}"]]  # fmt: skip


def _delta(name: str, on: dict[str, Any], off: dict[str, Any]) -> list[Any]:
    cells = [name]
    for c in CATEGORIES.values():
        cells.append(
            f"{100 * (on['by_category'][c]['recall@10'] - off['by_category'][c]['recall@10']):+.1f}"
        )
    cells.append(f"{100 * (on['overall']['recall@10'] - off['overall']['recall@10']):+.1f}")
    return cells


def _folds(cv: dict[str, Any]) -> str:
    return ", ".join(
        f"{f['held_out']}: w={f['chosen']} ({f['held_out_recall@10']:.3f} vs "
        f"{f['held_out_recall@10_graph_off']:.3f} off)"
        for f in cv["folds"]
    )


def render_markdown(results: dict[str, Any]) -> str:
    """The ``graph`` section of RESULTS.md."""
    s = results["summary"]
    data = results["dataset"]
    main_cv = s["variants"]["graph"]["cross_validation"]
    by_weight = main_cv["by_weight"]
    off = by_weight["0.0"]
    counts = {c: off["by_category"][c]["questions"] for c in CATEGORIES.values()}
    headers = ["system", *(f"{c} ({counts[c]} q)" for c in CATEGORIES.values()), "all"]
    table = [_row("graph off (turns + facts)", off)]
    table += [_row(f"graph on, weight {w}", by_weight[str(w)]) for w in GRID[1:]]
    for variant, (label, _) in VARIANTS.items():
        if variant == "graph":
            continue
        best = s["variants"][variant]["cross_validation"]["chosen_on_all"]
        best = best or 0.25  # show the variant switched on even when 0 was chosen
        table.append(
            _row(
                f"graph on, {label}, weight {best}",
                s["variants"][variant]["cross_validation"]["by_weight"][str(best)],
            )
        )
    for variant, (label, _) in VARIANTS.items():
        table.append(_row(f"graph channel alone, {label}", s["variants"][variant]["alone"]))
    chosen_w = main_cv["chosen_on_all"]
    table.append(_delta(f"change at weight {chosen_w} (points)", by_weight[str(chosen_w)], off))
    gtable = [
        [g["conversation"], g["turns"], g["facts"], g["entities"], g["relations"],
         " / ".join(f"{v}" for v in g["communities_by_level"].values()),
         f"{g['rebuild_seconds']:.2f}", f"{g['community_seconds']:.2f}",
         f"{1000 * g['incremental_seconds'] / max(1, g['incremental_updates']):.0f}"]
        for g in s["graphs"]
    ]  # fmt: skip
    lat = s["variants"]["graph"]["latency_ms"]
    others_cv = "; ".join(
        f"{label}: held-out {v['cross_validation']['held_out_mean']:.3f}, weights chosen "
        f"{[f['chosen'] for f in v['cross_validation']['folds']]}"
        for name, (label, _) in VARIANTS.items()
        if name != "graph"
        for v in [s["variants"][name]]
    )
    latencies = "; ".join(
        f"{label}: p50 {s['variants'][name]['latency_ms']['p50']:.1f} ms, p95 "
        f"{s['variants'][name]['latency_ms']['p95']:.1f} ms"
        for name, (label, _) in VARIANTS.items()
        if name != "graph"
    )
    lines = [
        "## LoCoMo with the knowledge-graph channel",
        "",
        f"Run {results['date']} with `{results['command']}` in {results['wall_seconds']:.0f} s.",
        f"Machine: {machine_line(results['machine'])}.",
        "",
        f"Data: {data['conversations']} conversation(s), {data['turns']:,} turns, "
        f"{data['questions']:,} questions of categories 1-4. Turns are stored as episodes and "
        "run through the LLM-free semantic pipeline (as in `locomo-facts`); each fact updates "
        "its conversation's knowledge graph as it is written (entities from the extractor, "
        "relations from attribute/value, possessives and a verb pattern, episode links, "
        "LLM-free entity resolution). Every channel's top-100 list is recorded per question "
        "and fused offline by the RRF of `mem.search` (default weights, rrf_k "
        f"{s['rrf_k']}), the graph channel at each weight of the grid; facts count as their "
        "turn and the first 10 distinct turns are scored. No LLM is called. Variants of the "
        "graph channel, measured on the same lists: the default PageRank walks entities, "
        "facts, episodes and *concepts* (the facts' content words, seeded by the question's "
        "content words with half the restart mass of its entities, as HippoRAG 2 walks phrase "
        "nodes); *entities only* walks entities, facts and episodes; *dense seeds* also "
        "restarts at the facts and turns of the top 10 dense hits (HippoRAG 2's passage "
        "seeds).",
        "",
        "### Recall@10 by category, graph channel off and on",
        "",
        markdown_table(headers, table),
        "",
        f"Cross-validation of the graph weight (leave two conversations out, 5 folds; grid "
        f"{', '.join(str(w) for w in GRID)}): held-out recall@10 "
        f"{main_cv['held_out_mean']:.3f} against {main_cv['held_out_mean_graph_off']:.3f} with "
        f"the graph off. Folds: {_folds(main_cv)}. Chosen on all ten: {chosen_w}. Other "
        f"variants: {others_cv}.",
        "",
        f"The graph channel returned something for "
        f"{100 * s['variants']['graph']['nonempty']:.0f}% of the questions (the others name "
        "no entity of the conversation's graph).",
        "",
        "### Graph size and build time per conversation",
        "",
        markdown_table(
            [
                "conv",
                "turns",
                "facts",
                "entities",
                "relations",
                "communities by level",
                "rebuild s",
                "communities s",
                "ms per update in writes",
            ],
            gtable,
        ),
        "",
        "*rebuild*: the whole graph derived again from the stored facts (`agentmem reindex "
        "--graph`), name embeddings from the cache. *ms per update in writes*: the graph step "
        "of one write of an episode's facts (resolution, relations, one more store "
        "transaction), what every write of facts pays. *communities*: Louvain levels, "
        "computed once after the build.",
        "",
        f"Graph channel latency per question (entity matching, Personalized PageRank, reading "
        f"and filtering the records): p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms, mean "
        f"{lat['mean']:.1f} ms ({latencies}).",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.locomo_graph", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA if DEFAULT_DATA.exists() else None
    )
    parser.add_argument("--conversations", default="0-9", help="indices, e.g. 0-9 or 0,3")
    parser.add_argument("--out", type=Path, default=RESULTS_MD, help="Markdown results file")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="JSON results file")
    return parser


def main(argv: Sequence[str] | None = None, *, embedder: Any = None) -> dict[str, Any]:
    """Run the comparison and write its outputs; returns the results."""
    offline()
    args = build_parser().parse_args(argv)
    data = require_data(args.data)
    started = time.perf_counter()
    info = machine_info()
    console = report_console()
    conversations = load_locomo(data, parse_conversations(args.conversations))
    embedder = default_embedder(embedder)
    cache = CachingEmbedder(embedder)
    with tempfile.TemporaryDirectory(prefix="agentmem-locomo-graph-") as tmp:
        measured = run(conversations, cache, Path(tmp), console)
    summary = summarise(measured)
    results: dict[str, Any] = {
        "benchmark": "locomo_graph",
        "date": now_utc(),
        "command": command_line("benchmarks.locomo_graph", argv),
        "machine": info,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "wall_seconds": time.perf_counter() - started,
        "dataset": {
            "path": str(args.data),
            "conversations": len(conversations),
            "turns": sum(len(c.turns) for c in conversations),
            "questions": sum(len(c.questions) for c in conversations),
        },
        "embedding": {"model": cache.name, "model_seconds": cache.model_seconds},
        "summary": summary,
    }
    for channel, (label, _) in VARIANTS.items():
        cv = summary["variants"][channel]["cross_validation"]
        console.print(
            rich_table(
                f"LoCoMo recall@10, graph weight grid, {label}",
                ["weight", *CATEGORIES.values(), "all"],
                [_row(str(w), cv["by_weight"][str(w)]) for w in GRID],
            )
        )
    out = project_path(args.out)
    write_section(out, "graph", render_markdown(results))
    write_json(project_path(args.json), results)
    console.print(f"wrote {out} and {project_path(args.json)}")
    return results


if __name__ == "__main__":
    main()
