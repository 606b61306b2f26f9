"""The speaker prior (``retrieval.speaker_prior``), chosen held out through ``Memory.search``.

Each shape is replayed once into a fresh embedded home (``agentmem.evaluation`` loaders: LoCoMo
turns, LoCoMo observations, the small-scope set), and every question is searched once per
weight of the grid on the same home (the setting changed between searches). Leave one LoCoMo
conversation out (small scopes by fifths): each fold picks the weight with the best mean over
shapes of the training questions' primary metric (recall@10 on LoCoMo, hit@1 on small scopes)
and is scored on the held-out questions. Also reported: how often a question names exactly one
speaker, and how much of its evidence that speaker said.

    python -m benchmarks.speaker_prior [--data PATH] [--conversations N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from agentmem import Memory, Settings
from agentmem.evaluation import EvalSet, load_locomo, load_locomo_observations, load_small
from agentmem.evaluation.runner import EVAL_KEY, ranked_keys, replay, scope_user, score
from agentmem.speaker_prior import named_speakers
from benchmarks._common import (
    RESULTS_DIR,
    RESULTS_MD,
    command_line,
    default_embedder,
    machine_info,
    machine_line,
    markdown_table,
    now_utc,
    offline,
    project_path,
    report_console,
    write_section,
)
from benchmarks.locomo import DEFAULT_DATA

GRID = (0.0, 0.5, 1.0, 1.5, 2.0)
PRIMARY = {"locomo": "recall@10", "locomo-observations": "recall@10", "small": "hit@1"}
Row = dict[str, Any]


def measure(name: str, data: EvalSet, embedder: Any) -> list[Row]:
    """One row per question: its shape, fold, category and primary metric per weight."""
    rows: list[Row] = []
    metric = PRIMARY[name]
    for n, scope in enumerate(data.scopes):
        with (
            tempfile.TemporaryDirectory() as home,
            Memory(settings=Settings.load(home=Path(home)), embedder=embedder) as mem,
        ):
            replay(mem, scope, data.add_mode)
            for q in scope.questions:
                got: dict[float, float] = {}
                for w in GRID:
                    mem.settings.retrieval.speaker_prior = w
                    hits = mem.search(
                        q.text, user_id=scope_user(scope), k=10, reference_time=q.reference_time
                    )
                    keys = [str(h.record.metadata.get(EVAL_KEY)) for h in hits]
                    got[w] = score(ranked_keys(keys), q.answers, [1, 10])[metric]
                fold = n if name != "small" else n % 5
                rows.append({"shape": name, "fold": fold, "category": q.category, "by_w": got})
    return rows


def evidence_speakers(path: Path) -> dict[str, float]:
    """How often a LoCoMo question names exactly one of its two speakers, and the share of
    those questions' evidence turns that speaker said."""
    data = json.loads(path.read_text(encoding="utf-8"))
    questions = named = said = evidence = 0
    for sample in data:
        conv = sample["conversation"]
        speakers = (conv["speaker_a"], conv["speaker_b"])
        by = {
            t["dia_id"]: t["speaker"]
            for k, v in conv.items()
            if k.startswith("session_") and isinstance(v, list)
            for t in v
        }
        for qa in sample["qa"]:
            if qa.get("category") not in (1, 2, 3, 4):
                continue
            questions += 1
            names = sorted(named_speakers(qa["question"], set(speakers)))
            if len(names) != 1:
                continue
            named += 1
            turns = [e for e in qa.get("evidence", []) if e in by]
            evidence += len(turns)
            said += sum(by[e] == names[0] for e in turns)
    return {"questions": questions, "naming_one": named, "evidence_by_named": said / evidence}


def cross_validate(rows: list[Row]) -> dict[str, Any]:
    """Held-out scores per shape and category, and the weight each fold chose."""
    shapes = sorted({r["shape"] for r in rows})
    folds = sorted({r["fold"] for r in rows})

    def objective(w: float, train: list[Row]) -> float:
        means = []
        for s in shapes:
            xs = [r["by_w"][w] for r in train if r["shape"] == s]
            if xs:
                means.append(sum(xs) / len(xs))
        return sum(means) / len(means)

    held: list[tuple[Row, float]] = []
    chosen = []
    for f in folds:
        train = [r for r in rows if r["fold"] != f]
        best = max(GRID, key=lambda w: (round(objective(w, train), 9), -w))
        chosen.append(best)
        held += [(r, r["by_w"][best]) for r in rows if r["fold"] == f]
    groups: dict[tuple[str, str], list[tuple[Row, float]]] = defaultdict(list)
    for r, h in held:
        groups[(r["shape"], "all")].append((r, h))
        groups[(r["shape"], r["category"])].append((r, h))
    table = {
        f"{s}/{c}": {
            "n": len(g),
            "off": sum(r["by_w"][0.0] for r, _ in g) / len(g),
            "held out": sum(h for _, h in g) / len(g),
            **{f"w={w:g}": sum(r["by_w"][w] for r, _ in g) / len(g) for w in GRID},
        }
        for (s, c), g in sorted(groups.items())
    }
    return {"folds": chosen, "table": table}


def render_markdown(out: dict[str, Any]) -> str:
    run = out["_run"]
    ev = out["evidence"]
    rows = [
        [key, v["n"], v["off"], v["held out"], *(v[f"w={w:g}"] for w in GRID)]
        for key, v in out["cv"]["table"].items()
    ]
    return "\n".join(
        [
            "## Speaker prior: chosen held out through `Memory.search`",
            "",
            f"Run {run['started']} with `{run['command']}` in {run['wall_seconds']:.0f} s.",
            f"Machine: {machine_line(run['machine'])}. Embedder: {run['embedder']}.",
            "",
            f"LoCoMo: of {ev['questions']:,} questions (categories 1-4), {ev['naming_one']:,} "
            f"name exactly one of the two speakers, and {ev['evidence_by_named']:.1%} of their "
            "evidence turns are that speaker's. Each shape replayed once; every question "
            "searched with each `retrieval.speaker_prior` of the grid (k=10). Folds: one LoCoMo "
            "conversation (turns and observations) or a fifth of the small scopes held out; "
            f"chosen per fold: {', '.join(f'{w:g}' for w in out['cv']['folds'])}. Metric: "
            "recall@10 on LoCoMo, hit@1 on small scopes; the w= columns are in sample.",
            "",
            markdown_table(
                ["shape/category", "questions", "off", "held out", *(f"w={w:g}" for w in GRID)],
                rows,
            ),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--conversations", type=int, default=10)
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "speaker_prior.json")
    parser.add_argument("--out", type=Path, default=RESULTS_MD)
    args = parser.parse_args(argv)
    offline()
    console = report_console()
    started, clock = now_utc(), time.perf_counter()
    embedder = default_embedder(None)
    data = project_path(args.data)
    convs = list(range(args.conversations))
    rows: list[Row] = []
    for name, loaded in (
        ("locomo", load_locomo(data, convs)),
        ("locomo-observations", load_locomo_observations(data, convs)),
        ("small", load_small()),
    ):
        rows += measure(name, loaded, embedder)
        console.print(f"{name}: {sum(r['shape'] == name for r in rows)} questions")
    out: dict[str, Any] = {
        "evidence": evidence_speakers(data),
        "cv": cross_validate(rows),
        "_run": {
            "started": started,
            "command": command_line("benchmarks.speaker_prior", argv),
            "machine": machine_info(),
            "wall_seconds": time.perf_counter() - clock,
            "embedder": embedder.name,
        },
    }
    console.print(json.dumps(out["cv"], indent=1))
    project_path(args.json).write_text(json.dumps(out, indent=1, default=str), encoding="utf-8")
    write_section(project_path(args.out), "speaker-prior", render_markdown(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
