"""Iterative retrieval and query-type routing, LLM-free, measured held out.

Each shape (LoCoMo turns, LoCoMo observations, the shipped small-scope set; the
``agentmem.evaluation`` loaders) is replayed once into a fresh embedded home. For every
question the product's first round (``agentmem.retrieval.search`` with the shipped settings,
top 100 with their fused scores) is recorded, and then:

- *iterative retrieval* (:mod:`agentmem.feedback`): the second round's ranked lists for each
  way of forming it (top hits 1/3/5; 10 or 30 new terms; names counted once or twice; the top
  hits' mean vector blended into the query vector at 0.5 or 1; each list also without the
  seeding hits' sessions), run through the same scoped index. Offline, the second round is
  added to the first round's fused scores (``score += w / (20 + rank)``) with a BM25 weight
  and a dense weight from 0 to 1 and a stop rule (no second round when the first round's
  best score leads the next by more than 10% or 30% of itself, or never);
- *query-type routing*: the product's top 10 under a few other settings (time channel weight
  2 or 4; session prior 0 or 8; BM25 weight 1; dense weight 2). A question is a *when*
  question (asks for a time: "when", "what year", "how long"), *dated* (names a time the
  time channel parses) or *other*; each type gets the setting that wins on the training folds.

Every choice is made on training folds (leave one LoCoMo conversation out, its turns and its
observations together; small scopes by fifths) by the mean over the three shapes of the
primary metric (recall@10 on LoCoMo, hit@1 on the small scopes) and scored on the held-out
fold; the shipped default is scored on the same questions in the same run. One product-path
check runs ``Memory.search`` with ``retrieval.feedback_weight`` 0.5 and compares it with the
offline figure of the same configuration.

    python -m benchmarks.iterative_retrieval [--conversations N]
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agentmem import Memory, Settings
from agentmem.evaluation.runner import EVAL_KEY, replay, scope_user
from agentmem.feedback import Feedback, blended_vector, expansion_terms
from agentmem.fusion import tie_ranks
from agentmem.models import Scope
from agentmem.retrieval import build_request, search
from agentmem.vectors.base import BM25, DENSE
from benchmarks._common import (
    RESULTS_DIR,
    RESULTS_MD,
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
from benchmarks.locomo import DEFAULT_DATA
from benchmarks.tune_shapes import shape_loaders, shapes_embedder

LIMIT = 100
RRF_K = 20
HITS = (1, 3, 5)
TERMS = (10, 30)
BOOSTS = (1.0, 2.0)
BLENDS = (0.5, 1.0)
WEIGHTS = (0.0, 0.25, 0.5, 1.0)
STOPS: tuple[float | None, ...] = (None, 0.1, 0.3)
ROUTES: dict[str, dict[str, Any]] = {
    "default": {},
    "time 2": {"weights": {"time": 2.0}},
    "time 4": {"weights": {"time": 4.0}},
    "session prior 0": {"session_prior": 0.0},
    "session prior 8": {"session_prior": 8.0},
    "bm25 1": {"weights": {"bm25": 1.0}},
    "dense 2": {"weights": {"dense": 2.0}},
}
"""Settings a question type may be routed to (changes to ``Settings.retrieval``)."""
PRODUCT_CHECK = {"feedback_weight": 0.5}
"""A product-path run of iterative retrieval (the setting's other defaults: 3 hits, 10 terms,
blend 0.5, no stop rule), compared with its offline figure."""
PRIMARY = {"locomo": "recall@10", "locomo-observations": "recall@10", "small": "hit@1"}
NAMES = {
    "locomo": "LoCoMo turns recall@10",
    "locomo-observations": "LoCoMo observations recall@10",
    "small": "small scopes hit@1",
}
_WHEN = re.compile(
    r"^\s*(when\b|what (year|month|date|day|time)\b|how long\b|in which (year|month)\b)", re.I
)


def question_type(text: str, dated: bool) -> str:
    """``when`` (asks for a time), ``dated`` (names a time the time channel parses) or
    ``other``."""
    if _WHEN.search(text):
        return "when"
    return "dated" if dated else "other"


@dataclass
class Row:
    """One question: what it is, which candidates answer it, and every list recorded for it."""

    shape: str
    fold: int
    category: str
    qtype: str
    n_answers: int
    relevant: np.ndarray  # per candidate: index of the answer it is, or -1
    base: np.ndarray  # first-round fused score per candidate (0 when not in the first round)
    base_order: np.ndarray  # candidate positions in first-round order (ties by it)
    margin: float
    lists: dict[str, np.ndarray]  # second-round list -> 1/(RRF_K + rank) per candidate
    routes: dict[str, list[int]]  # route -> top-10 candidate positions
    product: list[int]  # product-path check: top-10 candidate positions


def _route_settings(mem: Memory, change: dict[str, Any], shipped: Any) -> None:
    """Set ``change`` over the ``shipped`` retrieval settings (an empty change restores them)."""
    config = mem.backends.settings.retrieval
    config.weights = {**shipped.weights, **change.get("weights", {})}
    for key in ("session_prior", "feedback_weight"):
        setattr(config, key, change.get(key, getattr(shipped, key)))


def rows_for(shape: str, data: Any, embedder: Any, console: Any, fold_of: Any) -> list[Row]:
    """Replay ``data`` and record every list of every question."""
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="agentmem-iterative-") as tmp:
        settings = Settings.load(home=Path(tmp), store_url=None, vectors_url=None)
        with Memory(settings=settings, embedder=embedder) as mem:
            b = mem.backends
            shipped = b.settings.retrieval.model_copy(deep=True)
            for index, scope in enumerate(data.scopes):
                started = time.perf_counter()
                replay(mem, scope, data.add_mode)
                user = Scope(user_id=scope_user(scope))
                ids = b.store.ids_in_scope(user)
                stored = b.store.get_many(ids)
                keys = {r.id: str(r.metadata.get(EVAL_KEY)) for r in stored}
                group = b.settings.retrieval.window_group_key
                sessions = {r.id: r.metadata.get(group) for r in stored}
                for q in scope.questions:
                    rows.append(
                        _record(mem, shipped, shape, q, user, keys, sessions, fold_of(index, scope))
                    )
                console.print(
                    f"{shape} {scope.name}: {len(scope.memories)} memories, "
                    f"{len(scope.questions)} questions, {time.perf_counter() - started:.1f} s"
                )
    embedder.save()
    return rows


def _record(
    mem: Memory,
    shipped: Any,
    shape: str,
    q: Any,
    user: Scope,
    keys: dict[str, str],
    sessions: dict[str, Any],
    fold: int,
) -> Row:
    b = mem.backends

    def run(k: int) -> list[tuple[str, float]]:
        hits = search(
            b,
            q.text,
            user,
            k=k,
            reference_time=q.reference_time,
            remember=False,
            count_recall=False,
        )
        return [(h.record.id, h.score) for h in hits]

    first = run(LIMIT)
    request = build_request(b, q.text, user, limit=LIMIT, reference_time=q.reference_time)
    top = [i for i, _ in first[: max(HITS)]]
    by_id = {r.id: r for r in b.store.get_many(top, user)}
    records = [by_id[i] for i in top if i in by_id]
    second: dict[str, list[tuple[str, float]]] = {}
    for n in HITS:
        texts = [r.text for r in records[:n]]
        for terms, boost in itertools.product(TERMS, BOOSTS):
            sparse = expansion_terms(b, request.sparse.indices, texts, Feedback(n, terms, 0, boost))
            found = b.index.search_sparse(sparse, request.query, using=BM25) if sparse else []
            second[f"bm25/{n}/{terms}/{boost:g}"] = found
        for blend in BLENDS:
            vector = blended_vector(b, request.vector, records[:n], blend)
            found = b.index.search(vector, request.query, using=DENSE) if vector is not None else []
            second[f"dense/{n}/{blend:g}"] = found
        # the same lists without the sessions of the seeding hits (aimed at other sessions)
        seen = {sessions.get(r.id) for r in records[:n]} - {None}
        for name in [k for k in second if f"/{n}/" in k and not k.startswith("x")]:
            second[f"x{name}"] = [(i, v) for i, v in second[name] if sessions.get(i) not in seen]
    routes: dict[str, list[str]] = {}
    for name, change in ROUTES.items():
        _route_settings(mem, change, shipped)
        routes[name] = [i for i, _ in run(10)]
    _route_settings(mem, PRODUCT_CHECK, shipped)
    product = [i for i, _ in run(10)]
    _route_settings(mem, {}, shipped)

    candidates = list(
        dict.fromkeys(
            [i for i, _ in first]
            + [i for ranked in second.values() for i, _ in ranked]
            + [i for ids in routes.values() for i in ids]
            + product
        )
    )
    pos = {c: n for n, c in enumerate(candidates)}
    answers = {a: n for n, a in enumerate(q.answers)}
    relevant = np.array([answers.get(keys.get(c, ""), -1) for c in candidates])
    base = np.zeros(len(candidates))
    for i, s in first:
        base[pos[i]] = s
    lists = {}
    for name, ranked in second.items():
        v = np.zeros(len(candidates))
        for rank, (i, _) in zip(tie_ranks(ranked), ranked, strict=True):
            v[pos[i]] = 1.0 / (RRF_K + rank)
        lists[name] = v
    margin = (first[0][1] - first[1][1]) / first[0][1] if len(first) > 1 and first[0][1] else 0.0
    return Row(
        shape=shape,
        fold=fold,
        category=q.category,
        qtype=question_type(q.text, request.time_window is not None),
        n_answers=len(q.answers),
        relevant=relevant,
        base=base,
        base_order=np.arange(len(candidates)),
        margin=margin,
        lists=lists,
        routes={n: [pos[i] for i in ids] for n, ids in routes.items()},
        product=[pos[i] for i in product],
    )


def _metrics(row: Row, top: np.ndarray | list[int]) -> float:
    picked = row.relevant[np.asarray(top, dtype=int)]
    if row.shape == "small":
        return float(len(picked) > 0 and picked[0] >= 0)
    return len(set(picked[picked >= 0].tolist())) / row.n_answers


@dataclass(frozen=True)
class Config:
    """One way to run the second round."""

    hits: int
    terms: int
    boost: float
    blend: float
    w_bm25: float
    w_dense: float
    stop: float | None
    other_sessions: bool = False

    def describe(self) -> str:
        if self.w_bm25 == 0 and self.w_dense == 0:
            return "off"
        parts = [f"top {self.hits} hits" + (", other sessions only" if self.other_sessions else "")]
        if self.w_bm25:
            parts.append(f"BM25 weight {self.w_bm25:g} ({self.terms} terms, names x{self.boost:g})")
        if self.w_dense:
            parts.append(f"dense weight {self.w_dense:g} (blend {self.blend:g})")
        parts.append("no stop rule" if self.stop is None else f"stop at margin {self.stop:g}")
        return ", ".join(parts)


def configs() -> list[Config]:
    """The grid, with the off configuration first and no duplicates of it."""
    out = [Config(3, 10, 1.0, 0.5, 0.0, 0.0, None)]
    for n, t, bo, bl, wb, wd, st, x in itertools.product(
        HITS, TERMS, BOOSTS, BLENDS, WEIGHTS, WEIGHTS, STOPS, (False, True)
    ):
        if wb == 0 and wd == 0:
            continue
        if wb == 0 and (t, bo) != (TERMS[0], BOOSTS[0]):
            continue
        if wd == 0 and bl != BLENDS[0]:
            continue
        out.append(Config(n, t, bo, bl, wb, wd, st, x))
    return out


def _best(table: np.ndarray, grid: list[Config]) -> dict[str, Any]:
    """The in-sample best configuration of a block of questions, with its score and off's."""
    means = table.mean(axis=0)
    j = int(np.argmax(means))
    return {"config": grid[j].describe(), "score": float(means[j]), "off": float(means[0])}


def feedback_table(rows: list[Row], grid: list[Config]) -> np.ndarray:
    """Primary metric of every configuration (columns) on every question (rows)."""
    table = np.zeros((len(rows), len(grid)))
    for r, row in enumerate(rows):
        scores = np.empty((len(grid), len(row.base)))
        for c, cfg in enumerate(grid):
            s = row.base.copy()
            if not (cfg.stop is not None and row.margin > cfg.stop):
                if cfg.w_bm25:
                    x = "x" if cfg.other_sessions else ""
                    s += cfg.w_bm25 * row.lists[f"{x}bm25/{cfg.hits}/{cfg.terms}/{cfg.boost:g}"]
                if cfg.w_dense:
                    x = "x" if cfg.other_sessions else ""
                    s += cfg.w_dense * row.lists[f"{x}dense/{cfg.hits}/{cfg.blend:g}"]
            scores[c] = s
        # best first; equal scores keep first-round order (candidates are in that order)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :10]
        for c in range(len(grid)):
            top = order[c][scores[c, order[c]] > 0]
            table[r, c] = _metrics(row, top)
    return table


def cross_validate(rows: list[Row], table: np.ndarray, routed: bool) -> dict[str, Any]:
    """Held-out scores: per fold, the column (``routed``: per question type) that wins the
    mean over shapes on the training questions."""
    shape_of = np.array([r.shape for r in rows])
    fold_of = np.array([r.fold for r in rows])
    type_of = np.array([r.qtype for r in rows])
    shapes = [s for s in PRIMARY if s in set(shape_of)]
    held = np.zeros(len(rows))
    chosen: list[Any] = []

    def objective(values: np.ndarray, train: np.ndarray) -> float:
        return float(np.mean([values[train & (shape_of == s)].mean() for s in shapes]))

    for f in sorted(set(fold_of.tolist())):
        train = fold_of != f
        if not routed:
            best = max(range(table.shape[1]), key=lambda j: (objective(table[:, j], train), -j))
            held[~train] = table[~train, best]
            chosen.append(best)
            continue
        pick: dict[str, int] = {}
        values = table[:, 0].copy()
        for t in sorted(set(type_of.tolist())):
            m = type_of == t

            def with_route(j: int, m: np.ndarray = m, values: np.ndarray = values) -> np.ndarray:
                v = values.copy()
                v[m] = table[m, j]
                return v

            pick[t] = max(
                range(table.shape[1]), key=lambda j: (objective(with_route(j), train), -j)
            )
            values = with_route(pick[t])
        for t, j in pick.items():
            m = (~train) & (type_of == t)
            held[m] = table[m, j]
        chosen.append(pick)
    cat_of = np.array([r.category for r in rows])
    out: dict[str, Any] = {"by_shape": {}, "by_category": {}, "folds": chosen}
    for s in shapes:
        m = shape_of == s
        out["by_shape"][s] = {
            "questions": int(m.sum()),
            "default": float(table[m, 0].mean()),
            "held out": float(held[m].mean()),
        }
    for s, c in sorted({(r.shape, r.category) for r in rows}):
        m = (shape_of == s) & (cat_of == c)
        out["by_category"][f"{s}/{c}"] = {
            "n": int(m.sum()),
            "default": float(table[m, 0].mean()),
            "held out": float(held[m].mean()),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--conversations", type=int, default=10)
    parser.add_argument("--shapes", default="locomo,locomo-observations,small")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "iterative_retrieval.json")
    parser.add_argument("--results", type=Path, default=RESULTS_MD)
    args = parser.parse_args(argv)
    offline()
    console = report_console()
    started, clock = now_utc(), time.perf_counter()
    embedder = shapes_embedder()
    inner = embedder.inner
    convs = list(range(args.conversations))
    loaders = shape_loaders(project_path(args.data), convs)

    def fold_of(shape: str) -> Any:
        # LoCoMo conversation c (turns and observations) held out together; small by fifths
        if shape == "small":
            return lambda index, scope: index % 5
        return lambda index, scope: int(scope.name.rsplit("-", 1)[1])

    rows: list[Row] = []
    for shape in args.shapes.split(","):
        rows += rows_for(shape, loaders[shape](), embedder, console, fold_of(shape))
    grid = configs()
    feedback = feedback_table(rows, grid)
    routes = np.array([[_metrics(r, r.routes[n]) for n in ROUTES] for r in rows])
    report: dict[str, Any] = {
        "feedback": cross_validate(rows, feedback, routed=False),
        "routing": cross_validate(rows, routes, routed=True),
        "conversations": convs,
    }
    report["feedback"]["folds"] = [grid[j].describe() for j in report["feedback"]["folds"]]
    report["routing"]["folds"] = [
        {t: list(ROUTES)[j] for t, j in pick.items()} for pick in report["routing"]["folds"]
    ]
    report["types"] = {
        s: dict(Counter(r.qtype for r in rows if r.shape == s)) for s in {r.shape for r in rows}
    }
    shape_of = np.array([r.shape for r in rows])
    check = np.array([_metrics(r, r.product) for r in rows])
    same = grid.index(Config(3, 10, 1.0, 0.5, 0.5, 0.5, None))
    report["product_check"] = {
        s: {
            "product": float(check[shape_of == s].mean()),
            "offline": float(feedback[shape_of == s, same].mean()),
        }
        for s in PRIMARY
        if (shape_of == s).any()
    }
    cat_of = np.array([f"{r.shape}/{r.category}" for r in rows])
    report["in_sample_best"] = {
        s: _best(feedback[shape_of == s], grid) for s in PRIMARY if (shape_of == s).any()
    }
    report["in_sample_best_by_category"] = {
        c: _best(feedback[cat_of == c], grid) for c in sorted(set(cat_of.tolist()))
    }
    report["_run"] = {
        "started": started,
        "command": command_line("benchmarks.iterative_retrieval", argv),
        "machine": machine_info(),
        "wall_seconds": time.perf_counter() - clock,
        "embedder": inner.name,
        "configurations": len(grid),
    }
    console.print(json.dumps(report, indent=1, default=str))
    write_json(project_path(args.out), report)
    write_section(project_path(args.results), "iterative", render_markdown(report))
    return 0


def _tables(part: dict[str, Any], label: str) -> list[str]:
    shape_rows = [
        [NAMES[s], v["questions"], v["default"], v["held out"], v["held out"] - v["default"]]
        for s, v in part["by_shape"].items()
    ]
    cat_rows = [
        [k, v["n"], v["default"], v["held out"], v["held out"] - v["default"]]
        for k, v in part["by_category"].items()
        if not k.startswith("small/")
    ]
    headers = ["shape", "questions", "default", f"{label} (held out)", "change"]
    return [
        markdown_table(headers, shape_rows),
        "",
        markdown_table(["category", "questions", "default", "held out", "change"], cat_rows),
        "",
    ]


def render_markdown(report: dict[str, Any]) -> str:
    """The RESULTS.md section of a run."""
    run = report["_run"]
    convs = report["conversations"]
    fb, rt = report["feedback"], report["routing"]
    fb_folds = Counter(fb["folds"])
    rt_folds = Counter(json.dumps(p, sort_keys=True) for p in rt["folds"])
    check = "; ".join(
        f"{NAMES[s]} {v['product']:.3f} product, {v['offline']:.3f} offline"
        for s, v in report["product_check"].items()
    )
    return "\n".join(
        [
            "## Iterative retrieval and query-type routing (LLM-free), held out",
            "",
            f"Run {run['started']} with `{run['command']}` in {run['wall_seconds']:.0f} s. "
            f"Machine: {machine_line(run['machine'])}. Embedder: {run['embedder']}. "
            f"LoCoMo conversations {convs[0]}-{convs[-1]}.",
            "",
            "The first round is the product's search with the shipped settings (top 100, fused "
            "scores, session prior included). *Iterative retrieval* (`agentmem.feedback`): the "
            "terms of the first round's top hits that the query lacks become a second BM25 "
            "query (the index's IDF weighs them), the query vector blended with the top hits' "
            "mean vector a second dense query; both lists are added to the first round's fused "
            "scores by reciprocal rank. Chosen per fold among "
            f"{run['configurations']} configurations (top hits {HITS}, terms {TERMS}, name "
            f"boost {BOOSTS}, blend {BLENDS}, weights {WEIGHTS} per list, stop margin {STOPS}, "
            "lists with or without the seeding hits' sessions). "
            "*Query-type routing*: *when* questions, questions naming a time the time channel "
            f"parses, and the rest each get one of {', '.join(ROUTES)}. Folds: leave one LoCoMo "
            "conversation out (turns and observations together), small scopes by fifths; the "
            "objective is the mean over the three shapes of the training questions' primary "
            "metric; default and held-out figures from the same run.",
            "",
            "*Iterative retrieval:*",
            "",
            *_tables(fb, "with the second round"),
            "Chosen per fold: " + "; ".join(f"{k} ({n})" for k, n in fb_folds.items()) + ".",
            "",
            "Best on each shape and LoCoMo category *in sample* (chosen on the very questions "
            "it is scored on, so an upper bound, for reading only): "
            + "; ".join(
                f"{NAMES.get(s, s)} {d['off']:.3f} -> {d['score']:.3f} ({d['config']})"
                for s, d in {
                    **report["in_sample_best"],
                    **{
                        k: v
                        for k, v in report["in_sample_best_by_category"].items()
                        if k.startswith("locomo/")
                    },
                }.items()
            )
            + ".",
            "",
            f"Product path (`retrieval.feedback_weight` 0.5, other settings default): {check}.",
            "",
            "*Query-type routing* (question types: "
            + "; ".join(f"{s} {dict(sorted(c.items()))}" for s, c in report["types"].items())
            + "):",
            "",
            *_tables(rt, "routed"),
            "Chosen per fold: " + "; ".join(f"{k} ({n})" for k, n in rt_folds.items()) + ".",
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
