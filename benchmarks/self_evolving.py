"""Self-evolving agents in ToolWorld: does experience memory make the next attempt better?

Five agents share one scripted policy (plan, run, explore at random when a call fails; see
:mod:`benchmarks.toolworld`) and differ only in memory: none; raw trajectories (replay the most
similar past success), alone and with utility learning (each task's reward passed to
``Memory.feedback`` for the trajectory replayed); procedures distilled from experience
(``recall_experience`` + ``plan_call``, uses reported back), alone and with utility learning
(each task's reward passed to ``Memory.feedback`` for the procedures followed). For each seed,
every agent plays the same stream of training task instances (the six families in shuffled
rounds, each instance new), then the same held-out instances (never seen in training) with its
memory read-only. Success rates are reported per window of episodes and on the held-out set,
averaged over seeds.

``python -m benchmarks.self_evolving`` writes the ``experience`` section of RESULTS.md, a
learning-curve PNG next to it and a JSON file; ``examples/self_evolving_agent.py`` runs the
same experiment, smaller.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentmem import Memory, Procedure, Settings
from agentmem.embedders import Embedder
from benchmarks._common import (
    BENCH_DIR,
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
from benchmarks.toolworld import (
    FAMILIES,
    NoMemoryAgent,
    ProcedureAgent,
    Task,
    TrajectoryAgent,
    TrajectoryUtilityAgent,
    UtilityAgent,
    play,
    task_stream,
)

CONDITIONS: dict[str, str] = {
    "off": "memory off",
    "raw": "raw trajectories",
    "raw_utility": "trajectories + utility",
    "procedures": "procedures",
    "utility": "procedures + utility",
}
"""Condition key -> label, in table order."""
AGENTS: dict[str, Any] = {
    "raw": TrajectoryAgent,
    "raw_utility": TrajectoryUtilityAgent,
    "procedures": ProcedureAgent,
    "utility": UtilityAgent,
}
"""The memory-on conditions' agents."""
DEFAULT_PLOT = BENCH_DIR / "self_evolving_curve.png"
DEFAULT_JSON = RESULTS_DIR / "self_evolving.json"
SCOPE = {"user_id": "toolworld-agent"}


@dataclass
class ConditionRun:
    """One agent's run on one seed: training successes in order, held-out successes."""

    train: list[bool] = field(default_factory=list)
    held_out: list[bool] = field(default_factory=list)
    held_out_by_family: dict[str, list[bool]] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class SeedRun:
    """All conditions on one seed, and the procedures the memory-on agent ended with."""

    seed: int
    runs: dict[str, ConditionRun]
    procedures: list[Procedure]


def windows(successes: Sequence[bool], size: int) -> list[float]:
    """Success rate in consecutive windows of ``size`` episodes (the last may be shorter)."""
    return [
        sum(successes[i : i + size]) / len(successes[i : i + size])
        for i in range(0, len(successes), size)
    ]


def _memory(home: Path, embedder: Embedder, *, distil: bool) -> Memory:
    settings = Settings.load(home=home, experience={"distil": distil}, adapters="off")
    return Memory(settings=settings, embedder=embedder)


def streams(seed: int, episodes: int, held_out: int) -> tuple[list[Task], list[Task]]:
    """A seed's training instances and its held-out instances (none of them in training)."""
    train = task_stream(episodes, seed)
    return train, task_stream(held_out, seed + 10_000, exclude={t.text for t in train})


def run_seed(
    seed: int,
    *,
    episodes: int,
    held_out: int,
    embedder: Embedder,
    workdir: Path,
    on_episode: Callable[[str, int], None] | None = None,
) -> SeedRun:
    """Every condition on one seed's task streams."""
    train, test = streams(seed, episodes, held_out)
    runs: dict[str, ConditionRun] = {}
    procedures: list[Procedure] = []
    for key in CONDITIONS:
        mem = None
        if key == "off":
            agent: Any = NoMemoryAgent()
        else:
            mem = _memory(workdir / f"seed{seed}-{key}", embedder, distil=not key.startswith("raw"))
            agent = AGENTS[key](mem, **SCOPE)
        try:
            runs[key] = _play_all(agent, train, test, seed, key, on_episode)
            if mem is not None and key == "procedures":
                procedures = mem.procedures(**SCOPE, include_retired=True, limit=1000)
        finally:
            if mem is not None:
                mem.close()
    return SeedRun(seed=seed, runs=runs, procedures=procedures)


def _play_all(
    agent: Any,
    train: Sequence[Task],
    test: Sequence[Task],
    seed: int,
    key: str,
    on_episode: Callable[[str, int], None] | None,
) -> ConditionRun:
    run = ConditionRun()
    rng = random.Random(seed)  # the same exploration seed for every condition
    started = time.perf_counter()
    for i, task in enumerate(train):
        run.train.append(play(agent, task, rng).success)
        if on_episode is not None:
            on_episode(key, i)
    for task in test:
        success = play(agent, task, rng, learn=False).success
        run.held_out.append(success)
        run.held_out_by_family.setdefault(task.family, []).append(success)
    run.seconds = time.perf_counter() - started
    return run


def run_experiment(
    *,
    seeds: Sequence[int] = (0,),
    episodes: int = 60,
    window: int = 10,
    held_out: int = 30,
    embedder: Embedder | None = None,
    on_episode: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    """Run every condition on every seed; returns the results as plain data (see
    :func:`summarise`) plus ``seed_runs`` with the raw runs."""
    if episodes < 1 or window < 1 or held_out < 1 or not seeds:
        raise ValueError("episodes, window, held_out and seeds must be positive / non-empty")
    offline()
    embedder = default_embedder(embedder)
    shared = CachingEmbedder(embedder)
    # Every task text is embedded once, in one batch, and shared by both memories.
    texts: set[str] = set()
    for seed in seeds:
        train, test = streams(seed, episodes, held_out)
        texts.update(t.text for t in [*train, *test])
    shared.embed_documents(sorted(texts))
    seed_runs = []
    with tempfile.TemporaryDirectory(prefix="agentmem-toolworld-") as tmp:
        for seed in seeds:
            seed_runs.append(
                run_seed(
                    seed,
                    episodes=episodes,
                    held_out=held_out,
                    embedder=shared,
                    workdir=Path(tmp),
                    on_episode=on_episode,
                )
            )
    return summarise(seed_runs, window=window, episodes=episodes, held_out=held_out)


def summarise(
    seed_runs: Sequence[SeedRun], *, window: int, episodes: int, held_out: int
) -> dict[str, Any]:
    """Mean success per window and on the held-out set, per condition, over seeds."""
    curves: dict[str, list[float]] = {}
    spread: dict[str, list[float]] = {}
    held: dict[str, float] = {}
    by_family: dict[str, dict[str, float]] = {}
    for key in CONDITIONS:
        per_seed = [windows(s.runs[key].train, window) for s in seed_runs]
        curves[key] = [statistics.fmean(col) for col in zip(*per_seed, strict=True)]
        spread[key] = [
            statistics.pstdev(col) if len(col) > 1 else 0.0 for col in zip(*per_seed, strict=True)
        ]
        held[key] = statistics.fmean(
            sum(s.runs[key].held_out) / len(s.runs[key].held_out) for s in seed_runs
        )
        by_family[key] = {
            family: statistics.fmean(
                statistics.fmean(s.runs[key].held_out_by_family.get(family, [False]))
                for s in seed_runs
            )
            for family in FAMILIES
        }
    last = seed_runs[-1]
    statuses = Counter(p.status.value for p in last.procedures)
    return {
        "seeds": [s.seed for s in seed_runs],
        "episodes": episodes,
        "window": window,
        "held_out": held_out,
        "windows": [f"{i + 1}-{min(i + window, episodes)}" for i in range(0, episodes, window)],
        "curves": curves,
        "curve_stdev": spread,
        "held_out_success": held,
        "held_out_by_family": by_family,
        "seconds": {k: sum(s.runs[k].seconds for s in seed_runs) for k in CONDITIONS},
        "procedures": {
            "seed": last.seed,
            "count": len(last.procedures),
            "by_status": dict(statuses),
            "top": [
                {
                    "text": p.text,
                    "type": p.type.value,
                    "support": p.support,
                    "successes": p.successes,
                    "failures": p.failures,
                    "status": p.status.value,
                }
                for p in last.procedures[:8]
            ],
        },
        "seed_runs": seed_runs,
    }


# output ------------------------------------------------------------------------------------


def table_rows(results: dict[str, Any]) -> list[list[Any]]:
    """One row per window, then the held-out row; one column per condition."""
    rows: list[list[Any]] = []
    for i, label in enumerate(results["windows"]):
        rows.append([f"training episodes {label}", *(results["curves"][k][i] for k in CONDITIONS)])
    rows.append(
        [
            f"held-out ({results['held_out']} new instances, memory read-only)",
            *(results["held_out_success"][k] for k in CONDITIONS),
        ]
    )
    return rows


HEADERS = ["episodes", *CONDITIONS.values()]


def family_rows(results: dict[str, Any]) -> list[list[Any]]:
    """Held-out success per task family and condition."""
    by_family = results["held_out_by_family"]
    return [
        [f"{name} ({FAMILIES[name].rules})", *(by_family[k][name] for k in CONDITIONS)]
        for name in FAMILIES
    ]


def write_plot(results: dict[str, Any], path: Path) -> None:
    """Success rate per training window for each condition, held-out rates as markers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    x = list(range(1, len(results["windows"]) + 1))
    colours = {"off": "C3", "raw": "C1", "raw_utility": "C5", "procedures": "C0", "utility": "C2"}
    for key, label in CONDITIONS.items():
        y = results["curves"][key]
        sd = results["curve_stdev"][key]
        ax.plot(x, y, "o-", color=colours[key], label=label)
        if len(results["seeds"]) > 1:
            low = [max(0.0, a - b) for a, b in zip(y, sd, strict=True)]
            high = [min(1.0, a + b) for a, b in zip(y, sd, strict=True)]
            ax.fill_between(x, low, high, color=colours[key], alpha=0.12)
        ax.plot(
            [x[-1] + 1],
            [results["held_out_success"][key]],
            "D",
            color=colours[key],
            markersize=8,
        )
    ax.set_xticks([*x, x[-1] + 1])
    ax.set_xticklabels([*results["windows"], "held-out"], rotation=30, fontsize=8)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(f"training episodes (windows of {results['window']})")
    ax.set_ylabel("success rate")
    seeds = len(results["seeds"])
    ax.set_title(f"ToolWorld: success per episode window ({seeds} seed{'s' * (seeds > 1)})")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def render_markdown(results: dict[str, Any], plot: Path | None) -> str:
    """The ``experience`` section of RESULTS.md."""
    seeds = results["seeds"]
    proc = results["procedures"]
    status = ", ".join(f"{n} {s}" for s, n in sorted(proc["by_status"].items())) or "none"
    lines = [
        "## Self-evolving agents: ToolWorld learning curve",
        "",
        "**Measured on ToolWorld, the project's own benchmark** (written here, saturated by "
        "procedures); the outside benchmark, TextWorldExpress, is in its own section "
        "(`python -m benchmarks.self_evolving_twx`).",
        "",
        f"Run {results['date']} with `{results['command']}` in {results['wall_seconds']:.0f} s.",
        f"Machine: {machine_line(results['machine'])}.",
        "",
        "ToolWorld (`benchmarks/toolworld.py`) has six task families whose goal tool fails when "
        "called as documented, because of hidden rules (a precondition, a unit, an argument "
        "order, a chain of preconditions, two rules at once); errors say only that a call "
        "failed. Five agents share one scripted policy that explores at random when a call "
        "fails (another tool first, reordered or swapped arguments, a number scaled by 10, 60, "
        "100 or 1000; at most 4 failed calls per episode) and differ only in memory: none; raw "
        "trajectories (replay the most similar past success with the current values "
        "substituted; `distil` off), alone and with utility learning (each task's reward also "
        "passed to `Memory.feedback` for the trajectory it replayed); procedures distilled by "
        "agentmem (`recall_experience` + "
        "`plan_call`, with each use reported back through `used_procedures`); and the same "
        "procedures with utility learning (each task's reward also passed to "
        "`Memory.feedback` for the procedures the plan followed, so their learned utility "
        "re-ranks the next recall). No LLM is "
        f"called. Each of {len(seeds)} seed(s) draws {results['episodes']} training instances "
        f"(families in shuffled rounds, every instance new) and {results['held_out']} held-out "
        "instances of the same families that never appear in training, played with memory "
        "read-only. Success rate per window, mean over seeds:",
        "",
        markdown_table(HEADERS, table_rows(results)),
        "",
        "Held-out success by family:",
        "",
        markdown_table(["family (hidden rules)", *CONDITIONS.values()], family_rows(results)),
        "",
        f"At the end of seed {proc['seed']} the memory-on agent held {proc['count']} procedures "
        f"({status}).",
        "",
        _utility_line(results["held_out_success"]),
    ]
    if plot is not None:
        lines += [
            "",
            f"![ToolWorld learning curve]({os.path.relpath(plot, BENCH_DIR)})",
            "",
            "Lines: mean success per training window; shaded: one standard deviation across "
            "seeds; diamonds: the held-out set.",
        ]
    return "\n".join(lines)


def _utility_line(held: dict[str, float]) -> str:
    """One sentence: what utility learning changed on the held-out set."""

    def change(with_: str, without: str) -> str:
        delta = held[with_] - held[without]
        word = "no change" if abs(delta) < 1e-9 else f"{delta:+.3f}"
        return f"{held[with_]:.3f} against {held[without]:.3f} without ({word})"

    return (
        "Utility learning (task outcomes passed as feedback) on the held-out set: procedures + "
        f"utility {change('utility', 'procedures')}; raw trajectories + utility "
        f"{change('raw_utility', 'raw')}."
    )


# entry point -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.self_evolving", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--episodes", type=int, default=72, help="training episodes per seed")
    parser.add_argument("--window", type=int, default=12, help="episodes per curve point")
    parser.add_argument("--held-out", type=int, default=36, help="held-out instances per seed")
    parser.add_argument("--out", type=Path, default=RESULTS_MD, help="Markdown results file")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="JSON results file")
    parser.add_argument("--plot", type=Path, default=DEFAULT_PLOT, help="learning-curve PNG")
    return parser


def main(argv: Sequence[str] | None = None, *, embedder: Embedder | None = None) -> dict[str, Any]:
    """Run the experiment and write RESULTS.md's ``experience`` section, the PNG and JSON."""
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    info = machine_info()
    results = run_experiment(
        seeds=args.seeds,
        episodes=args.episodes,
        window=args.window,
        held_out=args.held_out,
        embedder=embedder,
    )
    results.pop("seed_runs")
    results.update(
        benchmark="self_evolving",
        date=now_utc(),
        command=command_line("benchmarks.self_evolving", argv),
        machine=info,
        wall_seconds=time.perf_counter() - started,
    )
    plot = project_path(args.plot) if args.plot else None
    if plot is not None:
        write_plot(results, plot)
    write_section(project_path(args.out), "experience", render_markdown(results, plot))
    write_json(project_path(args.json), results)
    console = report_console()
    console.print(rich_table("ToolWorld success rate", HEADERS, table_rows(results)))
    console.print(f"wrote {project_path(args.out)}, {project_path(args.json)}, {plot}")
    return results


if __name__ == "__main__":
    main()
