"""Choose fusion weights by cross-validation over several shapes of memory at once.

Shapes (``agentmem.evaluation`` loaders): LoCoMo turns (conversations with sessions), LoCoMo
observations (independent facts added one by one, no session) and the small-scope set shipped
with agentmem (scopes of 2-50 independent memories). Each shape is replayed once into a fresh
home with the embedded defaults, and for every question each channel's top-100 list is recorded
as the index computes it (``dense``, ``bm25``, ``window_bm25``, ``time``). The ``window``
channel is computed here from the same vectors for several values of
``retrieval.window_self_weight`` (a window vector is the normalised sum of the record's own
vector, times that weight, and its neighbours' vectors in its conversation: exactly what the
index stores), so that weight is tuned with the fusion weights. The dense channel is also
fused score-aware for each ``retrieval.dense_gap_ranks`` of the grid (its hits pushed down by
their cosine gap below its best hit, :func:`agentmem.fusion.gap_ranks`), tuned with the rest.

Cross-validation: five folds; each holds out two LoCoMo conversations (their turns and their
observations) and a fifth of the small scopes. For each fold, the configuration with the best
*mean over shapes* of the training questions' primary metric (recall@10 on LoCoMo turns and
observations, hit@1 on the small scopes) is scored on the held-out questions. A configuration
that wins LoCoMo by losing the small scopes does not win the mean. Baselines (dense alone, BM25
alone, plain BM25+dense RRF, the previous defaults) are scored on the same questions.

    python -m benchmarks.tune_shapes [--data PATH] [--out benchmarks/results/tune_shapes.json]

Vectors are cached on disk (``benchmarks/results/embeddings-*.pkl``, gitignored), so a rerun
embeds nothing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import pickle
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agentmem import Memory, Settings
from agentmem.embedders import Embedder
from agentmem.evaluation import EvalSet, load_locomo, load_locomo_observations, load_small
from agentmem.evaluation.runner import EVAL_KEY, replay, scope_user
from agentmem.fusion import gap_ranks, tie_ranks
from agentmem.models import Scope
from agentmem.representation import in_conversation, indexed_text
from agentmem.retrieval import CHANNELS, build_request
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
from benchmarks.locomo import DEFAULT_DATA

INDEX_CHANNELS = ("dense", "bm25", "window_bm25", "time")
SELF_WEIGHTS = (0.5, 1.0, 2.0)
GRID = {
    "dense": (0.5, 1.0, 2.0),
    "window": (0.0, 0.5, 1.0),
    "bm25": (0.0, 0.5, 1.0, 1.5),
    "window_bm25": (0.0, 1.0, 2.0),
    "time": (0.0, 1.0),
}
RRF_KS = (20, 60)
DENSE_GAP_RANKS = (0.0, 40.0, 60.0, 80.0, 100.0, 120.0)
FOLDS = 5
LIMIT = 100
PREVIOUS = (
    {"dense": 1.0, "window": 0.0, "bm25": 0.5, "window_bm25": 2.0, "time": 1.0},
    20,
    1.0,
    0.0,
)
"""The defaults shipped before ``retrieval.dense_gap_ranks``: plain RRF ranks."""

Config = tuple[dict[str, float], int, float, float]
"""Fusion weights, rrf_k, window_self_weight, dense_gap_ranks."""
SHAPES = ("locomo", "locomo-observations", "small")
PRIMARY = {"locomo": "recall@10", "locomo-observations": "recall@10", "small": "hit@1"}


class DiskCachingEmbedder(CachingEmbedder):
    """:class:`CachingEmbedder` whose vectors persist in a pickle between runs."""

    def __init__(self, inner: Embedder, path: Path) -> None:
        super().__init__(inner)
        self.path = path
        if path.exists():
            self._documents, self._queries = pickle.loads(path.read_bytes())

    def save(self) -> None:
        """Write the vectors seen so far."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_bytes(pickle.dumps((self._documents, self._queries)))


def shapes_embedder() -> DiskCachingEmbedder:
    """The shape benchmarks' embedder (tune_shapes, session_channel, iterative_retrieval):
    MiniLM in ONNX Runtime, its vectors kept on disk between runs."""
    from agentmem.embedders import OnnxEmbedder

    inner = OnnxEmbedder.minilm()
    return DiskCachingEmbedder(
        inner, RESULTS_DIR / f"embeddings-{inner.name.replace('/', '_')}.pkl"
    )


def shape_loaders(data: Path, conversations: Sequence[int]) -> dict[str, Callable[[], EvalSet]]:
    """Each shape's data set, loaded when called: LoCoMo turns and observations of
    ``conversations``, and the shipped small-scope set."""
    convs = list(conversations)
    return {
        "locomo": lambda: load_locomo(data, convs),
        "locomo-observations": lambda: load_locomo_observations(data, convs),
        "small": load_small,
    }


@dataclass
class Row:
    """One question: its shape, fold, category, answers and each channel's ranked ids."""

    shape: str
    fold: int
    category: str
    answers: tuple[str, ...]
    keys: dict[str, str]
    ranked: dict[str, list[tuple[str, float]]]


def _fold_of(shape: str, index: int, name: str) -> int:
    if shape == "small":
        return index % FOLDS
    conversation = int(name.rsplit("-", 1)[1])
    return conversation // 2 % FOLDS


def channel_rows(
    shape: str, data: EvalSet, embedder: DiskCachingEmbedder, console: Any
) -> list[Row]:
    """Replay ``data`` and record each channel's top-100 for every question."""
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="agentmem-tune-") as tmp:
        settings = Settings.load(home=Path(tmp), store_url=None, vectors_url=None)
        with Memory(settings=settings, embedder=embedder) as mem:
            config = mem.settings.retrieval
            for index, scope in enumerate(data.scopes):
                started = time.perf_counter()
                replay(mem, scope, data.add_mode)
                store = mem.backends.store
                user = Scope(user_id=scope_user(scope))
                records = store.get_many(store.ids_in_scope(user))
                records.sort(key=lambda r: (r.created_at, r.id))
                keys = {r.id: str(r.metadata.get(EVAL_KEY)) for r in records}
                own = {
                    r.id: embedder.embed_documents([indexed_text(r, config)])[0] for r in records
                }
                windows = _window_vectors(records, own, config)
                last = max(
                    (q.reference_time for q in scope.questions if q.reference_time), default=None
                )
                for question in scope.questions:
                    request = build_request(
                        mem.backends,
                        question.text,
                        user,
                        limit=LIMIT,
                        reference_time=question.reference_time or last,
                    )
                    ranked = {
                        name: list(CHANNELS[name](mem.backends, request)) for name in INDEX_CHANNELS
                    }
                    for weight, (ids, matrix) in windows.items():
                        if not ids:
                            ranked[f"window@{weight}"] = []
                            continue
                        sims = matrix @ request.vector
                        order = np.argsort(-sims, kind="stable")[:LIMIT]
                        ranked[f"window@{weight}"] = [(ids[i], float(sims[i])) for i in order]
                    rows.append(
                        Row(
                            shape,
                            _fold_of(shape, index, scope.name),
                            question.category,
                            question.answers,
                            keys,
                            ranked,
                        )
                    )
                console.print(
                    f"{shape} {scope.name}: {len(scope.memories)} memories, "
                    f"{len(scope.questions)} questions, {time.perf_counter() - started:.1f} s"
                )
    embedder.save()
    return rows


def _window_vectors(
    records: Sequence[Any], own: dict[str, np.ndarray], config: Any
) -> dict[float, tuple[list[str], np.ndarray]]:
    """Window vectors of the records in a conversation, for each self weight (the index's
    rule: ``window_turns`` neighbours on each side in creation order within the same session,
    or the same thread)."""
    groups: dict[Any, list[Any]] = {}
    for r in records:
        if in_conversation(r, config):
            groups.setdefault(r.metadata.get(config.window_group_key), []).append(r)
    out: dict[float, tuple[list[str], np.ndarray]] = {}
    for weight in SELF_WEIGHTS:
        ids: list[str] = []
        vectors: list[np.ndarray] = []
        for members in groups.values():
            for i, r in enumerate(members):
                total = own[r.id] * weight
                turns = config.window_turns
                for n in (*members[max(0, i - turns) : i], *members[i + 1 : i + 1 + turns]):
                    total = total + own[n.id]
                ids.append(r.id)
                vectors.append(total / np.linalg.norm(total))
        out[weight] = (ids, np.stack(vectors) if vectors else np.zeros((0, 1)))
    return out


# fusion over recorded lists, vectorised ---------------------------------------------------------


@dataclass
class Prepared:
    """A question's candidates and, per channel and rrf_k, the reciprocal rank of each (the
    dense channel's score-aware ranks for each ``DENSE_GAP_RANKS`` under ``dense~GAP``)."""

    shape: str
    fold: int
    category: str
    candidates: list[str]
    relevant: np.ndarray  # per candidate: its key's index among the answers, or -1
    n_answers: int
    contributions: dict[tuple[str, int], np.ndarray]
    best_rank: np.ndarray


def prepare(row: Row) -> Prepared:
    candidates = sorted({i for ranked in row.ranked.values() for i, _ in ranked})
    position = {c: n for n, c in enumerate(candidates)}
    answers = {a: n for n, a in enumerate(row.answers)}
    relevant = np.array([answers.get(row.keys.get(c, ""), -1) for c in candidates])
    contributions: dict[tuple[str, int], np.ndarray] = {}
    best = np.full(len(candidates), 1 << 30)
    for name, ranked in row.ranked.items():
        ranks = tie_ranks(ranked)
        variants = {name: 0.0}
        if name == "dense":
            variants.update({_dense_key(g): g for g in DENSE_GAP_RANKS if g > 0})
        for key, gap in variants.items():
            fusion_ranks = gap_ranks(ranked, gap)
            for rrf_k in RRF_KS:
                v = np.zeros(len(candidates))
                for rank, (i, _) in zip(fusion_ranks, ranked, strict=True):
                    v[position[i]] = 1.0 / (rrf_k + rank)
                contributions[(key, rrf_k)] = v
        for rank, (i, _) in zip(ranks, ranked, strict=True):
            best[position[i]] = min(best[position[i]], rank)
    return Prepared(
        row.shape,
        row.fold,
        row.category,
        candidates,
        relevant,
        len(row.answers),
        contributions,
        best,
    )


def _dense_key(gap: float) -> str:
    return f"dense~{gap:g}"


def metrics(
    p: Prepared, weights: dict[str, float], rrf_k: int, self_weight: float, dense_gap: float
) -> dict[str, float]:
    fused = np.zeros(len(p.candidates))
    for name, w in weights.items():
        if w <= 0:
            continue
        channel = f"window@{self_weight}" if name == "window" else name
        if name == "dense" and dense_gap > 0:
            channel = _dense_key(dense_gap)
        fused += w * p.contributions[(channel, rrf_k)]
    order = np.lexsort((np.arange(len(fused)), p.best_rank, -fused))
    order = order[fused[order] > 0][:10]
    top = p.relevant[order]
    found10 = len(set(top[top >= 0].tolist()))
    return {
        "recall@10": found10 / p.n_answers,
        "hit@1": float(len(top) > 0 and top[0] >= 0),
        "hit@10": float(found10 > 0),
    }


def configs() -> list[Config]:
    out = []
    names = list(GRID)
    for values in itertools.product(*(GRID[n] for n in names)):
        weights = dict(zip(names, values, strict=True))
        for rrf_k in RRF_KS:
            for self_weight in SELF_WEIGHTS if weights["window"] > 0 else (1.0,):
                for gap in DENSE_GAP_RANKS:
                    out.append((weights, rrf_k, self_weight, gap))
    return out


def baselines() -> dict[str, Config]:
    zero = dict.fromkeys(GRID, 0.0)
    return {
        "dense alone": ({**zero, "dense": 1.0}, 60, 1.0, 0.0),
        "bm25 alone": ({**zero, "bm25": 1.0}, 60, 1.0, 0.0),
        "bm25 + dense RRF": ({**zero, "dense": 1.0, "bm25": 1.0}, 60, 1.0, 0.0),
        "previous defaults": PREVIOUS,
    }


def cross_validate(rows: list[Prepared]) -> dict[str, Any]:
    grid = configs()
    extra = baselines()
    everything = grid + list(extra.values())
    primary = np.array(
        [[metrics(p, *c)[PRIMARY[p.shape]] for p in rows] for c in everything]
    )  # configs x questions
    shape_of = np.array([p.shape for p in rows])
    fold_of = np.array([p.fold for p in rows])

    def objective(index: int, mask: np.ndarray) -> float:
        return float(np.mean([primary[index, mask & (shape_of == s)].mean() for s in SHAPES]))

    held = np.zeros(len(rows))
    folds = []
    for fold in range(FOLDS):
        train = fold_of != fold
        best = max(range(len(grid)), key=lambda i: (objective(i, train), -i))
        test = ~train
        held[test] = primary[best, test]
        folds.append({"fold": fold, "config": _named(grid[best])})
    chosen = max(range(len(grid)), key=lambda i: (objective(i, np.ones(len(rows), bool)), -i))

    def per_shape(values: np.ndarray) -> dict[str, float]:
        return {s: float(values[shape_of == s].mean()) for s in SHAPES}

    def per_category(index: int | None) -> dict[str, dict[str, float]]:
        values = held if index is None else primary[index]
        out: dict[str, dict[str, float]] = {}
        for s in SHAPES:
            cats = sorted({p.category for p in rows if p.shape == s})
            out[s] = {
                c: float(values[(shape_of == s) & np.array([p.category == c for p in rows])].mean())
                for c in cats
            }
        return out

    table = {"cross-validated (held out)": per_shape(held)}
    table["chosen on all (in-sample)"] = per_shape(primary[chosen])
    categories = {"cross-validated (held out)": per_category(None)}
    for n, (name, _) in enumerate(extra.items()):
        index = len(grid) + n
        table[name] = per_shape(primary[index])
        categories[name] = per_category(index)
    return {
        "primary": PRIMARY,
        "by_shape": table,
        "by_category": categories,
        "folds": folds,
        "chosen": _named(grid[chosen]),
        "questions": {s: int((shape_of == s).sum()) for s in SHAPES},
    }


def _named(config: Config) -> dict[str, Any]:
    weights, rrf_k, self_weight, gap = config
    return {
        "weights": weights,
        "rrf_k": rrf_k,
        "window_self_weight": self_weight,
        "dense_gap_ranks": gap,
    }


def _describe(config: dict[str, Any]) -> str:
    w = ", ".join(f"{k} {v:g}" for k, v in config["weights"].items())
    return (
        f"{w}; rrf_k {config['rrf_k']}; window_self_weight {config['window_self_weight']:g}; "
        f"dense_gap_ranks {config.get('dense_gap_ranks', 0.0):g}"
    )


def render_markdown(report: dict[str, Any]) -> str:
    run = report["_run"]
    result = report["result"]
    lines = [
        "## Fusion weights across shapes: cross-validated on LoCoMo turns, LoCoMo observations "
        "and small scopes together",
        "",
        f"Run {run['started']} with `{run['command']}` in {run['wall_seconds']:.0f} s. "
        f"Machine: {machine_line(run['machine'])}; load average at the end "
        f"{run['load_end']}. Embedder: {run['embedder']}.",
        "",
        "Each shape is replayed into a fresh embedded home (`agentmem.evaluation` loaders: "
        "LoCoMo turns with their sessions, LoCoMo observations one `add` each with no session, "
        "the shipped small-scope set one `add` each) and every channel's top-100 list is "
        "recorded per question; the `window` channel is computed from the same vectors for "
        "each `window_self_weight`, and the dense channel fused score-aware for each "
        "`dense_gap_ranks` (" + ", ".join(f"{g:g}" for g in DENSE_GAP_RANKS) + "; 0 = plain "
        "RRF ranks). Five folds each hold out two LoCoMo conversations (turns "
        "and observations) and a fifth of the small scopes; a fold's configuration is the one "
        "with the best mean over the three shapes of the training questions' primary metric "
        "(recall@10 for LoCoMo turns and observations, hit@1 for small scopes). Baselines are "
        "scored on every question in the same run. Grid: "
        + "; ".join(f"{n} " + "/".join(f"{v:g}" for v in vs) for n, vs in GRID.items())
        + "; rrf_k "
        + "/".join(str(k) for k in RRF_KS)
        + ". LoCoMo observations are scored on the evidence turns some observation was drawn "
        "from (`load_locomo_observations`: the others cannot be retrieved by any system).",
        "",
        "Questions: " + ", ".join(f"{s} {n:,}" for s, n in result["questions"].items()) + ".",
        "",
        markdown_table(
            [
                "ranking",
                "LoCoMo turns recall@10",
                "LoCoMo observations recall@10",
                "small scopes hit@1",
            ],
            [[name, *(v[s] for s in SHAPES)] for name, v in result["by_shape"].items()],
        ),
        "",
        f"Chosen on all questions (the shipped defaults): {_describe(result['chosen'])}.",
        "",
        "Per fold: "
        + "; ".join(f"fold {f['fold']}: {_describe(f['config'])}" for f in result["folds"])
        + ".",
        "",
        "Held-out primary metric by category:",
        "",
    ]
    held = result["by_category"]["cross-validated (held out)"]
    for shape in SHAPES:
        rows = []
        for name, cats in result["by_category"].items():
            rows.append([name, *(cats[shape][c] for c in held[shape])])
        lines += [
            f"*{shape}* ({PRIMARY[shape]})",
            "",
            markdown_table(["ranking", *held[shape]], rows),
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "tune_shapes.json")
    parser.add_argument("--results", type=Path, default=RESULTS_MD)
    parser.add_argument("--conversations", type=int, default=10, help="LoCoMo conversations")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="only rewrite the RESULTS.md section from the JSON of an earlier run",
    )
    args = parser.parse_args(argv)
    if args.render_only:
        report = json.loads(project_path(args.out).read_text(encoding="utf-8"))
        write_section(project_path(args.results), "shapes", render_markdown(report))
        return 0
    offline()
    console = report_console()
    started, clock = now_utc(), time.perf_counter()
    embedder = shapes_embedder()
    inner = embedder.inner
    convs = list(range(args.conversations))
    loaders = shape_loaders(project_path(args.data), convs)
    rows: list[Prepared] = []
    for shape, load in loaders.items():
        rows += [prepare(r) for r in channel_rows(shape, load(), embedder, console)]
    result = cross_validate(rows)
    report = {
        "result": result,
        "_run": {
            "started": started,
            "command": command_line("benchmarks.tune_shapes", argv),
            "machine": machine_info(),
            "load_end": [round(x, 2) for x in os.getloadavg()],
            "wall_seconds": time.perf_counter() - clock,
            "embedder": inner.name,
        },
    }
    console.print(result["by_shape"])
    console.print(result["chosen"])
    write_json(project_path(args.out), report)
    write_section(project_path(args.results), "shapes", render_markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
