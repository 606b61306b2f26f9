"""Experience memory without a store: steps, reflections by rules, lessons, plans, status."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from agentmem import InvalidExperience, MemoryKind, MemoryRecord, Outcome, Scope, Settings
from agentmem.errors import ValidationError
from agentmem.experience.distil import (
    counts_after_use,
    extract_lessons,
    failures_while_demoted_after,
    procedure_score,
    status_after,
    successful_sequence,
    winners,
)
from agentmem.experience.models import (
    PROCEDURE_KEY,
    Procedure,
    ProcedureStatus,
    ProcedureType,
    Step,
    parse_steps,
)
from agentmem.experience.plan import plan_call
from agentmem.experience.reflect import parse_reflection, rules_reflection

CONFIG = Settings.load().experience


def steps(*items: tuple[str, Any, bool] | tuple[str, Any, bool, str]) -> list[Step]:
    """(action, args, ok[, error]) tuples as steps; failed steps get an error."""
    out = []
    for item in items:
        action, args, ok = item[0], item[1], item[2]
        error = item[3] if len(item) > 3 else (None if ok else f"E: {action} failed")
        out.append(Step(action=action, args=args, ok=ok, error=error))
    return out


def procedure(
    ptype: ProcedureType,
    action: str | None,
    spec: dict[str, Any],
    *,
    family: str = "f",
    support: int = 1,
    successes: int = 0,
    failures: int = 0,
    status: str = "active",
) -> Procedure:
    meta: dict[str, Any] = {
        "task_family": family,
        "procedure_type": ptype.value,
        "status": status,
        "support": support,
        "successes": successes,
        "failures": failures,
        "partials": 0,
        PROCEDURE_KEY: {"spec": spec, "evidence": [], "contradicts": []},
    }
    if action is not None:
        meta["action"] = action
    record = MemoryRecord(
        scope=Scope(user_id="u"), kind=MemoryKind.PROCEDURAL, text="rule", metadata=meta
    )
    return Procedure.from_record(record)


# steps ---------------------------------------------------------------------------------------


def test_parse_steps_accepts_dicts_and_steps_and_truncates_long_observations() -> None:
    parsed = parse_steps(
        [{"action": " open ", "args": ["a"], "observation": "x" * 50}, Step(action="read")],
        max_steps=10,
        max_chars=20,
    )
    assert [s.action for s in parsed] == ["open", "read"]
    assert parsed[0].args == ["a"]
    assert len(parsed[0].observation) == 20 and parsed[0].observation.endswith("…")


def test_parse_steps_serialises_structured_observations() -> None:
    parsed = parse_steps([{"action": "get", "observation": {"rows": 3}}], max_steps=5, max_chars=99)
    assert parsed[0].observation == '{"rows": 3}'


NESTED: list[Any] = []
for _ in range(1000):  # past the interpreter's recursion limit
    NESTED = [NESTED]


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ([], "empty"),
        ("open then read", "list of steps"),
        ({"action": "open"}, "list of steps"),
        (["open"], "step 0 is a str"),
        ([{"observation": "no action"}], "step 0"),
        ([{"action": ""}], "action is empty"),
        ([{"action": "open", "colour": "red"}], "unknown keys"),
        ([{"action": "open", "args": "a.txt"}], "step 0"),
        ([{"action": "open", "ok": True, "error": "boom"}], "ok=True"),
        ([{"action": "x", "args": {"v": float("nan")}}], "JSON"),
        ([{"action": "x"}] * 6, "over the limit"),
        ([{"action": "copy", "args": {"a.txt", "b.txt"}}], "step 0: .*got a set, which has no"),
        ([{"action": "copy", "args": frozenset({"a"})}], "step 0: .*frozenset, which has no"),
        ([{"action": "x", "args": {"tree": NESTED}}], "step 0: .*args are nested more than 32"),
        ([{"action": "x", "observation": NESTED}], "step 0: .*observation is nested more than"),
    ],
)
def test_parse_steps_rejects_wrong_shapes_with_what_to_do(bad: Any, words: str) -> None:
    with pytest.raises(InvalidExperience, match=words):
        parse_steps(bad, max_steps=5, max_chars=100)


def test_outcome_parse() -> None:
    assert Outcome.parse(" Success ") is Outcome.SUCCESS
    assert Outcome.parse(Outcome.PARTIAL) is Outcome.PARTIAL
    for bad in ("won", None, True, 1):
        with pytest.raises(InvalidExperience, match="'success', 'failure', 'partial'"):
            Outcome.parse(bad)


def test_step_failed_is_ok_false_or_an_error() -> None:
    assert Step(action="a", ok=False).failed
    assert Step(action="a", error="boom").failed
    assert not Step(action="a").failed
    assert not Step(action="a", ok=True).failed


# reflection by rules -------------------------------------------------------------------------

READ_WITH_DISTRACTOR = steps(
    ("read", {"path": "a.txt"}, False, "E_STATE: not open"),
    ("stat", {"path": "a.txt"}, True),
    ("read", {"path": "a.txt"}, False, "E_STATE: not open"),
    ("open", {"path": "a.txt"}, True),
    ("read", {"path": "a.txt"}, True),
)


def test_rules_reflection_names_the_failing_steps_the_fix_and_the_sequence() -> None:
    r = rules_reflection("read a.txt", READ_WITH_DISTRACTOR, Outcome.SUCCESS, reward=0.6)
    assert r.source == "rules"
    assert r.summary.startswith("Succeeded in 5 steps after 2 failed steps: open → read")
    assert r.failed == [
        "step 1 read(path='a.txt') failed: E_STATE: not open",
        "step 3 read(path='a.txt') failed: E_STATE: not open",
    ]
    assert any("worked at step 5 after open" in lesson for lesson in r.lessons)
    assert r.successful_sequence == ["open", "read"]  # the distractor made no difference
    assert r.why is None


def test_rules_reflection_of_a_failure_gives_the_error_and_why() -> None:
    trail = steps(("pay", {"amount": 5}, False, "E_AUTH: refused"))
    r = rules_reflection("pay", trail, Outcome.FAILURE, feedback="log in first")
    assert "`pay` failed: E_AUTH: refused" in r.summary
    assert r.why == "log in first"
    assert r.worked == [] and r.successful_sequence == []


def test_parse_reflection_accepts_fenced_json_and_rejects_bad_answers() -> None:
    ok = parse_reflection('```json\n{"summary": "s", "lessons": ["l"]}\n```')
    assert ok.summary == "s" and ok.lessons == ["l"]
    for bad in ("", "not json", "[1, 2]", '{"worked": []}', '{"summary": ""}'):
        with pytest.raises(ValueError):
            parse_reflection(bad)


# lessons -------------------------------------------------------------------------------------


def kinds(lessons: list[Any]) -> list[tuple[str, str | None, dict[str, Any]]]:
    return [(lesson.type.value, lesson.action, lesson.spec) for lesson in lessons]


def test_precondition_is_credited_only_to_the_step_that_changed_things() -> None:
    lessons = extract_lessons(READ_WITH_DISTRACTOR, Outcome.SUCCESS)
    assert kinds(lessons) == [
        ("precondition", "read", {"requires": "open", "args": {"path": {"from": "path"}}}),
        ("sequence", None, {"actions": ["open", "read"]}),
    ]
    assert lessons[0].note == "E_STATE: not open"


def test_chain_of_preconditions_credits_each_direct_one() -> None:
    trail = steps(
        ("deploy", {"service": "api", "version": "2"}, False, "E_PRE: deploy"),
        ("test", {"service": "api"}, False, "E_PRE: test"),
        ("build", {"service": "api"}, True),
        ("test", {"service": "api"}, True),
        ("deploy", {"service": "api", "version": "2"}, True),
    )
    lessons = extract_lessons(trail, Outcome.SUCCESS)
    pre = [(x.action, x.spec["requires"]) for x in lessons if x.type is ProcedureType.PRECONDITION]
    assert pre == [("test", "build"), ("deploy", "test")]  # not "build before deploy"


def test_progress_between_failed_attempts_teaches_a_precondition() -> None:
    pay = {"invoice": "INV-1", "amount": 12.5}
    progress = steps(
        ("pay", pay, False, "E_AUTH: refused"),
        ("lookup", {"invoice": "INV-1"}, True),  # same error after it: no credit
        ("pay", pay, False, "E_AUTH: refused"),
        ("login", {}, True),
        ("pay", pay, False, "E_VALUE: refused"),  # never worked, but login changed the error
    )
    assert kinds(extract_lessons(progress, Outcome.FAILURE)) == [
        ("precondition", "pay", {"requires": "login", "args": {}}),
    ]
    changed_args = steps(
        ("pay", pay, False, "E_AUTH: refused"),
        ("login", {}, True),
        ("pay", {**pay, "amount": 1250}, False, "E_VALUE: refused"),  # the arguments changed too
    )
    assert extract_lessons(changed_args, Outcome.FAILURE) == []


def test_unit_conversion_is_a_scale_from_the_first_failed_call() -> None:
    trail = steps(
        ("ship", {"city": "Oslo", "weight": 3}, False),
        ("ship", {"city": "Oslo", "weight": 30}, False),
        ("ship", {"city": "Oslo", "weight": 3000}, True),
    )
    (scale,) = [x for x in extract_lessons(trail, Outcome.SUCCESS)]
    assert scale.type is ProcedureType.ARGUMENT_SCALE
    assert scale.spec == {"slot": "weight", "factor": 1000.0, "integer": True}


def test_argument_order_of_positional_and_keyword_arguments() -> None:
    positional = steps(("copy", ["a", "b", "m"], False), ("copy", ["b", "a", "m"], True))
    (order,) = extract_lessons(positional, Outcome.FAILURE)
    assert order.type is ProcedureType.ARGUMENT_ORDER and order.spec == {"order": [1, 0, 2]}
    keyword = steps(
        ("move", {"src": "a", "dst": "b"}, False), ("move", {"src": "b", "dst": "a"}, True)
    )
    (swap,) = extract_lessons(keyword, Outcome.PARTIAL)
    assert swap.spec == {"order": {"src": "dst", "dst": "src"}}


def test_missing_and_wrong_values_become_value_rules() -> None:
    trail = steps(
        ("open", {"path": "a"}, False),
        ("open", {"path": "a", "mode": "rb"}, True),
    )
    (value,) = extract_lessons(trail, Outcome.FAILURE)
    assert value.type is ProcedureType.ARGUMENT_VALUE
    assert value.spec == {"slot": "mode", "value": "rb"}


def test_failed_attempt_without_a_repair_and_single_action_teach_nothing() -> None:
    assert extract_lessons(steps(("pay", {}, False), ("pay", {}, False)), Outcome.FAILURE) == []
    assert extract_lessons(steps(("pay", {}, True)), Outcome.SUCCESS) == []


def test_successful_sequence_merges_repeats() -> None:
    trail = steps(("a", {}, True), ("a", {}, True), ("b", {}, True))
    assert successful_sequence(trail) == ["a", "b"]


def test_contradicting_lessons_share_a_conflict_key_but_not_a_key() -> None:
    def scale(after: int) -> Any:
        trail = steps(("ship", {"w": 3}, False), ("ship", {"w": after}, True))
        return extract_lessons(trail, Outcome.SUCCESS)[0]

    grams, tenths = scale(3000), scale(30)
    assert grams.key != tenths.key
    assert grams.conflict_key == tenths.conflict_key is not None


def test_a_scale_and_a_value_rule_for_one_argument_contradict() -> None:
    def repair(before: int, after: int) -> Any:
        trail = steps(("ship", {"w": before}, False), ("ship", {"w": after}, True))
        return extract_lessons(trail, Outcome.SUCCESS)[0]

    grams, fixed = repair(5, 5000), repair(0, 250)  # a zero gives no factor: a fixed value
    assert (grams.type, fixed.type) == (ProcedureType.ARGUMENT_SCALE, ProcedureType.ARGUMENT_VALUE)
    assert grams.conflict_key == fixed.conflict_key is not None and grams.key != fixed.key
    # procedures stored before carry their own type's key: still found as rivals
    assert '["argument_value","ship","w"]' in grams.conflict_keys
    assert (
        repair(5, 5000).conflict_key
        != extract_lessons(
            steps(("ship", {"n": 5}, False), ("ship", {"n": 9}, True)), Outcome.SUCCESS
        )[0].conflict_key
    )  # another argument: no contradiction


def test_plan_call_follows_only_the_better_of_a_scale_and_a_value_rule_for_one_argument() -> None:
    scale = procedure(
        ProcedureType.ARGUMENT_SCALE, "ship", {"slot": "weight", "factor": 1000.0, "integer": True}
    )
    value = procedure(ProcedureType.ARGUMENT_VALUE, "ship", {"slot": "weight", "value": 250})
    assert winners([scale, value]) == [scale] and winners([value, scale]) == [value]
    plan = plan_call([scale, value], "ship", {"dest": "Rome", "weight": 7})
    assert plan[-1].args == {"dest": "Rome", "weight": 7000}
    assert plan[-1].procedures == (scale.id,)


# statistics and status -------------------------------------------------------------------------


def test_counts_after_use() -> None:
    assert counts_after_use(1, 2, 3, Outcome.SUCCESS) == (2, 2, 3)
    assert counts_after_use(1, 2, 3, Outcome.FAILURE) == (1, 3, 3)
    assert counts_after_use(1, 2, 3, Outcome.PARTIAL) == (1, 2, 4)


def test_demotion_recovery_and_retirement_thresholds() -> None:
    active, demoted, retired = (
        ProcedureStatus.ACTIVE,
        ProcedureStatus.DEMOTED,
        ProcedureStatus.RETIRED,
    )

    def status(before: ProcedureStatus, s: int, f: int, demoted_f: int = 0) -> ProcedureStatus:
        return status_after(before, s, f, 0, CONFIG, failures_while_demoted=demoted_f)

    assert status(active, 0, 2) is active  # too few uses to judge
    assert status(active, 0, 3) is demoted  # 3 uses, rate 0 < 0.5
    assert status(demoted, 3, 3, 1) is active  # rate back to 0.5
    assert status(demoted, 0, 4, 1) is demoted
    assert status(active, 0, 5) is demoted  # demoted first, never skips
    # Retired by failures while demoted, not by all failures: a procedure with a good record
    # is not retired by its first failures after being demoted.
    assert status(demoted, 4, 6, 1) is demoted
    assert status(demoted, 4, 9, 4) is demoted
    assert status(demoted, 4, 10, 5) is retired
    assert status(retired, 9, 0) is retired  # final


def test_failures_while_demoted_count_only_failures_of_a_demoted_procedure() -> None:
    active, demoted = ProcedureStatus.ACTIVE, ProcedureStatus.DEMOTED
    assert failures_while_demoted_after(active, 0, Outcome.FAILURE) == 0  # the demoting one
    assert failures_while_demoted_after(demoted, 2, Outcome.FAILURE) == 3
    assert failures_while_demoted_after(demoted, 2, Outcome.SUCCESS) == 2
    assert failures_while_demoted_after(demoted, 2, Outcome.PARTIAL) == 2


def test_better_supported_procedure_ranks_first_and_demotion_halves_the_score() -> None:
    strong = procedure(ProcedureType.SEQUENCE, None, {"actions": ["a", "b"]}, support=3)
    weak = procedure(ProcedureType.SEQUENCE, None, {"actions": ["b", "a"]}, support=1)
    assert procedure_score(strong, 0.9) > procedure_score(weak, 0.9)
    used = procedure(ProcedureType.SEQUENCE, None, {"actions": ["b"]}, support=1, successes=6)
    assert procedure_score(used, 0.9) > procedure_score(strong, 0.9)  # evidence from use counts
    demoted = procedure(ProcedureType.SEQUENCE, None, {}, support=3, status="demoted")
    assert procedure_score(demoted, 0.9) == pytest.approx(procedure_score(strong, 0.9) / 2)


# plans ---------------------------------------------------------------------------------------


def test_plan_call_applies_preconditions_recursively_and_argument_rules() -> None:
    service = {"service": {"from": "service"}}
    procs = [
        procedure(ProcedureType.PRECONDITION, "deploy", {"requires": "test", "args": service}),
        procedure(
            ProcedureType.PRECONDITION,
            "test",
            {"requires": "build", "args": {**service, "fast": {"value": True}}},
        ),
        procedure(
            ProcedureType.ARGUMENT_SCALE,
            "deploy",
            {"slot": "timeout", "factor": 60.0, "integer": True},
        ),
    ]
    plan = plan_call(procs, "deploy", {"service": "api", "timeout": 2.5})
    assert [(c.action, c.args) for c in plan] == [
        ("build", {"service": "api", "fast": True}),
        ("test", {"service": "api"}),
        ("deploy", {"service": "api", "timeout": 150}),
    ]
    assert plan[0].procedures == (procs[1].id,)
    assert plan[2].procedures == (procs[2].id,)


def test_a_repair_whose_ratio_overflows_teaches_no_scale() -> None:
    steps = parse_steps(
        [
            {"action": "ship", "args": {"w": 5e-324}, "error": "E_VALUE: too light"},
            {"action": "ship", "args": {"w": 10}, "observation": "sent"},
        ],
        max_steps=10,
        max_chars=100,
    )
    lessons = extract_lessons(steps, Outcome.SUCCESS)
    assert all(lesson.type is not ProcedureType.ARGUMENT_SCALE for lesson in lessons)


def test_plan_call_leaves_a_value_it_cannot_scale_unchanged() -> None:
    scale = procedure(
        ProcedureType.ARGUMENT_SCALE, "ship", {"slot": "weight", "factor": 1000.0, "integer": True}
    )
    for huge in (1e306, 10**400):
        (call,) = plan_call([scale], "ship", {"weight": huge})
        assert call.args == {"weight": huge} and call.procedures == ()
    assert plan_call([scale], "ship", {"weight": 3})[0].args == {"weight": 3000}


def test_plan_call_reorders_positional_arguments_and_skips_retired() -> None:
    order = procedure(ProcedureType.ARGUMENT_ORDER, "copy", {"order": [1, 0, 2]})
    mount = {"requires": "mount", "args": {}}
    retired = procedure(ProcedureType.PRECONDITION, "copy", mount, status="retired")
    plan = plan_call([order, retired], "copy", ["a.txt", "a.bak", "plain"])
    assert [(c.action, c.args) for c in plan] == [("copy", ["a.bak", "a.txt", "plain"])]


def test_winners_keep_only_the_best_of_contradicting_procedures() -> None:
    first = procedure(ProcedureType.ARGUMENT_SCALE, "ship", {"slot": "w", "factor": 1000.0})
    second = procedure(ProcedureType.ARGUMENT_SCALE, "ship", {"slot": "w", "factor": 10.0})
    assert winners([first, second]) == [first]
    plan = plan_call([second, first], "ship", {"w": 2})
    assert plan[-1].args == {"w": 20.0}


def test_plan_without_procedures_is_the_call_itself() -> None:
    assert [(c.action, c.args) for c in plan_call([], "read", {"p": 1})] == [("read", {"p": 1})]


@pytest.mark.parametrize(
    ("procedures", "action", "args", "words"),
    [
        (None, "book", {}, "procedures must be a list of Procedure, got NoneType"),
        ("rules", "book", {}, "procedures must be a list of Procedure, got str"),
        ([{"id": "p1", "type": "precondition"}], "book", {}, "procedures[0] is a dict"),
        ([], None, {}, "action must be a non-empty action name"),
        ([], "", {}, "action must be a non-empty action name"),
        ([], "  ", {}, "action must be a non-empty action name"),
        ([], "book", None, "args must be a dict"),
        ([], "book", "place=Sora", "args must be a dict"),
        ([], "book", {1: "Sora"}, "args must be a dict"),
    ],
)
def test_plan_call_refuses_bad_input_naming_the_argument(
    procedures: Any, action: Any, args: Any, words: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(words)):
        plan_call(procedures, action, args)


def test_plan_call_takes_a_procedure_read_back_from_json() -> None:
    login = procedure(ProcedureType.PRECONDITION, "book", {"requires": "login", "args": {}})
    item = json.loads(login.model_dump_json())  # as a REST client receives it
    plan = plan_call([Procedure.model_validate(item)], "book", ("Sora",))
    assert [(c.action, c.args) for c in plan] == [("login", {}), ("book", ["Sora"])]


def test_procedure_view_reads_last_use() -> None:
    p = procedure(ProcedureType.SEQUENCE, None, {})
    record = p.record.model_copy(
        update={"metadata": {**p.record.metadata, "last_used": "2024-05-01T10:00:00+00:00"}}
    )
    assert Procedure.from_record(record).last_used == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert p.success_rate is None and p.uses == 0
