"""Settings refuse keys they do not know, wherever they come from, naming the closest valid one:
a typo must never fall back silently to a default (``stor_url`` to the local SQLite file)."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from agentmem import InvalidSettings, Settings
from agentmem.errors import AgentMemError


@pytest.mark.parametrize(
    ("overrides", "named", "suggested"),
    [
        ({"stor_url": "postgresql://db/x"}, "'stor_url'", "'store_url'"),
        ({"llm_modl": "gpt-4o-mini"}, "'llm_modl'", "'llm_model'"),
        ({"retrieval": {"rrf_kk": 3}}, "'retrieval.rrf_kk'", "'retrieval.rrf_k'"),
        ({"consolidation": {"brokr_url": "redis://"}}, "'consolidation.brokr_url'", "broker_url"),
    ],
)
def test_unknown_keyword_names_the_closest_key(
    overrides: dict[str, object], named: str, suggested: str
) -> None:
    for build in (Settings, Settings.load):
        with pytest.raises(InvalidSettings) as caught:
            build(**overrides)
        message = str(caught.value)
        assert named in message and "keyword argument" in message
        assert f"did you mean {suggested}" in message or suggested in message
        assert isinstance(caught.value, AgentMemError)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"store_url": "mysql://u@h/db"}, "store_url='mysql://u@h/db' has an unknown scheme"),
        ({"embed_batch_size": 0}, "embed_batch_size"),
        ({"retrieval": {"rrf_k": -1}}, "retrieval.rrf_k"),
    ],
)
def test_a_bad_value_built_directly_is_invalid_settings_too(
    overrides: dict[str, object], named: str
) -> None:
    """Settings(...) (the form Memory's docstring shows) let pydantic's ValidationError out,
    which is no AgentMemError; Settings.load translated it."""
    for build in (Settings, Settings.load):
        with pytest.raises(InvalidSettings) as caught:
            build(**overrides)
        assert named in str(caught.value) and str(caught.value).startswith("invalid settings: ")
        assert isinstance(caught.value, ValueError)


def test_a_key_close_to_nothing_points_to_the_docs() -> None:
    with pytest.raises(InvalidSettings, match=r"'zzqqxx'.*docs/configuration\.md"):
        Settings(zzqqxx=1)


def test_unknown_environment_variables_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTMEM_STOR_URL", "postgresql://db/x")
    with pytest.raises(InvalidSettings) as caught:
        Settings.load()
    assert "AGENTMEM_STOR_URL (environment variable); did you mean AGENTMEM_STORE_URL?" in str(
        caught.value
    )
    monkeypatch.delenv("AGENTMEM_STOR_URL")
    monkeypatch.setenv("AGENTMEM_GRAPH__FUZY_THRESHOLD", "80")
    with pytest.raises(InvalidSettings, match="did you mean AGENTMEM_GRAPH__FUZZY_THRESHOLD"):
        Settings.load()
    monkeypatch.delenv("AGENTMEM_GRAPH__FUZY_THRESHOLD")
    monkeypatch.setenv("AGENTMEM_RETRIVAL__RRF_K", "5")
    with pytest.raises(InvalidSettings, match="did you mean AGENTMEM_RETRIEVAL"):
        Settings.load()


def test_known_and_other_agentmem_variables_still_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("agentmem_store_url", "sqlite:///x.db")  # names are case-insensitive
    monkeypatch.setenv("AGENTMEM_GRAPH__FUZZY_THRESHOLD", "80")
    monkeypatch.setenv("AGENTMEM_RETRIEVAL__WEIGHTS", '{"dense": 2}')
    # read by other parts (server settings, API key, model cache, the tests' services)
    monkeypatch.setenv("AGENTMEM_SERVER_PORT", "9000")
    monkeypatch.setenv("AGENTMEM_API_KEY", "k")
    monkeypatch.setenv("AGENTMEM_MODEL_CACHE", "/tmp/models")
    monkeypatch.setenv("AGENTMEM_TEST_ANYTHING", "1")
    settings = Settings.load()
    assert settings.store_url == "sqlite:///x.db"
    assert settings.graph.fuzzy_threshold == 80
    assert settings.retrieval.weights["dense"] == 2


def test_unknown_settings_file_keys_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "agentmem.toml"
    path.write_text('store_urll = "sqlite:///x.db"\n[graph]\nfuzy_threshold = 80\n')
    monkeypatch.setenv("AGENTMEM_SETTINGS_FILE", str(path))
    with pytest.raises(InvalidSettings) as caught:
        Settings.load()
    message = str(caught.value)
    assert f"'store_urll' (key in {path}); did you mean 'store_url'?" in message
    assert "'graph.fuzy_threshold'" in message and "'graph.fuzzy_threshold'" in message
    path.write_text('store_url = "sqlite:///x.db"\n[graph]\nfuzzy_threshold = 80\n')
    settings = Settings.load()
    assert (settings.store_url, settings.graph.fuzzy_threshold) == ("sqlite:///x.db", 80)


@pytest.mark.parametrize(
    ("variable", "plain"),
    [
        ("AGENTMEM_EMBEDDER__NAME", "AGENTMEM_EMBEDDER"),
        ("AGENTMEM_LLM_MODEL__NAME", "AGENTMEM_LLM_MODEL"),
        ("AGENTMEM_INFER__MODE", "AGENTMEM_INFER"),
        ("AGENTMEM_RETRIEVAL__RRF_K__VALUE", "AGENTMEM_RETRIEVAL__RRF_K"),
    ],
)
def test_a_variable_nested_under_a_plain_setting_is_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, plain: str
) -> None:
    # pydantic-settings dropped these, so the default stayed in force without a word.
    monkeypatch.setenv(variable, "1")
    with pytest.raises(InvalidSettings, match=f"{variable} .*did you mean {plain}\\?"):
        Settings.load()
    monkeypatch.setenv(plain, "1")  # beside the plain variable, whichever comes first
    with pytest.raises(InvalidSettings, match=variable):
        Settings.load()
    with pytest.raises(InvalidSettings, match=r"'embedder\.name' \(keyword argument\)"):
        Settings(embedder={"name": "minilm"})


def test_the_keys_of_a_map_setting_may_be_nested_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENTMEM_LLM_KWARGS__API_BASE", "http://gpu-box:11434")
    monkeypatch.setenv("AGENTMEM_RETRIEVAL__WEIGHTS__DENSE", "2")
    monkeypatch.setenv("AGENTMEM_CONSOLIDATION__RETENTION_DAYS__EPISODIC", "30")
    settings = Settings.load()
    assert settings.llm_kwargs == {"api_base": "http://gpu-box:11434"}
    assert settings.retrieval.weights["dense"] == 2
    assert settings.consolidation.retention_days == {"episodic": 30}


def test_a_map_set_key_by_key_keeps_the_keys_it_does_not_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """AGENTMEM_TRUST__LEVELS__TOOL=trusted replaced the whole map: 'user', the default
    source, was gone, and every plain add() was refused long after the settings loaded."""
    defaults = Settings.load().trust.levels
    monkeypatch.setenv("AGENTMEM_TRUST__LEVELS__TOOL", "trusted")
    assert Settings.load().trust.levels == {**defaults, "tool": "trusted"}
    assert Settings.load(trust={"injection": "off"}).trust.levels == {**defaults, "tool": "trusted"}
    # A map given whole is the base the variables change: an argument, or the settings file's.
    assert Settings.load(trust={"levels": {"user": "trusted"}}).trust.levels == {
        "user": "trusted",
        "tool": "trusted",
    }
    settings_file = tmp_path / "agentmem.toml"
    settings_file.write_text('[trust.levels]\nuser = "untrusted"\n')
    monkeypatch.setenv("AGENTMEM_SETTINGS_FILE", str(settings_file))
    assert Settings.load().trust.levels == {"user": "untrusted", "tool": "trusted"}
    monkeypatch.delenv("AGENTMEM_SETTINGS_FILE")
    # A map given whole that leaves out the default source is refused at load, naming both.
    monkeypatch.delenv("AGENTMEM_TRUST__LEVELS__TOOL")
    monkeypatch.setenv("AGENTMEM_TRUST__LEVELS", '{"tool": "trusted"}')
    with pytest.raises(InvalidSettings, match=r"trust\.default_source 'user' .*trust\.levels"):
        Settings.load()
    monkeypatch.setenv("AGENTMEM_TRUST__DEFAULT_SOURCE", "tool")
    assert Settings.load().trust.levels == {"tool": "trusted"}


@pytest.mark.parametrize(
    ("key", "instead"),
    [
        ("timeout", "llm_timeout_s"),
        ("num_retries", "llm_retries"),
        ("model", "llm_model"),
        ("response_format", "JSON object"),
        ("metadata", "prompt"),
        ("messages", "prompts"),
        ("drop_params", "always true"),
    ],
)
def test_llm_kwargs_agentmem_passes_itself_are_refused(
    monkeypatch: pytest.MonkeyPatch, key: str, instead: str
) -> None:
    """Passed twice to litellm.completion, they failed every LLM call with a TypeError."""
    with pytest.raises(InvalidSettings, match=rf"llm_kwargs key '{key}'.*{instead}"):
        Settings.load(llm_kwargs={key: 1, "temperature": 0})
    monkeypatch.setenv(f"AGENTMEM_LLM_KWARGS__{key.upper()}", "1")
    with pytest.raises(InvalidSettings, match=f"'{key}'"):
        Settings.load()


def test_an_llm_client_refuses_them_too() -> None:
    from agentmem.semantic.llm import LLMClient

    with pytest.raises(InvalidSettings, match="llm_timeout_s"):
        LLMClient("gpt-4o-mini", kwargs={"timeout": 5})
    assert LLMClient("gpt-4o-mini", kwargs={"max_tokens": 5}).kwargs == {"max_tokens": 5}


def _optional_settings() -> list[tuple[str, ...]]:
    """The path of every setting that can be None, but the backend URLs and the file."""
    from pydantic import BaseModel

    def optional(annotation: object) -> bool:
        return type(None) in get_args(annotation)

    paths: list[tuple[str, ...]] = []
    for name, field in Settings.model_fields.items():
        section = field.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            paths += [
                (name, key) for key, f in section.model_fields.items() if optional(f.annotation)
            ]
        elif optional(section) and not name.endswith(("_url", "_file")):
            paths.append((name,))
    return paths


@pytest.mark.parametrize("path", _optional_settings(), ids=".".join)
def test_none_from_the_environment_means_none_for_every_optional_setting(
    monkeypatch: pytest.MonkeyPatch, path: tuple[str, ...]
) -> None:
    """AGENTMEM_RETRIEVAL__MMR_LAMBDA=none was refused (and AGENTMEM_LLM_MODEL=none named a
    model "none") while the other sections read none as None: a value set in the TOML file
    (which has no null) could not be switched back off from the environment."""
    assert ("retrieval", "mmr_lambda") in _optional_settings()
    monkeypatch.setenv("AGENTMEM_" + "__".join(path).upper(), "none")
    value: object = Settings.load()
    for part in path:
        value = getattr(value, part)
    assert value is None
