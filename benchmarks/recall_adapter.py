"""Recall adapter: closed-book answers on held-out paraphrased questions, the gate, latency.

The first ``--turns`` turns of a LoCoMo conversation become a scope's memories; LLM-free
question-answer pairs are generated from them (:mod:`gpu.recall_data`: cloze questions in
training templates, and held-out questions about the same facts in paraphrased templates
never trained on); a LoRA on a causal LM is trained for ``--time-budget`` seconds. Reported:

- exact match / token F1 of the closed-book answers to the held-out paraphrased questions
  (and to the training questions: memorisation), base model against adapter;
- the confidence gate: at each threshold, the share of answers it lets through (coverage)
  and the exact match among those (precision);
- latency: one closed-book answer against one retrieval (``Memory.search``, k=5, hybrid) over
  the same memories, and ``Memory.recall`` end to end through the promoted adapter.

With no ``--base-model`` (nothing pretrained is available offline here), the causal LM is a
small GPT-2 built from a config in code with a word-level vocabulary of the generated texts
and **random weights**: it knows no language, so its figures show the machinery and the
direction of the effect, not what a real model reaches. Pass ``--base-model PATH`` (e.g. a
local Qwen2.5-0.5B directory) on a GPU for real figures; see docs/operations.md.

    python -m benchmarks.recall_adapter                       # tiny model, ~2 min on CPU
    python -m benchmarks.recall_adapter --base-model ~/models/Qwen2.5-0.5B --time-budget 300

Results go to ``benchmarks/results/recall_adapter.json`` and the ``recall-adapter`` section of
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
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
from gpu.config import RecallAdapterConfig
from gpu.recall import RecallAdapter, RecallLM, evaluate_answers, train_recall_adapter
from gpu.recall_data import QAPair, build_recallset, exact_match, token_f1
from gpu.registry import AdapterRegistry
from gpu.tiny_lm import build_tiny_lm_for

DEFAULT_OUT = RESULTS_DIR / "recall_adapter.json"
THRESHOLDS = (-0.1, -0.25, -0.5, -1.0, -2.0)


def gate_curve(answers: list[tuple[str, float, str]]) -> list[dict[str, float]]:
    """Coverage and precision of the gate at each threshold, from (answer, confidence, gold)."""
    rows = []
    for threshold in THRESHOLDS:
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


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build the scope, train, evaluate and time; returns the results."""
    offline()
    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    conv = load_locomo(Path(args.data), [args.conversation])[0]
    records = turn_records(conv)[: args.turns]
    recallset = build_recallset(records)
    work = Path(tempfile.mkdtemp(prefix="recall-bench-"))
    tiny = args.base_model is None
    if tiny:
        base = build_tiny_lm_for(
            work / "tiny-gpt2", recallset, n_embd=args.tiny_dim, n_layer=args.tiny_layers, n_head=4
        )
        targets: tuple[str, ...] = ("c_attn", "c_proj", "c_fc")
    else:
        base = Path(args.base_model).expanduser()
        targets = ()
    config = RecallAdapterConfig(
        time_budget_s=args.time_budget,
        max_steps=args.max_steps,
        eval_interval=args.eval_interval,
        learning_rate=args.lr,
        min_lr=args.lr / 10,
        target_modules=targets,
        patience=0,
        max_new_tokens=8,
        max_eval_questions=args.eval_questions,
        progress=not args.quiet,
    )
    started = time.perf_counter()
    result = train_recall_adapter(recallset, work / "adapter", base, config)
    train_s = time.perf_counter() - started

    lm = RecallLM.from_base(base, config, adapter_dir=result.adapter_dir)
    held = list(recallset.eval)
    step = max(1, len(recallset.train) // len(held))
    train_sample = list(recallset.train[::step])[: min(len(held), 30)]
    with lm.adapter_disabled():
        base_held = evaluate_answers(lm, held, max_new_tokens=8, gate_threshold=-0.5)
        base_train = evaluate_answers(lm, train_sample, max_new_tokens=8, gate_threshold=-0.5)
    tuned_train = evaluate_answers(lm, train_sample, max_new_tokens=8, gate_threshold=-0.5)
    answers, answer_s = answer_all(lm, held, 8)
    tuned_held = {
        "exact_match": sum(exact_match(a, g) for a, _, g in answers) / len(answers),
        "f1": sum(token_f1(a, g) for a, _, g in answers) / len(answers),
    }

    # retrieval over the same memories, and Memory.recall through the promoted adapter
    embedder = SentenceTransformerEmbedder.minilm(precision="fp32")
    # The graph channel is off: this scope holds no facts (nothing for it to find), and it
    # keeps the measured retrieval path to the channels every release has.
    weights = {**Settings.load(home=work / "home").retrieval.weights, "graph": 0.0}
    settings = Settings.load(home=work / "home", retrieval={"weights": weights})
    with Memory(settings=settings, embedder=embedder) as mem:
        scope = Scope(user_id=conv.user_id)
        mem.add_many(
            [{"text": r.text, "metadata": dict(r.metadata)} for r in records], user_id=scope.user_id
        )
        registry = AdapterRegistry.from_settings(settings)
        version = registry.register(scope_key(scope), result.adapter_dir)
        registry.promote(scope_key(scope), version.version, force=True)
        contains = []
        search_s, recall_s = [], []
        for pair in held:
            t = time.perf_counter()
            hits = mem.search(pair.question, user_id=scope.user_id, k=5)
            search_s.append(time.perf_counter() - t)
            contains.append(bool(hits) and pair.answer.lower() in hits[0].record.text.lower())
        for pair in held:
            t = time.perf_counter()
            mem.recall(pair.question, user_id=scope.user_id)
            recall_s.append(time.perf_counter() - t)
        adapter = registry.recall_model(scope_key(scope))
        assert isinstance(adapter, RecallAdapter)
    return {
        "created": now_utc(),
        "command": command_line("benchmarks.recall_adapter", sys.argv[1:]),
        "machine": machine_info(),
        "base_model": (
            f"tiny GPT-2 from config ({args.tiny_layers} layers, {args.tiny_dim}-d), random weights"
            if tiny
            else str(base)
        ),
        "lora_targets": list(targets),  # empty: peft's default for the model type
        "tiny": tiny,
        "conversation": args.conversation,
        "memories": len(records),
        "train_pairs": len(recallset.train),
        "held_out_pairs": len(held),
        "train_seconds": round(train_s, 1),
        "adapter_metrics": result.metrics,
        "held_out": {"base": base_held, "adapter": tuned_held},
        "train_questions": {"base": base_train, "adapter": tuned_train},
        "gate": gate_curve(answers),
        "gate_threshold": config.gate_threshold,
        "latency_ms": {
            "closed_book_answer": median_ms(answer_s),
            "retrieval_search_k5": median_ms(search_s),
            "memory_recall_gated": median_ms(recall_s),
        },
        "retrieval_top1_contains_answer": sum(contains) / len(contains),
        "device": str(lm.device),
    }


def section(r: dict[str, Any]) -> str:
    """The RESULTS.md section."""
    held, train = r["held_out"], r["train_questions"]
    lat = r["latency_ms"]
    targets = ", ".join(r.get("lora_targets", ["c_attn", "c_proj", "c_fc"])) or "peft's default"
    caveat = (
        f"**Base model: {r['base_model']}**, built in code (no "
        "pretrained causal LM is available offline here) and a word-level vocabulary of the "
        "generated texts. It knows no language, so these figures show that the pipeline "
        "learns and gates, not what a real model reaches; run it with `--base-model` on a "
        "local model (docs/operations.md)."
        if r["tiny"]
        else f"Base model: `{r['base_model']}`."
    )
    rows = [
        [
            "held-out paraphrases: exact match",
            fmt(held["base"]["exact_match"]),
            fmt(held["adapter"]["exact_match"]),
        ],
        ["held-out paraphrases: F1", fmt(held["base"]["f1"]), fmt(held["adapter"]["f1"])],
        [
            "training questions: exact match",
            fmt(train["base"]["exact_match"]),
            fmt(train["adapter"]["exact_match"]),
        ],
        ["training questions: F1", fmt(train["base"]["f1"]), fmt(train["adapter"]["f1"])],
    ]
    gate_rows = [
        [fmt(g["threshold"], 2), fmt(g["coverage"]), fmt(g["precision"])] for g in r["gate"]
    ]
    lat_rows = [
        ["closed-book answer (adapter, greedy)", fmt(lat["closed_book_answer"], 1)],
        [
            "retrieval: Memory.search k=5 (hybrid, MiniLM, no graph channel)",
            fmt(lat["retrieval_search_k5"], 1),
        ],
        [
            "Memory.recall end to end (adapter + gate + fallback)",
            fmt(lat["memory_recall_gated"], 1),
        ],
    ]
    return f"""## Recall adapter (closed-book answers, gate, latency)

{caveat}

LoCoMo conversation {r["conversation"]}, first {r["memories"]} turns as memories;
{r["train_pairs"]} LLM-free training questions (cloze questions in 4 templates) and
{r["held_out_pairs"]} held-out questions about the same facts in 2 paraphrased templates never
trained on. LoRA on {targets}, trained {r["train_seconds"]} s on {r["device"]}
(stopped: {r["adapter_metrics"]["stopped"]}, {r["adapter_metrics"]["steps"]} steps).

{markdown_table(["questions", "base model", "with recall adapter"], rows)}

Gate (mean answer-token log-probability at or above the threshold -> parametric answer, else
retrieval), on the held-out paraphrases; precision = exact match of the answers let through:

{markdown_table(["threshold", "coverage", "precision"], gate_rows)}

Latency, median per question (ms):

{markdown_table(["path", "ms"], lat_rows)}

For reference, retrieval's top hit contains the gold answer for
{fmt(r["retrieval_top1_contains_answer"])} of these questions (cloze questions quote their
fact, so retrieval finds it easily; retrieval returns a memory, not a short answer).

{machine_line(r["machine"])}; `{r["command"]}`; {r["created"]}.
"""


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--conversation", type=int, default=0)
    parser.add_argument("--turns", type=int, default=60, help="turns used as memories")
    parser.add_argument("--base-model", default=None, help="local causal LM directory")
    parser.add_argument("--time-budget", type=float, default=120.0)
    parser.add_argument("--max-steps", type=int, default=3000)
    parser.add_argument("--eval-interval", type=int, default=200)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument(
        "--eval-questions", type=int, default=16, help="held-out questions per evaluation"
    )
    parser.add_argument("--tiny-dim", type=int, default=128)
    parser.add_argument("--tiny-layers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
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
