"""A session-level channel, measured held out: whole-session BM25 as a prior over records.

For records of an explicit conversation (the ``session`` metadata key), the text of all turns
of a session is one BM25 document; a query scores the sessions of its scope, and the records
of the best sessions are ranked up in fusion, either as one more RRF channel (records ranked
by their session's score; inside a session by their dense rank, or tied) or as a
multiplicative prior on the fused score. Records without a session are in no session list.

Each shape is replayed once (``agentmem.evaluation`` loaders, embedded defaults) and every
channel's top-100 list recorded per question; fusion with the shipped weights is then scored
with and without the session channel. The channel's settings (weight, number of sessions, form)
are chosen on the training conversations of each fold and scored on the held-out ones
(leave-one-conversation-out; small scopes by fifths).

    python -m benchmarks.session_channel [--conversations N]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from agentmem import Memory, Settings
from agentmem.evaluation.runner import EVAL_KEY, replay, scope_user
from agentmem.fusion import tie_ranks
from agentmem.lexical import Bm25Encoder
from agentmem.models import Scope
from agentmem.representation import group_condition, indexed_text
from agentmem.retrieval import CHANNELS, build_request
from agentmem.settings_sections import DEFAULT_WEIGHTS
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
    write_section,
)
from benchmarks.locomo import DEFAULT_DATA
from benchmarks.tune_shapes import shape_loaders, shapes_embedder

CHANNEL_NAMES = ("dense", "bm25", "window_bm25", "time")
LIMIT = 100
PRODUCT_WEIGHTS = (0.0, 1.0, 2.0, 4.0)
"""``retrieval.session_prior`` values measured through ``Memory.search`` (the product path)."""
RRF_K = 20
WEIGHTS = {n: DEFAULT_WEIGHTS[n] for n in CHANNEL_NAMES}


def session_scores(query: str, sessions: dict[Any, str], enc: Bm25Encoder) -> dict[Any, float]:
    """BM25 of the query against each session's whole text (IDF over the scope's sessions)."""
    docs = {s: enc.document(t) for s, t in sessions.items()}
    df: Counter[int] = Counter()
    for v in docs.values():
        df.update(set(v.indices))
    n = len(docs)
    q = set(enc.query(query).indices)
    out = {}
    for s, v in docs.items():
        score = 0.0
        for i, w in zip(v.indices, v.values, strict=True):
            if i in q:
                score += w * math.log(1 + (n - df[i] + 0.5) / (df[i] + 0.5))
        out[s] = score
    return out


def rows_for(shape: str, data: Any, embedder: Any, console: Any) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="agentmem-session-") as tmp:
        settings = Settings.load(home=Path(tmp), store_url=None, vectors_url=None)
        with Memory(settings=settings, embedder=embedder) as mem:
            config = mem.settings.retrieval
            shipped = config.session_prior
            for index, scope in enumerate(data.scopes):
                started = time.perf_counter()
                replay(mem, scope, data.add_mode)
                store = mem.backends.store
                user = Scope(user_id=scope_user(scope))
                records = store.get_many(store.ids_in_scope(user))
                records.sort(key=lambda r: (r.created_at, r.id))
                keys = {r.id: str(r.metadata.get(EVAL_KEY)) for r in records}
                session_of: dict[str, Any] = {}
                texts: dict[Any, list[str]] = {}
                for r in records:
                    cond = group_condition(r, config)
                    if cond is None:
                        continue
                    session_of[r.id] = cond.value
                    texts.setdefault(cond.value, []).append(indexed_text(r, config))
                sessions = {s: "\n".join(t) for s, t in texts.items()}
                avg = np.mean([len(t) for t in texts.values()]) * 24.0 if texts else 24.0
                enc = Bm25Encoder(avg_len=float(avg))
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
                        name: list(CHANNELS[name](mem.backends, request)) for name in CHANNEL_NAMES
                    }
                    scores = session_scores(question.text, sessions, enc) if sessions else {}
                    product = {}
                    for weight in PRODUCT_WEIGHTS:
                        mem.backends.settings.retrieval.session_prior = weight
                        hits = mem.search(
                            question.text,
                            user_id=scope_user(scope),
                            k=10,
                            reference_time=question.reference_time,
                        )
                        product[weight] = [h.record.id for h in hits]
                    mem.backends.settings.retrieval.session_prior = shipped
                    rows.append(
                        {
                            "shape": shape,
                            "scope": index,
                            "category": question.category,
                            "answers": list(question.answers),
                            "keys": keys,
                            "ranked": ranked,
                            "session_of": session_of,
                            "session_scores": scores,
                            "product": product,
                        }
                    )
                console.print(
                    f"{shape} {scope.name}: {len(scope.memories)} memories, "
                    f"{len(scope.questions)} questions, {time.perf_counter() - started:.1f} s"
                )
    embedder.save()
    return rows


def session_list(row: dict[str, Any], top: int, inner: str) -> list[tuple[str, float]]:
    """Records of the ``top`` best-scoring sessions, best session first; inside a session by
    dense rank (``inner="dense"``: records outside dense's top 100 last) or tied."""
    scores = row["session_scores"]
    best = [s for s, v in sorted(scores.items(), key=lambda x: -x[1]) if v > 0][:top]
    if not best:
        return []
    dense_pos = {i: n for n, (i, _) in enumerate(row["ranked"]["dense"])}
    out: list[tuple[str, float]] = []
    for rank, s in enumerate(best):
        members = [i for i, v in row["session_of"].items() if v == s]
        if inner == "dense":
            members.sort(key=lambda i: dense_pos.get(i, 10_000))
            out += [
                (i, -(rank * 100_000 + dense_pos.get(i, 10_000) + n * 1e-3))
                for n, i in enumerate(members)
            ]
        else:
            out += [(i, -float(rank)) for i in members]
    return out


def _score(row: dict[str, Any], order: list[str]) -> dict[str, float]:
    answers = {a: n for n, a in enumerate(row["answers"])}
    hits = [answers[row["keys"][i]] for i in order if row["keys"].get(i) in answers]
    return {
        "recall@10": len(set(hits)) / len(row["answers"]),
        "hit@1": float(bool(order) and row["keys"].get(order[0]) in answers),
    }


def evaluate(row: dict[str, Any], variant: tuple[str, float, int, str] | None) -> dict[str, float]:
    if variant is not None and variant[0] == "product":
        return _score(row, row["product"][variant[1]])
    fused: dict[str, float] = {}
    best_rank: dict[str, int] = {}
    for name, ranked in row["ranked"].items():
        w = WEIGHTS[name]
        for rank, (i, _) in zip(tie_ranks(ranked), ranked, strict=True):
            best_rank[i] = min(best_rank.get(i, 1 << 30), rank)
            if w > 0:
                fused[i] = fused.get(i, 0.0) + w / (RRF_K + rank)
    if variant is not None:
        form, w, top, inner = variant
        if form == "rrf":
            ranked = session_list(row, top, inner)
            for rank, (i, _) in zip(tie_ranks(ranked), ranked, strict=True):
                best_rank[i] = min(best_rank.get(i, 1 << 30), rank)
                fused[i] = fused.get(i, 0.0) + w / (RRF_K + rank)
        else:  # multiplicative prior: fused * (1 + w * session score / best session score)
            scores = row["session_scores"]
            high = max(scores.values(), default=0.0)
            if high > 0:
                for i in fused:
                    s = row["session_of"].get(i)
                    if s is not None:
                        fused[i] *= 1 + w * scores.get(s, 0.0) / high
    order = sorted(fused, key=lambda i: (-fused[i], best_rank.get(i, 1 << 30), i))[:10]
    return _score(row, order)


VARIANTS: list[tuple[str, float, int, str]] = [
    ("rrf", w, top, inner)
    for w in (0.5, 1.0, 2.0)
    for top in (1, 3, 5)
    for inner in ("dense", "tie")
] + [("prior", w, 0, "") for w in (0.5, 1.0, 2.0, 4.0)]
PRIMARY = {"locomo": "recall@10", "locomo-observations": "recall@10", "small": "hit@1"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--conversations", type=int, default=10)
    parser.add_argument("--shapes", default="locomo,locomo-observations,small")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "session_channel.json")
    args = parser.parse_args(argv)
    offline()
    console = report_console()
    started, clock = now_utc(), time.perf_counter()
    embedder = shapes_embedder()
    inner = embedder.inner
    convs = list(range(args.conversations))
    loaders = shape_loaders(project_path(args.data), convs)
    rows: list[dict[str, Any]] = []
    for shape in args.shapes.split(","):
        rows += rows_for(shape, loaders[shape](), embedder, console)
    shape_of = np.array([r["shape"] for r in rows])
    # folds: LoCoMo conversation c (turns and observations) held out together; small by fifths
    fold_of = np.array([r["scope"] if r["shape"] != "small" else r["scope"] % 5 for r in rows])
    shapes = [s for s in PRIMARY if s in set(shape_of)]
    cat_of = np.array([r["category"] for r in rows])
    out: dict[str, Any] = {}
    product: list[Any] = [("product", w, 0, "") for w in PRODUCT_WEIGHTS]
    for name, variants in (("offline", [None, *VARIANTS]), ("product", product)):
        table = np.array([[evaluate(r, v)[PRIMARY[r["shape"]]] for v in variants] for r in rows])
        held = np.zeros(len(rows))
        chosen = []
        for f in sorted(set(fold_of.tolist())):
            train = fold_of != f

            def objective(j: int, train: np.ndarray = train, table: Any = table) -> float:
                return float(
                    np.mean(
                        [
                            table[train & (shape_of == s), j].mean()
                            for s in shapes
                            if (train & (shape_of == s)).any()
                        ]
                    )
                )

            best = max(range(len(variants)), key=lambda j: (objective(j), -j))
            held[~train] = table[~train, best]
            chosen.append(variants[best])
        part: dict[str, Any] = {"by_shape": {}, "by_category": {}, "folds": chosen}
        for s in shapes:
            m = shape_of == s
            part["by_shape"][s] = {
                "default": float(table[m, 0].mean()),
                "with session channel (held out)": float(held[m].mean()),
                "questions": int(m.sum()),
            }
        for s, c in sorted({(r["shape"], r["category"]) for r in rows}):
            m = (shape_of == s) & (cat_of == c)
            part["by_category"][f"{s}/{c}"] = {
                "default": float(table[m, 0].mean()),
                "held out": float(held[m].mean()),
                "n": int(m.sum()),
            }
        part["in_sample"] = [
            {"variant": variants[j], **{s: float(table[shape_of == s, j].mean()) for s in shapes}}
            for j in range(len(variants))
        ]
        out[name] = part
    out["conversations"] = convs
    out["_run"] = {
        "started": started,
        "command": command_line("benchmarks.session_channel", argv),
        "machine": machine_info(),
        "wall_seconds": time.perf_counter() - clock,
        "embedder": inner.name,
    }
    console.print(json.dumps(out, indent=1, default=str))
    project_path(args.out).write_text(json.dumps(out, indent=1, default=str), encoding="utf-8")
    write_section(project_path(RESULTS_MD), "session-channel", render_markdown(out))
    return 0


def _variant(v: Any) -> str:
    if v is None:
        return "off"
    form, w, top, inner = v
    if form == "prior":
        return f"prior x(1 + {w:g} s/s_max)"
    if form == "product":
        return f"session_prior {w:g}"
    return f"RRF weight {w:g}, top {top} sessions, {inner} inside"


NAMES = {
    "locomo": "LoCoMo turns recall@10",
    "locomo-observations": "LoCoMo observations recall@10",
    "small": "small scopes hit@1",
}


def _tables(part: dict[str, Any]) -> list[str]:
    shape_rows = [
        [NAMES[s], v["questions"], v["default"], v["with session channel (held out)"]]
        for s, v in part["by_shape"].items()
    ]
    cat_rows = [
        [k, v["n"], v["default"], v["held out"], v["held out"] - v["default"]]
        for k, v in part["by_category"].items()
        if not k.startswith("small/")
    ]
    folds = Counter(_variant(v) for v in part["folds"])
    return [
        markdown_table(
            ["shape", "questions", "without", "with the channel (held out)"], shape_rows
        ),
        "",
        markdown_table(["category", "questions", "without", "held out", "change"], cat_rows),
        "",
        "Chosen per fold: " + "; ".join(f"{k} ({n} folds)" for k, n in folds.items()) + ".",
        "",
    ]


def render_markdown(out: dict[str, Any]) -> str:
    """The RESULTS.md section of a run."""
    run = out["_run"]
    convs = out["conversations"]
    return "\n".join(
        [
            "## Session-level channel (whole-session BM25 as a prior), held out",
            "",
            f"Run {run['started']} with `{run['command']}` in {run['wall_seconds']:.0f} s. "
            f"Machine: {machine_line(run['machine'])}. Embedder: {run['embedder']}. "
            f"LoCoMo conversations {convs[0]}-{convs[-1]}.",
            "",
            "Every turn of a session (the `session` metadata key) is joined into one BM25 "
            "document; a question scores the sessions, and the records of the best sessions "
            "are ranked up, either by one more RRF channel (records of the top 1-5 sessions, "
            "best session first) or by a multiplicative prior on the fused score "
            "(`fused x (1 + w s/s_max)`). Records with no session are in no list, so LoCoMo "
            "observations and the small scopes are unchanged by construction (measured equal "
            "below). Form and weight are chosen on the training conversations of each fold "
            "(leave one LoCoMo conversation out, turns and observations together; small scopes "
            "by fifths) and scored on the held-out one; default and channel in one run.",
            "",
            "*Offline* (every channel's top-100 recorded once; sessions scored over the whole "
            "scope; the shipped fusion weights without the graph channel):",
            "",
            *_tables(out["offline"]),
            "*Product path* (`Memory.search` with `retrieval.session_prior` in "
            f"{', '.join(f'{w:g}' for w in PRODUCT_WEIGHTS)}; sessions of the fused candidates "
            "scored, IDF over them; without = 0):",
            "",
            *_tables(out["product"]),
            "Shipped as the default (`retrieval.session_prior` 4).",
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
