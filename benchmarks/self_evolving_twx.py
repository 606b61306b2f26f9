"""Self-evolving agents on an outside benchmark: TextWorldExpress, memory on vs off.

For each game (``twc``, ``cookingworld``, ``coin``; settings in
:data:`benchmarks.twx_world.GAMES`) and each seed, four agents that share one explorer and
differ only in memory (off, raw trajectories, procedures, procedures + utility; see
:mod:`benchmarks.twx_world`) play the same games of the **train** fold, learning from rewards
after each, then the same games of the **test** fold with memory read-only (nothing recorded,
no feedback). The seed picks which train and test games are played and drives every agent's
exploration identically. Reported per game and condition: success rate, score and moves on the
test fold (mean over seeds, with the spread across seeds), and success per window of training
episodes (the learning curve). No LLM is called, and no agent reads the gold path.

``python -m benchmarks.self_evolving_twx`` writes the ``twx`` section of RESULTS.md, a
learning-curve PNG next to it and a JSON file.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentmem import Memory, Settings
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
    package_versions,
    project_path,
    report_console,
    rich_table,
    write_json,
    write_section,
)
from benchmarks.twx_world import (
    GAMES,
    Episode,
    NoMemoryAgent,
    ProcedureAgent,
    TrajectoryAgent,
    UtilityAgent,
    fold_seeds,
    open_env,
    play,
)

CONDITIONS: dict[str, str] = {
    "off": "memory off",
    "raw": "raw trajectories",
    "procedures": "procedures",
    "utility": "procedures + utility",
}
"""Condition key -> label, in table order."""
AGENTS: dict[str, Any] = {
    "raw": TrajectoryAgent,
    "procedures": ProcedureAgent,
    "utility": UtilityAgent,
}
DEFAULT_PLOT = BENCH_DIR / "self_evolving_twx.png"
DEFAULT_JSON = RESULTS_DIR / "self_evolving_twx.json"


@dataclass
class Run:
    """One agent on one game and seed: its training and test episodes (as plain numbers)."""

    train: list[dict[str, Any]] = field(default_factory=list)
    test: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    procedures: int = 0


def _summary(episode: Episode) -> dict[str, Any]:
    return {
        "seed": episode.seed,
        "success": episode.success,
        "score": episode.score,
        "moves": episode.moves,
    }


def _memory(home: Path, embedder: Embedder, *, distil: bool) -> Memory:
    settings = Settings.load(home=home, experience={"distil": distil}, adapters="off")
    return Memory(settings=settings, embedder=embedder)


def run_game(
    game_name: str,
    *,
    seeds: Sequence[int],
    episodes: int,
    test_games: int,
    embedder: Embedder,
    workdir: Path,
    conditions: Sequence[str] = tuple(CONDITIONS),
) -> dict[str, list[Run]]:
    """Every condition on every seed of one game: {condition: [run per seed]}."""
    game = GAMES[game_name]
    runs: dict[str, list[Run]] = {key: [] for key in conditions}
    with open_env(game) as env:
        train_pool, test_pool = fold_seeds(env, "train"), fold_seeds(env, "test")
        for seed in seeds:
            picker = random.Random(seed)
            train = picker.sample(train_pool, episodes)
            test = picker.sample(test_pool, test_games)
            for key in conditions:
                rng = random.Random(seed)  # the same exploration for every condition
                mem = None
                if key == "off":
                    agent: Any = NoMemoryAgent(rng)
                else:
                    home = workdir / f"{game_name}-{seed}-{key}"
                    mem = _memory(home, embedder, distil=key != "raw")
                    agent = AGENTS[key](mem, rng, user_id=f"twx-{game_name}")
                run = Run()
                started = time.perf_counter()
                try:
                    for s in train:
                        run.train.append(_summary(play(env, agent, game, s, "train")))
                    for s in test:
                        run.test.append(_summary(play(env, agent, game, s, "test", learn=False)))
                    if mem is not None:
                        run.procedures = len(mem.procedures(user_id=f"twx-{game_name}", limit=1000))
                finally:
                    if mem is not None:
                        mem.close()
                run.seconds = time.perf_counter() - started
                runs[key].append(run)
    return runs


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, statistics.pstdev(values) if len(values) > 1 else 0.0


def summarise(
    all_runs: dict[str, dict[str, list[Run]]], *, window: int, episodes: int
) -> dict[str, Any]:
    """Per game and condition: test-fold success, score and moves (mean and spread across
    seeds), the training curve (success per window) and seconds."""
    games: dict[str, Any] = {}
    for game_name, runs in all_runs.items():
        per: dict[str, Any] = {}
        for key, seed_runs in runs.items():
            metrics = {}
            for metric in ("success", "score", "moves"):
                values = [statistics.fmean(float(e[metric]) for e in r.test) for r in seed_runs]
                mean, sd = _mean_sd(values)
                metrics[metric] = {"mean": mean, "sd": sd, "per_seed": values}
            curves = []
            for r in seed_runs:
                wins = [float(e["success"]) for e in r.train]
                curves.append(
                    [statistics.fmean(wins[i : i + window]) for i in range(0, len(wins), window)]
                )
            per[key] = {
                **metrics,
                "curve": [statistics.fmean(col) for col in zip(*curves, strict=True)],
                "curve_sd": [_mean_sd(col)[1] for col in zip(*curves, strict=True)],
                "seconds": sum(r.seconds for r in seed_runs),
                "procedures": [r.procedures for r in seed_runs],
            }
        games[game_name] = per
    return {
        "episodes": episodes,
        "window": window,
        "windows": [f"{i + 1}-{min(i + window, episodes)}" for i in range(0, episodes, window)],
        "games": games,
    }


def _game_worker(
    name: str, options: dict[str, Any], embedder: Embedder | None = None
) -> dict[str, list[Run]]:
    """One game's runs in a fresh temporary directory (a process of its own under
    ``--jobs``)."""
    offline()
    shared = embedder if embedder is not None else CachingEmbedder(default_embedder(None))
    with tempfile.TemporaryDirectory(prefix="agentmem-twx-") as tmp:
        return run_game(name, embedder=shared, workdir=Path(tmp), **options)


def run_experiment(
    *,
    games: Sequence[str] = tuple(GAMES),
    seeds: Sequence[int] = (0, 1, 2),
    episodes: int = 60,
    test_games: int = 30,
    window: int = 20,
    embedder: Embedder | None = None,
    conditions: Sequence[str] = tuple(CONDITIONS),
    jobs: int = 1,
) -> dict[str, Any]:
    """Every condition on every game and seed; results as plain data (see :func:`summarise`).
    ``jobs`` > 1 plays that many games at once, each in its own process."""
    if episodes < 1 or test_games < 1 or window < 1 or not seeds:
        raise ValueError("episodes, test games, window and seeds must be positive / non-empty")
    unknown = sorted(set(games) - set(GAMES))
    if unknown:
        raise ValueError(f"unknown games {unknown}; choose from {sorted(GAMES)}")
    offline()
    all_runs: dict[str, dict[str, list[Run]]] = {}
    options = {
        "seeds": list(seeds),
        "episodes": episodes,
        "test_games": test_games,
        "conditions": list(conditions),
    }
    if jobs > 1 and len(games) > 1:
        # One process per game (each with its own embedder and Java server).
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {name: pool.submit(_game_worker, name, options) for name in games}
            all_runs = {name: f.result() for name, f in futures.items()}
    else:
        shared = CachingEmbedder(default_embedder(embedder))
        for name in games:
            all_runs[name] = _game_worker(name, options, shared)
    results = summarise(all_runs, window=window, episodes=episodes)
    results.update(seeds=list(seeds), test_games=test_games, conditions=list(conditions))
    results["settings"] = {
        name: {"params": GAMES[name].params, "max_moves": GAMES[name].max_moves} for name in games
    }
    return results


# output ------------------------------------------------------------------------------------


def _cell(entry: dict[str, float], digits: int = 2) -> str:
    return f"{entry['mean']:.{digits}f} ± {entry['sd']:.{digits}f}"


def fold_rows(results: dict[str, Any]) -> list[list[Any]]:
    """One row per game and condition: test-fold success, score, moves (mean ± sd)."""
    rows = []
    for name, per in results["games"].items():
        for key in results["conditions"]:
            r = per[key]
            rows.append(
                [
                    name,
                    CONDITIONS[key],
                    _cell(r["success"]),
                    _cell(r["score"]),
                    _cell(r["moves"], 1),
                ]
            )
    return rows


TEST_HEADERS = ["game", "memory", "success (test fold)", "score", "moves"]


def curve_rows(results: dict[str, Any]) -> list[list[Any]]:
    """Training success per window, one row per game and condition."""
    return [
        [name, CONDITIONS[key], *(f"{v:.2f}" for v in per[key]["curve"])]
        for name, per in results["games"].items()
        for key in results["conditions"]
    ]


def write_plot(results: dict[str, Any], path: Path) -> None:
    """One panel per game: training success per window and test-fold success (diamonds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["games"])
    fig, axes = plt.subplots(1, len(names), figsize=(4.6 * len(names), 4.2), dpi=110, sharey=True)
    if len(names) == 1:
        axes = [axes]
    colours = {"off": "C3", "raw": "C1", "procedures": "C0", "utility": "C2"}
    x = list(range(1, len(results["windows"]) + 1))
    for ax, name in zip(axes, names, strict=True):
        per = results["games"][name]
        for key in results["conditions"]:
            y, sd = per[key]["curve"], per[key]["curve_sd"]
            ax.plot(x, y, "o-", color=colours[key], label=CONDITIONS[key])
            low = [max(0.0, a - b) for a, b in zip(y, sd, strict=True)]
            high = [min(1.0, a + b) for a, b in zip(y, sd, strict=True)]
            ax.fill_between(x, low, high, color=colours[key], alpha=0.12)
            test = per[key]["success"]
            ax.errorbar([x[-1] + 1], [test["mean"]], yerr=[test["sd"]], fmt="D", color=colours[key])
        ax.set_xticks([*x, x[-1] + 1])
        ax.set_xticklabels([*results["windows"], "test"], rotation=30, fontsize=8)
        ax.set_title(f"{name} ({GAMES[name].description})", fontsize=9)
        ax.set_xlabel("training episodes")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("success rate")
    axes[0].set_ylim(-0.02, 1.02)
    axes[-1].legend(loc="upper left", fontsize=8)
    seeds = len(results["seeds"])
    fig.suptitle(f"TextWorldExpress: success while training and on the test fold ({seeds} seeds)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def _delta_line(results: dict[str, Any]) -> str:
    parts = []
    for name, per in results["games"].items():
        if not {"off", "procedures", "utility"} <= set(per):
            continue
        off, proc, util = (per[k]["success"]["mean"] for k in ("off", "procedures", "utility"))
        parts.append(
            f"{name}: procedures {100 * (proc - off):+.1f} points over memory off, "
            f"utility {100 * (util - proc):+.1f} over procedures"
        )
    return "; ".join(parts)


def render_markdown(results: dict[str, Any], plot: Path | None) -> str:
    """The ``twx`` section of RESULTS.md."""
    settings = results["settings"]
    setting_rows = [[name, f"`{s['params']}`", s["max_moves"]] for name, s in settings.items()]
    lines = [
        "## Self-evolving agents on TextWorldExpress (an outside benchmark)",
        "",
        f"Run {results['date']} with `{results['command']}` in {results['wall_seconds']:.0f} s "
        f"({results.get('jobs', 1)} game(s) at once). Machine: "
        f"{machine_line(results['machine'])}; load average at the end "
        f"{results.get('load_end', '?')}. "
        f"textworld-express {results['versions'].get('textworld-express')}.",
        "",
        "**This section is measured on TextWorldExpress** (Jansen & Côté, 2022), public text "
        "games generated by its own simulator; the ToolWorld sections above are on the "
        "project's own benchmark. Four agents share one explorer (a random valid action not "
        "yet played this episode) and differ only in memory, all through agentmem's public "
        "API: off; raw trajectories (`distil` off: per entity seen, `recall_experience` "
        "returns similar past experiences and the agent pursues the commands that earned "
        "reward there, put on the entity in view, e.g. *put the gray pillow in the bed* "
        "-> *put the black pillow in the bed*); procedures (the same, each goal planned with "
        "the procedures agentmem distilled, e.g. *open the container before `put in`*, uses "
        "reported back); procedures + utility (each pursued goal's outcome passed to "
        "`Memory.feedback` for the experience and procedures behind it). Learning comes only "
        "from the game's rewards; no agent reads the gold path. Each seed picks "
        f"{results['episodes']} games of the **train** fold to learn on and "
        f"{results['test_games']} games of the **test** fold (for `twc`, objects never seen "
        "in training) played with memory read-only. No LLM is called.",
        "",
        markdown_table(["game", "generation parameters", "moves per episode"], setting_rows),
        "",
        f"Test fold, mean ± standard deviation over {len(results['seeds'])} seeds:",
        "",
        markdown_table(TEST_HEADERS, fold_rows(results)),
        "",
        _delta_line(results) + ".",
        "",
        f"Training success per window of {results['window']} episodes (mean over seeds):",
        "",
        markdown_table(["game", "memory", *results["windows"]], curve_rows(results)),
    ]
    if plot is not None:
        lines += [
            "",
            f"![TextWorldExpress learning curves]({os.path.relpath(plot, BENCH_DIR)})",
            "",
            "Lines: success per training window (shaded: one standard deviation across "
            "seeds); diamonds: the test fold, memory read-only.",
        ]
    lines += ["", *NOTES]
    return "\n".join(lines)


NOTES = [
    "Published figures: none are quoted here. The TextWorldExpress paper and later agent "
    "papers report scores for these games under their own generation parameters, step limits "
    "and (often LLM) agents; we could not confirm a figure for the exact settings above, so "
    "none is set beside ours.",
]


# entry point -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.self_evolving_twx", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--games", nargs="+", default=list(GAMES), choices=list(GAMES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=60, help="training games per seed")
    parser.add_argument("--test-games", type=int, default=30, help="test-fold games per seed")
    parser.add_argument("--window", type=int, default=20, help="episodes per curve point")
    parser.add_argument(
        "--jobs", type=int, default=1, help="games played at once, one process each"
    )
    parser.add_argument("--out", type=Path, default=RESULTS_MD, help="Markdown results file")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="JSON results file")
    parser.add_argument("--plot", type=Path, default=DEFAULT_PLOT, help="learning-curve PNG")
    return parser


def main(argv: Sequence[str] | None = None, *, embedder: Embedder | None = None) -> dict[str, Any]:
    """Run the experiment and write RESULTS.md's ``twx`` section, the PNG and the JSON."""
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    info = machine_info()
    results = run_experiment(
        games=args.games,
        seeds=args.seeds,
        episodes=args.episodes,
        test_games=args.test_games,
        window=args.window,
        embedder=embedder,
        jobs=args.jobs,
    )
    results.update(
        benchmark="self_evolving_twx",
        date=now_utc(),
        command=command_line("benchmarks.self_evolving_twx", argv),
        machine=info,
        versions=package_versions(["textworld-express", "agentmem"]),
        wall_seconds=time.perf_counter() - started,
        jobs=args.jobs,
        load_end=[round(x, 2) for x in os.getloadavg()],
    )
    plot = project_path(args.plot) if args.plot else None
    if plot is not None:
        write_plot(results, plot)
    write_section(project_path(args.out), "twx", render_markdown(results, plot))
    write_json(project_path(args.json), results)
    console = report_console()
    console.print(rich_table("TextWorldExpress, test fold", TEST_HEADERS, fold_rows(results)))
    console.print(f"wrote {project_path(args.out)}, {project_path(args.json)}, {plot}")
    return results


if __name__ == "__main__":
    main()
