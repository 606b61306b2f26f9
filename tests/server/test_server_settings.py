"""ServerSettings refuses keys it does not know, as agentmem.Settings does (issue 27 item 7)."""

from __future__ import annotations

import pytest

from agentmem.errors import InvalidSettings
from agentmem_server.config import ServerSettings


def test_a_misspelt_server_variable_names_the_closest_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENTMEM_SERVER_RATE_LIMT", "1/second")
    with pytest.raises(InvalidSettings, match="AGENTMEM_SERVER_RATE_LIMIT\\?"):
        ServerSettings.load()


def test_a_misspelt_keyword_names_the_closest_one() -> None:
    with pytest.raises(InvalidSettings, match=r"'prot'.*did you mean 'port'"):
        ServerSettings.load(prot=9000)


def test_known_variables_and_keywords_still_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTMEM_SERVER_RATE_LIMIT", "5/second")
    settings = ServerSettings.load(port=9001)
    assert (settings.port, settings.rate_limit) == (9001, "5/second")


def test_a_list_variable_not_written_as_json_is_a_settings_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Not a traceback from the environment decoder: one line saying how to write it.
    monkeypatch.setenv("AGENTMEM_SERVER_CORS_ORIGINS", "https://app.example")
    with pytest.raises(InvalidSettings, match=r"cors_origins.*JSON, e\.g\."):
        ServerSettings.load()


def test_a_rate_limit_that_allows_nothing_is_refused() -> None:
    with pytest.raises(InvalidSettings, match="allows no request; use 'off'"):
        ServerSettings.load(rate_limit="0/minute")
    assert ServerSettings.load(rate_limit="1/minute").rate_limit == "1/minute"
