"""TextWorldExpress games played by agents that learn across episodes through agentmem.

TextWorldExpress (Jansen & Côté, 2022; ``pip install textworld-express``, needs Java 17) is a
fast, public simulator of text games. Each game hands the agent an observation, the list of
valid actions, and a score in [0, 1] that rises as sub-goals are reached; the task succeeds at
score 1. The games played here are ``twc`` (TextWorld Commonsense: put each item where it
belongs, the dirty cup in the dishwasher), ``cookingworld`` (read the cookbook, gather and
prepare the ingredients, prepare and eat the meal) and ``coin`` (find the coin across rooms
with doors, take it). Every game has train, dev and test folds of generated games; in ``twc``
the test fold holds *objects never seen in training* (a black pillow where training had a gray
one), so only knowledge that generalises helps there.

**The policy.** Every agent chooses, at each move, one of the valid actions. They share one
explorer (a uniformly random valid action not yet taken in this episode; a random valid action
once all have been taken) and differ only in what memory brings:

- :class:`NoMemoryAgent` explores, nothing else;
- :class:`TrajectoryAgent` (raw trajectories, ``distil`` off) recalls, for every entity it
  sees, the most similar past experiences (``Memory.recall_experience``); from the best
  successful one it takes the commands that earned reward (a fact such as "put the gray pillow
  in the bed" +0.25), puts the current entity where the past one was, and pursues those
  commands as goals, exploring until each becomes a valid action;
- :class:`ProcedureAgent` does the same and also plans each goal with the procedures agentmem
  distilled from earlier episodes (``plan_call``: "take the item before putting it", "open the
  container before putting something in it"), reporting afterwards which procedures helped
  (``used_procedures``);
- :class:`UtilityAgent` is a :class:`ProcedureAgent` that also passes each goal's outcome to
  ``Memory.feedback`` for the experience and the procedures that shaped it, so their learned
  utility re-ranks the next recall.

**What is learned, and from what.** Only rewards: after an episode the agent records, for each
entity that a rewarded command acted on, one experience (the task is the entity's name, the
steps are the episode's moves from the first that mentions it to its last rewarded one, the
rewarded commands go in the metadata). Goal commands are checked against the valid actions
before they are played: a goal that is not valid yet is recorded as a failed step
("not a valid action here") without spending a move, the explorer plays one move, and the goal
is checked again. agentmem's distillation turns "``put`` failed, ``open wardrobe``, ``put``
worked" into the precondition "``open`` the target before ``put in``". The game's gold path is
never read by any agent, in training or evaluation.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from agentmem import (
    Memory,
    Outcome,
    PlannedCall,
    Procedure,
    ProcedureStatus,
    ProcedureType,
    Step,
    plan_call,
)
from agentmem.errors import BackendUnavailable

PREPOSITIONS = ("in", "on", "to", "with", "from", "into")
"""Words that split a command into an object and a target ("put cup in dishwasher")."""
NOT_VALID = "not a valid action here"
TASK_FAILED = "the game ended in failure"
MAX_OBSERVATION = 300
"""Characters of each observation kept in a recorded step."""
MAX_RECORDED_STEPS = 150
PATIENCE = 5
"""Exploration moves an agent spends on one goal before it gives the goal up."""
SAME_ENTITY = 0.9
"""Similarity at or above which a past entity counts as the one in view: only then are the
commands that lost score on it avoided (a scarf's wrong places say nothing of an umbrella's)."""
SKILLS = 3
"""Best-supported skills (sequence procedures) whose actions guide a procedure agent's
exploration."""
SKILL_BIAS = 0.75
"""How often such an agent explores with a skill's action (when one is valid and not yet
played this episode) rather than any valid action."""


@dataclass(frozen=True)
class Game:
    """One TextWorldExpress game and the setting it is played in."""

    name: str
    params: str
    max_moves: int
    description: str


GAMES: dict[str, Game] = {
    g.name: g
    for g in (
        Game(
            "twc",
            "numLocations=1,numItemsToPutAway=3,includeDoors=0",
            50,
            "1 room, 3 items to put away",
        ),
        Game(
            "cookingworld",
            "numLocations=1,numIngredients=2,numDistractorItems=2,includeDoors=0,"
            "limitInventorySize=0",
            40,
            "1 room, 2 ingredients, 2 distractors",
        ),
        Game(
            "coin",
            "numLocations=6,numDistractorItems=0,includeDoors=1",
            40,
            "6 rooms with doors",
        ),
    )
}
"""The games and settings the benchmark plays (moves per episode in ``max_moves``)."""


# the environment -------------------------------------------------------------------------------


def textworld_missing() -> str | None:
    """Why TextWorldExpress cannot run here (None when it can): the package or Java missing."""
    try:
        import textworld_express  # noqa: F401
    except ImportError:
        return (
            "the package textworld-express is not installed: pip install 'agentmem[twx]' "
            "(or pip install textworld-express)"
        )
    if shutil.which("java") is None:
        return (
            "TextWorldExpress runs on Java 17 and no `java` is on PATH: install a JRE "
            "(e.g. apt-get install openjdk-17-jre-headless)"
        )
    return None


@contextmanager
def open_env(game: Game, *, step_limit: int = 1000) -> Iterator[Any]:
    """A TextWorldExpress environment loaded with ``game`` (its Java server stops on exit).
    Raises :class:`~agentmem.errors.BackendUnavailable` saying what to install when the
    package or Java is missing."""
    missing = textworld_missing()
    if missing is not None:
        raise BackendUnavailable(f"cannot play TextWorldExpress: {missing}")
    from textworld_express import TextWorldExpressEnv

    env = TextWorldExpressEnv(envStepLimit=step_limit)
    try:
        env.load(game.name, game.params)
        yield env
    finally:
        env.close()


def fold_seeds(env: Any, fold: str) -> list[int]:
    """The game seeds of a fold (``train``, ``dev`` or ``test``)."""
    getter = {
        "train": env.getValidSeedsTrain,
        "dev": env.getValidSeedsDev,
        "test": env.getValidSeedsTest,
    }
    return [int(s) for s in getter[fold]()]


# commands ------------------------------------------------------------------------------------


def parse_command(command: str) -> tuple[str, dict[str, str]]:
    """A command as an action and arguments: ``"put dirty cup in dishwasher"`` ->
    ``("put in", {"obj": "dirty cup", "target": "dishwasher"})``, ``"open fridge"`` ->
    ``("open", {"obj": "fridge"})``, ``"inventory"`` -> ``("inventory", {})``."""
    words = command.split()
    if not words:
        raise ValueError("empty command")
    verb, rest = words[0], words[1:]
    for i, word in enumerate(rest):
        if word in PREPOSITIONS and 0 < i < len(rest) - 1:
            return f"{verb} {word}", {"obj": " ".join(rest[:i]), "target": " ".join(rest[i + 1 :])}
    return verb, ({"obj": " ".join(rest)} if rest else {})


def render_command(action: str, args: Mapping[str, Any]) -> str:
    """The command text of a parsed action (the inverse of :func:`parse_command`)."""
    verb, _, prep = action.partition(" ")
    parts = [verb]
    if args.get("obj"):
        parts.append(str(args["obj"]))
    if prep:
        parts += [prep, str(args.get("target", ""))]
    return " ".join(parts)


def entities(commands: Sequence[str]) -> list[str]:
    """The entity names the commands act on (objects and targets), in order of appearance."""
    seen: dict[str, None] = {}
    for command in commands:
        _, args = parse_command(command)
        for value in args.values():
            seen.setdefault(value, None)
    return list(seen)


# episodes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    """One decision: a move played in the game, or a goal checked against the valid actions
    and found not valid (``moved`` False: no move spent)."""

    command: str
    observation: str
    reward: float = 0.0
    moved: bool = True
    failed_game: bool = False

    def step(self) -> Step:
        """The turn as an agentmem trajectory step."""
        action, args = parse_command(self.command)
        obs = " ".join(self.observation.split())[:MAX_OBSERVATION]
        if self.reward:
            obs = f"{obs} [reward {self.reward:+.2f}]"
        if not self.moved:
            return Step(action=action, args=args, ok=False, error=NOT_VALID)
        if self.failed_game:
            return Step(action=action, args=args, observation=obs, ok=False, error=TASK_FAILED)
        return Step(action=action, args=args, observation=obs, ok=True)


@dataclass
class Episode:
    """One game played: its turns, final score, and how it ended."""

    game: str
    seed: int
    fold: str
    task: str
    turns: list[Turn] = field(default_factory=list)
    score: float = 0.0
    success: bool = False
    failure: bool = False

    @property
    def moves(self) -> int:
        """Moves played (goal checks that spent no move not counted)."""
        return sum(t.moved for t in self.turns)


class Agent(Protocol):
    """What :func:`play` needs from an agent."""

    name: str

    def begin(self, game: str, task: str, observation: str, valid: Sequence[str]) -> None:
        """A new episode starts."""

    def choose(self, observation: str, valid: Sequence[str], episode: Episode) -> str:
        """The next command (a valid action, or a goal to check: see :class:`Turn`)."""

    def observe(self, turn: Turn, valid: Sequence[str]) -> None:
        """What the last command did."""

    def learn(self, episode: Episode) -> None:
        """The episode is over (training only)."""


def play(
    env: Any,
    agent: Agent,
    game: Game,
    seed: int,
    fold: str,
    *,
    learn: bool = True,
    max_moves: int | None = None,
) -> Episode:
    """One episode of ``game`` (seed ``seed`` of ``fold``): the agent chooses until the game
    ends or ``max_moves`` moves are spent; the agent learns from it when ``learn``."""
    limit = max_moves if max_moves is not None else game.max_moves
    observation, infos = env.reset(seed=seed, gameFold=fold, generateGoldPath=False)
    valid = list(infos["validActions"])
    episode = Episode(game=game.name, seed=seed, fold=fold, task=str(infos["taskDescription"]))
    agent.begin(game.name, episode.task, observation, valid)
    checks = 0
    while episode.moves < limit and checks < 4 * limit:
        command = agent.choose(observation, valid, episode)
        if command not in valid:
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
        if episode.success or episode.failure:
            break
    if learn:
        agent.learn(episode)
    return episode


# the shared explorer -------------------------------------------------------------------------


class Explorer:
    """A uniformly random valid action not yet played in this episode (any valid action once
    all have been played). Every agent explores with it."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.played: set[str] = set()

    def reset(self) -> None:
        """Forget the episode's moves."""
        self.played = set()

    def choose(self, valid: Sequence[str]) -> str:
        """The next exploratory move."""
        fresh = [a for a in valid if a not in self.played]
        command = self.rng.choice(fresh or list(valid))
        self.played.add(command)
        return command


class NoMemoryAgent:
    """Explores; learns nothing between episodes."""

    name = "memory off"

    def __init__(self, rng: random.Random) -> None:
        self.explorer = Explorer(rng)

    def begin(self, game: str, task: str, observation: str, valid: Sequence[str]) -> None:
        """Forget the last episode's moves."""
        self.explorer.reset()

    def choose(self, observation: str, valid: Sequence[str], episode: Episode) -> str:
        """An exploratory move."""
        return self.explorer.choose(valid)

    def observe(self, turn: Turn, valid: Sequence[str]) -> None:
        """Nothing to track."""
        if turn.moved:
            self.explorer.played.add(turn.command)

    def learn(self, episode: Episode) -> None:
        """Nothing to remember."""


# agents with memory --------------------------------------------------------------------------


@dataclass
class Goal:
    """A command memory suggests for an entity, with the plan that reaches it."""

    entity: str
    command: str
    source: str
    """The experience the fact came from."""
    score: float
    plan: list[PlannedCall] = field(default_factory=list)
    failures: int = 0
    done: bool = False
    reward: float = 0.0
    checked_first: bool | None = None
    """Whether the goal was valid at its first check (after its plan's preconditions)."""


def rewarded_commands(
    turns: Sequence[Turn], entity: str, *, sign: int = 1
) -> list[tuple[str, float]]:
    """The distinct commands of ``turns`` that acted on ``entity`` as their object and earned
    reward (``sign`` -1: lost score), in the order first played."""
    out: dict[str, float] = {}
    for turn in turns:
        if turn.moved and turn.reward * sign > 0:
            _, args = parse_command(turn.command)
            if args.get("obj") == entity:
                out.setdefault(turn.command, turn.reward)
    return list(out.items())


def substitute(command: str, old: str, new: str) -> str:
    """``command`` acting on ``new`` where it acted on ``old`` (its object slot only)."""
    action, args = parse_command(command)
    if args.get("obj") != old:
        return command
    return render_command(action, {**args, "obj": new})


class TrajectoryAgent:
    """Recalls raw past experiences for each entity it sees and pursues the rewarded commands
    of the best successful one, put on the current entity (see the module docstring). Use it
    with a Memory whose ``experience.distil`` is off."""

    name = "raw trajectories"
    uses_procedures = False

    def __init__(
        self,
        mem: Memory,
        rng: random.Random,
        *,
        min_similarity: float = 0.4,
        k: int = 8,
        patience: int = PATIENCE,
        **scope: Any,
    ) -> None:
        self.mem = mem
        self.scope = scope
        self.explorer = Explorer(rng)
        self.min_similarity = min_similarity
        self.k = k
        self.patience = patience
        self.game = ""
        self.goals: list[Goal] = []
        self.queue: list[PlannedCall] = []
        self.current: Goal | None = None
        self.recalled: set[str] = set()
        self.text = ""
        self.procedures: list[Procedure] = []
        self.explore_next = False
        self.avoid: set[str] = set()
        """Commands that lost score (on similar entities before, or in this episode):
        exploration avoids them."""
        self.skills: set[str] = set()
        """Actions the game's learned skills use: exploration prefers them."""

    # episode lifecycle

    def begin(self, game: str, task: str, observation: str, valid: Sequence[str]) -> None:
        """Reset the episode state and recall what memory knows about what is in view."""
        self.game = game
        self.explorer.reset()
        self.goals, self.queue, self.current = [], [], None
        self.recalled = set()
        self.explore_next = False
        self.avoid = set()
        self.text = observation.lower()
        self.procedures = self._procedures()
        self.skills = self._skills()
        self._recall(valid)

    def _procedures(self) -> list[Procedure]:
        return []

    def _skills(self) -> set[str]:
        return set()

    def family(self) -> str:
        """The task family every experience of this game is filed under."""
        return f"textworld-{self.game}"

    def _recall(self, valid: Sequence[str]) -> None:
        """Recall facts for each entity that a valid command acts on (as its object), once per
        episode; an entity's goals are kept when one of them is a valid action now (so a
        wardrobe that resembles a wastepaper basket does not become "take wardrobe")."""
        for entity in dict.fromkeys(parse_command(c)[1].get("obj", "") for c in valid):
            if not entity or entity in self.recalled:
                continue
            self.recalled.add(entity)
            facts = self._facts(entity)
            if not any(command in valid for command, _, _ in facts):
                continue
            for command, source, score in facts:
                if any(g.command == command for g in self.goals):
                    continue
                self.goals.append(Goal(entity, command, source, score))

    def finished(self) -> set[str]:
        """Entities whose goals (two or more: a fact such as "take it, then put it in the
        dishwasher") are all reached with reward: exploration leaves them alone. An entity
        with one goal reached ("take it") is not finished: what comes next is still unknown."""
        goals: dict[str, list[Goal]] = {}
        for g in self.goals:
            goals.setdefault(g.entity, []).append(g)
        return {
            e
            for e, gs in goals.items()
            if len(gs) >= 2 and all(g.done and g.reward > 0 for g in gs)
        }

    def explore(self, valid: Sequence[str]) -> str:
        """An exploratory move that neither touches a finished entity nor repeats what lost
        score on a similar entity before (while another move is left)."""
        done = self.finished()
        keep = [
            c for c in valid if c not in self.avoid and not done & set(parse_command(c)[1].values())
        ] or list(valid)
        preferred = [c for c in keep if parse_command(c)[0] in self.skills]
        fresh = [c for c in preferred if c not in self.explorer.played]
        if fresh and self.explorer.rng.random() < SKILL_BIAS:
            return self.explorer.choose(fresh)
        return self.explorer.choose(keep)

    def _facts(self, entity: str) -> list[tuple[str, str, float]]:
        """Goal commands for ``entity``, voted by the successful similar experiences (at or
        above ``min_similarity``) whose rewarded commands, put on ``entity``, name targets
        that exist in this game: per action, the command with the highest summed recall
        score, as (command, the best experience behind it, its score), in the order the
        experiences did them."""
        recall = self.mem.recall_experience(
            entity, k=self.k, task_family=self.family(), **self.scope
        )
        votes: dict[str, float] = {}
        source: dict[str, tuple[str, float]] = {}
        order: dict[str, int] = {}
        for match in recall.experiences:
            past = match.experience
            if not past.succeeded or match.similarity < self.min_similarity:
                continue
            meta = past.record.metadata
            old = str(meta.get("entity", past.task))
            if match.similarity >= SAME_ENTITY:  # what lost score on this very entity
                self.avoid.update(
                    substitute(str(bad), old, entity) for bad in meta.get("penalised", [])
                )
            for i, item in enumerate(meta.get("rewarded", [])):
                command = substitute(str(item["command"]), old, entity)
                _, args = parse_command(command)
                target = args.get("target")
                if target is not None and target.lower() not in self.text:
                    continue
                votes[command] = votes.get(command, 0.0) + match.score
                order.setdefault(command, i)
                if command not in source or source[command][1] < match.score:
                    source[command] = (past.id, match.score)
        best: dict[str, str] = {}
        for command, vote in votes.items():
            action = parse_command(command)[0]
            if action not in best or votes[best[action]] < vote:
                best[action] = command
        chosen = sorted(best.values(), key=lambda c: order[c])
        return [(c, source[c][0], votes[c]) for c in chosen]

    def choose(self, observation: str, valid: Sequence[str], episode: Episode) -> str:
        """The next planned call of the current goal when it is valid (or a goal to check),
        else an exploratory move (one after each failed check)."""
        if self.explore_next:
            self.explore_next = False
            return self.explore(valid)
        while True:
            if self.current is None and not self._next_goal(valid):
                return self.explore(valid)
            if self.queue:
                command = render_command(self.queue[0].action, self.queue[0].args)
                if command in valid or len(self.queue) == 1:
                    return command
                self.queue.pop(0)  # a precondition that does not apply here (open a bed)
                continue
            return self.explore(valid)

    def _next_goal(self, valid: Sequence[str]) -> bool:
        """Pick the next goal: the first open one that is a valid action now, else the first
        open one (in the order memory suggested them)."""
        open_goals = [g for g in self.goals if not g.done and g.failures <= self.patience]
        if not open_goals:
            return False
        ready = [g for g in open_goals if g.command in valid]
        self.current = (ready or open_goals)[0]
        action, args = parse_command(self.current.command)
        self.current.plan = self._plan(action, args)
        self.queue = list(self.current.plan)
        return True

    def _plan(self, action: str, args: dict[str, str]) -> list[PlannedCall]:
        return [PlannedCall(action=action, args=args)]

    def observe(self, turn: Turn, valid: Sequence[str]) -> None:
        """Advance the plan, count a goal's failed checks, recall new entities."""
        if turn.moved:
            self.explorer.played.add(turn.command)
            self.text += " " + turn.observation.lower()
            if turn.reward < 0:
                self.avoid.add(turn.command)
        goal = self.current
        if goal is not None and self.queue:
            head = render_command(self.queue[0].action, self.queue[0].args)
            if turn.command == head:
                if turn.moved:
                    self.queue.pop(0)
                    if not self.queue:  # the goal itself was played
                        goal.done = True
                        goal.reward = turn.reward
                        if goal.checked_first is None:
                            goal.checked_first = True
                        self.current = None
                else:
                    goal.failures += 1
                    self.explore_next = True
                    if goal.checked_first is None:
                        goal.checked_first = False
                    if goal.failures > self.patience:
                        self.current, self.queue = None, []
        # A goal already reached by exploration (the explorer played it) is done.
        for g in self.goals:
            if not g.done and turn.moved and turn.command == g.command:
                g.done, g.reward = True, turn.reward
                if g is self.current:
                    self.current, self.queue = None, []
        if turn.moved:
            self._recall(valid)

    # learning

    def learn(self, episode: Episode) -> None:
        """Record one experience per entity that a rewarded command acted on (and per goal
        pursued that earned nothing, as a failure)."""
        rewarded = {
            parse_command(t.command)[1].get("obj", "") for t in episode.turns if t.reward
        } - {""}
        pursued = {g.entity for g in self.goals if g.failures or g.done}
        for entity in sorted(rewarded | pursued):
            facts = rewarded_commands(episode.turns, entity)
            steps = self._slice(episode.turns, entity, facts)
            if not steps:
                continue
            success = bool(facts) and not any(
                t.failed_game and entity in t.command for t in episode.turns
            )
            reward = min(1.0, sum(r for _, r in facts)) if success else -0.5
            self.mem.record_experience(
                entity,
                [t.step() for t in steps],
                Outcome.SUCCESS if success else Outcome.FAILURE,
                reward=reward,
                metadata={
                    "task_family": self.family(),
                    "entity": entity,
                    "game_seed": episode.seed,
                    "rewarded": [{"command": c, "reward": r} for c, r in facts],
                    "penalised": [
                        c
                        for c, _ in rewarded_commands(episode.turns, entity, sign=-1)
                        if c not in dict(facts)
                    ],
                },
                used_procedures=self._verdicts(entity) or None,
                **self.scope,
            )
        self._feedback(episode)

    @staticmethod
    def _slice(
        turns: Sequence[Turn], entity: str, facts: Sequence[tuple[str, float]]
    ) -> list[Turn]:
        """The turns of ``entity``'s sub-task: from the first that acts on it to its last
        rewarded move, keeping the turns that act on the entity or on a target of its goals
        (so "open wardrobe" stays with "put shirt in wardrobe", and unrelated exploration does
        not); moves of a rewarded action with other arguments (putting it somewhere wrong)
        are dropped, they are exploration rather than the sub-task."""
        goal_args = {
            (a, tuple(sorted(g.items()))) for a, g in map(parse_command, (c for c, _ in facts))
        }
        involved = {entity} | {v for _, g in goal_args for _, v in g}
        actions = {a for a, _ in goal_args}

        def keep(turn: Turn) -> bool:
            action, args = parse_command(turn.command)
            if not involved & set(args.values()):
                return False
            if action in actions and turn.moved and turn.reward <= 0:
                return (action, tuple(sorted(args.items()))) in goal_args
            return True

        mentions = [
            i for i, t in enumerate(turns) if entity in parse_command(t.command)[1].values()
        ]
        if not mentions:
            return []
        last = mentions[-1]
        if facts:
            wanted = {c for c, _ in facts}
            last = max(i for i, t in enumerate(turns) if t.command in wanted and t.moved)
        steps = [t for t in turns[mentions[0] : last + 1] if keep(t)]
        return steps[-MAX_RECORDED_STEPS:]

    def _verdicts(self, entity: str) -> dict[str, bool]:
        return {}

    def _feedback(self, episode: Episode) -> None:
        return None


class ProcedureAgent(TrajectoryAgent):
    """A :class:`TrajectoryAgent` that plans each goal with the procedures distilled for the
    game (``plan_call``) and reports which of them helped."""

    name = "procedures"
    uses_procedures = True

    def _procedures(self) -> list[Procedure]:
        """The game's active procedures (demoted and retired ones are not followed)."""
        return [
            p
            for p in self.mem.procedures(task_family=self.family(), limit=200, **self.scope)
            if p.status is ProcedureStatus.ACTIVE
        ]

    def _plan(self, action: str, args: dict[str, str]) -> list[PlannedCall]:
        return plan_call(self.procedures, action, args)

    def _skills(self) -> set[str]:
        """The actions of the game's best-supported skills (``sequence`` procedures, at most
        :data:`SKILLS`), and those preconditions require: exploration prefers them."""
        sequences = [p for p in self.procedures if p.type is ProcedureType.SEQUENCE]
        sequences.sort(key=lambda p: -p.support)
        actions = {a for p in sequences[:SKILLS] for a in p.spec.get("actions", [])}
        actions |= {
            str(p.spec.get("requires"))
            for p in self.procedures
            if p.type is ProcedureType.PRECONDITION
        }
        return actions

    def _verdicts(self, entity: str) -> dict[str, bool]:
        """Each procedure followed for ``entity``'s goals helped when the goal was valid at its
        first check after the plan (its precondition call was played, or no call was needed)."""
        out: dict[str, bool] = {}
        for goal in self.goals:
            if goal.entity != entity or goal.checked_first is None:
                continue
            for call in goal.plan:
                for pid in call.procedures:
                    out[pid] = out.get(pid, True) and goal.checked_first
        return out


class UtilityAgent(ProcedureAgent):
    """A :class:`ProcedureAgent` that passes each pursued goal's outcome to ``Memory.feedback``
    for the experience the goal came from and the procedures that planned it (+1 when the goal
    was played and earned reward, -1 otherwise), so learned utility re-ranks the next recall."""

    name = "procedures + utility"

    def _feedback(self, episode: Episode) -> None:
        for goal in self.goals:
            if not goal.done and not goal.failures:
                continue  # never pursued: no evidence
            reward = 1.0 if goal.done and goal.reward > 0 else -1.0
            ids = [goal.source, *(p for c in goal.plan for p in c.procedures)]
            self.mem.feedback(list(dict.fromkeys(ids)), reward, task=goal.entity, **self.scope)


# an LLM policy over the same memory ------------------------------------------------------------


Completion = Callable[..., Any]


def llm_prompt(
    task: str, observation: str, valid: Sequence[str], hint: str | None, notes: Sequence[str]
) -> list[dict[str, str]]:
    """The messages asking a model for the next command: the task, what memory recalls (goals
    learned from rewards, procedures), the observation and the valid actions."""
    memory = "\n".join(f"- {n}" for n in notes) or "- (nothing yet)"
    suggestion = f"\nMemory suggests: {hint}" if hint else ""
    return [
        {
            "role": "system",
            "content": "You play a text game. Answer with exactly one of the valid actions, "
            "nothing else.",
        },
        {
            "role": "user",
            "content": f"Task: {task}\nWhat memory recalls:\n{memory}{suggestion}\n\n"
            f"Observation: {observation}\nValid actions: {', '.join(valid)}\nAction:",
        },
    ]


class LLMAgent:
    """An LLM chooses each move through litellm, prompted with what the memory agent it wraps
    recalls (its goals and procedures) and its suggestion; an answer that is not a valid action
    falls back to the memory agent's own choice. Learning is the wrapped agent's."""

    def __init__(
        self,
        inner: TrajectoryAgent,
        model: str,
        *,
        completion: Completion | None = None,
        **llm_kwargs: Any,
    ) -> None:
        self.inner = inner
        self.model = model
        self.llm_kwargs = llm_kwargs
        self.completion = completion
        self.name = f"LLM ({model}) + {inner.name}"
        self.task = ""
        self.answers: list[str] = []
        self.fallbacks = 0

    def _complete(self, messages: list[dict[str, str]]) -> str:
        completion = self.completion
        if completion is None:
            import litellm

            litellm.suppress_debug_info = True
            completion = litellm.completion
        response = completion(model=self.model, messages=messages, **self.llm_kwargs)
        return str(response.choices[0].message.content or "").strip()

    def begin(self, game: str, task: str, observation: str, valid: Sequence[str]) -> None:
        """Start the wrapped agent's episode."""
        self.task = task
        self.inner.begin(game, task, observation, valid)

    def notes(self) -> list[str]:
        """What memory recalls, as lines for the prompt."""
        lines = [f"{g.command} (earned reward before)" for g in self.inner.goals if not g.done]
        lines += [p.text for p in self.inner.procedures[:5]]
        return lines

    def choose(self, observation: str, valid: Sequence[str], episode: Episode) -> str:
        """The model's choice when it names a valid action, else the memory agent's."""
        hint = self.inner.choose(observation, valid, episode)
        answer = self._complete(llm_prompt(self.task, observation, valid, hint, self.notes()))
        answer = answer.strip().strip(".").strip('"').strip()
        self.answers.append(answer)
        if answer in valid:
            return answer
        self.fallbacks += 1
        return hint

    def observe(self, turn: Turn, valid: Sequence[str]) -> None:
        """Pass the move to the wrapped agent."""
        self.inner.observe(turn, valid)

    def learn(self, episode: Episode) -> None:
        """The wrapped agent learns."""
        self.inner.learn(episode)


__all__ = [
    "GAMES",
    "NOT_VALID",
    "Agent",
    "Episode",
    "Explorer",
    "Game",
    "Goal",
    "LLMAgent",
    "NoMemoryAgent",
    "ProcedureAgent",
    "TrajectoryAgent",
    "Turn",
    "UtilityAgent",
    "entities",
    "fold_seeds",
    "llm_prompt",
    "open_env",
    "parse_command",
    "play",
    "render_command",
    "rewarded_commands",
    "substitute",
    "textworld_missing",
]
