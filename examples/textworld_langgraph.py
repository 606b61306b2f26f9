"""A self-evolving text-game agent as a LangGraph graph: it plays TextWorldExpress games and
gets better across episodes through agentmem's experience memory.

Each episode is one run of a small graph: ``start`` resets the game and recalls what memory
knows about the entities in view, ``act`` chooses one valid action (or checks a goal that
memory suggested) and plays it, looping until the game ends or the moves run out, and ``learn``
records one experience per entity the rewards touched (``Memory.record_experience``), from
which agentmem distils procedures such as "open the container before putting something in
it". The agent is :class:`benchmarks.twx_world.ProcedureAgent` (LLM-free); the benchmark
``python -m benchmarks.self_evolving_twx`` measures the same loop at scale.

Needs ``pip install 'agentmem[twx]'`` and Java 17. Run: ``python examples/textworld_langgraph.py``
"""

from __future__ import annotations

import random
import sys
import tempfile
from pathlib import Path
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package

from agentmem import Memory, Settings
from benchmarks.twx_world import (
    GAMES,
    NOT_VALID,
    Agent,
    Episode,
    Game,
    NoMemoryAgent,
    ProcedureAgent,
    Turn,
    fold_seeds,
    open_env,
    textworld_missing,
)

console = Console()
GAME = GAMES["twc"]
TRAIN_GAMES, TEST_GAMES = 24, 8


class EpisodeState(TypedDict, total=False):
    """What flows between the nodes of one episode."""

    seed: int
    fold: str
    learn: bool
    observation: str
    valid: list[str]
    episode: Episode
    checks: int


def build_graph(env: Any, agent: Agent, game: Game) -> CompiledStateGraph[Any, Any, Any, Any]:
    """One episode as a graph: start -> act (loops) -> learn -> end."""

    def start(state: EpisodeState) -> EpisodeState:
        observation, infos = env.reset(seed=state["seed"], gameFold=state["fold"])
        valid = list(infos["validActions"])
        episode = Episode(game.name, state["seed"], state["fold"], str(infos["taskDescription"]))
        agent.begin(game.name, episode.task, observation, valid)
        return {"observation": observation, "valid": valid, "episode": episode, "checks": 0}

    def act(state: EpisodeState) -> EpisodeState:
        episode, valid = state["episode"], state["valid"]
        observation, checks = state["observation"], state["checks"]
        command = agent.choose(observation, valid, episode)
        if command not in valid:  # a goal memory suggested, not possible yet: no move spent
            turn = Turn(command, NOT_VALID, moved=False)
            checks += 1
        else:
            observation, reward, _, infos = env.step(command)
            valid = list(infos["validActions"])
            episode.score = float(infos["score"])
            episode.success = bool(infos["tasksuccess"])
            episode.failure = bool(infos["taskfailure"])
            turn = Turn(command, observation, float(reward), failed_game=episode.failure)
        episode.turns.append(turn)
        agent.observe(turn, valid)
        return {"observation": observation, "valid": valid, "checks": checks}

    def over(state: EpisodeState) -> str:
        episode = state["episode"]
        ended = episode.success or episode.failure
        if ended or episode.moves >= game.max_moves or state["checks"] >= 4 * game.max_moves:
            return "learn"
        return "act"

    def learn(state: EpisodeState) -> EpisodeState:
        if state["learn"]:
            agent.learn(state["episode"])
        return {}

    builder = StateGraph(EpisodeState)
    builder.add_node("start", start)
    builder.add_node("act", act)
    builder.add_node("learn", learn)
    builder.add_edge(START, "start")
    builder.add_edge("start", "act")
    builder.add_conditional_edges("act", over, {"act": "act", "learn": "learn"})
    builder.add_edge("learn", END)
    return builder.compile()


def play_episode(graph: Any, seed: int, fold: str, *, learn: bool) -> Episode:
    """Run the graph for one game."""
    state = graph.invoke(
        {"seed": seed, "fold": fold, "learn": learn}, config={"recursion_limit": 1000}
    )
    episode: Episode = state["episode"]
    return episode


def main() -> None:
    """Train a memory agent on train-fold games, then compare it with a memory-off agent on
    unseen test-fold games."""
    missing = textworld_missing()
    if missing is not None:
        console.print(f"[red]cannot run: {missing}[/red]")
        raise SystemExit(2)
    with tempfile.TemporaryDirectory() as tmp, open_env(GAME) as env:
        settings = Settings.load(home=Path(tmp) / "home", adapters="off")
        with Memory(settings=settings) as mem:
            train = fold_seeds(env, "train")[:TRAIN_GAMES]
            test = fold_seeds(env, "test")[:TEST_GAMES]
            agent = ProcedureAgent(mem, random.Random(0), user_id="textworld-player")
            graph = build_graph(env, agent, GAME)
            won = [play_episode(graph, s, "train", learn=True).success for s in train]
            half = len(won) // 2
            console.print(
                f"episodes played through LangGraph: {len(won)} on the train fold "
                f"(success {sum(won[:half])}/{half} in the first half, "
                f"{sum(won[half:])}/{len(won) - half} in the second)"
            )
            on = [play_episode(graph, s, "test", learn=False) for s in test]
            off_graph = build_graph(env, NoMemoryAgent(random.Random(0)), GAME)
            off = [play_episode(off_graph, s, "test", learn=False) for s in test]
            table = Table(title=f"{GAME.name}, {len(test)} unseen test-fold games")
            for column in ("memory", "success", "mean score", "mean moves"):
                table.add_column(column)
            for label, eps in (("procedures (read-only)", on), ("memory off", off)):
                n = len(eps)
                table.add_row(
                    label,
                    f"{sum(e.success for e in eps)}/{n}",
                    f"{sum(e.score for e in eps) / n:.2f}",
                    f"{sum(e.moves for e in eps) / n:.1f}",
                )
            console.print(table)
            procedures = mem.procedures(user_id="textworld-player", limit=5)
            console.print(f"procedures learned: {len(mem.procedures(user_id='textworld-player'))}")
            for p in procedures:
                console.print(f"  - {p.text}")
    console.print("textworld langgraph agent finished")


if __name__ == "__main__":
    main()
