"""Linked notes and the context strategy on LoCoMo, LLM-free, in one run.

1. **Recall with link expansion.** Every turn is stored as an episode, then runs through the
   LLM-free semantic pipeline with linked notes on (its facts become notes, linked to related
   notes, which they may evolve), and the questions search turns and facts together with
   ``expand_links=0`` (the current best configuration: "facts point to turns" of
   ``benchmarks.locomo_facts``) and ``=1``. A fact stands for the turn it came from and the
   first 10 distinct turns are scored: recall@10 per category.
2. **Add latency with evolution on and off.** The time of each turn's extraction + decision +
   linking + writes (``consolidate_episode``), with ``notes.evolve`` on (the run above) and off
   (a second home, same turns, same cached vectors).
3. **Context strategy on small histories.** The first five sessions of each conversation in
   their own scope; for every question whose evidence lies in them, ``context(max_tokens=2000)``
   under ``full_history``, ``retrieval`` and ``auto``: evidence coverage (share of evidence
   turns in the block) and how often auto chose the whole history.

    python -m benchmarks.notes [--data PATH] [--conversations 0-9] [--out benchmarks/RESULTS.md]

The data (snap-research's locomo10.json, CC BY-NC 4.0) is read in place, never copied.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks._common import (
    RESULTS_DIR,
    RESULTS_MD,
    CachingEmbedder,
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

DEFAULT_JSON = RESULTS_DIR / "notes.json"
SYSTEMS = (
    "turns + facts (facts point to turns), expand_links=0",
    "turns + facts (facts point to turns), expand_links=1",
)
STRATEGIES = ("full_history", "retrieval", "auto")
SEARCH_DEPTH = 30
SMALL_SESSIONS = 5
CONTEXT_TOKENS = 2000
K = 10


def _keys(mem: Any, user_id: str, query: str, source: dict[str, str], expand: int) -> list[str]:
    hits = mem.search(query, user_id=user_id, k=SEARCH_DEPTH, expand_links=expand)
    keys: list[str] = []
    for hit in hits:
        key = hit.record.metadata.get("dia_id")
        key = key if isinstance(key, str) else source.get(hit.record.id)
        if key is not None and key not in keys:
            keys.append(key)
    return keys


def _items(turns: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {
            "text": t.memory_text,
            "event_time": t.event_time,
            "metadata": {"dia_id": t.dia_id, "session": t.session},
        }
        for t in turns
    ]


def _extract(mem: Any, records: Sequence[Any], embedder: CachingEmbedder) -> list[float]:
    """Run every episode through the pipeline; the seconds each took."""
    from agentmem import consolidate_episode
    from agentmem.semantic import RulesExtractor, episode_from

    extractor = RulesExtractor()
    # The facts' vectors in large batches first (cached), as benchmarks.locomo_facts does.
    embedder.embed_documents([f.text for r in records for f in extractor.extract(episode_from(r))])
    seconds = []
    for record in records:
        started = time.perf_counter()
        consolidate_episode(mem, record)
        seconds.append(time.perf_counter() - started)
    return seconds


def run_recall(
    conversations: Sequence[Conversation],
    embedder: CachingEmbedder,
    home: Path,
    console: Console,
    evolve_on: frozenset[int] | None = None,
) -> dict[str, Any]:
    """Parts 1 and 2 (see the module docstring). Recall is measured with evolution off (the
    default configuration); the evolution-on pass, for its add latency, runs only over the
    conversations in ``evolve_on`` (all when None): it costs about 20 times as much."""
    from agentmem import Memory, Settings

    rows: dict[str, list[tuple[int, dict[str, float]]]] = {s: [] for s in SYSTEMS}
    latency: dict[str, list[float]] = {"evolution on": [], "evolution off": []}
    links: Counter[str] = Counter()
    evolved_versions = 0
    notes = 0
    for label, evolve in (("evolution on", True), ("evolution off", False)):
        settings = Settings.load(
            home=home / label.replace(" ", "-"),
            store_url=None,
            vectors_url=None,
            llm_model=None,
            adapters="off",
            notes={"evolve": evolve},
        )
        chosen = [
            c for c in conversations if not evolve or evolve_on is None or c.index in evolve_on
        ]
        with Memory(settings=settings, embedder=embedder) as mem:
            for conv in chosen:
                records = mem.add_many(_items(conv.turns), user_id=conv.user_id)
                latency[label].extend(_extract(mem, records, embedder))
                facts = mem.list(user_id=conv.user_id, kinds="semantic", limit=100_000)
                if evolve:
                    evolved_versions += sum(fact.version - 1 for fact in facts)
                    continue
                dia_of = {r.id: r.metadata["dia_id"] for r in records}
                source: dict[str, str] = {}
                for fact in facts:
                    sources = fact.provenance.get("sources") or []
                    if sources and sources[0] in dia_of:
                        source[fact.id] = dia_of[sources[0]]
                notes += len(facts)
                store = mem.backends.store
                seen: set[tuple[str, str]] = set()
                for row in store.link_rows([f.id for f in facts]):
                    if (row.source_id, row.target_id) not in seen:
                        seen.add((row.source_id, row.target_id))
                        links[row.link_type] += 1
                for q in conv.questions:
                    for system, expand in ((SYSTEMS[0], 0), (SYSTEMS[1], 1)):
                        keys = _keys(mem, conv.user_id, q.text, source, expand)
                        rows[system].append((q.category, score_question(keys, q.evidence, [K])))
                console.log(f"conversation {conv.index}: {len(records)} turns, {len(facts)} notes")
        console.log(f"{label}: extraction of {len(latency[label]):,} turns done")
    return {
        "systems": {s: aggregate(r, [K]) for s, r in rows.items()},
        "notes": {"notes": notes, "links": dict(links), "evolution_versions": evolved_versions},
        "evolve_conversations": sorted(
            c.index for c in conversations if evolve_on is None or c.index in evolve_on
        ),
        "add_latency": {label: latency_summary(v) for label, v in latency.items()},
        "add_seconds": {label: sum(v) for label, v in latency.items()},
    }


def run_context(
    conversations: Sequence[Conversation], embedder: CachingEmbedder, home: Path
) -> dict[str, Any]:
    """Part 3 (see the module docstring)."""
    from agentmem import Memory, Settings

    out: dict[str, Any] = {}
    for strategy in STRATEGIES:
        settings = Settings.load(
            home=home / f"context-{strategy}",
            store_url=None,
            vectors_url=None,
            llm_model=None,
            adapters="off",
            context={"strategy": strategy},
        )
        coverage: list[float] = []
        chosen: Counter[str] = Counter()
        tokens: list[int] = []
        with Memory(settings=settings, embedder=embedder) as mem:
            for conv in conversations:
                turns = [t for t in conv.turns if t.session <= SMALL_SESSIONS]
                small = {t.dia_id for t in turns}
                user = f"{conv.user_id}-first{SMALL_SESSIONS}"
                mem.add_many(_items(turns), user_id=user)
                for q in conv.questions:
                    if not q.evidence or not set(q.evidence) <= small:
                        continue
                    ctx = mem.context(q.text, user_id=user, max_tokens=CONTEXT_TOKENS)
                    shown = {r.metadata.get("dia_id") for r in ctx.records}
                    coverage.append(sum(e in shown for e in q.evidence) / len(q.evidence))
                    chosen[ctx.strategy] += 1
                    tokens.append(ctx.tokens)
        out[strategy] = {
            "questions": len(coverage),
            "coverage": sum(coverage) / len(coverage) if coverage else float("nan"),
            "full_coverage": sum(c == 1.0 for c in coverage) / len(coverage) if coverage else 0,
            "chosen": dict(chosen),
            "mean_tokens": sum(tokens) / len(tokens) if tokens else 0,
        }
    return out


def recall_rows(results: dict[str, Any]) -> list[list[Any]]:
    """Recall@10 per category of each system."""
    rows = []
    for name in SYSTEMS:
        summary = results["recall"]["systems"][name]
        by = summary["by_category"]
        rows.append(
            [
                name,
                *(f"{by[c][f'recall@{K}']:.3f}" for c in CATEGORIES.values()),
                f"{summary['overall'][f'recall@{K}']:.3f}",
            ]
        )
    return rows


def render_markdown(results: dict[str, Any]) -> str:
    """The ``notes`` section of RESULTS.md."""
    rec = results["recall"]
    first = rec["systems"][SYSTEMS[0]]["by_category"]
    counts = {c: first[c]["questions"] for c in CATEGORIES.values()}
    headers = ["system", *(f"{c} ({counts[c]} q)" for c in CATEGORIES.values()), "all"]
    lat = rec["add_latency"]
    lat_rows = [
        [label, f"{v['n']:,}", f"{v['mean_ms']:.1f}", f"{v['p50_ms']:.1f}",
         f"{v['p95_ms']:.1f}", f"{rec['add_seconds'][label]:.0f}"]
        for label, v in lat.items()
    ]  # fmt: skip
    ctx_rows = [
        [s, v["questions"], f"{v['coverage']:.3f}", f"{v['full_coverage']:.3f}",
         ", ".join(f"{k} {n}" for k, n in sorted(v["chosen"].items())), f"{v['mean_tokens']:.0f}"]
        for s, v in results["context"].items()
    ]  # fmt: skip
    links = ", ".join(f"{n:,} {t}" for t, n in sorted(rec["notes"]["links"].items()))
    data = results["dataset"]
    return "\n".join(
        [
            "## Linked notes and the context strategy (LoCoMo, LLM-free)",
            "",
            f"Run {results['date']} with `{results['command']}` in "
            f"{results['wall_seconds']:.0f} s.",
            f"Machine: {machine_line(results['machine'])}; load average at end "
            f"{results['load_average_at_end']}.",
            "",
            f"Data: {data['conversations']} conversation(s), {data['turns']:,} turns, "
            f"{data['questions']:,} questions of categories 1-4. Facts from the LLM-free "
            f"pipeline, each a note: {rec['notes']['notes']:,} notes, links {links}; "
            f"Recall is measured with evolution off (the default). "
            f"{rec['notes']['evolution_versions']:,} note versions were written by evolution "
            f"in the evolution-on pass (conversations "
            f"{', '.join(map(str, rec.get('evolve_conversations', [])))}), which measures add "
            "latency only.",
            "",
            f"### Recall@{K} by category, link expansion off and on (same run)",
            "",
            markdown_table(headers, recall_rows(results)),
            "",
            "Both search turns and facts (default retrieval settings), each fact standing for its "
            "source turn, the first 10 distinct turns scored (the best configuration of the "
            "locomo-facts section). `expand_links=1` adds the notes linked to the top hits as "
            "the `links` RRF channel (weight 1.0).",
            "",
            "### Add latency per turn (extraction + decisions + linking + writes)",
            "",
            markdown_table(
                ["notes.evolve", "turns", "mean ms", "p50 ms", "p95 ms", "total s"], lat_rows
            ),
            "",
            f"### Evidence coverage of context(max_tokens={CONTEXT_TOKENS}), first "
            f"{SMALL_SESSIONS} sessions per conversation",
            "",
            markdown_table(
                [
                    "strategy",
                    "questions",
                    "evidence coverage",
                    "all evidence in block",
                    "chosen",
                    "mean tokens",
                ],
                ctx_rows,
            ),
            "",
            "Coverage: share of a question's evidence turns present in the block. "
            "*full_history* forced keeps the newest turns that fit; *auto* uses the whole "
            "history only when all of it fits the budget, else retrieval.",
        ]
    )


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.notes", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA if DEFAULT_DATA.exists() else None
    )
    parser.add_argument("--conversations", default="0-9", help="indices, e.g. 0-9 or 0,3")
    parser.add_argument(
        "--evolve-conversations",
        default="0",
        help="conversations whose add latency is also measured with evolution on ('all' for "
        "every one; it costs about 20 times the evolution-off pass)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS_MD, help="Markdown results file")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="JSON results file")
    return parser


def main(argv: Sequence[str] | None = None, *, embedder: Any = None) -> dict[str, Any]:
    """Run the three measurements and write their outputs; returns the results."""
    offline()
    args = build_parser().parse_args(argv)
    data = require_data(args.data)
    started = time.perf_counter()
    info = machine_info()
    console = report_console()
    conversations = load_locomo(data, parse_conversations(args.conversations))
    embedder = default_embedder(embedder)
    cache = CachingEmbedder(embedder)
    with tempfile.TemporaryDirectory(prefix="agentmem-notes-") as tmp:
        evolve_on = (
            None
            if args.evolve_conversations == "all"
            else frozenset(parse_conversations(args.evolve_conversations))
        )
        recall = run_recall(conversations, cache, Path(tmp), console, evolve_on)
        context = run_context(conversations, cache, Path(tmp))
    results: dict[str, Any] = {
        "benchmark": "notes",
        "date": now_utc(),
        "command": command_line("benchmarks.notes", argv),
        "machine": info,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "wall_seconds": time.perf_counter() - started,
        "dataset": {
            "path": str(args.data),
            "conversations": len(conversations),
            "turns": sum(len(c.turns) for c in conversations),
            "questions": sum(len(c.questions) for c in conversations),
        },
        "recall": recall,
        "context": context,
    }
    console.print(rich_table(f"LoCoMo recall@{K}", ["system", *CATEGORIES.values(), "all"],
                             recall_rows(results)))  # fmt: skip
    write_json(project_path(args.json), results)
    write_section(project_path(args.out), "notes", render_markdown(results))
    return results


if __name__ == "__main__":
    main()
