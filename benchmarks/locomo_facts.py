"""LoCoMo evidence recall with LLM-free facts indexed beside the turns, against turns alone.

Every turn of a conversation is stored as an episode (as in :mod:`benchmarks.locomo`), and
each question is searched: that is the baseline. Then every turn goes through the LLM-free
semantic pipeline (:func:`agentmem.consolidate_episode`: rule extraction, decisions against the
facts already known, facts stored as semantic memories with provenance to their turn), and
each question is searched again over turns and facts together. A retrieved fact counts as the
turn it was extracted from (the first episode in its ``provenance.sources``), so the scoring
is the same evidence recall@k; two ways of using the facts are reported:

- **facts as results**: the top k memories, facts and turns alike, each fact standing for its
  source turn (a turn already counted earns nothing twice but still takes its rank);
- **facts point to turns**: the ranked memories mapped to their turns and deduplicated, the
  top k distinct turns kept (what a caller showing source turns would get).

    python -m benchmarks.locomo_facts [--data PATH] [--conversations 0-9] [--k 5 10 20]
                                      [--out benchmarks/RESULTS.md] [--json PATH]
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
    ranked_keys,
    require_data,
    score_question,
)

DEFAULT_JSON = RESULTS_DIR / "locomo_facts.json"
SYSTEMS = (
    "turns only",
    "turns + facts (facts as results)",
    "turns + facts (facts point to turns)",
    "turns + facts (facts vote for turns)",
)
RRF_K = 60
"""Reciprocal rank fusion constant of the vote variant (the retrieval default)."""
SEARCH_DEPTH = 50
"""Memories retrieved per question, so that k distinct turns remain after mapping facts."""


def _search_keys(
    mem: Any, user_id: str, query: str, fact_source: dict[str, str], kinds: Any = None
) -> list[Any]:
    hits = mem.search(query, user_id=user_id, k=SEARCH_DEPTH, kinds=kinds)
    keys: list[str | None] = []
    for hit in hits:
        record = hit.record
        key = record.metadata.get("dia_id")
        keys.append(key if isinstance(key, str) else fact_source.get(record.id))
    return keys


def _distinct(keys: Sequence[str | None]) -> list[str | None]:
    return list(dict.fromkeys(k for k in keys if k is not None))


def _vote(turns: Sequence[str | None], facts: Sequence[str | None]) -> list[str | None]:
    """Turns ranked by reciprocal rank fusion of the turn list and the facts' source turns
    (each list counts a turn once, at its best rank; equal weights)."""
    score: dict[str, float] = {}
    for ranked in (_distinct(turns), _distinct(facts)):
        for rank, key in enumerate(ranked, start=1):
            if key is not None:
                score[key] = score.get(key, 0.0) + 1.0 / (RRF_K + rank)
    return list(sorted(score, key=lambda k: -score[k]))


def run(
    conversations: Sequence[Conversation],
    embedder: CachingEmbedder,
    ks: Sequence[int],
    home: Path,
    console: Console,
) -> dict[str, Any]:
    """Store turns, search (baseline), extract facts from every turn, search again."""
    from agentmem import Memory, Settings, consolidate_episode
    from agentmem.semantic import RulesExtractor, episode_from

    extractor = RulesExtractor()
    fact_embedding_seconds = 0.0

    rows: dict[str, list[tuple[int, dict[str, float]]]] = {s: [] for s in SYSTEMS}
    ops: Counter[str] = Counter()
    fact_types: Counter[str] = Counter()
    turns_with_facts = 0
    extract_seconds = 0.0
    facts_by_turn: dict[str, list[str]] = {}
    settings = Settings.load(home=home, store_url=None, vectors_url=None, llm_model=None)
    with Memory(settings=settings, embedder=embedder) as mem:
        for conv in conversations:
            items = [
                {
                    "text": t.memory_text,
                    "event_time": t.event_time,
                    "metadata": {"dia_id": t.dia_id, "session": t.session},
                }
                for t in conv.turns
            ]
            records = mem.add_many(items, user_id=conv.user_id)
            dia_of = {r.id: r.metadata["dia_id"] for r in records}
            baseline: list[list[str | None]] = []
            for q in conv.questions:
                keys = _search_keys(mem, conv.user_id, q.text, {})
                baseline.append(keys)
                rows[SYSTEMS[0]].append(
                    (q.category, score_question(ranked_keys(keys), q.evidence, ks))
                )
            started = time.perf_counter()
            # Embed every fact the rules will extract in large batches first (the pipeline
            # then finds the vectors cached): the same vectors, far fewer model calls.
            texts = [f.text for r in records for f in extractor.extract(episode_from(r))]
            model_before = embedder.model_seconds
            embedder.embed_documents(texts)
            fact_embedding_seconds += embedder.model_seconds - model_before
            for record in records:
                applied = consolidate_episode(mem, record)
                ops.update(a.op.value for a in applied)
                fact_types.update(a.fact.fact_type.value for a in applied)
                if applied:
                    turns_with_facts += 1
                    facts_by_turn[dia_of[record.id]] = [a.fact.text for a in applied][:3]
            extract_seconds += time.perf_counter() - started
            fact_source: dict[str, str] = {}
            for fact in mem.list(user_id=conv.user_id, kinds="semantic", limit=100_000):
                sources = fact.provenance.get("sources") or []
                if sources and sources[0] in dia_of:
                    fact_source[fact.id] = dia_of[sources[0]]
            for q, turn_keys in zip(conv.questions, baseline, strict=True):
                keys = _search_keys(mem, conv.user_id, q.text, fact_source)
                rows[SYSTEMS[1]].append(
                    (q.category, score_question(ranked_keys(keys), q.evidence, ks))
                )
                rows[SYSTEMS[2]].append(
                    (q.category, score_question(_distinct(keys), q.evidence, ks))
                )
                fact_keys = _search_keys(mem, conv.user_id, q.text, fact_source, kinds="semantic")
                voted = _vote(turn_keys, fact_keys)
                rows[SYSTEMS[3]].append((q.category, score_question(voted, q.evidence, ks)))
            console.log(
                f"conversation {conv.index}: {len(records)} turns, {len(fact_source)} facts"
            )
        stats = mem.stats()
    turns = sum(len(c.turns) for c in conversations)
    examples = list(facts_by_turn.items())[:: max(1, len(facts_by_turn) // 8)][:8]
    return {
        "systems": {s: aggregate(r, ks) for s, r in rows.items()},
        "facts": {
            "turns": turns,
            "semantic_records": stats.by_kind.get("semantic", 0),
            "decisions": dict(ops),
            "fact_types": dict(fact_types),
            "turns_with_facts": turns_with_facts,
            "extract_seconds": extract_seconds,
            "fact_embedding_seconds": fact_embedding_seconds,
            "ms_per_turn": 1000 * extract_seconds / turns if turns else float("nan"),
            "examples": [{"dia_id": d, "facts": f} for d, f in examples],
        },
    }


def category_rows(results: dict[str, Any], k: int) -> list[list[Any]]:
    """recall@k per category (and overall), one row per system."""
    out = []
    for name, metrics in results["systems"].items():
        by_cat = metrics["by_category"]
        out.append(
            [name, *(by_cat[c][f"recall@{k}"] for c in CATEGORIES.values()),
             metrics["overall"][f"recall@{k}"]]
        )  # fmt: skip
    return out


def delta_row(results: dict[str, Any], k: int, system: str) -> list[Any]:
    """The change from turns only, in points."""
    base = results["systems"][SYSTEMS[0]]
    other = results["systems"][system]
    cells = [
        100 * (other["by_category"][c][f"recall@{k}"] - base["by_category"][c][f"recall@{k}"])
        for c in CATEGORIES.values()
    ]
    overall = 100 * (other["overall"][f"recall@{k}"] - base["overall"][f"recall@{k}"])
    name = f"change, {system.split('(')[1].rstrip(')')} (points)"
    return [name, *(f"{x:+.1f}" for x in (*cells, overall))]


def render_markdown(results: dict[str, Any]) -> str:
    """The ``locomo-facts`` section of RESULTS.md."""
    facts = results["facts"]
    data = results["dataset"]
    k = 10
    counts = {c: results["systems"][SYSTEMS[0]]["by_category"][c]["questions"]
              for c in CATEGORIES.values()}  # fmt: skip
    headers = ["system", *(f"{c} ({counts[c]} q)" for c in CATEGORIES.values()), "all"]
    table_rows = [
        *category_rows(results, k),
        delta_row(results, k, SYSTEMS[1]),
        *(delta_row(results, k, name) for name in SYSTEMS[2:]),
    ]
    decisions = ", ".join(f"{n:,} {op}" for op, n in sorted(facts["decisions"].items()))
    types = ", ".join(f"{n:,} {t}" for t, n in sorted(facts["fact_types"].items()))
    lines = [
        "## LoCoMo with LLM-free facts beside the turns",
        "",
        f"Run {results['date']} with `{results['command']}` in {results['wall_seconds']:.0f} s.",
        f"Machine: {machine_line(results['machine'])}.",
        "",
        f"Data: {data['conversations']} conversation(s), {data['turns']:,} turns, "
        f"{data['questions']:,} questions of categories 1-4 (same loading and scoring as the "
        "LoCoMo section). Each turn is stored as an episode; the baseline searches the turns; "
        "then each turn runs through the LLM-free semantic pipeline (rule extraction: "
        "first person rewritten with the speaker's name, relative dates resolved against the "
        "session date and written into the fact, decisions against the facts already known) "
        "and the same questions search turns and facts together. A retrieved fact counts as "
        "the turn it came from. No LLM is called.",
        "",
        f"Facts: {facts['semantic_records']:,} semantic memories from {facts['turns']:,} turns "
        f"({facts['turns_with_facts']:,} turns gave at least one); decisions: {decisions}; "
        f"fact types: {types}. Extraction, decisions and writes took "
        f"{facts['extract_seconds']:.0f} s ({facts['ms_per_turn']:.0f} ms per turn, most of "
        "it embedding each fact and one hybrid search per fact).",
        "",
        f"### Recall@{k} by category, turns only and with facts",
        "",
        markdown_table(headers, table_rows),
        "",
        "*facts as results*: facts and turns compete for the same top 10 (a fact whose turn is "
        "already in the list earns nothing). *facts point to turns*: each retrieved memory is "
        "mapped to its turn and the first 10 distinct turns are scored. *facts vote for turns*: "
        "the turns-only ranking and a facts-only search (mapped to source turns) are fused by "
        f"reciprocal rank fusion (k={RRF_K}, equal weights), so a fact lifts the turn it came "
        "from instead of taking its place.",
        "",
        "Examples of extracted facts:",
        "",
    ]
    lines += [f"- {e['dia_id']}: " + " / ".join(e["facts"]) for e in facts["examples"]]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.locomo_facts", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA if DEFAULT_DATA.exists() else None
    )
    parser.add_argument("--conversations", default="0-9", help="indices, e.g. 0-9 or 0,3")
    parser.add_argument("--k", type=int, nargs="+", default=[5, 10, 20], help="recall@k cut-offs")
    parser.add_argument("--out", type=Path, default=RESULTS_MD, help="Markdown results file")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="JSON results file")
    return parser


def main(argv: Sequence[str] | None = None, *, embedder: Any = None) -> dict[str, Any]:
    """Run the comparison and write its outputs; returns the results."""
    offline()
    args = build_parser().parse_args(argv)
    data = require_data(args.data)
    ks = sorted(set(args.k) | {10})
    if min(ks) < 1 or max(ks) > SEARCH_DEPTH:
        raise SystemExit(f"--k values must be from 1 to {SEARCH_DEPTH}")
    started = time.perf_counter()
    info = machine_info()
    console = report_console()
    conversations = load_locomo(data, parse_conversations(args.conversations))
    embedder = default_embedder(embedder)
    cache = CachingEmbedder(embedder)
    with tempfile.TemporaryDirectory(prefix="agentmem-locomo-facts-") as tmp:
        measured = run(conversations, cache, ks, Path(tmp), console)
    results: dict[str, Any] = {
        "benchmark": "locomo_facts",
        "date": now_utc(),
        "command": command_line("benchmarks.locomo_facts", argv),
        "machine": info,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "wall_seconds": time.perf_counter() - started,
        "k": ks,
        "dataset": {
            "path": str(args.data),
            "conversations": len(conversations),
            "turns": sum(len(c.turns) for c in conversations),
            "questions": sum(len(c.questions) for c in conversations),
        },
        "embedding": {"model": cache.name, "model_seconds": cache.model_seconds},
        **measured,
    }
    console.print(
        rich_table(
            "LoCoMo recall@10 with and without facts",
            ["system", *CATEGORIES.values(), "all"],
            category_rows(results, 10),
        )
    )
    out = project_path(args.out)
    write_section(out, "locomo-facts", render_markdown(results))
    write_json(project_path(args.json), results)
    console.print(f"wrote {out} and {project_path(args.json)}")
    return results


if __name__ == "__main__":
    main()
