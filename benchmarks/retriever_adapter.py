"""Retriever adapter on LoCoMo: dense MiniLM recall@10, base model vs query-side LoRA.

For each conversation, its turns become memories (``"speaker: text"`` plus the caption of a
shared image, loaded exactly as ``benchmarks.locomo`` loads them), an adapter is trained on
questions generated from those turns only (never on LoCoMo's questions), and LoCoMo's
questions of categories 1-4 are answered by dense search over the conversation's turns, first
with the base model's query vectors, then with the adapted ones. Evidence recall@10 is the
share of a question's evidence turns found in its top 10, averaged over questions.

``--shared`` also trains one adapter on conversations 0-4 and evaluates it on 5-9: transfer
to scopes it never saw.

    python -m benchmarks.retriever_adapter --conversations 0-2 --time-budget 60
    python -m benchmarks.retriever_adapter --shared            # all ten, 90 s each

The data is read in place, never copied. Results go to
``benchmarks/results/retriever_adapter.json`` and a table is printed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from agentmem.embedders import SentenceTransformerEmbedder
from agentmem.models import MemoryRecord, Scope
from agentmem_gpu import (
    AdaptedQueryEmbedder,
    RetrieverAdapterConfig,
    TrainSet,
    TrainSetConfig,
    build_trainset,
    train_retriever_adapter,
)
from benchmarks._common import (
    RESULTS_DIR,
    RESULTS_MD,
    command_line,
    machine_info,
    machine_line,
    markdown_table,
    now_utc,
    offline,
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

DEFAULT_OUT = RESULTS_DIR / "retriever_adapter.json"
K = 10


def turn_records(conv: Conversation) -> list[MemoryRecord]:
    """The conversation's turns as episodic memories, dated by their session."""
    scope = Scope(user_id=conv.user_id)
    return [
        MemoryRecord(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"locomo/{conv.index}/{turn.dia_id}")),
            scope=scope,
            text=turn.memory_text,
            event_time=turn.event_time,
            metadata={"session": turn.session, "speaker": turn.speaker, "dia_id": turn.dia_id},
        )
        for turn in conv.turns
    ]


def evidence_recall(
    query_vectors: np.ndarray, doc_vectors: np.ndarray, conv: Conversation
) -> dict[str, Any]:
    """Mean evidence recall@10, overall and per category, of dense search by ``query_vectors``."""
    top = np.argsort(-(query_vectors @ doc_vectors.T), axis=1)[:, :K]
    per_cat: defaultdict[str, list[float]] = defaultdict(list)
    for question, row in zip(conv.questions, top, strict=True):
        ranked = [conv.turns[i].dia_id for i in row]
        per_cat[CATEGORIES[question.category]].append(recall_at(ranked, question.evidence, K))
    every = [v for values in per_cat.values() for v in values]
    return {
        "recall@10": float(np.mean(every)),
        "questions": len(every),
        "by_category": {c: float(np.mean(v)) for c, v in sorted(per_cat.items())},
        "category_questions": {c: len(v) for c, v in sorted(per_cat.items())},
    }


class Prepared:
    """A conversation's memories, its base-model vectors and its base-model recall."""

    def __init__(self, conv: Conversation, embedder: SentenceTransformerEmbedder) -> None:
        self.conv = conv
        self.records = turn_records(conv)
        started = time.monotonic()
        self.doc_vectors = embedder.embed_documents([r.text for r in self.records])
        self.embed_seconds = time.monotonic() - started
        queries = embedder.embed_documents([q.text for q in conv.questions])
        self.base = evidence_recall(queries, self.doc_vectors, conv)

    def trainset(self, seed: int) -> TrainSet:
        """Training pairs generated from this conversation's turns only."""
        return build_trainset(self.records, TrainSetConfig(seed=seed))

    def doc_vectors_for(self, trainset: TrainSet) -> np.ndarray:
        """The base vectors in the train set's memory order (it sorts by session and time)."""
        row = {r.id: i for i, r in enumerate(self.records)}
        return self.doc_vectors[[row[i] for i in trainset.memory_ids]]

    def adapted(self, embedder: SentenceTransformerEmbedder, adapter_dir: Path) -> dict[str, Any]:
        """Recall with the questions embedded through the adapter (documents unchanged)."""
        encoder = AdaptedQueryEmbedder(embedder, adapter_dir)
        vectors = encoder.embed_queries([q.text for q in self.conv.questions])
        return evidence_recall(vectors, self.doc_vectors, self.conv)


def run_own(
    convs: list[Prepared],
    embedder: SentenceTransformerEmbedder,
    config: RetrieverAdapterConfig,
    work: Path,
) -> list[dict[str, Any]]:
    """One adapter per conversation, trained and evaluated on that conversation."""
    rows = []
    for prepared in convs:
        started = time.monotonic()
        trainset = prepared.trainset(config.seed)
        generate_seconds = time.monotonic() - started
        result = train_retriever_adapter(
            trainset,
            work / f"conv{prepared.conv.index}",
            config,
            doc_vectors=prepared.doc_vectors_for(trainset),
        )
        adapted = prepared.adapted(embedder, result.adapter_dir)
        row = {
            "conversation": prepared.conv.index,
            "memories": len(prepared.records),
            "questions": len(prepared.conv.questions),
            "skipped_questions": prepared.conv.skipped_questions,
            "train_pairs": len(trainset.train),
            "base": prepared.base,
            "adapted": adapted,
            "gain": adapted["recall@10"] - prepared.base["recall@10"],
            "generate_seconds": round(generate_seconds, 2),
            "embed_seconds": round(prepared.embed_seconds, 2),
            "train": result.metrics,
        }
        rows.append(row)
        print(_row_line(row), flush=True)
    return rows


def run_shared(
    train_convs: list[Prepared],
    test_convs: list[Prepared],
    embedder: SentenceTransformerEmbedder,
    config: RetrieverAdapterConfig,
    work: Path,
) -> dict[str, Any]:
    """One adapter trained on ``train_convs``' generated questions, evaluated on the others."""
    trainsets = [c.trainset(config.seed) for c in train_convs]
    merged = TrainSet.merge(trainsets)
    vectors = np.concatenate(
        [c.doc_vectors_for(t) for c, t in zip(train_convs, trainsets, strict=True)]
    )
    result = train_retriever_adapter(merged, work / "shared", config, doc_vectors=vectors)
    rows = []
    for prepared in test_convs:
        adapted = prepared.adapted(embedder, result.adapter_dir)
        rows.append(
            {
                "conversation": prepared.conv.index,
                "base": prepared.base,
                "adapted": adapted,
                "gain": adapted["recall@10"] - prepared.base["recall@10"],
            }
        )
        print(f"shared adapter on conv {prepared.conv.index}: {_recall_line(rows[-1])}")
    return {
        "trained_on": [c.conv.index for c in train_convs],
        "evaluated_on": [c.conv.index for c in test_convs],
        "train": result.metrics,
        "per_conversation": rows,
        "overall": overall(rows),
    }


def overall(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Question-weighted recall over conversations, base and adapted, overall and per category."""
    out: dict[str, Any] = {}
    for side in ("base", "adapted"):
        count = sum(r[side]["questions"] for r in rows)
        total = sum(r[side]["recall@10"] * r[side]["questions"] for r in rows)
        cats: dict[str, float] = {}
        for cat in CATEGORIES.values():
            n = sum(r[side]["category_questions"].get(cat, 0) for r in rows)
            if n:
                weighted = sum(
                    r[side]["by_category"].get(cat, 0.0) * r[side]["category_questions"].get(cat, 0)
                    for r in rows
                )
                cats[cat] = weighted / n
        out[side] = {"recall@10": total / count if count else 0.0, "by_category": cats}
    out["gain"] = out["adapted"]["recall@10"] - out["base"]["recall@10"]
    return out


def _recall_line(row: dict[str, Any]) -> str:
    base, adapted = row["base"], row["adapted"]
    cats = "  ".join(
        f"{c} {base['by_category'][c]:.3f}->{adapted['by_category'][c]:.3f}"
        for c in CATEGORIES.values()
        if c in base["by_category"]
    )
    return (
        f"base {base['recall@10']:.3f} -> adapted {adapted['recall@10']:.3f} "
        f"({row['gain']:+.3f})  {cats}"
    )


def _row_line(row: dict[str, Any]) -> str:
    train = row["train"]
    return (
        f"conv {row['conversation']}: {row['questions']} questions, {row['train_pairs']} pairs, "
        f"{_recall_line(row)}; trained {train['train_seconds']:.0f} s, {train['steps']} steps "
        f"({train['stopped']})"
    )


def print_table(results: dict[str, Any]) -> None:
    """The per-conversation and overall table."""
    header = f"{'':<14}{'base':>7}{'adapted':>9}{'gain':>8}{'train s':>9}{'steps':>7}"
    print("\n" + header)
    for row in results.get("per_conversation", []):
        print(
            f"{'conv ' + str(row['conversation']):<14}{row['base']['recall@10']:>7.3f}"
            f"{row['adapted']['recall@10']:>9.3f}{row['gain']:>+8.3f}"
            f"{row['train']['train_seconds']:>9.0f}{row['train']['steps']:>7}"
        )
    blocks = [("own adapters", results.get("overall"))]
    if "shared" in results:
        blocks.append(("shared 0-4→5-9", results["shared"]["overall"]))
    for name, block in blocks:
        if not block:
            continue
        print(
            f"{name:<14}{block['base']['recall@10']:>7.3f}{block['adapted']['recall@10']:>9.3f}"
            f"{block['gain']:>+8.3f}"
        )
        for cat in CATEGORIES.values():
            if cat in block["base"]["by_category"]:
                b, a = block["base"]["by_category"][cat], block["adapted"]["by_category"][cat]
                print(f"  {cat:<12}{b:>7.3f}{a:>9.3f}{a - b:>+8.3f}")


def render_markdown(results: dict[str, Any]) -> str:
    """The ``retriever-adapter`` section of RESULTS.md: per conversation and per category."""
    cats = list(CATEGORIES.values())
    rows = []
    for row in results.get("per_conversation", []):
        train = row["train"]
        rows.append(
            [
                str(row["conversation"]),
                row["memories"],
                row["questions"],
                row["train_pairs"],
                row["base"]["recall@10"],
                row["adapted"]["recall@10"],
                f"{row['gain']:+.3f}",
                train["train_seconds"],
                train["steps"],
                train["device"],
            ]
        )
    blocks = [("own adapter per conversation", results.get("overall"))]
    if "shared" in results:
        blocks.append(("one adapter trained on 0-4, tested on 5-9", results["shared"]["overall"]))
    cat_rows = [
        [
            name,
            side,
            block[key]["recall@10"],
            *[block[key]["by_category"].get(c) for c in cats],
        ]
        for name, block in blocks
        if block
        for side, key in (("without", "base"), ("with adapter", "adapted"))
    ]
    seconds = [r["train"]["train_seconds"] for r in results.get("per_conversation", [])]
    command = (
        f"with `{results['command']}`"
        if "command" in results
        else "(that version of the script did not record its command line; its settings "
        "are in benchmarks/results/retriever_adapter.json)"
    )
    return "\n\n".join(
        [
            "## LoCoMo: retriever adapter per conversation (dense search)",
            f"Run {results['started']} {command}. Machine: "
            f"{machine_line(results['machine'])}. Device: CPU (no GPU was lent to these "
            "sessions; the same command uses CUDA when present).",
            "Method: for each conversation its turns are the memories; a query-side LoRA "
            f"(r={results['config']['lora_r']}, {results['config']['time_budget_s']:.0f} s "
            "budget) is trained on LLM-free questions generated from those turns only, never on "
            "LoCoMo's questions; LoCoMo's questions (categories 1-4) are then answered by dense "
            "all-MiniLM-L6-v2 search over the conversation's turns with the base query vectors "
            "and with the adapted ones. Documents keep the base model's vectors. "
            "The hybrid-search view of the same adapters is in the scope-adapter section.",
            markdown_table(["adapter", "search", "recall@10", *cats], cat_rows),
            f"Training time per conversation on CPU: {min(seconds):.0f}-{max(seconds):.0f} s "
            f"(time budget), {sum(seconds):.0f} s for all ten."
            if seconds
            else "",
            markdown_table(
                [
                    "conversation",
                    "memories",
                    "questions",
                    "train pairs",
                    "without",
                    "with adapter",
                    "gain",
                    "train s",
                    "steps",
                    "device",
                ],
                rows,
            ),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="locomo10.json")
    parser.add_argument(
        "--conversations", default="0-9", help="conversations with their own adapter: 0-9, 0,3"
    )
    parser.add_argument(
        "--time-budget", type=float, default=90.0, help="training seconds per conversation"
    )
    parser.add_argument("--shared", action="store_true", help="also train on 0-4, test on 5-9")
    parser.add_argument(
        "--shared-budget", type=float, default=None, help="training seconds of the shared adapter"
    )
    parser.add_argument(
        "--max-steps", type=int, default=None, help="step limit per adapter (default: the config's)"
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads while training (0 = default)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--results", type=Path, default=RESULTS_MD, help="Markdown results file")
    parser.add_argument(
        "--render-only", action="store_true", help="rewrite the RESULTS.md section from --out"
    )
    args = parser.parse_args(argv)
    if args.render_only:
        import json

        saved = json.loads(args.out.read_text(encoding="utf-8"))
        write_section(args.results, "retriever-adapter", render_markdown(saved))
        return 0

    offline()
    if not args.data.is_file():
        print(f"LoCoMo data not found at {args.data}; pass --data", file=sys.stderr)
        return 2
    own = parse_conversations(args.conversations) if args.conversations else []
    needed = sorted(set(own) | (set(range(10)) if args.shared else set()))
    convs = {c.index: c for c in load_locomo(args.data, needed)}
    config = RetrieverAdapterConfig(
        time_budget_s=args.time_budget, seed=args.seed, threads=args.threads, progress=False
    )
    if args.max_steps:
        config = replace(config, max_steps=args.max_steps)
    embedder = SentenceTransformerEmbedder.minilm(precision="fp32")
    prepared: dict[int, Prepared] = {}

    def get(index: int) -> Prepared:
        if index not in prepared:
            prepared[index] = Prepared(convs[index], embedder)
        return prepared[index]

    results: dict[str, Any] = {
        "benchmark": "retriever_adapter",
        "method": (
            "LoCoMo categories 1-4, evidence recall@10 of dense all-MiniLM-L6-v2 search over a "
            "conversation's turns; adapters trained on LLM-free questions generated from the "
            "turns (never LoCoMo's questions); documents keep the base model's vectors"
        ),
        "config": config.to_dict(),
        "machine": machine_info(),
        "started": now_utc(),
        "command": command_line("benchmarks.retriever_adapter", argv),
    }
    with tempfile.TemporaryDirectory(prefix="retriever-adapter-") as tmp:
        work = Path(tmp)
        if own:
            rows = run_own([get(i) for i in own], embedder, config, work)
            results["per_conversation"] = rows
            results["overall"] = overall(rows)
        if args.shared:
            budget = args.shared_budget or 5 * args.time_budget
            results["shared"] = run_shared(
                [get(i) for i in range(5)],
                [get(i) for i in range(5, 10)],
                embedder,
                replace(config, time_budget_s=budget),
                work,
            )
    results["finished"] = now_utc()
    write_json(args.out, results)
    write_section(args.results, "retriever-adapter", render_markdown(results))
    print_table(results)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
