"""TokenCounter keeps counts by text (context assembly counts the same blocks again and again)
and answers ``fits`` without encoding a text of no more bytes than the budget: both must give
exactly what encoding the text gives."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentmem import tokens
from agentmem.tokens import TokenCounter

COUNTER = TokenCounter()
ENCODING = tokens._encoding  # the real one, before a test spies on it


def encoded(text: str) -> int:
    """The count straight from tiktoken, no cache."""
    return len(ENCODING("cl100k_base").encode(text, disallowed_special=()))


@pytest.fixture
def encodes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The texts tiktoken is asked to encode from now on (the count cache starts empty)."""
    seen: list[str] = []

    class Spy:
        def __init__(self, name: str) -> None:
            self.enc = ENCODING(name)

        def encode(self, text: str, **kwargs: Any) -> list[int]:
            seen.append(text)
            return list(self.enc.encode(text, **kwargs))

    monkeypatch.setattr(tokens, "_encoding", Spy)
    tokens._cached_count.cache_clear()
    yield seen
    tokens._cached_count.cache_clear()


def test_a_count_is_kept_by_text_and_a_changed_text_is_counted_again(
    encodes: list[str],
) -> None:
    block = "## Timeline\n- [2024-05-01] Maya adopted a greyhound called Pepper"
    first = COUNTER.count(block)
    assert COUNTER.count(block) == first == encoded(block)
    assert encodes == [block]  # the second count came from the cache
    changed = block.replace("Pepper", "Pepper the second")
    assert COUNTER.count(changed) == encoded(changed) != first
    assert encodes == [block, changed]
    assert TokenCounter("o200k_base").count(block) == len(
        ENCODING("o200k_base").encode(block, disallowed_special=())
    )  # another encoding: its own count, not this one's
    long = "word " * (tokens._CACHED_CHARS // 5 + 1)
    assert COUNTER.count(long) == COUNTER.count(long) == encoded(long)
    assert encodes.count(long) == 2  # too long to keep


def test_fits_skips_encoding_a_text_of_fewer_bytes_than_the_budget(encodes: list[str]) -> None:
    assert COUNTER.fits("short text", 10)
    assert COUNTER.fits("", 1)
    assert encodes == []
    wide = "日本語のテキスト"  # 8 characters, 24 bytes: encoded to decide
    assert COUNTER.fits(wide, 10) == (encoded(wide) <= 10)
    assert not COUNTER.fits(wide, encoded(wide) - 1)
    assert encodes == [wide]


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=60), budget=st.integers(min_value=0, max_value=80))
def test_fits_is_count_within_the_budget(text: str, budget: int) -> None:
    assert COUNTER.fits(text, budget) == (encoded(text) <= budget)
    assert COUNTER.count(text) == encoded(text)


def test_a_misspelt_encoding_is_refused_at_load_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``token_encoding="o200k"`` loaded and opened, and the first count raised
    BackendUnavailable ("cannot load ... offline"), naming no setting."""
    from agentmem import InvalidSettings, Settings

    with pytest.raises(
        InvalidSettings, match=r"token_encoding 'o200k' .*did you mean 'o200k_base'"
    ):
        Settings.load(token_encoding="o200k")
    monkeypatch.setenv("AGENTMEM_TOKEN_ENCODING", "cl100k")
    with pytest.raises(InvalidSettings, match="AGENTMEM_TOKEN_ENCODING"):
        Settings.load()
    monkeypatch.setenv("AGENTMEM_TOKEN_ENCODING", "o200k_base")
    assert Settings.load().token_encoding == "o200k_base"
    # A counter built by hand says the same on first use, not "cannot load it offline".
    with pytest.raises(InvalidSettings, match="token_encoding 'o200k'"):
        TokenCounter("o200k").count("hello")
