"""A self-evolving agent: it gets better at tasks with hidden rules by learning procedures from
its own failures, through agentmem's experience memory.

ToolWorld (benchmarks/toolworld.py) is a small deterministic world of tool calls whose tasks
fail when the tools are called as documented: a file must be opened before it is read, a parcel
is weighed in grams, a copy takes its destination first... A scripted agent explores when a call
fails and records each attempt with ``mem.record_experience``; agentmem reflects on it, distils
procedures ("call `open` before `read`", "multiply `weight` by 1000"), and the next attempt
plans with ``mem.recall_experience`` + ``plan_call``. The same policy with memory off, with
raw trajectories only, and with utility learning on top (each task's outcome passed back with
``mem.feedback``, so what keeps failing sinks in recall) is measured on the same held-out task
instances.

Runs offline on the embedded defaults, no LLM (with AGENTMEM_LLM_MODEL set, reflections come
from that model), in well under a minute:

    python examples/self_evolving_agent.py
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the world and the experiment live in the repository's benchmarks/
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model comes from a package, never a download
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from agentmem import Memory, Settings  # noqa: E402
from agentmem.embedders import Embedder, SentenceTransformerEmbedder  # noqa: E402
from agentmem.experience.models import PlannedCall, format_call  # noqa: E402
from benchmarks._common import CachingEmbedder  # noqa: E402
from benchmarks.self_evolving import (  # noqa: E402
    CONDITIONS,
    HEADERS,
    family_rows,
    run_experiment,
    table_rows,
)
from benchmarks.toolworld import FAMILIES, ProcedureAgent, make_task, play  # noqa: E402

console = Console()


def show_world() -> None:
    console.rule("[bold cyan]1. the world: task families and the rules their documentation hides")
    table = Table(show_lines=False)
    for column in ("family", "example task", "documented goal call", "hidden rules"):
        table.add_column(column)
    rng = random.Random(3)
    for name, family in FAMILIES.items():
        task = make_task(name, rng)
        table.add_row(name, task.text, _call(task.goal_call()), family.rules)
    console.print(table)


def _call(call: PlannedCall) -> str:
    return format_call(call.action, call.args)


def show_one_family(home: Path, embedder: Embedder) -> None:
    console.rule("[bold cyan]2. one family, up close: fail, reflect, distil, do better")
    settings = Settings.load(home=home, adapters="off")
    with Memory(settings=settings, embedder=CachingEmbedder(embedder)) as mem:
        agent = ProcedureAgent(mem, user_id="demo-agent")
        rng = random.Random(1)
        for attempt in range(1, 9):  # until a clean success
            task = make_task("deploy_service", rng)
            plan = agent.plan(task)
            episode = play(agent, task, rng)
            steps = " → ".join(f"{s.action}{'✗' if s.failed else '✓'}" for s in episode.steps)
            verdict = "[green]success[/]" if episode.success else "[red]failure[/]"
            console.print(f"attempt {attempt}: {task.text!r}: {verdict}")
            console.print(f"   planned {' → '.join(_call(c) for c in plan)}")
            console.print(f"   steps   {steps}")
            recalled = mem.recall_experience(task.text, k=1, user_id="demo-agent")
            reflection = recalled.experiences[0].experience.reflection
            if reflection is not None:
                console.print(f"   reflection ({reflection.source}): {reflection.summary}")
            if episode.success and not episode.failures:
                break
        table = Table(title="procedures the agent holds for deploy_service")
        for column in ("procedure", "support", "uses ✓/✗", "status"):
            table.add_column(column)
        for p in mem.procedures(user_id="demo-agent"):
            table.add_row(p.text, str(p.support), f"{p.successes}/{p.failures}", p.status.value)
        console.print(table)


def show_experiment(
    embedder: Embedder, episodes: int, window: int, held_out: int, seeds: Sequence[int]
) -> dict[str, Any]:
    console.rule("[bold cyan]3. the measurement: one policy, five memory settings, same tasks")
    total = episodes * len(CONDITIONS) * len(seeds)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console
    ) as progress:
        bar = progress.add_task("training episodes", total=total)
        results = run_experiment(
            seeds=seeds,
            episodes=episodes,
            window=window,
            held_out=held_out,
            embedder=embedder,
            on_episode=lambda key, i: progress.advance(bar),
        )
    table = Table(title="success rate per window of training episodes, then held-out")
    for i, header in enumerate(HEADERS):
        table.add_column(header, justify="left" if i == 0 else "right", no_wrap=i == 0)
    for row in table_rows(results):
        table.add_row(row[0], *(f"{v:.0%}" for v in row[1:]))
    console.print(table)
    families = Table(title="held-out success by family")
    for i, header in enumerate(["family (hidden rules)", *CONDITIONS.values()]):
        families.add_column(header, justify="left" if i == 0 else "right")
    for row in family_rows(results):
        families.add_row(row[0], *(f"{v:.0%}" for v in row[1:]))
    console.print(families)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=48, help="training episodes")
    parser.add_argument("--window", type=int, default=8, help="episodes per window")
    parser.add_argument("--held-out", type=int, default=24, help="held-out task instances")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args(argv)
    started = time.perf_counter()
    console.print(
        Panel.fit(
            "agentmem self-evolving agent: experience memory on ToolWorld, offline, no LLM",
            style="bold",
        )
    )
    show_world()
    embedder = SentenceTransformerEmbedder.minilm()  # loaded once, shared by every memory
    with tempfile.TemporaryDirectory(prefix="agentmem-self-evolving-") as tmp:
        show_one_family(Path(tmp) / "demo", embedder)
    results = show_experiment(embedder, args.episodes, args.window, args.held_out, args.seeds)
    held = results["held_out_success"]
    console.print(
        f"held-out success: procedures {held['procedures']:.0%} "
        f"(+ utility {held['utility']:.0%}), raw trajectories {held['raw']:.0%} "
        f"(+ utility {held['raw_utility']:.0%}), memory off {held['off']:.0%}"
    )
    console.print(f"[green]self-evolving demo finished in {time.perf_counter() - started:.1f} s[/]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
