"""Bad input gets a specific error, a message that says what to do, and changes nothing.

Each case calls one public method with one kind of bad input against a seeded memory, and
checks the exact :class:`agentmem.AgentMemError` subclass, a hint in the message, and that the
stores are byte-for-byte what they were (counts, every record, the seeded record's history).
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from agentmem import (
    AgentMemError,
    BackendUnavailable,
    InvalidFilter,
    InvalidKind,
    InvalidMetadata,
    InvalidScope,
    InvalidSettings,
    InvalidText,
    Memory,
    NotFound,
    Settings,
    ValidationError,
)
from agentmem.embedders import Embedder
from tests.integration._scripts.support import CountingEmbedder

MAX_TEXT = 200
MAX_BATCH = 5
GOOD = "Alice likes jasmine tea"
MISSING = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="module")
def embedder(embedder: Embedder) -> Embedder:
    """The session's MiniLM, remembering vectors across this module's tests (same vectors)."""
    return CountingEmbedder(embedder, remember_documents=True)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Memory]:
    """One Memory with small limits (oversized input is cheap to make) for every case: bad
    input changes nothing, so the cases cannot disturb each other, and each checks that."""
    home = tmp_path_factory.mktemp("bad-input") / "home"
    settings = Settings.load(home=home, max_text_chars=MAX_TEXT, max_batch_items=MAX_BATCH)
    with Memory(settings=settings, embedder=embedder) as m:
        yield m


@pytest.fixture(scope="module")
def seeded(shared: Memory) -> str:
    """One memory of alice's (the id every id-taking case uses), one of bob's."""
    shared.add("Bob prefers coffee", user_id="bob", metadata={"n": 2})
    return shared.add(GOOD, user_id="alice", agent_id="helper", metadata={"n": 1}).id


@pytest.fixture
def mem(shared: Memory, seeded: str) -> Memory:
    """The shared, seeded Memory."""
    return shared


def snapshot(mem: Memory, memory_id: str) -> tuple[Any, ...]:
    """Everything a bad call could have changed."""
    stats = mem.stats()
    return (
        stats.records,
        stats.history_entries,
        stats.indexed_vectors,
        stats.pending_index,
        stats.by_kind,
        [r.model_dump() for r in mem.export()],
        [h.model_dump() for h in mem.history(memory_id)],
    )


@dataclass(frozen=True)
class Case:
    """One bad call: what it does, the exact error it must raise, a hint its message holds."""

    call: Callable[[Memory, str], Any]
    error: type[AgentMemError]
    hint: str


CASES: dict[str, Case] = {
    # text
    "empty text": Case(lambda m, i: m.add("", user_id="alice"), InvalidText, "non-empty"),
    "whitespace text": Case(
        lambda m, i: m.add(" \n\t ", user_id="alice"), InvalidText, "non-empty"
    ),
    "int text": Case(lambda m, i: m.add(42, user_id="alice"), InvalidText, "must be a string"),
    "None text": Case(lambda m, i: m.add(None, user_id="alice"), InvalidText, "must be a string"),
    "bytes text": Case(
        lambda m, i: m.add(GOOD.encode(), user_id="alice"), InvalidText, "must be a string"
    ),
    "NUL in text": Case(lambda m, i: m.add("a\x00b", user_id="alice"), InvalidText, "NUL"),
    "oversized text": Case(
        lambda m, i: m.add("x" * (MAX_TEXT + 1), user_id="alice"),
        InvalidText,
        "AGENTMEM_MAX_TEXT_CHARS",
    ),
    # scope
    "no scope": Case(lambda m, i: m.add(GOOD), InvalidScope, "user_id='alice'"),
    "empty scope value": Case(lambda m, i: m.add(GOOD, user_id=""), InvalidScope, "non-empty"),
    "slash in scope": Case(
        lambda m, i: m.add(GOOD, user_id="alice/../bob"), InvalidScope, "path separator"
    ),
    "backslash in scope": Case(
        lambda m, i: m.add(GOOD, org_id="acme\\eng"), InvalidScope, "path separator"
    ),
    "control char in scope": Case(
        lambda m, i: m.add(GOOD, user_id="alice", thread_id="t\x1b1"),
        InvalidScope,
        "control character",
    ),
    "lone surrogate in scope": Case(
        lambda m, i: m.add(GOOD, user_id="alice\ud800"), InvalidScope, "not valid Unicode"
    ),
    "non-string scope": Case(
        lambda m, i: m.add(GOOD, user_id=7), InvalidScope, "pass ids as strings"
    ),
    "no scope for delete_all": Case(lambda m, i: m.delete_all(), InvalidScope, "at least one"),
    "no scope for search": Case(lambda m, i: m.search("tea"), InvalidScope, "at least one"),
    "no scope for list": Case(lambda m, i: m.list(), InvalidScope, "at least one"),
    # kind
    "unknown kind": Case(
        lambda m, i: m.add(GOOD, user_id="alice", kind="fact"), InvalidKind, "use one of"
    ),
    "unknown kind in search": Case(
        lambda m, i: m.search("tea", user_id="alice", kinds=["episodic", "facts"]),
        InvalidKind,
        "use one of",
    ),
    # filters
    "unknown filter operator in search": Case(
        lambda m, i: m.search("tea", user_id="alice", filters={"n": {"$regex": "1"}}),
        InvalidFilter,
        "use one of: $eq",
    ),
    "unknown filter operator in list": Case(
        lambda m, i: m.list(user_id="alice", filters={"n": {"$like": "1"}}),
        InvalidFilter,
        "use one of: $eq",
    ),
    "empty $in": Case(
        lambda m, i: m.list(user_id="alice", filters={"n": {"$in": []}}),
        InvalidFilter,
        "non-empty list",
    ),
    "bad filter key": Case(
        lambda m, i: m.search("tea", user_id="alice", filters={"a.b": 1}),
        InvalidFilter,
        "use letters, digits and '_'",
    ),
    # missing ids
    "get missing id": Case(lambda m, i: m.get(MISSING), NotFound, "mem.list"),
    "update missing id": Case(
        lambda m, i: m.update(MISSING, text="new text"), NotFound, "mem.list"
    ),
    "delete missing id": Case(lambda m, i: m.delete(MISSING), NotFound, "mem.list"),
    "invalidate missing id": Case(lambda m, i: m.invalidate(MISSING), NotFound, "mem.list"),
    "history missing id": Case(lambda m, i: m.history(MISSING), NotFound, "mem.list"),
    "get non-string id": Case(lambda m, i: m.get(123), NotFound, "non-empty string"),
    "get in another scope": Case(lambda m, i: m.get(i, user_id="bob"), NotFound, "scope"),
    "update in another scope": Case(
        lambda m, i: m.update(i, text="hijacked", user_id="bob"), NotFound, "scope"
    ),
    "delete in another scope": Case(lambda m, i: m.delete(i, user_id="bob"), NotFound, "scope"),
    "history in another scope": Case(
        lambda m, i: m.history(i, user_id="bob"), NotFound, "mem.list"
    ),
    # metadata, importance, times
    "non-JSON metadata": Case(
        lambda m, i: m.add(GOOD, user_id="alice", metadata={"when": datetime(2024, 1, 1)}),
        InvalidMetadata,
        "JSON-serialisable",
    ),
    "NaN metadata": Case(
        lambda m, i: m.add(GOOD, user_id="alice", metadata={"x": float("nan")}),
        InvalidMetadata,
        "JSON-serialisable",
    ),
    "lone surrogate in metadata": Case(
        lambda m, i: m.add(GOOD, user_id="alice", metadata={"name": "\udcff"}),
        InvalidMetadata,
        "not valid Unicode",
    ),
    "lone surrogate in a filter": Case(
        lambda m, i: m.search("tea", user_id="alice", filters={"name": "\udcff"}),
        InvalidFilter,
        "not valid Unicode",
    ),
    "non-str metadata key": Case(
        lambda m, i: m.add(GOOD, user_id="alice", metadata={1: "one"}),
        InvalidMetadata,
        "keys must be strings",
    ),
    "metadata not a dict": Case(
        lambda m, i: m.add(GOOD, user_id="alice", metadata=["n", 1]),
        InvalidMetadata,
        "must be a dict",
    ),
    "importance too high": Case(
        lambda m, i: m.add(GOOD, user_id="alice", importance=1.5), InvalidMetadata, "[0, 1]"
    ),
    "importance negative": Case(
        lambda m, i: m.add(GOOD, user_id="alice", importance=-0.1), InvalidMetadata, "[0, 1]"
    ),
    "importance not a number": Case(
        lambda m, i: m.add(GOOD, user_id="alice", importance="high"), InvalidMetadata, "[0, 1]"
    ),
    "bad event_time": Case(
        lambda m, i: m.add(GOOD, user_id="alice", event_time="last tuesday"),
        InvalidMetadata,
        "ISO-8601",
    ),
    "event_time wrong type": Case(
        lambda m, i: m.add(GOOD, user_id="alice", event_time=1715176560),
        InvalidMetadata,
        "ISO-8601",
    ),
    # add_many: one bad item rejects the whole call
    "add_many with an empty item": Case(
        lambda m, i: m.add_many(["good one", {"text": ""}, "good two"], user_id="alice"),
        InvalidText,
        "item 1",
    ),
    "add_many with a bad kind": Case(
        lambda m, i: m.add_many(
            ["good one", "good two", {"text": "x", "kind": "fact"}], user_id="alice"
        ),
        InvalidKind,
        "item 2",
    ),
    "add_many with bad metadata": Case(
        lambda m, i: m.add_many([{"text": "ok", "metadata": {2: 3}}, "good"], user_id="alice"),
        InvalidMetadata,
        "item 0",
    ),
    "add_many with an unknown key": Case(
        lambda m, i: m.add_many(["good", {"text": "x", "colour": "red"}], user_id="alice"),
        ValidationError,
        "allowed",
    ),
    "add_many with a non-dict item": Case(
        lambda m, i: m.add_many(["good", 17], user_id="alice"),
        ValidationError,
        "each item is a dict",
    ),
    "add_many item without text": Case(
        lambda m, i: m.add_many(["good", {"metadata": {}}], user_id="alice"),
        InvalidText,
        "has no 'text'",
    ),
    "add_many with a non-string item text": Case(
        lambda m, i: m.add_many(["good", {"text": b"bytes"}], user_id="alice"),
        InvalidText,
        "item 1",
    ),
    "add_many with an oversized item": Case(
        lambda m, i: m.add_many(["good", "y" * (MAX_TEXT + 1)], user_id="alice"),
        InvalidText,
        "AGENTMEM_MAX_TEXT_CHARS",
    ),
    "add_many with valid_to before valid_from": Case(
        lambda m, i: m.add_many(
            [{"text": "x", "valid_from": "2024-02-01", "valid_to": "2024-01-01"}],
            user_id="alice",
        ),
        ValidationError,
        "must be after",
    ),
    "add_many with valid_to before the event_time it starts at": Case(
        lambda m, i: m.add_many(
            [{"text": "x", "event_time": "2024-05-01", "valid_to": "2024-01-01"}],
            user_id="alice",
        ),
        ValidationError,
        "must be after its event_time",
    ),
    "import a record whose valid_to is before its event_time": Case(
        lambda m, i: m.import_records(
            [
                {
                    "scope": {"user_id": "carol"},
                    "text": "fine",
                    "event_time": "2024-05-01T00:00Z",
                    "valid_to": "2024-01-01T00:00Z",
                }
            ]
        ),
        ValidationError,
        "must be after its event_time",
    ),
    "add_many too many items": Case(
        lambda m, i: m.add_many(["t"] * (MAX_BATCH + 1), user_id="alice"),
        ValidationError,
        "AGENTMEM_MAX_BATCH_ITEMS",
    ),
    "add_many with a string": Case(
        lambda m, i: m.add_many("just one string", user_id="alice"),
        ValidationError,
        "must be a list",
    ),
    # update / invalidate on an existing record
    "update with empty text": Case(
        lambda m, i: m.update(i, text="  ", user_id="alice"), InvalidText, "non-empty"
    ),
    "update with oversized text": Case(
        lambda m, i: m.update(i, text="z" * (MAX_TEXT + 1)),
        InvalidText,
        "AGENTMEM_MAX_TEXT_CHARS",
    ),
    "update with bad metadata": Case(
        lambda m, i: m.update(i, metadata={"s": {1, 2}}), InvalidMetadata, "JSON-serialisable"
    ),
    "update with bad importance": Case(
        lambda m, i: m.update(i, importance=2), InvalidMetadata, "[0, 1]"
    ),
    "update with text and bad metadata": Case(
        lambda m, i: m.update(i, text="a valid new text", metadata={3: "x"}),
        InvalidMetadata,
        "keys must be strings",
    ),
    "update with nothing": Case(lambda m, i: m.update(i), ValidationError, "text=, metadata="),
    "invalidate with bad valid_to": Case(
        lambda m, i: m.invalidate(i, valid_to="soon"), InvalidMetadata, "ISO-8601"
    ),
    # search / list arguments
    "empty query": Case(lambda m, i: m.search("", user_id="alice"), InvalidText, "non-empty"),
    "non-string query": Case(
        lambda m, i: m.search(None, user_id="alice"), InvalidText, "must be a string"
    ),
    "k zero": Case(lambda m, i: m.search("tea", user_id="alice", k=0), ValidationError, "1 to"),
    "bad as_of": Case(
        lambda m, i: m.search("tea", user_id="alice", as_of="the other day"),
        InvalidMetadata,
        "ISO-8601",
    ),
    "negative offset": Case(
        lambda m, i: m.list(user_id="alice", offset=-1), ValidationError, "non-negative"
    ),
    # import
    "import a malformed record": Case(
        lambda m, i: m.import_records([{"id": "x", "text": "no scope"}]),
        ValidationError,
        "not a memory record",
    ),
    "import a record with non-JSON metadata": Case(
        lambda m, i: m.import_records(
            [{"scope": {"user_id": "carol"}, "text": "fine", "metadata": {"x": float("nan")}}]
        ),
        InvalidMetadata,
        "JSON-serialisable",
    ),
    "import a record with unsafe metadata": Case(
        lambda m, i: m.import_records(
            [{"scope": {"user_id": "carol"}, "text": "fine", "metadata": {"x": "\ud800"}}]
        ),
        InvalidMetadata,
        "not valid Unicode",
    ),
    "import a record dated before the calendar's first day": Case(
        lambda m, i: m.import_records(
            [{"scope": {"user_id": "carol"}, "text": "fine", "event_time": "0001-01-01T00:00Z"}]
        ),
        InvalidMetadata,
        "event_time=0001-01-01T00:00:00+00:00 is outside the supported range",
    ),
    "import a record created before the calendar's first day": Case(
        lambda m, i: m.import_records(
            [{"scope": {"user_id": "carol"}, "text": "fine", "created_at": "0001-01-01T00:00"}]
        ),
        InvalidMetadata,
        "created_at=0001-01-01T00:00:00+00:00 is outside the supported range",
    ),
    "import a record with an unsafe scope": Case(
        lambda m, i: m.import_records([{"scope": {"user_id": "a/b"}, "text": "fine"}]),
        ValidationError,
        "path separator",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_is_rejected_and_changes_nothing(mem: Memory, seeded: str, case: Case) -> None:
    before = snapshot(mem, seeded)
    with pytest.raises(AgentMemError) as info:
        case.call(mem, seeded)
    error = info.value
    assert type(error) is case.error, f"{type(error).__name__}: {error}"
    message = str(error)
    assert case.hint in message, message
    assert "validation error for" not in message and "pydantic" not in message.lower()
    assert snapshot(mem, seeded) == before


def test_bad_item_anywhere_in_add_many_stores_no_item(mem: Memory, seeded: str) -> None:
    items: list[Any] = ["first good", "second good", "third good", "fourth good"]
    before = snapshot(mem, seeded)
    for position in range(len(items) + 1):
        bad = [*items[:position], {"text": "x", "importance": 9}, *items[position:]]
        with pytest.raises(InvalidMetadata, match=f"^item {position}: importance"):
            mem.add_many(bad, user_id="alice")
        assert snapshot(mem, seeded) == before
    assert len(mem.add_many(items, user_id="alice")) == 4, "the good items alone are fine"


def test_validation_errors_are_value_errors(mem: Memory) -> None:
    with pytest.raises(ValueError):
        mem.add("", user_id="alice")
    with pytest.raises(KeyError):
        mem.get(MISSING)


# backends that cannot be opened ---------------------------------------------------------------


def _assert_home_released(home: Path, embedder: Embedder) -> None:
    with Memory(settings=Settings.load(home=home), embedder=embedder) as mem:
        assert mem.stats().records == 0


@pytest.mark.skipif(
    importlib.util.find_spec("agentmem.stores.postgres") is None,
    reason="agentmem/stores/postgres.py (the PostgreSQL store) is not written yet",
)
def test_unreachable_postgres_fails_fast(home: Path, embedder: Embedder) -> None:
    settings = Settings.load(
        home=home, store_url="postgresql://postgres@127.0.0.1:1/none", connect_timeout_s=2
    )
    start = time.monotonic()
    with pytest.raises(BackendUnavailable) as info:
        Memory(settings=settings, embedder=embedder)
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert "127.0.0.1:1" in message and "PostgreSQL" in message, message
    _assert_home_released(home, embedder)


@pytest.mark.skipif(
    importlib.util.find_spec("agentmem.vectors.qdrant_server") is None,
    reason="agentmem/vectors/qdrant_server.py (the Qdrant server index) is not written yet",
)
@pytest.mark.timeout(120)  # a retry loop that never gives up fails here, not a stopwatch
def test_unreachable_qdrant_fails_fast(home: Path, embedder: Embedder) -> None:
    settings = Settings.load(home=home, vectors_url="http://127.0.0.1:1", connect_timeout_s=2)
    with pytest.raises(BackendUnavailable) as info:
        Memory(settings=settings, embedder=embedder)
    assert "127.0.0.1:1" in str(info.value), str(info.value)
    _assert_home_released(home, embedder)


def test_unknown_embedder_spec(home: Path) -> None:
    with pytest.raises(InvalidSettings, match="use 'minilm'"):
        Memory(settings=Settings.load(home=home, embedder="word2vec"))
    with pytest.raises(InvalidSettings, match="use 'minilm'"):
        Memory(settings=Settings.load(home=home, embedder="word2vec"))  # the lock was released


def test_missing_local_model(home: Path, tmp_path: Path, embedder: Embedder) -> None:
    spec = f"sentence-transformers:{tmp_path / 'no-such-model'}"
    with pytest.raises(BackendUnavailable, match="does not exist"):
        Memory(settings=Settings.load(home=home, embedder=spec))
    _assert_home_released(home, embedder)


def test_bad_settings_url(home: Path) -> None:
    with pytest.raises(InvalidSettings, match="unknown scheme"):
        Memory(settings=Settings.load(home=home, store_url="mysql://db/mem"))


@pytest.mark.parametrize("field", ["store_url", "vectors_url", "buffer_url", "graph_url"])
def test_bad_settings_url_hides_its_password(home: Path, field: str) -> None:
    url = "falkor://default:Hunter2-secret@db.example:6379/agentmem"
    with pytest.raises(InvalidSettings, match="unknown scheme") as caught:
        Settings.load(home=home, **{field: url})
    assert "Hunter2-secret" not in str(caught.value)
    assert "default:***@db.example" in str(caught.value)
