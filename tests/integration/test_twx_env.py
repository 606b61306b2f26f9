"""Episodes against the real TextWorldExpress game (Java): a few moves, an agent that records
what the rewards taught it and stays read-only when told, and the LLM policy through litellm's
``mock_response``. Skips on a laptop without Java or the ``twx`` extra; fails under CI=true."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from agentmem import Memory
from benchmarks.twx_world import (
    GAMES,
    LLMAgent,
    NoMemoryAgent,
    ProcedureAgent,
    fold_seeds,
    open_env,
    play,
)
from tests.services import require_textworld

TWC = GAMES["twc"]
SCOPE = {"user_id": "twx-test"}


@pytest.fixture(scope="module")
def env() -> Iterator[Any]:
    """One twc environment (one JVM) for the module."""
    require_textworld()
    with open_env(TWC) as e:
        yield e


def test_a_few_moves_in_the_real_game_without_the_gold_path(env: Any) -> None:
    seed = fold_seeds(env, "train")[0]
    episode = play(env, NoMemoryAgent(random.Random(0)), TWC, seed, "train", max_moves=4)
    assert episode.moves == 4 or episode.success or episode.failure
    assert all(t.moved and t.observation for t in episode.turns)
    assert 0.0 <= episode.score <= 1.0
    assert "put" in episode.task.lower() or "place" in episode.task.lower()
    # The agents never ask for the gold path: the game did not even generate it.
    assert env.getGoldActionSequence()[0].startswith("ERROR")


def test_memory_agent_records_experiences_and_is_read_only_on_the_test_fold(
    env: Any, mem: Memory
) -> None:
    agent = ProcedureAgent(mem, random.Random(0), **SCOPE)
    train = fold_seeds(env, "train")[:2]
    rewarded = 0
    for seed in train:
        episode = play(env, agent, TWC, seed, "train", max_moves=25)
        rewarded += sum(t.reward > 0 for t in episode.turns)
    assert rewarded > 0
    family = "textworld-twc"
    recall = mem.recall_experience("take the item", k=50, task_family=family, **SCOPE)
    stored = len(recall.experiences)
    assert stored > 0
    assert all(m.experience.task_family == family for m in recall.experiences)
    assert any(m.experience.record.metadata.get("rewarded") for m in recall.experiences)

    play(env, agent, TWC, fold_seeds(env, "test")[0], "test", learn=False)
    after = mem.recall_experience("take the item", k=50, task_family=family, **SCOPE)
    assert len(after.experiences) == stored


def test_llm_policy_through_litellm_mock_response(env: Any, mem: Memory) -> None:
    seed = fold_seeds(env, "train")[1]
    agent = LLMAgent(
        ProcedureAgent(mem, random.Random(0), **SCOPE),
        "openai/gpt-4o-mini",
        mock_response="look around",
    )
    episode = play(env, agent, TWC, seed, "train", max_moves=3, learn=False)
    assert [t.command for t in episode.turns] == ["look around"] * 3
    assert agent.answers == ["look around"] * 3 and agent.fallbacks == 0

    confused = LLMAgent(
        ProcedureAgent(mem, random.Random(0), **SCOPE),
        "openai/gpt-4o-mini",
        mock_response="dance wildly",
    )
    episode = play(env, confused, TWC, seed, "train", max_moves=3, learn=False)
    assert confused.fallbacks == len(episode.turns) == 3  # not a valid action: memory's choice
    assert all(t.moved for t in episode.turns)
