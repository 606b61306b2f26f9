"""ToolWorld: a small deterministic tool-using world whose tasks hide rules, and the agents that
play it with and without experience memory.

Each task family has a goal tool and a few other tools, all documented by name and parameters.
Calling the goal tool as documented fails, because of rules the documentation leaves out, which
an agent can only learn from failures:

=================  =========================================================================
family             hidden rules
=================  =========================================================================
read_report        ``open`` the file before ``read`` (a precondition)
ship_parcel        ``ship``'s weight is in grams, the task gives kilograms (a unit)
copy_file          ``copy`` takes (dst, src, mode), not the documented (src, dst, mode) (an
                   argument order)
deploy_service     ``test`` before ``deploy``, and ``build`` before ``test`` (a chain)
pay_invoice        ``login`` before ``pay``, and ``pay``'s amount is in cents (two rules)
book_room          ``book``'s duration is in minutes, the task gives hours (a unit)
=================  =========================================================================

Errors are terse and the same for every wrong variant of a call ("E_VALUE: ship rejected"), so
an error says that a call failed, never how to fix it. Everything is deterministic given the
seed: the task instances, and the exploration of an agent that does not know what to do.

**The agents** share one policy. They plan the goal call, run it, and when a call fails they
explore: they try one untried fix at random (call another tool first, reorder the positional
arguments, swap two text arguments, or scale a number by 10, 60, 100 or 1000) and retry, until
the call works or they have failed ``max_failures`` times. They differ only in what they bring
to the plan:

- :class:`NoMemoryAgent` plans the documented goal call every time;
- :class:`ProcedureAgent` asks experience memory for the task's procedures and plans with
  :func:`agentmem.plan_call`; afterwards it records the attempt, reporting for each procedure it
  followed whether the call it shaped worked (see :func:`verdicts`);
- :class:`TrajectoryAgent` keeps raw trajectories only (``distil`` off): it replays the most
  similar past success, putting the current task's values where the past task's values were
  (case-based reuse without distillation).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentmem import Memory, Outcome, PlannedCall, ProcedureType, Step, plan_call

Args = dict[str, Any] | list[Any]
SCALE_FACTORS = (10, 60, 100, 1000)
MAX_FAILURES = 4
MAX_CALLS = 16


# the world ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    """A documented tool: its name and parameter names (positional or keyword)."""

    name: str
    params: tuple[str, ...] = ()
    positional: bool = False

    def documented(self, values: Mapping[str, Any]) -> Args | None:
        """The documented call's arguments from named values (None when one is missing)."""
        if any(p not in values for p in self.params):
            return None
        if self.positional:
            return [values[p] for p in self.params]
        return {p: values[p] for p in self.params}


@dataclass(frozen=True)
class Task:
    """One task instance: its words, its family, the goal tool and its documented values."""

    family: str
    text: str
    goal: str
    params: dict[str, Any]
    tools: tuple[Tool, ...]

    def tool(self, name: str) -> Tool:
        """The documented tool called ``name``."""
        return next(t for t in self.tools if t.name == name)

    def goal_call(self) -> PlannedCall:
        """The goal tool called as documented."""
        args = self.tool(self.goal).documented(self.params)
        assert args is not None
        return PlannedCall(action=self.goal, args=args)


@dataclass
class CallResult:
    """What a tool call returned."""

    ok: bool
    observation: str = ""
    error: str | None = None


Checker = Callable[["World", str, Args], CallResult]


@dataclass(frozen=True)
class Family:
    """A task family: how instances are worded and drawn, its tools, its hidden rules."""

    name: str
    goal: str
    tools: tuple[Tool, ...]
    rules: str
    make: Callable[[random.Random], tuple[str, dict[str, Any]]]
    check: Checker


class World:
    """One episode's world for one task: the state the tools change, and whether the task is
    done. ``call`` is the only way in."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.family = FAMILIES[task.family]
        self.state: set[str] = set()
        self.done = False

    def call(self, action: str, args: Args) -> CallResult:
        """Call a tool; unknown tools and malformed arguments fail like any other error."""
        if action not in {t.name for t in self.task.tools}:
            return CallResult(False, error=f"E_UNKNOWN: no tool {action!r}")
        result = self.family.check(self, action, args)
        if result.ok and action == self.task.goal:
            self.done = True
        return result


def _kw(args: Args, *names: str) -> tuple[Any, ...] | None:
    if not isinstance(args, dict) or set(args) != set(names):
        return None
    return tuple(args[n] for n in names)


def _ok(text: str = "ok") -> CallResult:
    return CallResult(True, observation=text)


def _err(text: str) -> CallResult:
    return CallResult(False, error=text)


def _check_read(w: World, action: str, args: Args) -> CallResult:
    path = w.task.params["path"]
    got = _kw(args, "path")
    if got is None or got[0] != path:
        return _err(f"E_ARGS: {action} rejected")
    if action == "open":
        w.state.add("open")
        return _ok(f"opened {path}")
    if action == "read":
        if "open" not in w.state:
            return _err("E_STATE: read rejected")
        return _ok(f"first line of {path}: 'Summary: all targets met'")
    return _ok(f"{action} {path}: ok")


def _check_ship(w: World, action: str, args: Args) -> CallResult:
    p = w.task.params
    if action == "insure":
        return _ok("insured") if _kw(args, "weight") is not None else _err("E_ARGS: insure")
    got = _kw(args, "city", "weight")
    if got is None or got[0] != p["city"]:
        return _err(f"E_ARGS: {action} rejected")
    if action == "quote":
        return _ok(f"quote for {p['city']}: 12.40")
    if got[1] != p["weight"] * 1000:  # hidden: grams
        return _err("E_VALUE: ship rejected")
    return _ok(f"parcel to {p['city']} shipped, tracking 7Q{p['weight']:03d}")


def _check_copy(w: World, action: str, args: Args) -> CallResult:
    p = w.task.params
    if action == "copy":
        if args == [p["dst"], p["src"], p["mode"]]:  # hidden: destination first
            return _ok(f"copied {p['src']} to {p['dst']}")
        return _err("E_IO: copy failed")
    return _ok(f"{action}: ok")


def _check_deploy(w: World, action: str, args: Args) -> CallResult:
    p = w.task.params
    if action == "deploy":
        got = _kw(args, "service", "version")
        if "tested" not in w.state:  # hidden: test first
            return _err("E_PRECONDITION: deploy refused")
        if got != (p["service"], p["version"]):
            return _err("E_VALUE: deploy refused")
        return _ok(f"{p['service']} {p['version']} deployed")
    got = _kw(args, "service")
    if got != (p["service"],):
        return _err(f"E_VALUE: {action} refused")
    if action == "build":
        w.state.add("built")
        return _ok(f"{p['service']} built")
    if action == "test":
        if "built" not in w.state:  # hidden: build before test
            return _err("E_PRECONDITION: test refused")
        w.state.add("tested")
        return _ok(f"{p['service']} tests passed")
    return _ok(f"{action} {p['service']}: ok")


def _check_pay(w: World, action: str, args: Args) -> CallResult:
    p = w.task.params
    if action == "login":
        w.state.add("session")
        return _ok("logged in")
    if action == "pay":
        got = _kw(args, "invoice", "amount")
        if "session" not in w.state:  # hidden: log in first
            return _err("E_AUTH: pay refused")
        if got is None or got[0] != p["invoice"] or got[1] != round(p["amount"] * 100):
            return _err("E_VALUE: pay refused")  # hidden: cents
        return _ok(f"{p['invoice']} paid")
    return _ok(f"{action}: ok")


def _check_book(w: World, action: str, args: Args) -> CallResult:
    p = w.task.params
    if action == "book":
        got = _kw(args, "room", "duration")
        if got is None or got[0] != p["room"] or got[1] != p["duration"] * 60:  # minutes
            return _err("E_VALUE: booking refused")
        return _ok(f"{p['room']} booked")
    return _ok(f"{action}: ok")


_FILES = (
    *("q3-sales", "outage-17", "hiring-2024", "roadmap", "audit-may", "churn", "latency"),
    *("budget-fy25", "release-notes", "onboarding", "pricing", "retro-12", "capacity"),
    *("vendors", "incidents-q2", "payroll-jan", "uptime", "forecast", "backlog", "security"),
    *("travel-policy", "inventory", "support-sla", "headcount", "migration", "errata"),
)
_CITIES = (
    *("Oslo", "Lima", "Nairobi", "Hanoi", "Quito", "Perth", "Tunis", "Riga", "Osaka"),
    *("Accra", "Bergen", "Cusco"),
)
_SERVICES = ("billing", "search", "auth", "gateway", "ledger", "mailer", "catalog", "reports")
_ROOMS = ("Atlas", "Orion", "Vega", "Lyra", "Draco", "Cygnus", "Pavo", "Hydra")


def _make_read(rng: random.Random) -> tuple[str, dict[str, Any]]:
    path = f"{rng.choice(_FILES)}.txt"
    return f"Open and read the text file {path} and report its first line", {"path": path}


def _make_ship(rng: random.Random) -> tuple[str, dict[str, Any]]:
    city, kg = rng.choice(_CITIES), rng.randint(1, 25)
    return f"Ship a parcel weighing {kg} kg to {city}", {"city": city, "weight": kg}


def _make_copy(rng: random.Random) -> tuple[str, dict[str, Any]]:
    name = rng.choice(_FILES)
    mode = rng.choice(("keep-times", "plain"))
    return (
        f"Copy the file {name}.txt to the backup file {name}.bak ({mode})",
        {"src": f"{name}.txt", "dst": f"{name}.bak", "mode": mode},
    )


def _make_deploy(rng: random.Random) -> tuple[str, dict[str, Any]]:
    service, version = rng.choice(_SERVICES), f"{rng.randint(1, 5)}.{rng.randint(0, 9)}"
    return (
        f"Deploy version {version} of the {service} service to production",
        {"service": service, "version": version},
    )


def _make_pay(rng: random.Random) -> tuple[str, dict[str, Any]]:
    invoice = f"INV-{rng.randint(100, 999)}"
    amount = round(rng.randint(500, 50_000) / 100, 2)
    return f"Pay invoice {invoice} for ${amount:.2f}", {"invoice": invoice, "amount": amount}


def _make_book(rng: random.Random) -> tuple[str, dict[str, Any]]:
    room, hours = rng.choice(_ROOMS), rng.randint(1, 4)
    return (
        f"Book the {room} meeting room for {hours} hour{'s' * (hours > 1)}",
        {"room": room, "duration": hours},
    )


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "read_report",
            "read",
            (Tool("read", ("path",)), Tool("open", ("path",)), Tool("stat", ("path",)),
             Tool("close", ("path",)), Tool("checksum", ("path",))),
            "open before read",
            _make_read,
            _check_read,
        ),
        Family(
            "ship_parcel",
            "ship",
            (Tool("ship", ("city", "weight")), Tool("quote", ("city", "weight")),
             Tool("insure", ("weight",))),
            "weight in grams (task: kg)",
            _make_ship,
            _check_ship,
        ),
        Family(
            "copy_file",
            "copy",
            (Tool("copy", ("src", "dst", "mode"), positional=True), Tool("sync"),
             Tool("mount")),
            "arguments in the order (dst, src, mode)",
            _make_copy,
            _check_copy,
        ),
        Family(
            "deploy_service",
            "deploy",
            (Tool("deploy", ("service", "version")), Tool("build", ("service",)),
             Tool("test", ("service",)), Tool("lint", ("service",)),
             Tool("notify", ("service",))),
            "build before test, test before deploy",
            _make_deploy,
            _check_deploy,
        ),
        Family(
            "pay_invoice",
            "pay",
            (Tool("pay", ("invoice", "amount")), Tool("login"), Tool("lookup", ("invoice",)),
             Tool("balance")),
            "login before pay; amount in cents (task: dollars)",
            _make_pay,
            _check_pay,
        ),
        Family(
            "book_room",
            "book",
            (Tool("book", ("room", "duration")), Tool("find", ("room",)),
             Tool("hold", ("room",))),
            "duration in minutes (task: hours)",
            _make_book,
            _check_book,
        ),
    )
}  # fmt: skip


def make_task(family: str, rng: random.Random) -> Task:
    """A new instance of a family, drawn with ``rng``."""
    f = FAMILIES[family]
    text, params = f.make(rng)
    return Task(family=family, text=text, goal=f.goal, params=params, tools=f.tools)


def task_stream(
    n: int, seed: int, *, exclude: set[str] | None = None, families: Sequence[str] | None = None
) -> list[Task]:
    """``n`` distinct task instances cycling through the families in shuffled rounds, none
    whose text is in ``exclude`` (so held-out instances are never trained on)."""
    rng = random.Random(seed)
    names = list(families or FAMILIES)
    seen = set(exclude or ())
    tasks: list[Task] = []
    while len(tasks) < n:
        order = names[:]
        rng.shuffle(order)
        for name in order:
            for _ in range(1000):
                task = make_task(name, rng)
                if task.text not in seen:
                    break
            else:
                raise ValueError(f"{name} has no unseen instance left; ask for fewer tasks")
            seen.add(task.text)
            tasks.append(task)
            if len(tasks) == n:
                break
    return tasks


# the shared policy: run a plan, explore on failure ---------------------------------------------


@dataclass
class Episode:
    """What one attempt did: the steps, whether the goal was reached, how many calls failed."""

    task: Task
    steps: list[Step] = field(default_factory=list)
    success: bool = False
    failures: int = 0

    @property
    def outcome(self) -> Outcome:
        """Success or failure."""
        return Outcome.SUCCESS if self.success else Outcome.FAILURE

    @property
    def reward(self) -> float:
        """1 for a clean success, 0.2 less per failed call (at least 0.2); -1 for a failure."""
        return max(0.2, 1.0 - 0.2 * self.failures) if self.success else -1.0


def _fill(tool: Tool, args: Args) -> Args | None:
    """A tool's documented arguments filled from a failing call's keyword arguments."""
    return tool.documented(args) if isinstance(args, dict) else tool.documented({})


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _scaled(value: float, factor: int) -> float | int:
    out = value * factor
    return round(out) if abs(out - round(out)) < 1e-6 else out


def fixes(task: Task, call: PlannedCall, done: set[str]) -> list[PlannedCall]:
    """Every fix an explorer may try for a failed call, as the call to make next: another tool
    first (one not called successfully yet), or the documented arguments reordered, swapped or
    with a number scaled."""
    options: list[PlannedCall] = []
    for tool in task.tools:
        if tool.name == call.action or tool.name in done:
            continue
        filled = _fill(tool, call.args)
        if filled is not None:
            options.append(PlannedCall(action=tool.name, args=filled))
    # Argument fixes start from the documented call (for the goal) or the call as planned.
    base = task.goal_call().args if call.action == task.goal else call.args
    variants: list[Args] = []
    if isinstance(base, list) and len(base) >= 2:
        variants += [list(p) for p in itertools.permutations(base) if list(p) != base]
    if isinstance(base, dict):
        texts = [k for k, v in base.items() if isinstance(v, str)]
        for a, b in itertools.combinations(texts, 2):
            variants.append({**base, a: base[b], b: base[a]})
    if isinstance(base, dict):
        for name, value in base.items():
            if _number(value):
                variants += [{**base, name: _scaled(value, f)} for f in SCALE_FACTORS]
    else:
        for i, value in enumerate(base):
            if _number(value):
                variants += [[*base[:i], _scaled(value, f), *base[i + 1 :]] for f in SCALE_FACTORS]
    options += [PlannedCall(action=call.action, args=v) for v in variants if v != call.args]
    return options


def _key(action: str, args: Args) -> str:
    return f"{action}:{args!r}"


def run_episode(
    task: Task,
    plan: Sequence[PlannedCall],
    rng: random.Random,
    *,
    max_failures: int = MAX_FAILURES,
    max_calls: int = MAX_CALLS,
) -> Episode:
    """Run a plan in a fresh world, exploring when a call fails (see the module docstring)."""
    world = World(task)
    episode = Episode(task)
    queue = list(plan)
    if not queue or queue[-1].action != task.goal:
        queue.append(task.goal_call())
    tried: dict[str, set[str]] = {}
    last_error: dict[str, str | None] = {}
    done: set[str] = set()
    while queue and len(episode.steps) < max_calls and not world.done:
        call = queue[0]
        result = world.call(call.action, call.args)
        episode.steps.append(
            Step(
                action=call.action,
                args=call.args,
                observation=result.observation,
                ok=result.ok,
                error=result.error,
            )
        )
        if result.ok:
            queue.pop(0)
            done.add(call.action)
            continue
        episode.failures += 1
        if episode.failures >= max_failures:
            break
        if last_error.get(call.action) != result.error:  # progress: new state, fresh options
            tried[call.action] = set()
            last_error[call.action] = result.error
        seen = tried.setdefault(call.action, set())
        seen.add(_key(call.action, call.args))
        options = [o for o in fixes(task, call, done) if _key(o.action, o.args) not in seen]
        if not options:
            break
        fix = rng.choice(options)
        seen.add(_key(fix.action, fix.args))
        # Retry with other arguments, or call another tool first and then retry this call.
        queue[0:1] = [fix] if fix.action == call.action else [fix, call]
    episode.success = world.done
    return episode


# agents ------------------------------------------------------------------------------------


class NoMemoryAgent:
    """Plans the documented goal call every time; learns nothing between episodes."""

    name = "memory off"

    def plan(self, task: Task) -> list[PlannedCall]:
        """The documented goal call."""
        return [task.goal_call()]

    def learn(self, episode: Episode, plan: Sequence[PlannedCall]) -> None:
        """Nothing to remember."""


class ProcedureAgent:
    """Plans with the procedures experience memory distilled for the task's family, and
    records each attempt, reporting which procedures helped."""

    name = "memory on (procedures)"

    def __init__(self, mem: Memory, **scope: Any) -> None:
        self.mem = mem
        self.scope = scope

    def plan(self, task: Task) -> list[PlannedCall]:
        """The goal call rewritten and preceded as the recalled procedures say."""
        recall = self.mem.recall_experience(task.text, k=3, **self.scope)
        goal = task.goal_call()
        procedures = [m.procedure for m in recall.procedures]
        return plan_call(procedures, goal.action, goal.args)

    def learn(self, episode: Episode, plan: Sequence[PlannedCall]) -> None:
        """Record the attempt; each procedure followed counts as having helped when the call
        it shaped (for a precondition: the call it must precede) went through as planned."""
        self.mem.record_experience(
            episode.task.text,
            episode.steps,
            episode.outcome,
            reward=episode.reward,
            metadata={"params": episode.task.params},
            used_procedures=verdicts(episode, plan, self.mem, self.scope),
            **self.scope,
        )


class UtilityAgent(ProcedureAgent):
    """A :class:`ProcedureAgent` that also passes each task's outcome back as feedback
    (``Memory.feedback`` with the episode's reward) to the procedures its plan followed, so
    their learned utility re-ranks the next recall (which of two contradicting procedures is
    followed, for one)."""

    name = "memory on (procedures + utility)"

    def learn(self, episode: Episode, plan: Sequence[PlannedCall]) -> None:
        """Record the attempt as :class:`ProcedureAgent` does, then credit the outcome."""
        super().learn(episode, plan)
        followed = list(dict.fromkeys(pid for c in plan for pid in c.procedures))
        if followed:
            self.mem.feedback(followed, episode.reward, task=episode.task.text, **self.scope)


def verdicts(
    episode: Episode, plan: Sequence[PlannedCall], mem: Memory, scope: Mapping[str, Any]
) -> dict[str, bool]:
    """Whether each procedure the plan followed helped: the call it governs (the call it
    rewrote, or the one a precondition precedes) worked with the planned arguments. A procedure
    whose call was never reached (an earlier call failed for good) is not reported."""
    worked = [(s.action, s.args) for s in episode.steps if not s.failed]
    attempted = {s.action for s in episode.steps}
    planned = {c.action: c.args for c in plan}
    ids = list(dict.fromkeys(pid for c in plan for pid in c.procedures))
    if not ids:
        return {}
    by_id = {p.id: p for p in mem.procedures(**scope, limit=1000)}
    result: dict[str, bool] = {}
    for pid in ids:
        proc = by_id.get(pid)
        if proc is None or proc.action is None or proc.action not in attempted:
            continue  # the call it governs was never reached: no evidence either way
        target = (proc.action, planned.get(proc.action))
        ok = target in worked
        if proc.type is ProcedureType.PRECONDITION:
            requires = str(proc.spec.get("requires"))
            ok = ok and any(a == requires for a, _ in worked)
        result[pid] = ok
    return result


class TrajectoryAgent:
    """Keeps raw trajectories only (use a Memory with ``distil`` off): replays the most similar
    past success with the current task's values put where the past task's values were."""

    name = "memory on (raw trajectories)"

    def __init__(self, mem: Memory, **scope: Any) -> None:
        self.mem = mem
        self.scope = scope
        self.replayed: str | None = None
        """The experience the last plan replayed (None: the documented call)."""

    def plan(self, task: Task) -> list[PlannedCall]:
        """The best-ranked past success of a similar task, replayed; else the documented call."""
        recall = self.mem.recall_experience(task.text, k=5, **self.scope)
        threshold = self.mem.settings.experience.family_threshold
        self.replayed = None
        for match in recall.experiences:
            past = match.experience
            if past.succeeded and match.similarity >= threshold:
                params = past.record.metadata.get("params") or {}
                mapping = {_value_key(v): task.params.get(k) for k, v in params.items()}
                self.replayed = past.id
                return [
                    PlannedCall(action=s.action, args=_substitute(s.args, mapping))
                    for s in past.steps
                    if not s.failed
                ]
        return [task.goal_call()]

    def learn(self, episode: Episode, plan: Sequence[PlannedCall]) -> None:
        """Record the attempt as a raw trajectory."""
        self.mem.record_experience(
            episode.task.text,
            episode.steps,
            episode.outcome,
            reward=episode.reward,
            metadata={"params": episode.task.params},
            **self.scope,
        )


class TrajectoryUtilityAgent(TrajectoryAgent):
    """A :class:`TrajectoryAgent` that passes each task's outcome back as feedback to the
    trajectory it replayed, so replays that keep failing sink in the next recall."""

    name = "memory on (raw trajectories + utility)"

    def learn(self, episode: Episode, plan: Sequence[PlannedCall]) -> None:
        """Record the attempt, then credit its reward to the replayed trajectory."""
        super().learn(episode, plan)
        if self.replayed is not None:
            self.mem.feedback([self.replayed], episode.reward, task=episode.task.text, **self.scope)


def _value_key(value: Any) -> str:
    return f"{type(value).__name__}:{value!r}"


def _substitute(args: Args, mapping: Mapping[str, Any]) -> Args:
    def swap(value: Any) -> Any:
        new = mapping.get(_value_key(value))
        return value if new is None else new

    if isinstance(args, dict):
        return {k: swap(v) for k, v in args.items()}
    return [swap(v) for v in args]


Agent = NoMemoryAgent | ProcedureAgent | TrajectoryAgent


def play(agent: Agent, task: Task, rng: random.Random, *, learn: bool = True) -> Episode:
    """One episode: the agent plans, the policy runs and explores, the agent learns."""
    plan = agent.plan(task)
    episode = run_episode(task, plan, rng)
    if learn:
        agent.learn(episode, plan)
    return episode


__all__ = [
    "FAMILIES",
    "CallResult",
    "Episode",
    "Family",
    "NoMemoryAgent",
    "ProcedureAgent",
    "Task",
    "Tool",
    "TrajectoryAgent",
    "TrajectoryUtilityAgent",
    "UtilityAgent",
    "World",
    "fixes",
    "make_task",
    "play",
    "run_episode",
    "task_stream",
    "verdicts",
]
