"""ToolWorld, the benchmark's environment: deterministic, and its hidden rules hold."""

from __future__ import annotations

import random

import pytest

from agentmem import PlannedCall
from benchmarks.toolworld import (
    FAMILIES,
    NoMemoryAgent,
    fixes,
    make_task,
    play,
    run_episode,
    task_stream,
)

# The call sequence that satisfies each family's hidden rules, from a task's parameters.
SOLUTIONS = {
    "read_report": lambda p: [("open", {"path": p["path"]}), ("read", {"path": p["path"]})],
    "ship_parcel": lambda p: [("ship", {"city": p["city"], "weight": p["weight"] * 1000})],
    "copy_file": lambda p: [("copy", [p["dst"], p["src"], p["mode"]])],
    "deploy_service": lambda p: [
        ("build", {"service": p["service"]}),
        ("test", {"service": p["service"]}),
        ("deploy", {"service": p["service"], "version": p["version"]}),
    ],
    "pay_invoice": lambda p: [
        ("login", {}),
        ("pay", {"invoice": p["invoice"], "amount": round(p["amount"] * 100)}),
    ],
    "book_room": lambda p: [("book", {"room": p["room"], "duration": p["duration"] * 60})],
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_documented_call_fails_and_the_hidden_rules_succeed(family: str) -> None:
    task = make_task(family, random.Random(4))
    documented = run_episode(task, [task.goal_call()], random.Random(0), max_failures=1)
    assert not documented.success and documented.steps[0].failed
    assert documented.steps[0].error and documented.steps[0].error.startswith("E_")
    plan = [PlannedCall(action=a, args=args) for a, args in SOLUTIONS[family](task.params)]
    solved = run_episode(task, plan, random.Random(0))
    assert solved.success and solved.failures == 0 and solved.reward == 1.0


def test_episodes_and_streams_are_deterministic() -> None:
    tasks = task_stream(12, seed=3)
    assert [t.text for t in tasks] == [t.text for t in task_stream(12, seed=3)]
    assert {t.family for t in tasks} == set(FAMILIES)  # every family in each round of six
    runs = [[play(NoMemoryAgent(), t, random.Random(9)).steps for t in tasks] for _ in range(2)]
    assert runs[0] == runs[1]


def test_held_out_instances_never_appear_in_training() -> None:
    train = task_stream(72, seed=0)
    held = task_stream(36, seed=10_000, exclude={t.text for t in train})
    assert not {t.text for t in train} & {t.text for t in held}
    assert len({t.text for t in held}) == 36
    with pytest.raises(ValueError, match="no unseen instance"):
        task_stream(200, seed=0, families=["book_room"])  # 8 rooms x 4 durations


def test_explorer_tries_each_kind_of_fix() -> None:
    task = make_task("pay_invoice", random.Random(1))
    options = {(o.action, str(o.args)) for o in fixes(task, task.goal_call(), done=set())}
    amount = task.params["amount"]
    assert ("login", "{}") in options  # another tool first
    assert any(a == "pay" and str(round(amount * 100)) in args for a, args in options)  # a unit
    copy = make_task("copy_file", random.Random(1))
    reorders = [o for o in fixes(copy, copy.goal_call(), done=set()) if o.action == "copy"]
    assert len(reorders) == 5  # every other order of three positional arguments
