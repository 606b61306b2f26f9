"""Entities and relations the LLM-free pipeline puts in the knowledge graph, on labelled sets.

Each line of ``benchmarks/data/relations_labelled.jsonl`` (development set, 69 sentences),
``benchmarks/data/relations_heldout.jsonl`` (held-out set, 32 sentences, written before the
extractor was measured on it; its first run is kept in :data:`FIRST_HELDOUT`, four defects it
showed were fixed after) and ``benchmarks/data/relations_blind.jsonl`` (a second held-out set,
25 sentences, written after those fixes and before any run on it) is one statement as an
application would store it: third-person facts ("Caroline went to the LGBTQ support group with
Melanie."), dated ones, possessives, appositions, co-ordinations, passives, first-person chat
turns with a speaker prefix ("Caroline: I went to ..."), and sentences that name nothing. Each
gives the entities a careful reader finds (alternatives separated by ``|``) and the relations
between them as ``[source, predicates, target]`` (a predicate list such as
``went_to|attended``; a list of such triples is one relation written in alternative ways).

Two paths, each for the extractor and graph reader of this checkout (**current**) and of a
baseline commit loaded from git (**baseline**, default: the last commit before third-person
extraction) in the same run:

- ``infer``: what ``mem.add(text, infer=True)`` stores: the rules extractor's facts (with
  their ``entities``/``subject``/``attribute`` metadata), read into the graph by ``read_fact``;
- ``text``: a fact stored as it is (``kind="semantic"``, no metadata), read by ``read_fact``
  from its text alone (first-person turns are left out of this path).

Scores: entity precision and recall over the names the graph would hold; relation precision
over typed relations (``mentioned_with``, co-mention edges that claim no relation, are counted
apart), recall over the labelled relations, and precision over all edges (a co-mention edge is
never a correct relation). A relation counts when source, target, direction and predicate match.

    python -m benchmarks.relations [--baseline REV] [--sets dev,heldout,heldout2]
                                   [--out benchmarks/RESULTS.md] [--json PATH]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmarks._common import (
    BENCH_DIR,
    PROJECT_ROOT,
    RESULTS_DIR,
    RESULTS_MD,
    command_line,
    fmt,
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

SETS = {
    "dev": BENCH_DIR / "data" / "relations_labelled.jsonl",
    "heldout": BENCH_DIR / "data" / "relations_heldout.jsonl",
    "heldout2": BENCH_DIR / "data" / "relations_blind.jsonl",
}
DEFAULT_JSON = RESULTS_DIR / "relations.json"
FIRST_HELDOUT = {
    "commit": "f7f6c3f",
    "infer": {"relation_precision": 0.848, "relation_recall": 0.907, "entity_precision": 0.957},
    "text": {"relation_precision": 0.872, "relation_recall": 0.919, "entity_precision": 0.983},
}
"""The held-out set's first measurement (commit f7f6c3f, before the fixes its errors prompted:
a relative clause's verb after "who", "his/her <noun> Y" among co-subjects, a possessor whose
noun is the argument, "for" inside names). Later runs are no longer blind to it."""
BASELINE_REV = "97a44a7"
"""The last commit before third-person extraction and the clause parser (rules-v1)."""
CO_MENTION = "mentioned_with"

Triple = tuple[str, str, str]
Reader = Callable[[str, datetime, bool], tuple[set[str], list[Triple]]]


@dataclass(frozen=True)
class Item:
    """One labelled sentence."""

    id: str
    shape: str
    text: str
    said_at: datetime
    entities: list[set[str]]
    relations: list[list[tuple[str, set[str], str]]]

    @property
    def first_person(self) -> bool:
        return self.shape == "first-person"


def load_items(path: Path) -> list[Item]:
    """The labelled sentences of one file (names normalised as the graph does)."""
    from agentmem.graph.resolve import normalise

    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            entities = [{normalise(a) for a in e.split("|")} for e in row["entities"]]
            by_key = {
                normalise(e.split("|")[0]): alts
                for e, alts in zip(row["entities"], entities, strict=True)
            }
            relations = []
            for rel in row["relations"]:
                alternatives = rel if isinstance(rel[0], list) else [rel]
                relations.append(
                    [(normalise(s), set(p.split("|")), normalise(t)) for s, p, t in alternatives]
                )
            for alternatives in relations:
                for s, _, t in alternatives:
                    if s not in by_key or t not in by_key:
                        raise ValueError(f"relation endpoint {s!r} or {t!r} is no entity")
            items.append(
                Item(
                    id=row["id"],
                    shape=row["shape"],
                    text=row["text"],
                    said_at=datetime.fromisoformat(row["said_at"]),
                    entities=entities,
                    relations=relations,
                )
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise SystemExit(f"{path}:{number}: bad labelled sentence: {exc}") from exc
    return items


# the two extractors ------------------------------------------------------------------------


def _module_from_git(rev: str, path: str, name: str, replace: dict[str, str]) -> ModuleType:
    source = subprocess.run(
        ["git", "-C", str(PROJECT_ROOT), "show", f"{rev}:{path}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for old, new in replace.items():
        source = source.replace(old, new)
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    exec(compile(source, f"{rev}:{path}", "exec"), module.__dict__)
    return module


def baseline_modules(rev: str) -> tuple[ModuleType, ModuleType]:
    """The rules extractor and the graph reader of commit ``rev`` (from git), importing the
    rest of the library from this checkout (``read_fact`` lived in ``graph/build.py`` then;
    it is in ``graph/fact_reading.py`` now)."""
    rules = _module_from_git(rev, "agentmem/semantic/rules.py", "_baseline_rules", {})
    build = _module_from_git(
        rev,
        "agentmem/graph/build.py",
        "_baseline_build",
        {"from agentmem.semantic.rules import": "from _baseline_rules import"},
    )
    return rules, build


def current_modules() -> tuple[ModuleType, ModuleType]:
    """The rules extractor and the graph reader of this checkout."""
    from agentmem.graph import fact_reading
    from agentmem.semantic import rules

    return rules, fact_reading


def reader(rules: ModuleType, graph_reader: ModuleType) -> Reader:
    """(entity names, relations) the graph gets from one statement, on either path."""
    from agentmem.models import MemoryKind, MemoryRecord, Scope
    from agentmem.semantic.decide import fact_metadata
    from agentmem.semantic.episodes import episode_from

    scope = Scope(user_id="bench")
    extractor = rules.RulesExtractor()

    def read(text: str, said_at: datetime, infer: bool) -> tuple[set[str], list[Triple]]:
        if infer:
            facts = extractor.extract(episode_from(text, said_at=said_at))
            records = [
                MemoryRecord(
                    scope=scope, kind=MemoryKind.SEMANTIC, text=f.text, metadata=fact_metadata(f)
                )
                for f in facts
            ]
        else:
            records = [MemoryRecord(scope=scope, kind=MemoryKind.SEMANTIC, text=text)]
        names: set[str] = set()
        relations: list[Triple] = []
        for record in records:
            reading = graph_reader.read_fact(record)
            names.update(m.name for m in reading.mentions)
            relations.extend(r for r in reading.relations if r not in relations)
        return names, relations

    return read


# scoring ---------------------------------------------------------------------------------


def _entity_alternatives(item: Item, name: str) -> set[str]:
    return next((alts for alts in item.entities if name in alts), {name})


def _matches(item: Item, triple: Triple, gold: list[tuple[str, set[str], str]]) -> bool:
    source, predicate, target = triple
    return any(
        source in _entity_alternatives(item, s)
        and target in _entity_alternatives(item, t)
        and predicate in predicates
        for s, predicates, t in gold
    )


@dataclass
class Tally:
    """Counts over a set of sentences."""

    entities_predicted: int = 0
    entities_correct: int = 0
    entities_gold: int = 0
    entities_found: int = 0
    typed_predicted: int = 0
    typed_correct: int = 0
    co_mentions: int = 0
    relations_gold: int = 0
    relations_found: int = 0
    sentences: int = 0
    seconds: float = 0.0

    def add(self, other: Tally) -> None:
        for key, value in vars(other).items():
            setattr(self, key, getattr(self, key) + value)

    def metrics(self) -> dict[str, float | int | None]:
        def ratio(a: float, b: float) -> float | None:
            return a / b if b else None  # nothing to score: shown as "-"

        ep = ratio(self.entities_correct, self.entities_predicted)
        er = ratio(self.entities_found, self.entities_gold)
        rp = ratio(self.typed_correct, self.typed_predicted)
        rr = ratio(self.relations_found, self.relations_gold)

        def f1(p: float | None, r: float | None) -> float | None:
            return None if p is None or r is None else (2 * p * r / (p + r) if p + r else 0.0)

        return {
            "sentences": self.sentences,
            "entity_precision": ep,
            "entity_recall": er,
            "entity_f1": f1(ep, er),
            "relation_precision": rp,
            "relation_recall": rr,
            "relation_f1": f1(rp, rr),
            "edge_precision": ratio(self.typed_correct, self.typed_predicted + self.co_mentions),
            "typed_relations": self.typed_predicted,
            "co_mentions": self.co_mentions,
            "gold_relations": self.relations_gold,
            "ms_per_sentence": 1000 * (ratio(self.seconds, self.sentences) or 0.0),
        }


def score_item(item: Item, names: set[str], relations: list[Triple], seconds: float) -> Tally:
    """One sentence's counts."""
    tally = Tally(sentences=1, seconds=seconds)
    tally.entities_predicted = len(names)
    tally.entities_correct = sum(any(n in alts for alts in item.entities) for n in names)
    tally.entities_gold = len(item.entities)
    tally.entities_found = sum(bool(alts & names) for alts in item.entities)
    typed = [r for r in relations if r[1] != CO_MENTION]
    tally.co_mentions = len(relations) - len(typed)
    tally.typed_predicted = len(typed)
    tally.typed_correct = sum(
        any(_matches(item, r, gold) for gold in item.relations) for r in typed
    )
    tally.relations_gold = len(item.relations)
    tally.relations_found = sum(
        any(_matches(item, r, gold) for r in typed) for gold in item.relations
    )
    return tally


def run_set(
    items: Sequence[Item], read: Reader, infer: bool
) -> tuple[Tally, dict[str, Tally], list[dict[str, Any]]]:
    """Totals, totals by shape, and each sentence's output."""
    total = Tally()
    by_shape: dict[str, Tally] = defaultdict(Tally)
    rows = []
    for item in items:
        if not infer and item.first_person:
            continue
        started = time.perf_counter()
        names, relations = read(item.text, item.said_at, infer)
        tally = score_item(item, names, relations, time.perf_counter() - started)
        total.add(tally)
        by_shape[item.shape].add(tally)
        rows.append(
            {
                "id": item.id,
                "entities": sorted(names),
                "relations": [list(r) for r in relations],
                "wrong": [
                    list(r)
                    for r in relations
                    if r[1] != CO_MENTION and not any(_matches(item, r, g) for g in item.relations)
                ],
                "missed": [
                    [s, "|".join(sorted(p)), t]
                    for gold in item.relations
                    if not any(_matches(item, r, gold) for r in relations)
                    for s, p, t in gold[:1]
                ],
            }
        )
    return total, dict(by_shape), rows


# report ----------------------------------------------------------------------------------


HEADERS = [
    "set",
    "path",
    "extractor",
    "sentences",
    "entity P",
    "entity R",
    "relation P",
    "relation R",
    "relation F1",
    "typed relations",
    "co-mention edges",
    "all-edge P",
]


def metric_rows(metrics: dict[str, Any]) -> list[list[str]]:
    rows = []
    for set_name, paths in metrics.items():
        for path, extractors in paths.items():
            for extractor, m in extractors.items():
                rows.append(
                    [
                        set_name,
                        path,
                        extractor,
                        str(m["sentences"]),
                        fmt(m["entity_precision"]),
                        fmt(m["entity_recall"]),
                        fmt(m["relation_precision"]),
                        fmt(m["relation_recall"]),
                        fmt(m["relation_f1"]),
                        str(m["typed_relations"]),
                        str(m["co_mentions"]),
                        fmt(m["edge_precision"]),
                    ]
                )
    return rows


def render_markdown(results: dict[str, Any]) -> str:
    info = results["machine"]
    sets = results["dataset"]
    parts = [
        "## Knowledge graph: entities and relations on labelled sentences",
        "",
        f"Run {results['date']} with `{results['command']}` in {results['wall_seconds']:.0f} s.",
        f"Machine: {machine_line(info)}.",
        "",
        "Data: "
        + "; ".join(
            f"`{v['path']}`, {v['sentences']} sentences ({v['shapes']})" for v in sets.values()
        )
        + ". Written for this project. The development set was written before the clause "
        "parser and the third-person rules and then used while writing them, so its current "
        "row is in-sample; the held-out set was written and committed before the extractor "
        "was first run on it, and no rule was changed after measuring it. Both were labelled by "
        "the engineer who wrote the rules.",
        "",
        f"The held-out set's first measurement (commit `{FIRST_HELDOUT['commit']}`) is the "
        "out-of-sample figure: current extractor, infer path, relation precision "
        f"{FIRST_HELDOUT['infer']['relation_precision']:.3f} and recall "
        f"{FIRST_HELDOUT['infer']['relation_recall']:.3f} (text path "
        f"{FIRST_HELDOUT['text']['relation_precision']:.3f} / "
        f"{FIRST_HELDOUT['text']['relation_recall']:.3f}). Four defects it showed were fixed "
        'after it (a relative clause\'s verb after "who", "his/her <noun> Y" among '
        'co-subjects, a possessor whose noun is the argument, "for" inside names such as '
        "Habitat for Humanity), so the heldout rows below are no longer blind. The heldout2 "
        "set was then written and committed before its first run; no rule has been changed "
        "after measuring it, so its rows are the out-of-sample figures for this code.",
        "",
        f"**baseline** is commit `{results['baseline_rev']}` (rules-v1: entities only in "
        "first-person turns or after a known name, relations from the fact's metadata subject "
        "with the first word after it as the verb); **current** is this checkout, both run in "
        "this process on the same sentences. *infer*: the facts `add(..., infer=True)` stores, "
        "read into the graph; *text*: a fact stored as it is, read from its text alone "
        "(first-person turns left out). Relation P/R count typed relations (source, target, "
        "direction and predicate right); *co-mention edges* are `mentioned_with` links that "
        "claim no relation, and *all-edge P* counts them as wrong.",
        "",
        markdown_table(HEADERS, metric_rows(results["metrics"])),
        "",
        "### Current extractor by shape (all three sets together, infer path)",
        "",
        markdown_table(
            ["shape", "sentences", "entity P", "entity R", "relation P", "relation R"],
            [
                [
                    shape,
                    str(m["sentences"]),
                    fmt(m["entity_precision"]),
                    fmt(m["entity_recall"]),
                    fmt(m["relation_precision"]),
                    fmt(m["relation_recall"]),
                ]
                for shape, m in sorted(results["by_shape"].items())
            ],
        ),
        "",
        f"Time to extract and read one sentence (infer path, current): "
        f"{results['metrics']['dev']['infer']['current']['ms_per_sentence']:.2f} ms "
        f"(baseline {results['metrics']['dev']['infer']['baseline']['ms_per_sentence']:.2f} "
        "ms) on the development set, no model.",
        "",
        "Wrong or missed relations of the current extractor on the held-out sets (infer path):",
        "",
    ]
    for set_name in ("heldout", "heldout2"):
        for row in results["sentences"][set_name]["infer"]["current"]:
            if row["wrong"] or row["missed"]:
                wrong = ", ".join(f"{s} -{p}-> {t}" for s, p, t in row["wrong"]) or "-"
                missed = ", ".join(f"{s} -{p}-> {t}" for s, p, t in row["missed"]) or "-"
                parts.append(f"- `{row['id']}`: wrong {wrong}; missed {missed}")
    return "\n".join(parts)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.relations", description=__doc__)
    parser.add_argument("--baseline", default=BASELINE_REV, help="git revision of the baseline")
    parser.add_argument("--sets", default="dev,heldout,heldout2", help="labelled sets to run")
    parser.add_argument("--out", default=str(RESULTS_MD), help="results markdown to update")
    parser.add_argument("--json", default=str(DEFAULT_JSON), help="where to write the JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Score both extractors on the labelled sets and write the results; returns them."""
    offline()
    args = build_parser().parse_args(argv)
    names = [s.strip() for s in args.sets.split(",") if s.strip()]
    if not names or set(names) - set(SETS):
        raise SystemExit(f"--sets takes {', '.join(SETS)}, got {args.sets!r}")
    started = time.perf_counter()
    info = machine_info()
    console = report_console()
    readers = {
        "baseline": reader(*baseline_modules(args.baseline)),
        "current": reader(*current_modules()),
    }
    metrics: dict[str, Any] = {}
    sentences: dict[str, Any] = {}
    dataset: dict[str, Any] = {}
    by_shape: dict[str, Tally] = defaultdict(Tally)
    for set_name in names:
        items = load_items(SETS[set_name])
        dataset[set_name] = {
            "path": str(SETS[set_name].relative_to(PROJECT_ROOT)),
            "sentences": len(items),
            "shapes": ", ".join(
                f"{k} {v}" for k, v in sorted(Counter(i.shape for i in items).items())
            ),
        }
        for path, infer in (("infer", True), ("text", False)):
            for extractor, read in readers.items():
                total, shapes, rows = run_set(items, read, infer)
                metrics.setdefault(set_name, {}).setdefault(path, {})[extractor] = total.metrics()
                sentences.setdefault(set_name, {}).setdefault(path, {})[extractor] = rows
                if extractor == "current" and infer:
                    for shape, tally in shapes.items():
                        by_shape[shape].add(tally)
    results: dict[str, Any] = {
        "benchmark": "relations",
        "date": now_utc(),
        "command": command_line("benchmarks.relations", argv),
        "machine": info,
        "wall_seconds": time.perf_counter() - started,
        "baseline_rev": args.baseline,
        "dataset": dataset,
        "metrics": metrics,
        "by_shape": {k: v.metrics() for k, v in by_shape.items()},
        "sentences": sentences,
    }
    console.print(rich_table("Entities and relations", HEADERS, metric_rows(metrics)))
    if set(names) == set(SETS):
        out = project_path(args.out)
        write_section(out, "relations", render_markdown(results))
        console.print(f"wrote {out}")
    write_json(project_path(args.json), results)
    console.print(f"wrote {project_path(args.json)}")
    return results


if __name__ == "__main__":
    main()
