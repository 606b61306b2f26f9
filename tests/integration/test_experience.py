"""Experience memory through the Memory API, on the embedded defaults: recording, reflection
(rules and a mocked LLM), distillation into procedures, use statistics, demotion and
retirement, contradictions, recall ranking, context, bad input and scope isolation."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentmem import (
    HistoryEvent,
    InvalidExperience,
    InvalidMetadata,
    InvalidText,
    Memory,
    MemoryKind,
    NotFound,
    Outcome,
    ProcedureStatus,
    ProcedureType,
    Settings,
    ValidationError,
    plan_call,
)
from agentmem.embedders import Embedder
from agentmem.experience import distil_experiences
from agentmem.models import Scope
from agentmem.tokens import TokenCounter

READ_TASK = "Open and read the text file {name}.txt and report its first line"
SHIP_TASK = "Ship a parcel weighing {kg} kg to {city}"
MODEL = "ollama/llama3"


def read_steps(name: str, *, distractor: bool = False) -> list[dict[str, Any]]:
    """read fails until the file is opened (optionally after a useless stat)."""
    path = {"path": f"{name}.txt"}
    steps: list[dict[str, Any]] = [
        {"action": "read", "args": path, "ok": False, "error": "E_STATE: read rejected"}
    ]
    if distractor:
        steps += [
            {"action": "stat", "args": path, "observation": "12 bytes"},
            {"action": "read", "args": path, "ok": False, "error": "E_STATE: read rejected"},
        ]
    steps += [
        {"action": "open", "args": path, "observation": "opened", "thought": "maybe open first"},
        {"action": "read", "args": path, "observation": "Summary: all targets met"},
    ]
    return steps


def ship_steps(kg: int, city: str, factor: int) -> list[dict[str, Any]]:
    return [
        {"action": "ship", "args": {"city": city, "weight": kg}, "ok": False,
         "error": "E_VALUE: ship rejected"},
        {"action": "ship", "args": {"city": city, "weight": kg * factor}, "observation": "sent"},
    ]  # fmt: skip


def nested(depth: int) -> list[Any]:
    """A list nested ``depth`` levels deep."""
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def learn_reading(mem: Memory, user: str = "agent", name: str = "q3-sales") -> Any:
    return mem.record_experience(
        READ_TASK.format(name=name), read_steps(name), "success", reward=0.6, user_id=user
    )


def precondition(mem: Memory, user: str = "agent") -> Any:
    (proc,) = [p for p in mem.procedures(user_id=user) if p.type is ProcedureType.PRECONDITION]
    return proc


@pytest.fixture(scope="module")
def shared_mem(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Memory]:
    """One memory for the tests that only check that bad input changes nothing in it."""
    settings = Settings.load(home=tmp_path_factory.mktemp("experience") / "home")
    with Memory(settings=settings, embedder=embedder) as mem:
        learn_reading(mem)
        yield mem


@pytest.fixture
def llm_mem(home: Path, embedder: Embedder) -> Iterator[Any]:
    opened: list[Memory] = []

    def open_memory(answer: str, *, limits: Any = None, **llm_kwargs: Any) -> Memory:
        settings = Settings.load(
            home=home,
            llm_model=MODEL,
            llm_retries=0,
            llm_kwargs={"mock_response": answer, **llm_kwargs},
            **(limits or {}),
        )
        mem = Memory(settings=settings, embedder=embedder)
        opened.append(mem)
        return mem

    yield open_memory
    for mem in opened:
        mem.close()


# recording and reflection --------------------------------------------------------------------


def test_record_stores_trajectory_outcome_reward_feedback_and_reflection(mem: Memory) -> None:
    task = READ_TASK.format(name="q3-sales")
    result = mem.record_experience(
        task,
        read_steps("q3-sales", distractor=True),
        "success",
        reward=0.6,
        feedback="took three tries",
        user_id="agent",
        metadata={"ticket": 7},
    )
    record = mem.get(result.record.id)
    assert record.kind is MemoryKind.EXPERIENCE and record.text == task
    assert record.metadata["outcome"] == "success" and record.metadata["reward"] == 0.6
    assert record.metadata["ticket"] == 7 and record.metadata["task_family"].startswith("auto:")
    experience = result.experience
    assert [s.action for s in experience.steps] == ["read", "stat", "read", "open", "read"]
    assert experience.steps[3].thought == "maybe open first"
    assert experience.feedback == "took three tries" and experience.outcome is Outcome.SUCCESS
    reflection = result.reflection
    assert reflection.source == "rules"
    assert reflection.summary.startswith("Succeeded in 5 steps after 2 failed steps: open → read")
    assert reflection.failed[0] == "step 1 read(path='q3-sales.txt') failed: E_STATE: read rejected"
    assert experience.reflection == reflection  # stored with the record
    # The task is indexed: hybrid search over experiences finds it, filters on the outcome work.
    hits = mem.search("read the q3-sales file", user_id="agent", kinds="experience")
    assert hits[0].record.id == record.id
    assert (
        mem.search("q3", user_id="agent", kinds="experience", filters={"outcome": "failure"}) == []
    )
    history = mem.history(record.id)  # marked as counted once the procedures are stored
    assert [(e.event, e.actor) for e in history] == [
        (HistoryEvent.ADD, "experience"),
        (HistoryEvent.UPDATE, "experience"),
    ]
    assert history[0].new_metadata["experience"]["distilled_rules"] == []
    assert len(history[1].new_metadata["experience"]["distilled_rules"]) == 2


def test_a_long_trajectory_within_the_limits_is_stored_with_observations_cut_to_fit(
    mem: Memory,
) -> None:
    # 40 steps (max_steps 200) of 2,400-character pages: 83 kB as stored at 2,000 characters,
    # over max_metadata_bytes (65,536), so the observations are cut shorter still.
    page = "lorem ipsum " * 200
    steps = [
        {"action": "read_page", "args": {"url": f"https://example.org/{i}"}, "observation": page}
        for i in range(40)
    ]
    result = mem.record_experience("Research the topic", steps, "success", user_id="reader")
    stored = mem.get(result.record.id)
    assert len(json.dumps(stored.metadata, ensure_ascii=False).encode()) <= 65_536
    kept = [s.observation for s in result.experience.steps]
    assert len(kept) == 40 and all(o.endswith("…") and 100 <= len(o) < 2000 for o in kept)
    assert all(page.startswith(o[:-1]) for o in kept)
    assert [s.args["url"] for s in result.experience.steps][-1] == "https://example.org/39"


@pytest.mark.parametrize(
    ("steps", "words"),
    [
        (
            [{"action": "upload", "args": {"blob": f"{i}" + "x" * 2_000}} for i in range(60)],
            r"the trajectory of 60 steps does not fit in one experience: .* over 65,536 "
            r"\(AGENTMEM_MAX_METADATA_BYTES\); record fewer steps \(the part that matters\) "
            "or smaller args",
        ),
        (
            [{"action": "parse", "args": {"tree": nested(18)}}],
            r"step 0's args are nested more than 16 levels deep, the most a trajectory holds "
            r"\(AGENTMEM_MAX_METADATA_DEPTH 20 .*flatten them",
        ),
    ],
)
def test_a_trajectory_too_large_to_store_says_what_to_change_in_it(
    shared_mem: Memory, steps: list[dict[str, Any]], words: str
) -> None:
    before = shared_mem.stats()
    with pytest.raises(InvalidExperience, match=words) as info:
        shared_mem.record_experience("Upload the data set", steps, "success", user_id="agent")
    assert "metadata is" not in str(info.value)
    after = shared_mem.stats()
    assert (after.records, after.history_entries) == (before.records, before.history_entries)


def test_llm_reflection_replaces_the_rules_one_as_a_new_version(llm_mem: Any) -> None:
    answer = {
        "summary": "Reading needs an open handle.",
        "worked": ["open then read"],
        "failed": ["read without open"],
        "why": "the file was not open",
        "lessons": ["When reading a file, open it first."],
    }
    mem = llm_mem(json.dumps(answer))
    result = learn_reading(mem)
    assert result.reflection.source == f"llm:{MODEL}"
    assert result.reflection.summary == "Reading needs an open handle."
    assert result.reflection.lessons == ["When reading a file, open it first."]
    assert result.reflection.successful_sequence == ["open", "read"]  # always from the steps
    history = mem.history(result.record.id)
    # Stored, its LLM reflection, then marked as counted once the procedures are stored.
    assert [e.event for e in history] == [HistoryEvent.ADD, *[HistoryEvent.UPDATE] * 2]
    assert history[0].new_metadata["experience"]["reflection"]["source"] == "rules"
    assert history[1].new_metadata["experience"]["reflection"]["source"] == f"llm:{MODEL}"
    assert result.experience.reflection == result.reflection
    assert mem.procedures(user_id="agent")  # distillation does not depend on the LLM
    for family in (3, "", " "):  # refused as recall_experience refuses it (was [])
        with pytest.raises(InvalidMetadata, match="task_family"):
            mem.procedures(user_id="agent", task_family=family)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("I think the agent should open the file first.", "not JSON"),
        ('{"lessons": ["open first"]}', "wrong shape"),
        ("litellm.RateLimitError", "RateLimitError"),
    ],
)
def test_bad_llm_answer_falls_back_to_rules_and_keeps_the_experience(
    llm_mem: Any, answer: str, reason: str
) -> None:
    mem = llm_mem(answer)
    result = learn_reading(mem)
    assert result.reflection.source == "rules"
    assert result.reflection.fallback_reason is not None
    assert reason in result.reflection.fallback_reason
    assert mem.get(result.record.id).metadata["experience"]["reflection"]["fallback_reason"]
    assert len(mem.procedures(user_id="agent")) == 2


@pytest.mark.parametrize(
    ("answer", "limits", "reason"),
    [
        ({"summary": "S" * 100_000}, None, "at most 2000 characters"),
        ({"summary": "Open first.", "lessons": ["open\x00 first"]}, None, "NUL"),
        ({"summary": "Open first.", "lessons": ["open first"] * 50}, None, "at most 20 items"),
        # Within those bounds, but more than this store's metadata limit holds.
        (
            {"summary": "Open first.", "lessons": [f"{i} " + "x" * 1900 for i in range(4)]},
            {"max_metadata_bytes": 6000},
            "the LLM's reflection cannot be stored",
        ),
    ],
)
def test_a_reflection_the_store_cannot_hold_keeps_the_rules_one(
    llm_mem: Any, answer: dict[str, Any], limits: Any, reason: str
) -> None:
    """It raised InvalidMetadata after the experience was stored, and nothing was learned."""
    mem = llm_mem(json.dumps(answer), limits=limits)
    result = learn_reading(mem)
    assert result.reflection.source == "rules"
    assert reason in (result.reflection.fallback_reason or "")
    stored = mem.get(result.record.id).metadata["experience"]["reflection"]
    assert stored["source"] == "rules" and stored["fallback_reason"]
    assert len(mem.list(user_id="agent", kinds="experience")) == 1
    assert len(mem.procedures(user_id="agent")) == 2


def test_llm_reflection_retries_with_the_backoff_of_the_other_llm_calls(
    home: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It passed llm_retries to litellm, which retried a rate-limited call at once, with no
    wait: llm_backoff_s was ignored. It is retried as extraction is (tenacity, backoff)."""
    from agentmem.semantic.llm import load_litellm

    litellm = load_litellm()
    real = litellm.completion
    calls: list[tuple[float, int]] = []

    def completion(**kwargs: Any) -> Any:
        calls.append((time.monotonic(), kwargs["num_retries"]))
        if len(calls) <= 2:
            raise litellm.RateLimitError(message="slow down", llm_provider="openai", model=MODEL)
        return real(**kwargs, mock_response=json.dumps({"summary": "Open the file first."}))

    monkeypatch.setattr(litellm, "completion", completion)
    backoff = 0.05
    settings = Settings.load(home=home, llm_model=MODEL, llm_retries=2, llm_backoff_s=backoff)
    with Memory(settings=settings, embedder=embedder) as mem:
        result = learn_reading(mem)
    assert result.reflection.source == f"llm:{MODEL}" and len(calls) == 3
    assert [retries for _, retries in calls] == [0, 0, 0]  # litellm retries nothing itself
    (first, _), (second, _), (third, _) = calls
    assert second - first >= backoff and third - second >= 2 * backoff


def test_a_key_a_provider_error_echoes_stays_out_of_the_fallback_reason(
    llm_mem: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentmem.semantic.llm import load_litellm

    key = "sk-SECRET-abc123456789"
    litellm = load_litellm()

    def completion(**kwargs: Any) -> Any:
        raise litellm.AuthenticationError(
            message=f"Incorrect API key provided: {key}", llm_provider="openai", model=MODEL
        )

    monkeypatch.setattr(litellm, "completion", completion)
    mem = llm_mem("unused", api_key=key)
    result = learn_reading(mem)
    assert "Incorrect API key provided: ***" in (result.reflection.fallback_reason or "")
    assert key not in json.dumps(mem.get(result.record.id).metadata)


# distillation and use ------------------------------------------------------------------------


def test_failure_then_success_distils_procedures_that_plan_the_next_attempt(mem: Memory) -> None:
    result = mem.record_experience(
        READ_TASK.format(name="q3-sales"),
        read_steps("q3-sales", distractor=True),
        "success",
        user_id="agent",
    )
    assert sorted(p.type.value for p in result.learned) == ["precondition", "sequence"]
    pre = precondition(mem)
    assert "call `open` before `read`" in pre.text and "E_STATE: read rejected" in pre.text
    assert pre.support == 1 and pre.evidence == [result.record.id] and pre.uses == 0
    assert pre.record.provenance["source_ids"] == [result.record.id]
    recall = mem.recall_experience(READ_TASK.format(name="roadmap"), user_id="agent")
    assert {m.procedure.id for m in recall.procedures} == {p.id for p in result.learned}
    plan = plan_call([m.procedure for m in recall.procedures], "read", {"path": "roadmap.txt"})
    assert [(c.action, c.args) for c in plan] == [
        ("open", {"path": "roadmap.txt"}),
        ("read", {"path": "roadmap.txt"}),
    ]


def test_support_grows_and_reported_uses_update_rate_status_and_last_use(mem: Memory) -> None:
    first = learn_reading(mem, name="q3-sales")
    second = learn_reading(mem, name="roadmap")
    pre = precondition(mem)
    assert pre.support == 2 and pre.evidence == [first.record.id, second.record.id]
    assert pre.id in {p.id for p in second.learned}
    version = pre.record.version
    task = READ_TASK.format(name="churn")
    clean = [
        {"action": "open", "args": {"path": "churn.txt"}},
        {"action": "read", "args": {"path": "churn.txt"}},
    ]
    used = mem.record_experience(task, clean, "success", used_procedures=[pre.id], user_id="agent")
    (updated,) = used.updated
    assert (updated.successes, updated.failures, updated.success_rate) == (1, 0, 1.0)
    assert updated.last_used is not None and updated.record.version == version + 1
    assert used.experience.used_procedures == {pre.id: "success"}
    mem.record_experience(task, clean, "partial", used_procedures={pre.id: False}, user_id="agent")
    mem.record_experience(
        task, clean, "failure", used_procedures={pre.id: "partial"}, user_id="agent"
    )
    now = precondition(mem)
    assert (now.successes, now.failures, now.partials, now.uses) == (1, 1, 1, 3)
    assert now.success_rate == pytest.approx(0.5) and now.status is ProcedureStatus.ACTIVE
    history = mem.history(now.id)
    assert {e.actor for e in history} == {"experience"}
    assert history[-1].old_metadata["successes"] == 1  # every change is a kept version


def test_procedure_that_keeps_failing_is_demoted_then_retired(mem: Memory) -> None:
    learn_reading(mem)
    pre = precondition(mem)
    task = READ_TASK.format(name="latency")
    failing = [{"action": "read", "args": {"path": "latency.txt"}, "ok": False, "error": "E"}]
    statuses = []
    for _ in range(8):
        result = mem.record_experience(
            task, failing, "failure", used_procedures={pre.id: False}, user_id="agent"
        )
        statuses.append(result.updated[0].status)
        if statuses[-1] == "demoted":
            assert result.updated[0].failures_while_demoted == statuses.count("demoted") - 1
    # Demoted at its 3rd failure, retired at its 5th failure while demoted.
    assert statuses == ["active", "active", *["demoted"] * 5, "retired"]
    # Demoted procedures stay in recall (ranked lower); retired ones leave it, and are kept.
    assert mem.procedures(user_id="agent", task_family=pre.task_family) != []
    assert pre.id not in {p.id for p in mem.procedures(user_id="agent")}
    retired = {p.id: p for p in mem.procedures(user_id="agent", include_retired=True)}[pre.id]
    assert retired.status is ProcedureStatus.RETIRED and retired.failures == 8
    assert mem.get(pre.id).invalidated_at is not None
    assert mem.history(pre.id)[-1].event is HistoryEvent.INVALIDATE
    recall = mem.recall_experience(task, user_id="agent")
    assert pre.id not in {m.procedure.id for m in recall.procedures}
    again = mem.recall_experience(task, user_id="agent", include_retired=True)
    assert pre.id in {m.procedure.id for m in again.procedures}
    ctx = mem.context(task, user_id="agent", max_tokens=500)
    assert "before `read`" not in ctx.text
    # The retired procedure stays retired; a new repair teaching the rule again starts afresh.
    learn_reading(mem, name="pricing")
    assert mem.get(pre.id).metadata["support"] == 1 and mem.get(pre.id).invalidated_at
    fresh = precondition(mem)
    assert fresh.id != pre.id and fresh.uses == 0 and fresh.status is ProcedureStatus.ACTIVE
    assert fresh.record.provenance["revives"] == [pre.id]


def test_a_procedure_with_a_good_record_is_retired_by_failures_while_demoted_only(
    mem: Memory,
) -> None:
    learn_reading(mem)
    pre = precondition(mem)
    task = READ_TASK.format(name="latency")
    ok = [
        {"action": "open", "args": {"path": "l.txt"}},
        {"action": "read", "args": {"path": "l.txt"}},
    ]
    statuses = []
    for helped in [True] * 4 + [False] * 10:
        outcome = "success" if helped else "failure"
        result = mem.record_experience(
            task, ok, outcome, used_procedures={pre.id: helped}, user_id="agent"
        )
        statuses.append(result.updated[0].status.value)
        if statuses[-1] == "retired":
            break
    # 4 / 9 is under 0.5 at the 5th failure: demoted; retired 5 failures later, not at once.
    assert statuses == ["active"] * 8 + ["demoted"] * 5 + ["retired"]
    assert mem.get(pre.id).metadata["failures_while_demoted"] == 5  # kept on the record


def test_demoted_procedure_ranks_below_an_active_one(mem: Memory) -> None:
    learn_reading(mem)
    pre = precondition(mem)
    task = READ_TASK.format(name="audit-may")
    before = [m.procedure.id for m in mem.recall_experience(task, user_id="agent").procedures]
    assert before[0] == pre.id  # a precondition with evidence, ahead of the sequence at a tie
    failing = [{"action": "read", "args": {"path": "x.txt"}, "ok": False}]
    for _ in range(3):
        mem.record_experience(task, failing, "failure", used_procedures=[pre.id], user_id="agent")
    recall = mem.recall_experience(task, user_id="agent")
    ranked = [(m.procedure.id, m.procedure.status) for m in recall.procedures]
    assert ranked[-1] == (pre.id, ProcedureStatus.DEMOTED)
    assert "before `read`" not in mem.context(task, user_id="agent", max_tokens=500).text


def test_contradictory_procedures_are_both_kept_better_supported_first(mem: Memory) -> None:
    grams = [(3, "Oslo"), (7, "Lima")]
    for kg, city in grams:
        task = SHIP_TASK.format(kg=kg, city=city)
        mem.record_experience(task, ship_steps(kg, city, 1000), "success", user_id="agent")
    task = SHIP_TASK.format(kg=5, city="Riga")
    mem.record_experience(task, ship_steps(5, "Riga", 10), "success", user_id="agent")
    scales = [p for p in mem.procedures(user_id="agent") if p.type is ProcedureType.ARGUMENT_SCALE]
    by_factor = {p.spec["factor"]: p for p in scales}
    assert set(by_factor) == {1000.0, 10.0}
    thousand, ten = by_factor[1000.0], by_factor[10.0]
    assert (thousand.support, ten.support) == (2, 1)
    assert thousand.contradicts == [ten.id] and ten.contradicts == [thousand.id]
    assert len(ten.evidence) == 1 and len(thousand.evidence) == 2  # each keeps its evidence
    recall = mem.recall_experience(SHIP_TASK.format(kg=9, city="Perth"), user_id="agent")
    order = [m.procedure.id for m in recall.procedures if m.procedure.id in {thousand.id, ten.id}]
    assert order == [thousand.id, ten.id]
    plan = plan_call([m.procedure for m in recall.procedures], "ship", {"city": "P", "weight": 9})
    assert plan[-1].args == {"city": "P", "weight": 9000}
    ctx = mem.context(SHIP_TASK.format(kg=9, city="Perth"), user_id="agent", max_tokens=800)
    assert "by 1000" in ctx.text and "by 10 " not in ctx.text  # only the winner is shown


def test_a_scale_and_a_value_rule_for_one_argument_contradict_and_the_better_is_planned(
    mem: Memory,
) -> None:
    family = {"task_family": "shipping"}
    for kg in (5, 2):  # weight x1000
        task = SHIP_TASK.format(kg=kg, city="Paris")
        mem.record_experience(
            task, ship_steps(kg, "Paris", 1000), "success", user_id="s", metadata=family
        )
    zero = [  # weight 0 sent by mistake, fixed with the weight in grams: no factor, a value
        {"action": "ship", "args": {"city": "Paris", "weight": 0}, "ok": False, "error": "E_UNIT"},
        {"action": "ship", "args": {"city": "Paris", "weight": 250}, "observation": "sent"},
    ]
    mem.record_experience(
        "Ship a 0.25 kg parcel to Paris", zero, "success", user_id="s", metadata=family
    )
    rules = {p.type: p for p in mem.procedures(user_id="s")}
    scale, value = rules[ProcedureType.ARGUMENT_SCALE], rules[ProcedureType.ARGUMENT_VALUE]
    assert scale.contradicts == [value.id] and value.contradicts == [scale.id]
    recall = mem.recall_experience(SHIP_TASK.format(kg=7, city="Rome"), user_id="s")
    plan = plan_call(
        [m.procedure for m in recall.procedures], "ship", {"city": "Rome", "weight": 7}
    )
    assert plan[-1].args == {"city": "Rome", "weight": 7000}
    assert plan[-1].procedures == (scale.id,)


def test_recall_ranks_by_similarity_and_success(mem: Memory) -> None:
    failure = mem.record_experience(
        READ_TASK.format(name="churn"),
        [{"action": "read", "args": {"path": "churn.txt"}, "ok": False}],
        "failure",
        reward=-1.0,
        user_id="agent",
    )
    success = learn_reading(mem, name="q3-sales")
    unrelated = mem.record_experience(
        "Book the Atlas meeting room for 2 hours",
        [{"action": "book", "args": {"room": "Atlas", "duration": 120}}],
        "success",
        user_id="agent",
    )
    task = READ_TASK.format(name="roadmap")
    recall = mem.recall_experience(task, user_id="agent", k=3)
    by_id = {m.experience.id: m for m in recall.experiences}
    # The failure's task is the more similar one, yet the success ranks first.
    assert by_id[failure.record.id].similarity > by_id[success.record.id].similarity > 0.5
    assert by_id[unrelated.record.id].similarity < 0.3
    assert list(by_id) == [success.record.id, failure.record.id, unrelated.record.id]
    values = {failure.record.id: 0.0, success.record.id: (1 + 0.8) / 2, unrelated.record.id: 1.0}
    for m in recall.experiences:  # similarity x (0.7 + 0.3 x success, reward averaged in)
        assert m.score == pytest.approx(m.similarity * (0.7 + 0.3 * values[m.experience.id]))
    assert set(recall.task_families) == {success.experience.task_family}
    top = mem.recall_experience(task, user_id="agent", k=1).experiences
    assert [m.experience.id for m in top] == [success.record.id]
    assert "## Procedures" in recall.render() and "→ failure" in recall.render()


def test_task_family_from_metadata_groups_dissimilar_tasks(mem: Memory) -> None:
    family = {"task_family": "reports"}
    mem.record_experience(
        "Summarise the quarterly numbers", read_steps("q3"), "success", user_id="agent",
        metadata=family,
    )  # fmt: skip
    recall = mem.recall_experience("Zebra migration patterns", user_id="agent")
    assert recall.procedures == []
    recall = mem.recall_experience("Zebra migration", user_id="agent", task_family="reports")
    assert len(recall.procedures) == 2 and recall.task_families["reports"] == 1.0
    assert {p.task_family for p in mem.procedures(user_id="agent")} == {"reports"}


def test_distil_off_keeps_raw_trajectories_and_distil_later_is_idempotent(
    home: Path, embedder: Embedder
) -> None:
    settings = Settings.load(home=home, experience={"distil": False})
    with Memory(settings=settings, embedder=embedder) as mem:
        result = learn_reading(mem)
        assert result.learned == [] and mem.procedures(user_id="agent") == []
        scope = Scope(user_id="agent")
        assert len(distil_experiences(mem.backends, scope)) == 2
        assert distil_experiences(mem.backends, scope) == []  # nothing counted twice
        assert precondition(mem).support == 1


def test_distil_later_reaches_experiences_recorded_in_a_thread(
    home: Path, embedder: Embedder
) -> None:
    settings = Settings.load(home=home, experience={"distil": False})
    with Memory(settings=settings, embedder=embedder) as mem:
        name = "q3-sales"
        mem.record_experience(
            READ_TASK.format(name=name), read_steps(name), "success", user_id="u1", thread_id="t1"
        )
        assert len(distil_experiences(mem.backends, Scope(user_id="u1"))) == 2
        learned = mem.procedures(user_id="u1", thread_id="t1")
        assert len(learned) == 2 and all(p.record.scope.thread_id == "t1" for p in learned)
        assert distil_experiences(mem.backends, Scope(user_id="u1")) == []


def test_distil_again_never_recounts_experiences_past_the_evidence_window(
    mem: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentmem.experience import store

    monkeypatch.setattr(store, "MAX_EVIDENCE", 2)  # as if there were more than 50
    for name in ("a", "b", "c", "d"):
        learn_reading(mem, name=name)
    assert precondition(mem).support == 4 and len(precondition(mem).evidence) == 2
    scope = Scope(user_id="agent")
    for _ in range(2):
        distil_experiences(mem.backends, scope)
        assert precondition(mem).support == 4


def test_archived_procedures_and_experiences_are_no_longer_recalled(mem: Memory) -> None:
    from agentmem.usefulness import prune

    result = mem.record_experience(
        SHIP_TASK.format(kg=2, city="Oslo"), ship_steps(2, "Oslo", 1000), "success", user_id="u1"
    )
    rome = SHIP_TASK.format(kg=3, city="Rome")
    for _ in range(6):
        advice = mem.recall_experience(rome, user_id="u1")
        mem.feedback(advice.retrieval_id, -1.0, user_id="u1")
    archived = {c.memory_id for c in prune(mem, Scope(user_id="u1")).archived}
    assert result.experience.id in archived and archived & {p.id for p in result.learned}
    advice = mem.recall_experience(rome, user_id="u1")
    shown = {m.procedure.id for m in advice.procedures} | {
        m.experience.id for m in advice.experiences
    }
    assert not shown & archived
    assert plan_call([m.procedure for m in advice.procedures], "ship", {"weight": 3})[0].args == {
        "weight": 3
    }
    assert not {r.id for r in mem.context(rome, user_id="u1").records} & archived
    assert not {p.id for p in mem.procedures(user_id="u1")} & archived
    listed = mem.procedures(user_id="u1", include_retired=True)
    assert archived & {p.id for p in listed}  # still there, for restore()


# context -------------------------------------------------------------------------------------


def test_context_puts_applicable_procedures_first_within_budget(mem: Memory) -> None:
    mem.add("The reports share is mounted read-only.", user_id="agent", kind="semantic")
    learn_reading(mem)
    task = READ_TASK.format(name="roadmap")
    ctx = mem.context(task, user_id="agent", max_tokens=400)
    assert ctx.text.index("## Procedures") < ctx.text.index("## Past experiences")
    procedures = ctx.text.split("## Procedures\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert "call `open` before `read`" in procedures[0]
    assert "→ success: Succeeded in 3 steps" in ctx.text  # experiences show how they went
    assert ctx.tokens == TokenCounter().count(ctx.text) <= 400
    small = mem.context(task, user_id="agent", max_tokens=60)
    assert small.tokens <= 60 and small.records[0].kind is MemoryKind.PROCEDURAL


def test_context_with_filters_or_other_kinds_leaves_procedures_to_search(mem: Memory) -> None:
    learn_reading(mem)
    task = READ_TASK.format(name="roadmap")
    assert "## Procedures" not in mem.context(task, user_id="agent", kinds=["experience"]).text
    filtered = mem.context(task, user_id="agent", filters={"outcome": "success"})
    assert "## Procedures" not in filtered.text and "## Past experiences" in filtered.text


@given(max_tokens=st.integers(min_value=1, max_value=300), name=st.sampled_from(["a", "bb", "c"]))
@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_context_with_procedures_never_exceeds_max_tokens(
    mem: Memory, max_tokens: int, name: str
) -> None:
    if not mem.procedures(user_id="budget"):
        learn_reading(mem, user="budget")
        mem.record_experience(SHIP_TASK.format(kg=3, city="Oslo"), ship_steps(3, "Oslo", 1000),
                              "success", user_id="budget")  # fmt: skip
    ctx = mem.context(READ_TASK.format(name=name), user_id="budget", max_tokens=max_tokens)
    assert ctx.tokens == (TokenCounter().count(ctx.text) if ctx.text else 0) <= max_tokens


# bad input -----------------------------------------------------------------------------------

GOOD: dict[str, Any] = {
    "task": "Open and read a.txt",
    "steps": [{"action": "read", "args": {"path": "a.txt"}}],
    "outcome": "success",
}


@pytest.mark.parametrize(
    ("change", "error", "words"),
    [
        ({"steps": []}, InvalidExperience, "trajectory is empty"),
        ({"steps": None}, InvalidExperience, "list of steps"),
        ({"steps": ["read a.txt"]}, InvalidExperience, "step 0 is a str"),
        ({"steps": [{"act": "read"}]}, InvalidExperience, "unknown keys"),
        ({"steps": [{"action": "read", "args": 3}]}, InvalidExperience, "step 0"),
        (
            {"steps": [{"action": "copy", "args": {"src.txt", "dst.txt"}}]},
            InvalidExperience,
            "got a set, which has no order; pass a list or a dict",
        ),
        (
            {"steps": [{"action": "parse", "args": {"tree": nested(1000)}}]},
            InvalidExperience,
            "args are nested more than 32 levels deep; flatten them",
        ),
        (
            {"steps": [{"action": "parse", "observation": {"tree": nested(1000)}}]},
            InvalidExperience,
            "observation is nested more than 32 levels deep; pass it as text",
        ),
        ({"outcome": "won"}, InvalidExperience, "unknown outcome"),
        ({"outcome": None}, InvalidExperience, "unknown outcome"),
        ({"reward": 2.0}, InvalidExperience, r"outside the declared range \[-1, 1\]"),
        ({"reward": -1.5}, InvalidExperience, "REWARD_RANGE"),
        ({"reward": float("nan")}, InvalidExperience, "finite number"),
        ({"reward": "high"}, InvalidExperience, "finite number"),
        ({"reward": True}, InvalidExperience, "finite number"),
        ({"task": "  "}, InvalidText, "task is empty"),
        ({"feedback": 3}, InvalidText, "feedback must be a string"),
        ({"metadata": {"outcome": "x"}}, InvalidMetadata, "reserved"),
        ({"metadata": {"task_family": ""}}, InvalidMetadata, "task_family"),
        ({"used_procedures": "abc"}, InvalidExperience, "list of procedure ids"),
        ({"used_procedures": {"x": "great"}}, InvalidExperience, "unknown outcome"),
        ({"used_procedures": ["no-such-id"]}, NotFound, "recall_experience"),
    ],
)
def test_bad_input_raises_a_specific_error_and_writes_nothing(
    shared_mem: Memory, change: dict[str, Any], error: type[Exception], words: str
) -> None:
    mem = shared_mem
    before = mem.stats()
    args = {**GOOD, **change}
    with pytest.raises(error, match=words) as info:
        mem.record_experience(
            args.pop("task"), args.pop("steps"), args.pop("outcome"), **args, user_id="agent"
        )
    assert isinstance(info.value, ValidationError | NotFound)
    after = mem.stats()
    assert (after.records, after.history_entries) == (before.records, before.history_entries)


def test_a_used_id_that_is_not_a_procedure_is_rejected(shared_mem: Memory) -> None:
    mem = shared_mem
    fact = mem.add("Reports live on the share.", user_id="agent", kind="procedural")
    records = mem.stats().records
    with pytest.raises(InvalidExperience, match="not a distilled procedure"):
        mem.record_experience(**GOOD, used_procedures=[fact.id], user_id="agent")
    assert mem.stats().records == records


def test_reward_range_is_a_setting(home: Path, embedder: Embedder) -> None:
    settings = Settings.load(home=home, experience={"reward_range": (0, 1)})
    with Memory(settings=settings, embedder=embedder) as mem:
        with pytest.raises(InvalidExperience, match=r"\[0, 1\]"):
            mem.record_experience(**GOOD, reward=-0.5, user_id="agent")
        assert mem.record_experience(**GOOD, reward=0.5, user_id="agent").experience.reward == 0.5


# isolation and async ------------------------------------------------------------------------------


def test_experiences_and_procedures_are_scoped(mem: Memory) -> None:
    learn_reading(mem, user="alice")
    task = READ_TASK.format(name="roadmap")
    recall = mem.recall_experience(task, user_id="bob")
    assert recall.experiences == [] and recall.procedures == []
    assert mem.procedures(user_id="bob") == []
    assert "open" not in mem.context(task, user_id="bob", max_tokens=400).text
    alice_rule = precondition(mem, user="alice")
    with pytest.raises(NotFound):
        mem.record_experience(**GOOD, used_procedures=[alice_rule.id], user_id="bob")
    assert precondition(mem, user="alice").uses == 0
    # An agent's experiences inside a user's scope are visible to that user, not to a sibling.
    learn_reading(mem, user="carol")
    mem.record_experience(**GOOD, user_id="dave", agent_id="planner")
    assert mem.recall_experience(task, user_id="dave", agent_id="coder").experiences == []
    assert len(mem.recall_experience(task, user_id="dave").experiences) == 1


def test_async_twins(mem: Memory) -> None:
    async def run() -> tuple[Any, Any, Any]:
        result = await mem.arecord_experience(
            READ_TASK.format(name="a"), read_steps("a"), "success", user_id="agent"
        )
        recall = await mem.arecall_experience(READ_TASK.format(name="b"), 3, user_id="agent")
        procedures = await mem.aprocedures(user_id="agent")
        return result, recall, procedures

    result, recall, procedures = asyncio.run(run())
    assert recall.experiences[0].experience.id == result.record.id
    assert len(procedures) == 2


def test_update_refuses_metadata_that_would_make_an_experience_or_procedure_unreadable(
    mem: Memory,
) -> None:
    result = learn_reading(mem)
    proc, experience = precondition(mem), result.experience
    for record, key, value in [
        (proc.record, "status", "disabled"),
        (proc.record, "support", "three"),
        (proc.record, "procedure_type", "checklist"),
        (experience.record, "outcome", "failed"),
        (experience.record, "experience", {"steps": "open, read"}),
    ]:
        with pytest.raises(InvalidMetadata, match=repr(key)):
            mem.update(record.id, metadata={**record.metadata, key: value}, user_id="agent")
    with pytest.raises(InvalidMetadata, match="'procedure'"):
        mem.update(proc.id, metadata={"note": "dropped the rest"}, user_id="agent")
    assert precondition(mem).status is ProcedureStatus.ACTIVE  # nothing written
    # A change that keeps them readable is accepted.
    mem.update(proc.id, metadata={**proc.record.metadata, "note": "checked"}, user_id="agent")
    mem.update(experience.id, metadata={**experience.record.metadata, "outcome": "partial"},
               user_id="agent")  # fmt: skip
    assert precondition(mem).record.metadata["note"] == "checked"
    assert mem.recall_experience(READ_TASK.format(name="x"), user_id="agent").experiences


def test_update_refuses_a_task_family_reward_or_evidence_that_recording_would_refuse(
    mem: Memory,
) -> None:
    result = learn_reading(mem)
    proc, experience = precondition(mem), result.experience
    task = READ_TASK.format(name="x")
    assert len(mem.recall_experience(task, user_id="agent").procedures) == 2
    for record, key, value in [
        (experience.record, "task_family", 5),
        (experience.record, "task_family", ""),
        (experience.record, "task_family", "x" * 1000),
        (experience.record, "reward", 99),
        (experience.record, "reward", "0.5"),
        (proc.record, "task_family", None),
    ]:
        with pytest.raises(InvalidMetadata, match=key):
            mem.update(record.id, metadata={**record.metadata, key: value}, user_id="agent")
    dropped = {k: v for k, v in experience.record.metadata.items() if k != "task_family"}
    with pytest.raises(InvalidMetadata, match="task_family"):
        mem.update(experience.id, metadata=dropped, user_id="agent")
    for field in ("evidence", "contradicts"):  # a string is no list of ids
        body = {**proc.record.metadata["procedure"], field: "abc"}
        with pytest.raises(InvalidMetadata, match="'procedure'"):
            mem.update(proc.id, metadata={**proc.record.metadata, "procedure": body},
                       user_id="agent")  # fmt: skip
    # nothing was written: recall still finds the family's procedures
    assert len(mem.recall_experience(task, user_id="agent").procedures) == 2
    assert mem.get(experience.id, user_id="agent").metadata == experience.record.metadata
    meta = {**experience.record.metadata, "reward": -0.5, "note": "checked"}
    assert mem.update(experience.id, metadata=meta, user_id="agent").metadata["reward"] == -0.5


def test_a_stored_record_with_unreadable_metadata_is_skipped_with_a_warning(
    mem: Memory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    kept = learn_reading(mem, name="kept")
    broken = learn_reading(mem, name="broken")
    proc = precondition(mem)
    ship = mem.record_experience(SHIP_TASK.format(kg=3, city="Oslo"), ship_steps(3, "Oslo", 1000),
                                 "success", user_id="agent")  # fmt: skip
    scale = ship.learned[0]
    # As written by an older version, without the check on update.
    monkeypatch.setattr("agentmem.experience.models.check_readable", lambda *_: None)
    mem.update(scale.id, metadata={**scale.record.metadata, "status": "disabled"},
               user_id="agent")  # fmt: skip
    meta = {**broken.record.metadata, "outcome": "failed"}
    mem.update(broken.record.id, metadata=meta, user_id="agent")
    task = READ_TASK.format(name="next")
    with caplog.at_level("WARNING", logger="agentmem.experience.models"):
        assert proc.id in {p.id for p in mem.procedures(user_id="agent")}
        assert scale.id not in {p.id for p in mem.procedures(user_id="agent")}
        recall = mem.recall_experience(task, user_id="agent")
        assert "open" in mem.context(task, user_id="agent", max_tokens=400).text
    shown = {m.experience.id for m in recall.experiences}
    assert kept.record.id in shown and broken.record.id not in shown
    assert proc.id in {m.procedure.id for m in recall.procedures}
    assert any(broken.record.id in r.getMessage() for r in caplog.records)
    assert any(scale.id in r.getMessage() for r in caplog.records)


def test_a_users_procedural_memory_using_procedure_type_is_not_a_distilled_procedure(
    mem: Memory,
) -> None:
    learn_reading(mem)
    own = {"procedure_type": "checklist", "procedure": {"steps": ["build", "test"]}}
    mem.add("Deploy checklist: build, test, tag", kind="procedural", user_id="agent", metadata=own)
    assert {p.type for p in mem.procedures(user_id="agent")} == {
        ProcedureType.PRECONDITION,
        ProcedureType.SEQUENCE,
    }
    assert "Deploy checklist" in mem.context("what is the deploy checklist?", user_id="agent").text


def test_a_concurrent_change_to_a_procedure_does_not_fail_record_experience_after_storing_it(
    mem: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentmem import writing

    learn_reading(mem)
    proc = precondition(mem)
    read = writing.get_one
    raced: list[str] = []

    def racing(backends: Any, memory_id: str, scope: Any) -> Any:
        record = read(backends, memory_id, scope)
        if memory_id == proc.id and len(raced) < 2:  # another call changes it after this read
            raced.append(memory_id)
            note = {**record.metadata, "note": f"concurrent {len(raced)}"}
            monkeypatch.setattr(writing, "get_one", read)
            mem.update(memory_id, metadata=note, user_id="agent")
            monkeypatch.setattr(writing, "get_one", racing)
        return record

    monkeypatch.setattr(writing, "get_one", racing)
    mem.record_experience(READ_TASK.format(name="again"), read_steps("again"), "success",
                          used_procedures=[proc.id], user_id="agent")  # fmt: skip
    assert len(raced) == 2
    assert len(mem.list(user_id="agent", kinds="experience")) == 2  # stored once
    after = precondition(mem)
    assert (after.support, after.successes) == (proc.support + 1, proc.successes + 1)
    assert after.record.metadata["note"] == "concurrent 2"


# concurrency and crashes -------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_store_mem(
    request: pytest.FixtureRequest, home: Path, embedder: Embedder
) -> Iterator[Memory]:
    """A Memory on the embedded SQLite store, or on PostgreSQL (many processes share one)."""
    store = {"store_url": request.getfixturevalue("pg_url")} if request.param == "postgres" else {}
    with Memory(settings=Settings.load(home=home, **store), embedder=embedder) as m:
        yield m


def test_concurrent_reported_uses_each_count_once(
    any_store_mem: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentmem.experience import store

    mem = any_store_mem
    learn_reading(mem)
    proc = precondition(mem)
    counts = store.counts_after_use

    def record(name: str) -> Any:
        return mem.record_experience(READ_TASK.format(name=name), read_steps(name), "success",
                                     used_procedures=[proc.id], user_id="agent")  # fmt: skip

    def raced(*args: Any) -> Any:  # another call counts its use after this one read the counts
        monkeypatch.setattr(store, "counts_after_use", counts)
        record("other")
        return counts(*args)

    monkeypatch.setattr(store, "counts_after_use", raced)
    record("this")
    after = precondition(mem)
    assert (after.successes, after.support) == (proc.successes + 2, proc.support + 2)


def in_step(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, parties: int) -> None:
    """Make ``parties`` threads meet at ``module.name`` (the first call of each) before any
    of them goes on: all have read what they are about to change before any writes it."""
    barrier = threading.Barrier(parties)
    arrived: set[int] = set()
    real = getattr(module, name)

    def meeting(*args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() not in arrived:
            arrived.add(threading.get_ident())
            barrier.wait(timeout=60)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, meeting)


def test_concurrent_first_recordings_of_a_lesson_make_one_procedure_per_rule(
    any_store_mem: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentmem.experience import store

    mem = any_store_mem
    mem.record_experience("warm up", [{"action": "noop"}], "success", user_id="other")
    in_step(monkeypatch, store, "_new_procedure", 3)  # all found no procedure, then create

    def record(name: str) -> Any:
        family = {"task_family": "reading"}
        return mem.record_experience(READ_TASK.format(name=name), read_steps(name), "success",
                                     metadata=family, user_id="agent")  # fmt: skip

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(record, ["a", "b", "c"]))
    procedures = mem.procedures(user_id="agent", include_retired=True)
    assert sorted(p.type.value for p in procedures) == ["precondition", "sequence"]
    assert all(p.support == 3 and len(p.evidence) == 3 for p in procedures)
    ids = {p.id for p in procedures}
    assert all({p.id for p in r.learned} == ids for r in results)  # each names what it taught


class Crash(BaseException):
    """The process dies here."""


def test_distil_again_repairs_a_distillation_a_crash_interrupted_counting_it_once(
    any_store_mem: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentmem.experience import store

    mem, scope = any_store_mem, Scope(user_id="agent")
    learn_reading(mem, name="a")

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise Crash

    def crashing(name: str, where: str) -> None:
        monkeypatch.setattr(store, where, crash)
        with pytest.raises(Crash):
            learn_reading(mem, name=name)
        monkeypatch.undo()

    crashing("b", "learn")  # stored, never counted
    assert precondition(mem).support == 1
    distil_experiences(mem.backends, scope)  # the repair counts it
    assert precondition(mem).support == 2
    crashing("c", "mark_distilled")  # counted, not yet marked
    assert precondition(mem).support == 3
    for _ in range(2):  # the repair does not count it again
        distil_experiences(mem.backends, scope)
        assert precondition(mem).support == 3
    experiences = mem.list(user_id="agent", kinds="experience")
    assert [len(store.distilled_rules(r)) for r in experiences] == [2, 2, 2]  # all marked
